"""``spanbert export onnx``: a fine-tuned QA or classification folder to an ONNX export folder.

The function is registered on the ``export`` command group of :mod:`spanbert.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def describe_export(output: Path, info: dict) -> str:
    """What an export wrote (files and sizes) and how close ONNX Runtime came to PyTorch."""
    lines = [f"wrote {output} ({info['task']}, opset {info['opset']}, inputs {', '.join(info['inputs'])})"]
    for f in sorted(p for p in output.iterdir() if p.is_file()):
        lines.append(f"  {f.name:<28} {f.stat().st_size / 1e6:10.2f} MB")
    diff = info["max_abs_logit_diff"]
    measured = f"fp32 {diff['fp32']:.3g}" + (f", int8 {diff['int8']:.3g}" if diff.get("int8") is not None else "")
    lines.append(f"max |logit difference| ONNX Runtime vs PyTorch on the export sample: {measured}")
    return "\n".join(lines)


def export_onnx_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="A fine-tuned folder of `spanbert finetune qa` or `finetune classify`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Export folder (new, empty, or an earlier export): replaced as a whole.")],
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize", help="Also write model.int8.onnx (dynamic int8 weights).")] = False,
    opset: Annotated[int | None, typer.Option(min=1, help="ONNX opset to write (default: the exporter's).")] = None,
) -> None:
    """Export to ONNX with torch.onnx (dynamo exporter; batch and length dynamic), check the graph
    and ONNX Runtime's logits against PyTorch, and write model.onnx, the tokenizer, settings and
    export_info.json."""
    from spanbert.onnx.export import export_onnx

    info = export_onnx(model, output, quantize=quantize, opset=opset)
    typer.echo(describe_export(output, info))


__all__ = ["export_onnx_command", "describe_export"]
