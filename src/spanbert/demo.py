"""The main job (``spanbert demo``): pre-train a small SpanBERT on the bundled State of the Union
sample in a few CPU minutes, then show what its MLM and SBO heads put into masked spans.

The sample is small (7 addresses, ~36,000 words), so the model learns that text, not English:
the fills show that both heads work end to end, not that the model generalises.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer

from .corpus import sample_corpus_path
from .masking import MaskingConfig
from .pipeline import PretrainJob, run_pretrain_job
from .train import PretrainArguments

# Phrases of the kind these addresses use; the masked runs are filled by the trained heads.
PROMPTS = (
    "I have the honor to [MASK] [MASK] [MASK] of the Union.",
    "The Congress of the [MASK] [MASK] has made provision for the public debt.",
    "We must protect the [MASK] [MASK] of the American people.",
)


def masked_examples(packed, tokenizer, count: int, seed: int) -> list[tuple[str, str]]:
    """Pick ``count`` training segments, mask one span of 2-4 whole words in each.

    Returns (masked text, the words that were masked).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(packed), size=min(count * 4, len(packed)), replace=False):
        row = packed[int(i)]
        ids = np.asarray(row["input_ids"][1:-1])
        starts = np.flatnonzero(np.asarray(row["word_starts"][1:-1]))
        if len(starts) < 30:
            continue
        n_words = int(rng.integers(2, 5))
        w = int(rng.integers(8, min(len(starts) - n_words - 1, 24)))
        a, b = starts[w], starts[w + n_words]
        window = ids[starts[w - 8] : starts[min(w + n_words + 8, len(starts) - 1)]]
        a, b = a - starts[w - 8], b - starts[w - 8]
        masked = np.concatenate([window[:a], np.full(b - a, tokenizer.mask_token_id), window[b:]])
        out.append((tokenizer.decode(masked.tolist()), tokenizer.decode(window[a:b].tolist())))
        if len(out) == count:
            break
    return out


def run_demo(output: Path, *, minutes: float = 4.0, steps: int = 400, preset: str = "mini", seed: int = 0) -> None:
    """Train on the bundled sample under a time budget, then print span fills and the plot path."""
    from .cli import format_fill
    from .corpus import load_corpus, pack_documents
    from .fill import SpanFiller
    from .tokenizer import load_tokenizer

    corpus = str(sample_corpus_path())
    typer.echo(f"corpus: {corpus} (7 State of the Union addresses, public domain)")
    job = PretrainJob(
        corpus=[corpus],
        preset=preset,
        vocab_size=8000,
        max_length=128,
        masking=MaskingConfig(),
        train=PretrainArguments(
            output_dir=str(output), batch_size=32, max_steps=steps, lr=1e-3, warmup_steps=max(1, steps // 20),
            seed=seed, log_every=5, save_every=100, time_budget_s=minutes * 60,
        ),
    )
    t0 = time.time()
    result = run_pretrain_job(job)
    last = result.state.last
    typer.echo(
        f"trained {result.state.step} steps in {time.time() - t0:.0f} s: loss {last['loss']:.3f} "
        f"(MLM {last['mlm_loss']:.3f}, SBO {last['sbo_loss']:.3f})"
    )

    tokenizer = load_tokenizer(str(output))
    filler = SpanFiller.from_pretrained(output)
    packed = pack_documents(load_corpus([corpus]), tokenizer, max_length=128)
    typer.echo("\nSpans masked in the training text (truth in brackets):")
    for text, truth in masked_examples(packed, tokenizer, 3, seed):
        typer.echo(format_fill(filler.fill(text)[0]) + f"\n  truth -> [{truth}]\n")
    typer.echo("Prompts:")
    for r in filler.fill(list(PROMPTS)):
        typer.echo(format_fill(r) + "\n")
    typer.echo(f"model: {output}")
    typer.echo(f"loss curve: {result.loss_plot}")
