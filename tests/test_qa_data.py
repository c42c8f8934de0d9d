"""QA readers: SQuAD JSON, MRQA JSONL, datasets rows; offsets checked, schema errors named."""

from __future__ import annotations

import gzip
import json

import pytest

from spanbert.tasks.qa.data import QADataError, examples_from_rows, read_qa, split_squad_by_article

from .conftest import DATA

SAMPLE_V1 = DATA / "squad" / "xquad_en_sample.json"
SAMPLE_V2 = DATA / "squad" / "cs224n_dev_v2_sample.json"


def _squad(qas, context="Paris is the capital of France."):
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_reads_the_committed_samples():
    v1, r1 = read_qa(SAMPLE_V1)
    assert r1.questions == len(v1) == 34 and r1.bad_offsets == 0
    assert all(ex.context[a.start : a.end] == a.text for ex in v1 for a in ex.answers)
    v2, r2 = read_qa(SAMPLE_V2)
    assert len(v2) == 21 and r2.unanswerable == 11
    assert all(ex.answers == () for ex in v2 if ex.is_impossible)


def test_a_wrong_answer_start_is_dropped_counted_and_logged(tmp_path, caplog):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_squad([
        {"id": "ok", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "off", "question": "Country?", "answers": [{"text": "France", "answer_start": 3},
                                                          {"text": "France", "answer_start": 24}]},
        {"id": "gone", "question": "What?", "answers": [{"text": "Rome", "answer_start": 0}]},
    ])))
    examples, report = read_qa(path)
    assert [len(ex.answers) for ex in examples] == [1, 1, 0]
    assert report.bad_offsets == 2 and report.without_valid_answer == 1
    assert report.bad_offset_ids == ["off", "gone"]
    assert "dropped 2 answers" in caplog.text and "'off'" in caplog.text


def test_gzip_and_mrqa_jsonl(tmp_path):
    gz = tmp_path / "d.json.gz"
    with gzip.open(gz, "wt") as f:
        json.dump(_squad([{"id": "a", "question": "Capital?", "answers": [{"text": "Paris", "answer_start": 0}]}]), f)
    assert read_qa(gz)[0][0].answers[0].text == "Paris"
    mrqa = tmp_path / "m.jsonl"
    mrqa.write_text("\n".join([
        json.dumps({"header": {"dataset": "X"}}),
        json.dumps({"context": "Paris is the capital of France.", "qas": [
            {"qid": "m1", "question": "Capital?", "answers": ["Paris"],
             "detected_answers": [{"text": "Paris", "char_spans": [[0, 4]], "token_spans": [[0, 0]]}]}]}),
    ]))
    (ex,), report = read_qa(mrqa)
    assert (ex.id, ex.answers[0].text, ex.answers[0].start) == ("m1", "Paris", 0)


def test_datasets_rows_and_saved_dataset(tmp_path):
    import datasets

    rows = [{"id": "r1", "question": "Capital?", "context": "Paris is the capital.", "answers": {"text": ["Paris"], "answer_start": [0]}},
            {"id": "r2", "question": "Moon?", "context": "Paris is the capital.", "answers": {"text": [], "answer_start": []}}]
    examples, report = examples_from_rows(rows)
    assert examples[0].answers[0].end == 5 and examples[1].is_impossible
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    examples, _ = read_qa(tmp_path / "ds")
    assert [ex.id for ex in examples] == ["r1", "r2"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data": [', r"d\.json:1:\d+: not valid JSON"),
        ('{"version": "1.1"}', "not a SQuAD file"),
        (json.dumps(_squad([{"question": "Q?", "answers": []}])), "question 0 has no 'id'"),
        (json.dumps(_squad([{"id": "x9", "answers": []}])), "question 'x9' has no 'question'"),
        (json.dumps(_squad([{"id": "x9", "question": "Q?", "answers": "Paris"}])), "question 'x9': 'answers' must be"),
        (json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}), "article 0 paragraph 0 needs a 'context'"),
    ],
)
def test_schema_errors_name_the_file_and_question(tmp_path, content, message):
    path = tmp_path / "d.json"
    path.write_text(content)
    with pytest.raises(QADataError, match=message) as e:
        read_qa(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file():
    with pytest.raises(QADataError, match="no such file"):
        read_qa("/nonexistent/dev.json")


def test_split_by_article_keeps_articles_whole(shared_data):
    from spanbert.tasks.qa.data import load_json_file

    data = load_json_file(shared_data / "squad_v2.0" / "cs224n-dev-v2.0.json.gz")
    train, dev = split_squad_by_article(data, 4, seed=0)
    assert len(train["data"]) + len(dev["data"]) == len(data["data"]) and len(dev["data"]) == 4
    assert not {a["title"] for a in train["data"]} & {a["title"] for a in dev["data"]}
    assert split_squad_by_article(data, 4, seed=0) == (train, dev)


def test_contexts_become_a_pretraining_corpus(tmp_path):
    from spanbert.pretrain.corpus import iter_documents
    from spanbert.tasks.qa.data import main

    out = tmp_path / "contexts.jsonl"
    main(["contexts", str(SAMPLE_V1), str(out)])
    examples, _ = read_qa(SAMPLE_V1)
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["text"] for d in docs] == list(dict.fromkeys(ex.context for ex in examples))
    assert len(docs) == 3
    assert list(iter_documents([out])) == [d["text"] for d in docs]  # what `spanbert pretrain --corpus` reads
