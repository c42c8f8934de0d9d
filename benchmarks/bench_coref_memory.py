"""Peak memory and time of coreference prediction on one long document (issue 5: a 10,000-token
document must predict on a CPU within 4 GB).

The document is the start of *Moby Dick* (``../shared/data/corpus/moby_dick.txt.gz`` or
``$SPANBERT_SHARED_DATA``), cut at the paragraph where the model's tokenizer reaches
``--tokens`` subwords. Prints the process's resident memory after loading the model and its
peak over the prediction (``ru_maxrss``, which covers the whole process), the time, and how many
candidate spans, kept spans and clusters the document gave.

    python benchmarks/bench_coref_memory.py --model runs/coref/coref-litbank --tokens 10000
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a fine-tuned coreference model folder")
    p.add_argument("--tokens", type=int, default=10_000, help="subword tokens in the document (at least)")
    p.add_argument("--precision", default="no", help="no (fp32), bf16 or auto")
    args = p.parse_args()

    import torch

    from spanbert.tasks.coref.features import encode_document, text_document
    from spanbert.tasks.coref.inference import CorefResolver

    data = Path(os.environ.get("SPANBERT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    with gzip.open(data / "corpus" / "moby_dick.txt.gz", "rt", encoding="utf-8") as f:
        paragraphs = [q.strip() for q in f.read().split("\n\n") if q.strip()]
    resolver = CorefResolver(args.model, device="cpu", precision=args.precision)
    tok = resolver.tokenizer
    text, count = "", 0
    for para in paragraphs:
        text += para + "\n\n"
        count += len(tok(para, add_special_tokens=False)["input_ids"])
        if count >= args.tokens:
            break
    doc = text_document(text)
    enc = encode_document(tok, doc.document, resolver.segments)
    loaded = rss_mb()
    start = time.perf_counter()
    clusters = resolver.resolve(text)[0]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"document: {len(doc.document.words):,} words, {sum(len(s) - 2 for s in enc.segments):,} subwords, "
          f"{len(enc.segments)} segments of {resolver.segments.max_segment_length}, "
          f"{len(enc.candidate_spans):,} candidate spans")
    print(f"threads {torch.get_num_threads()}; precision {args.precision}; predict {seconds:.1f} s; "
          f"RSS after loading {loaded:,.0f} MB; peak RSS {peak:,.0f} MB; {len(clusters)} clusters, "
          f"{sum(len(c) for c in clusters):,} mentions")


if __name__ == "__main__":
    main()
