"""Export a fine-tuned task model folder to ONNX, checked against PyTorch before it is kept.

    info = export_onnx("runs/qa", "runs/qa-onnx", quantize=True)
    info["max_abs_logit_diff"]  # {'fp32': 2e-06, 'int8': 0.04}

The graph is captured by ``torch.onnx.export(..., dynamo=True)`` (``torch.export``), with the
batch and sequence axes dynamic (up to ``max_position_embeddings``), and weights stored inside
``model.onnx`` (models under 2 GB). Only stock ``transformers`` heads whose outputs are fixed-shape
functions of the tokens export: extractive QA (``start_logits``/``end_logits``, from
``spanbert finetune qa``) and sequence classification (``logits``, ``spanbert finetune classify``).
Our own span heads enumerate spans and coreference prunes them with data-dependent shapes.

The export folder is built under a temporary name beside ``output_dir`` and renamed into place
only after ``onnx.checker`` passed and ONNX Runtime reproduced PyTorch's logits on a sample
(two batches of different shapes, with padding), so a failed export leaves no folder behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spanbert.core.atomic import atomic_directory, atomic_write_json
from spanbert.core.errors import CheckpointError, ConfigError, one_line
from spanbert.core.checkpoints import read_model_config
from spanbert.onnx.runtime import EXPORT_INFO, make_session
from spanbert.tasks.protocol import get_task, task_names

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MIN_OPSET = 17  # LayerNormalization is an ONNX op from opset 17 on
FP32_TOLERANCE = 1e-3  # largest |ONNX Runtime - PyTorch| logit difference an fp32 export may show
INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")
QUANTIZATION = "onnxruntime quantize_dynamic: QInt8 weights per output channel, activations quantised at run time"

# A fixed, real-text sample: questions of different lengths, so the batch has padding.
SAMPLE_PAIRS = (
    ("Who wrote the letter?", "The letter was written by Ann Smith in Paris in 1850, two years after the revolution."),
    ("When?", "In the spring of 1850."),
    ("What did the committee decide about the new bridge over the river?",
     "After a long debate the committee decided to build the new bridge of stone, not of iron, and to open it "
     "to carts and walkers in the spring, when the river is low."),
)


@dataclass(frozen=True)
class OnnxTask:
    """A task whose fine-tuned folders export (a registered task with ``onnx_outputs``): how to
    recognise them and what the graph returns."""

    name: str  # the pipeline name, e.g. ``question-answering``
    task: str  # the registered task, e.g. ``qa``
    architecture_suffix: str  # of config.json's ``architectures`` entry, e.g. ``ForQuestionAnswering``
    outputs: tuple[str, ...]  # output fields of the transformers model, in graph order
    settings_file: str  # the settings our task code saves beside the weights
    made_by: str  # the command that writes such folders


TASKS = {t.card.pipeline_tag: OnnxTask(t.card.pipeline_tag, t.name, t.architectures[0], t.onnx_outputs, t.settings_file,
                                       f"spanbert finetune {t.name}")
         for t in map(get_task, task_names()) if t.onnx_outputs}
EXPORTABLE = "; ".join(f"{t.name} ({t.made_by})" for t in TASKS.values())


def detect_task(model_dir: str | os.PathLike) -> OnnxTask:
    """The exportable task of a model folder, from its ``config.json`` ``architectures``."""
    config = read_model_config(model_dir)
    model_type = str(config.get("model_type", ""))
    architectures = [str(a) for a in config.get("architectures") or []]
    if not model_type.startswith("spanbert"):  # our own heads and pre-training models never export
        for task in TASKS.values():
            if any(a.endswith(task.architecture_suffix) for a in architectures):
                return task
    what = f"a {architectures[0]} model" if architectures else f"model_type {model_type!r}"
    raise ConfigError(f"{model_dir}: cannot export {what} to ONNX; exportable tasks: {EXPORTABLE}")


def load_for_export(model_dir: str | os.PathLike, task: OnnxTask):
    """``(model, tokenizer)`` in fp32 eval mode, loaded by the task's own loader."""
    model, tokenizer, _ = get_task(task.task).load_trained(model_dir, dtype=torch.float32)
    return model.eval(), tokenizer


class LogitsModule(torch.nn.Module):
    """A transformers task model as ``torch.export`` sees it: named id tensors in, a tuple of
    the task's logits out (``(batch, seq)`` each for QA, ``(batch, labels)`` for classification)."""

    def __init__(self, model: torch.nn.Module, outputs: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.outputs = outputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        out = self.model(**inputs)
        return tuple(getattr(out, name) for name in self.outputs)


def input_names(tokenizer) -> list[str]:
    """Graph inputs: ids and attention mask, plus token types where the tokenizer makes them."""
    return [n for n in INPUT_ORDER if n != "token_type_ids" or n in tokenizer.model_input_names]


def sample_batches(tokenizer, names: list[str], max_positions: int) -> list[dict[str, torch.Tensor]]:
    """Two int64 batches of real text with different shapes: 3 padded pairs, and 1 longer pair.

    The first is the example ``torch.export`` traces (batch and length above 1, so neither
    axis is specialised); both are compared against PyTorch afterwards.
    """
    questions = [q for q, _ in SAMPLE_PAIRS]
    contexts = [c for _, c in SAMPLE_PAIRS]
    limit = min(max_positions, 192)
    first = tokenizer(questions, contexts, padding=True, truncation="only_second", max_length=limit, return_tensors="pt")
    second = tokenizer([questions[2]], [" ".join(contexts * 3)], truncation="only_second", max_length=limit, return_tensors="pt")
    return [{n: batch[n].to(torch.int64) for n in names} for batch in (first, second)]


def graph_opset(model_path: Path) -> int:
    """The default-domain opset an ONNX file was written for."""
    import onnx

    proto = onnx.load(str(model_path), load_external_data=False)
    return next(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def check_opset(opset: int | None) -> None:
    """A requested opset must be one the exporter can write (``None``: the exporter's choice)."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not MIN_OPSET <= opset <= newest:
        raise ConfigError(f"opset: must be in [{MIN_OPSET}, {newest}], got {opset}")


def export_graph(module: LogitsModule, example: dict[str, torch.Tensor], outputs: tuple[str, ...], path: Path,
                 opset: int | None, max_positions: int) -> None:
    """Write ``module`` to ``path`` with the dynamo exporter; batch and sequence axes dynamic."""
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=max_positions)
    dynamic = {name: {0: batch, 1: sequence} for name in example}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed. Skipping torchvision::nms" and the like
    try:
        with warnings.catch_warnings():
            # torch.export/onnxscript deprecation chatter; the export is verified numerically afterwards
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (), kwargs=example, input_names=list(example), output_names=list(outputs),
                                        opset_version=opset, dynamo=True, dynamic_shapes=dynamic, external_data=False,
                                        verbose=False)
            program.save(str(path), external_data=False)
    finally:
        exporter_log.setLevel(level)


def check_graph(path: Path) -> None:
    """``onnx.checker`` with full shape inference; a failure is a CheckpointError naming the file."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise CheckpointError(f"{path.name}: exported graph fails onnx.checker ({one_line(e, None)})") from None


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation: weights QInt8 with one scale per output channel, activations
    quantised per batch at run time.

    Per-channel scales: on a MiniLM QA model fine-tuned on SQuAD, one scale per tensor left the
    argmax start and end of 73% of the SQuAD sample windows unchanged, per-channel 91%, at the
    same speed. ``quant_pre_process`` is not run: its symbolic shape inference fails on the
    dynamo graph ("Incomplete symbolic shape inference"), and its other passes alone changed
    neither agreement.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def max_logit_difference(session, module: LogitsModule, batches: list[dict[str, torch.Tensor]]) -> float:
    """Largest |ONNX Runtime - PyTorch| over every output and position of ``batches``."""
    worst = 0.0
    names = [o.name for o in session.get_outputs()]
    for batch in batches:
        with torch.inference_mode():
            expected = [t.float().numpy() for t in module(**batch)]
        got = session.run(names, {k: v.numpy() for k, v in batch.items()})
        for e, g in zip(expected, got):
            if e.shape != g.shape:
                raise CheckpointError(f"ONNX output shape {g.shape} differs from PyTorch's {e.shape}")
            worst = max(worst, float(np.abs(e - g).max()))
    return worst


def library_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript
    import transformers

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxscript": onnxscript.__version__, "transformers": transformers.__version__}


def check_output_dir(model_dir: Path, output_dir: Path) -> None:
    """The output must not hold the model, and may only replace an empty folder or an earlier export."""
    source, target = model_dir.resolve(), output_dir.resolve()
    if target == source or target in source.parents:
        raise ConfigError(f"{output_dir}: the export would replace the model folder {model_dir}; give another --output")
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"{output_dir}: exists and is not a folder")
        if any(target.iterdir()) and not (target / EXPORT_INFO).is_file():
            raise ConfigError(f"{output_dir}: exists and is not an ONNX export folder (no {EXPORT_INFO}); "
                              "give a new or empty folder")


def settings_files(model_dir: Path) -> list[Path]:
    """The JSON settings files saved beside the weights (e.g. ``qa_settings.json``)."""
    return sorted(p for p in model_dir.glob("*_settings.json") if p.is_file())


def require_onnx_libraries() -> None:
    """A one-line ConfigError when onnx, onnxruntime or onnxscript is not installed."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)}: pip install 'spanbert[onnx]'")


def export_onnx(model_dir: str | os.PathLike, output_dir: str | os.PathLike, *, quantize: bool = False,
                opset: int | None = None, num_threads: int | None = None) -> dict:
    """Export a fine-tuned QA or classification folder to ONNX in ``output_dir`` (atomically).

    Writes ``model.onnx`` (fp32; dynamic batch and sequence axes), with ``quantize`` also
    ``model.int8.onnx`` (dynamic int8), the tokenizer, ``config.json``, the task's settings
    files and ``export_info.json``. ``opset``: the ONNX opset (default: the exporter's choice).
    ``num_threads``: ONNX Runtime threads for the export-time check (default: its own).

    Returns the ``export_info.json`` object: task, opset, input and output names, library
    versions, files, and the max |ONNX Runtime - PyTorch| logit difference on a sample
    (``max_abs_logit_diff``: ``fp32``, ``int8``). An unknown or unsupported folder is a
    one-line ConfigError; an fp32 difference above ``FP32_TOLERANCE`` a CheckpointError.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    require_onnx_libraries()
    task = detect_task(model_dir)
    check_opset(opset)
    check_output_dir(model_dir, output_dir)
    model, tokenizer = load_for_export(model_dir, task)
    names = input_names(tokenizer)
    max_positions = int(getattr(model.config, "max_position_embeddings", 512))
    batches = sample_batches(tokenizer, names, max_positions)
    module = LogitsModule(model, task.outputs).eval()

    with atomic_directory(output_dir) as tmp:
        export_graph(module, batches[0], task.outputs, tmp / FP32_FILE, opset, max_positions)
        check_graph(tmp / FP32_FILE)
        diffs = {"fp32": max_logit_difference(make_session(tmp / FP32_FILE, num_threads), module, batches), "int8": None}
        if not diffs["fp32"] <= FP32_TOLERANCE:
            raise CheckpointError(f"{model_dir}: ONNX Runtime's logits differ from PyTorch's by {diffs['fp32']:.3g} "
                                  f"(> {FP32_TOLERANCE:g}); export not kept")
        if quantize:
            quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE)
            check_graph(tmp / INT8_FILE)
            diffs["int8"] = max_logit_difference(make_session(tmp / INT8_FILE, num_threads), module, batches)
        tokenizer.save_pretrained(str(tmp))
        shutil.copyfile(model_dir / "config.json", tmp / "config.json")
        copied = settings_files(model_dir)
        for f in copied:
            shutil.copyfile(f, tmp / f.name)
        info = {
            "task": task.name,
            "architecture": type(model).__name__,
            "source": str(model_dir.resolve()),
            "exporter": "torch.onnx.export(dynamo=True)",
            "opset": graph_opset(tmp / FP32_FILE),
            "inputs": names,
            "outputs": list(task.outputs),
            "dynamic_axes": {"batch": 0, "sequence": 1},
            "max_sequence_length": max_positions,
            "files": {"fp32": FP32_FILE, "int8": INT8_FILE if quantize else None},
            "quantization": QUANTIZATION if quantize else None,
            "settings_files": [f.name for f in copied],
            "max_abs_logit_diff": diffs,
            "sample_shapes": [list(b["input_ids"].shape) for b in batches],
            "versions": library_versions(),
        }
        atomic_write_json(tmp / EXPORT_INFO, info)
    return info


__all__ = ["export_onnx", "detect_task", "TASKS", "OnnxTask", "EXPORT_INFO", "FP32_FILE", "INT8_FILE", "FP32_TOLERANCE"]
