"""End-to-end: the web page of ``spanbert serve`` driven in headless Chromium.

A real uvicorn server on 127.0.0.1 (a free port, in a background thread) serves tiny saved
models of every task (``tests/serve_models.py``). Playwright drives Debian's Chromium
(``/usr/bin/chromium``; installed with apt when missing and possible, otherwise the tests skip
and say why). Every check compares what the page shows with what the JSON API returns for the
same request, so the page is tested against the server's real answers, not fixed strings.
Set ``SPANBERT_SCREENSHOT=/path/page.png`` to keep a copy of the screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

CHROMIUM = Path(os.environ.get("SPANBERT_CHROMIUM", "/usr/bin/chromium"))
APT_BUDGET_S = 480  # all apt-get calls together: inside pytest-timeout's 600 s per test
DOCUMENT = (
    "Marie Curie was born in Warsaw. She moved to Paris in 1891 and studied at the Sorbonne, "
    "where she met Pierre Curie. He was a physicist; together they discovered polonium. "
    "Her notes 🙂 <b>still</b> glow & are kept in lead boxes."  # markup-like text must stay text
)  # the emoji is one character for Python (the API's offsets) but two UTF-16 units for JavaScript
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.slow  # one server and browser for the module: about 15 s in all


def _install_chromium() -> str | None:
    """Try ``apt-get install chromium`` (after ``apt-get update`` if the first try fails);
    returns why that was impossible, or None when the executable is there afterwards."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not running as root, so apt-get cannot install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + APT_BUDGET_S

    def apt_get(*args: str) -> subprocess.CompletedProcess:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired([apt, *args], APT_BUDGET_S)
        return subprocess.run([apt, *args], env=env, capture_output=True, text=True, timeout=left)

    try:
        done = apt_get("install", "-y", "chromium")
        if done.returncode != 0:  # stale or missing package lists
            apt_get("update")
            done = apt_get("install", "-y", "chromium")
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"apt-get failed: {err}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`apt-get install chromium` failed: {last[0]}"
    return None if CHROMIUM.exists() else f"`apt-get install chromium` succeeded but {CHROMIUM} is absent"


@pytest.fixture(scope="module")
def chromium() -> Path:
    """The Chromium executable, installed with apt first if it is missing and that is possible."""
    if not CHROMIUM.exists():
        why = _install_chromium()
        if why is not None or not CHROMIUM.exists():
            pytest.skip(f"Chromium ({CHROMIUM}) is absent and could not be installed: {why}")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A uvicorn server with a tiny model of every task; yields its base URL."""
    from spanbert.serve.app import create_app
    from tests.serve_models import build_all

    models = build_all(tmp_path_factory.mktemp("serve_models"))
    app = create_app(list(models.values()))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None, lifespan="on"))
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if srv.started and httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not become ready within 60 s")
        time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """The page, loaded, its models listed, with DOCUMENT pasted; fails on any script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    script_errors: list[str] = []
    pg.on("pageerror", lambda err: script_errors.append(str(err)))
    external: list[str] = []
    pg.on("request", lambda req: None if req.url.startswith((server, "data:")) else external.append(req.url))
    pg.goto(server + "/")
    pg.wait_for_selector("body[data-ready=true]")
    pg.fill("#document", DOCUMENT)
    yield pg
    context.close()
    assert not script_errors, f"the page raised: {script_errors}"
    assert not external, f"the page fetched outside the server: {external}"


def _api(server: str, path: str, body: dict) -> dict:
    reply = httpx.post(server + path, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _fmt(x: float) -> str:
    """A number as the page shows it (app.js formatScore): 4 decimals, tiny values as 1.23e-6."""
    if x == 0 or abs(x) >= 1e-3:
        return f"{x:.4f}"
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:.2e}")


def _run(pg, task: str, button: str, state: str = "done") -> None:
    """Click a section's button and wait until its request has finished."""
    pg.click(button)
    pg.wait_for_selector(f"#{task}-section[data-state={state}]")
    if state == "done":
        assert pg.is_hidden("#error"), pg.text_content("#error")


