"""skbilevel: scikit-learn estimators that learn hyperparameters by bilevel optimisation."""

from ._result import BilevelResult
from .svm import BilevelSVC

__version__ = "0.1.0.dev0"

__all__ = ["BilevelResult", "BilevelSVC", "__version__"]
