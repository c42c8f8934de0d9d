"""Tests for spanbert.tasks.ner.data and spanbert.tasks.ner.tags: the CoNLL reader on real WNUT-17 lines,
tag schemes (IOB2, IOB1, IOBES) <-> spans, malformed input, and the ``datasets`` views."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanbert.core.errors import ConfigError, CorpusError
from spanbert.tasks.ner.data import NerSentence, read_conll, read_ner, to_dataset
from spanbert.tasks.ner.tags import Span, convert_tags, detect_scheme, spans_to_tags, strict_spans, tags_to_spans

from .conftest import DATA

SAMPLE = DATA / "ner" / "wnut17_train_sample.conll"


def test_reads_the_committed_wnut_sample():
    corpus = read_conll(SAMPLE)
    assert (len(corpus.sentences), sum(len(s.tokens) for s in corpus.sentences)) == (50, 926)
    assert corpus.scheme == "IOB2" and corpus.columns == 2 and corpus.tagged
    first = corpus.sentences[0]
    assert first.tokens[:3] == ("@paulwalk", "It", "'s") and first.line == 1
    # "Empire State Building = ESB ." on lines 15-20: two locations
    assert first.tokens[14:17] == ("Empire", "State", "Building")
    assert first.spans == [Span(14, 16, "location"), Span(18, 18, "location")]
    assert first.lines[14] == 15
    # the second sentence starts after the tab-only separator on line 28
    assert corpus.sentences[1].line == 29
    assert corpus.span_counts() == {"person": 16, "location": 5, "creative-work": 5, "corporation": 4, "group": 2,
                                    "product": 2}


def test_full_wnut_splits_match_their_published_sizes(shared_data):
    wnut = shared_data / "wnut17"
    sizes = {name: read_conll(wnut / name) for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated")}
    # SOURCES.md: train 3394 / 62730, dev 1009 / 15733, test 1287 / 23394 (sentences / tokens)
    assert [(len(c.sentences), sum(len(s.tokens) for s in c.sentences)) for c in sizes.values()] == [
        (3394, 62730), (1009, 15733), (1287, 23394)]
    assert all(c.labels == ["corporation", "creative-work", "group", "location", "person", "product"] for c in sizes.values())


def test_space_separated_columns_docstart_and_last_column_tag(tmp_path):
    f = tmp_path / "conll03.txt"
    f.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
                 "-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
    corpus = read_conll(f)
    assert [s.tokens for s in corpus.sentences] == [("EU", "rejects", "German"), ("Peter", "Blackburn")]
    assert [s.spans for s in corpus.sentences] == [[Span(0, 0, "ORG"), Span(2, 2, "MISC")], [Span(0, 1, "PER")]]
    assert corpus.columns == 4 and corpus.sentences[1].lines == (9, 10)


@pytest.mark.parametrize("text, where, message", [
    ("a\tO\nb\tB-PER\tx\n", 2, "3 columns, but line 1 has 2"),
    ("a\tO\nb\tX-PER\n", 2, "unknown prefix"),
    ("a\tO\n\tB-PER\n", 2, "empty token"),
    ("a\tO\nb\tB-\n", 2, "no entity type"),
    ("a\tO\n\nb\n", 3, "1 columns, but line 1 has 2"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, where, message):
    f = tmp_path / "bad.conll"
    f.write_text(text)
    with pytest.raises(CorpusError) as e:
        read_conll(f)
    assert str(e.value).startswith(f"{f}:{where}: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_named_scheme_rejects_prefixes_it_lacks(tmp_path):
    f = tmp_path / "iobes.conll"
    f.write_text("New\tB-LOC\nYork\tE-LOC\nis\tO\nbig\tS-ADJ\n")
    assert read_conll(f).scheme == "IOBES"
    with pytest.raises(CorpusError, match=r"iobes\.conll:2: tag 'E-LOC': prefix E- is not part of the IOB2 scheme"):
        read_conll(f, scheme="BIO")


def test_other_unreadable_files(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_conll(tmp_path / "missing.conll")
    (tmp_path / "empty.conll").write_text("\n\t\n")
    with pytest.raises(CorpusError, match="no sentences"):
        read_conll(tmp_path / "empty.conll")
    (tmp_path / "latin1.conll").write_bytes("a\tO\ncaf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.conll:2: not UTF-8"):
        read_conll(tmp_path / "latin1.conll")
    (tmp_path / "words.txt").write_text("just\nwords\n")
    with pytest.raises(CorpusError, match="one column only"):
        read_conll(tmp_path / "words.txt")
    untagged = read_conll(tmp_path / "words.txt", require_tags=False)
    assert untagged.sentences[0].tokens == ("just", "words") and not untagged.tagged


# ----- schemes -------------------------------------------------------------------------------

def test_the_same_chunks_in_three_schemes():
    # "Peter Blackburn met EU officials in Brussels Paris": two adjacent LOC chunks at the end
    spans = [Span(0, 1, "PER"), Span(3, 3, "ORG"), Span(6, 6, "LOC"), Span(7, 7, "LOC")]
    iob2 = ["B-PER", "I-PER", "O", "B-ORG", "O", "O", "B-LOC", "B-LOC"]
    iob1 = ["I-PER", "I-PER", "O", "I-ORG", "O", "O", "I-LOC", "B-LOC"]
    iobes = ["B-PER", "E-PER", "O", "S-ORG", "O", "O", "S-LOC", "S-LOC"]
    for scheme, tags in (("IOB2", iob2), ("IOB1", iob1), ("IOBES", iobes)):
        assert spans_to_tags(8, spans, scheme) == tags
        assert tags_to_spans(tags) == spans
        assert detect_scheme([tags]) == scheme
    assert convert_tags(iob1, "BIOES") == iobes and convert_tags(iobes, "BIO") == iob2


def test_lenient_reading_of_invalid_sequences():
    # I- after O starts a chunk; a type change splits; E- closes
    assert tags_to_spans(["O", "I-PER", "I-PER", "I-LOC"]) == [Span(1, 2, "PER"), Span(3, 3, "LOC")]
    assert tags_to_spans(["B-PER", "E-PER", "I-PER"]) == [Span(0, 1, "PER"), Span(2, 2, "PER")]
    assert tags_to_spans(["S-PER", "E-PER"]) == [Span(0, 0, "PER"), Span(1, 1, "PER")]
    # strict mode drops what the scheme does not allow to be an entity
    assert strict_spans(["O", "I-PER", "B-LOC", "I-LOC", "I-PER"], "IOB2") == [Span(2, 3, "LOC")]
    assert strict_spans(["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-ORG"], "IOBES") == [
        Span(3, 5, "LOC"), Span(6, 6, "ORG")]
    with pytest.raises(ConfigError, match="not part of the IOB2 scheme"):
        strict_spans(["S-PER"], "IOB2")


def test_spans_to_tags_rejects_overlaps_and_out_of_range():
    with pytest.raises(ConfigError, match="overlaps"):
        spans_to_tags(5, [Span(0, 2, "A"), Span(2, 3, "B")])
    with pytest.raises(ConfigError, match="outside"):
        spans_to_tags(2, [Span(1, 2, "A")])
    with pytest.raises(ConfigError, match="unknown tagging scheme"):
        spans_to_tags(2, [], "IOE2")


@st.composite
def span_sets(draw):
    """A sentence length and non-overlapping typed spans in it."""
    n = draw(st.integers(1, 15))
    spans, i = [], 0
    while i < n:
        if draw(st.booleans()):
            end = draw(st.integers(i, min(n - 1, i + 3)))
            spans.append(Span(i, end, draw(st.sampled_from(["PER", "LOC", "creative-work"]))))
            i = end + 1
        else:
            i += 1
    return n, spans


@settings(max_examples=300, deadline=None)
@given(span_sets(), st.sampled_from(["IOB2", "IOB1", "IOBES"]))
def test_spans_round_trip_through_every_scheme(case, scheme):
    n, spans = case
    tags = spans_to_tags(n, spans, scheme)
    assert tags_to_spans(tags) == spans
    if scheme != "IOB1":
        assert strict_spans(tags, scheme) == spans  # tags we write are valid in the strict reading


# ----- datasets ------------------------------------------------------------------------------

def test_dataset_view_and_saved_folder_round_trip(tmp_path):
    corpus = read_conll(SAMPLE)
    ds = to_dataset(corpus.sentences)
    assert ds.column_names == ["tokens", "tags", "spans"] and len(ds) == 50
    assert ds[0]["spans"][:2] == [{"start": 14, "end": 16, "label": "location"}, {"start": 18, "end": 18, "label": "location"}]
    ds.save_to_disk(str(tmp_path / "saved"))
    again = read_ner(tmp_path / "saved")
    assert [s.tokens for s in again.sentences] == [s.tokens for s in corpus.sentences]
    assert [s.tags for s in again.sentences] == [s.tags for s in corpus.sentences]
    # only spans (no tags column): tags are rebuilt in IOB2
    ds.remove_columns("tags").save_to_disk(str(tmp_path / "spans_only"))
    assert [s.spans for s in read_ner(tmp_path / "spans_only").sentences] == [s.spans for s in corpus.sentences]


def test_saved_dataset_with_classlabel_ner_tags(tmp_path):
    import datasets

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    ds = datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "in", "Oslo"]], "ner_tags": [[1, 2, 0, 3]]}, features=features)
    dd = datasets.DatasetDict({"train": ds, "validation": ds})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_ner(tmp_path / "dd", split="validation").sentences[0].spans == [Span(0, 1, "PER"), Span(3, 3, "LOC")]
    with pytest.raises(CorpusError, match="no split 'test'"):
        read_ner(tmp_path / "dd", split="test")
    bad = datasets.Dataset.from_dict({"tokens": [["a", "b"]], "tags": [["O", "Z-PER"]]})
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(CorpusError, match=r"row 0: tag 'Z-PER' has an unknown prefix"):
        read_ner(tmp_path / "bad")


def test_sentence_spans_property():
    assert NerSentence(("a", "b"), ("B-X", "I-X")).spans == [Span(0, 1, "X")]
