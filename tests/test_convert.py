"""Converting the SpanBERT authors' checkpoints (spanbert.pretrain.convert).

The tests write tiny checkpoints in the authors' exact layouts (real pickles, via torch.save,
with LayerNorm gamma/beta names), convert them, load the result with our loader and with plain
transformers, and compare against references built independently here: a stock
``transformers.BertModel``/``BertForMaskedLM`` for the encoder-only layout, and a forward pass
written from the formulas of the authors' ``pair_bert.py`` (LayerNorm, erf GeLU, -10000 mask,
MLM transform, SBO MLP over [left; right; position]) for the fairseq layout.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from spanbert.pretrain.convert import convert_fairseq, convert_original_hf
from spanbert.core.errors import CheckpointError, ConfigError
from spanbert.pretrain.modeling import SBO_HEAD_FILE, SPANBERT_CONFIG_FILE, load_for_pretraining
from .conftest import TINY_BERT

TINY = TINY_BERT
MAX_POSITIONS = 64
PAIR_TARGETS = 15  # --max-pair-targets of the published command
PAIR_POSITION_SIZE = 200  # BertPairTargetPredictionHead's fixed width
TEXTS = ["The president spoke to the Congress about the state of the union.", "Peace and trade."]


# -- the authors' layouts, written by hand --------------------------------------------------


def _perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Move every weight off its init (LayerNorms are ones/zeros there, which would hide a gamma/beta mix-up)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _stock(vocab_size: int, with_mlm: bool, seed: int = 1):
    config = transformers.BertConfig(vocab_size=vocab_size, max_position_embeddings=MAX_POSITIONS, **TINY)
    torch.manual_seed(seed)
    model = transformers.BertForMaskedLM(config) if with_mlm else transformers.BertModel(config, add_pooling_layer=False)
    return _perturbed(model, seed)


def _pytorch_pretrained_bert_names(state: dict, prefix: str) -> dict:
    """Stock names -> the 2019 names: LayerNorm.weight/bias -> gamma/beta, then ``prefix``; the
    MLM decoder has no bias of its own there (BertLMPredictionHead: bias=False)."""
    out = OrderedDict()
    for name, value in state.items():
        if name == "cls.predictions.decoder.bias":
            continue
        if ".LayerNorm." in name:
            name = name.replace(".LayerNorm.weight", ".LayerNorm.gamma").replace(".LayerNorm.bias", ".LayerNorm.beta")
        if not name.startswith("cls."):
            name = prefix + name.removeprefix("bert.")
        out[name] = value.clone()
    return out


def _old_config_json(vocab_size: int) -> dict:
    return {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "initializer_range": 0.02, "max_position_embeddings": MAX_POSITIONS, "type_vocab_size": 2,
            "vocab_size": vocab_size, **TINY}


def _write_hf_dir(path: Path, state: dict, config: dict, zip_format: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    torch.save(state, path / "pytorch_model.bin", _use_new_zipfile_serialization=zip_format)
    return path


def _fairseq_state(vocab_size: int, seed: int = 3, dtype=torch.float32) -> OrderedDict:
    """A bert_pair state dict under the names of pretraining/fairseq/models/pair_bert.py, wrapped
    as the fairseq model's ``decoder``; no pooler and no NSP head (--no-nsp)."""
    gen = torch.Generator().manual_seed(seed)
    hidden, inter = TINY["hidden_size"], TINY["intermediate_size"]

    def rand(*shape, scale=0.2, centre=0.0):
        return (centre + scale * torch.randn(shape, generator=gen)).to(dtype)

    sd = OrderedDict()
    emb = rand(vocab_size, hidden, scale=0.5)
    p = "decoder.bert."
    sd[p + "embeddings.word_embeddings.weight"] = emb
    sd[p + "embeddings.position_embeddings.weight"] = rand(MAX_POSITIONS, hidden)
    sd[p + "embeddings.token_type_embeddings.weight"] = rand(2, hidden)
    sd[p + "embeddings.LayerNorm.gamma"] = rand(hidden, scale=0.1, centre=1.0)
    sd[p + "embeddings.LayerNorm.beta"] = rand(hidden, scale=0.1)
    for i in range(TINY["num_hidden_layers"]):
        layer = f"{p}encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[f"{layer}attention.self.{name}.weight"] = rand(hidden, hidden)
            sd[f"{layer}attention.self.{name}.bias"] = rand(hidden, scale=0.05)
        sd[layer + "attention.output.dense.weight"] = rand(hidden, hidden)
        sd[layer + "attention.output.dense.bias"] = rand(hidden, scale=0.05)
        sd[layer + "attention.output.LayerNorm.gamma"] = rand(hidden, scale=0.1, centre=1.0)
        sd[layer + "attention.output.LayerNorm.beta"] = rand(hidden, scale=0.1)
        sd[layer + "intermediate.dense.weight"] = rand(inter, hidden)
        sd[layer + "intermediate.dense.bias"] = rand(inter, scale=0.05)
        sd[layer + "output.dense.weight"] = rand(hidden, inter)
        sd[layer + "output.dense.bias"] = rand(hidden, scale=0.05)
        sd[layer + "output.LayerNorm.gamma"] = rand(hidden, scale=0.1, centre=1.0)
        sd[layer + "output.LayerNorm.beta"] = rand(hidden, scale=0.1)
    mlm = "decoder.cls.predictions."
    sd[mlm + "bias"] = rand(vocab_size, scale=0.1)
    sd[mlm + "transform.dense.weight"] = rand(hidden, hidden)
    sd[mlm + "transform.dense.bias"] = rand(hidden, scale=0.05)
    sd[mlm + "transform.LayerNorm.gamma"] = rand(hidden, scale=0.1, centre=1.0)
    sd[mlm + "transform.LayerNorm.beta"] = rand(hidden, scale=0.1)
    sd[mlm + "decoder.weight"] = emb  # tied: the same tensor, as nn.Module.state_dict gives it
    sbo = "decoder.cls.pair_target_predictions."
    sd[sbo + "bias"] = rand(vocab_size, scale=0.1)
    sd[sbo + "position_embeddings.weight"] = rand(PAIR_TARGETS, PAIR_POSITION_SIZE)
    sd[sbo + "mlp_layer_norm.linear1.weight"] = rand(hidden, 2 * hidden + PAIR_POSITION_SIZE, scale=0.1)
    sd[sbo + "mlp_layer_norm.linear1.bias"] = rand(hidden, scale=0.05)
    sd[sbo + "mlp_layer_norm.layer_norm1.gamma"] = rand(hidden, scale=0.1, centre=1.0)
    sd[sbo + "mlp_layer_norm.layer_norm1.beta"] = rand(hidden, scale=0.1)
    sd[sbo + "mlp_layer_norm.linear2.weight"] = rand(hidden, hidden)
    sd[sbo + "mlp_layer_norm.linear2.bias"] = rand(hidden, scale=0.05)
    sd[sbo + "mlp_layer_norm.layer_norm2.gamma"] = rand(hidden, scale=0.1, centre=1.0)
    sd[sbo + "mlp_layer_norm.layer_norm2.beta"] = rand(hidden, scale=0.1)
    sd[sbo + "decoder.weight"] = emb
    return sd


