"""Every Python block of the README runs as written (issue 16, item 6).

The blocks run in order, each in a fresh namespace, in one working folder prepared the way the
README describes it: ``tok/`` (the committed tiny WordPiece tokenizer), ``corpus/`` and ``zh/``
(real text samples), data files under the names the blocks use (committed samples of the real
data sets), and ``runs/<task>`` folders fine-tuned by the real ``spanbert finetune`` commands
from ``runs/x``, which the first block pre-trains. A block that raises fails its test with the
README line it starts on.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .conftest import DATA, TESTS, run_cli

README = TESTS.parent / "README.md"
pytestmark = pytest.mark.slow


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of every ```python fenced block, in order."""
    return [(text[: m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def _first_words(code: str) -> str:
    """The first statement that is not an import: what the block is about (its test id)."""
    for line in code.splitlines():
        if line.strip() and not line.startswith(("import ", "from ", "#")):
            return re.sub(r"\W+", "_", line)[:40].strip("_")
    return "imports"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The README's working folder, before any block ran."""
    ws = tmp_path_factory.mktemp("readme")
    shutil.copytree(DATA / "tiny_wordpiece", ws / "tok")
    (ws / "corpus").mkdir()
    shutil.copy(DATA / "tiny_docs.jsonl", ws / "corpus" / "docs.jsonl")
    shutil.copy(DATA / "sotu_1790_washington.txt", ws / "corpus" / "sotu_1790.txt")
    shutil.copy(DATA / "squad" / "xquad_en_sample.json", ws / "dev-v1.1.json")
    shutil.copy(DATA / "sotu_1790_washington.txt", ws / "paper.txt")
    shutil.copy(DATA / "classify" / "sst2_dev_sample.tsv", ws / "sst2-dev.tsv")
    (ws / "zh").mkdir()
    cmrc = json.loads((DATA / "chinese" / "cmrc2018_trial_sample.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for article in cmrc["data"] for p in article["paragraphs"]]
    (ws / "zh" / "cmrc_contexts.jsonl").write_text(
        "".join(json.dumps({"text": c}, ensure_ascii=False) + "\n" for c in contexts), encoding="utf-8")
    return ws


def run_block(index: int, ws: Path, monkeypatch) -> dict:
    """Execute README block ``index`` in ``ws``; its namespace afterwards."""
    line, code = BLOCKS[index]
    monkeypatch.chdir(ws)
    namespace: dict = {"__name__": f"readme_block_{index}"}
    try:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
    except Exception as e:  # the README line where the failing block starts, and why
        raise AssertionError(f"README.md block at line {line} failed: {type(e).__name__}: {e}") from e
    return namespace


def _finetune(ws: Path, task: str, out: str, *args: str) -> None:
    """``spanbert finetune TASK`` from the first block's ``runs/x`` into ``runs/OUT`` (a few steps)."""
    rc, _, err = run_cli(["finetune", task, "--model", str(ws / "runs" / "x"), "--output", str(ws / "runs" / out),
                          "--max-steps", "4", "--no-progress", "--seed", "1", *args])
    assert rc == 0, err


@pytest.fixture(scope="module")
def task_runs(workspace) -> Path:
    """runs/{qa,sst2,re,ner,sum,coref}, fine-tuned from runs/x on committed samples of the real sets."""
    assert (workspace / "runs" / "x" / "config.json").is_file(), "the first README block did not write runs/x"
    ws = workspace
    _finetune(ws, "qa", "qa", "--train", str(DATA / "squad" / "xquad_en_sample.json"), "--batch-size", "8",
              "--max-seq-length", "128", "--max-question-tokens", "32", "--window-overlap", "32")
    _finetune(ws, "classify", "sst2", "--train", str(DATA / "classify" / "sst2_dev_sample.tsv"), "--batch-size", "8",
              "--max-seq-length", "64", "--window-overlap", "8")
    _finetune(ws, "relations", "re", "--train", str(DATA / "relations" / "semeval_train_sample.txt"), "--batch-size", "8")
    _finetune(ws, "ner", "ner", "--train", str(DATA / "ner" / "wnut17_train_sample.conll"), "--batch-size", "8",
              "--max-seq-length", "64")
    _finetune(ws, "summarize", "sum", "--train", str(DATA / "summarize" / "scitldr_a_train_sample.jsonl"),
              "--batch-size", "4", "--max-seq-length", "64", "--cross-attention-heads", "2")
    coref = ws / "coref_train"
    coref.mkdir()
    for name in ("1342_pride_and_prejudice_brat_head.conll", "11_alices_adventures_in_wonderland_brat_head.conll"):
        lines = (DATA / "coref" / name).read_text(encoding="utf-8").split("\n")[:41] + ["", "#end document", ""]
        (coref / name).write_text("\n".join(lines), encoding="utf-8")
    _finetune(ws, "coref", "coref", "--train", str(coref), "--max-segment-length", "64", "--max-span-width", "10",
              "--ffnn-size", "64", "--feature-size", "8", "--max-antecedents", "10")
    return ws


def test_the_readme_has_the_blocks_this_file_expects():
    firsts = [code for _, code in BLOCKS]
    assert len(BLOCKS) >= 6
    assert "pretrain(" in firsts[0] and 'output_dir="runs/x"' in firsts[0]  # the block the others build on


def test_block_pretraining_and_plain_transformers(workspace, monkeypatch, capsys):
    ns = run_block(0, workspace, monkeypatch)
    assert ns["result"].state.step == 20
    # the run folder is a plain BERT MLM checkpoint, read without our package by the pipeline
    config = json.loads((workspace / "runs" / "x" / "config.json").read_text())
    assert config["model_type"] == "bert"
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) >= 2  # the fills, then the pipeline's five top tokens


@pytest.mark.parametrize("index", range(1, len(BLOCKS)), ids=lambda i: _first_words(BLOCKS[i][1]))
def test_block_runs_as_written(index, task_runs, monkeypatch, capsys):
    run_block(index, task_runs, monkeypatch)
    assert capsys.readouterr().out.strip(), "every README block prints what it shows"
