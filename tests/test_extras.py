"""The slim core install and the optional extras (``spanbert.core.extras``).

An optional package is made to look uninstalled by wrapping every finder of ``sys.meta_path`` so
that it finds nothing under that name (``import x`` raises ModuleNotFoundError and
``importlib.util.find_spec(x)`` is None, as when x is not installed) and by dropping x from
``sys.modules``. The slim install as a whole is simulated in a fresh interpreter; a single
missing package inside this one, through monkeypatch (restored after each test).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from .conftest import DATA, run_cli

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "spanbert"
# import name -> the extra that installs it (all of them optional: the core never needs one)
OPTIONAL_MODULES = {
    "fastapi": "serve", "starlette": "serve", "uvicorn": "serve", "fastapi_offline": "serve",
    "rouge_score": "summarize", "nltk": "cmrc", "matplotlib": "plot", "jieba": "chinese",
    "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "tensorboard": "tensorboard",
    "scipy": None,  # needed by no feature any more: CEAF has its own assignment solver
}
# pydantic: only the server's schemas use it, but the core has it anyway (transformers needs
# typer, which needs pydantic), so it is checked statically, not hidden at run time
SERVE_ONLY = {"pydantic"}
OPTIONAL_DISTRIBUTIONS = {"scipy", "matplotlib", "nltk", "fastapi", "uvicorn", "rouge-score", "starlette",
                          "fastapi-offline", "jieba", "onnx", "onnxruntime", "onnxscript", "tensorboard"}
# the feature modules that may import an optional package at module level: nothing imports
# them at module level (the slim-install test imports every other module with the packages hidden)
FEATURE_MODULES = {"spanbert.serve.app", "spanbert.serve.schemas"}
ENV = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("SPANBERT_DEBUG", None)


class HiddenFinder:
    """Wraps a meta-path finder so that it finds nothing under the ``hidden`` top-level names."""

    def __init__(self, finder, hidden: frozenset[str]):
        self.finder, self.hidden = finder, hidden

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.hidden:
            return None
        return self.finder.find_spec(name, path, target)

    def find_distributions(self, *args, **kwargs):  # importlib.metadata: the hidden ones have none either
        for dist in getattr(self.finder, "find_distributions", lambda *a, **k: ())(*args, **kwargs):
            if (dist.metadata["Name"] or "").lower().replace("-", "_") not in self.hidden:
                yield dist

    def invalidate_caches(self):
        if hasattr(self.finder, "invalidate_caches"):
            self.finder.invalidate_caches()


def hiding(meta_path: list, hidden) -> list:
    """``meta_path`` with every finder wrapped by :class:`HiddenFinder`."""
    hidden = frozenset(hidden)
    return [HiddenFinder(f, hidden) if hasattr(f, "find_spec") else f for f in meta_path]


def hide(monkeypatch, *names: str) -> None:
    """Make ``names`` look uninstalled in this process until the test ends."""
    for key in list(sys.modules):
        if key.partition(".")[0] in names:
            monkeypatch.delitem(sys.modules, key)
    monkeypatch.setattr(sys, "meta_path", hiding(sys.meta_path, names))


def extra_line(feature: str, extra: str, module: str) -> str:
    return f"error: {feature} needs the '{extra}' extra ({module} is not installed): pip install 'spanbert[{extra}]'"


# -- static checks -------------------------------------------------------------------------------


def _requirement_name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_base_dependencies_leave_out_the_optional_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_requirement_name(r) for r in project["dependencies"]}
    assert {"torch", "transformers", "tokenizers", "datasets", "accelerate", "safetensors", "typer", "tqdm", "numpy"} <= base
    assert not base & OPTIONAL_DISTRIBUTIONS, base & OPTIONAL_DISTRIBUTIONS
    extras = project["optional-dependencies"]
    features = set(extras) - {"all", "test"}
    assert {"serve", "summarize", "cmrc", "plot", "chinese", "onnx"} <= features
    # every extra named by OPTIONAL_MODULES exists, and installs the package behind that name
    for module, extra in OPTIONAL_MODULES.items():
        if extra is not None and module != "starlette":  # starlette comes with fastapi
            names = {_requirement_name(r) for r in extras[extra]}
            assert module.replace("_", "-") in names, (module, extra, names)
    (everything,) = extras["all"]
    assert everything.startswith("spanbert[") and set(everything[9:-1].split(",")) == features
    # the README's and CI's `pip install -e '.[test]'` gets every feature but tensorboard (it would make
    # every pre-training run of the tests write event files)
    tested = [r for r in extras["test"] if r.startswith("spanbert[")]
    assert len(tested) == 1 and set(tested[0][9:-1].split(",")) == features - {"tensorboard"}


def _module_level_imports(tree: ast.Module):
    """(line, imported top-level name) of imports that run when the module is imported: not those
    inside functions, nor under ``if TYPE_CHECKING:``."""
    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield node.lineno, alias.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.lineno, node.module.partition(".")[0]
            yield from visit(ast.iter_child_nodes(node))
    yield from visit(tree.body)


def _all_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]


def test_optional_packages_are_imported_only_inside_feature_code():
    """Module level: only the feature modules import an optional package; and scipy nowhere."""
    offenders, scipy_users = [], []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for line, name in _module_level_imports(tree):
            if (name in OPTIONAL_MODULES or name in SERVE_ONLY) and module not in FEATURE_MODULES:
                offenders.append(f"{path.relative_to(REPO)}:{line}: import {name}")
        if "scipy" in set(_all_imports(tree)):
            scipy_users.append(str(path.relative_to(REPO)))
    assert not offenders, "import these inside the function that needs them:\n" + "\n".join(offenders)
    assert not scipy_users, f"scipy is in no extra: {scipy_users}"
    assert (SRC / "serve" / "app.py").is_file() and (SRC / "serve" / "schemas.py").is_file()  # the allow-list is real


# -- the slim install, in a fresh interpreter -----------------------------------------------------

SLIM_PRELUDE = """
import contextlib, importlib, io, json, pkgutil, sys
sys.path.insert(0, {repo!r})
from tests.test_extras import hiding
HIDDEN = {hidden!r}
sys.meta_path[:] = hiding(sys.meta_path, HIDDEN)
import spanbert, spanbert.cli
from spanbert.cli import main

def cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return {{"args": list(args), "rc": rc, "out": out.getvalue()[:3000], "err": err.getvalue()[-3000:]}}
"""


def run_slim(body: str, timeout: int = 300) -> dict:
    """Run ``body`` after :data:`SLIM_PRELUDE` (every optional package hidden); it prints one JSON
    line last, which is returned."""
    code = SLIM_PRELUDE.format(repo=str(REPO), hidden=sorted(OPTIONAL_MODULES)) + body
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


HELP_COMMANDS = [[], ["pretrain"], ["fill"], ["serve"], ["ablate", "run"],
                 *(["finetune", t] for t in ("qa", "ner", "relations", "classify", "coref", "summarize")),
                 ["evaluate", "summarize"], ["score", "cmrc"], ["score", "rouge"], ["score", "coref"]]


@pytest.mark.slow
def test_slim_install_imports_every_module_and_shows_every_help():
    """Every module but the feature modules imports, and the commands' help shows, with every
    optional package hidden (a fresh interpreter: about 10 s of CPU, most of it importing torch)."""
    body = f"""
skipped = {sorted(FEATURE_MODULES | {"spanbert.__main__"})!r}
imported = []
for info in pkgutil.walk_packages(spanbert.__path__, "spanbert."):
    if info.name not in skipped:
        importlib.import_module(info.name)
        imported.append(info.name)
