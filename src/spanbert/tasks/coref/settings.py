"""What a coreference model is fine-tuned and decoded with besides its weights (a light module:
the command line builds its options from these fields before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from spanbert.core.errors import ConfigError


def _option(default, help: str, **more):
    return field(default=default, metadata={"help": help, **more})


@dataclass(frozen=True)
class CorefSettings:
    """The options of ``spanbert finetune coref`` (fields with help text; the head's defaults are
    :class:`~spanbert.tasks.coref.model.CorefConfig`'s), and what ``coref_settings.json`` keeps
    beside the model: ``max_segment_length`` and ``singleton_threshold`` (None: no one-mention
    clusters; else unlinked kept spans whose mention score is above it become ones)."""

    max_segment_length: int = _option(384, "Subword tokens per independent segment, [CLS]/[SEP] included.", min=1)
    max_training_segments: int | None = _option(3, "Train on a random window of this many consecutive segments of "
                                                   "longer documents (SpanBERT base: 3); 0 = whole documents.", min=0)
    max_span_width: int = _option(30, "Widest candidate mention, in subword tokens.", min=1)
    top_span_ratio: float = _option(0.4, "Spans kept after mention scoring, per word.")
    max_antecedents: int = _option(50, "Antecedents per span kept by the coarse score.", min=1)
    ffnn_size: int = _option(1000, "Hidden size of the scoring FFNNs.", min=1)
    feature_size: int = _option(20, "Size of the width/distance/speaker/genre embeddings.", min=1)
    coarse_to_fine: bool = _option(True, "Bilinear coarse antecedent scores.")
    genre: bool = _option(False, "Genre feature (OntoNotes document name prefix).")
    higher_order: int = _option(0, "Higher-order refinement rounds (0: none).", min=0)
    mention_loss_weight: float = _option(0.0, "Weight of an extra mention-detection loss (0: the paper's loss only).")
    non_crossing: bool = _option(True, "Skip kept spans that cross a better one (Lee et al.).",
                                 names=("--non-crossing/--allow-crossing",))
    singletons: bool = _option(False, "Also output unlinked spans with mention probability > 1/2 as one-mention "
                                      "clusters (data that annotates singletons, e.g. LitBank; needs "
                                      "--mention-loss-weight > 0).")
    ffnn_depth: int = 1
    singleton_threshold: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_segment_length, int) or isinstance(self.max_segment_length, bool):
            raise ConfigError(f"max_segment_length must be an integer, got {self.max_segment_length!r}")
        if self.singleton_threshold is not None and not isinstance(self.singleton_threshold, (int, float)):
            raise ConfigError("singleton_threshold must be a number or null")

    def head(self) -> dict:
        """The new head's fields (:class:`~spanbert.tasks.coref.model.CorefConfig` names)."""
        return {"max_span_width": self.max_span_width, "top_span_ratio": self.top_span_ratio,
                "max_top_antecedents": self.max_antecedents, "ffnn_size": self.ffnn_size, "ffnn_depth": self.ffnn_depth,
                "feature_size": self.feature_size, "coarse_to_fine": self.coarse_to_fine, "use_genre": self.genre,
                "higher_order": self.higher_order, "mention_loss_weight": self.mention_loss_weight,
                "non_crossing": self.non_crossing}

    def with_singletons(self, singletons: bool | None) -> CorefSettings:
        """Decoding with one-mention clusters as saved (``singletons`` None), never (False), or
        with the saved threshold, else 0.0, i.e. mention probability above 1/2 (True)."""
        if singletons is None:
            return self
        saved = self.singleton_threshold
        return replace(self, singleton_threshold=(0.0 if saved is None else saved) if singletons else None)


__all__ = ["CorefSettings"]
