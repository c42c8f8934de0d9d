"""Entity markers: single special tokens at the positions the head reads; typed and replace styles;
sentences cut around the entities."""

from __future__ import annotations

import pytest

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.tasks.relations.data import read_semeval, read_tacred
from spanbert.tasks.relations.features import (
    MarkerScheme,
    add_marker_tokens,
    collate,
    encode_examples,
    keep_positions,
    marked_words,
)

from .conftest import DATA

REL = DATA / "relations"


@pytest.fixture
def tokenizer(tiny_tokenizer_dir):
    from spanbert.core.checkpoints import load_tokenizer

    return load_tokenizer(str(tiny_tokenizer_dir))  # a fresh copy: markers get added


def test_untyped_markers_are_single_tokens_at_the_head_positions(tokenizer):
    scheme = MarkerScheme()
    assert add_marker_tokens(tokenizer, scheme) == 4
    examples = read_semeval(REL / "semeval_train_sample.txt")
    feats = encode_examples(examples, tokenizer, scheme, 128, {e.label: i for i, e in enumerate(examples)})
    ids = tokenizer.convert_tokens_to_ids(["[S]", "[/S]", "[O]", "[/O]"])
    for ex, row, s, o in zip(examples, feats.input_ids, feats.subject_index, feats.object_index):
        assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
        assert row[s] == ids[0] and row[o] == ids[2]
        assert row.count(ids[0]) == row.count(ids[1]) == row.count(ids[2]) == row.count(ids[3]) == 1
        # the tokens between [S] and [/S] spell the subject
        inside = row[s + 1 : row.index(ids[1])]
        assert tokenizer.decode(inside).replace(" ", "") == ex.subject_text().replace(" ", "")
    assert feats.truncated == 0
    batch = collate(feats, [0, 4, 7], tokenizer.pad_token_id, labels=True)
    assert batch["input_ids"].shape[0] == 3 and batch["labels"].tolist() == [feats.labels[i] for i in (0, 4, 7)]
    rows = batch["input_ids"]
    assert (rows[range(3), batch["subject_index"]] == ids[0]).all() and (rows[range(3), batch["object_index"]] == ids[2]).all()
    assert batch["attention_mask"].sum(1).tolist() == [len(feats.input_ids[i]) for i in (0, 4, 7)]


def test_typed_markers_and_replace_style(tokenizer):
    examples = read_tacred(REL / "tacred_style_sample.json")
    scheme = MarkerScheme("wrap", ("ORGANIZATION", "PERSON"), ("ARTIFACT", "PERSON"))
    add_marker_tokens(tokenizer, scheme)
    words, marks = marked_words(examples[2], scheme)  # association (subject) after student (object)
    assert words[:5] == ["The", "[O:PERSON]", "student", "[/O:PERSON]", "[S:ORGANIZATION]"]
    assert marks == [4, 1, 6, 3]
    coil = next(e for e in examples if e.id == "semeval-train-4784")
    words, _ = marked_words(coil, scheme)
    assert "(" in words and "-LRB-" not in words  # PTB escapes restored
    assert "[S]" in words and "[O:ARTIFACT]" in words  # ARTIFACT is no subject type of this scheme: untyped [S]
    feats = encode_examples(examples, tokenizer, scheme, 128)
    assert feats.untyped >= 1 and feats.labels is None
    for row, s, o in zip(feats.input_ids, feats.subject_index, feats.object_index):
        assert tokenizer.convert_ids_to_tokens(row[s]).startswith("[S") and tokenizer.convert_ids_to_tokens(row[o]).startswith("[O")
    replace = MarkerScheme("replace", ("PERSON",), ("ARTIFACT",))
    add_marker_tokens(tokenizer, replace)
    words, marks = marked_words(examples[0], replace)
    assert words == ["The", "[S:PERSON]", "of", "a", "keygen", "uses", "a", "[O:ARTIFACT]", "to", "look", "at", "the", "raw",
                     "assembly", "code", "."]
    assert marks == [1, 7]
    feats = encode_examples(examples[:1], tokenizer, replace, 128)
    assert tokenizer.convert_ids_to_tokens(feats.input_ids[0][feats.subject_index[0]]) == "[S:PERSON]"


def test_markers_missing_from_the_tokenizer(tokenizer):
    examples = read_semeval(REL / "semeval_test_sample.txt")
    with pytest.raises(CheckpointError, match=r"lacks the marker token"):
        encode_examples(examples, tokenizer, MarkerScheme(), 128)


def test_keep_positions_by_hand():
    # 12 tokens, markers [S]=2 [O]=8 [/S]=4 [/O]=10, budget 8: markers, entity tokens 3 and 9, then
    # context nearest a marker: 1 (next to 2), 5 (next to 4)
    assert keep_positions(12, [2, 8, 4, 10], 8) == [1, 2, 3, 4, 5, 8, 9, 10]
    assert keep_positions(5, [0, 3, 1, 4], 8) == [0, 1, 2, 3, 4]  # fits: unchanged
    # a long entity keeps its start, its end marker and the tokens nearest its start
    assert keep_positions(20, [0, 17, 15, 19], 7) == [0, 1, 2, 15, 17, 18, 19]
    with pytest.raises(ConfigError):
        keep_positions(10, [0, 5, 2, 7], 3)


def test_long_sentences_are_cut_around_the_entities(tokenizer):
    scheme = MarkerScheme()
    add_marker_tokens(tokenizer, scheme)
    examples = read_semeval(REL / "semeval_train_sample.txt")
    full = encode_examples(examples, tokenizer, scheme, 512)
    cut = encode_examples(examples, tokenizer, scheme, 24)
    assert cut.truncated == sum(len(r) > 24 for r in full.input_ids) > 0
    s_id, e_id = tokenizer.convert_tokens_to_ids(["[S]", "[/S]"])
    for long, short, s, o in zip(full.input_ids, cut.input_ids, cut.subject_index, cut.object_index):
        assert len(short) <= 24 and short[s] == s_id and e_id in short
        assert tokenizer.convert_ids_to_tokens(short[o]) == "[O]" and "[/O]" in tokenizer.convert_ids_to_tokens(short)
        if len(long) <= 24:
            assert short == long
        else:  # an ordered subsequence of the full sentence
            it = iter(long)
            assert all(t in it for t in short)
