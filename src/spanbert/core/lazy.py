"""Package faces that import nothing until a name is used: ``import spanbert.tasks.qa`` stays
cheap (the command line parses its arguments before torch loads), and
``spanbert.tasks.qa.QuestionAnswerer`` imports its module on first use.

    __getattr__, __dir__ = lazy_exports(__name__, {"QuestionAnswerer": "inference", ...})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``: each name of ``where`` is looked
    up in the submodule it maps to (``{"QuestionAnswerer": "inference"}``) when first asked for."""
    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
