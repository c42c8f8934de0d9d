"""From corpus files to a pre-trained SpanBERT: tokenizer, packed segments, model, collator, loop.

This is what ``spanbert pretrain`` runs; the pieces live in their own modules (``corpus``,
``tokenizer``, ``collator``, ``modeling``, ``train``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from .collator import SpanMaskingCollator
from .corpus import corpus_stats, load_corpus, pack_documents, unigram_distribution
from .errors import ConfigError
from .heldout import DOC_ID_COLUMN, split_by_document
from .masking import MaskingConfig
from .segmenters import get_segmenter
from .modeling import PRESETS, SpanBertForPreTraining, config_from_preset, load_for_pretraining
from .tokenizer import load_tokenizer, train_tokenizer_from_files
from .train import PretrainArguments, PretrainResult, latest_checkpoint, pretrain

logger = logging.getLogger(__name__)

# Packed segments shorter than this (specials included) are dropped: pack_documents' default.
MIN_SEGMENT_TOKENS: int = pack_documents.__kwdefaults__["min_tokens"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_paths(job: PretrainJob) -> None:
    """Cheap checks of the job's paths before any corpus is read: ``~user`` paths that do not
    expand, an --output that is (or lies under) a file, an --init-from folder that is missing."""
    from .errors import CheckpointError
    from .task_model import check_model_folder

    for source in job.corpus:
        if not str(source).startswith("hf:"):
            try:
                Path(source).expanduser()
            except RuntimeError as e:  # "~user" of an unknown user
                raise ConfigError(f"--corpus {source}: cannot expand '~' ({e})") from None
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


@dataclass
class PretrainJob:
    """Everything ``spanbert pretrain`` needs; see the CLI's help for each field."""

    corpus: list[str]
    train: PretrainArguments
    tokenizer: str | None = None  # a tokenizer directory; default: the --init-from one, else train one
    init_from: str | None = None  # any BERT checkpoint directory
    preset: str = "mini"  # model size when training from scratch
    vocab_size: int = 30000  # when a tokenizer is trained
    lowercase: bool = False
    max_length: int = 512
    text_field: str = "text"
    doc_per: str = "blank_line"
    streaming: bool = False
    word_segmenter: str | None = None  # "jieba": whole words of Chinese text (see spanbert.segmenters)
    num_proc: int | None = None  # processes tokenising the corpus (datasets.map; not when streaming)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    sbo_loss_weight: float = 1.0
    unigram_replacements: bool = True
    resume: bool = False
    dropout: float | None = None  # None: the checkpoint's / preset's (0.1)
    heldout_fraction: float = 0.0  # documents held out of training and scored before/after (0: none)

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
            raise ConfigError("--heldout-fraction: a streamed corpus cannot be split by document (drop --streaming)")


def _tokenizer_for(job: PretrainJob, out: Path):
    if job.tokenizer:
        return load_tokenizer(job.tokenizer)
    if job.init_from:
        return load_tokenizer(job.init_from)
    saved = out / "tokenizer"
    if saved.is_dir():  # trained by an earlier session of this run (--resume)
        return load_tokenizer(str(saved))
    logger.info("training a WordPiece vocabulary of %d on the corpus", job.vocab_size)
    return train_tokenizer_from_files(job.corpus, saved, vocab_size=job.vocab_size, lowercase=job.lowercase,
                                      text_field=job.text_field, doc_per=job.doc_per)


def build_model(job: PretrainJob, tokenizer) -> SpanBertForPreTraining:
    """A fresh model of ``job.preset`` size, or ``job.init_from`` with fresh heads where missing."""
    overrides = {"sbo_loss_weight": job.sbo_loss_weight, "pad_token_id": tokenizer.pad_token_id}
    if job.dropout is not None:
        overrides.update(hidden_dropout_prob=job.dropout, attention_probs_dropout_prob=job.dropout)
    if job.init_from:
        model = load_for_pretraining(job.init_from, **overrides)
        if model.config.vocab_size < len(tokenizer):
            raise ConfigError(
                f"--tokenizer: {len(tokenizer)} tokens do not fit the checkpoint's vocabulary of {model.config.vocab_size}"
            )
    else:
        if job.preset not in PRESETS:
            raise ConfigError(f"--preset: unknown preset {job.preset!r}; choose one of {', '.join(PRESETS)}")
        config = config_from_preset(job.preset, vocab_size=len(tokenizer),
                                    max_position_embeddings=max(512, job.max_length), **overrides)
        model = SpanBertForPreTraining(config)
    if job.max_length > model.config.max_position_embeddings:
        raise ConfigError(
            f"--max-length {job.max_length}: the model has only {model.config.max_position_embeddings} positions"
        )
    return model


def run_pretrain_job(job: PretrainJob, stop_at_step: int | None = None) -> PretrainResult:
    """Tokenise and pack the corpus, build model and collator, and pre-train.

    With ``job.heldout_fraction`` a seeded share of the documents is kept out of training (and
    out of the unigram counts) and scored before, during and after training (see ``pretrain``).
    """
    import torch
    from accelerate import PartialState

    out = Path(job.train.output_dir)
    _check_paths(job)
    segmenter = get_segmenter(job.word_segmenter)
    if job.resume and latest_checkpoint(out) is None:
        raise ConfigError(f"--resume: no checkpoint under {out / 'checkpoints'}")
    # Under torchrun/accelerate the main process trains the tokenizer and fills the datasets
    # cache first; the others then read what it wrote.
    with PartialState(cpu=not torch.cuda.is_available()).main_process_first():
        tokenizer = _tokenizer_for(job, out)
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
        if heldout is not None:  # the training split's token frequencies: the baseline knows no held-out text
            heldout_unigram = unigram if unigram is not None else unigram_distribution(packed, len(tokenizer))
    torch.manual_seed(job.train.seed)  # the same initial weights in every process and every run
    model = build_model(job, tokenizer)
    # Batch widths rounded up to a multiple of 32 tokens: a handful of GEMM shapes instead of
    # one per batch width (CPU oneDNN keeps kernels for every shape it has seen, see modeling).
    multiple = 32 if model.config.max_position_embeddings % 32 == 0 else None
    collator = SpanMaskingCollator(tokenizer, job.masking, seed=job.train.seed, unigram=unigram,
                                   pad_to_multiple_of=multiple)
    return pretrain(model, tokenizer, packed, collator, job.train, resume=job.resume, stop_at_step=stop_at_step,
                    heldout=heldout, heldout_unigram=heldout_unigram)
