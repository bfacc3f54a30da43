"""Calibration: fit model parameters to reference curves, as a resumable study run on the sweep service.

``calibrate(path, client=...)`` runs (or resumes) the study of a calibration file (``spec``) and
returns a ``Calibration`` (best parameters with uncertainties, history, figures).
"""

from .objective import chi_square, model_curve, objective_terms, reference_from_groups, weighted_objective
from .reference import OBSERVABLES, Curve, ReferenceError, load_curve, reference_dataset
from .results import UNCERTAINTY_METHOD, Calibration
from .spec import CalibrationSpec, Parameter, parse_calibration
from .study import calibrate

__all__ = [
    "OBSERVABLES",
    "UNCERTAINTY_METHOD",
    "Calibration",
    "CalibrationSpec",
    "Curve",
    "Parameter",
    "ReferenceError",
    "calibrate",
    "chi_square",
    "load_curve",
    "model_curve",
    "objective_terms",
    "parse_calibration",
    "reference_dataset",
    "reference_from_groups",
    "weighted_objective",
]
