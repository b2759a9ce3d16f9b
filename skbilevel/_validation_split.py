"""What the estimators share: sample weights, the validation (or trusted) set and predictions from scores."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._warnings import warn


class ValidationSplit(NamedTuple):
    """The training and validation (or trusted) parts of a fit, and the rows of ``X`` they came from."""

    X_train: np.ndarray
    y_train: np.ndarray
    sample_weight_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    #: None for a given ``X_val``: its samples count alike
    sample_weight_val: np.ndarray | None
    train_indices: np.ndarray
    validation_indices: np.ndarray


def split_validation(estimator, X, y, sample_weight, X_val, y_val, *, classes, validation_fraction,
                     random_state, name: str = "validation") -> ValidationSplit:
    """Split ``(X, y)`` into a training part and a validation (or trusted) part.

    With ``X_val, y_val`` given they are validated like ``X`` by
    ``estimator`` (to ``X``'s dtype and number of features; their labels must
    occur in ``classes``; a class missing from ``y_val`` is warned about) and
    all of ``(X, y)`` trains. Otherwise a stratified ``validation_fraction``
    of ``(X, y)``, at least one sample per class, is held out, chosen by
    ``random_state``, and its rows keep their sample weights for the
    validation loss, as a scikit-learn estimator's internal validation split
    does. ``name`` ('validation', 'trusted') words the messages.

    Returns
    -------
    split : ValidationSplit
        The two parts and their rows of ``X`` (no validation rows for a given
        ``X_val``); the caller's ``fit`` stores the rows as fitted attributes.
    """
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together (or neither).")
    if X_val is not None:
        X_v, y_v = _check_given_validation_set(estimator, X_val, y_val, X.dtype, classes, name)
        check_magnitude(X_v, "X_val", *estimator._magnitude_limit(X_v.shape[1]))
        return ValidationSplit(X, y, sample_weight, X_v, y_v, None, np.arange(X.shape[0]), np.arange(0))
    counts = np.unique(y, return_counts=True)[1]
    # a stratified split needs at least one held-out sample per class
    n_val = max(int(np.ceil(validation_fraction * y.size)), classes.size)
    if counts.min() < 2 or y.size - n_val < classes.size:
        raise ValueError(f"cannot hold out a stratified {name} set of {n_val} samples from {y.size} samples "
                         f"with class counts {counts.tolist()}: pass X_val and y_val, or more data.")
    tr, va = train_test_split(np.arange(y.size), test_size=n_val, stratify=y, random_state=random_state)
    if not sample_weight[va].sum() > 0:
        raise ValueError(f"the {name} rows held out of (X, y) all have sample weight 0: pass X_val and y_val.")
    return ValidationSplit(X[tr], y[tr], sample_weight[tr], X[va], y[va], sample_weight[va], tr, va)


def _check_given_validation_set(estimator, X_val, y_val, dtype, classes, name):
    """``X_val, y_val`` validated against what ``estimator`` saw in ``fit`` (``X``'s dtype, its features)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            X_v, y_v = validate_data(estimator, X_val, y_val, accept_sparse="csr", dtype=dtype, reset=False)
        except ValueError as exc:  # scikit-learn's messages name X and y
            raise ValueError(f"X_val, y_val: {exc}") from exc
    for caught_warning in caught:  # e.g. the feature-name check, which also says "X"
        text = str(caught_warning.message)
        warn("X_val" + text[1:] if text.startswith("X ") else text, caught_warning.category)
    unseen = np.setdiff1d(np.unique(y_v), classes)
    if unseen.size:
        raise ValueError(f"y_val has labels {unseen.tolist()} not present in y (absent from the training "
                         f"labels {classes.tolist()}).")
    absent = np.setdiff1d(classes, y_v)
    if absent.size:
        warn(f"{type(estimator).__name__}: the classes {absent.tolist()} of y do not occur in y_val. Nothing "
             f"in the {name} loss rewards predicting them, so the learned hyperparameters may sacrifice them "
             f"(per-sample weights of their training samples are pushed to 0): pass a {name} set holding "
             "every class.", UserWarning)
    return X_v, y_v


def check_magnitude(X, name="X", limit=None, why="whose squares overflow in float64"):
    """Refuse features of magnitude ``>= limit`` (``ValueError`` naming ``name`` and saying ``why``).

    The default ``limit`` is where squares overflow: the lower levels form
    squared row norms and Gram products ``X^T X``, an entry above
    ``sqrt(max_float / n_features)`` may overflow them to inf, and the
    solvers would return NaN coefficients.
    """
    values = X.data if hasattr(X, "data") and not isinstance(X, np.ndarray) else X
    if values.size == 0:
        return
    largest = float(np.max(np.abs(values)))
    if limit is None:
        limit = squares_limit(X.shape[1])
    if largest >= limit:
        raise ValueError(f"{name} has features of magnitude {largest:.3g}, {why} "
                         f"(limit {limit:.3g} for {X.shape[1]} features): scale the features, e.g. with "
                         "sklearn.preprocessing.StandardScaler.")


def squares_limit(n_features):
    """The magnitude from which the squared norm of a row of ``n_features`` entries may overflow."""
    return float(np.sqrt(np.finfo(np.float64).max / max(n_features, 1)))


def check_sample_weight(sample_weight, X):
    """``_check_sample_weight`` with negative weights refused (their lower levels are not convex).

    (scikit-learn's own ``ensure_non_negative`` option is not in every supported release.)
    """
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if np.any(sample_weight < 0):
        raise ValueError("Negative values in data passed to sample_weight: the weighted training problem "
                         "must stay convex.")
    return sample_weight


def classes_from_scores(classes, scores):
    """Predicted labels: ``classes[1]`` where a binary score is positive, else the arg-max column."""
    index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
    return classes[index]
