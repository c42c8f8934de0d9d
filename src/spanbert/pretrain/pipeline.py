"""From corpus files to a pre-trained SpanBERT: tokenizer, packed segments, model, collator, loop.

This is what ``spanbert pretrain`` runs; the pieces live in their own modules (``corpus``,
``tokenizer``, ``collator``, ``modeling``, ``train``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.corpus import corpus_stats, load_corpus, pack_documents, unigram_distribution
from spanbert.core.errors import ConfigError
from spanbert.pretrain.heldout import DOC_ID_COLUMN, split_by_document
from spanbert.pretrain.masking import MaskingConfig
from spanbert.pretrain.segmenters import PreSegmenter, get_segmenter
from spanbert.pretrain.modeling import PRESETS, SpanBertForPreTraining, config_from_preset, load_pretraining_model
from spanbert.pretrain.tokenizer import train_tokenizer_from_files
from spanbert.core.checkpoints import load_tokenizer
from spanbert.pretrain.arguments import MIN_SEGMENT_TOKENS, TRAJECTORY_ARGS, PretrainArguments, PretrainJob
from spanbert.pretrain.train import PretrainResult, check_run_folder, pretrain, previous_run_files, resume_batch_error, stored_global_batch
from spanbert.core.training import check_resume_settings, flatten_settings, same_setting, stored_run_arguments
from spanbert.core.run_folder import first_missing_folder, latest_checkpoint, remove_empty_folders

if TYPE_CHECKING:
    from accelerate import PartialState

logger = logging.getLogger(__name__)
# the longest segments a from-scratch model is built for (the position table has max(512, --max-length) rows)
MAX_SCRATCH_POSITIONS = 8192



def _check_paths(job: PretrainJob) -> None:
    """Cheap checks of the job's paths before any corpus is read: ``~user`` paths that do not
    expand, an --output that is (or lies under) a file, an --init-from folder that is missing."""
    from spanbert.core.errors import CheckpointError
    from spanbert.core.checkpoints import check_model_folder

    for option, sources in (("--corpus", job.corpus), ("--validation-corpus", job.validation_corpus)):
        for source in sources:
            if not str(source).startswith("hf:"):
                try:
                    Path(source).expanduser()
                except RuntimeError as e:  # "~user" of an unknown user
                    raise ConfigError(f"{option} {source}: cannot expand '~' ({e})") from None
    out = Path(job.train.output_dir)
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"--output {out}: {folder} is a file, not a folder")
            break
    if job.init_from:
        try:
            check_model_folder(job.init_from)
        except CheckpointError as e:
            raise CheckpointError(f"--init-from {e}") from None


# The folder under the output folder that a run without --tokenizer/--init-from trains its vocabulary into.
TOKENIZER_DIR = "tokenizer"


def _tokenizer_for(job: PretrainJob, out: Path, is_main: bool = True):
    """The job's tokenizer: --tokenizer, the --init-from one, or one trained on the corpus into
    ``out/tokenizer`` (reused when there; replaced by the main process with ``job.overwrite``)."""
    if job.tokenizer:
        return load_tokenizer(job.tokenizer)
    if job.init_from:
        return load_tokenizer(job.init_from)
    saved = out / TOKENIZER_DIR
    if saved.is_dir() and not (job.overwrite and is_main):  # an earlier session's (--resume), or the main process's
        return load_tokenizer(str(saved))
    logger.info("training a WordPiece vocabulary of %d on the corpus", job.vocab_size)
    return train_tokenizer_from_files(job.corpus, saved, vocab_size=job.vocab_size, lowercase=job.lowercase,
                                      text_field=job.text_field, doc_per=job.doc_per, overwrite=job.overwrite)


def _source_id(source: str) -> str:
    """A corpus source, tokenizer or model folder as training_args.json records it: ``hf:`` names
    as given, paths absolute (so that --resume from another working folder compares equal)."""
    if str(source).startswith("hf:"):
        return str(source)
    try:
        return str(Path(source).expanduser().resolve())
    except (RuntimeError, OSError):  # "~user" of an unknown user: as given
        return str(source)


def run_settings(job: PretrainJob) -> dict[str, Any]:
    """What decides the training of ``job`` beyond its PretrainArguments: recorded in
    training_args.json (beside those arguments) and compared on --resume. Settings the job does
    not use are None (the preset with --init-from; vocabulary size and case when the tokenizer is
    not trained by the run)."""
    trains_tokenizer = not job.tokenizer and not job.init_from
    return {
        "corpus": [_source_id(c) for c in job.corpus],
        "tokenizer": _source_id(job.tokenizer) if job.tokenizer else None,
        "init_from": _source_id(job.init_from) if job.init_from else None,
        "preset": None if job.init_from else job.preset,
        "vocab_size": job.vocab_size if trains_tokenizer else None,
        "lowercase": job.lowercase if trains_tokenizer else None,
        "max_length": job.max_length,
        "text_field": job.text_field,
        "doc_per": job.doc_per,
        "streaming": job.streaming,
        "word_segmenter": None if job.word_segmenter in (None, "none") else job.word_segmenter,
        "masking": asdict(job.masking),
        "sbo_loss_weight": job.sbo_loss_weight,
        "unigram_replacements": job.unigram_replacements,
        "dropout": job.dropout,
        "heldout_fraction": job.heldout_fraction,
        "validation_corpus": [_source_id(c) for c in job.validation_corpus],
    }


# The settings of run_settings (flattened: "masking.scheme") with the option that sets each.
_MASKING_OPTIONS = {"scheme": "--masking", "mask_ratio": "--mask-ratio", "geometric_p": "--geometric-p",
                    "max_span_words": "--max-span-words"}
RUN_SETTING_OPTIONS: dict[str, str] = {
    "corpus": "--corpus", "tokenizer": "--tokenizer", "init_from": "--init-from", "preset": "--preset",
    "vocab_size": "--vocab-size", "lowercase": "--lowercase", "max_length": "--max-length", "text_field": "--text-field",
    "doc_per": "--doc-per", "streaming": "--streaming", "word_segmenter": "--word-segmenter",
    **{f"masking.{f.name}": _MASKING_OPTIONS.get(f.name, f"masking.{f.name}") for f in fields(MaskingConfig)},
    "sbo_loss_weight": "--sbo-weight", "unigram_replacements": "unigram_replacements", "dropout": "--dropout",
    "heldout_fraction": "--heldout-fraction", "validation_corpus": "--validation-corpus",
}
# Arguments a resumed run may change, but which keep the stored run's values when not given on
# the command line (max_steps/epochs: see resume_job).
PLAN_OPTIONS: dict[str, str] = {"save_every": "--save-every", "eval_every": "--eval-every",
                                "keep_checkpoints": "keep_checkpoints", "log_every": "log_every"}


def _cli_parameter(option: str) -> str | None:
    """The ``spanbert pretrain`` parameter of an option label ("--batch-size" -> "batch_size"); None
    for settings without an option."""
    return option[2:].replace("-", "_") if option.startswith("--") else None


def _job_settings(job: PretrainJob) -> dict[str, Any]:
    """The job's PretrainArguments and run_settings, flattened."""
    return flatten_settings({**asdict(job.train), **run_settings(job)})


