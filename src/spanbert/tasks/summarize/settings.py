"""What an extractive summarizer is trained and decodes with besides its weights (a light module:
the command line builds its options from these fields before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanbert.core.errors import ConfigError
from spanbert.tasks.summarize.decoding import Budget


@dataclass(frozen=True)
class SummarizeSettings:
    """The options of ``spanbert finetune summarize`` (the fields with help text: the training
    labels, the new head, the length budget) and the ROUGE rule with several references. Only
    the budget is saved beside the model (``summarize_settings.json``); the head's settings live
    in its config."""

    max_seq_length: int = field(default=512, metadata={
        "help": "Tokens per encoder segment ([CLS]/[SEP] included); longer documents use several.", "min": 1})
    labels: str = field(default="oracle", metadata={
        "help": "Training labels: 'oracle' (our greedy ROUGE oracle) or 'file' (the data's source_labels)."})
    oracle_sentences: int = field(default=3, metadata={
        "help": "The greedy oracle picks at most this many sentences per document.", "min": 1})
    span_representation: str = field(default="endpoint", metadata={"help": "endpoint, self_attentive or endpoint+self_attentive."})
    cross_attention: bool = field(default=True, metadata={"help": "Span-to-document cross-attention before scoring."})
    cross_attention_heads: int = field(default=4, metadata={"help": "Heads of the cross-attention.", "min": 1})
    pos_weight: float = field(default=1.0, metadata={"help": "BCE weight of the (rare) oracle sentences."})
    max_sentences: int | None = field(default=1, metadata={"help": "Summary budget saved with the model: sentences.", "min": 1})
    max_words: int | None = field(default=None, metadata={"help": "Summary budget saved with the model: words.", "min": 1})
    block_trigrams: bool = field(default=False, metadata={"help": "Skip a sentence sharing a trigram with a chosen one."})
    multi_reference: str = "max"  # see spanbert.tasks.summarize.scoring; `evaluate summarize --multi-reference`

    def __post_init__(self) -> None:
        if self.labels not in ("oracle", "file"):
            raise ConfigError(f"labels: {self.labels!r} is not one of oracle, file")
        self.budget  # noqa: B018 -- a budget with no limit at all is an error

    @property
    def budget(self) -> Budget:
        return Budget(self.max_sentences, self.max_words, self.block_trigrams)


__all__ = ["SummarizeSettings"]
