"""The HTTP API's request and response bodies (pydantic models; FastAPI validates requests with
them and publishes them in the OpenAPI document).

Every task request is ``{"items": [...], "model"?: name, ...options}`` and every response
``{"model": name, "results": [...]}``, one result per item, in order. Texts must be non-blank
strings; unknown fields are rejected, so a misspelt option is an error, not silently ignored.
Character offsets are Python string indices into the item's text (``end`` exclusive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model


def _unicode(value: str | None) -> str | None:
    """JSON may escape a lone UTF-16 surrogate (``"\\ud800"``); it is not a character, no tokenizer
    takes it and no reply can echo it, so it is refused here."""
    if value is not None:
        bad = next((i for i, c in enumerate(value) if "\ud800" <= c <= "\udfff"), None)
        if bad is not None:
            raise ValueError(f"not valid Unicode: a lone surrogate U+{ord(value[bad]):04X} at character {bad}")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


Text = Annotated[str, AfterValidator(_unicode), AfterValidator(_not_blank)]
ModelName = Annotated[str | None, AfterValidator(_unicode),
                      Field(description="Name of a loaded model of this task (see GET /v1/models); "
                                        "default: the first one given to the server.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------

class QAItem(Strict):
    question: Text
    context: Text


class TextItem(Strict):
    text: Text


class ClassifyItem(Strict):
    text: Text
    text_pair: Text | None = Field(None, description="Second text of a sentence-pair task (e.g. NLI).")


class RelationItem(Strict):
    text: Text = Field(description="A sentence with the subject marked <e1>..</e1> and the object <e2>..</e2>.")


class QARequest(Strict):
    items: list[QAItem] = Field(min_length=1)
    model: ModelName = None
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"question": "Who wrote it?", "context": "It was written by Ann in 1790."}]}]})


class FillRequest(Strict):
    items: list[TextItem] = Field(min_length=1, description="Texts with one or more runs of [MASK] tokens.")
    top_k: int = Field(5, ge=1, le=50, description="Best tokens listed per masked position and head.")
    model: ModelName = None
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"text": "The [MASK] [MASK] of the United States."}], "top_k": 3}]})


class ClassifyRequest(Strict):
    items: list[ClassifyItem] = Field(min_length=1)
    model: ModelName = None


class RelationsRequest(Strict):
    items: list[RelationItem] = Field(min_length=1)
    model: ModelName = None
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"text": "The <e1>author</e1> wrote the <e2>book</e2>."}]}]})


class TextsRequest(Strict):
    items: list[TextItem] = Field(min_length=1)
    model: ModelName = None


class SummarizeRequest(Strict):
    items: list[TextItem] = Field(min_length=1)
    max_sentences: int | None = Field(None, ge=1, le=1000, description="At most this many sentences (default: the model's saved budget).")
    max_words: int | None = Field(None, ge=1, le=100_000, description="At most this many words (giving either limit replaces both saved ones).")
    model: ModelName = None


# -- responses --------------------------------------------------------------------------------

class QAResult(BaseModel):
    answer: str = Field(description="The answer text; empty for no answer.")
    start: int = Field(description="Character offset of the answer in the context; -1 for no answer.")
    end: int = Field(description="Character offset just after the answer; -1 for no answer.")
    score: float | None = Field(description="Start + end logit of the best span (null when there is none).")
    probability: float | None = Field(description="The answer's probability among the n-best answers.")
    no_answer: bool


class TokenProbability(BaseModel):
    token: str
    probability: float


class HeadFill(BaseModel):
    text: str = Field(description="The masked run as filled by this head.")
    tokens: list[str]
    probabilities: list[float] = Field(description="Probability of each chosen token under this head.")
    probability: float = Field(description="Product of the per-token probabilities.")
    top_k: list[list[TokenProbability]] = Field(description="Per masked position, the head's best tokens (empty for 'iterative').")


class FillSpan(BaseModel):
    start: int = Field(description="Character offset of the run's first [MASK] in the input.")
    end: int = Field(description="Character offset just after the run's last [MASK].")
    token_start: int
    token_end: int
    predictions: dict[str, HeadFill] = Field(description="Keys: mlm, sbo, joint (both heads), iterative (joint, one token at a time).")


class FillResult(BaseModel):
    text: str = Field(description="The input with every run filled by the joint head (as the tokenizer decodes it).")
    filled: dict[str, str] = Field(description="The input filled by each head.")
    spans: list[FillSpan]


class LabelResult(BaseModel):
    label: str
    score: float = Field(description="Probability of the label.")
    probabilities: dict[str, float]


class EntityOut(BaseModel):
    text: str
    label: str
    start: int
    end: int
    score: float


class EntitiesResult(BaseModel):
    entities: list[EntityOut]


class MentionOut(BaseModel):
    text: str
    start: int
    end: int


class CorefResult(BaseModel):
    clusters: list[list[MentionOut]]


class SentenceOut(BaseModel):
    index: int = Field(description="Index of the sentence in the document.")
    start: int
    end: int
    score: float
    text: str


class SummaryResult(BaseModel):
    summary: str
    sentences: list[SentenceOut]


class QAResponse(BaseModel):
    model: str
    results: list[QAResult]


class FillResponse(BaseModel):
    model: str
    results: list[FillResult]


class LabelResponse(BaseModel):
    model: str
    results: list[LabelResult]


class EntitiesResponse(BaseModel):
    model: str
    results: list[EntitiesResult]


class CorefResponse(BaseModel):
    model: str
    results: list[CorefResult]


class SummarizeResponse(BaseModel):
    model: str
    results: list[SummaryResult]


class ModelInfo(BaseModel):
    name: str
    task: str
    labels: list[str] | None = None
    batching: dict[str, int] | None = None  # the micro-batcher's counters since start: requests, items, batches, calls


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


def task_request(task: str, fields: Sequence[str]) -> type[BaseModel]:
    """The request body of a registered task without a schema of its own (``/v1/<task>``): items
    with the task's text fields (all required), and the model's name."""
    item = create_model(f"{task.title()}Item", __base__=Strict, **{name: (Text, ...) for name in fields})
    return create_model(f"{task.title()}Request", __base__=Strict, items=(list[item], Field(min_length=1)),
                        model=(ModelName, None))
