"""Recipe configuration: dataclass fields with help, bounds and choices; TOML files; `--set`.

Every recipe's config is a dataclass whose fields carry their meaning in
`metadata`; `option(default, help, ...)` declares one, optionally with
`choices` (for a list field: allowed items), a lower bound `min` and an
upper bound `max` (both inclusive). A field typed `X | None` is optional:
`--set key=none` clears it. Values come from the defaults, then
`--config FILE.toml`, then each `--set key=value`, in that order. Unknown
keys, values of the wrong type, values out of range or outside the
choices, and failed cross-field checks (a config class's `validate()`
method) are `ConfigError`s that name the key and what is allowed, raised
before a recipe creates anything.
"""

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path


class ConfigError(ValueError):
    """A configuration key or value is invalid."""


def option(default, help, *, choices=None, min=None, max=None):
    """A config field with a default, a one-line meaning and optional
    `choices` and inclusive bounds `min`/`max`."""
    metadata = {"help": help, "choices": choices, "min": min, "max": max}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _optional(kind):
    """`X` for a field typed `X | None`, else None."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0]
    return None


def _type_name(kind):
    inner = _optional(kind)
    if inner is not None:
        return f"{_type_name(inner)} or none"
    return getattr(kind, "__name__", str(kind)) if typing.get_origin(kind) is None else str(kind)


def describe(config_cls):
    """One line per field: `name (type, default): meaning [constraints]`."""
    hints = typing.get_type_hints(config_cls)
    lines = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        limits = _limits_text(f.metadata)
        lines.append(
            f"  {f.name} ({_type_name(hints[f.name])}, default {default!r}): "
            f"{f.metadata.get('help', '')}{limits}"
        )
    return "\n".join(lines)


def _limits_text(metadata):
    parts = []
    if metadata.get("choices"):
        parts.append("one of " + ", ".join(map(str, metadata["choices"])))
    if metadata.get("min") is not None:
        parts.append(f">= {metadata['min']}")
    if metadata.get("max") is not None:
        parts.append(f"<= {metadata['max']}")
    return f" [{'; '.join(parts)}]" if parts else ""


def _coerce(key, value, kind):
    inner = _optional(kind)
    if inner is not None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        try:
            return _coerce(key, value, inner)
        except ConfigError:
            raise ConfigError(f"Config key '{key}' expects {_type_name(kind)}, got {value!r}.") from None
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    elif origin in (int, float, str):
        if isinstance(value, str) and origin is not str:
            try:
                return origin(value)
            except ValueError:
                pass
        elif isinstance(value, bool):
            pass
        elif isinstance(value, (int, float, str)) and (origin is not int or float(value).is_integer()):
            return origin(value)
    elif origin in (list, tuple):
        if isinstance(value, str):
            value = _parse_list(value)
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(kind)[:1] or (str,)
            return [_coerce(key, v, item) for v in value]
    raise ConfigError(f"Config key '{key}' expects {_type_name(kind)}, got {value!r}.")


def _parse_list(text):
    """A TOML array (`[1, 2]`, `["a"]`) or comma-separated items (`a,b`,
    `1, 2`, `[a, b]`: the brackets a shell user types without TOML's quotes)."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            text = text[1:-1]
    return [item.strip().strip("'\"") for item in text.split(",") if item.strip()]


def _check_limits(key, value, metadata):
    values = value if isinstance(value, list) else [value]
    choices = metadata.get("choices")
    for v in values:
        if v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"Config key '{key}' must be a finite number, got {v!r}.")
        if choices is not None and v not in choices:
            raise ConfigError(f"Config key '{key}' got {v!r}; choose from {', '.join(map(str, choices))}.")
        low, high = metadata.get("min"), metadata.get("max")
        if (low is not None and v < low) or (high is not None and v > high):
            bounds = " and ".join(
                text
                for text in (
                    f">= {low}" if low is not None else "",
                    f"<= {high}" if high is not None else "",
                )
                if text
            )
            raise ConfigError(f"Config key '{key}' must be {bounds}, got {v!r}.")


def resolve(config_cls, files=(), sets=()):
    """Build and validate a config from defaults, TOML files and `key=value` strings."""
    hints = typing.get_type_hints(config_cls)
    valid = [f.name for f in dataclasses.fields(config_cls)]
    values = {}

    def put(key, value, where):
        if key not in hints:
            raise ConfigError(f"Unknown config key '{key}' ({where}). Valid keys: {', '.join(valid)}.")
        values[key] = _coerce(key, value, hints[key])

    for path in files:
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {path}{_installed_hint(path)}") from None
        except IsADirectoryError:
            raise ConfigError(f"Config file {path} is a directory; give a .toml file.") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"Config file {path} is not valid TOML: {e}") from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"Config file {path} is not UTF-8 text (TOML files are); give a .toml file, or save this one as UTF-8."
            ) from None
        for key, value in table.items():
            put(key, value, f"in {path}")
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got '{item}'.")
        put(key.strip(), value.strip(), "from --set")
    config = config_cls(**values)
    validate(config)
    return config


def validate(config):
    """Check every field's bounds and choices, then the config's own
    cross-field `validate()` if it has one."""
    for f in dataclasses.fields(config):
        _check_limits(f.name, getattr(config, f.name), f.metadata)
    check = getattr(config, "validate", None)
    if check is not None:
        check()


def to_dict(config):
    return dataclasses.asdict(config)


def _installed_hint(path):
    # `--config recipes/x.toml` from the README works in a clone's root;
    # elsewhere the configs are those installed with kerazoo.
    from kerazoo.zoo import installed_root

    shipped = installed_root() / "recipes" / Path(path).name
    if shipped.is_file() and not Path(path).is_absolute():
        return f" (relative to {Path.cwd()}); kerazoo's own is {shipped}"
    return ""
