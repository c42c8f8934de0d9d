"""Mean ± sample standard deviation of metrics over per-seed JSON files (the quality scripts' summaries).

    python benchmarks/summarize_seeds.py --key metrics.f1=F1 [--key ...] [--scale 100] [--name TITLE]
        [--note TEXT] [--digits 2] [--output PREFIX] SEED_FILE [SEED_FILE ...]

Each ``--key`` is a dotted path into every file (``metrics.overall.f1``; a list index is a
number), optionally ``=LABEL`` for the table. The values (times ``--scale``) are summarised as
mean ± sd with ``ddof=1`` (sd is undefined, ``null``, for one file) and listed per seed: the seed
of a file is the number after ``seed`` in its path (``runs/ner/span/seed2/test/metrics.json``),
else its position. The Markdown table is printed; with ``--output PREFIX`` it is also written
to ``PREFIX.md`` and the numbers to ``PREFIX.json``. Errors are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path


class SummaryError(Exception):
    """A one-line reason the summary cannot be made."""


def lookup(data, path: str, source: str) -> float:
    """The number at dotted ``path`` in ``data`` (``source`` names the file in errors)."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise SummaryError(f"{source}: no key {path!r} (missing at {part!r})")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SummaryError(f"{source}: {path!r} is {type(value).__name__} {value!r}, not a number")
    if not math.isfinite(value):
        raise SummaryError(f"{source}: {path!r} is {value}, not a finite number")
    return float(value)


def seed_of(path: str, position: int) -> str:
    """The seed named in a path (the last ``seed<N>``), else the file's 1-based position."""
    found = re.findall(r"seed[-_]?(\d+)", path)
    return found[-1] if found else str(position)


def summarize(files: list[str], keys: list[str], scale: float = 1.0) -> dict:
    """Per-key mean, sample sd (ddof=1; None for one file) and the per-file values."""
    if not files:
        raise SummaryError("no metrics files given")
    if not keys:
        raise SummaryError("no --key given")
    loaded = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise SummaryError(f"{name}: no such file")
        try:
            loaded.append(json.loads(path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SummaryError(f"{name}: not a JSON file ({e})") from None
    rows = []
    for spec in keys:
        key, _, label = spec.partition("=")
        if not key:
            raise SummaryError(f"--key {spec!r}: empty key path")
        values = [scale * lookup(data, key, name) for data, name in zip(loaded, files)]
        sd = statistics.stdev(values) if len(values) > 1 else None
        rows.append({"key": key, "label": label or key, "mean": statistics.fmean(values), "sd": sd, "values": values})
    return {"n": len(files), "files": list(files), "seeds": [seed_of(f, i + 1) for i, f in enumerate(files)],
            "scale": scale, "metrics": rows}


def markdown(summary: dict, name: str | None = None, digits: int = 2, notes: list[str] | None = None) -> str:
    """The summary as a Markdown table (mean ± sd, then the value of each seed)."""
    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"

    lines = [f"### {name}", ""] if name else []
    lines += [f"| metric | mean ± sd (n={summary['n']}) | per seed |", "|---|---|---|"]
    for row in summary["metrics"]:
        per_seed = ", ".join(f"{s}: {fmt(v)}" for s, v in zip(summary["seeds"], row["values"]))
        lines.append(f"| {row['label']} | {fmt(row['mean'])} ± {fmt(row['sd'])} | {per_seed} |")
    lines += [""] + [f"{note}" for note in notes or []] + ([""] if notes else [])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="SEED_FILE", help="Per-seed metrics JSON files, one per seed.")
    parser.add_argument("--key", action="append", default=[], help="Dotted key path, optionally =LABEL; repeatable.")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply every value (100: fractions to percent).")
    parser.add_argument("--name", help="Title of the table.")
    parser.add_argument("--note", action="append", default=[], help="A line printed under the table; repeatable.")
    parser.add_argument("--digits", type=int, default=2, help="Decimals in the Markdown table.")
    parser.add_argument("--output", help="Write PREFIX.md and PREFIX.json.")
    args = parser.parse_args(argv)
    try:
        if args.digits < 0:
            raise SummaryError(f"--digits {args.digits}: must be >= 0")
        summary = summarize(args.files, args.key, args.scale)
        summary["name"], summary["notes"] = args.name, args.note
        text = markdown(summary, args.name, args.digits, args.note)
        if args.output:
            prefix = Path(args.output)
            prefix.parent.mkdir(parents=True, exist_ok=True)
            Path(f"{prefix}.md").write_text(text, encoding="utf-8")
            Path(f"{prefix}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except (SummaryError, OSError) as e:
        print(f"summarize_seeds: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
