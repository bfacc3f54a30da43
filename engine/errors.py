"""Exceptions raised by the engine."""


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


class NumericalInstabilityError(FloatingPointError):
    """The stress field became non-finite during a run."""