helps = [cli(*command, "--help") for command in {HELP_COMMANDS!r}]
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HIDDEN)
print(json.dumps({{"imported": imported, "helps": helps, "loaded": loaded}}))
"""
    result = run_slim(body)
    assert {"spanbert.cli", "spanbert.pretrain.train", "spanbert.tasks.coref.metrics", "spanbert.tasks.qa.cmrc", "spanbert.tasks.summarize.scoring",
            "spanbert.serve.cli", "spanbert.ablation.report", "spanbert.core.extras"} <= set(result["imported"])
    assert result["loaded"] == []
    for h in result["helps"]:
        assert h["rc"] == 0 and "Usage:" in h["out"], h


@pytest.mark.slow
def test_slim_install_pretrains_and_fine_tunes_every_span_task(tmp_path):
    """The core jobs end to end with every optional package hidden: pre-training (no loss-curve
    PNG, one warning), and fine-tuning with dev scoring of QA, NER, relations, classification and
    coreference (its CEAF needs no scipy). About 40 s."""
    import shutil

    shutil.copytree(DATA / "tiny_wordpiece", tmp_path / "tokenizer")
    coref_train = tmp_path / "coref.conll"  # the first 40 token lines of a committed sample
    lines = (DATA / "coref" / "1342_pride_and_prejudice_brat_head.conll").read_text().split("\n")[:41]
    coref_train.write_text("\n".join(lines + ["", "#end document", ""]))
    out = str(tmp_path)
    fast = ["--max-steps", "1", "--batch-size", "4", "--mixed-precision", "no", "--no-progress"]
    runs = [
        ["pretrain", "--corpus", str(DATA / "tiny_corpus.txt"), "--tokenizer", f"{out}/tokenizer", "--preset", "tiny",
         "--max-length", "48", "--batch-size", "4", "--max-steps", "2", "--output", f"{out}/pretrain", "--no-progress"],
        ["finetune", "qa", "--model", f"{out}/bert", "--train", str(DATA / "squad" / "xquad_en_sample.json"),
         "--dev", str(DATA / "squad" / "xquad_en_sample.json"), "--output", f"{out}/qa",
         "--max-seq-length", "128", "--max-question-tokens", "32", "--window-overlap", "32", *fast],
        ["finetune", "ner", "--model", f"{out}/bert", "--train", str(DATA / "ner" / "wnut17_train_sample.conll"),
         "--dev", str(DATA / "ner" / "wnut17_test_sample.conll"), "--output", f"{out}/ner", "--max-seq-length", "64", *fast],
        ["finetune", "relations", "--model", f"{out}/bert", "--train", str(DATA / "relations" / "semeval_train_sample.txt"),
         "--dev", str(DATA / "relations" / "semeval_train_sample.txt"), "--output", f"{out}/relations", *fast],
        ["finetune", "classify", "--model", f"{out}/bert", "--train", str(DATA / "classify" / "sst2_dev_sample.tsv"),
         "--dev", str(DATA / "classify" / "sst2_dev_sample.tsv"), "--output", f"{out}/classify", "--max-seq-length", "64",
         "--window-overlap", "8", *fast],
        ["finetune", "coref", "--model", f"{out}/bert", "--train", str(coref_train), "--dev", str(coref_train),
         "--output", f"{out}/coref", "--max-segment-length", "64", "--max-span-width", "10", "--ffnn-size", "64",
         "--feature-size", "8", "--max-antecedents", "10", "--max-steps", "1", "--mixed-precision", "no", "--no-progress"],
    ]
    body = f"""
