"""The main job (``spanbert demo``): the by-block split of the sample, the held-out scores it
writes, and the message when the time cap cuts the planned steps short. Few steps, tiny preset."""

from __future__ import annotations

import json

import pytest

from spanbert.pretrain import demo
from spanbert.core.errors import ConfigError

HEADS = ("mlm", "sbo", "joint", "unigram")


def all_blocks() -> list[demo.Block]:
    return [b for address, text in demo.sample_addresses() for b in demo.sentence_blocks(address, text)]


def test_blocks_cover_each_address_in_order():
    for address, text in demo.sample_addresses():
        blocks = demo.sentence_blocks(address, text)
        assert blocks[0].start == 0 and blocks[-1].end == len(text)
        assert all(a.end == b.start for a, b in zip(blocks, blocks[1:]))  # no gap, no overlap
        assert all(len(b.text.split()) >= demo.BLOCK_WORDS for b in blocks[:-1])
        assert all(b.text == text[b.start : b.end].strip() for b in blocks)


def test_split_is_seeded_disjoint_and_complete():
    blocks = all_blocks()
    splits = demo.split_blocks(blocks, seed=0)
    ids = {name: {b.id for b in splits[name]} for name in demo.SPLIT_NAMES}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["dev"] and not ids["dev"] & ids["test"]
    assert ids["train"] | ids["dev"] | ids["test"] == {b.id for b in blocks}
    assert len(ids["test"]) == len(ids["dev"]) == round(0.1 * len(blocks))
    again = demo.split_blocks(blocks, seed=0)
    assert [b.id for b in again["test"]] == [b.id for b in splits["test"]]
    assert [b.id for b in demo.split_blocks(blocks, seed=1)["test"]] != [b.id for b in splits["test"]]
    assert len({b.address for b in splits["test"]}) > 1  # blocks, not whole addresses


def test_bad_options_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--steps"):
        demo.resolve_setup("none", steps=0)
    with pytest.raises(ConfigError, match="--init-from"):
        demo.resolve_setup(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--preset"):
        demo.resolve_setup("none", preset="huge")
    with pytest.raises(ConfigError, match="--minutes"):
        demo.run_demo(tmp_path / "out", minutes=0, init_from="none", steps=1)
    with pytest.raises(ConfigError, match="--seed"):
        demo.run_demo(tmp_path / "out", seed=-1, init_from="none", steps=1)


def check_report(out, report: dict) -> None:
    """The JSON file has every field, sane accuracies, and a training set disjoint from dev/test."""
    saved = json.loads((out / demo.METRICS_FILE).read_text())
    assert saved == json.loads(json.dumps(report))
    for key in ("setup", "planned_steps", "steps", "cut_short_by_time_cap", "time_cap_s", "train_seconds", "tokens",
                "tokens_per_s", "final_loss", "splits", "trained_on", "dev", "test"):
        assert key in saved, key
    for split in ("dev", "test"):
        metrics = saved[split]
        assert metrics["masked_tokens"] > 0 and metrics["joint_targets"] > 0
        for head in HEADS:
            top1, top5 = metrics[f"{head}_top1"], metrics[f"{head}_top5"]
            assert 0.0 <= top1 <= top5 <= 1.0, (split, head, top1, top5)
        assert metrics["mlm_loss"] > 0 and metrics["sbo_loss"] > 0
    blocks = {name: set(saved["splits"][name]["blocks"]) for name in demo.SPLIT_NAMES}
    assert blocks["test"] and blocks["dev"] and not blocks["train"] & (blocks["test"] | blocks["dev"])
    # The file trained on holds the train blocks only: none of the held-out text.
    trained = [json.loads(line) for line in open(saved["trained_on"], encoding="utf-8")]
    assert {r["id"] for r in trained} == blocks["train"]
    held_out = [json.loads(line)["text"] for line in open(saved["splits"]["test"]["file"], encoding="utf-8")]
    train_text = "\n".join(r["text"] for r in trained)
    assert not any(text in train_text for text in held_out)


@pytest.mark.slow
def test_few_step_demo_scores_held_out_text(tmp_path, capsys):
    out = tmp_path / "demo"
    report = demo.run_demo(out, minutes=5, steps=4, init_from="none", progress=False)
    shown = capsys.readouterr().out
    check_report(out, report)
    assert report["steps"] == report["planned_steps"] == 4 and not report["cut_short_by_time_cap"]
    assert "trained 4 of 4 planned steps" in shown and "cut short by the time cap" not in shown
    assert "held-out test split" in shown and "unigram baseline" in shown
    assert shown.count("truth -> [") == 3 and "Prompts:" in shown
    test_ids = set(report["splits"]["test"]["blocks"])
    test_text = [b.text for b in all_blocks() if b.id in test_ids]
    examples = [line[len("input: "):] for line in shown.splitlines() if line.startswith("input: ")][:3]
    for example in examples:  # the masked sentences shown come from held-out blocks
        words = example.split("[MASK]")[0].split()[:2]
        assert any(" ".join(words) in text for text in test_text), example

@pytest.mark.slow
def test_time_cap_cutting_training_short_is_reported(tmp_path, capsys):
    out = tmp_path / "capped"
    report = demo.run_demo(out, minutes=0.0001, steps=1000, init_from="none", progress=False)
    shown = capsys.readouterr().out
    assert report["cut_short_by_time_cap"] and 1 <= report["steps"] < 1000
    assert "cut short by the time cap" in shown and f"{report['steps']:,} of 1,000 planned steps" in shown
    check_report(out, report)


def test_threads_follow_free_cores_unless_omp_num_threads_is_set(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(demo.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for busy, expected in ((0.1, 2), (0.4, 2), (0.6, 1), (1.0, 1), (5.0, 1)):  # measured now
        monkeypatch.setattr(demo, "busy_cpus", lambda busy=busy: busy)
        assert demo.choose_threads()[0] == expected, busy
    monkeypatch.setattr(demo, "busy_cpus", lambda: None)  # no /proc/stat: the load average decides
    for load, expected in ((0.1, 2), (0.4, 2), (0.6, 1), (1.0, 1), (5.0, 1)):
        monkeypatch.setattr(demo.os, "getloadavg", lambda load=load: (load, load, load))
        assert demo.choose_threads()[0] == expected, load
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert demo.choose_threads()[1] == "OMP_NUM_THREADS"


def test_busy_cpus_sees_a_busy_core():
    """A spinning child process shows up as about one busy CPU; an idle machine shows less."""
    import subprocess
    import sys

    busy = demo.busy_cpus(0.5)
    if busy is None:
        pytest.skip("no /proc/stat on this platform")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        loaded = demo.busy_cpus(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert loaded >= 0.8 and loaded >= busy + 0.5 - 1.0  # the spinner's core (others may come and go)


@pytest.mark.slow
def test_a_rerun_in_the_same_folder_starts_afresh(tmp_path, capsys):
    out = tmp_path / "again"
    demo.run_demo(out, steps=3, init_from="none", progress=False)
    report = demo.run_demo(out, steps=2, init_from="none", progress=False)
    assert "removed 1 checkpoint(s) of an earlier run" in capsys.readouterr().out
    assert report["steps"] == 2 and [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000002"]
