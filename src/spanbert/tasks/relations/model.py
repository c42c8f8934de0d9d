"""The relation classifier: ``BertModel`` + a linear layer over the entity-start markers (or [CLS]).

``pooling="markers"`` concatenates the last-layer states of the subject's and the object's
opening marker tokens, ``[h_[S]; h_[O]]`` (B, 2H), the entity-start representation of Baldini
Soares et al. 2019 with the typed markers of Zhong & Chen 2021; ``pooling="cls"`` uses the
[CLS] state alone (B, H), the SpanBERT paper's TACRED head (without BERT's pooler), for
comparison. Everything that decides the model's answers besides the weights lives in its
config (labels, no-relation label, marker style and types, marker token ids, sequence length),
so a saved folder is self-describing; the marker tokens are saved with its tokenizer.

The config and head register with ``AutoConfig``, ``AutoModel`` (the encoder) and
``AutoModelForSequenceClassification`` (the head) once this module is imported.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertPreTrainedModel

from spanbert.core.errors import ConfigError
from spanbert.core.checkpoints import load_head_model, register_auto
from spanbert.tasks.relations.features import MarkerScheme, add_marker_tokens, marker_ids

POOLINGS = ("markers", "cls")


@strict
class RelationConfig(BertConfig):
    """``BertConfig`` plus the relation head's settings.

    ``pooling``: "markers" ([h_subject_start; h_object_start]) or "cls".
    ``no_relation_label``: the label excluded from micro P/R/F1 ("Other" for SemEval,
    "no_relation" for TACRED). ``marker_style``: "wrap" (markers around the entities) or
    "replace" (one marker instead of each entity). ``subject_types``/``object_types``: entity
    types with their own typed markers (empty: untyped markers only).
    ``subject_start_ids``/``object_start_ids``: token ids of the opening markers, so the head
    finds the entities itself when the caller gives no indices. ``max_seq_length``: tokens per
    sentence, specials included.
    """

    model_type = "spanbert_relation"

    pooling: str = "markers"
    no_relation_label: str = "no_relation"
    marker_style: str = "wrap"
    subject_types: list[str] | None = None
    object_types: list[str] | None = None
    subject_start_ids: list[int] | None = None
    object_start_ids: list[int] | None = None
    max_seq_length: int = 128


class BertForRelationExtraction(BertPreTrainedModel):
    """Relation classification over a sentence with marked subject and object."""

    config_class = RelationConfig

    def __init__(self, config: RelationConfig):
        super().__init__(config)
        if config.pooling not in POOLINGS:
            raise ConfigError(f"pooling: {config.pooling!r} is not one of {', '.join(POOLINGS)}")
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        width = 2 * config.hidden_size if config.pooling == "markers" else config.hidden_size
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    @staticmethod
    def find_markers(input_ids: torch.Tensor, ids: list[int] | None, what: str) -> torch.Tensor:
        """(B,) position of the first token of each row that is one of ``ids``."""
        if not ids:
            raise ValueError(f"{what}_index not given and the config has no {what}_start_ids")
        hit = torch.isin(input_ids, torch.tensor(ids, device=input_ids.device))  # (B, T)
        if not bool(hit.any(dim=1).all()):
            raise ValueError(f"a row of input_ids has no {what} marker")
        return hit.int().argmax(dim=1)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        subject_index: torch.Tensor | None = None,
        object_index: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """``input_ids`` (B, T) of marked sentences; ``subject_index``/``object_index`` (B,) the
        positions of the opening markers (found from the config's marker ids when omitted);
        ``labels`` (B,) class ids. Returns ``logits`` (B, num_labels) and the mean cross-entropy."""
        kwargs.pop("return_dict", None)
        out = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True, **kwargs)
        hidden = out.last_hidden_state  # (B, T, H)
        if self.config.pooling == "cls":
            pooled = hidden[:, 0]  # (B, H)
        else:
            if subject_index is None:
                subject_index = self.find_markers(input_ids, self.config.subject_start_ids, "subject")
            if object_index is None:
                object_index = self.find_markers(input_ids, self.config.object_start_ids, "object")
            rows = torch.arange(hidden.size(0), device=hidden.device)
            pooled = torch.cat([hidden[rows, subject_index], hidden[rows, object_index]], dim=-1)  # (B, 2H)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertRelationEncoder(BertModel):
    """The encoder of a relation model, for ``AutoModel.from_pretrained(relation_dir)``."""

    config_class = RelationConfig

    def __init__(self, config: RelationConfig, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=add_pooling_layer)


register_auto(BertForRelationExtraction, AutoModelForSequenceClassification, encoder=BertRelationEncoder)


def scheme_of(config: RelationConfig) -> MarkerScheme:
    """The marker scheme a model was trained with."""
    return MarkerScheme(config.marker_style, tuple(config.subject_types or ()), tuple(config.object_types or ()))


def new_relation_model(
    base: str | os.PathLike, labels: list[str], *, pooling: str = "markers", no_relation_label: str = "no_relation",
    scheme: MarkerScheme = MarkerScheme(), max_seq_length: int = 128, seed: int | None = 42, dtype=None,
):
    """``(model, tokenizer)``: the encoder of any BERT-family folder (ours or plain) under a new
    relation head for ``labels``, seeded with ``seed`` (None: the caller seeded torch), with the
    marker tokens added to the tokenizer and the embedding matrix resized for them."""
    if pooling not in POOLINGS:
        raise ConfigError(f"--pooling: {pooling!r} is not one of {', '.join(POOLINGS)}")
    if not labels:
        raise ConfigError("no labels in the training data")
    if seed is not None:
        torch.manual_seed(seed)  # the new head (and marker embeddings) start the same in every run
    model, tokenizer = load_head_model(
        base, BertForRelationExtraction, "relation extraction", dtype=dtype,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        pooling=pooling, no_relation_label=no_relation_label, marker_style=scheme.style,
        subject_types=list(scheme.subject_types), object_types=list(scheme.object_types), max_seq_length=max_seq_length,
    )
    if add_marker_tokens(tokenizer, scheme):
        # new rows: sampled around the mean of the existing embeddings (transformers' mean_resizing)
        model.resize_token_embeddings(len(tokenizer))
    model.config.subject_start_ids = marker_ids(tokenizer, scheme.start_tokens("S"))
    model.config.object_start_ids = marker_ids(tokenizer, scheme.start_tokens("O"))
    return model, tokenizer


__all__ = ["RelationConfig", "BertForRelationExtraction", "BertRelationEncoder", "new_relation_model", "scheme_of",
           "POOLINGS"]