# Stand-ins for the classes a real fairseq checkpoint pickles (args.config, train meters), and
# a fairseq-named function that must never run on load.
class _PairBertConfig:
    pass


class _AverageMeter:
    def __init__(self):
        self.val, self.avg, self.sum, self.count = 2.5, 2.5, 5.0, 2


def _touch(path):  # would leave a file behind if a loader executed it
    Path(path).write_text("executed")


def _fairseq_touch(path):  # the same, pickled under a fairseq name
    Path(path).write_text("executed")


class _Payload:
    """Pickles as a call of ``func(marker)``, which an unsafe loader would execute."""

    def __init__(self, func, marker):
        self.func, self.marker = func, marker

    def __reduce__(self):
        return (self.func, (str(self.marker),))


def _fake_fairseq_modules(m: pytest.MonkeyPatch) -> None:
    """Make the stand-ins importable under fairseq's names while pickling."""
    for cls, module, name in ((_PairBertConfig, "fairseq.models.pair_bert", "BertConfig"),
                              (_AverageMeter, "fairseq.meters", "AverageMeter"),
                              (_fairseq_touch, "fairseq.utils", "touch")):
        mod = sys.modules.get(module) or types.ModuleType(module)
        setattr(mod, name, cls)
        cls.__module__, cls.__qualname__, cls.__name__ = module, name, name
        m.setitem(sys.modules, module, mod)
    for parent in ("fairseq", "fairseq.models"):
        m.setitem(sys.modules, parent, sys.modules.get(parent) or types.ModuleType(parent))


