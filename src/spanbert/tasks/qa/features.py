"""Windows over long contexts: ``[CLS] question [SEP] context-window [SEP]``.

A context longer than one window is cut into windows that share ``window_overlap`` context
tokens with their neighbour. (The SpanBERT/BERT scripts' ``doc_stride`` is the *step* between
window starts; a fast tokenizer's ``stride`` is the *overlap*. We name the overlap, and
:attr:`WindowConfig.window_step` reports the step a window of a given question gets.)

Each context is tokenised once, however many questions it has, and every window keeps the
character offsets of its context tokens, so answers are cut from the original text. A token
seen by several windows is scored only in the window where it has the most context on both
sides (the max-context rule of the BERT/SpanBERT scripts): ``min(left, right) + 0.01 * len``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from spanbert.tasks.qa.data import QAExample
from spanbert.tasks.qa.settings import WindowConfig

NOT_CONTEXT = -1  # offset of tokens outside the context (question, specials, padding)


@dataclass(frozen=True)
class PairTemplate:
    """Where a tokenizer puts its special tokens around a (question, context) pair."""

    prefix: tuple[int, ...]  # e.g. ([CLS],)
    middle: tuple[int, ...]  # e.g. ([SEP],); RoBERTa: (</s>, </s>)
    suffix: tuple[int, ...]  # e.g. ([SEP],)
    question_type: int
    context_type: int  # token type of the context and the specials after it
    null_index: int  # the position whose start/end logits score "no answer" ([CLS])
    uses_token_types: bool

    @property
    def num_specials(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer) -> PairTemplate:
        """Read the template from how ``tokenizer`` encodes a sample pair."""
        enc = tokenizer("a", "b", return_token_type_ids=True)
        seq = enc.sequence_ids(0)
        ids, types = enc["input_ids"], enc["token_type_ids"]
        first, second = seq.index(0), seq.index(1)
        last_first = max(i for i, s in enumerate(seq) if s == 0)
        last_second = max(i for i, s in enumerate(seq) if s == 1)
        return cls(
            prefix=tuple(ids[:first]),
            middle=tuple(ids[last_first + 1 : second]),
            suffix=tuple(ids[last_second + 1 :]),
            question_type=int(types[first]),
            context_type=int(types[second]),
            null_index=0,
            uses_token_types="token_type_ids" in tokenizer.model_input_names,
        )


@dataclass
class QAFeatures:
    """Model inputs for a list of examples, one entry per window (ragged, unpadded).

    ``offsets[w]`` is ``(len, 2)``: character ``[start, end)`` of each token in its example's
    context, ``NOT_CONTEXT`` for the question and special tokens. ``max_context[w]`` marks the
    tokens this window is the best window for. Training features also carry the token
    positions of the answer (``null_index`` when the window does not contain it).
    """

    template: PairTemplate
    input_ids: list[np.ndarray] = field(default_factory=list)  # each (len,) int64
    token_type_ids: list[np.ndarray] = field(default_factory=list)  # each (len,) int64
    offsets: list[np.ndarray] = field(default_factory=list)  # each (len, 2) int64
    max_context: list[np.ndarray] = field(default_factory=list)  # each (len,) bool
    example_index: list[int] = field(default_factory=list)  # window -> position in the example list
    start_positions: list[int] = field(default_factory=list)
    end_positions: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))


def window_starts(num_tokens: int, per_window: int, step: int) -> list[int]:
    """Start offsets of windows of ``per_window`` tokens, ``step`` apart, covering ``num_tokens``."""
    starts = [0]
    while starts[-1] + per_window < num_tokens:
        starts.append(starts[-1] + step)
    return starts


def max_context_windows(num_tokens: int, starts: Sequence[int], per_window: int) -> np.ndarray:
    """For each context token, the window where it has the most context: (num_tokens,) int.

    Score of token i in window [s, s + n): ``min(i - s, s + n - 1 - i) + 0.01 * n``; on ties
    the earlier window wins, as in the original scripts.
    """
    best = np.full(num_tokens, -np.inf)
    owner = np.zeros(num_tokens, dtype=np.int64)
    for w, s in enumerate(starts):
        n = min(per_window, num_tokens - s)
        i = np.arange(s, s + n)
        score = np.minimum(i - s, s + n - 1 - i) + 0.01 * n
        better = score > best[s : s + n]
        best[s : s + n] = np.where(better, score, best[s : s + n])
        owner[s : s + n] = np.where(better, w, owner[s : s + n])
    return owner


def answer_token_span(offsets: np.ndarray, start_char: int, end_char: int) -> tuple[int, int] | None:
    """First and last context token (inclusive) covering characters ``[start_char, end_char)``."""
    first = int(np.searchsorted(offsets[:, 1], start_char, side="right"))  # first token ending after start
    last = int(np.searchsorted(offsets[:, 0], end_char, side="left")) - 1  # last token starting before end
    if first >= len(offsets) or last < first:
        return None
    return first, last


def build_features(
    examples: Sequence[QAExample],
    tokenizer,
    config: WindowConfig = WindowConfig(),
    *,
    training: bool = False,
    template: PairTemplate | None = None,
) -> QAFeatures:
    """Tokenise ``examples`` and cut them into windows (see the module docstring).

    With ``training=True`` each window gets the token positions of the example's first answer
    (or of the null position when the window lacks it or the question is unanswerable), and
    answerable examples without a usable answer are left out.
    """
    template = template or PairTemplate.from_tokenizer(tokenizer)
    feats = QAFeatures(template)
    if not examples:
        return feats
    # Tokenise each distinct context once: SQuAD has about five questions per paragraph.
    context_index: dict[str, int] = {}
    for ex in examples:
        context_index.setdefault(ex.context, len(context_index))
    ctx = tokenizer(list(context_index), add_special_tokens=False, return_offsets_mapping=True,
                    return_attention_mask=False, return_token_type_ids=False, verbose=False)
    ctx_ids = [np.asarray(x, dtype=np.int64) for x in ctx["input_ids"]]
    ctx_off = [np.asarray(x, dtype=np.int64).reshape(-1, 2) for x in ctx["offset_mapping"]]
    questions = tokenizer([ex.question for ex in examples], add_special_tokens=False, truncation=True,
                          max_length=config.max_question_tokens, return_attention_mask=False,
                          return_token_type_ids=False, verbose=False)["input_ids"]

    prefix, middle, suffix = (np.asarray(t, dtype=np.int64) for t in (template.prefix, template.middle, template.suffix))
    for e, ex in enumerate(examples):
        c = context_index[ex.context]
        ids, off = ctx_ids[c], ctx_off[c]
        q = np.asarray(questions[e], dtype=np.int64)
        per_window = config.context_tokens(len(q), template.num_specials)
        step = per_window - config.window_overlap
        starts = window_starts(len(ids), per_window, step)
        owner = max_context_windows(len(ids), starts, per_window)
        answer = None
        if training:
            if ex.answers:
                answer = answer_token_span(off, ex.answers[0].start, ex.answers[0].end)
                if answer is None:
                    continue
            elif not ex.is_impossible:
                continue
        head = np.concatenate([prefix, q, middle])  # (len_head,)
        n_head = len(head)
        for w, s in enumerate(starts):
            n = min(per_window, len(ids) - s)
            window_ids = np.concatenate([head, ids[s : s + n], suffix])
            types = np.full(len(window_ids), template.context_type, dtype=np.int64)
            types[:n_head] = template.question_type
            offsets = np.full((len(window_ids), 2), NOT_CONTEXT, dtype=np.int64)
            offsets[n_head : n_head + n] = off[s : s + n]
            best = np.zeros(len(window_ids), dtype=bool)
            best[n_head : n_head + n] = owner[s : s + n] == w
            feats.input_ids.append(window_ids)
            feats.token_type_ids.append(types)
            feats.offsets.append(offsets)
            feats.max_context.append(best)
            feats.example_index.append(e)
            if training:
                if answer is not None and s <= answer[0] and answer[1] < s + n:
                    feats.start_positions.append(n_head + answer[0] - s)
                    feats.end_positions.append(n_head + answer[1] - s)
                else:
                    feats.start_positions.append(template.null_index)
                    feats.end_positions.append(template.null_index)
    return feats


def iter_feature_chunks(
    examples: Sequence[QAExample], tokenizer, config: WindowConfig = WindowConfig(), chunk_size: int = 256
) -> Iterator[tuple[int, QAFeatures]]:
    """Features of ``chunk_size`` examples at a time: ``(first example index, features)``.

    Every window of an example is in the same chunk, so a chunk can be decoded on its own;
    memory stays bounded by the chunk, however many questions there are.
    """
    template = PairTemplate.from_tokenizer(tokenizer)
    for first in range(0, len(examples), chunk_size):
        yield first, build_features(examples[first : first + chunk_size], tokenizer, config, template=template)


def span_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over windows of the start and end cross-entropies, over each window's real tokens.

    ``BertForQuestionAnswering``'s own loss also spreads probability over padding positions,
    so a window's loss would depend on how long the other windows of its batch are (and 2
    processes x 4 windows would not train like 1 x 8). ``batch`` is a :func:`collate_windows`
    batch with labels.
    """
    inputs = {k: v for k, v in batch.items() if k not in ("start_positions", "end_positions")}
    out = model(**inputs)
    padding = inputs["attention_mask"] == 0  # (batch, longest)
    start = out.start_logits.float().masked_fill(padding, float("-inf"))
    end = out.end_logits.float().masked_fill(padding, float("-inf"))
    ce = torch.nn.functional.cross_entropy
    return (ce(start, batch["start_positions"]) + ce(end, batch["end_positions"])) / 2


def collate_windows(
    feats: QAFeatures, indices: Sequence[int], pad_token_id: int, *, labels: bool = False,
    pad_to_multiple_of: int = 8,
) -> dict[str, torch.Tensor]:
    """Pad the windows ``indices`` of ``feats`` into one batch of tensors: (batch, longest)."""
    longest = max(len(feats.input_ids[i]) for i in indices)
    longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    ids = np.full((len(indices), longest), pad_token_id, dtype=np.int64)
    types = np.zeros((len(indices), longest), dtype=np.int64)
    mask = np.zeros((len(indices), longest), dtype=np.int64)
    for row, i in enumerate(indices):
        n = len(feats.input_ids[i])
        ids[row, :n] = feats.input_ids[i]
        types[row, :n] = feats.token_type_ids[i]
        mask[row, :n] = 1
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if feats.template.uses_token_types:
        batch["token_type_ids"] = torch.from_numpy(types)
    if labels:
        batch["start_positions"] = torch.tensor([feats.start_positions[i] for i in indices])
        batch["end_positions"] = torch.tensor([feats.end_positions[i] for i in indices])
    return batch
