"""ONNX export: the graph checks, ONNX Runtime reproduces PyTorch's logits for any batch size and
length, the ONNX QA and classification APIs give the PyTorch APIs' answers, int8 stays close,
bad inputs are one-line errors, and a failed export leaves nothing behind.

Tiny models (hidden 32, 2 layers) on the committed WordPiece vocabulary, saved the way
``spanbert finetune qa`` / ``finetune classify`` save them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import typer
from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification, BertModel
from typer.testing import CliRunner

from spanbert.tasks.classify.settings import ClassifySettings
from spanbert.tasks.protocol import get_task
from spanbert.tasks.classify.inference import TextClassifier, load_classifier
from spanbert.core.errors import ConfigError
from spanbert.onnx import OnnxQuestionAnswerer, OnnxTextClassifier, export_onnx
from spanbert.onnx import export as onnx_export
from spanbert.onnx.cli import export_onnx_command
from spanbert.onnx.runtime import make_session
from spanbert.tasks.qa.data import read_qa
from spanbert.tasks.qa.features import build_features
from spanbert.tasks.qa.inference import QuestionAnswerer, load_qa_model
from spanbert.tasks.qa.settings import QASettings, WindowConfig
from .conftest import TINY_BERT

DATA = Path(__file__).resolve().parent / "data"
TINY = TINY_BERT
# Windows of 64 tokens: every XQuAD sample context is cut into several overlapping windows.
QA_SETTINGS = QASettings(WindowConfig(max_seq_length=64, max_question_tokens=16, window_overlap=16))
# int8 (dynamic, per-channel weights) vs PyTorch fp32 on the tiny QA model: measured max |diff|
# 0.07-0.29 where the largest |logit| is 5.5-20.6 (at most 1.6% of it); allowed: 3%.
INT8_RELATIVE_TOLERANCE = 0.03


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    torch.manual_seed(0)
    model = BertForQuestionAnswering(BertConfig(vocab_size=len(tiny_tokenizer), **TINY))
    # A head with unit-scale weights spreads the logits: answers differ between questions and
    # near-ties (where rounding could flip an answer) are rare.
    torch.nn.init.normal_(model.qa_outputs.weight, std=1.0)
    out = tmp_path_factory.mktemp("qa") / "model"
    get_task("qa").save(out, model, tiny_tokenizer, QA_SETTINGS)
    return out


@pytest.fixture(scope="module")
def qa_export(qa_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("qa-onnx") / "export"
    return out, export_onnx(qa_dir, out, quantize=True, num_threads=1)


@pytest.fixture(scope="module")
def classify_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    torch.manual_seed(1)
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    config = BertConfig(vocab_size=len(tiny_tokenizer), num_labels=3, id2label=labels,
                        label2id={v: k for k, v in labels.items()}, **TINY)
    model = BertForSequenceClassification(config)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    out = tmp_path_factory.mktemp("classify") / "model"
    get_task("classify").save(out, model, tiny_tokenizer, ClassifySettings(max_seq_length=32, window_overlap=8))
    return out


@pytest.fixture(scope="module")
def classify_export(classify_dir, tmp_path_factory) -> tuple[Path, str]:
    """Exported through the command function, as ``spanbert export onnx`` runs it: (folder, stdout)."""
    app = typer.Typer()
    app.command()(export_onnx_command)
    out = tmp_path_factory.mktemp("classify-onnx") / "export"
    result = CliRunner().invoke(app, ["--model", str(classify_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def random_batch(rng: np.random.Generator, batch: int, length: int, vocab: int) -> dict[str, torch.Tensor]:
    """Random token ids with rows of different real lengths (the first row full, the others padded)."""
    ids = rng.integers(5, vocab, size=(batch, length))
    lengths = np.concatenate([[length], rng.integers(1, length + 1, size=batch - 1)])
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    types = (np.arange(length)[None, :] >= lengths[:, None] // 2).astype(np.int64) * mask
    ids = np.where(mask == 1, ids, 0)
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
            "token_type_ids": torch.from_numpy(types)}


def logits_pair(model, session, batch: dict[str, torch.Tensor], names: list[str]):
    with torch.inference_mode():
        out = model(**batch)
    expected = [getattr(out, n).numpy() for n in names]
    got = session.run(names, {k: v.numpy() for k, v in batch.items() if k in {i.name for i in session.get_inputs()}})
    return expected, got


SHAPES = [(1, 5), (2, 64), (5, 37), (8, 200), (3, 512)]


def test_export_writes_a_checked_folder_with_dynamic_axes(qa_dir, qa_export):
    out, info = qa_export
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.onnx", "model.int8.onnx", "config.json", "qa_settings.json", "export_info.json",
         "tokenizer.json", "tokenizer_config.json"])
    assert json.loads((out / "export_info.json").read_text()) == info
    assert info["task"] == "question-answering" and info["architecture"] == "BertForQuestionAnswering"
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert info["outputs"] == ["start_logits", "end_logits"]
    assert info["exporter"] == "torch.onnx.export(dynamo=True)"
    assert info["versions"]["torch"] == torch.__version__ and info["versions"]["onnx"] == onnx.__version__
    assert info["max_abs_logit_diff"]["fp32"] < 1e-5 and info["max_abs_logit_diff"]["int8"] > 0
    for name in ("model.onnx", "model.int8.onnx"):
        onnx.checker.check_model(str(out / name), full_check=True)
        proto = onnx.load(str(out / name))
        assert any(o.version == info["opset"] for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        for graph_input in proto.graph.input:
            dims = [d.dim_param for d in graph_input.type.tensor_type.shape.dim]
            assert dims == ["batch", "sequence"], (name, graph_input.name, dims)
    for copied in ("config.json", "qa_settings.json"):
        assert (out / copied).read_bytes() == (qa_dir / copied).read_bytes()


@pytest.mark.parametrize("shape", SHAPES)
def test_onnx_logits_equal_pytorch_for_any_batch_size_and_length(qa_dir, qa_export, shape):
    model, tokenizer = load_qa_model(qa_dir)
    session = make_session(qa_export[0] / "model.onnx", num_threads=1)
    batch = random_batch(np.random.default_rng(shape[0] * 1000 + shape[1]), *shape, len(tokenizer))
    expected, got = logits_pair(model.eval(), session, batch, ["start_logits", "end_logits"])
    for e, g in zip(expected, got):
        assert g.shape == e.shape == shape
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)
    assert max(np.abs(e).max() for e in expected) > 1  # the comparison is not between near-zero numbers


def test_onnx_question_answerer_gives_the_pytorch_answers(qa_dir, qa_export, tiny_tokenizer):
    examples, _ = read_qa(DATA / "squad" / "xquad_en_sample.json")
    feats = build_features(examples, tiny_tokenizer, QA_SETTINGS.windows)
    windows = np.bincount(feats.example_index)
    assert windows.min() >= 2 and windows.max() >= 4  # long contexts: several windows per question
    expected = QuestionAnswerer(qa_dir, device="cpu", precision="no", batch_size=8).predict(examples)
    onnx_qa = OnnxQuestionAnswerer(qa_export[0], batch_size=8, num_threads=1)
    assert onnx_qa.settings == QA_SETTINGS
    got = onnx_qa.predict(examples)
    assert [(p.id, p.text, p.start, p.end) for p in got] == [(p.id, p.text, p.start, p.end) for p in expected]
    assert len({p.text for p in expected}) >= 4  # answers are not all the same span (measured: 6)
    for g, e in zip(got, expected):
        assert g.score == pytest.approx(e.score, abs=1e-4)
        assert [c.text for c in g.nbest] == [c.text for c in e.nbest]
    # the inherited answer() API: one context for several questions, and its input errors
    context = examples[0].context
    questions = [ex.question for ex in examples if ex.context == context]
    assert [p.text for p in onnx_qa.answer(questions, context)] == [p.text for p in expected[: len(questions)]]
    with pytest.raises(ConfigError, match="question 0: empty"):
        onnx_qa.answer([" "], context)


def test_int8_model_runs_and_stays_close(qa_dir, qa_export):
    out, info = qa_export
    model, tokenizer = load_qa_model(qa_dir)
    session = make_session(out / "model.int8.onnx", num_threads=1)
    for shape in SHAPES[:4]:
        batch = random_batch(np.random.default_rng(shape[1]), *shape, len(tokenizer))
        expected, got = logits_pair(model.eval(), session, batch, ["start_logits", "end_logits"])
        for e, g in zip(expected, got):
            scale = np.abs(e).max()
            assert 0 < np.abs(g - e).max() <= INT8_RELATIVE_TOLERANCE * scale
    examples, _ = read_qa(DATA / "squad" / "xquad_en_sample.json")
    fp32 = OnnxQuestionAnswerer(out, num_threads=1).predict(examples)
    int8 = OnnxQuestionAnswerer(out, quantized=True, num_threads=1).predict(examples)
    same = np.mean([(a.start, a.end) == (b.start, b.end) for a, b in zip(fp32, int8)])
    assert same >= 0.8, same  # measured: 34/34 on this model


def test_classification_export_equals_pytorch(classify_dir, classify_export):
    out, printed = classify_export
    info = json.loads((out / "export_info.json").read_text())
    assert info["task"] == "text-classification" and info["outputs"] == ["logits"]
    assert info["files"] == {"fp32": "model.onnx", "int8": None}
    settings_file = get_task("classify").settings_file
    assert (out / settings_file).read_bytes() == (classify_dir / settings_file).read_bytes()
    model, tokenizer = load_classifier(classify_dir)
    session = make_session(out / "model.onnx", num_threads=1)
    for shape in SHAPES[:4]:
        batch = random_batch(np.random.default_rng(shape[0]), *shape, len(tokenizer))
        (expected,), (got,) = logits_pair(model.eval(), session, batch, ["logits"])
        assert got.shape == expected.shape == (shape[0], 3)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    texts = [(DATA / "sotu_1790_washington.txt").read_text()[:3000], "A short and plain text.",
             "The committee decided to build the bridge of stone."]
    expected = TextClassifier(classify_dir, device="cpu", precision="no").classify(texts)
    got = OnnxTextClassifier(out, num_threads=1).classify(texts)
    assert expected[0].windows > 5  # the long text is cut into windows whose logits are averaged
    assert [(p.label, p.windows) for p in got] == [(p.label, p.windows) for p in expected]
    for g, e in zip(got, expected):
        assert g.probabilities == pytest.approx(e.probabilities, abs=1e-5)


def test_command_prints_the_files_and_the_measured_difference(classify_export):
    out, printed = classify_export
    assert f"wrote {out} (text-classification, opset" in printed
    assert "model.onnx" in printed and "export_info.json" in printed and "tokenizer.json" in printed
    assert "max |logit difference| ONNX Runtime vs PyTorch on the export sample: fp32 " in printed


def _bert_folder(path: Path, tokenizer) -> Path:
    BertModel(BertConfig(vocab_size=len(tokenizer), **TINY)).save_pretrained(path)
    return path


@pytest.mark.parametrize("config, what", [
    ({"model_type": "spanbert_coref", "architectures": ["BertForCoreference"]}, "a BertForCoreference model"),
    ({"model_type": "spanbert_span_ner", "architectures": ["BertForSpanNER"]}, "a BertForSpanNER model"),
    ({"model_type": "spanbert", "architectures": ["SpanBertForPreTraining"]}, "a SpanBertForPreTraining model"),
    ({"model_type": "bert"}, "model_type 'bert'"),
])
def test_unsupported_tasks_are_one_line_config_errors(tmp_path, config, what):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as err:
        export_onnx(folder, tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{folder}: cannot export {what} to ONNX")
    assert "question-answering (spanbert finetune qa)" in message and "text-classification" in message
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_one_line_config_errors(tmp_path, qa_dir, qa_export, classify_export, tiny_tokenizer):
    cases = [
        (lambda: export_onnx(tmp_path / "absent", tmp_path / "out"), f"{tmp_path / 'absent'}: no such model folder"),
        (lambda: export_onnx(tmp_path, tmp_path / "out"), f"{tmp_path}: not a model folder (no config.json)"),
        (lambda: export_onnx(qa_dir, tmp_path / "out", opset=9), "opset: must be in [17, "),
        (lambda: export_onnx(qa_dir, qa_dir), "the export would replace the model folder"),
        (lambda: export_onnx(qa_dir, qa_dir.parent), "the export would replace the model folder"),
        (lambda: export_onnx(qa_dir, _bert_folder(tmp_path / "bert", tiny_tokenizer)),
         "exists and is not an ONNX export folder (no export_info.json)"),
        (lambda: OnnxQuestionAnswerer(qa_dir), f"{qa_dir}: not an ONNX export folder"),
        (lambda: OnnxQuestionAnswerer(tmp_path / "absent"), "no such ONNX export folder"),
        (lambda: OnnxQuestionAnswerer(classify_export[0]), "exported for task 'text-classification', not 'question-answering'"),
        (lambda: OnnxTextClassifier(classify_export[0], quantized=True), "export_info.json lists no int8 model (export with --quantize)"),
    ]
    bad = tmp_path / "badjson"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "bert",\n oops}')
    cases.append((lambda: export_onnx(bad, tmp_path / "out"), f"{bad / 'config.json'}:2: not valid JSON"))
    for call, message in cases:
        with pytest.raises(ConfigError) as err:
            call()
        assert message in str(err.value) and "\n" not in str(err.value), (message, str(err.value))
    assert not (tmp_path / "out").exists()


def test_a_failed_export_leaves_no_folder_and_keeps_an_earlier_export(tmp_path, classify_dir, classify_export,
                                                                       monkeypatch):
    def fail_half_way(module, example, outputs, path, opset, max_positions):
        path.write_bytes(b"half a graph")
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnx_export, "export_graph", fail_half_way)
    with pytest.raises(RuntimeError, match="disk full"):
        export_onnx(classify_dir, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary one

    earlier = tmp_path / "earlier"
    shutil.copytree(classify_export[0], earlier)
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    with pytest.raises(RuntimeError, match="disk full"):
        export_onnx(classify_dir, earlier)
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


@pytest.mark.slow
def test_real_size_minilm_qa_export_matches_pytorch(minilm_dir, tmp_path):
    torch.manual_seed(0)
    model, tokenizer = load_qa_model(minilm_dir)  # MiniLM-L6-H384 encoder, a fresh QA head
    get_task("qa").save(tmp_path / "qa", model, tokenizer, QASettings())
    info = export_onnx(tmp_path / "qa", tmp_path / "onnx", quantize=True)
    assert info["max_abs_logit_diff"]["fp32"] < 1e-4
    examples, _ = read_qa(DATA / "squad" / "xquad_en_sample.json")
    feats = build_features(examples[:8], tokenizer, WindowConfig())
    from spanbert.tasks.qa.features import collate_windows

    batch = collate_windows(feats, list(range(len(feats))), tokenizer.pad_token_id)
    session = make_session(tmp_path / "onnx" / "model.onnx")
    expected, got = logits_pair(model.eval(), session, batch, ["start_logits", "end_logits"])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)
    expected = QuestionAnswerer(tmp_path / "qa", device="cpu", precision="no").predict(examples)
    got = OnnxQuestionAnswerer(tmp_path / "onnx").predict(examples)
    assert [(p.text, p.start, p.end) for p in got] == [(p.text, p.start, p.end) for p in expected]
