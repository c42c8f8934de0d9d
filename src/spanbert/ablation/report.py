"""The grid's results: mean ± sd per objective and task, paired differences against ``token``
with bootstrap confidence intervals over test examples and seeds, as Markdown, CSV, JSON and a plot.

Every task's test metric is a function of per-example counts summed over the examples, which
is what makes resampling examples cheap:

- QA: the SQuAD v1.1 F1 of each question (max over its gold answers) -> 100 x mean;
- NER: each sentence's entity true positives, false positives, false negatives (seqeval's
  default-mode spans) -> micro F1;
- relations (SemEval-2010 Task 8): per undirected relation, each example's correct / proposed /
  wrong-direction / answer counts -> the official scorer's macro-F1 over the 9 relations
  (evaluation iii); TACRED-style data: micro F1 without the no-relation label.

The paired bootstrap draws, in each of ``B`` replicates, the seeds (with replacement) and the
test examples (with replacement, the same draw for both objectives and every seed), and takes
the mean over the drawn seeds of (metric of the objective - metric of ``token``). The 95%
interval is the 2.5 and 97.5 percentiles of those ``B`` differences.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spanbert.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from spanbert.core.errors import ConfigError
from spanbert.core.extras import optional
from spanbert.ablation.config import BASELINE, OBJECTIVE_LABELS, AblationConfig, TaskSpec
from spanbert.ablation.grid import Cell, cells, read_cell

Metric = Callable[[np.ndarray], np.ndarray]  # summed counts (..., k) -> metric in percent (...)


@dataclass
class ExampleCounts:
    """A cell's test set as per-example counts and the metric computed from their sums."""

    ids: list[str]
    counts: np.ndarray  # (examples, k)
    metric: Metric

    def score(self) -> float:
        return float(self.metric(self.counts.sum(0)))


def _read_text(path: Path) -> str:
    """A prediction file's text, from ``path`` or its gzipped copy ``path.gz``."""
    import gzip

    if path.is_file():
        return path.read_text(encoding="utf-8")
    with gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8") as f:
        return f.read()


def _qa_counts(task: TaskSpec, test_dir: Path) -> ExampleCounts:
    from spanbert.tasks.qa.data import read_with_gold
    from spanbert.tasks.qa.scoring import f1_score

    _, gold = read_with_gold(task.test)
    predictions = json.loads(_read_text(test_dir / "predictions.json"))
    ids, values = [], []
    for q in gold.questions:
        prediction = predictions.get(q.qid, "")
        values.append(max(f1_score(prediction, a, version="v1.1") for a in q.answers) if q.answers else float(prediction == ""))
        ids.append(q.qid)
    counts = np.stack([np.asarray(values, dtype=np.float64), np.ones(len(values))], axis=1)  # (n, 2): f1, 1
    return ExampleCounts(ids, counts, lambda s: 100.0 * s[..., 0] / np.maximum(s[..., 1], 1))


def _ner_counts(task: TaskSpec, test_dir: Path) -> ExampleCounts:
    from spanbert.tasks.ner.scoring import extract_spans

    # predictions.conll: "token<TAB>gold<TAB>predicted" lines, a blank line after each sentence
    text = _read_text(test_dir / "predictions.conll")
    rows, ids = [], []
    for i, block in enumerate(b for b in text.split("\n\n") if b.strip()):
        fields = [line.split("\t") for line in block.splitlines() if line.strip()]
        gold = set(extract_spans([f[-2] for f in fields]))
        pred = set(extract_spans([f[-1] for f in fields]))
        tp = len(gold & pred)
        rows.append((tp, len(pred) - tp, len(gold) - tp))
        ids.append(f"{i}:{fields[0][0]}")

    def micro_f1(s: np.ndarray) -> np.ndarray:
        tp, fp, fn = s[..., 0], s[..., 1], s[..., 2]
        return 100.0 * 2 * tp / np.maximum(2 * tp + fp + fn, 1)

    return ExampleCounts(ids, np.asarray(rows, dtype=np.float64).reshape(-1, 3), micro_f1)


def _relation_counts(task: TaskSpec, test_dir: Path) -> ExampleCounts:
    from spanbert.tasks.relations.scoring import OTHER, undirected

    rows = [json.loads(line) for line in _read_text(test_dir / "predictions.jsonl").splitlines() if line.strip()]
    metrics = json.loads((test_dir / "metrics.json").read_text())
    ids = [str(r["id"]) for r in rows]
    if metrics.get("scoring") == "semeval":
        labels = sorted({undirected(r["gold"]) for r in rows} | {undirected(r["label"]) for r in rows})
        index = {label: i for i, label in enumerate(labels)}
        n, k = len(rows), len(labels)
        counts = np.zeros((n, 4, k))  # correct, proposed, wrong direction, answer
        for i, r in enumerate(rows):
            p, a = r["label"], r["gold"]
            pu, au = undirected(p), undirected(a)
            counts[i, 3, index[au]] += 1
            if pu == au and p != a:
                counts[i, 2, index[au]] += 1
            else:
                counts[i, 1, index[pu]] += 1
                counts[i, 0, index[pu]] += p == a
        relations = np.array([label != OTHER for label in labels])

        def macro_f1(s: np.ndarray) -> np.ndarray:
            s = s.reshape(*s.shape[:-1], 4, k)
            correct, proposed, wrong, answer = s[..., 0, :], s[..., 1, :], s[..., 2, :], s[..., 3, :]
            p = np.where(proposed > 0, 100.0 * correct / np.maximum(proposed + wrong, 1), 0.0)
            r = np.where(answer > 0, 100.0 * correct / np.maximum(answer, 1), 0.0)
            f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
            present = (answer > 0) & relations  # the scorer averages over the key's relations
            return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)

        return ExampleCounts(ids, counts.reshape(n, 4 * k), macro_f1)
    no_relation = metrics["metrics"]["no_relation_label"]
    counts = np.array([(r["label"] == r["gold"] and r["label"] != no_relation, r["label"] != no_relation,
                        r["gold"] != no_relation) for r in rows], dtype=np.float64).reshape(-1, 3)

    def micro(s: np.ndarray) -> np.ndarray:
        correct, guessed, gold = s[..., 0], s[..., 1], s[..., 2]
        p = np.where(guessed > 0, correct / np.maximum(guessed, 1), 1.0)
        r = np.where(gold > 0, correct / np.maximum(gold, 1), 0.0)
        return 100.0 * np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)

    return ExampleCounts(ids, counts, micro)


COUNTERS = {"qa": _qa_counts, "ner": _ner_counts, "relations": _relation_counts}


def example_counts(task: TaskSpec, test_dir: Path) -> ExampleCounts:
    """Per-example counts of a fine-tuning cell's test predictions."""
    return COUNTERS[task.kind](task, test_dir)


def paired_bootstrap(a: list[ExampleCounts], b: list[ExampleCounts], samples: int, seed: int = 0) -> tuple[float, float, float]:
    """Mean over seeds of metric(a) - metric(b), and its bootstrap 95% interval.

    ``a[j]`` and ``b[j]`` are the same seed's cells of two objectives on the same test examples.
    """
    if len(a) != len(b) or not a:
        raise ValueError("paired_bootstrap needs the same seeds on both sides")
    n = len(a[0].ids)
    for x in (*a, *b):
        if x.ids != a[0].ids:
            raise ConfigError("the cells' test predictions do not cover the same examples in the same order")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)  # (B, n)
    seed_draws = rng.integers(0, len(a), size=(samples, len(a)))  # (B, S)
    per_seed = np.stack([x.metric(weights @ x.counts) - y.metric(weights @ y.counts) for x, y in zip(a, b)], axis=1)  # (B, S)
    replicate = np.take_along_axis(per_seed, seed_draws, axis=1).mean(1)  # (B,)
    observed = float(np.mean([x.score() - y.score() for x, y in zip(a, b)]))
    low, high = np.percentile(replicate, [2.5, 97.5])
    return observed, float(low), float(high)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def collect(config: AblationConfig) -> dict:
    """Everything the report shows, from the finished cells (missing cells are listed, not guessed)."""
    done = {c.name: r for c in cells(config) if (r := read_cell(c, config)) is not None}
    pretrain = {}
    for objective in config.objectives:
        r = done.get(f"pretrain/{objective}")
        if r is not None:
            pretrain[objective] = {k: r.get(k) for k in ("steps", "tokens", "token_slots", "flops", "flops_source",
                                                          "seconds", "train_seconds", "final", "heldout")}
    rows = []
    for task in config.tasks:
        per_objective: dict[str, dict[int, ExampleCounts]] = {}
        for objective in config.objectives:
            records = {s: done.get(Cell("finetune", objective, task, s).name) for s in config.seeds}
            finished = {s: r for s, r in records.items() if r is not None}
            row = {"task": task.name, "kind": task.kind, "objective": objective, "seeds_done": len(finished),
                   "seeds": len(config.seeds)}
            if finished:
                tests = [r["test_score"] for r in finished.values()]
                devs = [r["selected_on_dev"]["score"] for r in finished.values() if r.get("selected_on_dev")]
                row.update(test_scores=tests, cell_seconds=[r["seconds"] for r in finished.values()])
                row["test_mean"], row["test_sd"] = _mean_sd(tests)
                if devs:
                    row["dev_mean"], row["dev_sd"] = _mean_sd([100.0 * d if task.kind == "ner" else d for d in devs])
                per_objective[objective] = {s: example_counts(task, Cell("finetune", objective, task, s).folder(config) / "test")
                                            for s in finished}
                for s, r in finished.items():
                    recomputed = per_objective[objective][s].score()
                    if not math.isclose(recomputed, r["test_score"], abs_tol=1e-6):
                        raise ConfigError(f"{Cell('finetune', objective, task, s).name}: per-example counts give "
                                          f"{recomputed:.6f}, the scorer {r['test_score']:.6f}")
            rows.append(row)
        base = per_objective.get(BASELINE)
        for row in rows:
            if row["task"] != task.name or row["objective"] == BASELINE or base is None:
                continue
            mine = per_objective.get(row["objective"])
            if not mine:
                continue
            common = sorted(set(mine) & set(base))
            if not common:
                continue
            diff, low, high = paired_bootstrap([mine[s] for s in common], [base[s] for s in common],
                                               config.bootstrap_samples)
            row.update(diff_vs_token=diff, ci_low=low, ci_high=high, paired_seeds=len(common))
    machines: dict[str, int] = {}  # "cpu, N thread(s)" -> cells (cells from before threads were recorded: "not recorded")
    for r in done.values():
        where = f"{r['cpu']}, {r['threads']} thread(s)" if "cpu" in r else "not recorded"
        machines[where] = machines.get(where, 0) + 1
    return {"name": config.name, "objectives": list(config.objectives), "tasks": [t.name for t in config.tasks],
            "seeds": list(config.seeds), "pretrain": pretrain, "rows": rows, "bootstrap_samples": config.bootstrap_samples,
            "machines": machines}


def _fmt(x: float | None, digits: int = 1) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def to_markdown(results: dict) -> str:
    """The results tables: test mean ± sd per task and objective, the difference to ``token`` with
    its 95% interval, and what each pre-training cell cost."""
    out = io.StringIO()
    tasks, objectives = results["tasks"], results["objectives"]
    by = {(r["task"], r["objective"]): r for r in results["rows"]}
    out.write("| objective | " + " | ".join(f"{t} test (dev)" for t in tasks) + " |\n")
    out.write("|---|" + "---|" * len(tasks) + "\n")
    for o in objectives:
        cells_ = []
        for t in tasks:
            r = by[(t, o)]
            if "test_mean" not in r:
                cells_.append("not run")
                continue
            text = f"{_fmt(r['test_mean'])} ± {_fmt(r['test_sd'])} ({_fmt(r.get('dev_mean'))})"
            if r["seeds_done"] < r["seeds"]:
                text += f" [{r['seeds_done']}/{r['seeds']} seeds]"
            cells_.append(text)
        out.write(f"| {o}: {OBJECTIVE_LABELS[o]} | " + " | ".join(cells_) + " |\n")
    out.write(f"\nDifference to `{BASELINE}` (mean over paired seeds; bootstrap 95% interval over test examples and "
              f"seeds, {results['bootstrap_samples']} replicates):\n\n")
    out.write("| objective | " + " | ".join(tasks) + " |\n|---|" + "---|" * len(tasks) + "\n")
    for o in objectives:
        if o == BASELINE:
            continue
        cells_ = []
        for t in tasks:
            r = by[(t, o)]
            cells_.append(f"{r['diff_vs_token']:+.1f} [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]" if "diff_vs_token" in r else "")
        out.write(f"| {o} | " + " | ".join(cells_) + " |\n")
    if results["pretrain"]:
        out.write("\n| pre-training cell | steps | tokens (non-padding) | token slots | FLOPs | wall time |\n"
                  "|---|---|---|---|---|---|\n")
        for o, p in results["pretrain"].items():
            flops = f"{p['flops']:.3g}" + ("" if p.get("flops_source") == "counted per step" else " (est.)")
            out.write(f"| {o} | {p['steps']:,} | {p['tokens']:,} | {p['token_slots']:,} | {flops} | "
                      f"{_fmt(p['seconds'] / 60)} min |\n")
    times = [(r["task"], r["objective"], np.mean(r["cell_seconds"])) for r in results["rows"] if r.get("cell_seconds")]
    if times:
        out.write("\nMean wall time of a fine-tuning cell (fine-tune with dev selection + one test evaluation): "
                  + "; ".join(f"{t}/{o} {s / 60:.1f} min" for t, o, s in times) + ".\n")
    if results.get("machines"):
        out.write("\nWhere the cells ran: " + "; ".join(f"{m}: {n} cell(s)" for m, n in results["machines"].items()) + ".\n")
    return out.getvalue()


def to_csv(results: dict) -> str:
    fields = ["task", "kind", "objective", "seeds_done", "seeds", "test_mean", "test_sd", "dev_mean", "dev_sd",
              "diff_vs_token", "ci_low", "ci_high", "paired_seeds", "test_scores"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in results["rows"]:
        writer.writerow({**r, "test_scores": " ".join(f"{x:.4f}" for x in r.get("test_scores", []))})
    return buf.getvalue()


def plot(results: dict) -> bytes | None:
    """Grouped bars: tasks on the x axis, one bar per objective, error bars = sd over seeds (PNG
    bytes); None, with one warning, without matplotlib (the optional ``plot`` extra)."""
    matplotlib = optional("matplotlib", "plot", "no results.png written")
    if matplotlib is None:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, objectives = results["tasks"], results["objectives"]
    by = {(r["task"], r["objective"]): r for r in results["rows"]}
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(tasks), 3.6), dpi=120)
    width = 0.8 / len(objectives)
    for i, o in enumerate(objectives):
        means = [by[(t, o)].get("test_mean", np.nan) for t in tasks]
        sds = [by[(t, o)].get("test_sd", np.nan) for t in tasks]
        xs = np.arange(len(tasks)) + (i - (len(objectives) - 1) / 2) * width
        ax.bar(xs, means, width, yerr=np.nan_to_num(sds), capsize=2, label=o)
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylabel("test score (mean ± sd over seeds)")
    ax.set_title(f"objective ablation: {results['name']}")
    ax.legend(fontsize=7, ncols=min(len(objectives), 5), loc="lower center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_report(config: AblationConfig) -> dict[str, Path]:
    """``results.md``, ``results.csv``, ``results.json`` and ``results.png`` in the grid's folder.

    Without matplotlib there is no ``"plot"`` key and no ``results.png`` (an earlier one, now
    out of date, is removed)."""
    results = collect(config)
    out = config.output
    paths = {"markdown": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    atomic_write_text(paths["markdown"], to_markdown(results))
    atomic_write_text(paths["csv"], to_csv(results))
    atomic_write_json(paths["json"], results)
    png = plot(results)
    if png is None:
        (out / "results.png").unlink(missing_ok=True)
    else:
        paths["plot"] = out / "results.png"
        atomic_write_bytes(paths["plot"], png)
    return paths


__all__ = ["ExampleCounts", "collect", "example_counts", "paired_bootstrap", "plot", "to_csv", "to_markdown", "write_report"]
