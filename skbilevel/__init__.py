"""skbilevel: scikit-learn estimators that learn hyperparameters by bilevel optimisation."""

from ._result import BilevelResult
from .cleaning import HyperCleaningClassifier
from .preprocessing import FeatureScaler
from .search import BilevelSearchCV
from .svm import BilevelSVC

__version__ = "0.1.0.dev0"

__all__ = ["BilevelResult", "BilevelSVC", "BilevelSearchCV", "FeatureScaler", "HyperCleaningClassifier",
           "__version__"]
