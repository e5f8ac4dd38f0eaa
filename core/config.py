"""The one config engine: TOML files, nested mappings and overrides -> typed dataclasses.

The hub (``edge.config``) and the host (``train.config``) describe their configuration as
dataclasses with a default for every field, and call this engine to read files, layer them,
apply overrides and check every value against its field's type. They keep only their own
domain rules (a ``validate()`` per config, using the ``require_*`` helpers here). The rules
are the same for every config:

- Every key is checked against the field it names. A bad key or value raises
  :class:`~core.errors.ConfigError` whose ``key`` is the dotted path (``decisions.ema_alpha``,
  ``ble.devices[1]``); an unknown key also names the closest known one (did you mean).
- ``bool`` takes only true/false; ``int`` refuses booleans and floats; ``float`` takes an int or
  a float and refuses inf and nan, everywhere, free-form (``Any``) values included: a
  non-finite number in a config is always a typo or an overflow, never a setting.
- A union tries its arms in order and the first arm that accepts the value wins (``None``
  only through an explicit ``None`` arm). ``Literal`` takes one of its values; a ``Path``
  field a non-empty string or path; ``list``/``tuple`` an array (a fixed-length tuple checks
  the length); ``dict[K, V]`` a table; a nested dataclass a table, merged key by key.
- Layering (files over defaults, a profile over another): sections (dataclasses) merge key by
  key, every other value, a free-form table included, is replaced whole, so a later layer can
  drop an entry.
- Overrides (``{"serial.port": "/dev/ttyACM0"}``, or ``section.key=value`` text through
  :func:`parse_override`) set exactly the entry they name, inside free-form tables too; a
  single value for a list field is a one-item list; ``None`` means "not given".

Why hand-written rather than pydantic or msgspec: the hub is a Pi-class machine that starts
``edge-daemon`` under systemd, where install size and import time count, and this engine
needs only the standard library (``tomllib`` only once a file or an override is read). Both
libraries bring a compiled extension per platform for a few dozen fields; what we need
beyond plain type checks (dotted keys, did-you-mean, one finite-number policy, layering
profiles) we would have to write around them anyway.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

from core.errors import ConfigError

__all__ = [
    "apply_overrides",
    "build",
    "coerce",
    "dump_toml",
    "load",
    "merge",
    "parse_override",
    "parse_value",
    "read_toml",
    "require_at_least",
    "require_choice",
    "require_non_negative",
    "require_positive",
    "to_dict",
]

T = TypeVar("T")

# difflib's own default: close enough that "window" suggests "window_s", "epoch" "epochs"
SUGGEST_CUTOFF = 0.6


# -- reading ------------------------------------------------------------------------------
def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML file at ``path`` as nested dicts; any failure is a ConfigError (key "config")."""
    import tomllib  # here: a hub started without a config file never pays for it

    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"file {p} does not exist", key="config") from None
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror}", key="config") from None
    # tomllib decodes the bytes itself (UnicodeDecodeError) and recurses per nesting level
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{p} is not valid TOML: {e}", key="config") from None


def load(cls: type[T], *paths: str | os.PathLike[str]) -> T:
    """``cls()``'s defaults with each TOML file layered on in order (not ``validate()``-d)."""
    obj = cls()
    for p in paths:
        obj = merge(obj, read_toml(p))
    return obj


def build(cls: type[T], data: Mapping[str, Any], key: str = "") -> T:
    """A ``cls`` from nested mappings; missing keys keep their defaults."""
    return merge(cls(), data, key)


