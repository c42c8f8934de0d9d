"""Relation readers on real SemEval-2010 Task 8 blocks and TACRED-style records; bad input is one
located error."""

from __future__ import annotations

import json
import re

import pytest

from spanbert.core.errors import CorpusError
from spanbert.tasks.relations.data import (
    RelationExample,
    check_labels,
    entity_types,
    guess_no_relation_label,
    is_semeval_labels,
    label_set,
    parse_marked_sentence,
    read_dataset_folder,
    read_marked_sentences,
    read_relations,
    read_semeval,
    read_tacred,
    to_dataset,
)

from .conftest import DATA

REL = DATA / "relations"
TRAIN = REL / "semeval_train_sample.txt"
TEST = REL / "semeval_test_sample.txt"
TACRED = REL / "tacred_style_sample.json"


def test_semeval_sample_blocks():
    examples = read_semeval(TRAIN)
    assert len(examples) == 24 and [e.id for e in examples] == [str(i) for i in range(1, 25)]
    first = examples[0]
    assert first.label == "Component-Whole(e2,e1)" and first.subject_type is None and first.object_type is None
    assert first.subject_text() == "configuration" and first.object_text() == "elements"
    assert first.where.endswith("semeval_train_sample.txt:2")  # the label line
    nine = examples[8]  # <e2>platinum crucible</e2>: a two-word entity
    assert nine.object_text() == "platinum crucible" and nine.object_span[1] - nine.object_span[0] == 1
    assert nine.label == "Content-Container(e1,e2)"
    # a sentence that starts with its entity and a quote-free sentence round-trip through the markers
    eight = examples[7]
    assert eight.marked_text() == "<e1>People</e1> have been moving back into <e2>downtown</e2> ."  # words joined by spaces
    test = read_semeval(TEST)
    assert len(test) == 16 and test[0].id == "8001" and test[0].label == "Message-Topic(e1,e2)"
    assert is_semeval_labels(label_set(examples + test))


def test_marker_parsing_details():
    words, s, o, st, ot = parse_marked_sentence("a duel of doves<e2>moles</e2> and <e1>x y</e1>.", "w")
    assert words == ("a", "duel", "of", "doves", "moles", "and", "x", "y", ".")  # a marker ends a word
    assert s == (6, 7) and o == (4, 4) and st is None and ot is None
    words, s, o, st, ot = parse_marked_sentence("<e1:PERSON>Bill Gates</e1> founded <e2:ORGANIZATION>Microsoft</e2>", "w")
    assert (s, o, st, ot) == ((0, 1), (3, 3), "PERSON", "ORGANIZATION")


@pytest.mark.parametrize("sentence, message", [
    ("The <e1>author wrote the <e2>book</e2>.", r"<e2> opens inside <e1>"),
    ("The <e1>author</e1> wrote the <e2>book.", r"<e2> is never closed \(missing </e2>\)"),
    ("The <e1>author</e1> wrote the book.", r"marker <e2>..</e2> missing"),
    ("The <e1>a <e2>b</e1> c</e2>.", r"<e2> opens inside <e1>"),  # crossing
    ("The <e1>a</e1> <e1>b</e1> <e2>c</e2>", r"marker <e1> occurs twice"),
    ("The </e1>a<e1> <e2>c</e2>", r"</e1> without an opening <e1>"),
    ("The <e1></e1> <e2>c</e2>", r"<e1> encloses no word"),
])
def test_bad_markers_name_the_place(sentence, message):
    with pytest.raises(CorpusError, match=r"^file\.txt:7: " + message):
        parse_marked_sentence(sentence, "file.txt:7")


def _block_file(tmp_path, sentence_line: str, label: str = "Other", comment: str = "Comment:") -> str:
    good = TRAIN.read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"  # block 1, lines 1-4
    path = tmp_path / "bad.txt"
    path.write_bytes(good + f"{sentence_line}\r\n{label}\r\n{comment}\r\n\r\n".encode())
    return str(path)


