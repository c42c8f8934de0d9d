"""Regenerate official_scores.json by running the official SemEval-2010 Task 8 scorer (not part of the tests).

Usage, from the repository root:

    python tests/data/relations/make_official_scores.py PATH/TO/semeval2010_task8_scorer-v1.2.pl [--shared SHARED_DATA_DIR] [--work DIR]

The Perl script is not in this repository (see the "script" entry of official_scores.json for
where it came from). For every run the key file (``id<TAB>label``, built from the sentences'
label lines) and the predictions (from ``tests.test_relations_scoring.make_predictions``) are
written under --work, the script is run as ``perl SCRIPT PREDICTIONS KEY``, and what it printed
is parsed and recorded: the integer counts and the 2-decimal numbers, exactly as printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from tests.test_relations_scoring import RUNS, key_labels, make_predictions  # noqa: E402

SCRIPT_SOURCE = (
    "github.com/zhijing-jin/pytorch_RelationExtraction_AttentionBiLSTM, commit "
    "d9940062bbd641f1d684edb1aabcda1e24f88376, path eval/semeval2010_task8_scorer-v1.2.pl; header: official "
    "scorer for SemEval-2010 Task #8, Preslav Nakov, version 1.2 of March 22, 2010. The scoring code equals "
    "the copy in kyzhouhzau/Relation_Extration (eval/semeval2010_task8_scorer-v1.2.pl); only one printf of "
    "the per-relation line differs in layout."
)
SECTION = {
    "(2*9+1)-WAY EVALUATION (USING DIRECTIONALITY)": "19_way",
    "(9+1)-WAY EVALUATION IGNORING DIRECTIONALITY": "9+1_way_undirected",
    "(9+1)-WAY EVALUATION TAKING DIRECTIONALITY INTO ACCOUNT -- OFFICIAL": "9+1_way_directed_official",
}
ACC = {
    "Coverage": "coverage",
    "Accuracy (calculated for the above confusion matrix)": "accuracy",
    "Accuracy (considering all skipped examples as Wrong)": "accuracy_skipped_as_wrong",
    "Accuracy (considering all skipped examples as Other)": "accuracy_skipped_as_other",
}
REL_DIR = re.compile(r"^\s*(\S+) :    P =\s*(\d+)/\(\s*(\d+) \+\s*(\d+)\) =\s*([\d.]+)%     R =\s*(\d+)/\s*(\d+) =\s*([\d.]+)%     F1 =\s*([\d.]+)%$")
REL = re.compile(r"^\s*(\S+) :    P =\s*(\d+)/\s*(\d+) =\s*([\d.]+)%     R =\s*(\d+)/\s*(\d+) =\s*([\d.]+)%     F1 =\s*([\d.]+)%$")
MICRO = re.compile(r"^P =\s*(\d+)/\s*(\d+) =\s*([\d.]+)%     R =\s*(\d+)/\s*(\d+) =\s*([\d.]+)%     F1 =\s*([\d.]+)%$")
MACRO = re.compile(r"^P =\s*([\d.]+)%\tR =\s*([\d.]+)%\tF1 =\s*([\d.]+)%$")
OFFICIAL = re.compile(r"macro-averaged F1 = ([\d.]+)%")


def parse(output: str) -> dict:
    """The numbers the script printed, by evaluation."""
    result: dict = {"evaluations": {}}
    current = None
    expect = None
    for line in output.splitlines():
        head = re.match(r"^<<< (.*?)\s*>>>:?$", line)
        if head and head.group(1) in SECTION:
            current = result["evaluations"].setdefault(SECTION[head.group(1)], {"per_relation": {}})
            continue
        if m := OFFICIAL.search(line):
            result["official_macro_f1"] = m.group(1)
            continue
        if current is None:
            continue
        for text, name in ACC.items():
            if line.startswith(text + " = "):
                m = re.match(r".* = (\d+)/(\d+) = \s*([\d.]+)%$", line)
                current[name] = {"numerator": int(m.group(1)), "denominator": int(m.group(2)), "value": m.group(3)}
        if m := REL_DIR.match(line):
            current["per_relation"][m.group(1)] = {"correct": int(m.group(2)), "proposed": int(m.group(3)),
                                                   "wrong_direction": int(m.group(4)), "precision": m.group(5),
                                                   "answer": int(m.group(7)), "recall": m.group(8), "f1": m.group(9)}
        elif m := REL.match(line):
            current["per_relation"][m.group(1)] = {"correct": int(m.group(2)), "proposed": int(m.group(3)),
                                                   "precision": m.group(4), "answer": int(m.group(6)),
                                                   "recall": m.group(7), "f1": m.group(8)}
        if line.startswith("Micro-averaged"):
            expect = "micro"
        elif line.startswith("MACRO-averaged"):
            expect = "macro"
        elif expect == "micro" and (m := MICRO.match(line)):
            current["micro"] = {"correct": int(m.group(1)), "proposed": int(m.group(2)), "precision": m.group(3),
                                "answer": int(m.group(5)), "recall": m.group(6), "f1": m.group(7)}
            expect = None
        elif expect == "macro" and (m := MACRO.match(line)):
            current["macro"] = {"precision": m.group(1), "recall": m.group(2), "f1": m.group(3)}
            expect = None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("script", type=Path)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="semeval-official-"))
    work.mkdir(parents=True, exist_ok=True)
    perl = subprocess.run(["perl", "-e", "print $^V"], capture_output=True, text=True, check=True).stdout
    blob = subprocess.run(["git", "hash-object", str(args.script)], capture_output=True, text=True, check=True).stdout.strip()
    out = {
        "script": {"source": SCRIPT_SOURCE, "git_blob": blob, "sha256": hashlib.sha256(args.script.read_bytes()).hexdigest()},
        "perl": perl,
        "note": "Numbers are the strings the script printed (2 decimals, C printf rounding); counts are integers.",
        "runs": [],
    }
    for name, key_source, kind, seed, allow_missing in RUNS:
        ids, labels = key_labels(key_source, HERE, args.shared)
        predictions = make_predictions(ids, labels, kind, seed)
        key_file, pred_file = work / f"{name}.key.txt", work / f"{name}.pred.txt"
        key_file.write_text("".join(f"{i}\t{label}\n" for i, label in zip(ids, labels)))
        pred_file.write_text("".join(f"{i}\t{label}\n" for i, label in predictions.items()))
        command = ["perl", str(args.script), str(pred_file), str(key_file)]
        run = subprocess.run(command, capture_output=True, text=True, check=True)
        parsed = parse(run.stdout)
        assert len(parsed["evaluations"]) == 3 and "official_macro_f1" in parsed, run.stdout[-2000:]
        out["runs"].append({"name": name, "key": key_source, "kind": kind, "seed": seed, "allow_missing": allow_missing,
                            "key_ids": len(ids), "predicted_ids": len(predictions),
                            "command": f"perl semeval2010_task8_scorer-v1.2.pl {pred_file.name} {key_file.name}",
                            "warnings": [line for line in run.stdout.splitlines() if "WARNING" in line], **parsed})
        print(f"{name}: official macro-F1 {parsed['official_macro_f1']}")
    text = json.dumps(out, indent=1)
    # innermost objects (one relation's or one average's numbers) on one line each
    text = re.sub(r"\{\n\s*([^{}\[\]]*?)\n\s*\}", lambda m: "{" + re.sub(r",\n\s*", ", ", m.group(1)) + "}", text)
    (HERE / "official_scores.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
