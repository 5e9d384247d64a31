"""Command-line options generated from what they set, so that no default is written twice.

`dataclass_options` turns the fields of a settings dataclass (`r2dn.training.TrainConfig`)
into options with the fields' types, defaults and documentation; `constructor_options` does
the same for the keyword arguments of the model constructors; `with_options` adds generated
options to a command's signature, where typer reads them.

>>> import dataclasses
>>> @dataclasses.dataclass
... class Settings:
...     '''What a run does.
...
...     Attributes:
...         steps: how many steps to take.
...     '''
...     steps: int = 3
>>> [(o.name, o.default, o.help) for o in dataclass_options(Settings)]
[('steps', 3, 'How many steps to take.')]
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import typer

#: Types an option can take as they are (typer parses them).
_PLAIN = (bool, int, float, str)


@dataclass(frozen=True)
class Option:
    """One generated option: ``--name`` (underscores as dashes) of type ``type``."""

    name: str
    type: Any
    default: Any
    help: str

    @property
    def flag(self) -> str:
        """The option as the user types it, e.g. ``--segment-length``."""
        return "--" + self.name.replace("_", "-")

    def parameter(self) -> inspect.Parameter:
        """A keyword-only parameter whose annotation tells typer how to parse the option."""
        annotation, parser, show = _cli_type(self.type, self.default)
        default = self.default
        if parser is not None and default is not None:
            default = show(default)  # the parser reads it as it reads the user's text
        info = typer.Option(
            help=self.help,
            parser=parser,
            metavar=None if parser is None else _metavar(self.type),
            show_default=default is not None,
        )
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[annotation, info],
        )


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of ``cls``'s docstring, one text per attribute name.

    An entry ``a, b: text`` documents both ``a`` and ``b``; continuation lines are joined.
    """
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return docs
    names: list[str] = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^ {4}(\w+(?:, \w+)*): (.*)$", line)
        if entry:
            names = entry[1].split(", ")
            for name in names:
                docs[name] = entry[2].strip()
        elif line.strip() and names:
            for name in names:
                docs[name] += " " + line.strip()
    return docs


def dataclass_options(cls: type, *, exclude: Iterable[str] = ()) -> list[Option]:
    """An option per field of the dataclass ``cls``: its type, default and documented text.

    References to other fields in the text (```name```) become their options (``--name``).
    """
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in set(exclude)]
    names = {f.name for f in dataclasses.fields(cls)}

    def flags(text: str) -> str:
        def replace(match: re.Match) -> str:
            word = match[1]
            if word == "None":
                return "none"
            return "--" + word.replace("_", "-") if word in names else word

        return re.sub(r"``?([^`]+)``?", replace, text)

    options = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        text = flags(docs.get(f.name, "")) or f"the {cls.__name__} setting {f.name}."
        help_text = text[0].upper() + text[1:]
        options.append(Option(f.name, hints[f.name], default, help_text))
    return options


def constructor_parameters(build: Callable) -> dict[str, inspect.Parameter]:
    """The named parameters of a constructor, those it forwards through ``**kwargs`` included.

    For a class, the ``__init__`` of each class in its method resolution order is read until
    one takes no ``**kwargs``: a named variant passes what it does not set itself on to its
    parent. A function with ``**kwargs`` is followed into the class its return annotation
    names. Annotations are resolved to types.
    """
    parameters: dict[str, inspect.Parameter] = {}
    for init in _constructor_chain(build):
        signature = inspect.signature(init)
        hints = typing.get_type_hints(init)
        for p in signature.parameters.values():
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                annotation = hints.get(p.name, p.annotation)
                parameters.setdefault(p.name, p.replace(annotation=annotation))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return parameters


def _constructor_chain(build: Callable) -> list[Callable]:
    if not isinstance(build, type):
        returns = typing.get_type_hints(build).get("return")
        return [build, *(_constructor_chain(returns) if isinstance(returns, type) else [])]
    return [k.__init__ for k in build.__mro__ if "__init__" in vars(k)]


