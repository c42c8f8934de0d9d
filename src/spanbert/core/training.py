"""What every training loop shares (pre-training, :mod:`spanbert.pretrain.train`, and fine-tuning,
:mod:`spanbert.tasks.finetune`): the optimizer and its state as safetensors; checkpoints written,
pruned, read, chosen on ``--resume`` (damaged ones set aside) and loaded back; a process's random
state; the comparison of a resumed run's settings with the stored run's; the library versions a run
records; the metrics CSV, a session's clock and time budget, the progress bar."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spanbert.core.atomic import atomic_directory, atomic_write_json, atomic_write_text
from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.core.run_folder import CHECKPOINT_DIR, TRAINING_ARGS_FILE, list_checkpoints

logger = logging.getLogger(__name__)


# -- optimizer ----------------------------------------------------------------------------------


def adamw(named_parameters: Iterable[tuple[str, torch.nn.Parameter]], lr: float, weight_decay: float,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
          head_lr: float | None = None, encoder_prefix: str = "bert.") -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only: biases and LayerNorm weights (all 1-D) get none.

    With ``head_lr``, parameters outside the encoder (names not starting with
    ``encoder_prefix``) train at that peak rate instead of ``lr`` (a fresh task head learns
    faster than the pre-trained encoder may move). Fused where the parameters live on CPU or
    CUDA. Shared by pre-training and fine-tuning.
    """
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in named_parameters:
        head = head_lr is not None and not name.startswith(encoder_prefix)
        groups.setdefault((p.ndim >= 2, head), []).append(p)
    param_groups = [{"params": ps, "weight_decay": weight_decay if decay else 0.0, "lr": head_lr if head else lr}
                    for (decay, head), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))]
    if not param_groups:  # torch refuses an empty list; keep the old behaviour of two empty groups
        param_groups = [{"params": [], "weight_decay": weight_decay}, {"params": [], "weight_decay": 0.0}]
    params = [p for g in param_groups for p in g["params"]]
    fused = bool(params) and params[0].device.type in ("cpu", "cuda")
    return torch.optim.AdamW(param_groups, lr=lr, betas=betas, eps=eps, fused=fused)


def optimizer_to_safetensors(opt: torch.optim.Optimizer, sd: dict | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state (``sd``: its state dict, default ``opt.state_dict()``) as (tensors for a
    safetensors file, JSON-able rest: param groups and scalar state); :func:`optimizer_from_safetensors` reverses it."""
    sd = opt.state_dict() if sd is None else sd
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_safetensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                               sharded: bool = False) -> None:
    """Load into ``opt`` a state split by :func:`optimizer_to_safetensors` (``sharded``: FSDP2 parameters)."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    groups = meta["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    if sharded:  # FSDP2: each process keeps its shard of every whole tensor (no communication)
        from torch.distributed.tensor import distribute_tensor

        params = [p for g in opt.param_groups for p in g["params"]]
        for idx, st in state.items():
            p = params[idx]
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape:
                    st[k] = distribute_tensor(v.to(p.device), p.device_mesh, p.placements, src_data_rank=None)
    opt.load_state_dict({"state": state, "param_groups": groups})


# -- random state ---------------------------------------------------------------------------------


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's random state: torch (CPU, and CUDA when used) as tensors, numpy's and
    Python's global generators as JSON-able lists. :func:`restore_rng` puts it back."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss]}


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Set the generators of a :func:`capture_rng` state: torch's always, CUDA's, numpy's and
    Python's where the state has them (a pre-training checkpoint keeps torch's only)."""
    torch.set_rng_state(state["torch"].clone())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].clone(), device)
    if state.get("numpy") is not None:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if state.get("python") is not None:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


def rng_tensors(states: Sequence[Mapping[str, Any]], joined: bool = False) -> dict[str, torch.Tensor]:
    """The contents of ``rng.safetensors`` from every process's :func:`capture_rng` state, in rank
    order: ``rank{r}`` torch's CPU state and ``rank{r}.cuda`` the CUDA one (fine-tuning), or with
    ``joined`` one ``rank{r}`` of the two concatenated (the layout pre-training has always written,
    kept so that its checkpoints stay as they were). :func:`rng_of_rank` reads both."""
    found = {}
    for rank, state in enumerate(states):
        cuda = state.get("cuda")
        if joined:
            found[f"rank{rank}"] = state["torch"] if cuda is None else torch.cat([state["torch"], cuda])
        else:
            found[f"rank{rank}"] = state["torch"]
            if cuda is not None:
                found[f"rank{rank}.cuda"] = cuda
    return found


def rng_of_rank(rngs: Mapping[str, torch.Tensor], rank: int, where: Path) -> dict[str, torch.Tensor | None]:
    """The torch state (``torch``, ``cuda``) of process ``rank`` in the ``rng.safetensors`` of the
    checkpoint ``where``, in either layout of :func:`rng_tensors`.

    Raises:
        CheckpointError: the checkpoint was written by fewer processes.
    """
    key = f"rank{rank}"
    if key not in rngs:
        raise CheckpointError(f"{where}: written by fewer processes than this run has (no state for rank {rank})")
    blob, cuda = rngs[key], rngs.get(f"{key}.cuda")
    cpu_len = torch.get_rng_state().numel()
    if cuda is None and blob.numel() > cpu_len:  # the joined layout
        blob, cuda = blob[:cpu_len], blob[cpu_len:]
    return {"torch": blob, "cuda": cuda}


def gather_objects(accelerator, obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (a collective under several processes)."""
    if accelerator.num_processes == 1:
        return [obj]
    from accelerate.utils import gather_object

    return gather_object([obj])