def _model(pg, task: str) -> str:
    return pg.input_value(f"#{task}-model")


def _marks(pg, selector: str) -> list[dict]:
    """Each highlighted span once (a span split around a crossing one is joined): text and data."""
    return pg.eval_on_selector_all(selector, """els => {
        const spans = new Map();
        for (const e of els) {
            const s = spans.get(e.dataset.span) || {text: "", data: {...e.dataset}};
            s.text += e.textContent;
            spans.set(e.dataset.span, s);
        }
        return [...spans.values()];
    }""")


def _inner_text(pg, selector: str) -> str:
    return pg.eval_on_selector(selector, "e => e.textContent")


def test_page_lists_every_task(page, server):
    models = httpx.get(server + "/v1/models").json()["models"]
    shown = page.eval_on_selector_all("main > section[data-task]:not([hidden])", "els => els.map(e => e.dataset.task)")
    assert sorted(shown) == ["classify", "coref", "entities", "fill", "qa", "relations", "summarize"]
    assert page.locator("#models li").count() == len(models)
    # Markup-like text in the document stays text.
    assert page.locator("#document-view b").count() == 0
    assert "<b>still</b>" in _inner_text(page, "#document-view")


def test_question_answer_highlighted_in_place(page, server):
    question = "Where was Marie Curie born?"
    page.fill("#qa-question", question)
    _run(page, "qa", "#qa-ask")
    expected = _api(server, "/v1/qa", {"items": [{"question": question, "context": DOCUMENT}], "model": _model(page, "qa")})
    answer = expected["results"][0]
    assert page.text_content("#qa-score") == ("—" if answer["score"] is None else _fmt(answer['score']))
    assert page.text_content("#qa-probability") == ("—" if answer["probability"] is None else _fmt(answer['probability']))
    if answer["no_answer"]:
        assert page.get_attribute("#qa-answer", "data-no-answer") == "true"
        assert "No answer" in page.text_content("#qa-answer")
        assert page.locator("mark.answer").count() == 0
    else:
        assert page.text_content("#qa-answer") == answer["answer"]
        assert page.locator("mark.answer").count() == 1
        assert page.text_content("mark.answer") == DOCUMENT[answer["start"]:answer["end"]] == answer["answer"]
        # In place: the text before the mark is the document up to the answer's start.
        before = page.eval_on_selector("mark.answer", """m => {
            const r = document.createRange();
            r.setStart(document.getElementById('document-view'), 0);
            r.setEndBefore(m);
            return r.toString();
        }""")
        assert before == DOCUMENT[: answer["start"]]
    assert _inner_text(page, "#document-view") == DOCUMENT
    # Editing the document drops the highlight (its offsets no longer fit).
    page.locator("#document").press("End")
    page.locator("#document").type(" More.")
    assert page.locator("#document-view mark").count() == 0
    assert _inner_text(page, "#document-view") == DOCUMENT + " More."


def test_no_answer_shown_clearly(page, server):
    """A SQuAD 2.0 model's "no answer" (the result shape of spanbert.tasks.qa.task.QA.serve; the
    tiny served model is a SQuAD 1.1 one, so this reply is supplied by intercepting the request)."""
    no_answer = {"answer": "", "start": -1, "end": -1, "score": None, "probability": None, "no_answer": True}
    page.route("**/v1/qa", lambda route: route.fulfill(json={"model": _model(page, "qa"), "results": [no_answer]}))
    page.fill("#qa-question", "Who painted the Mona Lisa?")
    _run(page, "qa", "#qa-ask")
    assert page.get_attribute("#qa-answer", "data-no-answer") == "true"
    assert page.text_content("#qa-answer").startswith("No answer")
    assert page.text_content("#qa-score") == "—"
    assert page.locator("#document-view mark").count() == 0
    assert _inner_text(page, "#document-view") == DOCUMENT


