"""Recipe configuration: dataclass fields with help, TOML files, `--set`.

Every recipe's config is a dataclass whose fields carry their meaning in
`metadata["help"]`; `option(default, help)` declares one. Values come from
the defaults, then `--config FILE.toml`, then each `--set key=value`, in that
order. Unknown keys and values of the wrong type are errors that name the
valid keys or the expected type.
"""

import dataclasses
import tomllib
import typing


class ConfigError(ValueError):
    """A configuration key or value is invalid."""


def option(default, help):
    """A config field with a default and a one-line meaning."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def describe(config_cls):
    """One line per field: `name (type, default): meaning`."""
    hints = typing.get_type_hints(config_cls)
    lines = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = getattr(hints[f.name], "__name__", str(hints[f.name]))
        lines.append(f"  {f.name} ({kind}, default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def _coerce(key, value, kind):
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
        elif isinstance(value, (int, float, str)) and (
            origin is not int or float(value).is_integer()
        ):
            return origin(value)
    elif origin in (list, tuple):
        if isinstance(value, str):
            try:
                value = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:
                pass
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(kind)[:1] or (str,)
            return [_coerce(key, v, item) for v in value]
    raise ConfigError(
        f"Config key '{key}' expects {getattr(kind, '__name__', kind)}, got {value!r}."
    )


def resolve(config_cls, files=(), sets=()):
    """Build a config from defaults, TOML files and `key=value` strings."""
    hints = typing.get_type_hints(config_cls)
    valid = [f.name for f in dataclasses.fields(config_cls)]
    values = {}

    def put(key, value, where):
        if key not in hints:
            raise ConfigError(
                f"Unknown config key '{key}' ({where}). Valid keys: {', '.join(valid)}."
            )
        values[key] = _coerce(key, value, hints[key])

    for path in files:
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"Config file {path} is not valid TOML: {e}") from None
        for key, value in table.items():
            put(key, value, f"in {path}")
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got '{item}'.")
        put(key.strip(), value.strip(), "from --set")
    return config_cls(**values)


def to_dict(config):
    return dataclasses.asdict(config)
