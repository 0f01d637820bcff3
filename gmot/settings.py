"""Typed settings: frozen dataclasses whose fields carry their command-line flag.

A setting that crosses modules (a loss option, a model size) is declared once, as a field of a
frozen dataclass made with :func:`setting`: its default, its help text and its flag live there.
:func:`add_flags` turns the dataclass into argparse flags and :func:`from_flags` builds the
dataclass back from the parsed namespace, so nothing between the flag and the code that uses the
value is written by hand. Fields a flag cannot set (derived from data, such as the vocabulary
size) say so with ``flag=None`` and a ``derived`` reason; :func:`flag_table` lists both kinds
(the test suite checks that every field has a flag with help or a reason).

This module is the lowest layer: it imports only the standard library and :mod:`gmot.cli`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from gmot.cli import str2bool

__all__ = ["FlagSpec", "add_flags", "flag_table", "from_flags", "setting"]

_NO_FLAG_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """How one dataclass field appears on the command line.

    Attributes:
        field: the field's name (``"a.b"`` for a field of a nested settings dataclass).
        flag: the option string (``"--gmot-alpha"``), or ``None`` when no flag sets the field.
        help: the help text (also the field's documentation).
        derived: for ``flag=None``: where the value comes from instead.
    """

    field: str
    flag: str | None
    help: str
    derived: str | None


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    type: Callable[[str], Any] | None = None,
    flag_default: Any = _NO_FLAG_DEFAULT,
    from_flag: Callable[[Any], Any] | None = None,
    derived: str | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its flag.

    Args:
        default: the field's default (also the flag's, unless ``flag_default`` is given).
        help: what the setting means, with units; the flag's help text.
        flag: the option string, e.g. ``"--gmot-alpha"``; ``None``: no flag (give ``derived``).
        choices: allowed flag values.
        type: argparse ``type=`` (default: the type of the default; ``bool`` uses
            :func:`gmot.cli.str2bool`).
        flag_default: the flag's default when its command-line form differs from the field's
            (e.g. ``"none"`` for ``None``); ``from_flag`` converts it.
        from_flag: converts the parsed flag value to the field value.
        derived: for ``flag=None``: where the value comes from instead (e.g. ``"tokens.txt"``).
        default_factory: for mutable or nested defaults (a nested settings dataclass).
    """
    if flag is None and not derived and default_factory is dataclasses.MISSING:
        raise ValueError("a setting without a flag needs derived='where the value comes from'")
    meta = {
        "flag": flag,
        "help": help,
        "choices": choices,
        "type": type,
        "flag_default": flag_default,
        "from_flag": from_flag,
        "derived": derived,
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _nested(f: dataclasses.Field) -> type | None:
    """The settings dataclass of a nested field (its default_factory), else None."""
    fac = f.default_factory
    if fac is not dataclasses.MISSING and dataclasses.is_dataclass(fac):
        return fac  # type: ignore[return-value]
    return None


def flag_table(cls: type) -> list[FlagSpec]:
    """Every field of the settings dataclass ``cls`` (nested ones flattened) and its flag."""
    return [spec for _, spec in _walk(cls)]


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def add_flags(group: Any, cls: type, include: Callable[[str], bool] | None = None) -> None:
    """Add one flag per field of the settings dataclass ``cls`` to ``group`` (a parser or group).

    ``include(name)`` selects fields by name (``"a.b"`` for nested ones; default: all), so one
    dataclass can spread its flags over several help groups.
    """
    for f, spec in _walk(cls):
        if spec.flag is None or (include is not None and not include(spec.field)):
            continue
        m = f.metadata
        default = f.default if m["flag_default"] is _NO_FLAG_DEFAULT else m["flag_default"]
        typ = m["type"] or (str2bool if isinstance(default, bool) else type(default))
        kw: dict[str, Any] = {"type": typ, "default": default, "help": spec.help}
        if m["choices"] is not None:
            kw["choices"] = list(m["choices"])
        group.add_argument(spec.flag, **kw)


def _walk(cls: type, prefix: str = "") -> list[tuple[dataclasses.Field, FlagSpec]]:
    out = []
    for f in dataclasses.fields(cls):
        sub = _nested(f)
        if sub is not None:
            out += _walk(sub, f"{prefix}{f.name}.")
        else:
            m = f.metadata
            spec = FlagSpec(prefix + f.name, m.get("flag"), m.get("help", ""), m.get("derived"))
            out.append((f, spec))
    return out


def from_flags(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """Build the settings dataclass ``cls`` from parsed flags.

    ``values`` give the fields without a flag (and override flagged ones); nested settings are
    built from their own flags.
    """
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            kw[f.name] = values[f.name]
            continue
        sub = _nested(f)
        if sub is not None:
            kw[f.name] = from_flags(sub, args)
            continue
        m = f.metadata
        if m.get("flag") is None:
            continue
        v = getattr(args, _dest(m["flag"]))
        kw[f.name] = m["from_flag"](v) if m["from_flag"] is not None else v
    return cls(**kw)
