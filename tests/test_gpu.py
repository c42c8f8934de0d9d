"""Accelerator checks, skipped without CUDA: the models compute the same on the GPU as on the CPU
(fp32), bf16 autocast stays close to fp32, the pre-training loop runs, checkpoints and resumes on
the GPU with bf16, a GPU-trained model fills the same spans on the CPU, and coreference and
span filling answer alike on both.

The rest of the suite runs on the GPU too where a CUDA device is visible (the pre-training and
fine-tuning loops pick it), so ``pytest tests/test_gpu.py tests/test_train.py ...`` on a GPU
machine covers the loops there. ``SPANBERT_TEST_DEVICE=cpu`` runs these same checks with the
CPU standing in for the GPU (a smoke test of the tests themselves).
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.fill import SpanFiller

from .test_train import make_model, packed, read_metrics, run  # noqa: F401 (packed is a fixture)

DEVICE = os.environ.get("SPANBERT_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device: GPU checks run only where one is visible")


@pytest.fixture(autouse=True)
def _exact_fp32():
    """No TF32 in the fp32 comparisons (cuBLAS would otherwise round inputs to 10-bit mantissas)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _batch(tokenizer, packed, n: int = 8) -> dict[str, torch.Tensor]:
    return SpanMaskingCollator(tokenizer, seed=3)([packed[i] for i in range(n)])


def test_pretraining_forward_and_backward_match_the_cpu(tiny_tokenizer, packed):
    cpu = make_model(tiny_tokenizer, dropout=0.0)
    gpu = copy.deepcopy(cpu).to(DEVICE)
    batch = _batch(tiny_tokenizer, packed)
    out_c = cpu(**batch)
    out_g = gpu(**{k: v.to(DEVICE) for k, v in batch.items()})
    assert int(out_c.num_mlm_targets) == int(out_g.num_mlm_targets) > 0
    for name in ("loss", "mlm_loss", "sbo_loss"):
        assert float(getattr(out_g, name).detach()) == pytest.approx(float(getattr(out_c, name).detach()), rel=1e-4), name
    out_c.loss.backward()
    out_g.loss.backward()
    for (name, p_c), p_g in zip(cpu.named_parameters(), gpu.parameters()):
        if p_c.grad is None:
            assert p_g.grad is None, name
            continue
        torch.testing.assert_close(p_g.grad.cpu(), p_c.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_bf16_autocast_stays_close_to_fp32(tiny_tokenizer, packed):
    model = make_model(tiny_tokenizer, dropout=0.0).to(DEVICE)
    batch = {k: v.to(DEVICE) for k, v in _batch(tiny_tokenizer, packed).items()}
    with torch.no_grad():
        fp32 = float(model(**batch).loss)
        with torch.autocast(torch.device(DEVICE).type, dtype=torch.bfloat16):
            bf16 = model(**batch)
    assert float(bf16.loss) == pytest.approx(fp32, rel=0.03)


def test_bf16_pretraining_on_the_gpu_learns_resumes_and_fills_on_the_cpu(tiny_tokenizer, packed, tmp_path):
    """The trainer picks the visible GPU: 12 bf16 steps, killed at step 8 and resumed from the
    step-8 checkpoint, log the same losses as an uninterrupted run (to bf16 noise); the saved
    model then fills the same tokens on the CPU as on the GPU."""
    kw = dict(max_steps=12, save_every=4, mixed_precision="bf16", dropout=0.0)
    full = run(tiny_tokenizer, packed, tmp_path / "full", **kw)
    assert full.state.step == 12
    run(tiny_tokenizer, packed, tmp_path / "part", stop_at_step=8, **kw)
    resumed = run(tiny_tokenizer, packed, tmp_path / "part", resume=True, **kw)
    a, b = read_metrics(full.metrics_csv), read_metrics(resumed.metrics_csv)
    assert [r["step"] for r in b] == [str(i) for i in range(1, 13)]
    assert float(a[-1]["loss"]) < float(a[0]["loss"])  # it learns
    for ra, rb in zip(a, b):
        assert float(rb["loss"]) == pytest.approx(float(ra["loss"]), rel=1e-2), ra["step"]
    texts = ["The people of the [MASK] [MASK] have spoken.", "Gentlemen of the [MASK] and House."]
    on_gpu = SpanFiller.from_pretrained(tmp_path / "full", device=DEVICE).fill(texts, top_k=3)
    on_cpu = SpanFiller.from_pretrained(tmp_path / "full", device="cpu").fill(texts, top_k=3)
    for g, c in zip(on_gpu, on_cpu):
        for sg, sc in zip(g.spans, c.spans):
            assert sg.predictions["mlm"].token_ids == sc.predictions["mlm"].token_ids


def test_coreference_scores_match_the_cpu(tiny_tokenizer):
    from spanbert.tasks.coref.conll import read_conll
    from spanbert.tasks.coref.features import SegmentConfig, document_tensors, encode_document
    from spanbert.tasks.coref.model import BertForCoreference, CorefConfig

    from .test_coref_model import PRIDE, TINY

    torch.manual_seed(0)
    cpu = BertForCoreference(CorefConfig(vocab_size=len(tiny_tokenizer), max_span_width=10, ffnn_size=64,
                                         feature_size=8, max_top_antecedents=10, **TINY)).eval()
    gpu = copy.deepcopy(cpu).to(DEVICE)
    doc = read_conll(PRIDE)[0]
    enc = encode_document(tiny_tokenizer, doc, SegmentConfig(64, 10))
    batch = document_tensors(enc, tiny_tokenizer.pad_token_id, with_gold=True)
    out_c = cpu(**batch)
    out_g = gpu(**{k: v.to(DEVICE) for k, v in batch.items()})
    torch.testing.assert_close(out_g.mention_scores.cpu(), out_c.mention_scores, rtol=1e-4, atol=1e-4)
    assert torch.equal(out_g.top_indices.cpu(), out_c.top_indices)
    # the first spans have fewer than c earlier spans: their masked slots tie at NEG and topk may
    # order those ties differently on each device; only the real antecedents must agree
    mask = out_c.antecedent_mask
    assert torch.equal(out_g.antecedent_mask.cpu(), mask)
    assert torch.equal(out_g.antecedents.cpu()[mask], out_c.antecedents[mask])
    torch.testing.assert_close(out_g.scores.cpu(), out_c.scores, rtol=1e-4, atol=1e-3)
    assert float(out_g.loss.detach()) == pytest.approx(float(out_c.loss.detach()), rel=1e-4)