def _fairseq_args(**overrides) -> argparse.Namespace:
    config = _PairBertConfig()
    config.__dict__.update(vocab_size=30522, hidden_act="gelu", hidden_dropout_prob=0.1,
                           attention_probs_dropout_prob=0.1, max_position_embeddings=MAX_POSITIONS,
                           type_vocab_size=2, initializer_range=0.02, clamp_attention=True, **TINY)
    args = dict(arch="cased_bert_pair_large", task="span_bert", criterion="span_bert_loss", lr=[1e-4],
                max_pair_targets=PAIR_TARGETS, pair_positional_embedding_size=200, pair_target_layer=-1,
                endpoints="external", pair_loss_weight=1.0, no_nsp=True, clamp_attention=True,
                schemes='["pair_span"]', config=config)
    args.update(overrides)
    return argparse.Namespace(**args)


def _write_fairseq_checkpoint(path: Path, state: dict, args: argparse.Namespace, marker: Path | None = None) -> Path:
    """fairseq/utils.py save_state's dict, in the pre-zip pickle format of 2019."""
    with pytest.MonkeyPatch.context() as m:
        _fake_fairseq_modules(m)
        extra = {"train_meters": OrderedDict(train_loss=_AverageMeter()), "val_loss": 1.7}
        if marker is not None:
            extra["hook"] = _Payload(_fairseq_touch, marker)
        first = next(iter(state.values()))
        torch.save({"args": args, "model": state,
                    "optimizer_history": [{"criterion_name": "NoNSPPairLoss", "optimizer_name": "FairseqAdam",
                                           "lr_scheduler_state": {"best": 1.7}, "num_updates": 10}],
                    "last_optimizer_state": {"state": {0: {"exp_avg": torch.zeros_like(first)}}, "param_groups": []},
                    "extra_state": extra}, path, _use_new_zipfile_serialization=False)
    assert "fairseq.models.pair_bert" not in sys.modules  # loading must work without fairseq
    return path


# -- references from the original formulas ------------------------------------------------------


def _ln(x, gamma, beta, eps):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def _gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _reference_encoder(sd, ids, mask, heads, eps=1e-12, mask_value=-10000.0):
    """pair_bert.py BertModel.forward, eval mode: (B, T) -> (B, T, H) (hf_bert.py: eps 1e-5, mask -32000)."""
    w = {k.removeprefix("decoder.bert."): v.float() for k, v in sd.items() if k.startswith("decoder.bert.")}
    batch, length = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, w["embeddings.LayerNorm.gamma"], w["embeddings.LayerNorm.beta"], eps)
    additive = (1.0 - mask[:, None, None, :].float()) * mask_value
    head_dim = x.shape[-1] // heads
    for i in range(TINY["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def proj(name, inp):
            return inp @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t):  # (B, T, H) -> (B, heads, T, d)
            return t.view(batch, length, heads, head_dim).permute(0, 2, 1, 3)

        q, k, v = (split(proj(f"attention.self.{n}", x)) for n in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim) + additive, dim=-1)
        context = (probs @ v).permute(0, 2, 1, 3).reshape(batch, length, -1)
        attended = _ln(proj("attention.output.dense", context) + x, w[p + "attention.output.LayerNorm.gamma"],
                       w[p + "attention.output.LayerNorm.beta"], eps)
        x = _ln(proj("output.dense", _gelu(proj("intermediate.dense", attended))) + attended,
                w[p + "output.LayerNorm.gamma"], w[p + "output.LayerNorm.beta"], eps)
    return x


