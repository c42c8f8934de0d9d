"""Tests for spanbert.pretrain.tokenizer: WordPiece training, saving/reloading with AutoTokenizer, loading checks.

Training text: the committed samples under tests/data (Moby Dick's opening paragraphs and
the first sentences of four State of the Union addresses, all public domain) plus the
embedded sample corpus of seven addresses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from spanbert.pretrain.corpus import iter_documents, sample_corpus_path
from spanbert.core.errors import ConfigError, CorpusError, TokenizerError
from spanbert.pretrain import tokenizer as tokenizer_module
from spanbert.pretrain.tokenizer import SPECIAL_TOKENS, train_tokenizer_from_files, train_wordpiece
from spanbert.core.checkpoints import load_tokenizer

DATA = Path(__file__).parent / "data"
SOURCES = [DATA / "tiny_corpus.txt", DATA / "tiny_docs.jsonl", sample_corpus_path()]
PASSAGE = "George Washington wrote to Congress: the CAFÉ in São Paulo, 中国, and Ishmael’s ship."


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(iter_documents(SOURCES))


@pytest.fixture(scope="module")
def cased(texts: list[str]) -> transformers.PreTrainedTokenizerBase:
    return train_wordpiece(texts, vocab_size=3000)


def _one_line_error(excinfo: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_special_tokens_in_bert_order(cased) -> None:
    assert [cased.convert_ids_to_tokens(i) for i in range(5)] == list(SPECIAL_TOKENS)
    ids = (cased.pad_token_id, cased.unk_token_id, cased.cls_token_id, cased.sep_token_id, cased.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    assert cased.is_fast and len(cased) <= 3000
    ids = cased("Congress")["input_ids"]
    assert ids[0] == cased.cls_token_id and ids[-1] == cased.sep_token_id  # [CLS] $A [SEP]
    pair = cased("Congress", "Senate")
    assert pair["input_ids"].count(cased.sep_token_id) == 2 and set(pair["token_type_ids"]) == {0, 1}


def test_cased_by_default_and_lowercase_option(texts, cased) -> None:
    assert cased.tokenize("Washington") != cased.tokenize("washington")
    assert "Washington" in cased.get_vocab()  # frequent in the addresses, learned whole
    assert cased.tokenize("café") != cased.tokenize("cafe")  # cased keeps accents, as BERT cased
    uncased = train_wordpiece(texts, vocab_size=3000, lowercase=True)
    assert uncased.tokenize("Washington") == uncased.tokenize("washington") == ["washington"]
    assert uncased.tokenize("café") == uncased.tokenize("cafe")  # strip_accents follows lowercase
    kept = train_wordpiece(texts, vocab_size=3000, lowercase=True, strip_accents=False)
    assert kept.tokenize("café") != kept.tokenize("cafe")
    no_cjk = train_wordpiece(texts, vocab_size=3000, handle_chinese_chars=False)
    assert len(cased.tokenize("中国")) == 2 and len(no_cjk.tokenize("中国")) == 1  # one [UNK] word


def test_round_trip_through_auto_tokenizer(tmp_path: Path, cased) -> None:
    cased.save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["do_lower_case"] is False  # transformers 5 rebuilds the normalizer from this flag
    loaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(loaded) is transformers.BertTokenizer and loaded.is_fast
    assert loaded.get_vocab() == cased.get_vocab()
    assert loaded(PASSAGE)["input_ids"] == cased(PASSAGE)["input_ids"]
    assert loaded.tokenize("Washington") != loaded.tokenize("washington")
    ids = loaded("Washington", add_special_tokens=False)["input_ids"]
    assert loaded.decode(ids) == "Washington"
    enc = loaded(PASSAGE, add_special_tokens=False, return_offsets_mapping=True)
    second_word = [i for i, w in enumerate(enc.word_ids()) if w == 1]  # its pieces, through offsets
    start, end = enc["offset_mapping"][second_word[0]][0], enc["offset_mapping"][second_word[-1]][1]
    assert PASSAGE[start:end] == "Washington"
    assert (loaded.mask_token, loaded.mask_token_id, loaded.pad_token_id) == ("[MASK]", 4, 0)


def test_train_rejects_tiny_vocab_and_empty_text() -> None:
    with pytest.raises(ConfigError):
        train_wordpiece(["some text"], vocab_size=5)
    with pytest.raises(CorpusError):
        train_wordpiece([], vocab_size=100)


def test_train_from_files_saves_atomically(tmp_path: Path) -> None:
    out = tmp_path / "tokenizers" / "wp"
    trained = train_tokenizer_from_files(SOURCES[:2], out, vocab_size=600, min_frequency=1)
    assert sorted(p.name for p in out.iterdir()) == ["tokenizer.json", "tokenizer_config.json", "vocab.txt"]
    assert [p.name for p in out.parent.iterdir()] == ["wp"]  # no staging directory left behind
    vocab_lines = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines[:5] == list(SPECIAL_TOKENS) and len(vocab_lines) == len(trained)
    loaded = load_tokenizer(str(out))
    assert loaded(PASSAGE)["input_ids"] == trained(PASSAGE)["input_ids"]
    # An existing non-empty directory is kept unless overwrite is asked for.
    with pytest.raises(ConfigError) as excinfo:
        train_tokenizer_from_files(SOURCES[:2], out, vocab_size=300, min_frequency=1)
    _one_line_error(excinfo, str(out), "overwrite")
    assert len(load_tokenizer(str(out))) == len(trained)
    train_tokenizer_from_files(SOURCES[:2], out, vocab_size=300, min_frequency=1, overwrite=True)
    assert len(load_tokenizer(str(out))) == 300
    assert sorted(p.name for p in out.parent.iterdir()) == ["wp"]


def test_train_from_saved_dataset_source(tmp_path: Path, texts: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources other than files (here a save_to_disk directory) are streamed through load_corpus."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"body": texts}).save_to_disk(str(tmp_path / "saved"))
    seen: list[list[str]] = []
    real_train = tokenizer_module.train_wordpiece

    def recording_train(documents, **kwargs):
        seen.append(list(documents))
        return real_train(seen[-1], **kwargs)

    # Compare the documents trained on, not the vocabularies: the WordPiece trainer of
    # tokenizers breaks count ties in hash-map order (huggingface/tokenizers#1794).
    monkeypatch.setattr(tokenizer_module, "train_wordpiece", recording_train)
    trained = train_tokenizer_from_files([str(tmp_path / "saved")], tmp_path / "a", vocab_size=500, text_field="body")
    assert seen == [texts]
    assert len(trained) == 500 and load_tokenizer(tmp_path / "a").get_vocab() == trained.get_vocab()


def test_train_from_files_reports_bad_corpus(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": "no text"}\n', encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        train_tokenizer_from_files([bad], tmp_path / "out", vocab_size=100)
    _one_line_error(excinfo, f"{bad}:2:", "'text'")
    assert not (tmp_path / "out").exists()


def test_load_tokenizer_errors(tmp_path: Path, cased) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(TokenizerError) as excinfo:
        load_tokenizer(str(missing))
    _one_line_error(excinfo, str(missing), "no such")

    a_file = tmp_path / "vocab.txt"
    a_file.write_text("[PAD]\n", encoding="utf-8")
    with pytest.raises(TokenizerError) as excinfo:
        load_tokenizer(str(a_file))
    _one_line_error(excinfo, str(a_file), "not a directory")

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TokenizerError) as excinfo:
        load_tokenizer(str(empty))
    _one_line_error(excinfo, str(empty))

    # A slow (pure Python) tokenizer has neither word ids nor offsets.
    slow_dir = tmp_path / "slow"
    slow_dir.mkdir()
    vocab = cased.convert_ids_to_tokens(list(range(len(cased))))
    (slow_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    transformers.BertTokenizerLegacy(vocab_file=str(slow_dir / "vocab.txt")).save_pretrained(str(slow_dir))
    with pytest.raises(TokenizerError) as excinfo:
        load_tokenizer(str(slow_dir))
    _one_line_error(excinfo, str(slow_dir), "not a fast tokenizer")

    # A fast tokenizer without a mask token cannot do masked language modelling.
    no_mask_dir = tmp_path / "no_mask"
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=cased.backend_tokenizer, unk_token="[UNK]", pad_token="[PAD]"
    ).save_pretrained(str(no_mask_dir))
    with pytest.raises(TokenizerError) as excinfo:
        load_tokenizer(str(no_mask_dir))
    _one_line_error(excinfo, str(no_mask_dir), "mask token")


def test_load_tokenizer_accepts_trained_and_real_bert(tmp_path: Path, cased, minilm_dir: Path) -> None:
    cased.save_pretrained(str(tmp_path))
    assert load_tokenizer(tmp_path).mask_token_id == 4
    real = load_tokenizer(str(minilm_dir))  # skipped by conftest when the package is absent
    assert real.is_fast and real.mask_token == "[MASK]" and real.vocab_size == 30522
    assert real.tokenize("Washington") == real.tokenize("washington")  # bert-base-uncased vocabulary
