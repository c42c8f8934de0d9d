"""Command-line options from one source: the fields of a settings dataclass.

A field becomes an option when its metadata has ``help``; the option's default is the field's,
so a default lives once, in the dataclass. Metadata may also give

- ``option``: the command's parameter name when it is not the field's (``--sbo-weight`` sets
  ``sbo_loss_weight``), and ``names``: the option's declarations (``("--output", "-o")``);
- ``min``/``max``: bounds of a number;
- ``evaluate: True``: also an option of ``evaluate`` commands (default: as trained).

A ``Literal[...]`` field is a choice. :func:`dataclass_values` maps a command's values back onto
the fields; :func:`with_aliases` keeps an old option name working as a hidden second name.

Light: typer is imported when commands are built, so settings modules can declare their fields
with :func:`option` and import nothing.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, field, fields
from typing import Annotated, Any, get_args, get_origin

from spanbert.core.errors import ConfigError

KEYWORD = inspect.Parameter.KEYWORD_ONLY
# Old or other tools' names of our options, kept as hidden aliases: accelerate's --mixed-precision,
# and the names of transformers' example scripts (run_qa.py, run_mlm.py, ...). Not
# --per-device-train-batch-size: our --batch-size is the whole step's.
PRECISION_ALIAS = {"--mixed-precision": "precision"}
TRANSFORMERS_NAMES = {"--learning-rate": "lr", "--num-train-epochs": "epochs", "--gradient-accumulation-steps": "grad_accum"}


def option_parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A keyword-only command parameter (typer reads ``Annotated[type, typer.Option(...)]``)."""
    return inspect.Parameter(name, KEYWORD, default=default, annotation=annotation)


def option(default: Any = MISSING, *, help: str, default_factory: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field that is also a command-line option (see the module doc for ``meta``)."""
    f: Field = field(default=default, default_factory=default_factory, metadata={"help": help, **meta})
    return f


def _parameter_name(f) -> str:
    return f.metadata.get("option", f.name)


def dataclass_options(cls: type | None, *, evaluate: bool = False) -> list[inspect.Parameter]:
    """Command parameters of the fields of ``cls`` that have ``help`` in their metadata (with
    ``evaluate``: only those marked ``"evaluate": True``, optional, default None = as trained)."""
    import typer

    if cls is None:
        return []
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        meta = f.metadata
        if "help" not in meta or (evaluate and not meta.get("evaluate")):
            continue
        bounds = {k: meta[k] for k in ("min", "max") if k in meta}
        kind, names = hints[f.name], meta.get("names", ())
        if evaluate:
            info = typer.Option(*names, help=meta["help"] + " Default: as trained.", **bounds)
            out.append(option_parameter(_parameter_name(f), Annotated[kind | None, info], None))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = inspect.Parameter.empty  # a required option
        info = typer.Option(*names, help=meta["help"], **bounds)
        out.append(option_parameter(_parameter_name(f), Annotated[kind, info], default))
    return out


def dataclass_values(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``cls`` (field name -> value) among a command's ``values``
    (parameter name -> value): the options :func:`dataclass_options` made of its fields."""
    out = {}
    for f in fields(cls):
        name = _parameter_name(f)
        if "help" in f.metadata and name in values:
            out[f.name] = values[name]
    return out


# -- hidden aliases -------------------------------------------------------------------------------


def _typer_option(annotation) -> tuple[Any, Any]:
    """(type, typer ``OptionInfo``) of an ``Annotated[type, typer.Option(...)]`` parameter annotation."""
    from typer.models import OptionInfo

    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        for extra in extras:
            if isinstance(extra, OptionInfo):
                return base, extra
    raise TypeError(f"not an Annotated typer option: {annotation!r}")


def option_name(parameter: inspect.Parameter) -> str:
    """The (first long) option name of a command parameter, as the user types it."""
    _, info = _typer_option(parameter.annotation)
    decls = [d for d in (info.default, *(info.param_decls or ())) if isinstance(d, str) and d.startswith("--")]
    return decls[0].split("/")[0] if decls else "--" + parameter.name.replace("_", "-")


def alias_parameter(old: str) -> str:
    """The hidden parameter :func:`with_aliases` adds for the old option name ``old``."""
    return "alias_" + old.lstrip("-").replace("-", "_")


def with_aliases(aliases: Mapping[str, str]) -> Callable[[Callable], Callable]:
    """Decorator: accept each old option name of ``aliases`` (``{"--old-name": "parameter"}``) as a
    hidden second name of the command's ``parameter``: the same type and checks, not in ``--help``.
    Giving both names with different values is a one-line error."""
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)
        params = dict(signature.parameters)
        hidden: list[inspect.Parameter] = []
        targets: dict[str, tuple[str, str]] = {}
        for old, target in aliases.items():
            base, info = _typer_option(params[target].annotation)
            alias = copy.copy(info)
            alias.default, alias.param_decls, alias.hidden = ..., (old,), True
            alias.help = f"Old name of {option_name(params[target])}."
            name = alias_parameter(old)
            hidden.append(option_parameter(name, Annotated[base | None, alias], None))
            targets[name] = (old, target)

        @functools.wraps(fn)
        def command(**kwargs):
            for name, (old, target) in targets.items():
                value = kwargs.pop(name)
                if value is None:
                    continue
                given = kwargs.get(target, params[target].default)
                if given != params[target].default and given != value:
                    raise ConfigError(f"{old} and {option_name(params[target])}: give one ({old} is the old name)")
                kwargs[target] = value
            return fn(**kwargs)

        command.__signature__ = signature.replace(parameters=[*params.values(), *hidden])
        return command

    return decorate


__all__ = ["PRECISION_ALIAS", "TRANSFORMERS_NAMES", "option", "dataclass_options", "dataclass_values", "option_parameter", "option_name", "alias_parameter",
           "with_aliases"]
