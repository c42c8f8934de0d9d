"""Regenerate official_scores.json by running the official SQuAD scripts (not part of the tests).

Usage, from the repository root:

    python tests/data/squad/make_official_scores.py REF_DIR [--shared SHARED_DATA_DIR]

REF_DIR must hold the official ``evaluate-v1.1.py`` and ``evaluate-v2.0.py`` (see the
"scripts" entry of official_scores.json for where they come from); the data files (plain
JSON) and each run's predictions are written under it, and every script runs there, with
the interpreter running this file. The official scripts themselves are not in this
repository.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from tests.test_qa_scoring import make_predictions  # noqa: E402

# name, data, script, seed, missing_rate, na_prob_digits, use_na_probs, na_prob_thresh
RUNS = [
    ("v1-xquad-sample", "sample:xquad_en_sample.json", "evaluate-v1.1.py", 1, 0.1, None, False, None),
    ("v2-xquad-sample", "sample:xquad_en_sample.json", "evaluate-v2.0.py", 2, 0.0, 1, True, None),
    ("v2-cs224n-sample", "sample:cs224n_dev_v2_sample.json", "evaluate-v2.0.py", 3, 0.0, 1, True, None),
    ("v2-cs224n-sample-thresh0.3", "sample:cs224n_dev_v2_sample.json", "evaluate-v2.0.py", 3, 0.0, 1, True, 0.3),
    ("v2-cs224n-sample-no-na-probs", "sample:cs224n_dev_v2_sample.json", "evaluate-v2.0.py", 3, 0.0, 1, False, None),
    ("v1-squad-dev-v1.1", "shared:squad_v1.1/dev-v1.1.json.gz", "evaluate-v1.1.py", 101, 0.01, None, False, None),
    ("v1-xquad-en", "shared:xquad/xquad.en.json", "evaluate-v1.1.py", 102, 0.02, None, False, None),
    ("v2-squad-dev-v1.1", "shared:squad_v1.1/dev-v1.1.json.gz", "evaluate-v2.0.py", 103, 0.0, 2, True, None),
    ("v2-cs224n-dev", "shared:squad_v2.0/cs224n-dev-v2.0.json.gz", "evaluate-v2.0.py", 104, 0.0, 2, True, None),
    ("v2-cs224n-dev-thresh0.5", "shared:squad_v2.0/cs224n-dev-v2.0.json.gz", "evaluate-v2.0.py", 104, 0.0, 2, True, 0.5),
    ("v2-cs224n-dev-no-na-probs", "shared:squad_v2.0/cs224n-dev-v2.0.json.gz", "evaluate-v2.0.py", 104, 0.0, 2, False, None),
]

SCRIPTS = {
    "evaluate-v2.0.py": {
        "source": "github.com/rajpurkar/SQuAD-explorer, commit eee5fdbf62f8613a7812b03419e6b29617b74fd1, path evaluate-v2.0.py",
        "git_blob": "21f52c179c8c6547ae5999215f8afd36038f20ca",
    },
    "evaluate-v1.1.py": {
        "source": (
            "the official v1.1 script is not in the SQuAD-explorer git history (it is distributed from the "
            "SQuAD site / CodaLab); this is the copy in github.com/deeppavlov/stand_squad_en, commit "
            "ac074edecd13f62510a1292f1e53a4e39a734a31, path evaluate-v1.1.py, used byte for byte. Its only "
            "difference from the common text (e.g. the copies in Evan-Gao/MnemonicReader and csarron/QAModels) "
            "is str() around the version in the version-mismatch warning; the scoring code is the same in all "
            "copies compared."
        ),
        "git_blob": "3d170104941fc09fc12dce9dc398ff35ccadeca9",
    },
}

DESCRIPTION = (
    "Metrics printed by the official SQuAD evaluation scripts on seeded fake predictions, made by "
    "tests/data/squad/make_official_scores.py. For each run: predictions (and no-answer probabilities) = "
    "tests/test_qa_scoring.py::make_predictions(data, seed, missing_rate=..., na_prob_digits=...), where data is "
    "the parsed JSON of the data file ('sample:' = tests/data/squad/, 'shared:' = the shared data folder, "
    "gunzipped for the script); they were written with json.dumps to runs/<name>/pred.json and na_prob.json and "
    "scored with 'command', run in a folder holding the script and the data as data/<file>.json; 'official' is "
    "the printed JSON, parsed. use_na_probs=false runs reuse the same seed's predictions without the "
    "probability file."
)


def _plain_json(spec: str, shared: Path, ref: Path) -> Path:
    kind, _, rel = spec.partition(":")
    src = HERE / rel if kind == "sample" else shared / rel
    dst = ref / "data" / Path(rel).name.removesuffix(".gz")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".gz":
        dst.write_bytes(gzip.decompress(src.read_bytes()))
    else:
        shutil.copyfile(src, dst)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref_dir", type=Path)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    ref: Path = args.ref_dir.resolve()
    runs = []
    for name, spec, script, seed, missing, digits, use_na, thresh in RUNS:
        data_file = _plain_json(spec, args.shared, ref)
        data = json.loads(data_file.read_text(encoding="utf-8"))
        predictions, na_probs = make_predictions(data, seed, missing_rate=missing, na_prob_digits=digits)
        out = ref / "runs" / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "pred.json").write_text(json.dumps(predictions), encoding="utf-8")
        command = [script, f"data/{data_file.name}", f"runs/{name}/pred.json"]
        if use_na:
            (out / "na_prob.json").write_text(json.dumps(na_probs), encoding="utf-8")
            command += ["--na-prob-file", f"runs/{name}/na_prob.json"]
        if thresh is not None:
            command += ["--na-prob-thresh", str(thresh)]
        proc = subprocess.run([sys.executable, *command], cwd=ref, capture_output=True, text=True, check=True)
        # v1.1 prints one JSON line (its warnings go to stderr); v2.0 prints indented JSON.
        official = json.loads(proc.stdout)
        print(name, official, file=sys.stderr)
        runs.append({
            "name": name, "data": spec, "script": script, "seed": seed, "missing_rate": missing,
            "na_prob_digits": digits, "use_na_probs": use_na, "na_prob_thresh": thresh,
            "command": "python " + " ".join(command),
            "questions": sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"]),
            "predictions": len(predictions),
            "official": official,
        })
    scripts = {
        name: {**info, "sha256": hashlib.sha256((ref / name).read_bytes()).hexdigest()}
        for name, info in SCRIPTS.items()
    }
    doc = {"description": DESCRIPTION, "python": platform.python_version(), "scripts": scripts, "runs": runs}
    (HERE / "official_scores.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