import logging
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger().addHandler(Keep())
from tests.serve_models import build_encoder
build_encoder({out!r} + "/bert")
results = [cli(*args) for args in {runs!r}]
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HIDDEN)
print(json.dumps({{"results": results, "records": records, "loaded": loaded}}))
"""
    result = run_slim(body, timeout=550)
    for r in result["results"]:
        assert r["rc"] == 0, (r["args"][:2], r["err"])
    assert result["loaded"] == []
    pretrain = tmp_path / "pretrain"
    assert (pretrain / "model.safetensors").is_file() and not (pretrain / "loss_curve.png").exists()
    assert "loss curve:" not in result["results"][0]["out"]
    warnings = [m for m in result["records"] if "loss_curve.png" in m]
    assert warnings == ["no loss_curve.png written: matplotlib is not installed (the 'plot' extra): "
                        "pip install 'spanbert[plot]'"]
    for task in ("qa", "ner", "relations", "classify"):  # scored on dev with the core's own scorers
        assert json.loads((tmp_path / task / "finetune_summary.json").read_text())["dev_metrics"], task
    coref = json.loads((tmp_path / "coref" / "dev_history.jsonl").read_text().splitlines()[0])
    assert 0 <= coref["metrics"]["ceafe_f1"] <= 100  # CEAF-e was computed without scipy


# -- one missing package, through the real CLI ----------------------------------------------------

MISSING = "/nonexistent/x"  # the extra is checked before any file is read


@pytest.mark.parametrize("module, extra, feature, args", [
    ("fastapi", "serve", "spanbert serve", ["serve", "--model", MISSING]),
    ("uvicorn", "serve", "spanbert serve", ["serve", "--model", MISSING]),
    ("fastapi_offline", "serve", "spanbert serve", ["serve", "--model", MISSING]),
    ("nltk", "cmrc", "spanbert score cmrc", ["score", "cmrc", "--data", MISSING, "--predictions", MISSING]),
    ("rouge_score", "summarize", "spanbert score rouge", ["score", "rouge", "--references", MISSING, "--predictions", MISSING]),
    ("rouge_score", "summarize", "spanbert evaluate summarize",
     ["evaluate", "summarize", "--model", MISSING, "--data", MISSING, "--output", MISSING]),
    ("rouge_score", "summarize", "spanbert finetune summarize (oracle labels)",
     ["finetune", "summarize", "--model", MISSING, "--train", MISSING, "--output", MISSING]),
])
def test_a_feature_without_its_extra_fails_in_one_line(monkeypatch, module, extra, feature, args):
    hide(monkeypatch, module)
    rc, out, err = run_cli(args)
    assert rc == 2 and out == ""
    assert err.splitlines() == [extra_line(feature, extra, module)]


def test_summarization_dev_scores_need_rouge_before_training(monkeypatch, tmp_path):
    """The training data (file labels: no ROUGE) is read before the dev data, whose ROUGE is
    then named before training (and before the dev file is read)."""
    from tests.serve_models import build_encoder

    build_encoder(tmp_path / "bert")
    hide(monkeypatch, "rouge_score")
    rc, out, err = run_cli(["finetune", "summarize", "--model", str(tmp_path / "bert"), "--train",
                            str(DATA / "summarize" / "scitldr_a_train_sample.jsonl"), "--dev", MISSING, "--labels", "file",
                            "--output", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2 and out == ""
    assert err.splitlines() == [extra_line("spanbert finetune summarize --dev (ROUGE)", "summarize", "rouge_score")]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_summarization_with_file_labels_and_no_dev_needs_no_rouge(monkeypatch):
    hide(monkeypatch, "rouge_score")
    rc, _, err = run_cli(["finetune", "summarize", "--model", MISSING, "--train", MISSING, "--labels", "file",
                          "--output", MISSING])
    assert rc == 2 and "extra" not in err and MISSING in err  # it got as far as reading the model


def test_the_server_app_needs_the_docs_assets(monkeypatch, tmp_path):
    from spanbert.core.errors import MissingExtraError
    from spanbert.serve.app import create_app
    from tests.serve_models import build_fill

    folder = build_fill(tmp_path / "fill")
    hide(monkeypatch, "fastapi_offline")
    with pytest.raises(MissingExtraError) as caught:
        create_app([folder])
    assert str(caught.value) == ("the API docs page (/docs) needs the 'serve' extra (fastapi_offline is not installed): "
                                 "pip install 'spanbert[serve]'")
    assert isinstance(caught.value, ImportError)


# -- plots are skipped with one warning -----------------------------------------------------------


def test_loss_curve_without_matplotlib_is_skipped_and_a_stale_one_removed(monkeypatch, tmp_path, caplog):
    from spanbert.pretrain.train import plot_loss_curve

    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("step,loss,mlm_loss,sbo_loss\n1,5.0,3.0,2.0\n2,4.0,2.5,1.5\n")
    png = tmp_path / "loss_curve.png"
    assert plot_loss_curve(csv_path, png) == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # with matplotlib
    hide(monkeypatch, "matplotlib")
    with caplog.at_level(logging.WARNING):
        assert plot_loss_curve(csv_path, png) is None
    assert not png.exists()  # the PNG of an earlier session no longer matches metrics.csv
    assert [r.getMessage() for r in caplog.records] == [
        "no loss_curve.png written: matplotlib is not installed (the 'plot' extra): pip install 'spanbert[plot]'"]


def test_ablation_plot_without_matplotlib_is_skipped(monkeypatch, caplog):
    from spanbert.ablation.report import plot

    results = {"name": "t", "tasks": ["squad"], "objectives": ["token", "span"],
               "rows": [{"task": "squad", "objective": "token", "test_mean": 1.0, "test_sd": 0.1},
                        {"task": "squad", "objective": "span", "test_mean": 2.0, "test_sd": 0.2}]}
    assert plot(results)[:4] == b"\x89PNG"
    hide(monkeypatch, "matplotlib")
    with caplog.at_level(logging.WARNING):
        assert plot(results) is None
    assert [r.getMessage() for r in caplog.records] == [
        "no results.png written: matplotlib is not installed (the 'plot' extra): pip install 'spanbert[plot]'"]


# -- CEAF's assignment solver against scipy -------------------------------------------------------


def test_max_weight_assignment_equals_scipy_on_random_matrices():
    from scipy.optimize import linear_sum_assignment

    from spanbert.tasks.coref.metrics import max_weight_assignment

    rng = np.random.default_rng(0)
    for trial in range(1500):
        rows, cols = rng.integers(0, 12, size=2)
        kind = trial % 4
        if kind == 0:
            w = rng.random((rows, cols))
        elif kind == 1:  # small integers: many ties (CEAF-m's overlaps)
            w = rng.integers(0, 3, size=(rows, cols)).astype(float)
        elif kind == 2:  # CEAF-e's phi4 = 2 |k ∩ r| / (|k| + |r|) on random sizes
            overlap = rng.integers(0, 4, size=(rows, cols))
            sizes = overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) + rng.integers(0, 3, size=(rows, cols))
            w = 2 * overlap / np.maximum(sizes, 1)
        else:  # negative weights too: the solver is general
            w = rng.normal(size=(rows, cols))
        r, c = max_weight_assignment(w)
        sr, sc = linear_sum_assignment(w, maximize=True)
        assert len(r) == len(c) == min(rows, cols)
        assert len(set(r.tolist())) == len(r) and len(set(c.tolist())) == len(c)  # one to one
        assert list(r) == sorted(r)
        assert w[r, c].sum() == pytest.approx(w[sr, sc].sum(), abs=1e-9), (trial, w)


def test_max_weight_assignment_on_a_large_matrix():
    from scipy.optimize import linear_sum_assignment

    from spanbert.tasks.coref.metrics import max_weight_assignment

    w = np.random.default_rng(1).integers(0, 5, size=(150, 200)).astype(float)
    r, c = max_weight_assignment(w)
    sr, sc = linear_sum_assignment(w, maximize=True)
    assert w[r, c].sum() == w[sr, sc].sum()
    r, c = max_weight_assignment(w.T)
    assert w.T[r, c].sum() == w[sr, sc].sum()


# -- /docs without internet -----------------------------------------------------------------------


class _Assets(HTMLParser):
    """Every URL a page loads: script src, link href (stylesheets, icons), img src."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])


