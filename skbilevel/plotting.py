"""Plots of what the bilevel estimators learned: convergence, sample weights, search paths.

Four functions, each drawing on a matplotlib ``Axes`` (a new one when
``ax=None``) and returning it:

- :func:`plot_history`: the per-iteration ``history_`` of a fitted
  estimator (or of a :class:`~skbilevel.BilevelResult`), against the
  iteration or the elapsed time;
- :func:`plot_sample_weights`: the per-sample weights learned by
  :class:`~skbilevel.BilevelSVC` or
  :class:`~skbilevel.HyperCleaningClassifier`: a scatter plot with marker
  area proportional to the weight and the decision line with its margins
  for two features (Figures 1 and 2 of Huang et al. (2025)), histograms
  otherwise;
- :func:`plot_search_path`: the points a fitted
  :class:`~skbilevel.BilevelSearchCV` evaluated, with their CV scores;
- :func:`plot_feature_scales`: the per-feature values (a
  :class:`~skbilevel.preprocessing.FeatureScaler`'s scales) a
  :class:`~skbilevel.BilevelSearchCV` learned.

matplotlib is an optional dependency (``pip install skbilevel[plot]``); it
is imported when one of these functions is called, not with the module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._result import BilevelResult
from .search import BilevelSearchCV

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = ["plot_feature_scales", "plot_history", "plot_sample_weights", "plot_search_path"]

#: ``log_y='auto'`` (and ``log_scale='auto'``) use a log axis when all values are positive and the
#: largest is at least this many times the smallest (two decades).
LOG_RATIO = 100.0

_PHASES = ((-1, "initial grid", "s"), (None, "descent", "o"), (-2, "score refinement", "D"))


def _pyplot():
    """Import ``matplotlib.pyplot``, with an install hint when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in the test environment
        raise ImportError("skbilevel.plotting needs matplotlib: pip install skbilevel[plot]") from exc
    return plt


def _axes(ax):
    if ax is None:
        return _pyplot().subplots()[1]
    _pyplot()
    return ax


def _spans_decades(values) -> bool:
    """The log-scale rule: all finite values positive, largest / smallest >= ``LOG_RATIO``."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return values.size > 0 and bool(np.all(values > 0)) and values.max() >= LOG_RATIO * values.min()


def _final_step(estimator):
    """A Pipeline's last step (and the Pipeline of the steps before it, or None)."""
    if isinstance(estimator, Pipeline):
        pre = estimator[:-1] if len(estimator.steps) > 1 else None
        return estimator.steps[-1][1], pre
    return estimator, None


# -- plot_history --------------------------------------------------------------------------------
def _histories(estimator):
    """Return ``[(history dict, suffix)]``: one per curve family (one per class for one-vs-rest)."""
    if isinstance(estimator, BilevelResult):
        return [(estimator.history, "")]
    if isinstance(estimator, Mapping):
        return [(estimator, "")]
    if isinstance(estimator, (list, tuple)) and estimator and all(isinstance(h, Mapping) for h in estimator):
        return [(h, f" (problem {k})") for k, h in enumerate(estimator)]
    final, _ = _final_step(estimator)
    if not hasattr(final, "fit"):
        raise TypeError("plot_history expects a fitted estimator (or a Pipeline ending in one), a BilevelResult "
                        f"or a history dict; got {type(estimator).__name__}.")
    if not hasattr(final, "history_"):
        check_is_fitted(final)  # a fitted estimator without history_ passes here
        if isinstance(final, BilevelSearchCV) and final.refit is False:
            raise ValueError(f"This {type(final).__name__} has no history_: with several metrics and "
                             "refit=False it picks no best point, whose descent history_ would be; pass "
                             "refit='<metric name>'.")
        raise NotFittedError(f"This {type(final).__name__} has no history_ attribute: fit a skbilevel estimator "
                             "before calling plot_history.")
    history = final.history_
    if isinstance(history, Mapping):
        return [(history, "")]
    classes = getattr(final, "classes_", None)
    names = classes if classes is not None and len(classes) == len(history) else range(len(history))
    return [(h, f" (class {c} vs rest)") for h, c in zip(history, names)]


