"""BilevelSVC: a linear SVM whose sample weights (or ``C``) are learned on a validation set."""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ._bilevel_classifier import BilevelClassifier
from ._result import BilevelResult
from ._selection import select_method
from ._validation_split import classes_from_scores
from ._warnings import warn
from .methods import method_options
from .problems import BilevelProblem, LinearValidationLoss, WeightedSquaredHingeSVM
from .problems.losses import VALIDATION_LOSSES


#: Methods that handle the SVM's linearly constrained lower level.
SVM_METHODS = ("lme-mpec", "mpec", "hypergradient")


class BilevelSVC(BilevelClassifier):
    """Linear SVM with hyperparameters learned by bilevel optimisation (Huang et al., 2025).

    The upper level minimises a validation loss of the classifier; the lower
    level is the squared-slack L2-SVM

    .. math::

        \\min_{w, b, \\xi} \\tfrac12 \\|w\\|^2 + \\tfrac12 \\sum_i s_i e^{c_i} \\xi_i^2
        \\quad \\text{s.t.} \\quad y_i (w^T x_i + b) \\ge 1 - \\xi_i,

    with one hyperparameter ``c_i`` per training sample (``learn='sample_weight'``,
    the model of section 4 of Huang et al. (2025)) or a single ``c = log C``
    (``learn='C'``).
    ``s`` are the fixed ``sample_weight`` passed to :meth:`fit`. After the
    hyperparameters are learned, the lower level is solved exactly at them and
    gives ``coef_`` and ``intercept_``. Multi-class problems are solved one
    class against the rest.

    Parameters
    ----------
    learn : {'sample_weight', 'C'}, default='sample_weight'
        What the upper level learns: a weight ``e^{c_i}`` per training sample,
        or one ``C = e^c``.
    validation_loss : {'sigmoid', 'logistic', 'squared_hinge'}, default='sigmoid'
        Upper-level loss on the validation set. ``'sigmoid'`` is the paper's
        sigmoid of the negative signed distance ``-y (w^T x + b) / ||w||``.
    method : {'auto', 'lme-mpec', 'mpec', 'hypergradient'}, default='auto'
        How the bilevel problem is solved: LME-MPEC (2.4) or the classical MPEC
        (1.3), both by Algorithm 1 of Huang et al. (2025), or L-BFGS-B on the
        hypergradient obtained by implicit differentiation through the SVM's
        active set (eq. (6.3) of Grazzi et al. (2026)). ``'auto'`` picks
        ``'hypergradient'``: one Newton solve and one adjoint solve per
        iteration, whatever the number of weights, where each penalty
        iteration of LME-MPEC solves a program in all of them (the speeds on
        the paper's data sets are in ``benchmarks/results/svm_paper.md``);
        see :ref:`auto` in the user guide.
    validation_fraction : float, default=0.1
        Fraction of ``(X, y)`` held out (stratified) as validation set when
        ``X_val`` is not given to :meth:`fit`; at least one sample per class.
    weight_bounds : tuple of two floats, default=(1e-4, 1e4)
        Finite bounds on ``e^{c_i}`` (or on ``C``): the set ``X`` of eq. (1.1).
    n_starts : int or None, default=None
        Number of constant starts ``c0`` log-spaced over ``weight_bounds``
        (``c0 = 0`` clipped to the bounds for one start). The lower level is
        solved at each, and the method runs once, from the start whose
        solution has the lowest validation loss: the methods are local and the
        validation loss is not convex in ``c``, and a scan of the starts costs
        one SVM solve each where a run from each would cost a whole descent.
        ``None`` means 5 for ``learn='C'`` and 1 for ``learn='sample_weight'``.
    max_iter : int, default=30
        Maximum number of outer iterations: penalty iterations of Algorithm 1,
        or L-BFGS-B iterations of the hypergradient method. With one weight
        per sample the hypergradient method usually needs more to converge,
        so the default stops it early, with a ``ConvergenceWarning``: the
        weights then fit the (small) validation set less closely, which
        need not cost test accuracy (it did not on the quickstart's example).
    tol : float, default=1e-4
        KKT tolerance below which a penalty subproblem is not refined further;
        for ``'hypergradient'``, the tolerance on the projected hypergradient.
    eps_star : float, default=0.01
        Algorithm 1's exit tolerance on the complementarity ``g^T tau``.
    random_state : int, RandomState instance or None, default=None
        Controls the validation split.
    verbose : int, default=0
        0: silent. 1: a progress bar over the outer iterations (tqdm, the
        ``progress`` extra; without it one log line per outer iteration).
        2: also the method's own line per iteration (objective,
        complementarity or projected gradient, penalty parameter).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen by :meth:`fit`.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights ``w`` of the SVM solved exactly at the learned
        hyperparameters (one row per one-vs-rest problem when there are more
        than two classes).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Matching intercepts ``b``.
    sample_weight_ : ndarray of shape (n_train,) or (n_classes, n_train)
        Learned weights ``s_i e^{c_i}`` of the training part (one row per
        one-vs-rest problem when there are more than two classes).
    C_ : float or ndarray of shape (n_classes,)
        Learned ``C`` when ``learn='C'``, else NaN.
    train_indices_, validation_indices_ : ndarray
        Rows of ``X`` used for training and validation (``validation_indices_``
        is empty when ``X_val`` was passed).
    method_ : str
        The method that ran (``'auto'`` resolved).
    n_iter_ : int or ndarray of shape (n_classes,)
        Outer iterations of the method.
    history_ : dict or list of dict
        Per outer iteration: upper objective, complementarity, time (and
        penalty, KKT residual); one dict per one-vs-rest problem when
        multi-class.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025: the
       bilevel problem (1.1), the classical MPEC
       (1.3), the LME-MPEC (2.4), the penalty method Algorithm 1 (section 3,
       program (3.5)), and the SVM model of section 4 with its constraint
       matrix (4.1) and starting point (4.2).
    .. [2] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: implicit differentiation through the active set
       of a constrained lower level, section 6.1, formula (6.3)
       (``method='hypergradient'``).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skbilevel import BilevelSVC
    >>> X, y = make_classification(n_samples=80, random_state=0)
    >>> clf = BilevelSVC(learn="C", random_state=0).fit(X, y)
    >>> clf.method_
    'hypergradient'
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.coef_.shape, clf.sample_weight_.shape
    ((1, 20), (72,))
    """

    _parameter_constraints: dict = {
        "learn": [StrOptions({"sample_weight", "C"})],
        "validation_loss": [StrOptions(set(VALIDATION_LOSSES))],
        "method": [StrOptions({"auto", *SVM_METHODS})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "weight_bounds": [tuple],
        "n_starts": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "eps_star": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, learn: str = "sample_weight", validation_loss: str = "sigmoid",
                 method: str = "auto", validation_fraction: float = 0.1,
                 weight_bounds: tuple = (1e-4, 1e4), n_starts: int | None = None,
                 max_iter: int = 30, tol: float = 1e-4,
                 eps_star: float = 0.01, random_state: int | np.random.RandomState | None = None,
                 verbose: int = 0):
        self.learn = learn
        self.validation_loss = validation_loss
        self.method = method
        self.validation_fraction = validation_fraction
        self.weight_bounds = weight_bounds
        self.n_starts = n_starts
        self.max_iter = max_iter
        self.tol = tol
        self.eps_star = eps_star
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, *,
            X_val: ArrayLike | None = None, y_val: ArrayLike | None = None) -> BilevelSVC:
        """Learn the hyperparameters on a validation set, then fit the SVM at them.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (the validation part is taken from it when
            ``X_val`` is not given).
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Fixed non-negative weights ``s_i`` multiplying the learned
            ``e^{c_i}`` (a negative one raises ``ValueError``). The rows held
            out as validation set (without ``X_val``) keep theirs: the
            validation loss is their weighted mean.
        X_val, y_val : array-like, default=None
            Validation set. If omitted, a stratified ``validation_fraction`` of
            ``(X, y)`` is held out, chosen by ``random_state``.
            Inside a Pipeline, ``X_val`` reaches this step untransformed
            unless the Pipeline transforms it: with metadata routing enabled,
            ``Pipeline(steps, transform_input=["X_val"])`` and
            ``set_fit_request(X_val=True, y_val=True)`` on this step (see the
            user guide).

        Returns
        -------
        self : BilevelSVC
            The fitted estimator.

        Warns
        -----
        ConvergenceWarning
            When the method stops before its tolerance (``max_iter``, a
            diverged penalty subproblem), or the final SVM solve does not
            reach its tolerance; the message says which.
        UserWarning
            When, for two classes, the learned classifier predicts one class
            for every training and validation sample: the validation loss was
            lowest for a constant classifier (a small or mislabelled
            validation set); or when a class of ``y`` does not occur in
            ``y_val`` (nothing in the validation loss asks for it).
        """
        low, high = self._check_bounds()
        X, y, sample_weight, self.classes_ = self._validate_training_data(X, y, sample_weight, dtype=np.float64)
        split = self._split(X, y, sample_weight, X_val, y_val)
        self.train_indices_, self.validation_indices_ = split.train_indices, split.validation_indices
        fits = self._fit_one_vs_rest(split, low, high)
        self.method_ = fits[-1].method
        self.coef_ = np.vstack([f.coef for f in fits])
        self.intercept_ = np.array([f.intercept for f in fits])
        learned_C = [np.exp(f.result.hyperparameters[0]) for f in fits]
        self.C_ = _one_or_per_class(learned_C) if self.learn == "C" else np.nan
        self.sample_weight_ = _one_or_per_class([f.sample_weight for f in fits], stack=np.vstack)
        self.n_iter_ = _one_or_per_class([f.result.n_iter for f in fits])
        self.history_ = _one_or_per_class([f.result.history for f in fits], stack=list)
        if self.classes_.size == 2:
            self._warn_if_constant(split.X_train, split.X_val)
        return self

    # -- fit helpers ------------------------------------------------------------
    def _check_bounds(self):
        try:
            low, high = (float(bound) for bound in self.weight_bounds)
        except (TypeError, ValueError):
            low = high = np.nan
        # the method works on c = log(weight) in [log low, log high]: both ends must be finite
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise ValueError(f"weight_bounds must be finite (low, high) with 0 < low < high; got "
                             f"{self.weight_bounds!r}.")
        return low, high

    def _fit_one_vs_rest(self, split, low, high):
        """One binary fit for two classes (``classes_[1]`` positive), else one per class against the rest."""
        n_hyper = split.y_train.size if self.learn == "sample_weight" else 1
        bounds = (np.full(n_hyper, np.log(low)), np.full(n_hyper, np.log(high)))
        binary = self.classes_.size == 2
        return [self._fit_binary(split.X_train, np.where(split.y_train == k, 1.0, -1.0), split.sample_weight_train,
                                 split.X_val, np.where(split.y_val == k, 1.0, -1.0), split.sample_weight_val,
                                 bounds, "" if binary else f", class {k} vs rest")
                for k in (self.classes_[1:] if binary else self.classes_)]

    def _fit_binary(self, X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, label=""):
        """Learn the hyperparameters of one binary problem (labels +-1), then solve the SVM exactly at them."""
        lower = WeightedSquaredHingeSVM(X_tr, y_tr, per_sample=self.learn == "sample_weight",
                                        sample_weight=s_tr)
        upper = LinearValidationLoss(X_v, y_v, self.validation_loss, n_hyper=lower.n_hyper, n_var=lower.n_var,
                                     sample_weight=s_v)
        problem = BilevelProblem(upper, lower, bounds)
        method = select_method(problem, self.method)
        c0 = self._best_start(lower, upper, bounds)
        # Algorithm 1's exit tolerance, for the penalty methods that take it
        options = {"eps_star": self.eps_star} if "eps_star" in method_options(method) else {}
        result = self._run_method(method, problem, np.full(lower.n_hyper, c0), options, label=label)
        y_exact, ok = lower.solve(result.hyperparameters, y0=result.model)
        if not ok:
            warn("BilevelSVC: the lower-level SVM solve at the learned hyperparameters did not "
                 "reach its tolerance in 100 Newton steps.", ConvergenceWarning)
        w, b, _ = lower.split(y_exact)
        return _BinaryFit(w, b, lower.weights(result.hyperparameters), result, method)

    def _starts(self, bounds):
        n = self.n_starts if self.n_starts is not None else (5 if self.learn == "C" else 1)
        if n == 1:  # c = 0: the unweighted SVM (C = 1), moved inside the bounds if need be
            return [float(np.clip(0.0, bounds[0][0], bounds[1][0]))]
        return np.linspace(bounds[0][0], bounds[1][0], n + 2)[1:-1]

    def _best_start(self, lower, upper, bounds):
        """The constant start ``c0`` whose exact lower-level solution has the lowest validation loss.

        One lower-level solve per start, each warm-started from the previous
        one (the starts are sorted, so the solutions move along the
        regularisation path); the method then runs once, from the best.
        """
        starts = self._starts(bounds)
        if len(starts) == 1:
            return starts[0]
        losses, y = [], None
        for c0 in starts:
            c = np.full(lower.n_hyper, c0)
            y, _ = lower.solve(c, y0=y)
            losses.append(upper.value(c, y))
        return starts[int(np.argmin(losses))]

    def _warn_if_constant(self, X_tr, X_v):
        """Warn when the learned classifier predicts one class on every training and validation sample.

        The validation loss can be lowest for such a classifier: with a few
        mislabelled validation points, putting every point on one side (``w ->
        0``) costs the minority's loss and nothing else (Table 1 of Huang et
        al. (2025), with 8 or 12 flipped labels, on some of its draws).
        """
        # on the validated arrays, not through predict: they no longer carry the feature names of fit's X
        seen = [np.unique(classes_from_scores(self.classes_, self._decision_scores(part))) for part in (X_tr, X_v)
                if part.shape[0]]
        classes = np.unique(np.concatenate(seen)).tolist()
        if len(classes) == 1:
            warn(f"BilevelSVC: the learned weights give a classifier that predicts {classes[0]!r} for every "
                 f"training and validation sample (||coef_|| = {np.linalg.norm(self.coef_):.2g}): the "
                 "validation loss was lowest for a constant classifier. The validation set may be too small "
                 "or mislabelled: pass a larger or clean one as X_val, y_val.", UserWarning)

    # -- prediction -------------------------------------------------------------
    def _decision_scores(self, X):
        """``X @ coef_.T + intercept_``, one column per one-vs-rest problem (raveled for two classes)."""
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores


class _BinaryFit(NamedTuple):
    """What one binary bilevel fit gives: the SVM at the learned hyperparameters, its weights, the run."""

    coef: np.ndarray
    intercept: float
    sample_weight: np.ndarray
    result: BilevelResult
    method: str


def _one_or_per_class(values, stack=np.array):
    """The value of a binary problem, or the values of the one-vs-rest problems stacked."""
    return values[0] if len(values) == 1 else stack(values)
