"""Batched relation classification: marked sentences (or TACRED-style records) in, labels out.

    clf = RelationClassifier("runs/re")
    clf.predict(["The <e1>author</e1> wrote the <e2>book</e2>."])[0]
    # RelationPrediction(label='Product-Producer(e2,e1)', score=0.97, probabilities={...})

Each prediction is a named tuple ``(label, score, probabilities)``: the arg-max label, its
probability, and the probability of every label of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from spanbert.core.errors import ConfigError
from spanbert.core.precision import inference_autocast
from spanbert.tasks.protocol import Predictor
from spanbert.tasks.relations.data import RelationExample, example_from_tacred, parse_marked_sentence
from spanbert.tasks.relations.features import collate, encode_examples
from spanbert.tasks.relations.model import scheme_of


class RelationPrediction(NamedTuple):
    """The predicted label, its probability, and every label's probability."""

    label: str
    score: float
    probabilities: dict[str, float]


def relation_logits(model, tokenizer, examples: Sequence[RelationExample], *, batch_size: int = 64,
                    precision: str = "no", progress: bool = False) -> np.ndarray:
    """Logits ``(len(examples), num_labels)`` (float32) of ``examples``, in their order.

    Sentences are marked and cut as the model was trained (its config's marker style and
    ``max_seq_length``), sorted by length and batched so that padding stays small.
    """
    model.eval()
    feats = encode_examples(examples, tokenizer, scheme_of(model.config), model.config.max_seq_length)
    out = np.zeros((len(feats), model.config.num_labels), dtype=np.float32)
    if not len(feats):
        return out
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = np.argsort(-feats.lengths(), kind="stable")
    bar = tqdm(total=len(feats), disable=not progress, desc="classify", unit="ex", dynamic_ncols=True)
    with torch.inference_mode(), inference_autocast(device, precision):
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size].tolist()
            batch = {k: v.to(device) for k, v in collate(feats, idx, pad).items()}
            out[idx] = model(**batch).logits.float().cpu().numpy()
            bar.update(len(idx))
    bar.close()
    return out


def decode(logits: np.ndarray, id2label: dict) -> list[RelationPrediction]:
    """Softmax and arg-max of ``logits`` (N, C) as predictions; ``id2label`` maps class ids to labels."""
    logits = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    names = [id2label[i] for i in range(probs.shape[1])]
    best = probs.argmax(axis=1)
    return [RelationPrediction(names[b], float(p[b]), {n: float(x) for n, x in zip(names, p)}) for b, p in zip(best, probs)]


def as_examples(inputs: str | dict | RelationExample | Sequence[str | dict | RelationExample]) -> list[RelationExample]:
    """Marked sentences (``<e1>..</e1>``/``<e2>..</e2>``), TACRED-style dicts or examples, as examples."""
    if isinstance(inputs, (str, dict, RelationExample)):
        inputs = [inputs]
    examples = []
    for i, item in enumerate(inputs):
        where = f"input {i}"
        if isinstance(item, RelationExample):
            examples.append(item)
        elif isinstance(item, str):
            words, subj, obj, st, ot = parse_marked_sentence(item, where)
            examples.append(RelationExample(str(i), words, subj, obj, None, st, ot, where))
        elif isinstance(item, dict):
            examples.append(example_from_tacred({"id": i, **item}, where, labeled=False))
        else:
            raise ConfigError(f"{where}: expected a marked sentence, a TACRED-style dict or a RelationExample, got {type(item).__name__}")
    return examples


class RelationClassifier(Predictor):
    """A fine-tuned relation model (``spanbert finetune relations``) classifying batches of sentences.

    ``precision``: ``"no"`` (fp32), ``"bf16"``, or ``"auto"`` (bf16 where native).
    """

    task_name, default_batch_size = "relations", 64

    @property
    def labels(self) -> list[str]:
        """The model's labels, by class id."""
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def predict(self, inputs: str | dict | RelationExample | Sequence[str | dict | RelationExample]) -> list[RelationPrediction]:
        """Classify marked sentences (``"The <e1>author</e1> wrote the <e2>book</e2>."``; ``<e1:PERSON>``
        gives a type) and/or TACRED-style dicts (``token``, ``subj_start``, ``subj_end``, ``obj_start``,
        ``obj_end``, optional ``subj_type``/``obj_type``). One prediction per input, in order."""
        return self.predict_examples(as_examples(inputs))

    def predict_examples(self, examples: Sequence[RelationExample], progress: bool = False) -> list[RelationPrediction]:
        """Classify :class:`~spanbert.tasks.relations.data.RelationExample` objects (e.g. from ``read_relations``)."""
        logits = relation_logits(self.model, self.tokenizer, examples, batch_size=self.batch_size,
                                 precision=self.precision, progress=progress)
        return decode(logits, self.model.config.id2label)


__all__ = ["RelationClassifier", "RelationPrediction", "relation_logits", "decode", "as_examples"]