def _reference_mlm(sd, states, eps=1e-12):
    """BertLMPredictionHead: (M, H) -> (M, V)."""
    g = {k.removeprefix("decoder.cls.predictions."): v.float() for k, v in sd.items() if k.startswith("decoder.cls.predictions.")}
    t = _gelu(states @ g["transform.dense.weight"].T + g["transform.dense.bias"])
    t = _ln(t, g["transform.LayerNorm.gamma"], g["transform.LayerNorm.beta"], eps)
    return t @ g["decoder.weight"].T + g["bias"]


def _reference_sbo(sd, hidden, pairs, eps=1e-12):
    """BertPairTargetPredictionHead for (batch, left, right) pairs: -> (num_pairs, max_targets, V)."""
    g = {k.removeprefix("decoder.cls.pair_target_predictions."): v.float() for k, v in sd.items()
         if k.startswith("decoder.cls.pair_target_predictions.")}
    positions = g["position_embeddings.weight"]  # (max_targets, 200)
    out = []
    for b, left, right in pairs:
        ends = torch.cat([hidden[b, left], hidden[b, right]]).expand(positions.shape[0], -1)
        x = torch.cat([ends, positions], dim=-1)
        x = _ln(_gelu(x @ g["mlp_layer_norm.linear1.weight"].T + g["mlp_layer_norm.linear1.bias"]),
                g["mlp_layer_norm.layer_norm1.gamma"], g["mlp_layer_norm.layer_norm1.beta"], eps)
        x = _ln(_gelu(x @ g["mlp_layer_norm.linear2.weight"].T + g["mlp_layer_norm.linear2.bias"]),
                g["mlp_layer_norm.layer_norm2.gamma"], g["mlp_layer_norm.layer_norm2.beta"], eps)
        out.append(x @ g["decoder.weight"].T + g["bias"])
    return torch.stack(out)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tiny_tokenizer):
    enc = tiny_tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert enc["attention_mask"].min() == 0  # padding is part of what is compared
    return enc["input_ids"], enc["attention_mask"]


@pytest.fixture(scope="module")
def vocab_size(tiny_tokenizer):
    return len(tiny_tokenizer)