def _with_settings(job: PretrainJob, values: dict[str, Any]) -> PretrainJob:
    """``job`` with the flattened settings ``values`` (stored ones) put in."""
    train, masking, top = {}, {}, {}
    train_fields = {f.name for f in fields(PretrainArguments)}
    for key, value in values.items():
        if key in train_fields:
            train[key] = value
        elif key.startswith("masking."):
            masking[key.split(".", 1)[1]] = value
        elif key in ("preset", "vocab_size", "lowercase") and value is None:
            continue  # not used by the stored run: nothing to take
        elif key in ("corpus", "validation_corpus"):
            top[key] = list(value)
        elif key in RUN_SETTING_OPTIONS:
            top[key] = value
    return replace(job, **top, masking=replace(job.masking, **masking), train=replace(job.train, **train))


def resume_job(job: PretrainJob, out: Path, processes: int = 1) -> PretrainJob:
    """``job`` made to continue the run stored in ``out`` (its training_args.json) with ``processes`` processes.

    A setting that changes the training (:data:`spanbert.pretrain.train.TRAJECTORY_ARGS`,
    :data:`RUN_SETTING_OPTIONS`) takes the stored value when it was not given
    (``job.given_options``); given with another value it is refused. So is --batch-size, the global
    batch (:func:`spanbert.pretrain.train.stored_global_batch`; ``processes`` may differ from the stored
    run's where they divide it). Of the rest, --save-every,
    --eval-every (and the settings without options) keep the stored values unless given, and
    --max-steps the stored number of steps unless --max-steps or --epochs is given; --time-budget,
    --num-proc, --num-workers, --compile and --progress are this session's. A folder that records
    nothing (older than these checks) is not checked here.

    Raises:
        ConfigError: one line naming the option, the stored and the given value.
    """
    stored = stored_run_arguments(out)
    if stored is None:
        return job
    flat = flatten_settings(stored)
    options = {**TRAJECTORY_ARGS, **RUN_SETTING_OPTIONS}

    def given(option: str) -> bool:
        return job.given_options is None or _cli_parameter(option) in job.given_options

    for _ in range(3):  # a setting taken can decide whether another counts (--init-from: --preset)
        current = _job_settings(job)
        take = {k: flat[k] for k, option in options.items()
                if k in flat and k in current and not same_setting(flat[k], current[k]) and not given(option)}
        if not take:
            break
        job = _with_settings(job, take)
    check_resume_settings(out, flat, _job_settings(job), options)
    batch = stored_global_batch(stored)
    if batch is not None and not given("--batch-size"):
        job = replace(job, train=replace(job.train, batch_size=batch))
    error = resume_batch_error(out, stored, job.train.batch_size)
    if error is not None:
        raise error
    job.train.micro_batch_size(processes)  # the stored global batch must split over this run's processes
    if job.given_options is not None:
        plan = {k: stored[k] for k, option in PLAN_OPTIONS.items() if k in stored and not given(option)}
        if "max_steps" in stored and not given("--max-steps") and not given("--epochs"):
            plan["max_steps"] = stored["max_steps"]
        job = replace(job, train=replace(job.train, **plan))
    return job


