"""Warnings that point at the user's line, not at the library's internals."""

from __future__ import annotations

import os
import sys
import warnings

import joblib
import scipy
import sklearn

# joblib too: scikit-learn runs the fits of cross_val_score and GridSearchCV through joblib.Parallel;
# scipy: the searches' scores are taken inside scipy.optimize's calls of the objective
_INTERNAL = tuple(os.path.dirname(m.__file__) + os.sep for m in (sys.modules[__package__], sklearn, joblib, scipy))


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` at the first frame outside skbilevel and scikit-learn.

    A fixed ``stacklevel`` cannot do it: ``fit`` is wrapped by scikit-learn's
    ``_fit_context``, estimators run inside ``cross_val_score`` or a
    ``Pipeline``, and comprehensions are frames of their own before Python 3.12.
    """
    frame, level = sys._getframe(1), 2  # stacklevel=2 is warn's caller
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
