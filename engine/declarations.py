"""Declared types and bounds of parameter fields, read by the engine's checks and by sweep-file validation.

A field is declared once, on its dataclass, with ``declared(default, gt=..., ge=..., le=...,
choices=...)``; its type is the field's type hint (``int``, ``float``, ``bool``, ``str``,
``float | None``, ``tuple[float, ...]``). ``check_declared`` (called by ``__post_init__``) and
``check_value`` (called by the sweep service for each value of a sweep file) apply the same
declaration, so the rules are never written twice. Rules that tie several fields together stay in
the ``__post_init__`` of their class.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import MISSING, dataclass
from types import NoneType, UnionType

import numpy as np

from .errors import ParameterError


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


@dataclass(frozen=True)
class Bounds:
    """Allowed values of a number (or of each element of a tuple of numbers), or of a string."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    choices: tuple = ()
    note: str = ""  # why the bound (e.g. "(memory)")

    def describe(self) -> str:
        parts = [f"{op} {_number(v)}" for op, v in ((">", self.gt), (">=", self.ge), ("<=", self.le)) if v is not None]
        return " and ".join(parts) + (f" {self.note}" if self.note else "")

    def holds(self, v: float) -> bool:
        return (
            (self.gt is None or v > self.gt) and (self.ge is None or v >= self.ge) and (self.le is None or v <= self.le)
        )


def declared(default=MISSING, *, default_factory=MISSING, gt=None, ge=None, le=None, choices=(), note="", **kw):
    """A dataclass field with declared bounds (``gt`` / ``ge`` / ``le`` for numbers, ``choices`` for strings)."""
    bounds = Bounds(gt, ge, le, tuple(choices), note)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"bounds": bounds}, **kw)


@dataclass(frozen=True)
class FieldDecl:
    """A field as the checks see it: name, base type, optional (None allowed), tuple of values, bounds."""

    name: str
    base: type
    optional: bool
    sequence: bool
    bounds: Bounds
    required: bool

    @property
    def numeric(self) -> bool:
        return self.base in (int, float) and not self.sequence

    @property
    def type_name(self) -> str:
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        return names.get(self.base, self.base.__name__)


def _resolve(hint) -> tuple[type, bool, bool]:
    optional = False
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


@functools.cache
def fields_of(cls) -> dict[str, FieldDecl]:
    """The declarations of every field of dataclass ``cls``, by name (declaration order)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        base, optional, sequence = _resolve(hints[f.name])
        required = f.default is MISSING and f.default_factory is MISSING
        out[f.name] = FieldDecl(f.name, base, optional, sequence, f.metadata.get("bounds", Bounds()), required)
    return out


def _scalar(name: str, decl: FieldDecl, value):
    b = decl.bounds
    if decl.base is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(name, f"must be true or false, got {value!r}")
        return bool(value)
    if decl.base is str:
        if not isinstance(value, str) or (b.choices and value not in b.choices):
            allowed = f"one of {b.choices}" if b.choices else "a string"
            raise ParameterError(name, f"must be {allowed}, got {value!r}")
        return value
    if decl.base is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ParameterError(name, f"must be an integer {b.describe()}".rstrip() + f", got {value!r}")
        value = int(value)
        if not b.holds(value):
            raise ParameterError(name, f"must be an integer {b.describe()}, got {value!r}")
        return value
    if decl.base is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if not ok or not math.isfinite(value) or not b.holds(value):
            raise ParameterError(name, f"must be a finite number {b.describe()}".rstrip() + f", got {value!r}")
        return float(value)
    if not isinstance(value, decl.base):
        raise ParameterError(name, f"must be a {decl.base.__name__}")
    return value


def check_value(name: str, decl: FieldDecl, value):
    """``value`` converted to the declared type (int, float, tuple of floats...), or ParameterError
    naming ``name`` (``name[i]`` for an element of a tuple)."""
    if value is None and decl.optional:
        return None
    if decl.sequence:
        if not isinstance(value, (tuple, list, np.ndarray)):
            value = [value]
        return tuple(_scalar(f"{name}[{i}]", decl, v) for i, v in enumerate(value))
    return _scalar(name, decl, value)


def check_declared(obj, prefix: str = "") -> None:
    """Check every declared field of dataclass instance ``obj`` and store its converted value
    (frozen dataclasses too); errors name the field as ``prefix + name``."""
    for name, decl in fields_of(type(obj)).items():
        object.__setattr__(obj, name, check_value(prefix + name, decl, getattr(obj, name)))