def _hidden(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


# -- original-hf layout ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix,zip_format", [("bert.", True), ("", False), ("decoder.bert.", True)])
def test_encoder_only_folder_gives_the_same_hidden_states(tmp_path, tiny_tokenizer, tiny_tokenizer_dir, batch,
                                                          vocab_size, prefix, zip_format):
    stock = _stock(vocab_size, with_mlm=False)
    original = _pytorch_pretrained_bert_names(stock.state_dict(), prefix)
    assert any(k.endswith("LayerNorm.gamma") for k in original)
    src = _write_hf_dir(tmp_path / "spanbert_hf", original, _old_config_json(vocab_size), zip_format)
    out = tmp_path / "converted"

    result = convert_original_hf(src, tiny_tokenizer_dir, out, seed=7)

    assert result.fresh == ["MLM head", "SBO head"] and result.dropped == []
    assert result.renamed_layer_norm == 2 * (1 + 2 * TINY["num_hidden_layers"])
    ids, mask = batch
    expected = _hidden(stock, ids, mask)
    ours = load_for_pretraining(str(out))
    assert ours.config.layer_norm_eps == 1e-12 and ours.config.num_attention_heads == 2
    torch.testing.assert_close(_hidden(ours.eval(), ids, mask), expected, atol=1e-5, rtol=0)
    plain = transformers.AutoModel.from_pretrained(out)
    torch.testing.assert_close(_hidden(plain, ids, mask), expected, atol=1e-5, rtol=0)
    assert transformers.AutoTokenizer.from_pretrained(out).get_vocab() == tiny_tokenizer.get_vocab()
    record = json.loads((out / "conversion.json").read_text())
    assert record["layout"] == "original-hf" and record["fresh"] == result.fresh
    # written in the layout of `spanbert pretrain`: a stock BertForMaskedLM checkpoint + the SBO head beside it
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForMaskedLM"]
    assert not any(k.startswith("sbo_") for k in config)
    reference = tmp_path / "reference"
    transformers.BertForMaskedLM(transformers.AutoConfig.from_pretrained(out)).save_pretrained(reference)
    assert sorted(load_file(out / "model.safetensors")) == sorted(load_file(reference / "model.safetensors"))
    assert sorted(load_file(out / SBO_HEAD_FILE)) == sorted(f"sbo.{k}" for k in ours.sbo.state_dict())
    assert json.loads((out / SPANBERT_CONFIG_FILE).read_text())["sbo_position_size"] == ours.config.sbo_position_size


def test_a_source_pooler_is_dropped_and_noted(tmp_path, tiny_tokenizer, batch, vocab_size):
    """BertForMaskedLM has no pooler (and SpanBERT never trained one): the converted folder has none."""
    config = transformers.BertConfig(vocab_size=vocab_size, max_position_embeddings=MAX_POSITIONS, **TINY)
    stock = _perturbed(transformers.BertModel(config), seed=3)  # with its pooler
    original = _pytorch_pretrained_bert_names(stock.state_dict(), "bert.")
    assert "bert.pooler.dense.weight" in original
    src = _write_hf_dir(tmp_path / "src", original, _old_config_json(vocab_size))

    result = convert_original_hf(src, tiny_tokenizer, tmp_path / "out")

    assert result.dropped == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    assert any("pooler" in note for note in result.notes)
    assert not any(k.startswith("bert.pooler.") for k in load_file(tmp_path / "out" / "model.safetensors"))
    ids, mask = batch
    ours = load_for_pretraining(result.output_dir).eval()
    torch.testing.assert_close(_hidden(ours, ids, mask), _hidden(stock.eval(), ids, mask), atol=1e-5, rtol=0)


def test_fresh_heads_are_seeded_and_initialised(tmp_path, tiny_tokenizer, vocab_size):
    src = _write_hf_dir(tmp_path / "src", _pytorch_pretrained_bert_names(_stock(vocab_size, False).state_dict(), "bert."),
                        _old_config_json(vocab_size))
    a = load_for_pretraining(str(convert_original_hf(src, tiny_tokenizer, tmp_path / "a", seed=5).output_dir))
    b = load_for_pretraining(str(convert_original_hf(src, tiny_tokenizer, tmp_path / "b", seed=5).output_dir))
    c = load_for_pretraining(str(convert_original_hf(src, tiny_tokenizer, tmp_path / "c", seed=6).output_dir))
    assert torch.equal(a.sbo.dense1.weight, b.sbo.dense1.weight)
    assert not torch.equal(a.sbo.dense1.weight, c.sbo.dense1.weight)
    assert 0.01 < a.sbo.dense1.weight.std() < 0.03  # BERT's init (0.02), not zeros or garbage
    assert a.cls.predictions.decoder.weight.data_ptr() == a.bert.embeddings.word_embeddings.weight.data_ptr()


def test_folder_with_an_mlm_head_keeps_it(tmp_path, tiny_tokenizer, batch, vocab_size):
    stock = _stock(vocab_size, with_mlm=True)
    original = _pytorch_pretrained_bert_names(stock.state_dict(), "bert.")
    assert "cls.predictions.transform.LayerNorm.gamma" in original and "cls.predictions.decoder.weight" in original
    original["cls.seq_relationship.weight"], original["cls.seq_relationship.bias"] = torch.ones(2, 32), torch.ones(2)
    src = _write_hf_dir(tmp_path / "src", original, _old_config_json(vocab_size))

    result = convert_original_hf(src, tiny_tokenizer, tmp_path / "out")

    assert result.fresh == ["SBO head"]
    assert result.dropped == ["cls.seq_relationship.bias", "cls.seq_relationship.weight"]  # NSP: none in SpanBERT
    assert result.tied_checked == ["cls.predictions.decoder.weight"]
    ids, mask = batch
    with torch.no_grad():
        expected = stock(input_ids=ids, attention_mask=mask).logits[mask.bool()]  # (M, V)
        ours = load_for_pretraining(result.output_dir).eval()
        hidden = _hidden(ours, ids, mask)
        got = ours.mlm_logits(hidden, mask.reshape(-1).nonzero().squeeze(1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# -- fairseq layout -----------------------------------------------------------------------------


def _check_against_reference(out_dir, state, ids, mask):
    """Our hidden states, MLM and SBO logits (through the training forward) = the original formulas."""
    model = load_for_pretraining(str(out_dir)).eval()
    labels = torch.full_like(ids, -100)
    labels[0, 3:6] = ids[0, 3:6]  # a masked span at 3..5 (the ids themselves: only logits are compared)
    labels[1, 1] = ids[1, 1]
    # SBO targets of span 3..5 in sequence 0: boundaries 2 and 6, offsets 0..2; and one of span 1..1
    sbo_pairs = torch.tensor([[0, 2, 6, 0], [0, 2, 6, 1], [0, 2, 6, 2], [1, 0, 2, 0]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels, sbo_pairs=sbo_pairs,
                    sbo_labels=torch.zeros(4, dtype=torch.long), return_logits=True)
    hidden = _reference_encoder(state, ids, mask, heads=TINY["num_attention_heads"])
    torch.testing.assert_close(out.last_hidden_state, hidden, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.mlm_logits, _reference_mlm(state, hidden[labels != -100]), atol=1e-5, rtol=0)
    per_pair = _reference_sbo(state, hidden, [(0, 2, 6), (1, 0, 2)])  # (2, max_targets, V)
    expected_sbo = torch.stack([per_pair[0, 0], per_pair[0, 1], per_pair[0, 2], per_pair[1, 0]])
    torch.testing.assert_close(out.sbo_logits, expected_sbo, atol=1e-5, rtol=0)
    plain = transformers.AutoModel.from_pretrained(out_dir)
    torch.testing.assert_close(_hidden(plain, ids, mask), hidden, atol=1e-5, rtol=0)
    return model


def test_fairseq_training_checkpoint_with_args_and_meters(tmp_path, tiny_tokenizer, batch, vocab_size):
    state = _fairseq_state(vocab_size, dtype=torch.float16)  # fairseq --fp16 keeps the model in half
    marker = tmp_path / "executed.txt"
    ckpt = _write_fairseq_checkpoint(tmp_path / "checkpoint_best.pt", state, _fairseq_args(), marker=marker)

    result = convert_fairseq(ckpt, tiny_tokenizer, tmp_path / "out")

    assert not marker.exists()  # the fairseq-named function in the pickle was not called
    assert result.fresh == [] and result.source_dtypes == ["float16"]
    assert sorted(result.tied_checked) == ["cls.pair_target_predictions.decoder.weight", "cls.predictions.decoder.weight"]
    assert result.settings["arch"] == "cased_bert_pair_large" and result.settings["max_pair_targets"] == PAIR_TARGETS
    assert any("clamp" in note for note in result.notes)
    model = _check_against_reference(tmp_path / "out", state, *batch)
    c = model.config
    assert (c.num_attention_heads, c.layer_norm_eps, c.sbo_max_span_tokens, c.sbo_position_size, c.sbo_loss_weight) == (
        2, 1e-12, PAIR_TARGETS, PAIR_POSITION_SIZE, 1.0)
    assert model.config.pad_token_id == tiny_tokenizer.pad_token_id


def test_released_with_head_state_dict(tmp_path, tiny_tokenizer, batch, vocab_size):
    """spanbert_large_with_head's model.pt: the bare state dict, no args (heads must be given here:
    hidden 32 is not a multiple of BERT's 64-wide heads)."""
    state = _fairseq_state(vocab_size, seed=4)
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="attention heads"):
        convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    result = convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, tmp_path / "out", num_attention_heads=2)

    assert result.settings == {} and result.fresh == []
    _check_against_reference(tmp_path / "out", state, *batch)


def test_fairseq_mlm_only_architecture(tmp_path, tiny_tokenizer, batch, vocab_size):
    """bert_hf (hf_bert.py): no SBO head, LayerNorm eps 1e-5; the SBO head is created only on request."""
    state = OrderedDict((k, v) for k, v in _fairseq_state(vocab_size, seed=8).items() if ".pair_target_predictions." not in k)
    ckpt = _write_fairseq_checkpoint(tmp_path / "c.pt", state, _fairseq_args(arch="cased_bert_hf"))
    with pytest.raises(ConfigError, match="missing: sbo") as excinfo:
        convert_fairseq(ckpt, tiny_tokenizer, tmp_path / "out")
    _one_line(excinfo)

    result = convert_fairseq(ckpt, tiny_tokenizer, tmp_path / "out", allow_missing_heads=True)

    assert result.fresh == ["SBO head"]
    model = load_for_pretraining(result.output_dir).eval()
    assert model.config.layer_norm_eps == 1e-5
    ids, mask = batch
    hidden = _reference_encoder(state, ids, mask, heads=2, eps=1e-5, mask_value=-32000.0)
    torch.testing.assert_close(_hidden(model, ids, mask), hidden, atol=1e-5, rtol=0)
    with torch.no_grad():
        got = model.mlm_logits(hidden, torch.arange(ids.numel()))
    torch.testing.assert_close(got, _reference_mlm(state, hidden.reshape(-1, 32), eps=1e-5), atol=1e-5, rtol=0)


# -- errors -------------------------------------------------------------------------------------


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("edit,message", [
    (lambda sd: sd.update({"decoder.cls.extra_head.weight": torch.zeros(2)}), "no counterpart.*extra_head"),
    (lambda sd: sd.pop("decoder.bert.encoder.layer.1.output.dense.weight"), "missing: bert.encoder.layer.1.output.dense.weight"),
    (lambda sd: sd.pop("decoder.cls.pair_target_predictions.mlp_layer_norm.linear2.weight"), "missing: sbo.dense2.weight"),
    (lambda sd: sd.update({"decoder.cls.predictions.decoder.weight": sd["decoder.cls.predictions.decoder.weight"] + 1}),
     "differs from bert.embeddings.word_embeddings.weight"),
    (lambda sd: sd.update({"decoder.cls.pair_target_predictions.mlp_layer_norm.linear1.weight": torch.zeros(32, 80)}),
     "SBO MLP takes 80 inputs"),
])
def test_unmapped_missing_or_untied_tensors_are_one_line_errors(tmp_path, tiny_tokenizer, vocab_size, edit, message):
    state = _fairseq_state(vocab_size)
    edit(state)
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ConfigError) as excinfo:
        convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, tmp_path / "out", num_attention_heads=2)
    assert re.search(message, _one_line(excinfo))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overrides,message", [
    (dict(pair_target_layer=-2), "reads layer -2"),
    (dict(endpoints="internal"), "endpoints='internal'"),
    (dict(arch="transformer_lm"), "not one of SpanBERT"),
])
def test_settings_ours_cannot_express_are_refused(tmp_path, tiny_tokenizer, vocab_size, overrides, message):
    ckpt = _write_fairseq_checkpoint(tmp_path / "c.pt", _fairseq_state(vocab_size), _fairseq_args(**overrides))
    with pytest.raises(ConfigError, match=message) as excinfo:
        convert_fairseq(ckpt, tiny_tokenizer, tmp_path / "out")
    _one_line(excinfo)


