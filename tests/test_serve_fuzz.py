"""Fuzzed HTTP requests against every task endpoint (hypothesis), generated from the app's own
OpenAPI document.

For each ``POST`` path of ``app.openapi()``, its request body's JSON schema becomes a hypothesis
strategy (:func:`from_schema`): valid bodies (real sentences, random Unicode, ``[MASK]`` runs,
entity markers, empty and huge texts, loaded and unknown model names), the same bodies mutated
(a value of the wrong type, an extra key, a missing field, a long list, a lone UTF-16
surrogate written as a raw JSON escape such as ``"\\ud800"``), and bodies that are not such JSON
at all (random bytes, truncated or trailing-garbage JSON, scalars, deep nesting, invalid UTF-8,
an oversized body, other content types). They go to the tiny models of :mod:`tests.serve_models`
through FastAPI's test client, with small limits so that the token, item, character and body
limits are all reached, and requests run in both lanes.

The property: every answer is JSON; a 2xx answer has one result per item; any other is a 4xx
JSON object whose ``detail`` is one line of text, never a traceback; no 5xx at all (a 500
would be a bug, and nothing here should time out).

Case counts: 100 valid bodies, 80 mutated ones, 60 raw ones (``max_examples`` below), each one
request; about 10 s on two busy cores. ``pytest --hypothesis-show-statistics`` shows how often
each status came (about a third of the valid bodies reach a model and get 200).
"""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spanbert.serve.app import create_app
from spanbert.core.text import split_sentences

from .conftest import DATA
from .serve_models import build_all

SOTU = (DATA / "sotu_1790_washington.txt").read_text()
SENTENCES = [SOTU[a:b] for a, b in split_sentences(SOTU)][:20]
PIECES = ["[MASK]", "[MASK] [MASK]", "<e1>", "</e1>", "<e2>", "</e2>", "<e1>Ann</e1>", "<e2>Paris</e2>", "[CLS]", "[SEP]",
          "[PAD]", "[UNK]", "Ann", "met", "Bob", "in", "New York", ".", "?", "\u0000", "\u200b", "\ufeff", "e\u0301",
          "\U0001F642", "\u05e9\u05dc\u05d5\u05dd", "\u4e2d\u6587", "\t", "\n", " ", "&amp;", "\\", "\"", "'", "{}", "null"]
LIMITS = dict(max_text_chars=3000, max_items=8, max_request_tokens=800, max_body_bytes=100_000,
              short_request_tokens=64, max_batch_tokens=256, max_wait_ms=0, request_timeout=60.0, device="cpu")
SURROGATE = "@@SURROGATE@@"  # replaced by a raw JSON escape after serialising
FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

texts = st.one_of(
    st.sampled_from(SENTENCES),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=80),  # random Unicode, the empty string included
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=12).map(" ".join),
    st.lists(st.sampled_from(SENTENCES), min_size=2, max_size=12).map(" ".join),  # a few hundred tokens: the long lane
    st.integers(1, 4).map(lambda n: "word " * (200 * n)),  # 1,000 to 4,000 characters: over the character limit
)
any_json = st.recursive(st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | texts,
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=6)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folders = build_all(tmp_path_factory.mktemp("fuzz"))
    with TestClient(create_app(list(folders.values()), **LIMITS)) as c:
        yield c


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.app.openapi()


@pytest.fixture(scope="module")
def model_names(client) -> dict[str, str]:
    """The loaded models' names by task."""
    return {m["task"]: m["name"] for m in client.get("/v1/models").json()["models"]}


def names_for(path: str, names: dict[str, str]) -> list[str]:
    """Model names to draw for ``path``: its task's own (most of the time) and every other one (404)."""
    own = names[path.rsplit("/", 1)[-1]]
    return [own] * 6 + sorted(names.values())


# -- strategies from the OpenAPI document -----------------------------------------------------