@pytest.fixture(scope="module")
def fill_folder(tmp_path_factory):
    from tests.serve_models import build_fill

    return build_fill(tmp_path_factory.mktemp("docs") / "fill")


def test_docs_page_loads_only_files_the_app_serves(fill_folder):
    from fastapi.testclient import TestClient

    from spanbert.serve.app import create_app

    client = TestClient(create_app([fill_folder], device="cpu"))  # not entered: no model loads
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(page.text)
    assert len(parser.urls) == 3, parser.urls  # Swagger UI's script and stylesheet, the icon
    assert not re.search(r"https?://|//[a-z]", page.text)  # nothing from another host
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    kinds = {urlsplit(u).path.rsplit(".", 1)[-1]: client.get(u).headers["content-type"] for u in parser.urls}
    assert "javascript" in kinds["js"] and kinds["css"].startswith("text/css")
    (spec_url,) = re.findall(r"url: '([^']+)'", page.text)
    spec = client.get(spec_url)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    assert client.get("/redoc").status_code == 404  # ReDoc would fetch its logo from a CDN


@pytest.mark.slow
def test_docs_page_renders_in_chromium_without_network(fill_folder):
    """Swagger UI in headless Chromium, every request to another host refused: it lists every
    operation of the OpenAPI document (Swagger UI 4 could not read OpenAPI 3.1 at all)."""
    import socket
    import threading
    import time

    sync_api = pytest.importorskip("playwright.sync_api")
    uvicorn = pytest.importorskip("uvicorn")
    chromium = Path(os.environ.get("SPANBERT_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"Chromium ({chromium}) is absent (tests/test_serve_browser.py installs it)")
    from spanbert.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app([fill_folder], device="cpu"), host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    outside: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
            page = browser.new_page()

            def route(r):
                if urlsplit(r.request.url).netloc == f"127.0.0.1:{port}" or r.request.url.startswith("data:"):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            shown = page.locator(".opblock").count()
            error = page.locator(".errors-wrapper").count()
            browser.close()
        spec = json.loads(__import__("urllib.request").request.urlopen(f"{base}/openapi.json").read())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert shown == operations and error == 0
    assert outside == []