def _check_before_reading(job: PretrainJob, out: Path, processes: int = 1) -> PretrainJob:
    """The checks that need no corpus or tokenizer, before anything is read or written: the
    paths, the run folder (fresh, --overwrite or --resume), the stored run's settings, the
    preset. ``processes``: of this run. Returns the job to run (with --resume: the stored
    settings put in)."""
    _check_paths(job)
    check_run_folder(out, resume=job.resume, overwrite=job.overwrite)
    if job.resume:
        if latest_checkpoint(out) is None:
            hint = " (its files are of a run stopped before its first checkpoint: start afresh with --overwrite)" \
                if previous_run_files(out) else ""
            raise ConfigError(f"--resume: no checkpoint under {out / 'checkpoints'}{hint}")
        job = resume_job(job, out, processes)
    if not job.corpus:
        raise ConfigError("--corpus: missing (give one or more sources; with --resume it defaults to the stored run's)")
    job.train.micro_batch_size(processes)  # --batch-size must split over the processes and micro-batches
    if not job.init_from and job.preset not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {job.preset!r}; choose one of {', '.join(PRESETS)}")
    return job


# The pre-training heads, by the prefix of their parameter names (SpanBertForPreTraining).
HEADS = {"MLM": "cls.", "SBO": "sbo."}


