"""The HTTP API through FastAPI's test client, on tiny saved models of every task: each endpoint
answers what the task's Python API answers for the same input, and every error path gives its
status code with a one-line ``detail``."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.serve import app as app_module
from spanbert.serve.app import create_app
from spanbert.serve.cli import is_loopback, serve_command
from spanbert.serve.tasks import detect_task
from spanbert.core.text import split_sentences

from .conftest import DATA
from .serve_models import CLASSIFY_LABELS, ENTITY_TYPES, RELATION_LABELS, build_all, build_qa

SOTU = (DATA / "sotu_1790_washington.txt").read_text()
_SENTENCES = [SOTU[a:b] for a, b in split_sentences(SOTU)]
PARAGRAPHS = [" ".join(_SENTENCES[i : i + 4]) for i in range(0, 16, 4)]  # four real paragraphs of four sentences
CONTEXT = PARAGRAPHS[0]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    out = build_all(root)
    out["other-qa"] = build_qa(root / "tiny-bert", root / "other-qa", seed=11)  # a second QA model, other weights
    return out


@pytest.fixture(scope="module")
def client(folders):
    app = create_app([folders[t] for t in ("qa", "fill", "classify", "relations", "entities", "coref", "summarize", "other-qa")],
                     device="cpu")
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def limited(folders):
    """A QA-only server with small limits."""
    with TestClient(create_app([folders["qa"]], device="cpu", max_body_bytes=2000, max_text_chars=300, max_items=3)) as c:
        yield c


def post(client, path, body, status=200):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    return r.json()


# -- server endpoints -------------------------------------------------------------------------

def test_health_ready_models_and_openapi(client, folders):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    models = client.get("/v1/models")
    assert models.status_code == 200
    listed = {m["name"]: m for m in models.json()["models"]}
    assert set(listed) == {p.name for p in folders.values()} - {"tiny-bert"}
    qa = listed["tiny-qa"]
    assert {k: v for k, v in qa.items() if k != "batching"} == {"name": "tiny-qa", "task": "qa"}  # no labels key
    assert set(qa["batching"]) == {"requests", "items", "batches", "calls", "split_batches", "dropped"}
    before = qa["batching"]
    item = {"question": "Who spoke?", "context": "The president spoke to Congress."}
    assert client.post("/v1/qa", json={"items": [item, item]}).status_code == 200
    after = {m["name"]: m for m in client.get("/v1/models").json()["models"]}["tiny-qa"]["batching"]
    assert (after["requests"] - before["requests"], after["items"] - before["items"]) == (1, 2)
    assert listed["tiny-classify"]["labels"] == CLASSIFY_LABELS
    assert listed["tiny-relations"]["labels"] == RELATION_LABELS
    assert listed["tiny-entities"]["labels"] == ENTITY_TYPES
    assert {m["task"] for m in listed.values()} == {"qa", "fill", "classify", "relations", "entities", "coref", "summarize"}
    root = str(folders["qa"].parent)
    assert root not in models.text and root not in ready.text  # names only, never paths
    spec = client.get("/openapi.json").json()
    for path in ("/healthz", "/readyz", "/v1/models", "/v1/qa", "/v1/fill", "/v1/classify", "/v1/relations",
                 "/v1/entities", "/v1/coref", "/v1/summarize"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200


def test_index_page_and_placeholder(client, monkeypatch, tmp_path):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = app_module.STATIC_DIR / "index.html"
    if page.is_file():
        assert r.text == page.read_text()
    monkeypatch.setattr(app_module, "STATIC_DIR", tmp_path)  # no page installed: a placeholder that links the docs
    r = client.get("/")
    assert r.status_code == 200 and "/docs" in r.text


# -- every task equals its Python API ---------------------------------------------------------

def test_qa_equals_python_api(client, folders):
    from spanbert.tasks.qa.inference import QuestionAnswerer

    items = [{"question": "What did the Congress make provision for?", "context": CONTEXT},
             {"question": "Who is addressed?", "context": PARAGRAPHS[1]}]
    out = post(client, "/v1/qa", {"items": items})
    assert out["model"] == "tiny-qa"
    expected = QuestionAnswerer(folders["qa"], device="cpu").answer([i["question"] for i in items], [i["context"] for i in items])
    assert len(out["results"]) == 2
    for item, got, p in zip(items, out["results"], expected):
        assert (got["answer"], got["start"], got["end"], got["score"]) == (p.text, p.start, p.end, p.score)
        assert got["no_answer"] is (p.text == "")
        assert item["context"][got["start"] : got["end"]] == got["answer"]  # character offsets into the context
        assert got["probability"] == next(c.probability for c in p.nbest if c.text == p.text)


def test_model_is_chosen_by_name(client, folders):
    from spanbert.tasks.qa.inference import QuestionAnswerer

    items = [{"question": "Who is addressed?", "context": PARAGRAPHS[1]}]
    out = post(client, "/v1/qa", {"items": items, "model": "other-qa"})
    assert out["model"] == "other-qa"
    (p,) = QuestionAnswerer(folders["other-qa"], device="cpu").answer(items[0]["question"], items[0]["context"])
    assert (out["results"][0]["answer"], out["results"][0]["score"]) == (p.text, p.score)
    assert post(client, "/v1/qa", {"items": items, "model": "tiny-qa"})["model"] == "tiny-qa"


def test_fill_equals_python_api(client, folders):
    from spanbert.pretrain.fill import SpanFiller

    texts = ["The [MASK] [MASK] of the Senate met in [MASK] York.", "I feel much [MASK] in the public debt."]
    out = post(client, "/v1/fill", {"items": [{"text": t} for t in texts], "top_k": 3})
    expected = SpanFiller.from_pretrained(folders["fill"]).fill(texts, top_k=3)
    for text, got, want in zip(texts, out["results"], expected):
        assert got["text"] == want.filled_text["joint"] and got["filled"] == want.filled_text
        assert len(got["spans"]) == len(want.spans)
        for span, ws in zip(got["spans"], want.spans):
            assert (span["token_start"], span["token_end"]) == (ws.start, ws.end)
            masks = text[span["start"] : span["end"]].split()  # character offsets cover the run's [MASK] tokens
            assert masks == ["[MASK]"] * (ws.end - ws.start + 1)
            assert set(span["predictions"]) == {"mlm", "sbo", "joint", "iterative"}
            for head, hp in ws.predictions.items():
                g = span["predictions"][head]
                assert (g["text"], g["tokens"], g["probabilities"]) == (hp.text, hp.tokens, hp.probabilities)
                assert g["top_k"] == [[{"token": t, "probability": q} for t, q in pos] for pos in hp.top_k]
                assert len(g["top_k"]) == (0 if head == "iterative" else ws.end - ws.start + 1)
    assert [len(p) for p in out["results"][0]["spans"][0]["predictions"]["mlm"]["top_k"]] == [3, 3]


def test_classify_equals_python_api(client, folders):
    from spanbert.tasks.classify.inference import TextClassifier

    items = [{"text": PARAGRAPHS[0]}, {"text": "A short one.", "text_pair": "With a pair."}, {"text": PARAGRAPHS[2]}]
    out = post(client, "/v1/classify", {"items": items})
    clf = TextClassifier(folders["classify"], device="cpu")
    single = clf.classify([PARAGRAPHS[0], PARAGRAPHS[2]])
    (pair,) = clf.classify(["A short one."], ["With a pair."])
    for got, want in zip(out["results"], [single[0], pair, single[1]]):
        assert got == {"label": want.label, "score": want.score, "probabilities": want.probabilities}
        assert set(got["probabilities"]) == set(CLASSIFY_LABELS)


def test_relations_equals_python_api(client, folders):
    from spanbert.tasks.relations.inference import RelationClassifier

    texts = ["The <e1>author</e1> wrote the <e2>book</e2>.", "A <e2>flock</e2> of <e1>birds</e1> flew over the Senate."]
    out = post(client, "/v1/relations", {"items": [{"text": t} for t in texts]})
    for got, want in zip(out["results"], RelationClassifier(folders["relations"], device="cpu").predict(texts)):
        assert got == {"label": want.label, "score": want.score, "probabilities": want.probabilities}


def test_entities_equals_python_api(client, folders):
    from spanbert.tasks.ner.inference import EntityRecognizer

    texts = PARAGRAPHS[:2]
    out = post(client, "/v1/entities", {"items": [{"text": t} for t in texts]})
    expected = EntityRecognizer(folders["entities"], device="cpu").predict(texts)
    assert sum(len(e) for e in expected) > 0  # random weights still find something to compare
    for text, got, want in zip(texts, out["results"], expected):
        assert got["entities"] == [{"text": e.text, "label": e.label, "start": e.start_char, "end": e.end_char, "score": e.score}
                                   for e in want]
        assert all(text[e["start"] : e["end"]] == e["text"] for e in got["entities"])


def test_coref_equals_python_api(client, folders):
    from spanbert.tasks.coref.inference import CorefResolver

    texts = PARAGRAPHS[:2]
    out = post(client, "/v1/coref", {"items": [{"text": t} for t in texts]})
    expected = CorefResolver(folders["coref"], device="cpu").resolve(texts)
    assert sum(len(c) for c in expected) > 0
    for text, got, want in zip(texts, out["results"], expected):
        assert got["clusters"] == [[{"text": m.text, "start": m.start_char, "end": m.end_char} for m in c] for c in want]
        assert all(text[m["start"] : m["end"]] == m["text"] for c in got["clusters"] for m in c)


def test_summarize_equals_python_api(client, folders):
    from spanbert.tasks.summarize.inference import ExtractiveSummarizer

    texts = PARAGRAPHS[:3]
    summarizer = ExtractiveSummarizer(folders["summarize"], device="cpu")
    for options in ({}, {"max_sentences": 1}):
        out = post(client, "/v1/summarize", {"items": [{"text": t} for t in texts], **options})
        for text, got, want in zip(texts, out["results"], summarizer.summarize(texts, **options)):
            assert got["summary"] == want.text
            assert got["sentences"] == [{"index": s.index, "start": s.start, "end": s.end, "score": s.score, "text": s.text}
                                        for s in want.sentences]
            assert all(text[s["start"] : s["end"]] == s["text"] for s in got["sentences"])
        if options:
            assert all(len(r["sentences"]) == 1 for r in out["results"])


def test_concurrent_requests_share_model_calls(folders):
    """Eight clients at once: their texts are summarised in fewer calls than requests, and each
    gets the summary of its own text."""
    app = create_app([folders["summarize"]], device="cpu", max_wait_ms=300)
    texts = [f"Report number {i}. The Senate met in New York. The House debated the public debt for {i} days." for i in range(8)]
    results: dict[int, dict] = {}
    with TestClient(app) as c:
        def ask(i):
            response = c.post("/v1/summarize", json={"items": [{"text": texts[i]}]})
            results[i] = {"status": response.status_code, **response.json()}

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = app.state.server.models["summarize"][0].batcher.stats
    assert stats.requests == 8 and stats.batches < 8
    assert sorted(results) == list(range(8)) and all(out["status"] == 200 for out in results.values())
    for i, out in results.items():
        (r,) = out["results"]
        assert all(texts[i][s["start"] : s["end"]] == s["text"] for s in r["sentences"]) and r["sentences"]


def test_a_bad_request_does_not_fail_the_others_of_its_batch(folders):
    """Five clients at once, one with a sentence whose markers are missing: it alone gets 422."""
    from spanbert.tasks.relations.inference import RelationClassifier

    app = create_app([folders["relations"]], device="cpu", max_wait_ms=1000)
    texts = [f"The <e1>author</e1> wrote {i} <e2>books</e2> in New York." for i in range(4)]
    bodies = [{"items": [{"text": t}]} for t in texts] + [{"items": [{"text": "The author wrote the book."}]}]
    answers: dict[int, object] = {}
    with TestClient(app) as c:
        def ask(i):
            answers[i] = c.post("/v1/relations", json=bodies[i])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = app.state.server.models["relations"][0].batcher.stats
    assert stats.batches == 1 and stats.split_batches == 1  # one batch; its call failed and was split
    assert answers[4].status_code == 422 and answers[4].json()["detail"].startswith("input 0: ")
    expected = RelationClassifier(folders["relations"], device="cpu").predict(texts)
    for i in range(4):
        assert answers[i].status_code == 200
        (got,) = answers[i].json()["results"]
        assert got["label"] == expected[i].label and got["score"] == pytest.approx(expected[i].score, abs=1e-6)


# -- errors -----------------------------------------------------------------------------------

def test_task_without_a_model_is_404(limited):
    r = limited.post("/v1/coref", json={"items": [{"text": "Ann smiled. She left."}]})
    assert r.status_code == 404
    assert r.json()["detail"] == "no coref model is loaded on this server (loaded tasks: qa)"


def test_unknown_model_name_is_404_and_never_a_path(client, folders):
    item = {"question": "Who?", "context": CONTEXT}
    for name in ("nope", "tiny-coref", str(folders["other-qa"]), "../other-qa"):
        r = client.post("/v1/qa", json={"items": [item], "model": name})
        assert r.status_code == 404, name
        assert r.json()["detail"].startswith(f"model {name!r}: no loaded qa model has this name (loaded: tiny-qa, other-qa)")


def test_body_over_the_limit_is_413(limited):
    big = {"items": [{"question": "Who?", "context": "word " * 500}]}
    r = limited.post("/v1/qa", json=big)
    assert r.status_code == 413 and "over the limit of 2000 bytes" in r.json()["detail"]

    def chunks():  # streamed, no Content-Length: counted as it arrives
        yield b'{"items": [{"question": "Who?", "context": "'
        for _ in range(30):
            yield b"word " * 20
        yield b'"}]}'

    r = limited.post("/v1/qa", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"] == "request body is over the limit of 2000 bytes"


def test_too_many_items_is_413(limited):
    items = [{"question": "Who?", "context": "Ann wrote it."}] * 4
    r = limited.post("/v1/qa", json={"items": items})
    assert r.status_code == 413 and r.json()["detail"] == "items: 4 in one request; the limit is 3"
    assert limited.post("/v1/qa", json={"items": items[:3]}).status_code == 200


def test_text_over_the_limit_is_422_naming_item_and_field(limited):
    items = [{"question": "Who?", "context": "Ann wrote it."}, {"question": "Who?", "context": "x" * 301}]
    r = limited.post("/v1/qa", json={"items": items})
    assert r.status_code == 422 and r.json()["detail"] == "items[1].context: 301 characters; the limit is 300"


@pytest.mark.parametrize("path, body, expected", [
    ("/v1/qa", {"items": []}, "items: List should have at least 1 item after validation, not 0"),
    ("/v1/qa", {}, "items: Field required"),
    ("/v1/qa", {"items": [{"question": "", "context": "Ann."}]}, "items[0].question: Value error, must not be empty or only whitespace"),
    ("/v1/qa", {"items": [{"question": "Who?", "context": " \n "}]}, "items[0].context: Value error, must not be empty or only whitespace"),
    ("/v1/qa", {"items": [{"question": "Who?"}]}, "items[0].context: Field required"),
    ("/v1/qa", {"items": [{"question": 5, "context": "Ann."}]}, "items[0].question: Input should be a valid string"),
    ("/v1/qa", {"items": "Who?"}, "items: Input should be a valid list"),
    ("/v1/qa", {"items": [{"question": "Who?", "context": "Ann.", "contxt": "x"}]}, "items[0].contxt: Extra inputs are not permitted"),
    ("/v1/fill", {"items": [{"text": "A [MASK]."}], "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    ("/v1/summarize", {"items": [{"text": "A. B."}], "max_sentences": "two"}, "max_sentences: Input should be a valid integer, unable to parse string as an integer"),
    ("/v1/classify", {"items": [{"text": "A.", "text_pair": ""}]}, "items[0].text_pair: Value error, must not be empty or only whitespace"),
])
def test_malformed_requests_are_422_with_a_clear_line(client, path, body, expected):
    r = client.post(path, json=body)
    assert r.status_code == 422
    assert r.json()["detail"] == expected
    assert r.json()["errors"] and all({"loc", "msg", "type"} == set(e) for e in r.json()["errors"])


def test_invalid_json_is_422(client):
    r = client.post("/v1/qa", content=b'{"items": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == "body: invalid JSON at character 11 (Expecting value)"


def test_model_input_errors_are_422_and_fail_only_their_request(client):
    r = client.post("/v1/fill", json={"items": [{"text": "No mask here."}]})
    assert r.status_code == 422 and r.json()["detail"] == "text 1: no [MASK] token to fill in 'No mask here.'"
    r = client.post("/v1/relations", json={"items": [{"text": "The <e1>author</e1> wrote the book."}]})
    assert r.status_code == 422 and "input 0" in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_unexpected_model_error_is_500_without_traceback(client, monkeypatch, caplog):
    served = client.app.state.server.models["coref"][0]

    def broken(texts):
        raise RuntimeError("boom: a secret internal detail")

    monkeypatch.setattr(served.model.api, "resolve", broken)
    with caplog.at_level(logging.ERROR, logger="spanbert.serve.app"):
        r = client.post("/v1/coref", json={"items": [{"text": "Ann smiled. She left."}]})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error while running the model (the server log has the details)"}
    assert "boom" in caplog.text and "Traceback" in caplog.text  # the details are in the log only


def test_not_ready_before_the_models_load(folders):
    app = create_app([folders["qa"]], device="cpu")
    c = TestClient(app)  # not entered: the lifespan (model loading) has not run
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json() == {"ready": False, "models": [], "detail": "the models are still loading"}
    assert c.get("/healthz").status_code == 200
    r = c.post("/v1/qa", json={"items": [{"question": "Who?", "context": "Ann."}]})
    assert r.status_code == 503 and r.json()["detail"] == "not ready (the models are still loading)"


def test_a_model_that_fails_to_load_keeps_the_server_not_ready(folders, tmp_path):
    broken = tmp_path / "broken-fill"
    broken.mkdir()
    for name in ("config.json", "spanbert_config.json"):  # a pre-training run's configs, no weights
        shutil.copy(folders["fill"] / name, broken / name)
    with TestClient(create_app([broken], device="cpu")) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["detail"] == "loading failed: model 'broken-fill' could not be loaded (the server log has the reason)"
        assert str(tmp_path) not in r.text  # the path (and the reason) stay in the server log
        assert c.post("/v1/fill", json={"items": [{"text": "A [MASK]."}]}).status_code == 503
    assert isinstance(c.app.state.server.load_error, CheckpointError)


# -- folders and the command ------------------------------------------------------------------

def test_task_detection(folders, tmp_path):
    for task in ("qa", "fill", "classify", "relations", "entities", "coref", "summarize"):
        assert detect_task(folders[task]) == task
    with pytest.raises(ConfigError, match="no such model folder"):
        create_app([tmp_path / "missing"])
    with pytest.raises(ConfigError, match=r"cannot tell its task \(model_type 'bert'"):
        create_app([folders["qa"].parent / "tiny-bert"])  # a bare encoder: no task head
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"model_type": ')
    with pytest.raises(ConfigError, match=r"config.json:1: not valid JSON"):
        detect_task(tmp_path / "bad")
    shutil.copytree(folders["qa"], tmp_path / "tiny-qa")
    with pytest.raises(ConfigError, match="same name 'tiny-qa'"):
        create_app([folders["qa"], tmp_path / "tiny-qa"])
    with pytest.raises(ConfigError, match="max-items: must be >= 1"):
        create_app([folders["qa"]], max_items=0)
    with pytest.raises(ConfigError, match="at least one model"):
        create_app([])


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_serve_command_warns_on_a_public_host(folders, monkeypatch, capsys):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append((self.config.host, self.config.port)))
    serve_command([folders["qa"]], host="127.0.0.1", port=8123)
    assert "warning: listening" not in capsys.readouterr().err  # (other libraries may log to stderr)
    serve_command([folders["qa"]], host="0.0.0.0", port=8124)
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    assert started == [("127.0.0.1", 8123), ("0.0.0.0", 8124)]
    with pytest.raises(ConfigError, match="no such model folder"):
        serve_command([folders["qa"].parent / "missing"])


def test_serve_command_stops_and_reports_a_model_that_cannot_load(folders, tmp_path):
    """A real uvicorn start: loading fails, the server stops by itself, the error is raised."""
    broken = tmp_path / "broken-fill"
    broken.mkdir()
    for name in ("config.json", "spanbert_config.json"):
        shutil.copy(folders["fill"] / name, broken / name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CheckpointError, match="broken-fill"):
        serve_command([broken], port=port)


def test_results_are_json_numbers(client):
    """No NaN or infinity reaches the JSON (strict parsers reject them)."""
    r = client.post("/v1/qa", json={"items": [{"question": "Who?", "context": CONTEXT}]})
    assert r.status_code == 200, r.text
    json.loads(r.text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


# -- load: token limits, lanes, timeouts, disconnects -----------------------------------------
#
# A "slow" model: ServedModel.predict patched (for the whole class, so whichever lane and copy
# runs it) to record every text it is given and to sleep in calls with a marked text. The
# lanes' apps route requests of more than 16 tokens to the long lane.

LANES = dict(device="cpu", short_request_tokens=16, max_batch_tokens=64, max_wait_ms=0)
LONG_TEXT = " ".join(_SENTENCES[4:8])  # well over 16 tokens


class SlowModels:
    """Records the texts each model call gets; a call with a text containing a marker sleeps."""

    def __init__(self, monkeypatch, delays: dict[str, float]):
        from spanbert.serve.tasks import ServedModel, item_texts

        self.delays, self.texts, self.calls = delays, [], []
        self.started = threading.Event()
        self._lock = threading.Lock()
        original = ServedModel.predict

        def predict(model, items, options=None):
            texts = [t for it in items for t in item_texts(model.task, it)]
            with self._lock:
                self.texts += texts
                self.calls.append(texts)
            delay = max((s for marker, s in self.delays.items() if any(marker in t for t in texts)), default=0.0)
            if delay:
                self.started.set()
                time.sleep(delay)
            return original(model, items, options)

        monkeypatch.setattr(ServedModel, "predict", predict)

    def saw(self, marker: str) -> bool:
        with self._lock:
            return any(marker in t for t in self.texts)


def _in_thread(client, path, body):
    """POST in a thread; returns the thread and a dict that gets the ``result`` and its ``seconds``."""
    out: dict = {}

    def run():
        t0 = time.perf_counter()
        out["result"] = client.post(path, json=body)
        out["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _timed_post(client, path, body):
    t0 = time.perf_counter()
    r = client.post(path, json=body)
    return r, time.perf_counter() - t0


def test_a_request_over_the_token_limit_is_413_counted_by_the_models_tokenizer(folders):
    from spanbert.serve.tasks import TokenCounter

    from .serve_models import load_tiny_tokenizer

    counter = TokenCounter(load_tiny_tokenizer())
    item = {"question": "Who is addressed?", "context": LONG_TEXT}
    tokens = sum(counter.count([item["question"], item["context"]]))
    assert tokens < len(item["question"]) + len(item["context"])  # tokens, not characters
    with TestClient(create_app([folders["qa"]], device="cpu", max_request_tokens=tokens)) as c:
        assert c.post("/v1/qa", json={"items": [item]}).status_code == 200  # exactly at the limit
        r = c.post("/v1/qa", json={"items": [item, item]})
        assert r.status_code == 413
        assert r.json() == {"detail": f"items: {2 * tokens} tokens in one request; the limit is {tokens} (--max-request-tokens)"}
    many = [{"question": "Who?", "context": LONG_TEXT}] * 32
    total = sum(sum(counter.count([i["question"], i["context"]])) for i in many)
    with TestClient(create_app([folders["qa"]], device="cpu", max_request_tokens=1000)) as c:
        r = c.post("/v1/qa", json={"items": many})
        assert r.status_code == 413 and r.json()["detail"] == (
            f"items: {total:,} tokens in one request; the limit is 1,000 (--max-request-tokens)")
    with pytest.raises(ConfigError, match="max-request-tokens: must be >= 1"):
        create_app([folders["qa"]], max_request_tokens=0)
    with pytest.raises(ConfigError, match="request-timeout: must be > 0"):
        create_app([folders["qa"]], request_timeout=0)


def test_each_lane_has_its_own_tokenizer_and_shares_the_weights(folders):
    with TestClient(create_app([folders["entities"]], **LANES)) as c:
        (served,) = c.app.state.server.models["entities"]
        short, long = served.model.api, served.long_model.api
        assert short.tokenizer is not long.tokenizer and short.model is long.model
        assert served.batcher._executor is not served.long_batcher._executor  # two worker threads


def test_a_long_request_runs_in_the_long_lane_split_into_bounded_calls(folders, monkeypatch):
    """Nine texts of ~20-30 tokens with 64 tokens per call: several calls of whole items, each
    within the budget; the results are those of the Python API, in order."""
    from spanbert.tasks.classify.inference import TextClassifier
    from spanbert.serve.tasks import TokenCounter

    from .serve_models import load_tiny_tokenizer

    slow = SlowModels(monkeypatch, {})
    texts = _SENTENCES[:9]
    counter = TokenCounter(load_tiny_tokenizer())
    with TestClient(create_app([folders["classify"]], **LANES)) as c:
        out = post(c, "/v1/classify", {"items": [{"text": t} for t in texts]})
        served = c.app.state.server.models["classify"][0]
        assert served.batcher.stats.requests == 0 and served.long_batcher.stats.calls == len(slow.calls) > 1
    assert [t for call in slow.calls for t in call] == texts  # every item once, in order
    assert all(sum(counter.count(call)) <= 64 or len(call) == 1 for call in slow.calls)
    expected = TextClassifier(folders["classify"], device="cpu").classify(texts)
    for got, want in zip(out["results"], expected):
        assert got["label"] == want.label and got["score"] == pytest.approx(want.score, abs=1e-6)


def test_short_requests_do_not_wait_behind_a_long_one(folders, monkeypatch):
    """A long request whose model call takes 4 s: short requests to another model and to the
    same model are answered meanwhile, in a fraction of that (one worker thread made them wait)."""
    slow = SlowModels(monkeypatch, {"SLOW": 4.0})
    with TestClient(create_app([folders["entities"], folders["classify"]], **LANES)) as c:
        thread, long = _in_thread(c, "/v1/entities", {"items": [{"text": "SLOW " + LONG_TEXT}]})
        assert slow.started.wait(30)
        other, other_s = _timed_post(c, "/v1/classify", {"items": [{"text": "A short one."}]})
        same, same_s = _timed_post(c, "/v1/entities", {"items": [{"text": "Ann met Bob in Paris."}]})
        thread.join()
    assert other.status_code == 200 and same.status_code == 200 and long["result"].status_code == 200
    assert long["seconds"] >= 4.0
    assert other_s < 2.0 and same_s < 2.0, (other_s, same_s)


def test_long_requests_take_turns_call_by_call(folders, monkeypatch):
    """A long request of six 0.5 s calls, then a long one of one call: the second is answered
    after about two calls, not after all six of the first."""
    slow = SlowModels(monkeypatch, {"TURN": 0.5})
    first = [{"text": f"TURN {i} " + LONG_TEXT} for i in range(6)]  # each item over the 64-token budget: one call each
    with TestClient(create_app([folders["entities"]], **LANES)) as c:
        thread, long = _in_thread(c, "/v1/entities", {"items": first})
        assert slow.started.wait(30)
        second, second_s = _timed_post(c, "/v1/entities", {"items": [{"text": "TURN late " + LONG_TEXT}]})
        thread.join()
    assert second.status_code == 200 and long["result"].status_code == 200
    assert len(slow.calls) == 7 and second_s < long["seconds"] - 1.0, (second_s, long["seconds"])


def test_a_request_over_the_timeout_gets_503_and_its_queued_work_is_dropped(folders, monkeypatch):
    """A 3 s model call under a 1 s timeout: 503 at about 1 s; a request queued behind it times
    out too and never reaches the model; the server then serves the next request normally."""
    slow = SlowModels(monkeypatch, {"SLOW": 3.0})
    app = create_app([folders["classify"]], **LANES, request_timeout=1.0)
    with TestClient(app) as c:
        thread, first = _in_thread(c, "/v1/classify", {"items": [{"text": "SLOW one."}]})
        assert slow.started.wait(30)
        queued, queued_s = _timed_post(c, "/v1/classify", {"items": [{"text": "QUEUED one."}]})
        thread.join()
        time.sleep(2.5)  # the slow call has ended: the queued request's turn came and went
        after = c.post("/v1/classify", json={"items": [{"text": "After."}]})
        stats = app.state.server.models["classify"][0].stats()
    detail = "the request did not finish within 1 s (--request-timeout); its remaining work was dropped"
    for r in (first["result"], queued):
        assert r.status_code == 503 and r.json() == {"detail": detail}
    assert first["seconds"] < 2.5 and queued_s < 2.5
    assert after.status_code == 200
    assert not slow.saw("QUEUED") and stats.dropped == 1


def _raw_post(port: int, path: str, body: dict) -> socket.socket:
    """Send one HTTP request on a raw socket and return the socket, unread."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return s