def plot_history(estimator: Any, keys: str | Sequence[str] = ("objective",), *, x: str = "iteration",
                 log_y: bool | str = "auto", label: str | None = None, ax: Axes | None = None,
                 **line_kw: Any) -> Axes:
    """Plot the per-iteration history of a bilevel fit.

    One line per key of ``history_`` (and per one-vs-rest problem of a
    multi-class :class:`~skbilevel.BilevelSVC`, whose ``history_`` is a list
    of dicts). Call it several times on the same ``ax`` with different
    ``label`` to compare methods.

    Parameters
    ----------
    estimator : estimator, Pipeline, BilevelResult, dict or list of dict
        A fitted estimator with a ``history_`` attribute
        (:class:`~skbilevel.BilevelSVC`, :class:`~skbilevel.HyperCleaningClassifier`,
        :class:`~skbilevel.BilevelSearchCV`), a Pipeline ending in one, a
        :class:`~skbilevel.BilevelResult` of :mod:`skbilevel.methods`, or a
        history dict of lists itself (a list of them: one line each).
    keys : str or sequence of str, default=('objective',)
        History entries to draw, e.g. ``'objective'`` (upper-level
        objective), ``'complementarity'`` (the method's optimality residual).
    x : {'iteration', 'time'}, default='iteration'
        Horizontal axis: the outer iteration (1, 2, ...) or the elapsed time
        in seconds (the cumulative sum of ``history['time']``, which holds
        the seconds spent in each iteration).
    log_y : 'auto' or bool, default='auto'
        Logarithmic vertical axis. ``'auto'``: when every finite value drawn
        is positive and the largest is at least 100 times the smallest (the
        values span two decades or more). An axis already on a log scale is
        left so.
    label : str, optional
        Legend label of the curves, e.g. the method name; with several keys
        or one-vs-rest problems the key and the class are appended.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure and axes when None.
    **line_kw
        Passed to :meth:`matplotlib.axes.Axes.plot` (``color``, ``marker``, ...).

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If a key is not in the history, or ``x`` is not 'iteration' or 'time'.

    References
    ----------
    The histories are recorded by the methods of :mod:`skbilevel.methods`:

    - L. Huang, J. Nie, J. Wang, S. Zhong. *Bilevel Optimization for
      Hyperparameter Learning in Supporting Vector Machines*, 2025,
      Algorithm 1 (``'lme-mpec'``, ``'mpec'``);
    - R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho. *Bilevel Learning*
      (survey), 2026, sections 5-6 (``'hypergradient'``);
    - *Perturbed Gradient Descent via Convex Quadratic Approximation for
      Nonconvex Bilevel Optimization*, anonymous authors (under double-blind
      review), 2025 (``'perturbed-gd'``);
    - R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang. *A Value-Function-based
      Interior-point Method for Non-convex Bi-level Optimization*, ICML 2021
      (``'value-function'``);
    - S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab. *Sequential QCQP for Bilevel
      Optimization with Line Search*, 2025 (``'sqcqp'``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from sklearn.datasets import make_classification
    >>> from skbilevel import BilevelSVC
    >>> from skbilevel.plotting import plot_history
    >>> X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    >>> clf = BilevelSVC(random_state=0).fit(X, y)
    >>> ax = plot_history(clf, keys=("objective", "complementarity"))
    >>> [line.get_label() for line in ax.lines]
    ['objective', 'complementarity']
    >>> ax.get_xlabel()
    'iteration'
    """
    if x not in ("iteration", "time"):
        raise ValueError(f"x must be 'iteration' or 'time'; got {x!r}.")
    if log_y not in ("auto", True, False):
        raise ValueError(f"log_y must be 'auto', True or False; got {log_y!r}.")
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys:
        raise ValueError("keys must name at least one history entry.")
    histories = _histories(estimator)
    for history, _ in histories:
        missing = [k for k in keys + (("time",) if x == "time" else ()) if k not in history]
        if missing:
            raise ValueError(f"history has no entry {missing[0]!r}; its entries are {sorted(history)}.")
    ax = _axes(ax)
    drawn = []
    for history, suffix in histories:
        abscissa = (np.cumsum(np.asarray(history["time"], dtype=float)) if x == "time"
                    else np.arange(1, len(history[keys[0]]) + 1))
        for key in keys:
            values = np.asarray(history[key], dtype=float)
            if values.shape != abscissa.shape:
                raise ValueError(f"history[{key!r}] has {values.size} entries, the horizontal axis "
                                 f"{abscissa.size}.")
            name = key if label is None else (label if len(keys) == 1 else f"{label}: {key}")
            ax.plot(abscissa, values, label=name + suffix, **line_kw)
            drawn.append(values)
    ax.set_xlabel("iteration" if x == "iteration" else "time (s)")
    if x == "iteration":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no tick at iteration 2.5
    ax.set_ylabel(keys[0] if len(keys) == 1 else "value")
    values = np.concatenate(drawn) if drawn else np.array([])
    if log_y is True or (log_y == "auto" and _spans_decades(values)):
        ax.set_yscale("log")
    ax.legend()
    return ax