def new_heads(missing_keys) -> list[str]:
    """The heads (of :data:`HEADS`) that a checkpoint's ``missing_keys`` show were created fresh."""
    return [head for head, prefix in HEADS.items() if any(str(k).startswith(prefix) for k in missing_keys)]


def build_model(job: PretrainJob, tokenizer) -> tuple[SpanBertForPreTraining, list[str]]:
    """(model, its heads created fresh): a fresh model of ``job.preset`` size (every head new), or
    ``job.init_from`` with fresh heads where it has none."""
    from spanbert.core.errors import CheckpointError

    overrides = {"sbo_loss_weight": job.sbo_loss_weight, "pad_token_id": tokenizer.pad_token_id}
    if job.dropout is not None:
        overrides.update(hidden_dropout_prob=job.dropout, attention_probs_dropout_prob=job.dropout)
    fresh = list(HEADS)
    if job.init_from:
        try:
            model, info = load_pretraining_model(job.init_from, **overrides)
        except (CheckpointError, ConfigError) as e:  # as load_for_pretraining words them
            raise type(e)(f"--init-from {e}") from None
        fresh = new_heads(info.get("missing_keys", ()))
        if model.config.vocab_size < len(tokenizer):
            raise ConfigError(
                f"--tokenizer: {len(tokenizer)} tokens do not fit the checkpoint's vocabulary of {model.config.vocab_size}"
            )
    else:
        if job.preset not in PRESETS:
            raise ConfigError(f"--preset: unknown preset {job.preset!r}; choose one of {', '.join(PRESETS)}")
        if job.max_length > MAX_SCRATCH_POSITIONS:
            raise ConfigError(f"--max-length {job.max_length}: a model from scratch gets at most {MAX_SCRATCH_POSITIONS} "
                              "positions (its position table and attention grow with it)")
        config = config_from_preset(job.preset, vocab_size=len(tokenizer),
                                    max_position_embeddings=max(512, job.max_length), **overrides)
        model = SpanBertForPreTraining(config)
    if job.max_length > model.config.max_position_embeddings:
        raise ConfigError(
            f"--max-length {job.max_length}: the model has only {model.config.max_position_embeddings} positions"
        )
    return model, fresh


def run_pretrain_job(job: PretrainJob, stop_at_step: int | None = None) -> PretrainResult:
    """Tokenise and pack the corpus, build model and collator, and pre-train.

    With ``job.heldout_fraction`` a seeded share of the documents is kept out of training (and
    out of the unigram counts) and scored before, during and after training (see ``pretrain``);
    with ``job.validation_corpus`` that text is the held-out set instead.

    The output folder belongs to one run (see :func:`spanbert.pretrain.train.pretrain`): a fresh run into
    a folder holding another is refused unless ``job.overwrite``, and ``job.resume`` continues
    the stored run with its settings (:func:`resume_job`). Checks that need no data come before
    the corpus is read; a fresh run that fails before its first step leaves nothing behind (the
    tokenizer it trained, the folder if it created it).
    """
    import torch
    from accelerate import PartialState

    out = Path(job.train.output_dir)
    state = PartialState(cpu=not torch.cuda.is_available())
    job = _check_before_reading(job, out, state.num_processes)
    segmenter = get_segmenter(job.word_segmenter)
    created = first_missing_folder(out)
    had_tokenizer = (out / TOKENIZER_DIR).exists()
    try:
        return _run_checked_job(job, out, segmenter, state, stop_at_step)
    except BaseException:
        # A fresh run that failed before its first step has removed what pretrain() wrote; what
        # this run put there before (a tokenizer it trained, the folder itself) goes too.
        if state.is_main_process and not job.resume and not previous_run_files(out):
            if not had_tokenizer and not job.tokenizer and not job.init_from:
                shutil.rmtree(out / TOKENIZER_DIR, ignore_errors=True)
            if created is not None:
                remove_empty_folders(out, stop=created.parent)
        raise


