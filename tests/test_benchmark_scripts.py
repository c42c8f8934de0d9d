"""The benchmark shell scripts parse, follow the seed/dev rules (issue 14), pass only options that
exist, and the seed summariser computes mean ± sample sd (checked against numpy)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(BENCH.glob("*.sh"))
QUALITY = sorted(BENCH.glob("*_quality.sh"))
SUMMARIZE = BENCH / "summarize_seeds.py"


def test_the_scripts_are_there():
    names = {p.name for p in QUALITY}
    assert {"qa_quality.sh", "ner_quality.sh", "relations_quality.sh", "classify_quality.sh", "summarize_quality.sh",
            "coref_quality.sh", "chinese_quality.sh"} <= names
    assert (BENCH / "quality_lib.sh").is_file()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", QUALITY, ids=lambda p: p.name)
def test_quality_script_follows_the_rules(script):
    """Seeds, dev selection, the shared helpers and a header that names the real base encoder."""
    text = script.read_text()
    header = text.split("set -euo pipefail")[0]
    assert "all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384)" in header
    assert "MiniLM-L6-H384" not in text  # the old, wrong name
    assert "quality_lib.sh" in text and "ql_banner" in text  # prints the CPU name and the encoder
    assert "SEEDS" in header and "Run time on 2 CPU cores" in header and "Resumable" in header
    assert "bash benchmarks/" + script.name in header  # the exact command
    assert "ql_summarize" in text and "ql_test_done" in text
    assert "--dev" in text and ("--select-best" in text or "--keep-last" in text)
    assert "--fit-threshold" not in text  # no threshold is fitted on the data a script reports


def test_the_library_prints_cpu_and_encoder():
    lib = (BENCH / "quality_lib.sh").read_text()
    assert "lscpu" in lib and "'Model name'" in lib
    assert 'BASE_ENCODER_NAME="all-MiniLM-L6-v2 (sentence-transformers; 6 layers, hidden 384)"' in lib
    assert 'SEEDS=${SEEDS:-1 2 3}' in lib


def _command_options() -> dict[tuple[str, ...], set[str]]:
    """Every option name of every `spanbert` command, by (group, task) or (command,)."""
    import typer

    from spanbert.cli import app

    def names(params) -> set[str]:
        return {n for p in params for n in (*p.opts, *p.secondary_opts) if n.startswith("--")}

    root = typer.main.get_command(app)
    out: dict[tuple[str, ...], set[str]] = {}
    for name, command in root.commands.items():
        if hasattr(command, "commands"):
            for task, sub in command.commands.items():
                out[(name, task)] = names(sub.params)
        else:
            out[(name,)] = names(command.params)
    return out


# Options of the scripts' non-spanbert tools: chinese_data.py, python -m spanbert.tasks.ner.baseline.
OTHER_TOOLS = {"--out", "--shared", "--train", "--data", "--output"}


@pytest.mark.parametrize("script", [*QUALITY, BENCH / "minilm_span.sh"], ids=lambda p: p.name)
def test_quality_script_uses_only_existing_options(script):
    """The scripts are too slow for tests; at least every option they pass must exist for a
    `spanbert` command the script runs (comments included: they quote commands)."""
    text = script.read_text()
    options = _command_options()
    known = set(OTHER_TOOLS)
    for group, task in re.findall(r"spanbert (finetune|evaluate|score|predict) ([a-z]+)", text):
        known |= options.get((group, task), set())
    for task in re.findall(r"ql_need_dev_selection ([a-z]+)", text):
        known |= options[("finetune", task)]
    if "spanbert pretrain" in text:
        known |= options[("pretrain",)]
    # "--$decoder" / "--$rule" are built from choices made on dev: the values they can take
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text))
    assert used <= known, sorted(used - known)


def test_missing_base_encoder_is_one_line_naming_the_script_that_makes_it(tmp_path):
    """A quality script started before its BASE exists stops at once, saying how to make it."""
    lib = BENCH / "quality_lib.sh"
    done = subprocess.run(["bash", "-c", f'source "{lib}"; ql_need_base "{tmp_path}/minilm-span"; echo went-on'],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "went-on" not in done.stdout
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path}/minilm-span: no pre-trained encoder there; make it first: "
        f"bash benchmarks/minilm_span.sh {tmp_path}/minilm-span"]
    (tmp_path / "minilm-span").mkdir()
    (tmp_path / "minilm-span" / "config.json").write_text("{}")
    done = subprocess.run(["bash", "-c", f'source "{lib}"; ql_need_base "{tmp_path}/minilm-span"; echo went-on'],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "went-on" in done.stdout


def _write(tmp_path: Path, values: list[float]) -> list[str]:
    files = []
    for seed, (f1, p) in enumerate(values, 1):
        path = tmp_path / f"seed{seed}" / "test" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"metrics": {"f1": f1, "precision": p, "per_type": [{"f1": f1 / 2}]}}))
        files.append(str(path))
    return files


def run_summary(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUMMARIZE), *args], capture_output=True, text=True, timeout=60)


def test_summarize_seeds_mean_and_sd_match_numpy(tmp_path):
    values = [(0.402, 0.551), (0.424, 0.572), (0.4137, 0.5)]
    files = _write(tmp_path, values)
    prefix = tmp_path / "out" / "summary"
    done = run_summary("--key", "metrics.f1=F1", "--key", "metrics.precision", "--key", "metrics.per_type.0.f1",
                       "--scale", "100", "--name", "WNUT-17 test", "--note", "a note", "--output", str(prefix), *files)
    assert done.returncode == 0, done.stderr
    summary = json.loads(prefix.with_suffix(".json").read_text())
    assert summary["n"] == 3 and summary["seeds"] == ["1", "2", "3"] and summary["files"] == files
    f1 = 100 * np.array([v[0] for v in values])
    p = 100 * np.array([v[1] for v in values])
    rows = {r["key"]: r for r in summary["metrics"]}
    assert rows["metrics.f1"]["label"] == "F1" and rows["metrics.precision"]["label"] == "metrics.precision"
    for key, x in (("metrics.f1", f1), ("metrics.precision", p), ("metrics.per_type.0.f1", f1 / 2)):
        assert rows[key]["mean"] == pytest.approx(np.mean(x), abs=1e-9)
        assert rows[key]["sd"] == pytest.approx(np.std(x, ddof=1), abs=1e-9)
        assert rows[key]["values"] == pytest.approx(list(x))
    md = Path(f"{prefix}.md").read_text()
    assert md == done.stdout
    assert "### WNUT-17 test" in md and "a note" in md
    per_seed = ", ".join(f"{s}: {v:.2f}" for s, v in zip((1, 2, 3), f1))
    assert f"| F1 | {np.mean(f1):.2f} ± {np.std(f1, ddof=1):.2f} | {per_seed} |" in md


def test_summarize_seeds_one_file_has_no_sd(tmp_path):
    files = _write(tmp_path, [(0.5, 0.5)])
    done = run_summary("--key", "metrics.f1", *files)
    assert done.returncode == 0, done.stderr
    assert "0.50 ± n/a" in done.stdout


@pytest.mark.parametrize("key, message", [("metrics.recall", "no key 'metrics.recall'"),
                                          ("metrics.per_type", "not a number"),
                                          ("metrics.per_type.5.f1", "missing at '5'")])
def test_summarize_seeds_errors_are_one_line(tmp_path, key, message):
    files = _write(tmp_path, [(0.5, 0.5), (0.6, 0.4)])
    done = run_summary("--key", key, *files)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = run_summary("--key", "metrics.f1", files[0], str(tmp_path / "absent.json"))
    assert done.returncode == 2 and "no such file" in done.stderr and done.stderr.count("\n") == 1


def test_quality_all_runs_the_named_steps_and_refuses_unknown_ones(tmp_path):
    """benchmarks/quality_all.sh: an unknown step is one line and exit 2; a step that fails (here
    minilm_span.sh without its corpus) is reported and the run ends non-zero."""
    script = BENCH / "quality_all.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path)], env={"PATH": "/usr/bin:/bin", "STEPS": "bogus"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: unknown step 'bogus' (minilm ner relations classify summarize qa coref chinese)"]
    done = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "STEPS": "minilm", "SPANBERT_SHARED_DATA": str(tmp_path / "none")})
    assert done.returncode != 0
    assert "=== minilm failed" in done.stdout and "failed: minilm" in done.stdout
    assert "corpus/sotu.jsonl.gz: no such file" in done.stderr
