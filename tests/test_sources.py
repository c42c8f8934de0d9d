"""The shared source openers: gzip text, JSON Lines errors with file:line, saved datasets."""

from __future__ import annotations

import gzip

import pytest

from spanbert.core.errors import ConfigError, CorpusError
from spanbert.core.sources import iter_jsonl, load_dataset_source, open_text


def test_gzip_and_plain_read_alike(tmp_path):
    text = "één\ntwo\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    with open_text(tmp_path / "a.txt") as a, open_text(tmp_path / "a.txt.gz") as b:
        assert a.read() == b.read() == text


def test_jsonl_rows_and_errors(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(iter_jsonl(f)) == [(1, {"a": 1}), (3, {"a": 2})]
    f.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(CorpusError, match=r"d\.jsonl:2: not valid JSON"):
        list(iter_jsonl(f))
    f.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(CorpusError, match=r"d\.jsonl:2: expected a JSON object, got list"):
        list(iter_jsonl(f))
    f.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(ConfigError, match=r"d\.jsonl:2: not UTF-8"):
        list(iter_jsonl(f, ConfigError))
    with pytest.raises(CorpusError, match="no such file"):
        list(iter_jsonl(tmp_path / "absent.jsonl"))


def test_saved_dataset_folders(tmp_path):
    import datasets

    rows = {"text": ["a", "b"], "label": [0, 1]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "dict"))
    assert load_dataset_source(tmp_path / "one")["text"] == ["a", "b"]
    assert load_dataset_source(tmp_path / "dict", "train")["label"] == [0, 1]
    with pytest.raises(CorpusError, match=r"no split 'test' \(splits: train\)"):
        load_dataset_source(tmp_path / "dict", "test")
    (tmp_path / "junk").mkdir()
    with pytest.raises(CorpusError, match="cannot load the saved dataset"):
        load_dataset_source(tmp_path / "junk")
    assert load_dataset_source(tmp_path / "file.jsonl") is None  # a file: the caller parses it