# -- checkpoints ----------------------------------------------------------------------------------


def checkpoint_folder(output_dir: Path, step: int) -> Path:
    """``output_dir/checkpoints/step-N`` (written or not)."""
    return output_dir / CHECKPOINT_DIR / f"step-{step:08d}"


def write_checkpoint(output_dir: Path, step: int, model, opt, scheduler, scaler, state: Mapping[str, Any],
                     record: Mapping[str, Any], rngs: Mapping[str, torch.Tensor], extra: Mapping[str, Any] | None = None,
                     full_states: tuple[dict, dict] | None = None) -> Path:
    """Write ``checkpoints/step-N`` atomically (see :func:`spanbert.core.atomic.atomic_directory`):
    the weights, ``optimizer.safetensors``, ``rng.safetensors`` (``rngs``, :func:`rng_tensors`) and
    ``trainer_state.json``: the loop's ``state``, the optimizer's other state, the schedule, the
    scaler, ``record`` (the run's settings, as ``args``) and the loop's ``extra`` entries.
    ``trainer_state.json`` is written last: its presence marks a complete checkpoint.

    ``full_states``: (model state dict, optimizer state dict) already gathered whole, for a sharded
    (FSDP2) model; the files are the same as those of an unsharded run.
    """
    from safetensors.torch import save_file

    target = checkpoint_folder(output_dir, step)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, state_dict=full_states[0] if full_states else None)
        opt_tensors, opt_meta = optimizer_to_safetensors(opt, full_states[1] if full_states else None)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        save_file(dict(rngs), str(tmp / "rng.safetensors"))
        trainer_state = {
            "state": dict(state),
            "optimizer": opt_meta,
            "scheduler": {k: v for k, v in scheduler.state_dict().items() if not callable(v) and k != "lr_lambdas"},
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
            "args": dict(record),
            **(extra or {}),
        }
        atomic_write_json(tmp / "trainer_state.json", trainer_state)
    return target


def prune_checkpoints(output_dir: Path, keep: int, pinned: Callable[[Path], int | None] | None = None) -> list[Path]:
    """Delete all checkpoints but the newest ``keep`` and, with ``pinned``, those whose step
    ``pinned(kept checkpoint)`` names for each kept one (e.g. where its best weights are); returns
    the deleted folders."""
    found = list_checkpoints(output_dir)
    kept = {step for step, _ in found[-keep:]}
    if pinned is not None:
        kept |= {pinned(ckpt) for _, ckpt in found[-keep:]}
    gone = [ckpt for step, ckpt in found if step not in kept]
    for ckpt in gone:
        shutil.rmtree(ckpt, ignore_errors=True)
    return gone


@dataclass
class CheckpointFiles:
    """The contents of one checkpoint folder, read whole (:func:`read_checkpoint`)."""

    path: Path
    meta: dict[str, Any]  # trainer_state.json
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    rngs: dict[str, torch.Tensor]