def merge(obj: T, data: Mapping[str, Any], key: str = "") -> T:
    """``obj`` with the layer ``data`` applied: sections key by key, other values whole."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a table, got {_kind(data)}", key=key or "config")
    hints = _fields(type(obj))
    changes: dict[str, Any] = {}
    for name, value in data.items():
        here = _join(key, name)
        if name not in hints:
            raise _unknown(name, hints, here)
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[name] = merge(current, value, here)
        else:
            changes[name] = coerce(value, hints[name], here)
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


# -- overrides ----------------------------------------------------------------------------
def apply_overrides(obj: T, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> T:
    """``obj`` with each ``dotted.key -> value`` set, in order; ``None`` values are skipped.

    ``None`` means "not given", so an argparse namespace's options can be passed as they are.
    """
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    for dotted, value in items:
        if value is None:
            continue
        dotted = str(dotted)
        parts = dotted.split(".")
        if not all(parts):
            raise ConfigError("empty part in a dotted key", key=dotted)
        obj = _set_field(obj, parts, value, dotted, "")
    return obj


def parse_override(item: str) -> tuple[str, Any]:
    """``"section.key=value"`` (a command-line override) -> ``(dotted key, value)``.

    The value is read by :func:`parse_value`; its type is checked when it is applied.
    """
    if "=" not in item:
        raise ConfigError("expected key=value", key=item)
    dotted, text = item.split("=", 1)
    dotted = dotted.strip()
    if not all(dotted.split(".")):
        raise ConfigError("empty part in a dotted key", key=dotted)
    return dotted, parse_value(text.strip())


def parse_value(text: str) -> Any:
    """A TOML literal (``3``, ``0.5``, ``true``, ``["a", "b"]``, ``"s"``), else a bare string.

    A bare comma list ``a,b`` becomes a list of strings, so ``--set
    student.variants=alone,kd_ca`` works without shell-quoting TOML brackets.
    """
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text:
        return [p.strip() for p in text.split(",") if p.strip()]
    return text


def _set_field(obj: Any, parts: list[str], value: Any, dotted: str, prefix: str) -> Any:
    """Dataclass ``obj`` with the field ``parts[0]`` (and below it ``parts[1:]``) set."""
    name = parts[0]
    hints = _fields(type(obj))
    if name not in hints:
        raise _unknown(name, hints, dotted)
    here = _join(prefix, name)
    new = _set_value(getattr(obj, name), hints[name], parts[1:], value, dotted, here)
    return dataclasses.replace(obj, **{name: new})


def _set_value(current: Any, tp: Any, parts: list[str], value: Any, dotted: str,
               here: str) -> Any:
    """``current`` (of type ``tp``, at ``here``) with ``value`` set at the path ``parts``."""
    if current is None and parts:  # an optional section not set yet: start from its defaults
        arm = next((a for a in _arms(tp) if _is_dataclass_type(a)), None)
        current = arm() if arm is not None else None
    if not parts:
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            return merge(current, value, here)
        if _is_list_type(tp) and not isinstance(value, list | tuple):
            value = [value]  # "--set data.holdout_subjects=S17" means a one-item list
        return coerce(value, tp, here)
    if dataclasses.is_dataclass(current):
        return _set_field(current, parts, value, dotted, here)
    free = tp is Any or typing.get_origin(tp) is dict or tp is dict
    if free and (current is None or isinstance(current, Mapping)):
        k_tp, v_tp = typing.get_args(tp) or (Any, Any)
        entry = _join(here, parts[0])
        k = coerce(parts[0], k_tp, entry)
        table = dict(current or {})
        table[k] = _set_value(table.get(k), v_tp, parts[1:], value, dotted, entry)
        return table
    raise ConfigError(f"{here} is not a table", key=dotted)


# -- types --------------------------------------------------------------------------------
def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the annotation ``tp`` (ints widen to float); else ConfigError."""
    if tp is Any or tp is object:
        _require_finite_inside(value, key)
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):  # in order: the first arm that accepts it wins
            try:
                return coerce(value, arm, key)
            except ConfigError:
                continue
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", key=key)
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"expected nothing, got {value!r}", key=key)
    if origin is Literal:
        for choice in typing.get_args(tp):
            if value == choice and type(value) is type(choice):  # True is not 1 here
                return choice
        raise ConfigError(f"{value!r} is not one of "
                          f"{', '.join(repr(c) for c in typing.get_args(tp))}", key=key)
    if _is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {_kind(value)}", key=key)
        return build(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true/false, got {value!r}", key=key)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", key=key)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", key=key)
        return _finite(value, key)
    if tp is str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", key=key)
        return value
    if isinstance(tp, type) and issubclass(tp, PurePath):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"expected a path, got {value!r}", key=key)
        return tp(value)
    if origin is list or tp is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {_kind(value)}", key=key)
        (item,) = typing.get_args(tp) or (Any,)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {_kind(value)}", key=key)
        args = typing.get_args(tp)
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            item = args[0] if args else Any
            return tuple(coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"expected {len(args)} items, got {len(value)}", key=key)
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"expected a table, got {_kind(value)}", key=key)
        k_tp, v_tp = typing.get_args(tp) or (Any, Any)
        return {coerce(k, k_tp, key): coerce(v, v_tp, _join(key, k)) for k, v in value.items()}
    # a schema bug, not bad input: the config's own author must fix the annotation
    raise TypeError(f"config field {key!r}: the engine does not handle {_type_name(tp)}")


