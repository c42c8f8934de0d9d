"""The accelerate configs in configs/accelerate/ parse, and FSDP2 pre-training (fsdp.yaml) on two
CPU processes gives the losses, gradient norms, weights and optimizer state of one process on
the full batch, saved in the same (unsharded) files, and resumes exactly.

accelerate (1.x) turns FSDP on only for accelerator devices: on CPU it silently falls back to
DDP. The slow test therefore launches through a small shim that lets accelerate's own FSDP
plugin (read from fsdp.yaml by ``accelerate launch``) take effect on gloo; everything else is
the real ``accelerate launch --config_file configs/accelerate/fsdp.yaml ... spanbert pretrain``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"

# Makes accelerate honour ACCELERATE_USE_FSDP (set by `accelerate launch` from fsdp.yaml) on CPU.
SHIM = '''
import os, sys
import accelerate.state as st
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

WANT = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
_partial, _acc = st.PartialState.__init__, st.AcceleratorState.__init__

def _partial_init(self, *args, **kwargs):
    _partial(self, *args, **kwargs)
    if WANT and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP

def _acc_init(self, *args, **kwargs):
    _acc(self, *args, **kwargs)
    if WANT and self.distributed_type == DistributedType.FSDP and getattr(self, "fsdp_plugin", None) is None:
        plugin = kwargs.get("fsdp_plugin") or FullyShardedDataParallelPlugin()
        if self._mixed_precision != "no":
            plugin.set_mixed_precision(self._mixed_precision)
        self.fsdp_plugin = plugin

st.PartialState.__init__, st.AcceleratorState.__init__ = _partial_init, _acc_init
from spanbert.cli import main
sys.exit(main())
'''


def _metrics(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _tiny_model():
    from spanbert.pretrain.modeling import SpanBertForPreTraining, config_from_preset

    return SpanBertForPreTraining(config_from_preset("tiny", vocab_size=100))


def test_accelerate_configs_parse_and_name_our_layer_class():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
    from accelerate.utils.other import get_module_children_bottom_up

    ddp = load_config_from_file(str(CONFIGS / "ddp.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU
    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert fsdp.distributed_type == DistributedType.FSDP
    for cfg in (ddp, fsdp):
        assert cfg.mixed_precision == "bf16" and cfg.num_processes == 8
        # our loop accumulates itself; accelerate's own accumulation would scale the loss again
        assert "gradient_accumulation_steps" not in cfg.to_dict()
    fc = fsdp.fsdp_config
    assert fc["fsdp_version"] == 2 and fc["fsdp_cpu_ram_efficient_loading"] is False
    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=fc["fsdp_version"], auto_wrap_policy=fc["fsdp_auto_wrap_policy"].lower(),
        transformer_cls_names_to_wrap=[fc["fsdp_transformer_layer_cls_to_wrap"]],
        reshard_after_forward=fc["fsdp_reshard_after_forward"], state_dict_type=fc["fsdp_state_dict_type"],
    )
    model = _tiny_model()
    plugin.set_auto_wrap_policy(model)  # raises if the class name is not in our model
    wrapped = [m for m in get_module_children_bottom_up(model)[:-1] if plugin.auto_wrap_policy(m, False, 0)]
    assert len(wrapped) == model.config.num_hidden_layers  # one unit per BertLayer, nothing else


@pytest.mark.slow
def test_fsdp2_two_cpu_processes_match_one_process_and_resume(tiny_tokenizer_dir, tmp_path, monkeypatch):
    pytest.importorskip("torch.distributed.fsdp", reason="torch without FSDP")
    from torch.distributed.fsdp import fully_shard  # noqa: F401  (FSDP2, torch >= 2.6)

    (tmp_path / "shim.py").write_text(SHIM)
    common = [
        "pretrain", "--corpus", str(DATA / "sotu_1790_washington.txt"), "--corpus", str(DATA / "tiny_corpus.txt"),
        "--tokenizer", str(tiny_tokenizer_dir), "--preset", "tiny", "--max-length", "48", "--dropout", "0",
        "--max-steps", "4", "--warmup-steps", "1", "--lr", "1e-3", "--save-every", "2", "--no-progress",
        "--precision", "no", "--batch-size", "4",  # the global batch: 2 sequences a process under FSDP
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "fsdp.yaml"),
              "--num_processes", "2", "--main_process_port", "0", str(tmp_path / "shim.py"), *common]

    def run(cmd: list[str]) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done.stdout + done.stderr

    # One process on the full batch of 4 (in this process: one interpreter start less), on the CPU.
    import torch

    from spanbert.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*common, "--output", str(tmp_path / "one")]) == 0
    # Two FSDP2 processes x 2 sequences: the same global batch.
    fsdp = tmp_path / "fsdp"
    log = run([*launch, "--output", str(fsdp)])
    assert "FSDP2: 3 units sharded over 2 processes" in log  # 2 BertLayers + root: really sharded, not DDP
    one, two = _metrics(tmp_path / "one" / "metrics.csv"), _metrics(fsdp / "metrics.csv")
    assert [r["step"] for r in one] == [r["step"] for r in two] == ["1", "2", "3", "4"]
    for ra, rb in zip(one, two):
        for key in ("loss", "mlm_loss", "sbo_loss", "grad_norm", "lr", "tokens"):
            assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-5), (ra["step"], key)

    # Resume from its step-2 checkpoint: steps 3 and 4 replay exactly.
    res = tmp_path / "res"
    res.mkdir()
    shutil.copytree(fsdp / "checkpoints" / "step-00000002", res / "checkpoints" / "step-00000002")
    shutil.copy(fsdp / "metrics.csv", res / "metrics.csv")
    log = run([*launch, "--output", str(res), "--resume"])
    assert "at step 2" in log
    resumed = _metrics(res / "metrics.csv")
    assert [r["step"] for r in resumed] == ["1", "2", "3", "4"]
    for ra, rb in zip(two[2:], resumed[2:]):
        for key in ("loss", "grad_norm"):
            assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-9), (ra["step"], key)

    # Saved files: the same tensors as the one-process run (tied copies left out), loadable as ours.
    from safetensors.torch import load_file

    from spanbert.pretrain.modeling import SBO_HEAD_FILE, SPANBERT_CONFIG_FILE, load_pretraining_model

    for file in ("model.safetensors", SBO_HEAD_FILE, "checkpoints/step-00000004/model.safetensors"):
        a, b = (load_file(str(tmp_path / d / file)) for d in ("one", "fsdp"))
        assert sorted(a) == sorted(b)
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    for file in ("config.json", SPANBERT_CONFIG_FILE):
        assert json.loads((fsdp / file).read_text()) == json.loads((tmp_path / "one" / file).read_text())
    oa, ob = (load_file(str(tmp_path / d / "checkpoints/step-00000004/optimizer.safetensors")) for d in ("one", "fsdp"))
    assert sorted(oa) == sorted(ob)  # the unsharded layout: an FSDP checkpoint resumes anywhere
    for k in oa:
        torch.testing.assert_close(ob[k], oa[k], rtol=1e-4, atol=1e-7)
    model, _ = load_pretraining_model(str(res))
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    final = load_file(str(tmp_path / "fsdp" / "model.safetensors"))
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight.detach(), final["bert.embeddings.word_embeddings.weight"])
    torch.testing.assert_close(model.sbo.bias.detach(), load_file(str(tmp_path / "fsdp" / SBO_HEAD_FILE))["sbo.bias"])
