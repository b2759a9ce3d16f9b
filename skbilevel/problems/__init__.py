"""Upper-level losses and lower-level models: what a bilevel method optimises."""

from .base import CAPABILITIES, BilevelProblem, LowerLevel, UpperLevel, require
from .losses import VALIDATION_LOSSES, LinearValidationLoss
from .quadratic import Example22Upper, QuadraticLowerLevel, example_2_2
from .svm import WeightedSquaredHingeSVM

__all__ = [
    "CAPABILITIES", "BilevelProblem", "Example22Upper", "LinearValidationLoss", "LowerLevel",
    "QuadraticLowerLevel", "UpperLevel", "VALIDATION_LOSSES", "WeightedSquaredHingeSVM",
    "example_2_2", "require",
]
