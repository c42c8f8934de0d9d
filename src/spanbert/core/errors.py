"""User-facing errors.

Every problem caused by the user's input (a missing file, a malformed line, an unknown
preset) is raised as a :class:`SpanBertError` whose message is one line naming the file,
line or field at fault. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations


class SpanBertError(Exception):
    """An error in the user's input, reported as one line by the CLI."""


class CorpusError(SpanBertError):
    """A corpus file is missing, empty, undecodable or malformed."""


class ConfigError(SpanBertError):
    """An option, preset or configuration field has a bad value."""


class TokenizerError(SpanBertError):
    """A tokenizer cannot be used (not a fast tokenizer, no mask token, ...)."""


class CheckpointError(SpanBertError):
    """A model or checkpoint directory is missing or incomplete."""


class MissingExtraError(SpanBertError, ImportError):
    """A feature needs an optional dependency (a pip extra) that is not installed.

    Also an :class:`ImportError`, so code that guards an optional import keeps working."""


def one_line(err: BaseException, limit: int | None = 200, *, last: bool = False) -> str:
    """An exception's message as the one line a user sees: its first non-blank line (``last``:
    its last, where a library puts the cause at the end of a long message), whitespace
    collapsed, cut to ``limit`` characters (None: whole); the exception type's name when the
    message is empty."""
    lines = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]
    text = (lines[-1] if last else lines[0]) if lines else type(err).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
