"""Real English for the benchmarks: State of the Union addresses.

The shared corpus (``../shared/data/corpus/sotu.jsonl.gz`` or ``$SPANBERT_SHARED_DATA``) when
present, else the sample bundled with the package.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPANBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))
BUNDLED = ROOT / "src" / "spanbert" / "data" / "sotu_sample.jsonl.gz"


def sotu_texts(max_chars: int) -> tuple[list[str], str]:
    """Addresses, newest first, until ``max_chars`` characters; and the file they came from."""
    path = SHARED_DATA / "corpus" / "sotu.jsonl.gz"
    if not path.exists():
        path = BUNDLED
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f][::-1]
    out, total = [], 0
    for text in texts:
        out.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return out, str(path)
