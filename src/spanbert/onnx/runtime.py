"""ONNX Runtime in place of PyTorch for the forward pass of the QA and classification APIs.

    qa = OnnxQuestionAnswerer("runs/qa-onnx")            # a folder written by export_onnx
    qa.answer(["Who wrote it?"], ["It was written by Ann."])[0].text  # 'Ann'

:class:`OrtModel` puts an ``onnxruntime.InferenceSession`` (CPU) behind the interface the task
code calls on a ``transformers`` model: ``model(**batch)`` returns an object whose fields are the
graph's outputs as tensors, and ``model.config`` is the exported ``config.json``. The QA and
classification classes are the PyTorch ones with that model plugged in, so windowing, batching,
decoding and validation are the very same code; only the forward pass differs.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import torch

from spanbert.tasks.classify.inference import TextClassifier
from spanbert.core.errors import CheckpointError, ConfigError, one_line
from spanbert.tasks.qa.inference import QuestionAnswerer
from spanbert.tasks.qa.settings import QASettings
from spanbert.core.checkpoints import read_settings
from spanbert.tasks.protocol import get_task

EXPORT_INFO = "export_info.json"  # what an export folder holds besides the graphs (see .export)


def make_session(path: str | os.PathLike, num_threads: int | None = None):
    """A CPU ``InferenceSession`` for ``path``; ``num_threads``: intra-op threads (default: ORT's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/... types
        raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({one_line(e, None)})") from None


def read_export_info(export_dir: str | os.PathLike, task: str | None = None) -> dict:
    """``export_info.json`` of an export folder, checked to be for ``task`` when given."""
    path = Path(export_dir)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such ONNX export folder")
    info = read_settings(path, EXPORT_INFO)
    if info is None:
        raise ConfigError(f"{path}: not an ONNX export folder (no {EXPORT_INFO}; make one with spanbert export onnx)")
    if task is not None and info.get("task") != task:
        raise ConfigError(f"{path}: exported for task {info.get('task')!r}, not {task!r}")
    return info


def model_file(export_dir: str | os.PathLike, info: dict, quantized: bool) -> Path:
    """The fp32 or int8 graph of an export folder."""
    name = (info.get("files") or {}).get("int8" if quantized else "fp32")
    if not name:
        what = "int8 model (export with --quantize)" if quantized else "fp32 model"
        raise ConfigError(f"{export_dir}: {EXPORT_INFO} lists no {what}")
    file = Path(export_dir) / name
    if not file.is_file():
        raise CheckpointError(f"{file}: missing (listed in {EXPORT_INFO})")
    return file


def load_export_tokenizer(export_dir: str | os.PathLike):
    """The exported tokenizer, loaded as :func:`spanbert.core.checkpoints.load_task_model` loads it."""
    from transformers import AutoTokenizer

    from spanbert.core.checkpoints import load_tokenizer

    try:
        return load_tokenizer(str(export_dir))
    except Exception:  # noqa: BLE001 - the same fallback as load_task_model for non-WordPiece models
        return AutoTokenizer.from_pretrained(str(export_dir))


class OrtModel(torch.nn.Module):
    """An ONNX Runtime session answering ``model(**batch)`` like a transformers task model.

    Tensors of ``batch`` that the graph takes are fed as numpy arrays (others, e.g. token
    types a graph without them gets from a generic collate, are ignored); the outputs come back
    as CPU tensors under their graph names (``start_logits``, ``logits``, ...).
    """

    def __init__(self, onnx_path: str | os.PathLike, config, num_threads: int | None = None):
        super().__init__()
        self.session = make_session(onnx_path, num_threads)
        self.config = config
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # The task code asks next(model.parameters()).device where to put batches: here, the CPU.
        self.device_anchor = torch.nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, **batch: torch.Tensor) -> SimpleNamespace:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise ConfigError(f"ONNX model input {missing[0]!r} missing from the batch (has {sorted(batch)})")
        feed = {n: batch[n].detach().cpu().numpy() for n in self.input_names}
        outputs = self.session.run(self.output_names, feed)
        return SimpleNamespace(**{n: torch.from_numpy(o) for n, o in zip(self.output_names, outputs)})


def load_ort_model(export_dir: str | os.PathLike, task: str, quantized: bool, num_threads: int | None):
    """``(OrtModel, tokenizer, export info)`` of an export folder for ``task``."""
    from transformers import AutoConfig

    info = read_export_info(export_dir, task)
    model = OrtModel(model_file(export_dir, info, quantized), AutoConfig.from_pretrained(str(export_dir)), num_threads)
    return model, load_export_tokenizer(export_dir), info


class OnnxQuestionAnswerer(QuestionAnswerer):
    """:class:`~spanbert.tasks.qa.inference.QuestionAnswerer` on an ONNX export (CPU, fp32 or int8).

    ``answer`` and ``predict`` are inherited: same windows, batching, decoding and errors.
    ``num_threads``: ONNX Runtime intra-op threads (default: its own choice).
    """

    def __init__(self, export_dir: str | os.PathLike, *, quantized: bool = False, batch_size: int = 32,
                 num_threads: int | None = None, settings: QASettings | None = None):
        # QuestionAnswerer.__init__ loads a PyTorch model; set the same attributes instead.
        self.model, self.tokenizer, self.export_info = load_ort_model(export_dir, "question-answering", quantized,
                                                                      num_threads)
        self.settings = settings or get_task("qa").load_settings(export_dir)
        self.device = torch.device("cpu")
        self.batch_size = batch_size
        self.precision = "no"  # no autocast: the graph's own precision applies


class OnnxTextClassifier(TextClassifier):
    """:class:`~spanbert.tasks.classify.inference.TextClassifier` on an ONNX export (CPU, fp32 or int8)."""

    def __init__(self, export_dir: str | os.PathLike, *, quantized: bool = False, batch_size: int = 64,
                 num_threads: int | None = None):
        # TextClassifier.__init__ loads a PyTorch model; set the same attributes instead.
        self.model, self.tokenizer, self.export_info = load_ort_model(export_dir, "text-classification", quantized,
                                                                      num_threads)
        self.settings = get_task("classify").load_settings(export_dir)
        self.device = torch.device("cpu")
        self.batch_size, self.precision = batch_size, "no"
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]


__all__ = ["OnnxQuestionAnswerer", "OnnxTextClassifier", "OrtModel", "make_session", "read_export_info", "model_file"]
