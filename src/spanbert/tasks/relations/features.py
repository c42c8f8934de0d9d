"""Entity markers and model inputs: examples -> marked token ids with the marker positions.

Two marker styles:

* ``wrap`` (default; typed entity markers as in Zhong & Chen 2021, entity-start pooling as in
  Baldini Soares et al. 2019): the entities stay in the text, enclosed by marker tokens,
  ``[S:PERSON] Bill Gates [/S:PERSON] founded [O:ORGANIZATION] Microsoft [/O:ORGANIZATION]``.
  Data without types (SemEval) gets the untyped ``[S] .. [/S]`` and ``[O] .. [/O]``.
* ``replace`` (what the SpanBERT paper did for TACRED): each entity is replaced by one marker,
  ``[S:PERSON] founded [O:ORGANIZATION]``.

The subject is SemEval's e1 and the object e2. Markers are added to the tokenizer as special
tokens (one token each, never split or lower-cased) and saved with it. The model reads the
hidden state at the subject's and the object's first marker (``subject_index``/``object_index``).

Sentences longer than ``max_seq_length`` are cut by :func:`keep_positions`: the markers are
always kept, then the entities' own tokens, then the context tokens nearest to a marker; so the
window is centred on the entities and, when they are far apart, the middle between them goes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.tasks.relations.data import RelationExample

logger = logging.getLogger(__name__)
STYLES = ("wrap", "replace")
# Penn Treebank escapes in TACRED tokens, restored for WordPiece.
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}


@dataclass(frozen=True)
class MarkerScheme:
    """Which marker tokens exist: the style and the entity types seen in training.

    Untyped markers always exist; an example whose type the scheme lacks gets them.
    """

    style: str = "wrap"
    subject_types: tuple[str, ...] = ()
    object_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"marker style: {self.style!r} is not one of {', '.join(STYLES)}")

    @staticmethod
    def start(role: str, kind: str | None = None) -> str:
        """The opening marker of ``role`` ("S" subject, "O" object), typed when ``kind`` is given."""
        return f"[{role}:{kind}]" if kind else f"[{role}]"

    @staticmethod
    def end(role: str, kind: str | None = None) -> str:
        return f"[/{role}:{kind}]" if kind else f"[/{role}]"

    def tokens(self) -> list[str]:
        """Every marker token of the scheme, in a fixed order."""
        out = []
        for role, kinds in (("S", self.subject_types), ("O", self.object_types)):
            for kind in (None, *kinds):
                out.append(self.start(role, kind))
                if self.style == "wrap":
                    out.append(self.end(role, kind))
        return out

    def start_tokens(self, role: str) -> list[str]:
        """The opening markers of one role (what the model's entity pooling looks for)."""
        kinds = self.subject_types if role == "S" else self.object_types
        return [self.start(role, kind) for kind in (None, *kinds)]

    def known(self, role: str, kind: str | None) -> str | None:
        """``kind`` if the scheme has markers for it, else None (the untyped markers are used)."""
        kinds = self.subject_types if role == "S" else self.object_types
        return kind if kind in kinds else None


def add_marker_tokens(tokenizer, scheme: MarkerScheme) -> int:
    """Add the scheme's markers to ``tokenizer`` as special tokens; returns how many were new."""
    return tokenizer.add_tokens(scheme.tokens(), special_tokens=True)


def marker_ids(tokenizer, tokens: Sequence[str]) -> list[int]:
    """Ids of marker tokens; a :class:`CheckpointError` if the tokenizer lacks one."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise CheckpointError(f"the tokenizer lacks the marker token(s) {', '.join(missing)} (not a relation model's tokenizer?)")
    return [vocab[t] for t in tokens]


def marked_words(example: RelationExample, scheme: MarkerScheme) -> tuple[list[str], list[int]]:
    """The example's words with markers inserted (or substituted), and the positions of the
    markers in that list: ``[subject start, object start]`` followed by the end markers (wrap)."""
    s0, s1 = example.subject_span
    o0, o1 = example.object_span
    st, ot = scheme.known("S", example.subject_type), scheme.known("O", example.object_type)
    words: list[str] = []
    pos: dict[str, int] = {}
    i = 0
    n = len(example.words)
    while i < n:
        if i == s0 or i == o0:
            role, kind, last = ("S", st, s1) if i == s0 else ("O", ot, o1)
            pos[role] = len(words)
            words.append(scheme.start(role, kind))
            if scheme.style == "wrap":
                words.extend(PTB_ESCAPES.get(w, w) for w in example.words[i : last + 1])
                pos["/" + role] = len(words)
                words.append(scheme.end(role, kind))
            i = last + 1
            continue
        words.append(PTB_ESCAPES.get(example.words[i], example.words[i]))
        i += 1
    order = ["S", "O"] + (["/S", "/O"] if scheme.style == "wrap" else [])
    return words, [pos[k] for k in order]


def keep_positions(num_tokens: int, markers: Sequence[int], budget: int) -> list[int]:
    """Which of ``num_tokens`` content tokens to keep so that at most ``budget`` remain (sorted).

    ``markers`` are token positions: ``[subject start, object start, subject end, object end]``
    (wrap) or ``[subject, object]`` (replace). Priority: the markers, then tokens inside an
    entity (nearest its start first), then other tokens by distance to the nearest marker
    (ties: the earlier token). Pure and deterministic.
    """
    if num_tokens <= budget:
        return list(range(num_tokens))
    if len(markers) > budget:
        raise ConfigError(f"max_seq_length leaves room for {budget} tokens, fewer than the {len(markers)} markers")
    pos = np.arange(num_tokens)
    marks = np.asarray(sorted(markers))
    distance = np.min(np.abs(pos[:, None] - marks[None, :]), axis=1)
    rank = np.full(num_tokens, 2)  # 2 = context
    for a, b in ((markers[0], markers[2]), (markers[1], markers[3])) if len(markers) == 4 else ():
        rank[a + 1 : b] = 1  # entity interior
        distance[a + 1 : b] = pos[a + 1 : b] - a
    rank[list(markers)] = 0
    order = np.lexsort((pos, distance, rank))  # last key is primary
    return sorted(order[:budget].tolist())


@dataclass
class RelationFeatures:
    """Model inputs of a list of examples (one item each, ``[CLS] ... [SEP]``, unpadded)."""

    input_ids: list[list[int]] = field(default_factory=list)
    subject_index: list[int] = field(default_factory=list)
    object_index: list[int] = field(default_factory=list)
    labels: list[int] | None = None
    truncated: int = 0  # examples cut to max_seq_length
    untyped: int = 0  # examples whose entity type had no marker (untyped markers used)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.asarray([len(x) for x in self.input_ids])


def encode_examples(
    examples: Sequence[RelationExample], tokenizer, scheme: MarkerScheme, max_seq_length: int = 128,
    label2id: dict[str, int] | None = None,
) -> RelationFeatures:
    """Tokenise marked examples: ``[CLS] marked sentence [SEP]``, at most ``max_seq_length`` tokens.

    With ``label2id`` the labels are encoded too (every example must have a known label; check
    with :func:`~spanbert.tasks.relations.data.check_labels` first for a located error).
    """
    if max_seq_length < 2 + (4 if scheme.style == "wrap" else 2):
        raise ConfigError(f"max_seq_length: {max_seq_length} is too small to hold the markers")
    feats = RelationFeatures(labels=[] if label2id is not None else None)
    if not examples:
        return feats
    marker_vocab = set(marker_ids(tokenizer, scheme.tokens()))
    marked = [marked_words(e, scheme) for e in examples]
    enc = tokenizer([w for w, _ in marked], is_split_into_words=True, add_special_tokens=False)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for i, (example, (words, word_marks)) in enumerate(zip(examples, marked)):
        ids = enc["input_ids"][i]
        word_ids = enc.word_ids(i)
        first_token = {}
        for t, w in enumerate(word_ids):
            first_token.setdefault(w, t)
        marks = [first_token[w] for w in word_marks]
        for w, t in zip(word_marks, marks):
            if ids[t] not in marker_vocab or (t + 1 < len(ids) and word_ids[t + 1] == w):
                raise CheckpointError(f"marker {words[w]} is not a single token of this tokenizer (add_marker_tokens first)")
        keep = keep_positions(len(ids), marks, max_seq_length - 2)
        if len(keep) < len(ids):
            feats.truncated += 1
            new_index = {old: new for new, old in enumerate(keep)}
            ids = [ids[k] for k in keep]
            marks = [new_index[m] for m in marks]
        feats.input_ids.append([cls, *ids, sep])
        feats.subject_index.append(marks[0] + 1)  # +1: [CLS]
        feats.object_index.append(marks[1] + 1)
        if (example.subject_type and scheme.known("S", example.subject_type) is None and scheme.subject_types) or (
            example.object_type and scheme.known("O", example.object_type) is None and scheme.object_types
        ):
            feats.untyped += 1
        if feats.labels is not None:
            feats.labels.append(label2id[example.label])  # type: ignore[index]
    if feats.truncated:
        logger.info("%d of %d sentences were longer than %d tokens: cut around the entities (markers kept)",
                    feats.truncated, len(examples), max_seq_length)
    if feats.untyped:
        logger.warning("%d of %d examples have an entity type unseen in training: untyped markers used",
                       feats.untyped, len(examples))
    return feats


def collate(feats: RelationFeatures, indices: Sequence[int], pad_token_id: int, labels: bool = False) -> dict[str, torch.Tensor]:
    """A batch of items ``indices``, padded to the longest of them."""
    rows = [feats.input_ids[i] for i in indices]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)] = torch.tensor(row)
        attention[r, : len(row)] = 1
    batch = {
        "input_ids": input_ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(input_ids),
        "subject_index": torch.tensor([feats.subject_index[i] for i in indices]),
        "object_index": torch.tensor([feats.object_index[i] for i in indices]),
    }
    if labels:
        if feats.labels is None:
            raise ValueError("these features have no labels")
        batch["labels"] = torch.tensor([feats.labels[i] for i in indices])
    return batch


__all__ = ["MarkerScheme", "add_marker_tokens", "marker_ids", "marked_words", "keep_positions",
           "RelationFeatures", "encode_examples", "collate", "STYLES"]
