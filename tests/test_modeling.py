"""The pre-training model against transformers' own BERT classes and a dense reference loss."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, BertForMaskedLM, BertModel

from spanbert.core.errors import ConfigError
from spanbert.pretrain.modeling import (
    PRESETS,
    SpanBertConfig,
    SpanBertForPreTraining,
    ROW_BUCKET,
    SpanBertModel,
    config_from_preset,
    load_for_pretraining,
)

transformers.logging.set_verbosity_error()


def tiny_config(**kw) -> SpanBertConfig:
    base = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=64, sbo_position_size=8, sbo_max_span_tokens=5)
    return SpanBertConfig(**{**base, **kw})


def random_batch(vocab: int = 99, batch: int = 3, length: int = 20, seed: int = 0):
    """Input ids with padding on one row, ~15% labels, and SBO pairs around the labelled runs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    attention = torch.ones_like(ids)
    attention[1, length - 5 :] = 0
    ids[1, length - 5 :] = 0
    labels = torch.full_like(ids, -100)
    pairs, sbo_labels = [], []
    for b in range(batch):
        for s in (3, 9):  # spans of 3 tokens at 3..5 and 9..11
            labels[b, s : s + 3] = ids[b, s : s + 3]
            for k in range(3):
                pairs.append([b, s - 1, s + 3, k])
                sbo_labels.append(int(ids[b, s + k]))
    return ids, attention, labels, torch.tensor(pairs), torch.tensor(sbo_labels)


def test_encoder_equals_transformers_bert_on_real_weights(minilm_dir):
    ours = load_for_pretraining(str(minilm_dir)).eval()
    ref = BertModel.from_pretrained(minilm_dir).eval()
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    enc = tok(["The span boundary objective predicts each masked token.", "Fellow-Citizens of the Senate."],
              padding=True, return_tensors="pt")
    with torch.no_grad():
        a = ours(**enc).last_hidden_state
        b = ref(**enc).last_hidden_state
    assert a.shape == b.shape == (2, enc["input_ids"].shape[1], 384)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fresh_heads_on_encoder_only_checkpoint(minilm_dir):
    model = load_for_pretraining(str(minilm_dir))
    assert model.config.model_type == "spanbert" and model.config.vocab_size == 30522
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), name
    assert model.cls.predictions.bias.abs().max() == 0 and model.sbo.bias.abs().max() == 0
    assert 0.015 < model.sbo.dense1.weight.std() < 0.025  # initializer_range 0.02
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()


def test_sparse_loss_equals_dense_reference():
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).eval()
    ids, attention, labels, pairs, sbo_labels = random_batch()
    out = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels)

    # Dense reference: decode every position with the stock MLM head, then pick the masked ones;
    # compute each SBO target one at a time from the formula y = f(h_{s-1}, h_{e+1}, p_{i-s}).
    h = model.bert(input_ids=ids, attention_mask=attention).last_hidden_state
    dense_logits = model.cls(h)  # (B, T, V)
    mlm_ref = F.cross_entropy(dense_logits.reshape(-1, 99), labels.reshape(-1), ignore_index=-100)
    sbo = model.sbo
    per_target = []
    for (b, left, right, k), y in zip(pairs.tolist(), sbo_labels.tolist()):
        x = torch.cat([h[b, left], h[b, right], sbo.position_embeddings.weight[k]])
        x = sbo.LayerNorm1(F.gelu(sbo.dense1(x)))
        x = sbo.LayerNorm2(F.gelu(sbo.dense2(x)))
        logits = model.bert.embeddings.word_embeddings.weight @ x + sbo.bias
        per_target.append(F.cross_entropy(logits[None], torch.tensor([y])))
    sbo_ref = torch.stack(per_target).mean()
    torch.testing.assert_close(out.mlm_loss, mlm_ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.sbo_loss, sbo_ref.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.loss, (mlm_ref + sbo_ref).detach(), rtol=1e-5, atol=1e-6)
    assert int(out.num_mlm_targets) == int((labels != -100).sum()) and int(out.num_sbo_targets) == len(pairs)

    # the gradients agree as well (the SBO output projection is the tied embedding matrix)
    model.zero_grad()
    out.loss.backward()
    sparse_grad = model.bert.embeddings.word_embeddings.weight.grad.clone()
    model.zero_grad()
    h = model.bert(input_ids=ids, attention_mask=attention).last_hidden_state
    dense = F.cross_entropy(model.cls(h).reshape(-1, 99), labels.reshape(-1), ignore_index=-100)
    pairs_logits = model.sbo_logits(h, pairs)
    (dense + F.cross_entropy(pairs_logits, sbo_labels)).backward()
    torch.testing.assert_close(sparse_grad, model.bert.embeddings.word_embeddings.weight.grad, rtol=1e-4, atol=1e-6)


def test_head_gemm_rows_are_bucketed_and_padding_is_dropped():
    """The vocabulary GEMM sees a multiple of ROW_BUCKET rows whatever the number of targets (a
    few kernel shapes, so CPU bf16 memory stays flat), and its padding rows change nothing."""
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).eval()
    rows = []
    model.vocab_logits = (lambda f: lambda states: rows.append(states.shape[0]) or f(states))(model.vocab_logits)
    for batch in (2, 3, 7):
        ids, attention, labels, pairs, sbo_labels = random_batch(batch=batch, seed=batch)
        out = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels,
                    return_logits=True)
        m, n = int((labels != -100).sum()), len(pairs)
        assert rows[-1] % ROW_BUCKET == 0 and m + n <= rows[-1] < m + n + 2 * ROW_BUCKET
        assert out.mlm_logits.shape == (m, 99) and out.sbo_logits.shape == (n, 99)
        h = out.last_hidden_state
        flat = (labels.reshape(-1) != -100).nonzero().squeeze(1)
        torch.testing.assert_close(out.mlm_logits, model.mlm_logits(h, flat), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.sbo_logits, model.sbo_logits(h, pairs), rtol=1e-5, atol=1e-6)


