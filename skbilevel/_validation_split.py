"""What the estimators share: sample weights, the validation (or trusted) set and predictions from scores."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._warnings import warn


def split_validation(estimator, X, y, sample_weight, X_val, y_val, *, name: str = "validation"):
    """Return ``(X_tr, y_tr, s_tr, X_v, y_v, s_v)``; set ``train_indices_``, ``validation_indices_``.

    With ``X_val, y_val`` given they are validated like ``X``, to its dtype (their labels must
    occur in ``estimator.classes_``; a class of ``y`` missing from ``y_val`` is
    warned about) and all of ``(X, y)`` trains. Otherwise a
    stratified ``estimator.validation_fraction`` of ``(X, y)``, at least one
    sample per class, is held out, chosen by ``estimator.random_state``, and
    its rows keep their sample weights ``s_v`` for the validation loss, as a
    scikit-learn estimator's internal validation split does (``s_v`` is None
    for a given ``X_val``: its samples count alike). ``name`` ('validation',
    'trusted') words the error messages.
    """
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together (or neither).")
    classes = estimator.classes_
    if X_val is not None:
        try:
            X_v, y_v = validate_data(estimator, X_val, y_val, accept_sparse="csr", dtype=X.dtype,
                                     reset=False)
        except ValueError as exc:  # scikit-learn's messages name X and y
            raise ValueError(f"X_val, y_val: {exc}") from exc
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
        estimator.train_indices_, estimator.validation_indices_ = np.arange(X.shape[0]), np.arange(0)
        return X, y, sample_weight, X_v, y_v, None
    counts = np.unique(y, return_counts=True)[1]
    # a stratified split needs at least one held-out sample per class
    n_val = max(int(np.ceil(estimator.validation_fraction * y.size)), classes.size)
    if counts.min() < 2 or y.size - n_val < classes.size:
        raise ValueError(f"cannot hold out a stratified {name} set of {n_val} samples from {y.size} samples "
                         f"with class counts {counts.tolist()}: pass X_val and y_val, or more data.")
    tr, va = train_test_split(np.arange(y.size), test_size=n_val, stratify=y, random_state=estimator.random_state)
    estimator.train_indices_, estimator.validation_indices_ = tr, va
    if not sample_weight[va].sum() > 0:
        raise ValueError(f"the {name} rows held out of (X, y) all have sample weight 0: pass X_val and y_val.")
    return X[tr], y[tr], sample_weight[tr], X[va], y[va], sample_weight[va]


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