def constructor_options(
    constructors: Mapping[str, Callable],
    *,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    docs: Mapping[str, str] | None = None,
) -> list[Option]:
    """One option per keyword argument of any of ``constructors`` (keyed by kind).

    The default is the constructors' own (where all that take the argument agree), else
    ``defaults[name]``, else ``None`` ("the kind's own default", or required where the kind has
    none). The help is ``docs[name]``, naming the kinds that take it when not all do.
    """
    defaults, docs = dict(defaults or {}), dict(docs or {})
    accepted = {kind: constructor_parameters(c) for kind, c in constructors.items()}
    names = dict.fromkeys(n for params in accepted.values() for n in params if n not in exclude)
    options = []
    for name in names:
        kinds = [kind for kind, params in accepted.items() if name in params]
        params = [accepted[kind][name] for kind in kinds]
        own = {repr(p.default) for p in params}
        if name in defaults:
            default = defaults[name]
        elif len(own) == 1 and params[0].default is not inspect.Parameter.empty:
            default = params[0].default
        else:
            default = None
        kind_type = params[0].annotation
        if kind_type is inspect.Parameter.empty:
            kind_type = str
        if default is None and not _optional(kind_type):
            kind_type = kind_type | None
        help_text = docs.get(name) or f"the {name} argument of the model constructor."
        if len(kinds) < len(constructors):
            help_text += f" Only for {', '.join(kinds)}."
        options.append(Option(name, kind_type, default, help_text))
    return options


def with_options(*groups: Sequence[Option]) -> Callable[[Callable], Callable]:
    """Add the generated options to a command taking them as ``**options``.

    Typer reads the command's signature, so the options are appended to it.
    """

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
        added = [option.parameter() for group in groups for option in group]
        clash = {p.name for p in own} & {p.name for p in added}
        seen: set[str] = set()
        for p in added:
            if p.name in seen:
                clash.add(p.name)
            seen.add(p.name)
        if clash:
            raise ValueError(f"options {sorted(clash)} are generated twice or declared by hand")
        command.__signature__ = signature.replace(parameters=[*own, *added])
        return command

    return decorate


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` (rather than leaving its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _optional(kind_type: Any) -> bool:
    return type(None) in typing.get_args(kind_type)


def _cli_type(
    kind_type: Any, default: Any
) -> tuple[Any, Callable[[Any], Any] | None, Callable[[Any], str]]:
    """The annotation typer parses, the parser where typer cannot, how the default is shown."""
    inner = [t for t in typing.get_args(kind_type) if t is not type(None)]
    optional = _optional(kind_type) and len(inner) == 1
    base = inner[0] if optional else kind_type
    if base in _PLAIN or typing.get_origin(base) is Literal:
        if not optional or base is bool:
            return base, None, str
        if default is None:
            return base | None, None, str
        # typer takes ``X | None`` but has no syntax for None when the default is not None.
        return str, _none_or(_plain(base)), str
    origin = typing.get_origin(base)
    parse, show = _json, json.dumps
    if origin in (tuple, list, Sequence) or base in (tuple, list):
        items = [t for t in typing.get_args(base) if t is not Ellipsis] or [str]
        if len(set(items)) == 1 and items[0] in _PLAIN:
            parse, show = _items(_plain(items[0])), _show_items
    return str, _none_or(parse) if optional else parse, show


def _metavar(kind_type: Any) -> str:
    """How the help names a type typer does not parse itself, e.g. ``float|none``."""
    inner = [t for t in typing.get_args(kind_type) if t is not type(None)]
    if _optional(kind_type) and len(inner) == 1:
        return _metavar(inner[0]) + "|none"
    if typing.get_origin(kind_type) is Literal:
        return "|".join(str(v) for v in typing.get_args(kind_type))
    if kind_type in _PLAIN:
        return kind_type.__name__
    items = [t for t in typing.get_args(kind_type) if t is not Ellipsis]
    if len(set(items)) == 1 and items[0] in _PLAIN:
        return f"{items[0].__name__},..."
    return "json"


def _plain(base: Any) -> Callable[[Any], Any]:
    """Parse a value of a plain type or Literal, with the error typer would give."""
    choices = typing.get_args(base) if typing.get_origin(base) is Literal else None

    def parse(value: Any) -> Any:
        if choices is not None:
            if value not in choices:
                raise typer.BadParameter(f"{value!r} is not one of {list(choices)}")
            return value
        try:
            return base(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a valid {base.__name__}") from None

    return parse


def _none_or(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``none`` for None, anything else by ``parse``."""

    def none_or(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return parse(value)

    return none_or


def _items(parse: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    """Comma-separated values, e.g. ``32,32``, as a tuple."""

    def items(value: Any) -> tuple:
        if isinstance(value, tuple | list):
            return tuple(value)
        return tuple(parse(v.strip()) for v in value.split(",") if v.strip())

    return items


def _show_items(value: Sequence) -> str:
    return ",".join(str(v) for v in value)


def _json(value: Any) -> Any:
    """A JSON value, for settings of a type the command line has no syntax of its own for."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise typer.BadParameter(f"{value!r} is not JSON") from None
