"""ONNX export of fine-tuned task models, and ONNX Runtime versions of their Python APIs.

* :mod:`.export`: :func:`export_onnx` turns a ``spanbert finetune qa`` or ``finetune classify``
  folder into an export folder (``model.onnx``, optional ``model.int8.onnx``, tokenizer,
  settings, ``export_info.json``), checked against PyTorch at export time.
* :mod:`.runtime`: :class:`OnnxQuestionAnswerer` and :class:`OnnxTextClassifier` answer like
  :class:`spanbert.tasks.qa.QuestionAnswerer` / :class:`spanbert.tasks.classify.TextClassifier`, with an
  ONNX Runtime session (CPU) doing the forward pass.
* :mod:`.cli`: ``spanbert export onnx``.

    from spanbert.onnx import export_onnx, OnnxQuestionAnswerer
    export_onnx("runs/qa", "runs/qa-onnx", quantize=True)
    OnnxQuestionAnswerer("runs/qa-onnx", quantized=True).answer("Who wrote it?", "Ann wrote it.")[0].text
"""

from __future__ import annotations

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "export": ["export_onnx", "EXPORT_INFO", "TASKS"],
    "runtime": ["OnnxQuestionAnswerer", "OnnxTextClassifier", "OrtModel", "read_export_info"],
})
