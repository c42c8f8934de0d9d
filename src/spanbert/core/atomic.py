"""Atomic writes: a reader sees either the old file/directory or the complete new one.

Files are written to a temporary name in the same directory, flushed, fsynced and renamed
over the target (``os.replace`` is atomic on POSIX). Directories are built under a temporary
name and renamed into place; a directory being replaced is first moved aside, so a crash
leaves either the old or the new directory plus, at worst, a stale ``*.old``/``*.tmp`` one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that the renames in it are on disk (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def normal_mode(path: Path) -> None:
    """Give a file we wrote the mode the user's umask asks for: some writers (safetensors,
    ``tempfile``) create files readable by their owner only, so another account (one running
    ``spanbert serve``, say) could read a model's config but not its weights."""
    os.chmod(path, 0o666 & ~_umask())


def publish_files(staging: str | os.PathLike, output_dir: str | os.PathLike) -> list[Path]:
    """Move each file of ``staging`` (written whole there, e.g. by ``save_pretrained``) into
    ``output_dir`` by an atomic rename, with the umask's mode and its bytes on disk first; returns
    the new paths. Used where a folder is updated file by file rather than replaced whole."""
    out = Path(output_dir)
    moved = []
    for f in sorted(Path(staging).iterdir()):
        if f.is_file():
            normal_mode(f)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(f, out / f.name)
            moved.append(out / f.name)
    fsync_dir(out)
    return moved


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        normal_mode(Path(tmp))  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds.

    On an exception the temporary directory is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it a normal directory's mode
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                normal_mode(f)
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