@pytest.mark.parametrize("line, label, message", [
    ('77\t"The <e1>author</e1> wrote the <e2>book."', "Other", r"bad\.txt:5: <e2> is never closed"),
    ('77\t"The <e1>author <e2>wrote</e2></e1>."', "Other", r"bad\.txt:5: <e2> opens inside <e1>"),
    ('77\t"The <e1>author</e1> wrote the <e2>book</e2>."', "Cause Effect(e1,e2)", r"bad\.txt:6: malformed relation label"),
    ('77\t"The <e1>author</e1> wrote the <e2>book</e2>."', "Comment: none", r"bad\.txt:6: the relation label of id 77 is missing"),
    ('1\t"The <e1>author</e1> wrote the <e2>book</e2>."', "Other", r"bad\.txt:5: id 1 already used on line 1"),
    ('The <e1>author</e1> wrote the <e2>book</e2>.', "Other", r"bad\.txt:5: expected 'id<TAB>\"sentence\"'"),
])
def test_bad_semeval_blocks(tmp_path, line, label, message):
    with pytest.raises(CorpusError, match=message) as err:
        read_semeval(_block_file(tmp_path, line, label))
    assert "\n" not in str(err.value)


def test_label_not_in_the_label_set_names_file_and_line():
    examples = read_semeval(TEST)
    labels = {label: i for i, label in enumerate(label_set(read_semeval(TRAIN)))}
    with pytest.raises(CorpusError, match=r"semeval_test_sample\.txt:\d+: label '.*' is not in the model's label set"):
        check_labels(examples, labels)


def test_marked_sentences_for_prediction(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("The <e1>author</e1> wrote the <e2>book</e2>.\n\n8001\t\"The most common <e1>audits</e1> were about <e2>waste</e2>.\"\n")
    examples = read_marked_sentences(path)
    assert [e.id for e in examples] == ["1", "8001"] and all(e.label is None for e in examples)
    assert examples[1].subject_text() == "audits"
    # a full SemEval file read for prediction: labels dropped
    unlabeled = read_relations(TEST, labeled=False)
    assert len(unlabeled) == 16 and unlabeled[0].label is None and unlabeled[0].id == "8001"
    path.write_text("fine <e1>a</e1> <e2>b</e2>\nno markers here\n")
    with pytest.raises(CorpusError, match=r"in\.txt:2: marker <e1>\.\.</e1> missing"):
        read_marked_sentences(path)


def test_tacred_style_json_jsonl_and_datasets(tmp_path):
    examples = read_tacred(TACRED)
    assert len(examples) == 10
    assoc = next(e for e in examples if e.id == "semeval-train-5")
    assert assoc.subject_text() == "association" and assoc.object_text() == "student" and assoc.object_span < assoc.subject_span
    assert (assoc.subject_type, assoc.object_type, assoc.label) == ("ORGANIZATION", "PERSON", "org:members")
    assert guess_no_relation_label(label_set(examples)) == "no_relation"
    assert entity_types(examples) == (["ARTIFACT", "MISC", "ORGANIZATION", "PERSON"], ["ARTIFACT", "LOCATION", "MISC", "PERSON"])
    assert not is_semeval_labels(label_set(examples))
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in json.loads(TACRED.read_text())))
    assert read_relations(jsonl) == [RelationExample(**{**e.__dict__, "where": f"{jsonl}:{i + 1}"}) for i, e in enumerate(examples)]
    ds = to_dataset(examples)
    assert ds.column_names == ["id", "token", "subj_start", "subj_end", "obj_start", "obj_end", "subj_type", "obj_type", "relation"]
    ds.save_to_disk(str(tmp_path / "saved"))
    back = read_relations(tmp_path / "saved")
    assert [(e.id, e.words, e.subject_span, e.object_span, e.subject_type, e.label) for e in back] == \
        [(e.id, e.words, e.subject_span, e.object_span, e.subject_type, e.label) for e in examples]
    semeval_ds = to_dataset(read_semeval(TRAIN))  # SemEval examples convert too (types None)
    assert semeval_ds[0]["subj_type"] is None and semeval_ds[0]["relation"] == "Component-Whole(e2,e1)"
    from datasets import DatasetDict

    DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    assert len(read_dataset_folder(tmp_path / "dd", "train")) == 10
    with pytest.raises(CorpusError, match=r"no split 'test'"):
        read_dataset_folder(tmp_path / "dd", "test")