# -- plot_sample_weights -------------------------------------------------------------------------
def _learned_weights(final, class_index):
    """Weights learned for the training rows (``final.train_indices_``), one per row."""
    try:
        check_is_fitted(final, ("sample_weight_", "train_indices_"))
    except TypeError as exc:
        raise TypeError(f"plot_sample_weights expects a BilevelSVC or HyperCleaningClassifier; got "
                        f"{type(final).__name__}.") from exc
    weights = np.asarray(final.sample_weight_, dtype=float)
    train = np.asarray(final.train_indices_)
    if weights.ndim == 2:  # one-vs-rest BilevelSVC: one row per class
        if class_index is None:
            raise ValueError(f"This {type(final).__name__} solved {weights.shape[0]} one-vs-rest problems, each "
                             "with its own weights: pass class_index (the row of sample_weight_, i.e. the "
                             "problem classes_[class_index] vs the rest).")
        if not -weights.shape[0] <= class_index < weights.shape[0]:
            raise ValueError(f"class_index={class_index} is out of range for {weights.shape[0]} classes.")
        weights = weights[class_index]
    if weights.size == train.size:  # BilevelSVC: over the training part
        return weights, train
    return weights[train], train  # HyperCleaningClassifier: over all rows of X


def _n_fit_rows(final, weights):
    """Number of rows of the ``X`` passed to fit, as far as the fitted attributes tell."""
    sw = np.asarray(final.sample_weight_)
    if sw.shape[-1] != weights.size:  # HyperCleaningClassifier: sample_weight_ covers all rows
        return sw.shape[-1]
    return final.train_indices_.size + np.asarray(final.validation_indices_).size


