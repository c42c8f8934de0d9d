"""Small element-wise CPU kernels, fused by ``torch.compile`` where it works, eager where it does not.

A chain of element-wise tensor ops on a CPU makes one pass over memory per op; on a bf16 CPU
step those passes cost more than the matrix products around them (issue 18's profile).
:class:`CpuKernel` wraps a pure function of tensors: on CPU tensors it runs the function
``torch.compile``'d (Inductor emits one vectorised C++ loop per fusion group; ``dynamic=True``, so
new sizes do not recompile), and anything else runs it eagerly. Calls whose largest tensor has
fewer than ``min_numel`` elements also run eagerly: compiling costs ~5-15 s once per process (less
with Inductor's on-disk cache) and saves ~3 ns an element a call, which small tensors (toy
models, tests) never earn back. If compiling fails, e.g. on a machine
without a C++ compiler, one warning is logged and the eager function is used from then on, so
the result never depends on whether the compiler is there, only the speed does. Set
``SPANBERT_EAGER_KERNELS=1`` to skip compiling altogether.

The wrapped functions must give the same results compiled and eager (integer arithmetic, or
float arithmetic where the tests compare both within rounding).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)


class CpuKernel:
    """``fn`` compiled for CPU tensors, with an eager fallback (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], min_numel: int = 1 << 16):
        self.fn = fn
        self.min_numel = min_numel
        self.compiled: Callable[..., Any] | None = None
        self.enabled = os.environ.get("SPANBERT_EAGER_KERNELS", "") in ("", "0")

    def compiles(self, numel: int) -> bool:
        """Whether a call on CPU tensors whose largest has ``numel`` elements runs the compiled function."""
        return self.enabled and numel >= self.min_numel and not torch.compiler.is_compiling()

    def will_compile(self, *args: Any) -> bool:
        """Whether a call with these arguments runs the compiled function."""
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        return all(t.device.type == "cpu" for t in tensors) and self.compiles(max((t.numel() for t in tensors), default=0))

    def __call__(self, *args: Any) -> Any:
        if not self.will_compile(*args):
            return self.fn(*args)
        if self.compiled is None:
            self.compiled = torch.compile(self.fn, dynamic=True)
        try:
            with torch.autocast("cpu", enabled=False):
                return self.compiled(*args)
        except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
            self.enabled = False
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            logger.warning("torch.compile of %s failed (%s); running it eagerly", self.fn.__name__, first)
            return self.fn(*args)


def cpu_kernel(fn: Callable[..., Any]) -> CpuKernel:
    """Decorator: ``fn`` becomes a :class:`CpuKernel`."""
    return CpuKernel(fn)


__all__ = ["CpuKernel", "cpu_kernel"]
