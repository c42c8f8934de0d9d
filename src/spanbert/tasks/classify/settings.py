"""What a classifier is trained and evaluated with besides its weights (a light module: the
command line builds its options from these fields before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanbert.core.errors import ConfigError


@dataclass(frozen=True)
class ClassifySettings:
    """Everything besides the weights that decides a classifier's predictions, and the columns
    it was trained on (evaluation reads the same ones unless told otherwise). Fields with help
    text are the options of ``spanbert finetune classify``."""

    max_seq_length: int = field(default=128, metadata={"help": "Tokens per window, specials included.", "min": 1})
    window_overlap: int = field(default=32, metadata={"help": "Tokens shared by consecutive windows of a long text.",
                                                      "min": 0})
    aggregation: str = field(default="mean", metadata={"help": "How window logits combine: mean, max or first."})
    majority_label: str | None = None  # the most frequent training label (the baseline evaluation reports)
    text_field: str = field(default="sentence", metadata={"help": "Column holding the text.", "evaluate": True})
    label_field: str = field(default="label", metadata={"help": "Column holding the label.", "evaluate": True})
    text_pair_field: str | None = field(default=None, metadata={"help": "Column of a second text (sentence-pair tasks).",
                                                                 "evaluate": True})

    def __post_init__(self) -> None:
        if self.max_seq_length < 8:
            raise ConfigError(f"max_seq_length: must be >= 8, got {self.max_seq_length}")
        if not 0 <= self.window_overlap < self.max_seq_length // 2:
            raise ConfigError(f"window_overlap: must be in [0, max_seq_length / 2), got {self.window_overlap}")
        if self.aggregation not in ("mean", "max", "first"):
            raise ConfigError(f"aggregation: must be mean, max or first, got {self.aggregation!r}")


__all__ = ["ClassifySettings"]