@pytest.mark.parametrize("change, message", [
    ({"subj_end": 99}, r"item 1: field 'subj_start'/'subj_end' = 1\.\.99 outside the 10 tokens"),
    ({"obj_start": "8"}, r"item 1: field 'obj_start' must be an integer"),
    ({"token": "a b"}, r"item 1: field 'token' must be a non-empty list of strings"),
    ({"relation": ""}, r"item 1: field 'relation' missing or empty"),
    ({"obj_start": 1, "obj_end": 2}, r"item 1: subject \(1, 1\) and object \(1, 2\) overlap"),
    ({"subj_type": "TWO WORDS"}, r"item 1: field 'subj_type' must be a type name without spaces"),
])
def test_tacred_field_errors(tmp_path, change, message):
    rows = json.loads(TACRED.read_text())
    rows[1].update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(CorpusError, match=r"bad\.json: " + message):
        read_tacred(path)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(CorpusError, match=re.escape(f"{jsonl}:2: ")):
        read_tacred(jsonl)


def test_bad_json_names_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": 1}\n{oops\n')
    with pytest.raises(CorpusError, match=r"x\.jsonl:1: field 'token'"):
        read_tacred(path)
    path.write_text(json.dumps(json.loads(TACRED.read_text())[0]) + "\n{oops\n")
    with pytest.raises(CorpusError, match=r"x\.jsonl:2: not valid JSON"):
        read_tacred(path)


def test_real_files(shared_data):
    root = shared_data / "semeval2010_task8"
    train, test = read_semeval(root / "TRAIN_FILE.TXT"), read_semeval(root / "TEST_FILE_FULL.TXT")
    assert (len(train), len(test)) == (8000, 2717)
    assert len(label_set(train)) == 19 and label_set(train) == label_set(test) and is_semeval_labels(label_set(train))
    # TEST_FILE_KEY.TXT carries the same labels without their direction, in the same order
    key = [line.split("\t") for line in (root / "TEST_FILE_KEY.TXT").read_text().splitlines()]
    assert [(e.id, re.sub(r"\(e[12],e[12]\)$", "", e.label)) for e in test] == [(i, lab) for i, lab in key]
    assert all(e.subject_span[1] < e.object_span[0] for e in train + test)  # e1 always precedes e2 here


def test_split_semeval_file_keeps_every_block_once(tmp_path):
    """The seeded split puts the asked number of blocks in dev, the rest in train, each read back
    unchanged (ids, words, entities, labels), and the same seed gives the same split."""
    from pathlib import Path

    from spanbert.tasks.relations.data import read_semeval, split_semeval_file

    source = Path(__file__).parent / "data" / "relations" / "semeval_train_sample.txt"
    original = read_semeval(source)
    assert split_semeval_file(source, 5, 3, tmp_path / "a") == (len(original) - 5, 5)
    train, dev = read_semeval(tmp_path / "a" / "train.txt"), read_semeval(tmp_path / "a" / "dev.txt")
    key = lambda e: (e.id, e.words, e.subject_span, e.object_span, e.label)  # noqa: E731
    assert sorted(map(key, train + dev)) == sorted(map(key, original)) and len(dev) == 5
    assert [e.id for e in train] == [e.id for e in original if e.id not in {d.id for d in dev}]  # file order kept
    split_semeval_file(source, 5, 3, tmp_path / "b")
    assert (tmp_path / "b" / "dev.txt").read_bytes() == (tmp_path / "a" / "dev.txt").read_bytes()
    import pytest

    from spanbert.core.errors import CorpusError
    with pytest.raises(CorpusError, match="cannot put"):
        split_semeval_file(source, len(original), 0, tmp_path / "c")