def test_the_work_of_a_client_that_went_away_is_dropped(folders, monkeypatch):
    """Under uvicorn: a client sends a request that queues behind a 2 s call and hangs up; its
    request never reaches the model. A client that hangs up during a long request of six calls
    stops it at the next call."""
    import uvicorn

    slow = SlowModels(monkeypatch, {"SLOW": 2.0, "PART": 0.5})
    app = create_app([folders["classify"]], **LANES)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        busy = _raw_post(port, "/v1/classify", {"items": [{"text": "SLOW one."}]})
        assert slow.started.wait(30)
        gone = _raw_post(port, "/v1/classify", {"items": [{"text": "GONE one."}]})
        time.sleep(0.3)  # counted and queued behind the slow call (or, on a slow machine, still being counted)
        gone.close()
        busy.recv(65536)  # the slow call's answer
        busy.close()
        long = _raw_post(port, "/v1/classify", {"items": [{"text": f"PART {i} " + LONG_TEXT} for i in range(6)]})
        time.sleep(0.7)  # its first call runs
        long.close()
        time.sleep(2.0)  # time enough for all six calls, had they been made
    finally:
        server.should_exit = True
        thread.join(30)
    assert not slow.saw("GONE")
    parts = [c for c in slow.calls if any("PART" in t for t in c)]
    assert 1 <= len(parts) <= 2, parts  # the call running at the hang-up finishes; none after it