def read_checkpoint(ckpt: Path, state_type: Callable[..., Any] | None = None) -> CheckpointFiles:
    """Read every file of the checkpoint folder ``ckpt``, changing nothing. ``state_type``: the
    loop's state class, which must accept the stored ``state`` as keywords (default: any object
    with an integer ``step``).

    Raises:
        CheckpointError: a file is missing, truncated or malformed (one line naming the folder).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads((ckpt / "trainer_state.json").read_text())
        if state_type is not None:
            state_type(**meta["state"])
        elif not isinstance(meta["state"]["step"], int):
            raise ValueError("trainer_state.json: state.step is not a whole number")
        for key in ("optimizer", "scheduler"):
            if not isinstance(meta[key], dict):
                raise ValueError(f"trainer_state.json: {key} is not an object")
        files = {}
        for name in ("model", "optimizer", "rng"):
            where = name + ".safetensors"
            try:
                files[name] = load_file(str(ckpt / where))
            except (OSError, SafetensorError) as e:
                raise ValueError(f"{where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{ckpt}: damaged ({reason})") from None
    return CheckpointFiles(ckpt, meta, files["model"], files["optimizer"], files["rng"])


# A damaged checkpoint skipped on --resume is renamed with this suffix: kept for a look, but no
# longer a checkpoint (neither resumed from nor counted by keep_checkpoints).
DAMAGED_SUFFIX = ".damaged"


def set_aside_checkpoints_after(output_dir: Path, step: int) -> list[Path]:
    """Rename the checkpoints newer than ``step`` (the damaged ones a resumed run skipped) to
    ``step-N.damaged``; returns their new paths."""
    moved = []
    for found_step, ckpt in list_checkpoints(output_dir):
        if found_step > step:
            target = ckpt.with_name(ckpt.name + DAMAGED_SUFFIX)
            if target.exists():
                shutil.rmtree(target)
            os.replace(ckpt, target)
            moved.append(target)
    return moved


def newest_intact_checkpoint(output_dir: Path, warn: bool = True,
                             state_type: Callable[..., Any] | None = None) -> CheckpointFiles | None:
    """Read the newest checkpoint under ``output_dir`` that is whole (:func:`read_checkpoint`),
    skipping damaged newer ones; None (and the run starts from scratch) when there is no checkpoint.
    ``warn``: log either.

    Raises:
        CheckpointError: there are checkpoints, but none is intact.
    """
    damaged = []
    for _, ckpt in reversed(list_checkpoints(output_dir)):
        try:
            found = read_checkpoint(ckpt, state_type)
        except CheckpointError as e:
            damaged.append(str(e))
            continue
        if damaged and warn:
            logger.warning("--resume: %s; continuing from %s, the newest intact checkpoint (the steps after it are "
                           "trained again; the damaged folders are renamed *%s)", "; ".join(damaged), ckpt, DAMAGED_SUFFIX)
        return found
    if damaged:
        raise CheckpointError(f"--resume: no intact checkpoint under {output_dir / CHECKPOINT_DIR}: {'; '.join(damaged)}")
    if warn:
        logger.warning("--resume: no checkpoint in %s, starting from scratch", output_dir)
    return None


def load_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], where: Path, sharded: bool = False) -> None:
    """Load saved weights (``save_pretrained`` leaves tied copies out) into ``model``, refusing a
    mismatch (``sharded``: an FSDP2 model, each process keeping its shard of the whole weights)."""
    try:
        if sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            missing, unexpected = set_model_state_dict(model, dict(weights),
                                                       options=StateDictOptions(full_state_dict=True, strict=False))
        else:
            missing, unexpected = model.load_state_dict(dict(weights), strict=False)
    except RuntimeError as e:  # tensors of other shapes: another model size
        first = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e).splitlines()[0])
        raise CheckpointError(f"{where}: does not match the model ({first})") from None
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise CheckpointError(f"{where}: does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def load_checkpoint(files: CheckpointFiles, model, opt, scheduler, scaler, rank: int, device: torch.device,
                    sharded: bool = False) -> dict[str, torch.Tensor | None]:
    """Load a checkpoint read by :func:`read_checkpoint` into the model, optimizer, schedule and
    scaler; returns the torch RNG state of process ``rank`` (:func:`rng_of_rank`) for the caller to
    restore when nothing else will draw from it (:func:`restore_rng`)."""
    load_weights(model, files.weights, files.path / "model.safetensors", sharded)
    optimizer_from_safetensors(opt, {k: v.to(device) if not k.endswith(".step") else v for k, v in files.optimizer.items()},
                               files.meta["optimizer"], sharded)
    scheduler.load_state_dict({**scheduler.state_dict(), **files.meta["scheduler"]})
    if scaler is not None and files.meta.get("scaler"):
        scaler.load_state_dict(files.meta["scaler"])
    return rng_of_rank(files.rngs, rank, files.path)


# -- the run's record and --resume -----------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of spanbert and the libraries that decide a run's numbers (for training_args.json)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for name in ("spanbert", "torch", "transformers", "tokenizers", "datasets", "accelerate", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def stored_run_arguments(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings the run in ``output_dir`` was trained with: its training_args.json, else the
    newest readable checkpoint's ``args``; None when neither can be read."""
    out = Path(output_dir)
    sources = [out / TRAINING_ARGS_FILE] + [ckpt / "trainer_state.json" for _, ckpt in reversed(list_checkpoints(out))]
    for path in sources:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if path.name == "trainer_state.json":
            data = data.get("args") if isinstance(data, dict) else None
        if isinstance(data, dict):
            return data
    return None