def _run_checked_job(job: PretrainJob, out: Path, segmenter: PreSegmenter | None, state: PartialState,
                     stop_at_step: int | None) -> PretrainResult:
    """The part of :func:`run_pretrain_job` after the checks that need no data."""
    import torch

    # Under torchrun/accelerate the main process trains the tokenizer and fills the datasets
    # cache first; the others then read what it wrote.
    with state.main_process_first():
        tokenizer = _tokenizer_for(job, out, state.is_main_process)
        docs = load_corpus(job.corpus, text_field=job.text_field, streaming=job.streaming, doc_per=job.doc_per)
        packed = pack_documents(docs, tokenizer, max_length=job.max_length,
                                pre_segmenter=segmenter, num_proc=job.num_proc, with_doc_ids=job.heldout_fraction > 0)
        if not job.streaming and len(packed) == 0:
            raise ConfigError(f"--corpus: no segment of {MIN_SEGMENT_TOKENS} tokens or more at --max-length "
                              f"{job.max_length} (shorter documents and tails are dropped: raise --max-length or add text)")
        heldout = heldout_unigram = None
        if job.heldout_fraction > 0:
            packed, heldout = split_by_document(packed, job.heldout_fraction, seed=job.train.seed)
            logger.info("held out %d documents (%d segments) of %d", len(set(heldout[DOC_ID_COLUMN])), len(heldout),
                        len(set(heldout[DOC_ID_COLUMN])) + len(set(packed[DOC_ID_COLUMN])))
        unigram = None
        if job.unigram_replacements and not job.streaming:
            unigram = unigram_distribution(packed, len(tokenizer))
            logger.info("corpus: %s", corpus_stats(packed))
        if job.validation_corpus:
            heldout = _validation_segments(job, tokenizer, segmenter)
        if heldout is not None and not job.streaming:
            # the training split's token frequencies: the baseline knows no held-out text
            heldout_unigram = unigram if unigram is not None else unigram_distribution(packed, len(tokenizer))
    torch.manual_seed(job.train.seed)  # the same initial weights in every process and every run
    model, fresh = build_model(job, tokenizer)
    # Batch widths rounded up to a multiple of 32 tokens: a handful of GEMM shapes instead of
    # one per batch width (CPU oneDNN keeps kernels for every shape it has seen, see modeling).
    multiple = 32 if model.config.max_position_embeddings % 32 == 0 else None
    collator = SpanMaskingCollator(tokenizer, job.masking, seed=job.train.seed, unigram=unigram,
                                   pad_to_multiple_of=multiple)
    return pretrain(model, tokenizer, packed, collator, job.train, resume=job.resume, overwrite=job.overwrite,
                    stop_at_step=stop_at_step, heldout=heldout, heldout_unigram=heldout_unigram,
                    run_settings=run_settings(job), run_info={"new_heads": fresh})


def _validation_segments(job: PretrainJob, tokenizer, segmenter: PreSegmenter | None):
    """The packed segments of ``job.validation_corpus`` (read and packed like the corpus, never streamed).

    Raises:
        ConfigError: the text gives no segment long enough to keep.
    """
    docs = load_corpus(job.validation_corpus, text_field=job.text_field, streaming=False, doc_per=job.doc_per)
    segments = pack_documents(docs, tokenizer, max_length=job.max_length, pre_segmenter=segmenter,
                              num_proc=None if job.streaming else job.num_proc)
    if len(segments) == 0:
        raise ConfigError(f"--validation-corpus: no segment of {MIN_SEGMENT_TOKENS} tokens or more at --max-length "
                          f"{job.max_length} (shorter documents and tails are dropped)")
    logger.info("validation corpus: %d segments held out", len(segments))
    return segments