def test_infilling_shows_the_api_fills(page, server):
    text = "Marie Curie was [MASK] [MASK] Warsaw. She moved to [MASK] in 1891."
    page.fill("#fill-text", text)
    page.fill("#fill-top-k", "3")
    _run(page, "fill", "#fill-run")
    body = {"items": [{"text": text}], "top_k": 3, "model": _model(page, "fill")}
    result = _api(server, "/v1/fill", body)["results"][0]
    assert page.text_content("#fill-filled") == result["text"]
    for head, filled in result["filled"].items():
        assert page.text_content(f"#fill-by-head [data-head={head}] .fill-text") == filled
    # The masked runs are highlighted in the input, at the API's character offsets.
    marks = _marks(page, "#fill-input-view mark.fill-run")
    assert [m["text"] for m in marks] == [text[s["start"]:s["end"]] for s in result["spans"]] == ["[MASK] [MASK]", "[MASK]"]
    spans = page.locator("[data-testid=fill-span]")
    assert spans.count() == len(result["spans"])
    for i, span in enumerate(result["spans"]):
        shown = spans.nth(i)
        assert sorted(shown.locator("tr[data-head]").evaluate_all("rows => rows.map(r => r.dataset.head)")) == sorted(span["predictions"])
        for head, prediction in span["predictions"].items():
            row = shown.locator(f"tr[data-head={head}]")
            assert row.locator(".fill-text").text_content() == prediction["text"]
            assert row.locator(".fill-prob").text_content() == _fmt(prediction["probability"])
            candidates = row.locator(".candidates").evaluate("td => td.innerText.split('\\n')")
            expected = [", ".join(f"{c['token']} {_fmt(c['probability'])}" for c in position) for position in prediction["top_k"]]
            assert candidates == (expected or ["—"])


def test_entities_coloured_with_legend(page, server):
    _run(page, "entities", "#entities-run")
    entities = _api(server, "/v1/entities", {"items": [{"text": DOCUMENT}], "model": _model(page, "entities")})["results"][0]["entities"]
    marks = _marks(page, "#document-view mark.entity")
    assert [(m["text"], m["data"]["label"]) for m in marks] == [(e["text"], e["label"]) for e in entities]
    assert [m["text"] for m in marks] == [DOCUMENT[e["start"]:e["end"]] for e in entities]
    legend = page.eval_on_selector_all("#legend [data-label]", "els => els.map(e => e.dataset.label)")
    assert legend == sorted({e["label"] for e in entities})
    colours = page.eval_on_selector_all("#document-view mark.entity", "els => els.map(e => [e.dataset.label, getComputedStyle(e).backgroundColor])")
    assert len({label for label, _ in colours}) == len({colour for _, colour in colours})  # one colour per type
    assert _inner_text(page, "#document-view") == DOCUMENT


def test_coreference_clusters_coloured(page, server):
    _run(page, "coref", "#coref-run")
    clusters = _api(server, "/v1/coref", {"items": [{"text": DOCUMENT}], "model": _model(page, "coref")})["results"][0]["clusters"]
    marks = _marks(page, "#document-view mark.coref")
    expected = sorted((m["text"], c) for c, cluster in enumerate(clusters) for m in cluster)
    assert sorted((m["text"], int(m["data"]["cluster"])) for m in marks) == expected
    assert all(DOCUMENT[m["start"]:m["end"]] == m["text"] for cluster in clusters for m in cluster)
    assert page.locator("#coref-result li[data-cluster]").count() == len(clusters)
    colours = page.eval_on_selector_all("#document-view mark.coref:not([data-continued])", "els => els.map(e => [e.dataset.cluster, getComputedStyle(e).backgroundColor])")
    assert len({c for c, _ in colours}) == len({colour for _, colour in colours})  # one colour per cluster
    assert _inner_text(page, "#document-view") == DOCUMENT


def test_summary_sentences_highlighted(page, server):
    page.fill("#summarize-max", "2")
    _run(page, "summarize", "#summarize-run")
    result = _api(server, "/v1/summarize", {"items": [{"text": DOCUMENT}], "max_sentences": 2, "model": _model(page, "summarize")})["results"][0]
    marks = _marks(page, "#document-view mark.summary-sentence")
    assert [m["text"] for m in marks] == [DOCUMENT[s["start"]:s["end"]] for s in sorted(result["sentences"], key=lambda s: s["start"])]
    assert page.text_content("#summarize-result") == result["summary"]