def test_sbo_weight_scales_only_the_sbo_term():
    torch.manual_seed(0)
    ids, attention, labels, pairs, sbo_labels = random_batch()
    model = SpanBertForPreTraining(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).eval()
    out1 = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels)
    model.config.sbo_loss_weight = 0.25
    out2 = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels)
    torch.testing.assert_close(out2.loss, out1.mlm_loss + 0.25 * out1.sbo_loss)


def test_no_sbo_targets_gives_zero_sbo_loss_with_gradient_path():
    model = SpanBertForPreTraining(tiny_config())
    ids, attention, labels, _, _ = random_batch()
    out = model(input_ids=ids, attention_mask=attention, labels=labels)
    assert out.sbo_loss == 0 and int(out.num_sbo_targets) == 0
    out.loss.backward()
    assert model.sbo.dense1.weight.grad is not None  # connected, all zeros: DDP needs every parameter used


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    ids, attention, labels, pairs, sbo_labels = random_batch()
    opt = torch.optim.AdamW([p for _, p in model.trainable_parameters()], lr=3e-3)
    first = None
    for _ in range(150):
        out = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels)
        first = first if first is not None else float(out.loss.detach())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert first > 8.0  # ~2 x ln(99) at random init
    last = float(out.loss.detach())
    assert last < 0.2, f"loss only fell from {first:.2f} to {last:.3f}"


def test_save_load_identical_outputs_and_auto_classes(tmp_path):
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config()).eval()
    ids, attention, labels, pairs, sbo_labels = random_batch()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "spanbert"

    loaded = AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert type(loaded) is SpanBertForPreTraining
    assert isinstance(AutoConfig.from_pretrained(tmp_path), SpanBertConfig)
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(encoder, SpanBertModel) and isinstance(encoder, BertModel)
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels, return_logits=True)
        b = loaded(input_ids=ids, attention_mask=attention, labels=labels, sbo_pairs=pairs, sbo_labels=sbo_labels, return_logits=True)
        enc = encoder(input_ids=ids, attention_mask=attention).last_hidden_state
    for key in ("loss", "mlm_logits", "sbo_logits", "last_hidden_state"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    torch.testing.assert_close(enc, a.last_hidden_state, rtol=0, atol=0)


def test_plain_transformers_loads_our_checkpoint_without_our_package(tmp_path):
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    ids, attention, *_ = random_batch()
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=attention).last_hidden_state
        mlm = model.mlm_logits(hidden, torch.arange(ids.numel()))
    torch.save({"ids": ids, "attention": attention, "hidden": hidden, "mlm": mlm}, tmp_path / "expected.pt")
    script = f"""
import sys, torch, transformers
transformers.logging.set_verbosity_error()
exp = torch.load({str(tmp_path / 'expected.pt')!r})
enc, info = transformers.BertModel.from_pretrained({str(tmp_path)!r}, output_loading_info=True)
assert not info["missing_keys"], info["missing_keys"]
assert not any(k.startswith("bert.") for k in info["unexpected_keys"])
enc.eval()
h = enc(input_ids=exp["ids"], attention_mask=exp["attention"]).last_hidden_state
torch.testing.assert_close(h, exp["hidden"], rtol=0, atol=0)
mlm, info = transformers.BertForMaskedLM.from_pretrained({str(tmp_path)!r}, output_loading_info=True)
assert not info["missing_keys"], info["missing_keys"]
logits = mlm.eval()(input_ids=exp["ids"], attention_mask=exp["attention"]).logits
torch.testing.assert_close(logits.reshape(-1, logits.size(-1)), exp["mlm"], rtol=1e-5, atol=1e-5)
assert "spanbert" not in sys.modules
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-2000:]


def test_continue_from_our_own_checkpoint_keeps_heads(tmp_path):
    torch.manual_seed(0)
    model = SpanBertForPreTraining(tiny_config())
    with torch.no_grad():
        model.sbo.bias.fill_(0.5)
    model.save_pretrained(tmp_path)
    again = load_for_pretraining(str(tmp_path), sbo_loss_weight=0.5)
    assert again.config.sbo_loss_weight == 0.5
    assert torch.equal(again.sbo.bias, model.sbo.bias)


def test_presets_and_unknown_preset():
    for name, fields in PRESETS.items():
        config = config_from_preset(name, vocab_size=1000)
        assert config.hidden_size == fields["hidden_size"] and config.hidden_size % config.num_attention_heads == 0
    base = config_from_preset("base", vocab_size=28996)
    assert (base.num_hidden_layers, base.hidden_size, base.intermediate_size) == (12, 768, 3072)
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        config_from_preset("huge", vocab_size=1000)


def test_init_from_a_non_bert_checkpoint_is_refused(tmp_path):
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not a BERT checkpoint"):
        load_for_pretraining(str(tmp_path))


def test_bert_masked_lm_checkpoint_keeps_its_mlm_head(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37)
    ref = BertForMaskedLM(cfg).eval()
    ref.save_pretrained(tmp_path)
    ours = load_for_pretraining(str(tmp_path)).eval()
    ids, attention, *_ = random_batch()
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=attention).logits
        hidden = ours(input_ids=ids, attention_mask=attention).last_hidden_state
        got = ours.mlm_logits(hidden, torch.arange(ids.numel()))
    torch.testing.assert_close(got, expected.reshape(-1, 99), rtol=1e-5, atol=1e-5)