def _linear_binary(final, class_index, n_features):
    """``(w, b)`` of a linear binary decision function ``w^T x + b``, or None."""
    coef = getattr(final, "coef_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.shape[1] != n_features:
        return None  # an MLP's coef_ is a list
    if coef.shape[0] == 1:
        return coef[0], float(np.ravel(final.intercept_)[0])
    if class_index is not None and np.asarray(final.sample_weight_).ndim == 2:  # one-vs-rest SVM
        return coef[class_index], float(final.intercept_[class_index])
    return None  # a softmax's rows are not binary decision lines


def _draw_line(ax, w, b, level, style):
    """The line ``w^T x + b = level`` in the plane, as an infinite ``axline`` drawn with ``style`` (a dict)."""
    if abs(w[1]) >= abs(w[0]):
        p1, p2 = (0.0, (level - b) / w[1]), (1.0, (level - b - w[0]) / w[1])
    else:
        p1, p2 = ((level - b) / w[0], 0.0), ((level - b - w[1]) / w[0], 1.0)
    return ax.axline(p1, p2, **style)


def plot_sample_weights(estimator: Any, X: ArrayLike, y: ArrayLike, *, mask: ArrayLike | None = None,
                        mask_labels: tuple[str, str] = ("flagged", "other"), kind: str = "auto",
                        class_index: int | None = None, margins: bool = True, marker_size: float = 40.0,
                        max_marker_size: float = 400.0, min_marker_size: float = 2.0, bins: int = 20,
                        log_scale: bool | str = "auto",
                        ax: Axes | None = None) -> Axes:
    """Plot the per-sample weights learned by a bilevel classifier.

    Only the training rows (``estimator.train_indices_``) are drawn: they are
    the samples whose weights were learned (the validation or trusted rows
    are not weighted).

    With two features (``kind='scatter'``), one marker per training sample,
    coloured (and shaped) by its label, with **area proportional to its
    learned weight**: ``marker_size`` at weight 1 (an unweighted sample),
    clipped to ``[min_marker_size, max_marker_size]`` so that a sample
    weighted to zero stays visible and one weighted 1000 does not cover the
    plot. For a linear binary model the decision line
    ``w^T x + b = 0`` is drawn solid and the margins ``w^T x + b = +-1``
    dashed, as in Figures 1 and 2 of Huang et al. (2025); samples in ``mask`` are
    circled in black (the flipped labels of Figure 1).

    Otherwise (``kind='hist'``), histograms of the weights, one per class,
    or, when ``mask`` is given, one for the masked samples and one for the
    others (e.g. corrupted vs clean labels of data hyper-cleaning).

    Parameters
    ----------
    estimator : BilevelSVC, HyperCleaningClassifier or Pipeline ending in one
        A fitted estimator with ``sample_weight_`` and ``train_indices_``.
        For a Pipeline, ``X`` is transformed by the steps before the last
        (the scatter plot shows the space the classifier sees).
    X : array-like of shape (n_samples, n_features)
        The data passed to ``fit`` (all of it: the rows are selected with
        ``train_indices_``).
    y : array-like of shape (n_samples,)
        The labels passed to ``fit`` (possibly noisy: they are the ones the
        weights were learned for).
    mask : array-like of bool of shape (n_samples,), optional
        Samples to single out, over the rows of ``X`` (e.g. those whose
        label was flipped).
    mask_labels : tuple of two str, default=('flagged', 'other')
        Legend labels of the masked samples and of the others.
    kind : {'auto', 'scatter', 'hist'}, default='auto'
        ``'auto'`` is ``'scatter'`` with two features, else ``'hist'``.
    class_index : int, optional
        For a multi-class :class:`~skbilevel.BilevelSVC` (one-vs-rest, one
        row of ``sample_weight_`` per class): the problem ``classes_[class_index]``
        vs the rest to draw. Required there, ignored otherwise.
    margins : bool, default=True
        Draw the margins ``w^T x + b = +-1`` beside the decision line.
    marker_size : float, default=40.0
        Marker area (points^2) of a sample of weight 1.
    max_marker_size, min_marker_size : float, default=400.0, 2.0
        Largest and smallest marker area (points^2).
    bins : int, default=20
        Number of histogram bins.
    log_scale : 'auto' or bool, default='auto'
        Logarithmic weight axis of the histograms (log-spaced bins).
        ``'auto'``: when all weights are positive and the largest is at least
        100 times the smallest (they span two decades or more), as
        :class:`~skbilevel.BilevelSVC`'s ``e^{c_i}`` and
        :class:`~skbilevel.HyperCleaningClassifier`'s sigmoid weights often
        do once some are pushed towards 0.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure and axes when None.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ValueError
        If ``X``, ``y`` or ``mask`` do not match the data the estimator was
        fitted on, or ``kind='scatter'`` without two features.

    References
    ----------
    L. Huang, J. Nie, J. Wang, S. Zhong. *Bilevel Optimization for
    Hyperparameter Learning in Supporting Vector Machines*, 2025,
    Figure 1 (synthetic data with flipped labels) and Figure 2 (Fisher Iris).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skbilevel import BilevelSVC
    >>> from skbilevel.plotting import plot_sample_weights
    >>> rng = np.random.RandomState(0)
    >>> y = np.repeat([-1, 1], 20)
    >>> X = y[:, None] * 1.5 + rng.standard_normal((40, 2))
    >>> clf = BilevelSVC(random_state=0).fit(X, y)
    >>> ax = plot_sample_weights(clf, X, y)
    >>> len(ax.collections), len(ax.lines)  # one scatter per class; decision line and two margins
    (2, 3)
    """
    if kind not in ("auto", "scatter", "hist"):
        raise ValueError(f"kind must be 'auto', 'scatter' or 'hist'; got {kind!r}.")
    if log_scale not in ("auto", True, False):
        raise ValueError(f"log_scale must be 'auto', True or False; got {log_scale!r}.")
    final, pre = _final_step(estimator)
    weights, train = _learned_weights(final, class_index)
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X) if pre is None else X
    y = np.asarray(y)
    n_rows = _n_fit_rows(final, weights)
    if np.ndim(X) != 2 or np.shape(X)[0] != n_rows:
        raise ValueError(f"X must be the 2-D data passed to fit, with {n_rows} rows; got shape {np.shape(X)}.")
    if y.shape != (n_rows,):
        raise ValueError(f"y must be the labels passed to fit, of shape ({n_rows},); got shape {y.shape}.")
    if pre is not None:
        X = pre.transform(X)
        X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)
    X = X.astype(float)
    n_features = X.shape[1]
    if getattr(final, "n_features_in_", n_features) != n_features:
        raise ValueError(f"X has {n_features} features, the estimator was fitted on {final.n_features_in_}.")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (n_rows,) or mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array of shape ({n_rows},) over the rows of X; got "
                             f"dtype {mask.dtype} and shape {mask.shape}.")
        mask = mask[train]
    if len(mask_labels) != 2:
        raise ValueError(f"mask_labels must hold two labels; got {mask_labels!r}.")
    if kind == "auto":
        kind = "scatter" if n_features == 2 else "hist"
    if kind == "scatter" and n_features != 2:
        raise ValueError(f"kind='scatter' needs 2 features; X has {n_features} (use kind='hist').")
    ax = _axes(ax)
    X, y = X[train], y[train]
    if kind == "scatter":
        sizes = np.clip(marker_size * weights, min_marker_size, max_marker_size)
        _scatter_weights(ax, final, X, y, sizes, mask, mask_labels, class_index, margins, marker_size)
    else:
        _hist_weights(ax, y, weights, mask, mask_labels, bins, log_scale)
    return ax


