"""benchmarks/task_outputs.py without running the tasks: what its normalisation drops and keeps,
and that --compare names the first difference and exits 1 on one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "task_outputs.py"
spec = importlib.util.spec_from_file_location("task_outputs", SCRIPT)
task_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(task_outputs)


def test_normalise_drops_timings_and_versions_keeps_outputs(tmp_path):
    out = tmp_path / "run"
    raw = {"train_seconds": 1.2, "elapsed_s": 0.3, "transformers_version": "5", "versions": {"torch": "2"},
           "squad_version": "2.0", "candidates": 3, "f1": 66.66666666666667, "model": f"{out}/encoder",
           "data": f"{task_outputs.REPO}/tests/data/x.json"}
    assert task_outputs.normalise(raw, out) == {"squad_version": "2.0", "candidates": 3, "f1": 66.6667,
                                                "model": "<out>/encoder", "data": "<repo>/tests/data/x.json"}
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"time": 5, "seconds": 6}}}))
    assert task_outputs.load_normalised(tmp_path / "tokenizer.json", out) == {"model": {"vocab": {"time": 5, "seconds": 6}}}
    (tmp_path / "m.csv").write_text("step,loss,items_per_s,elapsed_s\n20,1.23456789,600.1,0.2\n")
    assert task_outputs.load_normalised(tmp_path / "m.csv", out) == [{"step": 20, "loss": 1.23457}]


def test_compare_names_the_first_difference(tmp_path, capsys):
    def digest(name: str, f1: float) -> Path:
        content = {"metrics": {"f1": f1, "exact": 50.0}}
        path = tmp_path / name
        path.write_text(json.dumps({"tasks": {"qa": {"files": {"eval/metrics.json": {
            "sha256": task_outputs.hashlib.sha256(json.dumps(content).encode()).hexdigest(), "content": content}}}}}))
        return path

    a, b, c = digest("a.json", 60.0), digest("b.json", 60.0), digest("c.json", 61.0)
    assert task_outputs.compare(a, b) == 0 and "qa/eval/metrics.json: same" in capsys.readouterr().out
    assert task_outputs.compare(a, c) == 1
    assert "qa/eval/metrics.json: DIFFERENT at /metrics/f1: '60.0' vs '61.0'" in capsys.readouterr().out