def flatten_settings(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"masking": {"scheme": "span"}}`` -> ``{"masking.scheme": "span"}``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def same_setting(a: Any, b: Any) -> bool:
    """Equality as stored in JSON: tuples equal lists, 1 equals 1.0."""
    return json.loads(json.dumps(a, default=str)) == json.loads(json.dumps(b, default=str))


def show_setting(value: Any) -> str:
    """A stored or given value as a resume error shows it."""
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return ", ".join(show_setting(v) for v in value)
    return repr(value)


def resume_mismatch_error(output_dir: str | os.PathLike, option: str, stored: Any, given: Any,
                          hint: str | None = None) -> ConfigError:
    """The one-line refusal of a resumed run whose ``option`` differs from the stored run's;
    ``hint``: what to do instead (default: leave an option out to use the stored value)."""
    if hint is None:
        hint = f"leave {option} out to use the stored value" if option.startswith("--") else "a resumed run must keep it"
    return ConfigError(f"--resume: {option} is {show_setting(given)} here but {show_setting(stored)} in the run in "
                       f"{output_dir} ({TRAINING_ARGS_FILE}); {hint}, or start a new run (another --output, or "
                       "--overwrite to replace this one)")


def check_resume_settings(output_dir: str | os.PathLike, stored: Mapping[str, Any], current: Mapping[str, Any],
                          options: Mapping[str, str], hint: str | None = None) -> None:
    """Refuse to resume when a setting that changes the training differs from the stored run's.

    ``stored``/``current``: flattened settings (:func:`flatten_settings`); ``options``: the
    settings to compare, each with the option that sets it; ``hint``: see
    :func:`resume_mismatch_error`. A setting the stored run does not record (a folder written by
    an older version) is not compared.

    Raises:
        ConfigError: one line naming the option, the stored and the given value.
    """
    for key, option in options.items():
        if key in stored and key in current and not same_setting(stored[key], current[key]):
            raise resume_mismatch_error(output_dir, option, stored[key], current[key], hint)


# -- metrics, time, progress -----------------------------------------------------------------------


class MetricsCSV:
    """A metrics CSV with the columns ``fields``, one row per :meth:`write`, flushed at once.

    A resumed run (``resume_step`` > 0) keeps the rows up to the step it resumes from and drops
    later ones (and a last row cut short by a kill); the file is replaced atomically, so a kill at
    that moment loses no row. A fresh run starts it with the header only.
    """

    def __init__(self, path: Path, fields: Sequence[str], resume_step: int):
        self.path, self.fields = path, list(fields)
        rows = []
        if resume_step and self.path.exists():
            with open(self.path, newline="") as f:
                for r in csv.DictReader(f):
                    try:
                        step = int(r["step"])
                    except (TypeError, ValueError):
                        continue
                    if step <= resume_step and None not in r.values() and (not rows or step > int(rows[-1]["step"])):
                        rows.append(r)
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=self.fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path, text.getvalue())
        self._file = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.fields)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` (a missing or None value is left empty)."""
        self._csv.writerow({k: row.get(k) for k in self.fields})
        self._file.flush()

    def close(self) -> None:
        """Close the file (a second call does nothing)."""
        self._file.close()


class TimeBudget:
    """This session's training clock, started at creation, and its budget (``seconds``; None: none).

    :meth:`reached` is a collective under several processes: every process stops at the same
    step, or the others would wait forever. :meth:`pause` takes time that is not training (an
    evaluation) off the clock.
    """

    def __init__(self, seconds: float | None, accelerator):
        self.seconds, self.accelerator = seconds, accelerator
        self.start = time.perf_counter()

    def elapsed(self, now: float | None = None) -> float:
        """Training seconds of this session up to ``now`` (a ``time.perf_counter()``; default: now)."""
        return (time.perf_counter() if now is None else now) - self.start

    def pause(self, seconds: float) -> None:
        """Leave ``seconds`` out of the session's training time."""
        self.start += seconds

    def reached(self, now: float | None = None) -> bool:
        """Whether the budget is used up on any process at ``now`` (never without a budget)."""
        if self.seconds is None:
            return False
        over = torch.tensor([float(self.elapsed(now) >= self.seconds)], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            over = self.accelerator.reduce(over, reduction="sum")
        return bool(over.item() > 0)


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    """The loop's tqdm bar over optimizer steps (disabled: draws nothing)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)
