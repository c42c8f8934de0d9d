"""The tasks the server knows: how a model folder's task is recognised, how it is loaded and
how its answers become JSON objects.

The fine-tuning tasks come from the task registry (:mod:`spanbert.tasks.protocol`): each
declares its API name, how its folders are recognised, the request fields holding text, its
Python API (:attr:`~spanbert.tasks.protocol.Task.predictor`) and ``serve(api, items, options)``,
which turns one call's answers into one JSON-ready dict per request item. Span infilling
(``fill``, the pre-training heads) is the server's own. The server calls a task with the items
of several requests at once (see :mod:`.batcher`), and weighs each request in tokens of the
model's own tokenizer (:class:`TokenCounter`).

A folder's task comes from its files, as written by ``spanbert finetune <task>`` or
``spanbert pretrain``: our heads' ``model_type`` first, then a task settings file, then a stock
``transformers`` head's architecture name.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanbert.core.errors import ConfigError

# The endpoints with a request schema of their own (spanbert.serve.schemas), in the order
# /v1/models lists them; another registered task is served at /v1/<its api name>.
TASKS = ("qa", "fill", "classify", "relations", "entities", "coref", "summarize")
FILL_MODEL_TYPE = "spanbert"  # an older `spanbert pretrain` folder: MLM + SBO heads in one model type
# spanbert.pretrain.modeling.SPANBERT_CONFIG_FILE: a `spanbert pretrain` / `convert` folder, a
# BertForMaskedLM checkpoint with the SBO head beside it
FILL_SETTINGS_FILE = "spanbert_config.json"


def registered(task: str):
    """The registered fine-tuning task served as ``task`` (None for ``fill``)."""
    from spanbert.tasks.protocol import task_for_api

    return None if task == "fill" else task_for_api(task)


def text_fields(task: str) -> tuple[str, ...]:
    """The request fields of ``task`` that hold text (weighed in tokens, limited in length)."""
    found = registered(task)
    return found.text_fields if found is not None else ("text",)


def detect_task(folder: str | os.PathLike) -> str:
    """The task (an endpoint name) of a model folder; a one-line :class:`ConfigError` when the
    folder is missing, has no readable ``config.json``, or its task cannot be told."""
    from spanbert.core.checkpoints import read_model_config
    from spanbert.tasks.protocol import get_task, task_names

    path = Path(folder)
    try:
        data = read_model_config(path)
    except ConfigError as e:
        raise ConfigError(f"--model {e}") from None
    tasks = [get_task(name) for name in task_names()]
    model_type = data.get("model_type")
    by_type = {FILL_MODEL_TYPE: "fill", **{m: t.api_name or t.name for t in tasks for m in t.model_types}}
    if model_type in by_type:
        return by_type[model_type]
    for file_name, task in {FILL_SETTINGS_FILE: "fill", **{t.settings_file: t.api_name or t.name for t in tasks}}.items():
        if (path / file_name).is_file():
            return task
    by_arch = {a: t.api_name or t.name for t in tasks for a in t.architectures}
    for arch in data.get("architectures") or []:
        for suffix, task in by_arch.items():
            if isinstance(arch, str) and arch.endswith(suffix):
                return task
    raise ConfigError(f"--model {folder}: cannot tell its task (model_type {model_type!r}, architectures "
                      f"{data.get('architectures')!r}); serve a folder written by `spanbert finetune <task>` or `spanbert pretrain`")


# -- span infilling ---------------------------------------------------------------------------

def _load_fill(folder: Path, device: str | None):
    import torch

    from spanbert.pretrain.fill import SpanFiller

    return SpanFiller.from_pretrained(folder, device=device or ("cuda" if torch.cuda.is_available() else "cpu"))


def fill_result(result, offsets: list[tuple[int, int]]) -> dict:
    """A :class:`~spanbert.pretrain.fill.FillResult` as the API's result.

    ``text``: the input re-written by the joint head; ``filled``: the text re-written by every
    head; per masked run: character ``start``/``end`` of its [MASK] tokens in the input
    (``offsets`` are the input's token offsets, as the filler tokenised it), ``token_start``/
    ``token_end`` (inclusive), and per head its ``text``, ``tokens``, per-token
    ``probabilities``, their product ``probability`` and ``top_k`` (per position; empty for
    the iterative head, which has no single distribution per position).
    """
    spans = []
    for span in result.spans:
        predictions = {}
        for head, p in span.predictions.items():
            predictions[head] = {
                "text": p.text, "tokens": list(p.tokens), "probabilities": [float(x) for x in p.probabilities],
                "probability": float(math.prod(p.probabilities)),
                "top_k": [[{"token": t, "probability": float(q)} for t, q in position] for position in p.top_k],
            }
        spans.append({"start": int(offsets[span.start][0]), "end": int(offsets[span.end][1]),
                      "token_start": span.start, "token_end": span.end, "predictions": predictions})
    return {"text": result.filled_text["joint"], "filled": dict(result.filled_text), "spans": spans}


def _predict_fill(api, items: list[dict], options: dict) -> list[dict]:
    texts = [it["text"] for it in items]
    results = api.fill(texts, top_k=options.get("top_k", 5))
    # the same tokenisation as the filler's (truncated; padding does not move positions)
    offsets = api.tokenizer(texts, truncation=True, return_offsets_mapping=True)["offset_mapping"]
    return [fill_result(r, o) for r, o in zip(results, offsets)]


def labels_of(task: str, api) -> list[str] | None:
    """The labels a model can output (classes, relation types, entity types), else None."""
    found = registered(task)
    return found.labels(api) if found is not None else None


# -- weighing requests in tokens --------------------------------------------------------------

def item_texts(task: str, item: dict) -> list[str]:
    """The texts of one request item (e.g. a QA item's question and context), those given."""
    return [item[f] for f in text_fields(task) if item.get(f) is not None]


class TokenCounter:
    """Counts the tokens of request items with a copy of a model's tokenizer.

    The copy is private: a Hugging Face fast tokenizer raises ``RuntimeError: Already borrowed``
    when one object is used from two threads at once, so every thread that counts needs its own
    counter (the server keeps one per counting thread). The count is of the item's texts without
    special tokens, untruncated (a model may read fewer: e.g. span infilling truncates at its
    maximum length, while QA and NER slide windows over everything).
    """

    def __init__(self, tokenizer: Any):
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # a fast (Rust) tokenizer: a fresh Rust object, never truncating or padding
            from tokenizers import Tokenizer

            self._backend = Tokenizer.from_str(backend.to_str())
            self._backend.no_truncation()
            self._backend.no_padding()
            self._slow = None
        else:
            self._backend, self._slow = None, copy.deepcopy(tokenizer)

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, in order."""
        if not texts:
            return []
        if self._backend is not None:
            return [len(e.ids) for e in self._backend.encode_batch(list(texts), add_special_tokens=False)]
        return [len(self._slow.tokenize(t)) for t in texts]

    def count_items(self, task: str, items: Sequence[dict]) -> list[int]:
        """Tokens of each request item: the sum over its texts (:func:`item_texts`)."""
        texts, owner = [], []
        for i, item in enumerate(items):
            for text in item_texts(task, item):
                texts.append(text)
                owner.append(i)
        out = [0] * len(items)
        for i, n in zip(owner, self.count(texts)):
            out[i] += n
        return out


def with_own_tokenizer(api: Any) -> Any:
    """A shallow copy of a task's API object whose ``tokenizer`` is a deep copy: it shares the
    model (its weights and buffers; torch forward passes may run in two threads at once) but
    not the tokenizer, which must not be used from two threads at once."""
    twin = copy.copy(api)
    twin.tokenizer = copy.deepcopy(api.tokenizer)
    return twin


@dataclass
class ServedModel:
    """One loaded model: its public ``name`` (the folder name), task, Python API object and labels."""

    name: str
    task: str
    folder: Path
    api: Any
    labels: list[str] | None
    handler: Any = None  # the registered task serving it (None: span infilling), looked up once at load

    @classmethod
    def load(cls, folder: str | os.PathLike, task: str | None = None, device: str | None = None) -> ServedModel:
        """Load ``folder`` through its task's Python API (its task detected when not given)."""
        path = Path(folder)
        task = task or detect_task(path)
        found = registered(task)
        api = found.load_predictor(path, device) if found is not None else _load_fill(path, device)
        return cls(path.name, task, path, api, labels_of(task, api), found)

    def predict(self, items: list[dict], options: dict | None = None) -> list[dict]:
        """One JSON-ready result per item (see each task's ``serve``)."""
        if self.handler is not None:
            return self.handler.serve(self.api, items, options or {})
        return _predict_fill(self.api, items, options or {})

    def twin(self) -> ServedModel:
        """The same model with its own tokenizer, for a second thread (:func:`with_own_tokenizer`)."""
        return dataclasses.replace(self, api=with_own_tokenizer(self.api))

    def token_counter(self) -> TokenCounter:
        """A counter of this model's tokens, for one thread."""
        return TokenCounter(self.api.tokenizer)


__all__ = ["TASKS", "ServedModel", "TokenCounter", "detect_task", "item_texts", "labels_of", "text_fields",
           "with_own_tokenizer", "fill_result"]
