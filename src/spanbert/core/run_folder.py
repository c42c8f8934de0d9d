"""The output folder of a fine-tuning run: one run per folder, and a final model that appears whole.

A fine-tuning writes into ``OUTPUT`` while it trains (``checkpoints/``, ``training_args.json``,
``finetune_metrics.csv``, ``dev_history.jsonl``) and, at the end, the model: weights, config,
tokenizer, the task's settings, the model card, ``finetune_summary.json`` and ``dev/``.

* A fresh run refuses a folder that is not empty (:func:`check_output_folder`), unless told to
  continue the run there (``--resume``) or to replace it (``--overwrite``, which deletes what an
  earlier run wrote, :func:`remove_previous_run`, and keeps every other file).
* The final model is built in a sibling folder (``.OUTPUT.staging``, :func:`staged_output`), which
  receives hard links to what ``OUTPUT`` already holds (the run's record and metrics, files of
  the user's), is renamed ``.OUTPUT.ready`` once complete, and then takes the place of ``OUTPUT``
  by two renames. Readers see the old folder or the whole new one. A crash between the two
  renames leaves no ``OUTPUT`` but a complete ``.OUTPUT.ready``: :func:`recover_output` (run at
  the start of every fine-tuning and resume) finishes the swap; a crash before ``.ready``
  exists leaves ``OUTPUT`` as it was, plus a staging folder it deletes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from spanbert.core.atomic import fsync_dir, normal_mode
from spanbert.core.errors import ConfigError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"  # every run's resumable checkpoints, step-00000123/ each
TRAINING_ARGS_FILE = "training_args.json"  # the options of a run, for --resume to compare
# The files of a saved model: weights, config, the tokenizer's files.
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "generation_config.json",
               "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt")
METRICS_FILE = "finetune_metrics.csv"
HISTORY_FILE = "dev_history.jsonl"
SUMMARY_FILE = "finetune_summary.json"
DEV_DIR = "dev"
MODEL_CARD = "README.md"
# Every fine-tuning card says this (see spanbert.core.checkpoints.model_card): --overwrite deletes a
# README.md only when it is one of ours.
CARD_MARKER = "fine-tuned with the `spanbert` toolkit"
# What a fine-tuning writes besides the model files (MODEL_FILES) and the card.
RUN_FILES = (CHECKPOINT_DIR, TRAINING_ARGS_FILE, METRICS_FILE, HISTORY_FILE, SUMMARY_FILE, DEV_DIR)
_SETTINGS_FILE = re.compile(r"[a-z]+_settings\.json")  # a task's settings: qa_settings.json, ner_settings.json, ...


def _siblings(out: Path) -> tuple[Path, Path, Path]:
    """(staging, ready, old): the folders of a final swap, beside ``out`` (an absolute path)."""
    return (out.with_name(f".{out.name}.staging"), out.with_name(f".{out.name}.ready"),
            out.with_name(f".{out.name}.old"))


def _swap(out: Path, ready: Path) -> None:
    """Put the complete folder ``ready`` in the place of ``out`` (absent or not) by renames."""
    old = _siblings(out)[2]
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)  # a crash from here until the next rename: recover_output finishes it
    os.replace(ready, out)
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover_output(output_dir: str | os.PathLike) -> str | None:
    """Finish or undo a final swap (:func:`staged_output`) that a crash cut short; returns what
    was done, in words, or None when there was nothing to do.

    A complete new folder (``.OUTPUT.ready``) replaces ``OUTPUT``; an incomplete one
    (``.OUTPUT.staging``) is deleted; a leftover ``.OUTPUT.old`` goes once ``OUTPUT`` exists.
    """
    out = Path(output_dir).resolve()  # "." has no name to put a sibling beside; a symbolic link keeps pointing here
    staging, ready, old = _siblings(out)
    done = None
    if staging.exists():
        shutil.rmtree(staging)
        done = f"deleted {staging.name}, a final model that a crash left half-written"
    if ready.exists():
        _swap(out, ready)
        done = f"finished replacing {out} by its new final model, which a crash had left in {ready.name}"
    elif old.exists() and not out.exists():  # not left by _swap's order; undone all the same
        os.replace(old, out)
        done = f"put back {out} from {old.name}"
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
    if done:
        logger.warning("%s: %s", out, done)
    return done


def _entries(out: Path) -> list[str]:
    """Names in ``out`` (none when it does not exist)."""
    return sorted(p.name for p in out.iterdir()) if out.is_dir() else []


def is_finished(output_dir: str | os.PathLike) -> bool:
    """Whether ``output_dir`` holds the final model of a finished fine-tuning (its summary)."""
    return (Path(output_dir) / SUMMARY_FILE).is_file()


def check_output_folder(output_dir: str | os.PathLike, *, resume: bool, overwrite: bool) -> None:
    """Refuse a fine-tuning into ``output_dir`` that would mix with what is there: a fresh run
    needs a new or empty folder unless ``overwrite``; ``resume`` continues the run there from its
    newest checkpoint, or starts one where there is none yet (a folder with a finished run or
    another model and no checkpoint is refused). Changes nothing.

    Raises:
        ConfigError: one line naming the folder and what to do instead.
    """
    out = Path(output_dir)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: choose one (--resume continues the run in --output, "
                          "--overwrite deletes it and starts afresh)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out}: not a folder")
    names = _entries(out)
    if not names or overwrite:
        return
    checkpoints = list_checkpoints(out)
    if resume:
        if not checkpoints and is_finished(out):
            raise ConfigError(f"--resume: the fine-tuning in {out} is finished ({SUMMARY_FILE}); there is nothing to "
                              "resume (--overwrite starts it again)")
        model = next((n for n in ("model.safetensors", "config.json") if n in names), None)
        if not checkpoints and model:
            raise ConfigError(f"--resume: {out} holds a model ({model}) but no checkpoint of a run to resume; replace it "
                              "with --overwrite, or choose a new or empty folder")
        return
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    hint = "continue its run with --resume, " if checkpoints else ""
    raise ConfigError(f"--output {out}: not empty ({shown}); {hint}replace the run there with --overwrite (files a "
                      "run did not write stay), or choose a new or empty folder")


def remove_previous_run(output_dir: str | os.PathLike) -> list[str]:
    """Delete what an earlier fine-tuning (or pre-training) run wrote into ``output_dir``: its
    checkpoints, record, metrics, dev results, model files, the task's settings and our model
    card. Every other file stays. Returns the names removed, sorted."""
    out = Path(output_dir)
    recover_output(out)
    names = _entries(out)
    extra = [*RUN_FILES, *(n for n in names if _SETTINGS_FILE.fullmatch(n))]
    if MODEL_CARD in names and is_our_card(out / MODEL_CARD, CARD_MARKER, 8192):
        extra.append(MODEL_CARD)
    return remove_run_files(out, RUN_FILES, MODEL_FILES, CARD_MARKER, extra=extra)


def _link_tree(src: Path, dst: Path) -> None:
    """Make ``dst`` hold what ``src`` holds: hard links to its files (copies where the file system
    has none), the same folders and symbolic links. ``src`` is left as it is."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir()
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _is_temporary(name: str) -> bool:
    """A temporary file of spanbert.core.atomic's writes (``.NAME.XXXX.tmp``): never carried over."""
    return name.startswith(".") and name.endswith(".tmp")