def _scatter_weights(ax, final, X, y, sizes, mask, mask_labels, class_index, margins, marker_size):
    from matplotlib.lines import Line2D

    markers = ("o", "*", "s", "^", "v", "D", "P", "X")
    unit = float(np.sqrt(marker_size))  # legend markers: the size of weight 1
    handles = []
    for k, label in enumerate(np.unique(y)):
        rows = y == label
        ax.scatter(X[rows, 0], X[rows, 1], s=sizes[rows], marker=markers[k % len(markers)],
                   color=f"C{k}", alpha=0.7, edgecolors="none", label=f"class {label}")
        handles.append(Line2D([], [], linestyle="none", marker=markers[k % len(markers)], color=f"C{k}",
                              markersize=unit, label=f"class {label}"))
    if mask is not None and mask.any():
        ax.scatter(X[mask, 0], X[mask, 1], s=sizes[mask] + 60, facecolors="none", edgecolors="k",
                   linewidths=1.2, label=mask_labels[0])
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                              markeredgecolor="k", markersize=unit + 2, label=mask_labels[0]))
    line = _linear_binary(final, class_index, 2)
    if line is not None and np.any(line[0] != 0):
        w, b = line
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        _draw_line(ax, w, b, 0.0, {"color": "k", "linewidth": 1.5, "label": "decision line"})
        handles.append(Line2D([], [], color="k", linewidth=1.5, label="decision line"))
        if margins:
            for level in (-1.0, 1.0):
                _draw_line(ax, w, b, level, {"color": "k", "linewidth": 1.0, "linestyle": "--"})
            handles.append(Line2D([], [], color="k", linewidth=1.0, linestyle="--", label="margins"))
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    ax.legend(handles=handles, title="marker area \u221d weight\n(legend markers: weight 1)", fontsize="small",
              title_fontsize="small")