def test_files_that_are_not_checkpoints(tmp_path, tiny_tokenizer, vocab_size):
    text = tmp_path / "notes.pt"
    text.write_text("not a pickle at all\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as excinfo:
        convert_fairseq(text, tiny_tokenizer, tmp_path / "out")
    _one_line(excinfo)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        convert_fairseq(tmp_path / "list.pt", tiny_tokenizer, tmp_path / "out")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        convert_fairseq(tmp_path / "absent.pt", tiny_tokenizer, tmp_path / "out")
    with pytest.raises(CheckpointError, match="extract it first"):
        convert_fairseq(tmp_path / "spanbert_large_with_head.tar.gz", tiny_tokenizer, tmp_path / "out")
    # a pickle that would call a non-fairseq function on load: refused, and nothing ran
    marker = tmp_path / "executed.txt"
    torch.save({"model": _fairseq_state(vocab_size), "hook": _Payload(_touch, marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be read safely") as excinfo:
        convert_fairseq(tmp_path / "evil.pt", tiny_tokenizer, tmp_path / "out")
    _one_line(excinfo)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_hf_folder_errors(tmp_path, tiny_tokenizer, vocab_size):
    state = _pytorch_pretrained_bert_names(_stock(vocab_size, False).state_dict(), "bert.")
    bad_json = _write_hf_dir(tmp_path / "bad_json", state, _old_config_json(vocab_size))
    (bad_json / "config.json").write_text('{"hidden_size": 32,\n "vocab_size": }\n')
    with pytest.raises(CheckpointError, match=r"config.json:2: not valid JSON"):
        convert_original_hf(bad_json, tiny_tokenizer, tmp_path / "out")
    wrong = _write_hf_dir(tmp_path / "wrong", state, {**_old_config_json(vocab_size), "hidden_size": 64})
    with pytest.raises(ConfigError, match="hidden_size is 64 but the weights have 32"):
        convert_original_hf(wrong, tiny_tokenizer, tmp_path / "out")
    other_vocab = _write_hf_dir(tmp_path / "vocab", _pytorch_pretrained_bert_names(
        _stock(vocab_size + 1, False).state_dict(), "bert."), _old_config_json(vocab_size + 1))
    with pytest.raises(ConfigError, match=f"{vocab_size + 1} vocabulary rows but the tokenizer has {vocab_size}"):
        convert_original_hf(other_vocab, tiny_tokenizer, tmp_path / "out")
    with pytest.raises(CheckpointError, match="not a folder"):
        convert_original_hf(tmp_path / "missing", tiny_tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- atomic output ------------------------------------------------------------------------------


def test_output_is_atomic_and_not_overwritten_by_default(tmp_path, tiny_tokenizer, vocab_size, monkeypatch):
    torch.save(_fairseq_state(vocab_size), tmp_path / "model.pt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, out, num_attention_heads=2)

    def crash(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tiny_tokenizer), "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, out, num_attention_heads=2, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]  # the old folder, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "out"]  # no staging folder left
    monkeypatch.undo()

    convert_fairseq(tmp_path / "model.pt", tiny_tokenizer, out, num_attention_heads=2, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "out"]


# -- command line ---------------------------------------------------------------------------------


@pytest.fixture
def cli():
    """The real command line (``spanbert convert original-hf|fairseq``)."""
    from spanbert.cli import main

    return main


def test_cli_converts_and_reports_errors_in_one_line(cli, tmp_path, tiny_tokenizer_dir, vocab_size, capsys):
    torch.save(_fairseq_state(vocab_size), tmp_path / "model.pt")
    args = ["convert", "fairseq", "--source", str(tmp_path / "model.pt"), "--tokenizer", str(tiny_tokenizer_dir),
            "--output", str(tmp_path / "out"), "--num-attention-heads", "2"]
    assert cli(args) == 0
    assert f"model: {tmp_path / 'out'}" in capsys.readouterr().out

    assert cli(args) == 2  # exists
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "already exists" in err

    state = _pytorch_pretrained_bert_names(_stock(vocab_size, False).state_dict(), "bert.")
    state["bert.mystery.weight"] = torch.zeros(3)
    src = _write_hf_dir(tmp_path / "hf", state, _old_config_json(vocab_size))
    assert cli(["convert", "original-hf", "--source", str(src), "--tokenizer", str(tiny_tokenizer_dir),
                "--output", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "bert.mystery.weight" in err