@contextlib.contextmanager
def staged_output(output_dir: str | os.PathLike, drop: Iterable[str] = (CHECKPOINT_DIR,)) -> Iterator[Path]:
    """Yield a new, empty folder beside ``output_dir`` to write the final model into; when the
    block succeeds, it replaces ``output_dir`` whole (see the module doc).

    What ``output_dir`` holds is carried into the new folder (hard links), except names the
    block wrote itself (the new ones win), temporary files, and ``drop`` (by default the
    checkpoints, which served to resume the run and are not needed once it is saved). On an
    exception the new folder is deleted and ``output_dir`` is left as it was.
    """
    out = Path(output_dir).resolve()
    recover_output(out)
    staging, ready, _ = _siblings(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    dropped = set(drop)
    try:
        yield staging
        for path in staging.rglob("*"):  # the new files: on disk, with the umask's mode, before they count
            if path.is_file() and not path.is_symlink():
                normal_mode(path)
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        for name in _entries(out):
            if name not in dropped and not _is_temporary(name) and not os.path.lexists(staging / name):
                _link_tree(out / name, staging / name)
        fsync_dir(staging)
        os.replace(staging, ready)  # complete from here: a crash now is finished by recover_output
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap(out, ready)


__all__ = ["check_output_folder", "recover_output", "remove_previous_run", "staged_output", "is_finished",
           "METRICS_FILE", "HISTORY_FILE", "SUMMARY_FILE", "DEV_DIR", "RUN_FILES", "CARD_MARKER"]


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint (``trainer_state.json`` written) under ``output_dir``, oldest first."""
    root = output_dir / CHECKPOINT_DIR
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = re.fullmatch(r"step-(\d+)", d.name)
            if m and (d / "trainer_state.json").is_file():
                found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint directory under ``output_dir``, or None."""
    found = list_checkpoints(Path(output_dir))
    return found[-1][1] if found else None


def is_our_card(path: Path, marker: str, limit: int = 4096) -> bool:
    """Whether ``path`` is a README.md that we wrote: ``marker`` in its first ``limit`` characters."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return marker in f.read(limit)
    except OSError:
        return False


def remove_run_files(output_dir: str | os.PathLike, run_files: Iterable[str], model_files: Iterable[str], card_marker: str,
                     extra: Iterable[str] = (), final_model: bool = True) -> list[str]:
    """Delete what a run wrote into ``output_dir``: ``run_files``, temporary files of writes cut
    short, the names in ``extra`` and, with ``final_model`` when the folder holds one (a
    config.json or model.safetensors), the final model's ``model_files`` and its model card (a
    README.md holding ``card_marker``). Every other file stays. Returns the names removed, sorted."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    final_model = final_model and any((out / name).exists() for name in ("config.json", "model.safetensors"))
    names = {*run_files, *(model_files if final_model else ()), *extra}
    removed = []
    for path in out.iterdir():
        name = path.name
        ours = (name in names
                or (final_model and re.fullmatch(r"model-\d+-of-\d+\.safetensors", name) is not None)
                or (final_model and name == MODEL_CARD and is_our_card(path, card_marker))
                or name.startswith(".final.")  # save_final_model's temporary folder
                or (name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in (*names, MODEL_CARD))))
        if not ours:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(name)
    return sorted(removed)


def remove_empty_folders(folder: Path, stop: Path | None) -> None:
    """Remove ``folder`` and then its parents while they are empty, up to (not including) ``stop``
    (None: only ``folder``); for undoing the folders a failed run created."""
    current = folder
    while True:
        try:
            current.rmdir()  # only an empty folder goes
        except OSError:
            return
        if stop is None or current.parent == stop or current.parent == current:
            return
        current = current.parent


def first_missing_folder(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (what ``mkdir(parents=True)``
    creates first), or None when ``folder`` exists."""
    missing = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing
