"""The main job (``spanbert demo``): pre-train a small SpanBERT on the bundled State of the Union
sample in a few CPU minutes, then show what its MLM and SBO heads put into masked spans.

The sample is small (7 addresses, ~36,000 words), so the model learns that text, not English:
the fills show that both heads work end to end, not that the model generalises.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import typer

from .corpus import sample_corpus_path, sentence_starts
from .masking import MaskingConfig
from .pipeline import PretrainJob, run_pretrain_job
from .train import PretrainArguments, resolve_precision

# Phrases of the kind these addresses use; the masked runs are filled by the trained heads.
PROMPTS = (
    "I have the honor to [MASK] [MASK] [MASK] of the Union.",
    "The Congress of the [MASK] [MASK] has made provision for the public debt.",
    "We must protect the [MASK] [MASK] of the American people.",
)


def masked_examples(documents: list[str], tokenizer, count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` sentences of the corpus, each with a run of 2-3 whole words masked.

    Returns (text with one [MASK] per masked token, the masked words).
    """
    rng = np.random.default_rng(seed)
    sentences = []
    for doc in documents:
        bounds = [0, *sentence_starts(doc).tolist(), len(doc)]
        sentences += [doc[a:b].strip() for a, b in zip(bounds, bounds[1:]) if 10 <= len(doc[a:b].split()) <= 25]
    out = []
    for i in rng.choice(len(sentences), size=count, replace=False):
        words = sentences[int(i)].split()
        n = int(rng.integers(2, 4))
        start = int(rng.integers(2, len(words) - n - 1))
        target = " ".join(words[start : start + n])
        masks = " ".join([tokenizer.mask_token] * len(tokenizer.tokenize(target)))
        out.append((" ".join([*words[:start], masks, *words[start + n :]]), target))
    return out


def run_demo(output: Path, *, minutes: float = 3.5, steps: int = 5000, preset: str = "tiny", seed: int = 0) -> None:
    """Train on the bundled sample under a time budget, then print span fills and the plot path."""
    from .cli import format_fill
    from .corpus import iter_documents
    from .fill import SpanFiller

    corpus = str(sample_corpus_path())
    typer.echo(f"corpus: {corpus} (7 State of the Union addresses, public domain)")
    job = PretrainJob(
        corpus=[corpus],
        preset=preset,
        vocab_size=4000,
        max_length=64,
        masking=MaskingConfig(),
        dropout=0.0,  # the point is to learn this small sample: no regularisation needed
        # a small model taking many short steps gets past the unigram plateau within minutes
        train=PretrainArguments(
            output_dir=str(output), batch_size=32, max_steps=steps, lr=1e-3, warmup_steps=max(1, steps // 30),
            seed=seed, log_every=10, save_every=500, time_budget_s=minutes * 60, mixed_precision="auto",
        ),
    )
    result = run_pretrain_job(job)
    with open(result.metrics_csv, newline="") as f:
        tail = list(csv.DictReader(f))[-50:]
    mean = {k: float(np.mean([float(r[k]) for r in tail])) for k in ("loss", "mlm_loss", "sbo_loss")}
    typer.echo(
        f"trained {result.state.step} steps ({result.state.tokens:,} tokens) in {result.state.elapsed_s:.0f} s, "
        f"{'bf16 autocast' if resolve_precision('auto') == 'bf16' else 'fp32'}; loss over the last {len(tail)} steps {mean['loss']:.3f} "
        f"(MLM {mean['mlm_loss']:.3f}, SBO {mean['sbo_loss']:.3f})"
    )

    filler = SpanFiller.from_pretrained(output)
    documents = list(iter_documents([corpus]))
    typer.echo("\nSpans masked in sentences of the training text (truth in brackets):")
    for text, truth in masked_examples(documents, filler.tokenizer, 3, seed):
        typer.echo(format_fill(filler.fill(text)[0]) + f"\n  truth -> [{truth}]\n")
    typer.echo("Prompts:")
    for r in filler.fill(list(PROMPTS)):
        typer.echo(format_fill(r) + "\n")
    typer.echo(f"model: {output}")
    typer.echo(f"loss curve: {result.loss_plot}")
