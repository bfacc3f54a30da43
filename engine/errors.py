"""Exceptions raised by the engine, and the checks of numbers that raise them."""

import math


class ParameterError(ValueError):
    """An impossible or malformed input; names the field, the value and what is allowed.

    Attributes
    ----------
    field : str
        Dotted name of the offending input (e.g. ``"tau_res"``, ``"protocol.shear_rate"``).
    reason : str
        What is allowed, in words.
    """

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class InputChangedError(RuntimeError):
    """An input file's content is not the one a run was planned with (its digest differs): the run
    is not computed, and the sweep must be planned again."""


class NumericalInstabilityError(FloatingPointError):
    """The stress field became non-finite during a run."""


class EndlessAvalancheError(RuntimeError):
    """An avalanche of a quasistatic run did not end within the protocol's ``max_duration``."""


def check_positive(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise ParameterError unless it is finite and > 0."""
    return _check_number(name, value, positive=True)


def check_non_negative(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise ParameterError unless it is finite and >= 0."""
    return _check_number(name, value, positive=False)


def _check_number(name: str, value: float, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ParameterError(name, f"must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)
