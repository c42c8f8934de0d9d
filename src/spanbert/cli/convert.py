"""``spanbert convert original-hf|fairseq``: the authors' released checkpoints to our format
(the work is :mod:`spanbert.pretrain.convert`'s, imported when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Source = Annotated[Path, typer.Option("--source", "-s", help="The authors' checkpoint (see the command's help).")]
Tokenizer = Annotated[str, typer.Option("--tokenizer", "-t", help="Tokenizer folder of the vocabulary the model was "
                                        "trained with (SpanBERT: BERT's cased WordPiece, 28,996 tokens).")]
Output = Annotated[Path, typer.Option("--output", "-o", help="Folder for our pre-training model (written atomically).")]
Seed = Annotated[int, typer.Option(help="Seed for the heads the source lacks.")]
Heads = Annotated[int | None, typer.Option(help="Attention heads, when the source does not say (default hidden/64).")]
Overwrite = Annotated[bool, typer.Option(help="Replace a non-empty output folder.")]


def _report(result) -> None:
    """What a conversion loaded, created fresh and dropped, one line each."""
    typer.echo(f"converted {result.tensors_loaded} tensors from {result.source} ({result.layout})")
    if result.fresh:
        typer.echo(f"fresh (seed {result.seed}): {', '.join(result.fresh)}")
    if result.dropped:
        typer.echo(f"dropped: {', '.join(result.dropped)}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"model: {result.output_dir}")


def convert_original_hf_command(source: Source, tokenizer: Tokenizer, output: Output, seed: Seed = 42,
                                num_attention_heads: Heads = None, overwrite: Overwrite = False) -> None:
    """Convert an extracted spanbert_hf / spanbert_hf_base folder (config.json + pytorch_model.bin)."""
    from spanbert.pretrain.convert import convert_original_hf

    _report(convert_original_hf(source, tokenizer, output, seed=seed, num_attention_heads=num_attention_heads,
                                overwrite=overwrite))


def convert_fairseq_command(
    source: Source, tokenizer: Tokenizer, output: Output, seed: Seed = 42, num_attention_heads: Heads = None,
    layer_norm_eps: Annotated[float | None, typer.Option(help="LayerNorm eps, when the checkpoint has no args.")] = None,
    allow_missing_heads: Annotated[bool, typer.Option(help="Create a missing MLM/SBO head fresh instead of failing.")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Convert a fairseq checkpoint of the authors' pre-training code (e.g. spanbert_large_with_head's model.pt)."""
    from spanbert.pretrain.convert import convert_fairseq

    _report(convert_fairseq(source, tokenizer, output, seed=seed, num_attention_heads=num_attention_heads,
                            layer_norm_eps=layer_norm_eps, allow_missing_heads=allow_missing_heads, overwrite=overwrite))
