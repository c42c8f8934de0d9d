"""Fuzzed input files for every reader and the scorers' command lines, and fuzzed QA decoding (hypothesis).

Each reader gets random files: arbitrary bytes, random Unicode, and files built from the
format's own pieces (so the fuzz gets past the first line) with random damage: missing or extra
fields, huge tokens, wrong JSON types, offsets out of range, unbalanced brackets. The property:
the reader returns, or raises one of our errors (``SpanBertError``) with a one-line message; it
never raises anything else and never hangs (pytest-timeout bounds each test). Through the CLI,
the same files give exit status 0 or 2 and, on 2, exactly one ``error:`` line and no traceback.

Case counts (``max_examples`` below; hypothesis stops sooner only if it runs out of distinct
cases): 7 readers x 150 random files, the classification reader 40 (it goes through
`datasets`), 5 format-aware generators x 150, 4 scorer command lines x 60, and QA decoding
over 150 random window sets: up to 2,230 fuzzed inputs per run.
"""

from __future__ import annotations

import json

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanbert.core.errors import SpanBertError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CLI_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
huge = st.integers(1, 3).map(lambda n: "x" * (10_000 * n))
field = st.one_of(text, huge, st.sampled_from(["", "-", "(1", "1)", "(1)", "(2|(1)", "TRUE", "FALSE", "0", "-5",
                                               "99999999999", "nan", "<e1>", "</e2>", "B-PER", "I-LOC", "O"]))


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


def _only_our_errors(fn, path) -> None:
    try:
        result = fn(path)
        if hasattr(result, "__iter__") and not isinstance(result, (str, bytes, dict)):
            list(result)
    except SpanBertError as e:
        assert "\n" not in str(e), str(e)
        assert str(e), "empty error message"


def _readers():
    from spanbert.tasks.classify.data import read_classification
    from spanbert.tasks.coref.conll import read_conll as read_coref
    from spanbert.tasks.coref.gap import read_gap, read_gap_response
    from spanbert.tasks.ner.data import read_conll as read_ner_conll
    from spanbert.tasks.qa.data import read_qa
    from spanbert.tasks.relations.data import read_semeval
    from spanbert.core.sources import iter_jsonl

    return {
        "data.jsonl": lambda p: list(iter_jsonl(p)),
        "coref.conll": read_coref,
        "gap.tsv": read_gap,
        "gap_response.tsv": read_gap_response,
        "ner.conll": read_ner_conll,
        "squad.json": lambda p: read_qa(str(p)),
        "semeval.txt": read_semeval,
        "sst.tsv": lambda p: read_classification(str(p)),
    }


READERS = _readers()


@pytest.mark.parametrize("name", sorted(set(READERS) - {"sst.tsv"}))
@FUZZ
@given(content=st.one_of(st.binary(max_size=400), text))
def test_readers_on_random_bytes_and_text(tmp_path, name, content):
    _only_our_errors(READERS[name], _write(tmp_path, name, content))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=400), text))
def test_classification_reader_on_random_bytes_and_text(tmp_path, content):
    """Through `datasets`' TSV loader: slower per case, so fewer cases."""
    _only_our_errors(READERS["sst.tsv"], _write(tmp_path, "sst.tsv", content))


def _lines(fields_per_line: int):
    return st.lists(st.lists(field, min_size=max(0, fields_per_line - 2), max_size=fields_per_line + 2),
                    min_size=0, max_size=12)


@FUZZ
@given(rows=_lines(5), header=st.booleans(), end=st.booleans())
def test_coref_conll_built_from_its_pieces(tmp_path, rows, header, end):
    from spanbert.tasks.coref.conll import read_conll

    lines = (["#begin document (d); part 000"] if header else []) + ["\t".join(["d", "0", str(i), *r]) for i, r in enumerate(rows)]
    lines += ["#end document"] if end else []
    _only_our_errors(read_conll, _write(tmp_path, "fuzz.conll", "\n".join(lines) + "\n"))


@FUZZ
@given(rows=_lines(11))
def test_gap_tsv_built_from_its_pieces(tmp_path, rows):
    from spanbert.tasks.coref.gap import KEY_FIELDS, read_gap

    content = "\t".join(KEY_FIELDS) + "\n" + "\n".join("\t".join(r) for r in rows) + "\n"
    _only_our_errors(read_gap, _write(tmp_path, "fuzz.tsv", content))


json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False), text),
                          lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
                          max_leaves=20)


@FUZZ
@given(context=text, question=text, answer=text, start=st.one_of(st.integers(-5, 400), json_value),
       extra=st.dictionaries(st.sampled_from(["id", "is_impossible", "answers", "qas", "title"]), json_value, max_size=3))
def test_squad_json_built_from_its_pieces(tmp_path, context, question, answer, start, extra):
    from spanbert.tasks.qa.data import read_qa

    qa = {"id": "q1", "question": question, "answers": [{"text": answer, "answer_start": start}], **extra}
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}
    _only_our_errors(lambda p: read_qa(str(p)), _write(tmp_path, "fuzz.json", json.dumps(data)))