def test_a_model_error_in_a_split_request_names_its_items(folders):
    """The model's message counts items from the start of its call: the reply says which items
    that call held."""
    texts = ["The [MASK] said: " + LONG_TEXT, "A [MASK] day. " + LONG_TEXT, "No mask. " + LONG_TEXT]
    with TestClient(create_app([folders["fill"]], **LANES)) as c:
        r = c.post("/v1/fill", json={"items": [{"text": t} for t in texts]})
        assert r.status_code == 422
        assert r.json()["detail"].startswith("items[2:3], run as one model call: text 1: no [MASK] token to fill in")
        assert post(c, "/v1/fill", {"items": [{"text": t} for t in texts[:2]]})["results"][1]["spans"]


def test_odd_keys_stay_on_one_line(client):
    """Found by the fuzz: an unknown key with a newline broke the one-line detail. A key with a
    lone surrogate (a raw JSON escape) is refused by the JSON parser itself."""
    r = client.post("/v1/entities", json={"items": [{"text": "Ann.", "a\nb": 1, 'say "hi"': 2}]})
    assert r.status_code == 422 and r.json()["detail"] == ('items[0]["a\\nb"]: Extra inputs are not permitted; '
                                                           'items[0]["say \\"hi\\""]: Extra inputs are not permitted')
    r = client.post("/v1/entities", content=b'{"items": [{"text": "Ann.", "\\ud800": 1}]}', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"] == "items[0]: Input should be a valid string, unable to parse raw data as a unicode string"


def test_one_model_in_both_lanes_at_once_gives_the_same_answers(folders):
    """Short and long fill requests at once, from eight clients, run the same model in both lanes
    concurrently (each lane with its own tokenizer): every answer is the one it gets alone."""
    short = {"items": [{"text": "The [MASK] met in [MASK] York."}]}
    long = {"items": [{"text": f"{LONG_TEXT} The [MASK] of {i} [MASK]."} for i in range(3)]}
    with TestClient(create_app([folders["fill"]], **LANES)) as c:
        alone = {name: post(c, "/v1/fill", body) for name, body in (("short", short), ("long", long))}
        answers: list[tuple[str, object]] = []

        def ask(name, body):
            for _ in range(3):
                answers.append((name, c.post("/v1/fill", json=body)))

        threads = [threading.Thread(target=ask, args=(("short", short) if i % 2 else ("long", long))) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        served = c.app.state.server.models["fill"][0]
        assert served.batcher.stats.requests >= 12 and served.long_batcher.stats.requests >= 12
    assert len(answers) == 24
    for name, r in answers:
        assert r.status_code == 200, r.text
        assert r.json() == alone[name]
