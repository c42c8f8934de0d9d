"""The shared fine-tuning loop's batching."""

from __future__ import annotations

import numpy as np
import pytest

from spanbert.tasks.finetune import length_grouped_batches


def test_batches_are_full_disjoint_length_grouped_and_seeded():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 300, size=1000)
    batches = length_grouped_batches(lengths, 16, seed=3, epoch=0, group=4)
    flat = np.concatenate(batches)
    assert all(len(b) == 16 for b in batches) and len(batches) == 1000 // 16
    assert len(set(flat.tolist())) == len(flat)  # no item twice
    # inside a group of 4 batches the lengths are sorted, so a batch's spread is far below random
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.5 * (lengths.max() - lengths.min())
    again = length_grouped_batches(lengths, 16, seed=3, epoch=0, group=4)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = length_grouped_batches(lengths, 16, seed=3, epoch=1, group=4)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_left_out_items_change_between_epochs_even_in_one_group():
    """Ten items at batch 8 (a single group): the two left out are not always the two shortest."""
    lengths = np.arange(10) + 1
    left_out = set()
    for epoch in range(20):
        used = set(np.concatenate(length_grouped_batches(lengths, 8, seed=0, epoch=epoch)).tolist())
        assert len(used) == 8
        left_out |= set(range(10)) - used
    assert len(left_out) > 2


def test_head_learning_rate_groups():
    """With head_lr, every parameter outside the encoder (and only those) trains at that rate;
    weight decay stays on matrices only. Without it, two groups as before (decay, no decay)."""
    import pytest
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from spanbert.core.errors import ConfigError
    from spanbert.tasks.arguments import FinetuneArguments
    from spanbert.core.training import adamw

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=3))
    named = list(model.named_parameters())
    opt = adamw(named, 1e-5, 0.01, head_lr=1e-3, encoder_prefix="bert.")
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert len(group_of) == len(named)
    for name, p in named:
        g = group_of[id(p)]
        assert g["lr"] == (1e-5 if name.startswith("bert.") else 1e-3), name
        assert g["weight_decay"] == (0.01 if p.ndim >= 2 else 0.0), name
    assert {id(p) for _, p in named if not _.startswith("bert.")} == {id(model.classifier.weight), id(model.classifier.bias)}
    plain = adamw(named, 1e-5, 0.01)
    assert [(g["lr"], g["weight_decay"]) for g in plain.param_groups] == [(1e-5, 0.01), (1e-5, 0.0)]
    with pytest.raises(ConfigError, match="head_lr: must be a finite number > 0"):
        FinetuneArguments(output_dir="x", head_lr=0.0)


@pytest.mark.parametrize("field, value", [
    ("lr", float("nan")), ("lr", float("inf")), ("lr", 0.0), ("head_lr", float("nan")), ("epochs", float("nan")),
    ("weight_decay", -0.1), ("warmup_ratio", 1.0), ("max_steps", 0), ("mixed_precision", "fp8"),
    ("time_budget_s", float("inf")),
])
def test_finetune_arguments_refuse_values_that_cannot_train(field, value, tmp_path):
    from spanbert.core.errors import ConfigError
    from spanbert.tasks.arguments import FinetuneArguments

    with pytest.raises(ConfigError, match=field.replace("_s", "") if field == "time_budget_s" else field):
        FinetuneArguments(str(tmp_path), **{field: value})


def _toy_classifier_run(tmp_path, scores, **overrides):
    """A tiny classifier trained 4 epochs with a dev evaluation that snapshots the weights it
    sees and answers the scripted ``scores`` (None: the real dev accuracy)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from spanbert.tasks.finetune import DevEvaluation, finetune
    from spanbert.tasks.arguments import FinetuneArguments

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=2))
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(2, 20, size=(64, 6)))
    labels = (ids[:, 1] >= 11).long()  # the label is readable from one token

    def collate(idx):
        return {"input_ids": ids[idx], "labels": labels[idx]}

    seen = []

    def evaluate(m):
        assert not m.training
        seen.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        if scores is None:
            with torch.no_grad():
                acc = float((m(input_ids=ids[48:]).logits.argmax(-1) == labels[48:]).float().mean())
            return {"accuracy": acc}
        return {"accuracy": scores[len(seen) - 1]}

    args = FinetuneArguments(str(tmp_path / "run"), epochs=4, batch_size=16, lr=1e-2, mixed_precision="no", progress=False,
                             hashed_dropout=False, **overrides)
    result = finetune(model, [6] * 48, collate, args, dev=DevEvaluation(evaluate, "accuracy"))
    return model, result, seen


def test_dev_selection_keeps_the_weights_of_the_best_evaluation(tmp_path):
    """Dev is scored at every epoch end (3 steps each) and the model ends with the weights the
    best evaluation saw (the earlier one on ties), not the last step's; dev_history.jsonl has
    one line per evaluation."""
    import json

    import torch

    model, result, seen = _toy_classifier_run(tmp_path, [0.1, 0.9, 0.5, 0.9])
    assert [h["step"] for h in result.dev_history] == [3, 6, 9, 12] and len(seen) == 4
    assert (result.best_step, result.best_score, result.selected_metric) == (6, 0.9, "accuracy")
    final = model.state_dict()
    assert all(torch.equal(final[k], seen[1][k]) for k in final)
    assert not all(torch.equal(final[k], seen[3][k]) for k in final)
    lines = [json.loads(x) for x in (tmp_path / "run" / "dev_history.jsonl").read_text().splitlines()]
    assert [(x["step"], x["score"]) for x in lines] == [(3, 0.1), (6, 0.9), (9, 0.5), (12, 0.9)]

    last, result, seen = _toy_classifier_run(tmp_path, [0.1, 0.9, 0.5, 0.3], select_best=False, eval_every=5,
                                             overwrite=True)
    assert [h["step"] for h in result.dev_history] == [5, 10, 12]  # every 5 steps and after the last
    assert result.best_step == 12
    assert all(torch.equal(v, seen[-1][k]) for k, v in last.state_dict().items())


def test_dev_selection_on_a_real_metric_reproduces_its_best_score(tmp_path):
    """With the real dev accuracy, re-scoring the final model gives the best score recorded."""
    import torch

    model, result, _ = _toy_classifier_run(tmp_path, None)
    ids_scores = [h["score"] for h in result.dev_history]
    assert result.best_score == max(ids_scores)
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(2, 20, size=(64, 6)))
    labels = (ids[:, 1] >= 11).long()
    with torch.no_grad():
        acc = float((model(input_ids=ids[48:]).logits.argmax(-1) == labels[48:]).float().mean())
    assert acc == result.best_score