def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def from_schema(schema: dict, spec: dict, names: list[str], key: str = "") -> st.SearchStrategy:
    """Values valid for a (pydantic-generated) JSON schema: objects, arrays (at most 4 long),
    strings (``texts``; a loaded or unknown name for a ``model`` field), integers within their
    bounds, numbers, booleans, null, ``anyOf``."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        return st.one_of(*(from_schema(s, spec, names, key) for s in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: from_schema(v, spec, names, k) for k, v in props.items() if k in required},
                                     optional={k: from_schema(v, spec, names, k) for k, v in props.items() if k not in required})
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(from_schema(schema["items"], spec, names), min_size=low, max_size=max(low, min(schema.get("maxItems", 4), 4)))
    if kind == "string":
        # a model name: mostly loaded ones (see names_for), sometimes anything
        return st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(max_size=10)) if key == "model" else texts
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.integers(None if low is None else int(low), None if high is None else int(high))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise AssertionError(f"a schema this fuzzer does not know: {schema}")


def post_paths(spec: dict) -> list[str]:
    return sorted(p for p, ops in spec["paths"].items() if "post" in ops)


def body_schema(spec: dict, path: str) -> dict:
    return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def _places(value, at: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value, the root included."""
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _places(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _places(v, (*at, i))
    return out


def _get(value, at: tuple):
    for k in at:
        value = value[k]
    return value


@st.composite
def mutated(draw, body: dict) -> str:
    """``body`` with one random damage, serialised (a lone surrogate is a raw JSON escape)."""
    body = copy.deepcopy(body)
    kind = draw(st.sampled_from(["wrong type", "extra key", "missing key", "long list", "surrogate", "surrogate pair"]))
    places = _places(body)
    if kind == "wrong type":
        at = draw(st.sampled_from(places[1:]))
        _get(body, at[:-1])[at[-1]] = draw(any_json)
    elif kind == "extra key":
        objects = [p for p in places if isinstance(_get(body, p), dict)]
        at = draw(st.sampled_from(objects))
        _get(body, at)[draw(st.sampled_from(["contxt", "", "items", "model", SURROGATE, "top_k"]) | texts)] = draw(any_json)
    elif kind == "missing key":
        objects = [p for p in places if isinstance(_get(body, p), dict) and _get(body, p)]
        at = draw(st.sampled_from(objects))
        del _get(body, at)[draw(st.sampled_from(sorted(_get(body, at))))]
    elif kind == "long list":
        lists = [p for p in places if isinstance(_get(body, p), list) and _get(body, p)]
        at = draw(st.sampled_from(lists))
        target = _get(body, at)
        target[:] = (target * 40)[:40]
    else:  # a string value gets a lone surrogate (or a valid pair) as a raw escape
        strings = [p for p in places if isinstance(_get(body, p), str)]
        at = draw(st.sampled_from(strings))
        value = _get(body, at)
        cut = draw(st.integers(0, len(value)))
        _get(body, at[:-1])[at[-1]] = value[:cut] + SURROGATE + value[cut:]
    escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udc00x", "\\ud83d"])) if kind != "surrogate pair" else "\\ud83d\\ude42"
    return json.dumps(body).replace(SURROGATE, escape)


def raw_bodies(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Bytes that are not the JSON the endpoint wants, or not JSON at all."""
    as_bytes = valid.map(lambda b: json.dumps(b).encode())
    return st.one_of(
        st.binary(max_size=200),
        st.tuples(as_bytes, st.floats(0, 1)).map(lambda x: x[0][: int(len(x[0]) * x[1])]),  # truncated
        st.tuples(as_bytes, st.sampled_from([b"x", b"}", b",", b"\x00", b" {}", b"\xff"])).map(lambda x: x[0] + x[1]),
        st.sampled_from([b"", b"[]", b"null", b"1", b'"items"', b"{}", b"NaN", b"Infinity", b"-0", b"1e999",
                         b'{"items": NaN}', b'{"items": [{"text": NaN}]}', b'{"items": [{"text": "a"}], "top_k": 1e999}',
                         b'{"items": [{"text": "\xff\xfe bad bytes"}]}', b'{"items": [{"text": "a\\u0000b"}]}',
                         b'{"items": [{"text": "x"}], "items": []}', b"[" * 50_000 + b"]" * 50_000,
                         b'{"items": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", b'{"items": [{"text": "' + b"w " * 60_000 + b'"}]}']),
    )


# -- the property -----------------------------------------------------------------------------

def check(r, sent: object = None) -> None:
    """A 2xx JSON answer with one result per item, or a 4xx JSON object with a one-line ``detail``."""
    event(f"status {r.status_code}")  # pytest --hypothesis-show-statistics lists how often each came
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:300])
    data = r.json()
    assert isinstance(data, dict), r.text[:300]
    if 200 <= r.status_code < 300:
        assert set(data) == {"model", "results"} and isinstance(data["results"], list)
        if isinstance(sent, dict):
            assert len(data["results"]) == len(sent["items"])
        return
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    detail = data.get("detail")
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in r.text, r.text[:500]


@settings(max_examples=100, **FUZZ)
@given(data=st.data())
def test_valid_bodies(client, spec, model_names, data):
    path = data.draw(st.sampled_from(post_paths(spec)), label="path")
    body = data.draw(from_schema(body_schema(spec, path), spec, names_for(path, model_names)), label="body")
    check(client.post(path, json=body), body)


@settings(max_examples=80, **FUZZ)
@given(data=st.data())
def test_mutated_bodies(client, spec, model_names, data):
    path = data.draw(st.sampled_from(post_paths(spec)), label="path")
    body = data.draw(from_schema(body_schema(spec, path), spec, names_for(path, model_names)), label="body")
    raw = data.draw(mutated(body), label="raw")
    check(client.post(path, content=raw.encode(), headers={"content-type": "application/json"}))


@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_raw_bodies(client, spec, model_names, data):
    path = data.draw(st.sampled_from(post_paths(spec)), label="path")
    raw = data.draw(raw_bodies(from_schema(body_schema(spec, path), spec, names_for(path, model_names))), label="raw")
    content_type = data.draw(st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                              "application/x-www-form-urlencoded", None]), label="content-type")
    r = client.post(path, content=raw, headers={"content-type": content_type} if content_type else {})
    check(r)


def test_the_fuzzer_reaches_the_models_and_every_limit(client, spec, model_names):
    """A check of the generators rather than the server: each kind of answer the fuzz should
    provoke is provoked by a body of the kind it draws."""
    ok = client.post("/v1/entities", json={"items": [{"text": " ".join(SENTENCES[:12])}]})  # long lane
    assert ok.status_code == 200
    assert client.post("/v1/entities", json={"items": [{"text": "word " * 700}]}).status_code == 422  # characters
    assert client.post("/v1/entities", json={"items": [{"text": " ".join(SENTENCES[:12])}] * 2}).status_code == 413  # tokens
    assert client.post("/v1/entities", json={"items": [{"text": "a"}] * 9}).status_code == 413  # items
    r = client.post("/v1/entities", content=b'{"items": [{"text": "a\\ud800"}]}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "lone surrogate U+D800" in r.json()["detail"]
    assert set(post_paths(spec)) == {f"/v1/{t}" for t in ("qa", "fill", "classify", "relations", "entities", "coref", "summarize")}
    assert sorted(model_names) == sorted(t for t in ("qa", "fill", "classify", "relations", "entities", "coref", "summarize"))