def test_relation_label_and_coloured_entities(page, server):
    sentence = "The <e1>author</e1> wrote the <e2:WORK>book</e2> in Paris."
    page.fill("#relations-text", sentence)
    _run(page, "relations", "#relations-run")
    result = _api(server, "/v1/relations", {"items": [{"text": sentence}], "model": _model(page, "relations")})["results"][0]
    assert page.text_content("#relations-label") == result["label"]
    assert page.text_content("#relations-score") == _fmt(result["score"])
    assert _inner_text(page, "#relations-view") == "The author wrote the book in Paris."
    assert page.text_content("mark.rel-e1") == "author"
    assert page.text_content("mark.rel-e2") == "book"
    assert page.get_attribute("mark.rel-e2", "data-label") == "e2:WORK"


def test_classification_label_and_probabilities(page, server):
    _run(page, "classify", "#classify-run")
    result = _api(server, "/v1/classify", {"items": [{"text": DOCUMENT}], "model": _model(page, "classify")})["results"][0]
    assert page.text_content("#classify-label") == result["label"]
    rows = page.eval_on_selector_all("#classify-probs tr", "els => els.map(e => [e.dataset.label, e.cells[1].textContent])")
    assert sorted(map(tuple, rows)) == sorted((label, _fmt(p)) for label, p in result["probabilities"].items())


def test_server_error_is_shown(page, server, tmp_path):
    page.fill("#qa-question", "")
    _run(page, "qa", "#qa-ask", state="error")
    reply = httpx.post(server + "/v1/qa", json={"items": [{"question": "", "context": DOCUMENT}], "model": _model(page, "qa")})
    assert 400 <= reply.status_code < 500
    detail = reply.json()["detail"]
    message = page.text_content("#error-message")
    assert page.is_visible("#error")
    assert (detail if isinstance(detail, str) else detail[0]["msg"]) in message
    assert f"HTTP {reply.status_code}" in message
    page.click("#error-dismiss")
    assert page.is_hidden("#error")
    # An over-long text: the server's limit message, and a later success clears the error area.
    limit = 100_000  # create_app's default max_text_chars
    page.fill("#relations-text", "<e1>a</e1> <e2>b</e2> " + "x" * limit)
    _run(page, "relations", "#relations-run", state="error")
    assert f"characters; the limit is {limit}" in page.text_content("#error-message")
    page.fill("#relations-text", "The <e1>author</e1> wrote the <e2>book</e2>.")
    _run(page, "relations", "#relations-run")
    assert page.is_hidden("#error")


def test_screenshot(page, server, tmp_path):
    """Every task run once, then a full-page screenshot with the answer highlighted, and one of
    the document per other layer; copies go to $SPANBERT_SCREENSHOT (and <stem>_<layer>.png) if set."""
    page.fill("#qa-question", "Who did she meet?")
    for task in ("fill", "relations", "classify", "summarize", "entities", "coref"):
        _run(page, task, f"#{task}-run")
    _run(page, "qa", "#qa-ask")
    assert page.is_checked("input[name=layer][value=answer]")
    shots = {"page": tmp_path / "serve_page.png"}
    page.screenshot(path=str(shots["page"]), full_page=True)
    for layer, selector in (("entities", "mark.entity"), ("coref", "mark.coref"), ("summary", "mark.summary-sentence")):
        page.check(f"input[name=layer][value={layer}]")
        assert page.locator(f"#document-view {selector}").count() > 0
        assert page.locator("#document-view mark.answer").count() == 0  # one layer at a time
        shots[layer] = tmp_path / f"serve_page_{layer}.png"
        page.locator("#document-section").screenshot(path=str(shots[layer]))
    for path in shots.values():
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, path
    if target := os.environ.get("SPANBERT_SCREENSHOT"):
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            shutil.copyfile(path, target if name == "page" else target.with_name(f"{target.stem}_{name}{target.suffix}"))