def _hist_weights(ax, y, weights, mask, mask_labels, bins, log_scale):
    if mask is not None:
        groups = [(mask, mask_labels[0]), (~mask, mask_labels[1])]
    else:
        groups = [(y == label, f"class {label}") for label in np.unique(y)]
    log = log_scale is True or (log_scale == "auto" and _spans_decades(weights))
    if log and not np.all(weights > 0):
        raise ValueError("log_scale=True needs positive weights.")
    lo, hi = (weights.min(), weights.max()) if weights.size else (0.0, 1.0)
    if hi <= lo:  # one weight (BilevelSVC(learn='C')): a bin around it, by a factor on a log axis
        lo, hi = (lo / 2, hi * 2) if log else (lo - 0.5, hi + 0.5)
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi, bins + 1)
    for rows, label in groups:
        if rows.any():
            ax.hist(weights[rows], bins=edges, histtype="stepfilled", alpha=0.5, edgecolor="k",
                    label=f"{label} ({rows.sum()})")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("learned sample weight")
    ax.set_ylabel("number of training samples")
    ax.legend()


# -- plot_search_path ----------------------------------------------------------------------------
def _search_metric(search, scoring):
    results = search.cv_results_
    if scoring is None:
        if not search.multimetric_:
            scoring = "score"
        elif isinstance(search.refit, str):
            scoring = search.refit
        else:
            scoring = sorted(k[len("mean_test_"):] for k in results if k.startswith("mean_test_"))[0]
    key = f"mean_test_{scoring}"
    if key not in results:
        names = sorted(k[len("mean_test_"):] for k in results if k.startswith("mean_test_"))
        raise ValueError(f"cv_results_ has no {key!r}; scoring must be one of {names}.")
    return scoring, np.asarray(results[key], dtype=float)


