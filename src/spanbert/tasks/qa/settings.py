"""What a QA model is trained and evaluated with besides its weights (a light module: the
command line builds its options from these fields before torch loads).

A fine-tuned model keeps :class:`QASettings` (windows, answer length, the fitted null
threshold) beside it in ``qa_settings.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spanbert.core.errors import ConfigError


@dataclass(frozen=True)
class WindowConfig:
    """How questions and contexts are cut into model inputs (see :mod:`.features`)."""

    max_seq_length: int = 384  # tokens per window, specials included
    max_question_tokens: int = 64  # longer questions are truncated
    window_overlap: int = 128  # context tokens shared by consecutive windows (not a step)

    def __post_init__(self) -> None:
        if self.max_question_tokens < 1:
            raise ConfigError(f"max_question_tokens: must be >= 1, got {self.max_question_tokens}")
        if self.window_overlap < 0:
            raise ConfigError(f"window_overlap: must be >= 0, got {self.window_overlap}")
        room = self.max_seq_length - self.max_question_tokens - 4
        if room <= self.window_overlap:
            raise ConfigError(
                f"window_overlap: {self.window_overlap} leaves no step; with max_seq_length "
                f"{self.max_seq_length} and max_question_tokens {self.max_question_tokens} it must be < {room}"
            )

    def window_step(self, question_tokens: int, num_specials: int = 3) -> int:
        """Context tokens between the starts of consecutive windows for such a question."""
        return self.context_tokens(question_tokens, num_specials) - self.window_overlap

    def context_tokens(self, question_tokens: int, num_specials: int = 3) -> int:
        """Context tokens one window holds next to a question of ``question_tokens`` tokens."""
        return self.max_seq_length - min(question_tokens, self.max_question_tokens) - num_specials


@dataclass(frozen=True)
class DecodeConfig:
    """How answers are read off the logits (see :mod:`.decoding`)."""

    n_best: int = 20  # start and end candidates per window, and answers kept per question
    max_answer_tokens: int = 30
    allow_null: bool = False  # SQuAD 2.0: questions may have no answer
    null_threshold: float = 0.0  # answer "" when null_score - best_span_score exceeds this

    def __post_init__(self) -> None:
        if self.n_best < 1:
            raise ConfigError(f"n_best: must be >= 1, got {self.n_best}")
        if self.max_answer_tokens < 1:
            raise ConfigError(f"max_answer_tokens: must be >= 1, got {self.max_answer_tokens}")


@dataclass(frozen=True)
class QASettings:
    """Everything besides the weights that decides a QA model's answers (``qa_settings.json``)."""

    windows: WindowConfig = WindowConfig()
    decoding: DecodeConfig = DecodeConfig()
    squad_version: str = "1.1"  # "2.0": the model may answer "no answer"


@dataclass(frozen=True)
class QAOptions:
    """The options of ``spanbert finetune qa`` (defaults: those of the configs above)."""

    max_seq_length: int = field(default=WindowConfig.max_seq_length, metadata={
        "help": "Tokens per window, specials included.", "min": 1})
    max_question_tokens: int = field(default=WindowConfig.max_question_tokens, metadata={
        "help": "Questions are truncated to this many tokens.", "min": 1})
    window_overlap: int = field(default=WindowConfig.window_overlap, metadata={
        "help": "Context tokens shared by consecutive windows (an overlap, not a step).", "min": 0})
    max_answer_tokens: int = field(default=DecodeConfig.max_answer_tokens, metadata={
        "help": "Longest answer, in tokens.", "min": 1})
    n_best: int = field(default=DecodeConfig.n_best, metadata={"help": "Start and end candidates per window.", "min": 1})

    def __post_init__(self) -> None:
        self.settings()  # impossible windows are refused before any data is read

    def settings(self, squad_version: str = "1.1") -> QASettings:
        """The settings these options train with (SQuAD 2.0: the model may answer "no answer")."""
        windows = WindowConfig(self.max_seq_length, self.max_question_tokens, self.window_overlap)
        decoding = DecodeConfig(self.n_best, self.max_answer_tokens, allow_null=squad_version == "2.0")
        return QASettings(windows, decoding, squad_version)


__all__ = ["QASettings", "QAOptions", "WindowConfig", "DecodeConfig"]