@FUZZ
@given(objects=st.lists(json_value, max_size=6))
def test_jsonl_of_random_json_values(tmp_path, objects):
    from spanbert.core.sources import iter_jsonl

    content = "\n".join(json.dumps(o) for o in objects) + "\n"
    _only_our_errors(lambda p: list(iter_jsonl(p)), _write(tmp_path, "fuzz.jsonl", content))


@FUZZ
@given(sentence=text, e1=text, e2=text, label=st.one_of(text, st.sampled_from(["Other", "Cause-Effect(e1,e2)"])),
       order=st.permutations(["<e1>", "</e1>", "<e2>", "</e2>"]))
def test_semeval_built_from_its_pieces(tmp_path, sentence, e1, e2, label, order):
    from spanbert.tasks.relations.data import read_semeval

    body = f"{order[0]}{e1}{order[1]} {sentence} {order[2]}{e2}{order[3]}"
    content = f'1\t"{body}"\n{label}\nComment:\n\n'
    _only_our_errors(read_semeval, _write(tmp_path, "fuzz.txt", content))


def _cli(args) -> tuple[int, str]:
    import contextlib
    import io

    from spanbert.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    return rc, err.getvalue()


def assert_clean_exit(rc: int, err: str) -> None:
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err


@pytest.mark.parametrize("command", [["score", "coref"], ["score", "gap"]])
@CLI_FUZZ
@given(key=st.one_of(st.binary(max_size=300), text), response=st.one_of(st.binary(max_size=300), text))
def test_scorer_command_lines_on_random_files(tmp_path, command, key, response):
    k, r = _write(tmp_path, "key.txt", key), _write(tmp_path, "response.txt", response)
    assert_clean_exit(*_cli([*command, "--key", str(k), "--response", str(r)]))


@CLI_FUZZ
@given(gold=st.one_of(st.binary(max_size=300), text), predictions=st.one_of(st.binary(max_size=300), json_value.map(json.dumps)))
def test_squad_scorer_command_line_on_random_files(tmp_path, gold, predictions):
    g, p = _write(tmp_path, "dev.json", gold), _write(tmp_path, "pred.json", predictions)
    assert_clean_exit(*_cli(["score", "squad", "--data", str(g), "--predictions", str(p)]))


@CLI_FUZZ
@given(gold=st.one_of(st.binary(max_size=300), text), predicted=st.one_of(st.binary(max_size=300), text))
def test_ner_scorer_command_line_on_random_files(tmp_path, gold, predicted):
    g, p = _write(tmp_path, "gold.conll", gold), _write(tmp_path, "pred.conll", predicted)
    assert_clean_exit(*_cli(["score", "ner", "--gold", str(g), "--predictions", str(p)]))


@st.composite
def qa_windows(draw):
    """A context and 1-3 windows over it: question/special tokens (offset -1) then context
    tokens with increasing, possibly empty or overlapping character spans, random logits
    (huge magnitudes included) and max-context masks."""
    context = draw(st.text(min_size=1, max_size=200))
    logits = st.floats(-1e30, 1e30, allow_nan=False)
    windows = []
    for _ in range(draw(st.integers(1, 3))):
        n_question = draw(st.integers(1, 5))
        cuts = sorted(draw(st.lists(st.integers(0, len(context)), min_size=2, max_size=40)))
        spans = [(a, b) for a, b in zip(cuts, cuts[1:])]
        off = np.array([(-1, -1)] * n_question + spans + [(-1, -1)], dtype=np.int64).reshape(-1, 2)
        n = len(off)
        windows.append((np.array(draw(st.lists(logits, min_size=n, max_size=n))),
                        np.array(draw(st.lists(logits, min_size=n, max_size=n))), off,
                        np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))))
    return context, windows


@FUZZ
@given(data=qa_windows(), allow_null=st.booleans(), max_tokens=st.integers(1, 30))
def test_qa_decoding_on_random_windows_and_logits(data, allow_null, max_tokens):
    """Whatever the logits and windows, the answer is a slice of the context it names, from
    context tokens only, and the n-best probabilities sum to 1."""
    from spanbert.tasks.qa.decoding import decode_example
    from spanbert.tasks.qa.settings import DecodeConfig

    context, windows = data
    s, e, off, best = zip(*windows)
    p = decode_example("q", context, s, e, off, best, DecodeConfig(allow_null=allow_null, max_answer_tokens=max_tokens))
    if p.start >= 0:
        assert 0 <= p.start <= p.end <= len(context) and p.text == context[p.start : p.end]
        assert any(((o[:, 0] == p.start) & (o[:, 0] >= 0)).any() for o in off)  # a context token starts it
    else:
        assert p.text == "" and p.end == -1
    for c in p.nbest:
        assert c.text == (context[c.start : c.end] if c.start >= 0 else "")
    if p.nbest:
        assert sum(c.probability for c in p.nbest) == pytest.approx(1.0)