def plot_search_path(search: Any, *, scoring: str | None = None, colorbar: bool = True, cmap: str = "viridis",
                     vmin: float | None = None, vmax: float | None = None, ax: Axes | None = None) -> Axes:
    """Plot the points a fitted BilevelSearchCV evaluated, with their CV scores.

    The rows of ``cv_results_`` are drawn in evaluation order: the initial
    grid (squares), the hypergradient descents (circles) and the score
    refinement (diamonds), joined by a thin line; the best point
    (``best_index_``) is marked by a star. An axis is logarithmic when its
    hyperparameter was searched on a log scale (a ``(low, high)`` tuple or a
    ``loguniform`` distribution in ``param_space``).

    - One hyperparameter: the mean CV score against the hyperparameter.
    - Two hyperparameters: the path in the plane of the two (the first in
      sorted name order on the horizontal axis), markers coloured by mean
      CV score, the point each descent started from marked by a triangle.
      Draw a contour of a GridSearchCV's scores on ``ax`` first to see the
      path on the score surface.

    Parameters
    ----------
    search : BilevelSearchCV
        A fitted search over one or two hyperparameters.
    scoring : str, optional
        The metric drawn, for multi-metric scoring: ``mean_test_<scoring>``.
        Default: the refit metric (the first name when ``refit`` is not a
        name), ``'score'`` for single-metric scoring.
    colorbar : bool, default=True
        With two hyperparameters, add a colour bar of the CV score.
    cmap : str, default='viridis'
        Colour map of the scores (two hyperparameters).
    vmin, vmax : float, optional
        Score range of the colour map, e.g. that of a contour drawn beneath.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure and axes when None.

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``search`` is not fitted.
    TypeError
        If ``search`` is not a :class:`~skbilevel.BilevelSearchCV`.
    ValueError
        With more than two searched hyperparameters, or an unknown ``scoring``.

    References
    ----------
    R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho. *Bilevel Learning* (survey),
    2026, section 5: cross-validation as a bilevel problem,
    the search :class:`~skbilevel.BilevelSearchCV` runs.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.linear_model import Ridge
    >>> from skbilevel import BilevelSearchCV
    >>> from skbilevel.plotting import plot_search_path
    >>> X, y = load_diabetes(return_X_y=True)
    >>> search = BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}, cv=3).fit(X, y)
    >>> ax = plot_search_path(search)
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'alpha')
    """
    from .search import BilevelSearchCV
    from ._search_space import parse_param_space, resolve_param_space

    if not isinstance(search, BilevelSearchCV):
        raise TypeError(f"plot_search_path expects a fitted BilevelSearchCV; got {type(search).__name__}.")
    check_is_fitted(search, "cv_results_")
    dims = parse_param_space(resolve_param_space(search.param_space, search.param_grid)[0])
    if len(dims) > 2:
        raise ValueError(f"plot_search_path draws one or two hyperparameters; this search has {len(dims)} "
                         f"({', '.join(d.name for d in dims)}). Plot cv_results_ against two of them yourself.")
    metric, score = _search_metric(search, scoring)
    results = search.cv_results_
    values = [np.asarray(results[f"param_{d.name}"], dtype=float) for d in dims]
    phase = np.asarray(results["start"])
    best = getattr(search, "best_index_", None)
    if best is None:
        best = int(np.nanargmax(score))
    ax = _axes(ax)
    score_label = "mean CV score" if metric == "score" else f"mean CV {metric}"
    if len(dims) == 1:
        xs = values[0]
        ax.plot(xs, score, color="0.5", linewidth=1, zorder=1, label="evaluation order")
        for code, name, marker in _PHASES:
            rows = phase >= 0 if code is None else phase == code
            if rows.any():
                ax.plot(xs[rows], score[rows], linestyle="none", marker=marker, label=name, zorder=2)
        ax.plot(xs[best], score[best], linestyle="none", marker="*", markersize=16, color="C3",
                markeredgecolor="k", label="best", zorder=3)
        ax.set_ylabel(score_label)
    else:
        xs, ys = values
        ax.plot(xs, ys, color="0.5", linewidth=1, zorder=2, label="evaluation order")
        lo = np.nanmin(score) if vmin is None else vmin
        hi = np.nanmax(score) if vmax is None else vmax
        mappable = None
        for code, name, marker in _PHASES:
            rows = phase >= 0 if code is None else phase == code
            if rows.any():
                mappable = ax.scatter(xs[rows], ys[rows], c=score[rows], cmap=cmap, vmin=lo, vmax=hi,
                                      marker=marker, edgecolors="k", linewidths=0.6, label=name, zorder=3)
        first = [int(np.flatnonzero(phase == s)[0]) for s in np.unique(phase[phase >= 0])]
        if first:
            ax.plot(xs[first], ys[first], linestyle="none", marker="^", markersize=11, markerfacecolor="none",
                    markeredgecolor="C1", markeredgewidth=2, label="descent start", zorder=4)
        ax.plot(xs[best], ys[best], linestyle="none", marker="*", markersize=18, color="C3",
                markeredgecolor="k", label="best", zorder=5)
        ax.set_ylabel(dims[1].name)
        if dims[1].scale == "log":
            ax.set_yscale("log")
        if colorbar and mappable is not None:
            ax.figure.colorbar(mappable, ax=ax, label=score_label)
    ax.set_xlabel(dims[0].name)
    if dims[0].scale == "log":
        ax.set_xscale("log")
    ax.legend(fontsize="small")
    return ax


# -- plot_feature_scales ---------------------------------------------------------------------------
def _learned_vector(search):
    """``(name, values)`` of the per-feature hyperparameter among ``search.best_params_``."""
    vectors = [(k, np.asarray(v, dtype=float)) for k, v in search.best_params_.items() if np.ndim(v) == 1]
    if not vectors:
        raise ValueError("plot_feature_scales needs a search of one value per feature (a FeatureScaler's "
                         "'<step>__scale' in param_space); best_params_ holds none.")
    return vectors[0]


def _feature_names(search, n_features):
    """The names of the features the searched scaler sees, else ``x0, x1, ...``."""
    best = getattr(search, "best_estimator_", None)
    if isinstance(best, Pipeline) and len(best.steps) > 2:
        try:
            names = best[:-2].get_feature_names_out()
            if len(names) == n_features:
                return [str(n) for n in names]
        except (AttributeError, ValueError, TypeError):  # a step without feature names
            pass
    names = getattr(search, "feature_names_in_", None)
    if names is not None and len(names) == n_features:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(n_features)]


