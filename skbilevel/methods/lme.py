"""The Lagrange multiplier expressions, kept importable here: they live in :mod:`skbilevel.problems.lme`.

An LME belongs to the constraints of a lower level (the SVM's
:meth:`~skbilevel.problems.WeightedSquaredHingeSVM.default_lme`), so the
classes are defined next to the problems; methods and older code import them
from here as well.
"""

from ..problems.lme import BoxLME, EqualityLME, IdentityBlockLME, MatrixLME, PseudoInverseLME, SimplexLME

__all__ = ["BoxLME", "EqualityLME", "IdentityBlockLME", "MatrixLME", "PseudoInverseLME", "SimplexLME"]
