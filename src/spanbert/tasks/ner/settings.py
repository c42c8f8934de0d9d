"""What a span NER model is trained and evaluated with besides its weights (a light module: the
command line builds its options from these fields before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanbert.core.errors import ConfigError


@dataclass(frozen=True)
class WindowConfig:
    """How sentences are cut into encoder inputs."""

    max_seq_length: int = 128  # subword tokens per window, [CLS] and [SEP] included

    def __post_init__(self) -> None:
        if self.max_seq_length < 3:
            raise ConfigError(f"max_seq_length: must be >= 3, got {self.max_seq_length}")


@dataclass(frozen=True)
class DecodeConfig:
    """How entities are read off span probabilities (see :mod:`spanbert.tasks.ner.decoding`)."""

    threshold: float | None = None  # None: a span's best label must beat O; else its best type's probability >= this

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold: must be in [0, 1], got {self.threshold}")


@dataclass(frozen=True)
class NerSettings:
    """Everything besides the weights that decides a span NER model's output (``windows``,
    ``decoding`` and ``scheme`` are saved as ``ner_settings.json``), and how a run reads and
    tunes (not saved)."""

    windows: WindowConfig = WindowConfig()
    decoding: DecodeConfig = DecodeConfig()
    scheme: str = "IOB2"  # tags written to CoNLL prediction files
    fit_threshold: bool = True  # fine-tuning: fit decoding.threshold on dev
    data_scheme: str = "auto"  # evaluation: the tagging scheme of the data (--scheme)
    split: str = "test"  # evaluation: the split of a dataset folder or hf: source (--split)


# The options that are fields of the model's config (spanbert.tasks.ner.model.SpanNerConfig), in summary order.
HEAD = ("max_span_width", "span_combination", "width_embedding_dim", "use_cross_attention", "cross_attention_heads",
        "negative_ratio", "classifier_hidden_size")


@dataclass(frozen=True)
class NerOptions:
    """The options of ``spanbert finetune ner`` (the fields with help text; their names are those
    ``training_args.json`` records): the new head's (:meth:`head`), the windows, the tagging scheme
    of the data, and threshold fitting."""

    max_span_width: int = field(default=8, metadata={"help": "Longest candidate entity, in words.", "min": 1})
    cross_attention: bool = field(default=True, metadata={
        "help": "Let spans attend over all tokens.", "names": ("--cross-attention/--no-cross-attention",)})
    negative_ratio: float = field(default=1.0, metadata={
        "help": "Negative spans sampled per window = ceil(ratio x words); 0 = all spans.", "min": 0.0})
    span_combination: str = field(default="x,y", metadata={"help": "Endpoint combination: x,y or x,y,x*y (x start, y end)."})
    width_embedding_dim: int = field(default=32, metadata={"help": "Span width embedding size (0: none).", "min": 0})
    classifier_hidden_size: int = field(default=256, metadata={"help": "Hidden layer of the span classifier.", "min": 1})
    max_seq_length: int = field(default=128, metadata={
        "help": "Subword tokens per window; longer sentences are cut into windows of whole words.", "min": 1})
    scheme: str = field(default="auto", metadata={"help": "Tagging scheme of the data: auto, IOB2 (BIO), IOB1 or IOBES (BIOES)."})
    fit_threshold: bool = field(default=True, metadata={"help": "Fit the decoding threshold on --dev for best F1."})
    cross_attention_heads: int = 4

    def __post_init__(self) -> None:
        WindowConfig(self.max_seq_length)  # a bad length is refused before any work

    def head(self) -> dict:
        """The new head's config fields (:data:`HEAD`)."""
        return {k: getattr(self, "cross_attention" if k == "use_cross_attention" else k) for k in HEAD}


__all__ = ["NerSettings", "NerOptions", "WindowConfig", "DecodeConfig", "HEAD"]
