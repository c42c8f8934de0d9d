"""Opening data sources the same way in every task: text files (gzip or not), JSON Lines,
folders saved with ``datasets.save_to_disk`` and ``hf:NAME[:CONFIG]`` hub data sets.

Every failure is one line naming the source (and the line, for JSONL); the error class is the
caller's, so each task keeps its own error type.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from spanbert.core.errors import CorpusError, SpanBertError


def open_text(path: str | os.PathLike, encoding: str = "utf-8", newline: str | None = None) -> IO[str]:
    """``path`` opened for reading text; ``.gz`` files are decompressed on the fly."""
    path = Path(path)
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding=encoding, newline=newline)
    return path.open(encoding=encoding, newline=newline)


def read_bytes(path: str | os.PathLike, what: str, error: type[SpanBertError] = CorpusError) -> bytes:
    """The bytes of the ``what`` file ``path``, decompressed when they are gzip (by the magic
    number, whatever the name); a missing file, a folder, an unreadable file or broken gzip data
    are one-line ``error``\\ s naming the path."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what} file") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} file ({err.strerror or err})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise error(f"{path}: not a valid gzip file ({err})") from None
    return raw


def iter_jsonl(path: str | os.PathLike, error: type[SpanBertError] = CorpusError) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSONL(.gz) file; a line that is not
    a JSON object, a missing file or undecodable bytes are one-line ``error``\\ s naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        with gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb") as f:
            for n, raw in enumerate(f, 1):  # bytes per line, so a decoding error has its exact line
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise error(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start})") from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise error(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(row, dict):
                    raise error(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
                yield n, row
    except (OSError, EOFError) as e:
        raise error(f"{path}: unreadable ({e})") from None


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def load_hub_dataset(spec: str, split: str = "train", *, streaming: bool = False, cache_dir: str | None = None,
                     error: type[SpanBertError] = CorpusError):
    """``hf:NAME[:CONFIG]`` through ``datasets.load_dataset`` (needs the network or a warm cache)."""
    import datasets

    name, _, config = spec.removeprefix("hf:").partition(":")
    if not name:
        raise error(f"{spec!r}: expected hf:NAME or hf:NAME:CONFIG")
    try:
        return datasets.load_dataset(name, config or None, split=split, streaming=streaming, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - datasets raises many types (network, missing config, bad split)
        raise error(f"{spec}: cannot load the dataset (split {split!r}): {_reason(err)}") from None


def load_saved_dataset(path: str | os.PathLike, split: str = "train", error: type[SpanBertError] = CorpusError):
    """A folder saved with ``save_to_disk``: a ``Dataset``, or the ``split`` of a ``DatasetDict``."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 - a damaged or foreign folder: missing shards, bad JSON, ...
        raise error(f"{path}: cannot load the saved dataset: {_reason(err)}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise error(f"{path}: no split {split!r} (splits: {', '.join(ds)})")
        ds = ds[split]
    return ds


def load_dataset_source(source: str | os.PathLike, split: str = "train", error: type[SpanBertError] = CorpusError):
    """The ``datasets.Dataset`` of an ``hf:`` spec or a saved folder; ``None`` for anything else
    (a file the caller parses itself)."""
    text = str(source)
    if text.startswith("hf:"):
        return load_hub_dataset(text, split, error=error)
    if Path(source).is_dir():
        return load_saved_dataset(source, split, error)
    return None


__all__ = ["open_text", "iter_jsonl", "load_hub_dataset", "load_saved_dataset", "load_dataset_source"]
