"""Prepare the Chinese data of ``benchmarks/chinese_quality.sh`` from ../shared/data.

* ChnSentiCorp (7,766 hotel reviews, no official split): the one empty review is dropped and
  the rest split 80/10/10 by a seeded permutation into ``chnsenticorp/{train,dev,test}.jsonl``
  with fields ``text`` and ``label``.
* A pre-training corpus ``corpus/`` of JSON Lines documents: the ChnSentiCorp *training*
  reviews and the CMRC 2018 *trial* contexts. Nothing that is evaluated (CMRC dev, XQuAD-zh,
  ChnSentiCorp dev/test) is in it.

Usage: python benchmarks/chinese_data.py --out runs/zh-data [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("SPANBERT_SHARED_DATA", "../shared/data")))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with (args.shared / "chnsenticorp" / "ChnSentiCorp_htl_all.csv").open(encoding="utf-8", newline="") as f:
        reviews = [{"text": r["review"].strip(), "label": r["label"]} for r in csv.DictReader(f)
                   if (r["review"] or "").strip()]
    order = np.random.default_rng(args.seed).permutation(len(reviews))
    n_train, n_dev = int(0.8 * len(reviews)), int(0.1 * len(reviews))
    splits = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev], "test": order[n_train + n_dev:]}
    for name, idx in splits.items():
        _write_jsonl(args.out / "chnsenticorp" / f"{name}.jsonl", [reviews[i] for i in idx])

    trial = json.loads((args.shared / "cmrc2018" / "cmrc2018_trial.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in trial["data"] for p in a["paragraphs"]]
    _write_jsonl(args.out / "corpus" / "cmrc2018_trial_contexts.jsonl", [{"text": c} for c in contexts])
    _write_jsonl(args.out / "corpus" / "chnsenticorp_train_reviews.jsonl",
                 [{"text": reviews[i]["text"]} for i in splits["train"]])
    chars = sum(len(c) for c in contexts) + sum(len(reviews[i]["text"]) for i in splits["train"])
    print(json.dumps({"chnsenticorp": {k: len(v) for k, v in splits.items()},
                      "corpus_documents": len(contexts) + len(splits["train"]), "corpus_characters": chars}))


if __name__ == "__main__":
    main()