def plot_feature_scales(search: Any, *, feature_names: Sequence[str] | None = None, sort: bool = False,
                        top: int | None = None, log_scale: bool | str = "auto", ax: Axes | None = None,
                        **bar_kw: Any) -> Axes:
    """Plot the per-feature values a BilevelSearchCV learned: one bar per feature.

    The bars are the entries of the searched ``scale`` of a
    :class:`~skbilevel.preprocessing.FeatureScaler` in ``best_params_``; a
    dashed line marks the scale of the scalar search it started from (the
    first row of ``cv_results_``, ones by default). For a linear final step a
    scale ``s_j`` is a per-feature penalty (``alpha / s_j`` for the Lasso,
    ``alpha / s_j^2`` for Ridge): a bar far below the line is a feature the
    search switched off, one above it a feature penalised less.

    Parameters
    ----------
    search : BilevelSearchCV
        A fitted search with a per-feature entry in ``param_space``.
    feature_names : sequence of str, optional
        Names of the features; default: those the steps before the scaler
        give (``get_feature_names_out``), else the names of ``X``'s columns,
        else ``x0, x1, ...``.
    sort : bool, default=False
        Order the bars from the largest value to the smallest.
    top : int, optional
        Draw only the ``top`` largest values (implies ``sort``).
    log_scale : 'auto' or bool, default='auto'
        Logarithmic value axis; ``'auto'``: when the values span two decades
        or more.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure and axes when None.
    **bar_kw : dict
        Passed to :meth:`matplotlib.axes.Axes.bar` (``color``, ...).

    Returns
    -------
    ax : matplotlib Axes

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``search`` is not fitted.
    TypeError
        If ``search`` is not a :class:`~skbilevel.BilevelSearchCV`.
    ValueError
        If it searched no per-feature value, or ``feature_names`` has the
        wrong length.

    References
    ----------
    Q. Bertrand, Q. Klopfenstein, M. Blondel, S. Vaiter, A. Gramfort,
    J. Salmon. *Implicit differentiation of Lasso-type models for
    hyperparameter optimization*, ICML 2020: the weighted Lasso, one penalty
    per feature.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import Pipeline
    >>> from skbilevel import BilevelSearchCV
    >>> from skbilevel.plotting import plot_feature_scales
    >>> from skbilevel.preprocessing import FeatureScaler
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 5))
    >>> y = X[:, 0] + 0.1 * rng.normal(size=60)
    >>> pipe = Pipeline([("scale", FeatureScaler()), ("ridge", Ridge())])
    >>> search = BilevelSearchCV(pipe, {"ridge__alpha": (1e-2, 1e2), "scale__scale": (1e-2, 1e2)},
    ...                          max_iter=5).fit(X, y)
    >>> ax = plot_feature_scales(search)
    >>> len(ax.patches), ax.get_ylabel()
    (5, 'learned scale__scale')
    """
    if not isinstance(search, BilevelSearchCV):
        raise TypeError(f"plot_feature_scales expects a fitted BilevelSearchCV; got {type(search).__name__}.")
    check_is_fitted(search, "best_params_")
    if log_scale not in ("auto", True, False):
        raise ValueError(f"log_scale must be 'auto', True or False; got {log_scale!r}.")
    name, values = _learned_vector(search)
    names = _feature_names(search, values.size) if feature_names is None else [str(n) for n in feature_names]
    if len(names) != values.size:
        raise ValueError(f"feature_names must hold {values.size} names; got {len(names)}.")
    order = np.arange(values.size)
    if sort or top is not None:
        order = np.argsort(-values, kind="stable")[:top]
    ax = _axes(ax)
    positions = np.arange(order.size)
    ax.bar(positions, values[order], **bar_kw)
    start = np.asarray(search.cv_results_[f"param_{name}"][0], dtype=float)
    if np.allclose(start, start[0]):
        ax.axhline(start[0], color="k", linestyle="--", linewidth=1, label="scalar search")
        ax.legend()
    ax.set_xticks(positions)
    ax.set_xticklabels([names[j] for j in order], rotation=90 if order.size > 10 else 0)
    if log_scale is True or (log_scale == "auto" and _spans_decades(values)):
        ax.set_yscale("log")
    ax.set_xlabel("feature")
    ax.set_ylabel(f"learned {name}")
    return ax
