"""Optional features and the pip extras that install them.

``pip install spanbert`` is the core: pre-training, fine-tuning, evaluation and inference of
every task (torch, transformers, tokenizers, datasets, accelerate, safetensors, typer, tqdm,
numpy). A feature that needs more names its extra:

- ``serve``: fastapi, uvicorn and fastapi-offline (it ships Swagger UI's files, so ``/docs``
  works offline): ``spanbert serve``;
- ``summarize``: rouge-score: summarization's oracle labels and ROUGE, ``spanbert score rouge``;
- ``cmrc``: nltk: the CMRC 2018 metric, ``spanbert score cmrc``;
- ``plot``: matplotlib: the loss-curve PNG of pre-training and the ablation plot (skipped with
  one warning without it);
- ``chinese``: jieba: ``--word-segmenter jieba``;
- ``onnx``: onnx, onnxruntime, onnxscript: ``spanbert export onnx`` and ONNX Runtime inference;
- ``tensorboard``: tensorboard: pre-training also writes TensorBoard event files when it is
  installed;
- ``all``: every one of them; ``test``: all but tensorboard, plus the test tools and the
  reference libraries the tests compare with.

Coreference needs no extra: CEAF's assignment solver is our own
(:func:`spanbert.tasks.coref.metrics.max_weight_assignment`), tested against scipy's.

A feature that cannot work without its packages calls :func:`require`, which raises a one-line
:class:`~spanbert.core.errors.MissingExtraError` (the CLI prints it and exits 2); a side product
(a plot) calls :func:`optional` and is skipped with one warning. Modules import these packages
inside the functions that need them, never at module level, so that ``import spanbert`` and
every core command work without them (tests/test_extras.py checks this).
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from spanbert.core.errors import MissingExtraError

logger = logging.getLogger(__name__)

__all__ = ["install_hint", "optional", "require"]


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra``: ``pip install 'spanbert[extra]'``."""
    return f"pip install 'spanbert[{extra}]'"


def _import(module: str) -> tuple[ModuleType | None, str]:
    """``(module, "")`` when it imports, else ``(None, why not)``: "<name> is not installed"."""
    try:
        return importlib.import_module(module), ""
    except ModuleNotFoundError as e:  # the module, or a package it needs, is absent (or blocked)
        return None, f"{e.name or module} is not installed"
    except ImportError as e:  # installed but broken, e.g. mismatched versions
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return None, f"{module} cannot be imported: {first}"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import and return ``module``; when it (or a package it needs) is missing, raise
    :class:`MissingExtraError`: ``<feature> needs the '<extra>' extra (<name> is not installed):
    pip install 'spanbert[<extra>]'``.

    ``feature`` is what the user asked for, e.g. ``"spanbert serve"``.
    """
    found, why = _import(module)
    if found is None:
        raise MissingExtraError(f"{feature} needs the '{extra}' extra ({why}): {install_hint(extra)}", name=module)
    return found


def optional(module: str, extra: str, skipped: str) -> ModuleType | None:
    """Import and return ``module``, or log one warning saying what was ``skipped`` and return
    None when it is missing (for side products such as a plot, which must not fail a run)."""
    found, why = _import(module)
    if found is None:
        logger.warning("%s: %s (the '%s' extra): %s", skipped, why, extra, install_hint(extra))
    return found
