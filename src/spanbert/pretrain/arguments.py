"""What a pre-training run is told: :class:`PretrainArguments` (the loop) and :class:`PretrainJob`
(corpus, tokenizer, model, masking), checked when made.

A light module (no torch): ``spanbert pretrain``'s options are made from these fields
(:mod:`spanbert.core.options`), so each default and help text lives here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from spanbert.core.errors import ConfigError
from spanbert.core.options import option
from spanbert.core.precision import PRECISION_HELP, PrecisionName
from spanbert.pretrain.masking import MaskingConfig

# Packed segments shorter than this (specials included) are dropped (pack_documents' default).
MIN_SEGMENT_TOKENS = 8
DocPer = Literal["file", "blank_line", "line"]  # how plain text splits into documents
DOC_PER_HELP = ("Plain text: one document per file, per block between blank lines (blank_line), or per line "
                "(line: e.g. one sentence or paragraph a line). JSON Lines: always one per record.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class PretrainArguments:
    """Settings of a pre-training run (defaults: the authors' published command, scaled down)."""

    output_dir: str = option(names=("--output", "-o"), option="output", help=(
        "Run folder: final model, metrics.csv, loss_curve.png, checkpoints/. It belongs to one run: a new run into a "
        "folder holding another needs --resume or --overwrite."))
    # Sequences per optimizer step, all processes and accumulated micro-batches together: each
    # process takes batch_size / (processes x grad_accum) per micro-batch (micro_batch_size).
    batch_size: int = option(32, min=1, help=(
        "Sequences per optimizer step, all processes and accumulation steps together (each process's micro-batch: "
        "batch-size / (processes x --grad-accum), which must divide)."))
    grad_accum: int = option(1, min=1, help=(
        "Split each process's share of --batch-size into N micro-batches (less memory, the same step)."))
    max_steps: int | None = option(None, min=1, help="Optimizer steps (default: --epochs worth).")
    epochs: float = option(1.0, help="Passes over the corpus when --max-steps is not given.")
    lr: float = option(1e-4, help="Peak learning rate.")
    warmup_steps: int | None = option(None, min=0, help="Linear warm-up steps (wins over --warmup-ratio).")
    # (10k of 2.4M steps in the paper)
    warmup_ratio: float = option(0.06, help="Linear warm-up as a share of the steps, when --warmup-steps is not given.")
    weight_decay: float = option(0.01, help="AdamW weight decay.")
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    mixed_precision: PrecisionName = option(
        "auto", option="precision", names=("--precision",), help=PRECISION_HELP + " The run prints what auto became.")
    seed: int = option(42, min=0, help="Seed of the weights, masks, data order and dropout.")
    log_every: int = 10
    save_every: int = option(500, min=0, help="Checkpoint every N optimizer steps (0: only at the end).")
    keep_checkpoints: int = 2
    # Stop (and checkpoint) after this much training time of this session (a resumed run gets
    # the whole budget again; held-out evaluation does not count). The CLI's --time-budget is in minutes.
    time_budget_s: float | None = None
    # None: auto (loader_workers in spanbert.pretrain.train decides by device)
    num_workers: int | None = option(None, min=0, help=(
        "DataLoader worker processes that collate (mask) batches ahead of the training step. Default: 2 on a GPU, "
        "taking the collator off the step's critical path; 0 on a CPU, where workers would take cores from the step. "
        "A streamed corpus is always collated in the main process."))
    # None: auto (compile_choice in spanbert.pretrain.train decides by device and run length)
    compile: bool | None = option(None, help=(
        "torch.compile the model (--compile) or not (--no-compile). Default: only where it has paid for its minutes "
        "of warm-up: a one-process GPU run of at least 10,000 optimizer steps (on CPUs it has not; the README has the numbers)."))
    hashed_dropout: bool = True  # on CPU: cheaper dropout masks (see spanbert.core.dropout); GPUs keep torch's
    progress: bool = option(True, help="Show a progress bar.")
    stream_shuffle_buffer: int = 10_000
    head_lr: float | None = option(None, help=(
        "Peak learning rate of the MLM/SBO heads (everything outside the encoder; default: --lr)."))
    head_warmup_steps: int = option(0, min=0, help=(
        "Train only the heads (encoder frozen) for the first N steps, then everything, the encoder with its own "
        "warm-up and decay over the remaining steps: for continuing a checkpoint without heads."))
    eval_every: int = option(0, min=0, help=(
        "With --heldout-fraction or --validation-corpus: also evaluate every N steps (0: only before and after)."))

    def __post_init__(self) -> None:
        """Refuse values that cannot give a sensible run; each message names the field and its
        ``spanbert pretrain`` option."""
        def number(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} (--{name.replace('_', '-')}): expected a number, got {value!r}")
            return value

        def require(ok: bool, name: str, rule: str, option: str | None = None) -> None:
            if not ok:
                option = option or "--" + name.replace("_", "-")
                raise ConfigError(f"{name} ({option}): must be {rule}, got {getattr(self, name)!r}")

        for name in ("batch_size", "grad_accum", "keep_checkpoints", "log_every", "stream_shuffle_buffer"):
            require(number(name) >= 1, name, ">= 1")
        require(self.batch_size % self.grad_accum == 0, "batch_size",
                f"a multiple of --grad-accum {self.grad_accum} (the micro-batches split it evenly)")
        if self.max_steps is not None:
            require(number("max_steps") >= 1, "max_steps", ">= 1")
        require(math.isfinite(number("epochs")) and self.epochs > 0, "epochs", "a finite number > 0")
        require(math.isfinite(number("lr")) and self.lr > 0, "lr", "a finite number > 0")
        if self.warmup_steps is not None:
            require(number("warmup_steps") >= 0, "warmup_steps", ">= 0")
        require(0 <= number("warmup_ratio") < 1, "warmup_ratio", "a share of the steps in [0, 1)")
        require(math.isfinite(number("weight_decay")) and self.weight_decay >= 0, "weight_decay", "a finite number >= 0")
        for name in ("adam_beta1", "adam_beta2"):
            require(0 <= number(name) < 1, name, "in [0, 1)")
        require(math.isfinite(number("adam_eps")) and self.adam_eps > 0, "adam_eps", "a finite number > 0")
        require(number("max_grad_norm") > 0, "max_grad_norm", "> 0 (inf: no clipping)")  # nan fails too
        require(0 <= number("seed") < 2**32, "seed", "in 0..2**32-1")
        require(number("save_every") >= 0, "save_every", ">= 0 (0: only at the end)")
        if self.time_budget_s is not None:
            require(math.isfinite(number("time_budget_s")) and self.time_budget_s > 0, "time_budget_s",
                    "a finite time > 0 (seconds here; minutes on the command line)", "--time-budget")
        if self.num_workers is not None:
            require(number("num_workers") >= 0, "num_workers", ">= 0")
        if self.mixed_precision not in ("no", "bf16", "fp16", "auto"):
            raise ConfigError(f"mixed_precision: expected no, bf16, fp16 or auto, got {self.mixed_precision!r}")
        if self.head_lr is not None:
            require(math.isfinite(number("head_lr")) and self.head_lr > 0, "head_lr", "a finite number > 0")
        for name in ("head_warmup_steps", "eval_every"):
            require(isinstance(getattr(self, name), int) and number(name) >= 0, name, "a whole number >= 0")

    def micro_batch_size(self, processes: int) -> int:
        """Sequences each of ``processes`` processes takes per micro-batch: batch_size / (processes x grad_accum).

        Raises:
            ConfigError: the global batch does not split evenly (one line naming --batch-size).
        """
        share = processes * self.grad_accum
        if self.batch_size % share:
            raise ConfigError(f"--batch-size {self.batch_size}: must be a multiple of {processes} process(es) x "
                              f"--grad-accum {self.grad_accum} = {share} (it is the global batch of an optimizer step, "
                              "split evenly into every process's micro-batches)")
        return self.batch_size // share

    def warmup_for(self, steps: int) -> int:
        """Warm-up steps of a schedule over ``steps`` steps: warmup_steps when given, else warmup_ratio of them."""
        return self.warmup_steps if self.warmup_steps is not None else int(self.warmup_ratio * steps)



# PretrainArguments fields that change what a run computes, with the option that sets each: a
# resumed run must keep the stored values. The batch size is checked as the global batch
# (resume_batch_error: folders of older versions record a per-process batch), which any number
# of processes that divides it continues in the same data order. The other fields (steps,
# checkpoints, logging, time budget, workers, compile, progress) may change between sessions.
TRAJECTORY_ARGS: dict[str, str] = {
    "grad_accum": "--grad-accum", "lr": "--lr", "warmup_steps": "--warmup-steps", "warmup_ratio": "--warmup-ratio",
    "weight_decay": "--weight-decay", "adam_beta1": "adam_beta1", "adam_beta2": "adam_beta2", "adam_eps": "adam_eps",
    "max_grad_norm": "max_grad_norm", "mixed_precision": "--precision", "seed": "--seed",
    "hashed_dropout": "hashed_dropout", "stream_shuffle_buffer": "stream_shuffle_buffer", "head_lr": "--head-lr",
    "head_warmup_steps": "--head-warmup-steps",
}


@dataclass
class PretrainJob:
    """Everything ``spanbert pretrain`` needs; see the CLI's help for each field."""

    train: PretrainArguments
    corpus: list[str] = option(default_factory=list, help=(
        "Text/JSONL(.gz) files or folders, a saved dataset folder, or hf:NAME[:CONFIG]; repeatable. Required, except "
        "with --resume (the stored run's)."))
    validation_corpus: list[str] = option(default_factory=list, help=(
        "Held-out text, read like --corpus (repeatable), never trained on: its MLM/SBO loss and accuracy are measured "
        "before training, every --eval-every steps and at the end (heldout_* columns of metrics.csv, "
        "heldout_metrics.jsonl, the loss plot). Instead of --heldout-fraction; works with --streaming."))
    tokenizer: str | None = option(None, help=(
        "Tokenizer folder (a fast tokenizer). Default: the --init-from one, else a WordPiece vocabulary trained on the "
        "corpus."))
    init_from: str | None = option(None, help=(
        "Continue from any BERT checkpoint folder; missing MLM/SBO heads are created (the run prints which)."))
    preset: str = option("mini", help="Model size from scratch: tiny, mini, small, minilm, medium, base, large.")
    vocab_size: int = option(30000, min=1, help="Vocabulary size when a tokenizer is trained.")
    lowercase: bool = option(False, help="Lowercase when a tokenizer is trained (default cased).")
    max_length: int = option(512, min=1, help="Tokens per segment, [CLS] and [SEP] included.")
    text_field: str = option("text", help="Text field of JSON Lines / datasets sources.")
    doc_per: DocPer = option("blank_line", help=DOC_PER_HELP)
    streaming: bool = option(False, help="Read the corpus lazily (needs --max-steps).")
    word_segmenter: str = option("none", help=(
        "Whole words for masking: none (the tokenizer's words; each Chinese character is one) or jieba (Chinese "
        "words, pip install 'spanbert[chinese]')."))
    num_proc: int | None = option(None, help="Processes tokenising the corpus (not with --streaming).")
    masking: MaskingConfig = field(default_factory=MaskingConfig)  # its options: MaskingConfig's fields
    sbo_loss_weight: float = option(1.0, option="sbo_weight", help="Weight of the span boundary loss (0 disables SBO).")
    unigram_replacements: bool = True
    resume: bool = option(False, help=(
        "Continue exactly from the newest intact checkpoint in --output (a damaged newer one is skipped with a "
        "warning). Options left out take the stored run's values (training_args.json), --corpus included; an option "
        "that changes the training (corpus, tokenizer, --init-from, --preset, --max-length, masking and its geometry, "
        "--sbo-weight, --dropout, --batch-size, --grad-accum, --lr, warm-up, --seed, --precision, held-out set, ...) "
        "given with another value is refused. --max-steps or --epochs (extend the run; default: the stored steps), "
        "--save-every, --eval-every, --time-budget, --num-proc, --num-workers, --compile and --progress may change, "
        "and so may the number of processes where it divides --batch-size."))
    dropout: float | None = option(None, help="Dropout (default: the checkpoint's or 0.1).")
    heldout_fraction: float = option(0.0, help=(
        "Share of the documents held out of training (seeded); their MLM/SBO loss and accuracy are measured before "
        "and after training into heldout_metrics.jsonl, heldout_summary.json and the heldout_* columns of "
        "metrics.csv (0: off). See also --validation-corpus."))
    overwrite: bool = option(False, help=(
        "Delete the run already in --output (its checkpoints, metrics, model and other files a run writes; other "
        "files stay) and start afresh."))
    # With resume: the `spanbert pretrain` parameters given on the command line (names as in
    # spanbert.cli.app.pretrain); the others take the stored run's values. None: every field counts
    # as given (Python callers), so any difference from the stored run is refused.
    given_options: frozenset[str] | None = None

    def __post_init__(self) -> None:
        """Refuse option values that cannot give a sensible run, naming the option."""
        weight = self.sbo_loss_weight
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"--sbo-weight {weight!r}: must be a finite number >= 0 (0 disables SBO)")
        if self.dropout is not None and (not _is_number(self.dropout) or not 0 <= self.dropout < 1):
            raise ConfigError(f"--dropout {self.dropout!r}: must be a probability in [0, 1)")
        if _is_number(self.max_length) and 2 < self.max_length < MIN_SEGMENT_TOKENS:
            # (2 or fewer leave no room for a token at all: pack_documents says so.)
            raise ConfigError(f"--max-length {self.max_length}: segments shorter than {MIN_SEGMENT_TOKENS} tokens are "
                              f"dropped, so max_length must be at least {MIN_SEGMENT_TOKENS}")
        if self.num_proc is not None and self.num_proc < 1:
            raise ConfigError(f"--num-proc {self.num_proc}: need at least 1 process")
        if self.num_proc is not None and self.num_proc > 1 and self.streaming:
            raise ConfigError("--num-proc: a streamed corpus is tokenised as it is read, in the training process")
        fraction = self.heldout_fraction
        if not _is_number(fraction) or not 0 <= fraction < 1:
            raise ConfigError(f"--heldout-fraction {fraction!r}: must be a share of the documents in [0, 1) (0: none)")
        if fraction > 0 and self.streaming:
            raise ConfigError("--heldout-fraction: a streamed corpus cannot be split by document (drop --streaming, "
                              "or give held-out text with --validation-corpus)")
        if fraction > 0 and self.validation_corpus:
            raise ConfigError("--validation-corpus and --heldout-fraction: choose one held-out set (the given text, "
                              "or a share of the corpus's documents)")