def _finite(value: float, key: str) -> float:
    try:
        out = float(value)
    except OverflowError:  # an int beyond float range
        out = math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{value!r} is not a finite number", key=key)
    return out


def _require_finite_inside(value: Any, key: str) -> None:
    """Refuse inf/nan anywhere in a free-form value (iterative: depth costs no stack)."""
    stack = [(value, key)]
    while stack:
        v, k = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{v!r} is not a finite number", key=k)
        if isinstance(v, Mapping):
            stack.extend((x, _join(k, n)) for n, x in v.items())
        elif isinstance(v, list | tuple):
            stack.extend((x, f"{k}[{i}]") for i, x in enumerate(v))


# -- domain checks the configs' validate() methods share ----------------------------------
def require_choice(value: Any, choices: Iterable[Any], key: str) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{value!r} is not one of {', '.join(map(str, choices))}", key=key)


def require_positive(value: float, key: str) -> None:
    """ConfigError unless ``value > 0`` (nan fails too)."""
    if not value > 0:
        raise ConfigError(f"{value!r} must be > 0", key=key)


def require_at_least(value: float, low: float, key: str) -> None:
    """ConfigError unless ``value >= low`` (nan fails too)."""
    if not value >= low:
        raise ConfigError(f"{value!r} must be >= {low}", key=key)


def require_non_negative(value: float, key: str) -> None:
    """ConfigError unless ``value >= 0`` (nan fails too)."""
    require_at_least(value, 0, key)


# -- writing ------------------------------------------------------------------------------
def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as nested dicts (what :func:`build` reads back)."""
    return dataclasses.asdict(obj)


def dump_toml(obj: Any, *, header: str = "") -> str:
    """A config dataclass (or nested mapping) as TOML text that :func:`build` reads back.

    ``header`` becomes a comment line at the top; ``None`` values are left out (TOML has no
    null), so a field that may be ``None`` should default to ``None``. (``tomllib`` only
    reads TOML.)
    """
    data = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    lines = [f"# {header}", ""] if header else []
    _toml_table(data, "", lines)
    return "\n".join(lines).rstrip() + "\n"


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_scalar(k)


def _toml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):  # the engine never accepts one, so it never writes one
            raise ValueError(f"cannot write the non-finite number {v!r} to a config")
        return repr(v)
    if isinstance(v, PurePath):
        v = str(v)
    if isinstance(v, str):
        escaped = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_scalar(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(d: Mapping[str, Any], name: str, lines: list[str]) -> None:
    # TOML has no null: a None is left out, so it reads back as the field's default (None)
    scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping) and v is not None}
    tables = {k: v for k, v in d.items() if isinstance(v, Mapping)}
    if name and (scalars or not tables):
        lines.append(f"[{name}]")
    for k, v in scalars.items():
        lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    if scalars or (name and not tables):
        lines.append("")
    for k, v in tables.items():
        _toml_table(v, f"{name}.{_toml_key(k)}" if name else _toml_key(k), lines)


# -- helpers ------------------------------------------------------------------------------
_FIELDS: dict[type, dict[str, Any]] = {}  # resolving annotations is the costly part


def _fields(cls: type) -> dict[str, Any]:
    """Resolved annotations of the fields a config dataclass is constructed from."""
    out = _FIELDS.get(cls)
    if out is None:
        hints = typing.get_type_hints(cls)
        out = _FIELDS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    return out


def _unknown(name: Any, known: Iterable[str], key: str) -> ConfigError:
    import difflib  # only on this error path

    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=SUGGEST_CUTOFF)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown key {str(name)!r}{hint} (known: {', '.join(known)})", key=key)


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _arms(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _is_list_type(tp: Any) -> bool:
    return tp is list or typing.get_origin(tp) is list


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is None and hasattr(tp, "__name__"):
        return str(tp.__name__)
    return str(tp).replace("typing.", "")
