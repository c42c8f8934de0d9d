"""What a relation classifier is trained with besides its weights (a light module: the command
line builds its options from these fields before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RelationSettings:
    """The options of ``spanbert finetune relations`` (the fields with help text). A fine-tuned
    model keeps them in its config (:class:`~spanbert.tasks.relations.model.RelationConfig`,
    with the marker types and ids), so its folder has no settings file."""

    pooling: str = field(default="markers", metadata={"help": (
        "markers: the subject-start and object-start marker states, concatenated; cls: the [CLS] state only.")})
    marker_style: str = field(default="wrap", metadata={"help": (
        "wrap: markers around the entities; replace: one marker instead of each entity (as the SpanBERT paper did).")})
    no_relation_label: str | None = field(default=None, metadata={"help": (
        "Label left out of micro P/R/F1 (default: Other or no_relation when the data has it).")})
    max_seq_length: int = field(default=128, metadata={"help": (
        "Tokens per sentence, specials included; longer ones are cut around the entities."), "min": 1})


__all__ = ["RelationSettings"]
