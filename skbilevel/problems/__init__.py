"""Upper-level losses and lower-level models: what a bilevel method optimises."""

from .base import CAPABILITIES, BilevelProblem, LowerLevel, UpperLevel, require
from .losses import VALIDATION_LOSSES, LinearValidationLoss
from .quadratic import Example22Upper, QuadraticLowerLevel, TargetUpper, example_2_2, quadratic_bilevel
from .svm import WeightedSquaredHingeSVM

__all__ = [
    "CAPABILITIES", "BilevelProblem", "Example22Upper", "LinearValidationLoss", "LowerLevel",
    "QuadraticLowerLevel", "TargetUpper", "UpperLevel", "VALIDATION_LOSSES", "WeightedSquaredHingeSVM",
    "example_2_2", "quadratic_bilevel", "require",
]
