"""Settings of the sweep service: the defaults of ``settings.yaml``, read through ``dask.config``.

The defaults are registered with ``dask.config.update_defaults`` when this module is imported;
a user's Dask configuration (files, ``DASK_EPMSWEEP__SWEEP__*`` variables, ``dask.config.set``)
takes precedence, as for Dask's own settings.
"""

from __future__ import annotations

from pathlib import Path

import dask.config
import yaml
from dask.utils import parse_bytes, parse_timedelta
from epmsweep.engine import ParameterError

dask.config.update_defaults(yaml.safe_load((Path(__file__).parent / "settings.yaml").read_text()))


def _key(name: str) -> str:
    return f"epmsweep.sweep.{name}"


def how_to_raise(name: str, example) -> str:
    """How a user raises the limit ``name``: the config key and its environment variable."""
    env = "DASK_" + _key(name).upper().replace(".", "__").replace("-", "_")
    return f"raise {_key(name)} (e.g. {env}={example}, or dask.config.set) to allow it"


def setting_int(name: str) -> int:
    value = dask.config.get(_key(name))
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise ParameterError(_key(name), f"must be a number, got {value!r}") from None


def setting_bytes(name: str) -> int:
    value = dask.config.get(_key(name))
    try:
        return parse_bytes(value) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ParameterError(_key(name), f"must be a size such as '4 GiB', got {value!r}") from None


def setting_seconds(name: str) -> float | None:
    """A duration setting in seconds; None when the setting is null."""
    value = dask.config.get(_key(name))
    if value is None:
        return None
    try:
        seconds = parse_timedelta(value, default="s")
    except (TypeError, ValueError, KeyError):
        seconds = None
    if seconds is None or seconds <= 0:
        raise ParameterError(_key(name), f"must be a positive duration such as '60 s', got {value!r}")
    return float(seconds)
