"""Package faces that import nothing until a name is used: ``import spanbert.tasks.qa`` stays
cheap (the command line parses its arguments before torch loads), and
``spanbert.tasks.qa.QuestionAnswerer`` imports its module on first use.

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"inference": ["QuestionAnswerer"], ...})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable[[str], object],
                                                                             Callable[[], list[str]]]:
    """``__all__``, a module ``__getattr__`` and ``__dir__`` for ``package``: each name listed under a
    submodule (``{"inference": ["QuestionAnswerer"]}``) is looked up there when first asked for."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return list(where), __getattr__, __dir__
