"""BilevelSVC: a linear SVM whose sample weights (or ``C``) are learned on a validation set."""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._bilevel_classifier import BilevelClassifier
from ._result import BilevelResult
from ._selection import select_method
from ._validation_split import classes_from_scores
from ._warnings import warn
from ._svm_safeguard import (cross_validated_log_C, fit_weighted_svm, held_out_correct, stack_rows,
                             uniform_svm, validation_folds)
from .methods import hypergradient, method_options, run_method
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
    ``s`` are the fixed ``sample_weight`` passed to :meth:`fit`. Multi-class
    problems are solved one class against the rest.

    With one weight per sample, the defaults guard against what a few
    hundred validation rows cannot tell apart from thousands of weights:

    1. ``C`` of the uniformly weighted SVM is chosen as
       ``GridSearchCV(LinearSVC(), {'C': np.logspace(-4, 4, 17)}, cv=5)``
       would choose it on the training and validation rows, and the weights
       are learned from ``c_i = log C``;
    2. the final SVM is trained on the training rows at their learned
       weights plus the validation rows (``final_fit``), as ``GridSearchCV``
       refits on all the data;
    3. a K-fold cross-validation on the validation rows (``safeguard_cv``)
       decides whether the learned weights (``'learned'``), the uniform SVM
       without the rows of ``label_issues_`` (``'cleaned'``), or
       scikit-learn's ``LinearSVC`` at that ``C``
       (``'uniform'``) gives the final model (``weighting_``): one that is
       not the uniform SVM must get more held-out rows right than it by more
       than two standard deviations of the difference (McNemar's test) on
       validation rows held out of ``(X, y)``, as noisy as the training
       labels, and by more than one on a given ``X_val``, whose labels are
       taken as trusted, so that a few lucky rows do not decide.

    The configuration of Huang et al. (2025) is
    ``BilevelSVC(validation_loss='sigmoid', final_fit='train', safeguard_cv=None)``:
    the learned weights from ``c = 0``, the SVM on the training rows only.
    ``benchmarks/results/generalisation.md`` compares both with
    ``GridSearchCV(LinearSVC())`` on data with flipped labels.

    Parameters
    ----------
    learn : {'sample_weight', 'C'}, default='sample_weight'
        What the upper level learns: a weight ``e^{c_i}`` per training sample,
        or one ``C = e^c``.
    validation_loss : {'sigmoid', 'logistic', 'squared_hinge'}, default='squared_hinge'
        Upper-level loss on the validation set: the SVM's own squared hinge
        ``max(0, 1 - y (w^T x + b))^2`` (the default: on held-out data it
        generalises best of the three), the logistic loss, or the paper's
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
    final_fit : {'train+validation', 'train'}, default='train+validation'
        The rows of the final SVM: the training rows at the learned weights
        plus the validation rows at ``s_i C`` (``C`` as in the list above, 1
        without the safeguard, the learned one for ``learn='C'``), or the
        training rows only (the paper's).
    safeguard_cv : int or None, default=5
        Folds of the cross-validation that chooses the final model (the list
        above; fewer when a class has fewer validation rows, none when a class
        has one). None: the learned weights, from ``c = 0`` (or the best of
        ``n_starts``), as in the paper. Used with ``learn='sample_weight'``
        only; costs ``safeguard_cv`` more runs of the method.
    weight_bounds : tuple of two floats, default=(1e-4, 1e4)
        Finite bounds on ``e^{c_i}`` (or on ``C``): the set ``X`` of eq. (1.1).
        With the safeguard they bound the cross-validated ``C`` and each
        weight relative to it, ``e^{c_i} / C``.
    n_starts : int or None, default=None
        Number of constant starts ``c0`` log-spaced over ``weight_bounds``
        (``c0 = 0`` clipped to the bounds for one start). The lower level is
        solved at each, and the method runs once, from the start whose
        solution has the lowest validation loss: the methods are local and the
        validation loss is not convex in ``c``, and a scan of the starts costs
        one SVM solve each where a run from each would cost a whole descent.
        ``None`` means 5 for ``learn='C'`` and 1 for ``learn='sample_weight'``.
    max_iter : int, default=100
        Maximum number of outer iterations: penalty iterations of Algorithm 1,
        or L-BFGS-B iterations of the hypergradient method. With the
        safeguard it is a budget, not a failure: the weights it stops at are
        judged on held-out validation rows, and no ``ConvergenceWarning`` is
        raised for it; without, a stop at ``max_iter`` warns.
    tol : float, default=1e-4
        KKT tolerance below which a penalty subproblem is not refined further;
        for ``'hypergradient'``, the tolerance on the projected hypergradient
        relative to its largest entry at the start (each entry of a
        per-sample hypergradient shrinks like ``1 / n_samples``, so an
        absolute tolerance would stop large problems before they start).
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
        Weights ``w`` of the final SVM (see ``weighting_`` and ``final_fit``;
        one row per one-vs-rest problem when there are more than two
        classes).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Matching intercepts ``b``.
    sample_weight_ : ndarray of shape (n_train,) or (n_classes, n_train)
        Learned weights ``s_i e^{c_i}`` of the training part (one row per
        one-vs-rest problem when there are more than two classes); the final
        SVM uses them when ``weighting_`` is ``'learned'``.
    C_ : float or ndarray of shape (n_classes,)
        Learned ``C`` when ``learn='C'``; with one weight per sample, the
        ``C`` the weights start from (1 without the safeguard).
    weighting_ : str or ndarray of shape (n_classes,)
        Which final model the safeguard chose: ``'learned'``, ``'cleaned'``
        or ``'uniform'`` (always ``'learned'`` without the safeguard or for
        ``learn='C'``).
    label_issues_ : ndarray of bool, shape (n_samples,)
        The rows of ``X`` whose label the learned weights judge wrong, as
        cleanlab's ``find_label_issues`` marks them: the training rows that
        the SVM at the learned weights (with the validation rows, as
        ``final_fit`` says) puts on the wrong side of its boundary. Their
        weights were free to fall, and the validation loss pulled the boundary
        past them anyway. For several classes, judged in the problem of the
        row's own class against the rest. Validation rows held out of ``X``,
        and every row for ``learn='C'``, are False.
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
        "final_fit": [StrOptions({"train+validation", "train"})],
        "safeguard_cv": [Interval(Integral, 2, None, closed="left"), None],
        "weight_bounds": [tuple],
        "n_starts": [Interval(Integral, 1, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "eps_star": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, learn: str = "sample_weight", validation_loss: str = "squared_hinge",
                 method: str = "auto", validation_fraction: float = 0.1, final_fit: str = "train+validation",
                 safeguard_cv: int | None = 5, weight_bounds: tuple = (1e-4, 1e4), n_starts: int | None = None,
                 max_iter: int = 100, tol: float = 1e-4,
                 eps_star: float = 0.01, random_state: int | np.random.RandomState | None = None,
                 verbose: int = 0):
        self.learn = learn
        self.validation_loss = validation_loss
        self.method = method
        self.validation_fraction = validation_fraction
        self.final_fit = final_fit
        self.safeguard_cv = safeguard_cv
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
        fits = self._fit_one_vs_rest(split, low, high, check_random_state(self.random_state).randint(2**31))
        self.method_ = fits[-1].method
        self.coef_ = np.vstack([f.coef for f in fits])
        self.intercept_ = np.array([f.intercept for f in fits])
        learned_C = [np.exp(f.result.hyperparameters[0]) for f in fits]
        self.C_ = _one_or_per_class(learned_C if self.learn == "C" else [f.C for f in fits])
        self.weighting_ = _one_or_per_class([f.weighting for f in fits])
        self.label_issues_ = self._label_issues(split, fits, y.size)
        self.sample_weight_ = _one_or_per_class([f.sample_weight for f in fits], stack=np.vstack)
        self.n_iter_ = _one_or_per_class([f.result.n_iter for f in fits])
        self.history_ = _one_or_per_class([f.result.history for f in fits], stack=list)
        if self.classes_.size == 2:
            self._warn_if_constant(split.X_train, split.X_val)
        return self

    # -- fit helpers ------------------------------------------------------------
    def _magnitude_limit(self, n_features):
        """Where liblinear stops terminating: ``C * max|x|**4 * n_features**2`` near ``max_float``.

        The uniform SVMs are ``LinearSVC`` fits at ``C`` up to the upper
        weight bound; on larger features liblinear's dual coordinate descent
        does not end (scikit-learn's ``LinearSVC`` hangs on such data too), so
        they are refused, as are features whose squares overflow.
        """
        largest_C = max(self._check_bounds()[1], 1.0)
        limit = (np.finfo(np.float64).max / (largest_C * max(n_features, 1) ** 2)) ** 0.25
        return float(limit), ("whose fourth powers (times C) overflow in liblinear, LinearSVC's solver, "
                       "which then does not terminate")

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

    def _fit_one_vs_rest(self, split, low, high, seed):
        """One binary fit for two classes (``classes_[1]`` positive), else one per class against the rest."""
        n_hyper = split.y_train.size if self.learn == "sample_weight" else 1
        bounds = (np.full(n_hyper, np.log(low)), np.full(n_hyper, np.log(high)))
        binary = self.classes_.size == 2
        # the rows of train + validation in the order of X (then X_val): the grid's folds, as GridSearchCV's
        rows = np.concatenate([split.train_indices, split.validation_indices if split.validation_indices.size
                               else split.train_indices.size + np.arange(split.y_val.size)])
        order = np.argsort(rows, kind="stable")
        return [self._fit_binary(split.X_train, np.where(split.y_train == k, 1.0, -1.0), split.sample_weight_train,
                                 split.X_val, np.where(split.y_val == k, 1.0, -1.0), split.sample_weight_val,
                                 bounds, seed, order, "" if binary else f", class {k} vs rest")
                for k in (self.classes_[1:] if binary else self.classes_)]

    def _fit_binary(self, X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, seed, order, label=""):
        """Learn the hyperparameters of one binary problem (labels +-1), then solve the SVM exactly at them.

        With ``safeguard_cv`` (and one weight per sample) the weights start
        from the cross-validated uniform ``C``, and the final SVM uses them
        only if they predict held-out validation rows better than that
        uniform SVM (:meth:`_safeguard`).
        """
        s_v_rows = np.ones(y_v.size) if s_v is None else s_v
        guarded = self.learn == "sample_weight" and self.safeguard_cv is not None
        log_C = (cross_validated_log_C(stack_rows(X_tr, X_v)[order], np.concatenate([y_tr, y_v])[order],
                                       np.concatenate([s_tr, s_v_rows])[order], (bounds[0][0], bounds[1][0]),
                                       self.safeguard_cv) if guarded else None)
        if guarded:  # the weights move relative to the C they start from
            bounds = (bounds[0] + log_C, bounds[1] + log_C)
        result, lower, method = self._learn(X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, log_C, label=label)
        weights = lower.weights(result.hyperparameters)
        if log_C is None:  # the validation rows of the final fit weigh as the start's C (or the learned C)
            log_C = float(result.hyperparameters[0]) if self.learn == "C" else 0.0
        weighting = "learned"
        if guarded:
            weighting = self._safeguard(X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, log_C, seed)
        models, issues = self._candidates(lower, result, weights, log_C, X_tr, y_tr, s_tr, X_v, y_v, s_v_rows)
        w, b = models[weighting]
        return _BinaryFit(w, b, weights, result, method, weighting, float(np.exp(log_C)), issues)

    def _learn(self, X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, c0, label="", quiet=False):
        """Run the bilevel method on one binary problem from ``c0`` (None: the best of the starts)."""
        lower = WeightedSquaredHingeSVM(X_tr, y_tr, per_sample=self.learn == "sample_weight",
                                        sample_weight=s_tr)
        upper = LinearValidationLoss(X_v, y_v, self.validation_loss, n_hyper=lower.n_hyper, n_var=lower.n_var,
                                     sample_weight=s_v)
        problem = BilevelProblem(upper, lower, bounds)
        method = select_method(problem, self.method)
        if c0 is None:
            c0 = self._best_start(lower, upper, bounds)
        x0 = np.full(lower.n_hyper, c0)
        options = self._method_options(method, problem, x0)
        if not quiet:  # with the safeguard, max_iter is a budget: the result is judged on held-out rows
            budget = self.learn == "sample_weight" and self.safeguard_cv is not None
            return self._run_method(method, problem, x0, options, label=label, budget_stop=budget), lower, method
        with warnings.catch_warnings():  # a fold of the safeguard: its own stops are not the fit's
            warnings.simplefilter("ignore", ConvergenceWarning)
            settings = dict(tol=self.tol, max_iter=self.max_iter)
            return run_method(method, problem, x0, options={**settings, **options}), lower, method

    def _method_options(self, method, problem, x0):
        """The options of ``method`` beyond the estimator's own: Algorithm 1's exit tolerance for the penalty
        methods; for L-BFGS-B, a tolerance relative to the hypergradient at ``x0`` and a first step of 1 in
        ``c``: with one weight per sample each entry of the hypergradient shrinks like ``1 / n_samples``,
        and absolute ones would end large problems at their start."""
        if "eps_star" in method_options(method):
            return {"eps_star": self.eps_star}
        if method != "hypergradient":
            return {}
        _, grad = hypergradient.hypergradient(problem, x0, problem.lower.solve(x0)[0])[:2]
        scale = float(np.max(np.abs(grad), initial=0.0))
        return {"first_step": 1.0, "tol": self.tol * scale} if scale > 0 else {}

    def _final_svm(self, lower, result, X_tr, y_tr, omega, X_v, y_v, omega_v):
        """The SVM at the final weights: on the training rows, plus the validation rows (``final_fit``)."""
        if self.final_fit == "train+validation":
            X, y, omega = stack_rows(X_tr, X_v), np.concatenate([y_tr, y_v]), np.concatenate([omega, omega_v])
        else:
            X, y = X_tr, y_tr
        w, b, _, ok = fit_weighted_svm(X, y, omega, y0=result.model)
        if not ok:
            warn("BilevelSVC: the lower-level SVM solve at the learned hyperparameters did not "
                 "reach its tolerance in 100 Newton steps.", ConvergenceWarning)
        return w, b

    def _candidates(self, lower, result, learned, log_C, X_tr, y_tr, s_tr, X_v, y_v, s_v):
        """``(models, issues)``: ``(w, b)`` of the final SVM of each of ``_WEIGHTINGS``, and the label issues.

        ``'learned'``: the SVM at the learned weights; the training rows it
        puts on the wrong side of its boundary are the label issues (their
        weights were free to fall, and fell too little to pull the boundary
        over them). ``'cleaned'``: the SVM at ``s_i C`` without those rows.
        ``'uniform'``: scikit-learn's ``LinearSVC`` at the cross-validated
        ``C``. The validation rows join each as ``final_fit`` says, at
        ``s_i C``.
        """
        C, omega_v = np.exp(log_C), s_v * np.exp(log_C)
        w, b = self._final_svm(lower, result, X_tr, y_tr, learned, X_v, y_v, omega_v)
        issues = ~held_out_correct(w, b, X_tr, y_tr).astype(bool)
        cleaned = self._final_svm(lower, result, X_tr, y_tr, np.where(issues, 0.0, s_tr * C), X_v, y_v, omega_v)
        if self.final_fit == "train":
            uniform = uniform_svm(X_tr, y_tr, s_tr, C)
        else:
            uniform = uniform_svm(stack_rows(X_tr, X_v), np.concatenate([y_tr, y_v]), np.concatenate([s_tr, s_v]), C)
        return dict(uniform=uniform, cleaned=cleaned, learned=(w, b)), issues

    def _safeguard(self, X_tr, y_tr, s_tr, X_v, y_v, s_v, bounds, log_C, seed):
        """The final model of ``_WEIGHTINGS`` that predicts held-out validation rows best, beyond chance.

        K-fold cross-validation on the validation rows (``safeguard_cv``
        folds, stratified): on each, the weights are learned again on the
        other validation rows, the three final SVMs of :meth:`_candidates`
        are fitted, and each held-out row is scored right or wrong; then
        :func:`_significantly_better`. Too few validation rows to
        cross-validate on: ``'learned'``.
        """
        s_v_rows = np.ones(y_v.size) if s_v is None else s_v
        folds = validation_folds(y_v, self.safeguard_cv, seed)
        if not folds:
            return "learned"
        correct = np.zeros((len(_WEIGHTINGS), y_v.size))
        for fit_rows, held in folds:
            X_f, y_f = X_v[fit_rows], y_v[fit_rows]
            s_f = None if s_v is None else s_v[fit_rows]
            result, lower, _ = self._learn(X_tr, y_tr, s_tr, X_f, y_f, s_f, bounds, log_C, quiet=True)
            models, _ = self._candidates(lower, result, lower.weights(result.hyperparameters), log_C, X_tr, y_tr,
                                         s_tr, X_f, y_f, s_v_rows[fit_rows])
            for k, weighting in enumerate(_WEIGHTINGS):
                correct[k, held] = held_out_correct(*models[weighting], X_v[held], y_v[held])
        # rows carved from y are as noisy as the training labels: a weighting must win more clearly there
        z = _SAFEGUARD_Z_GIVEN if s_v is None else _SAFEGUARD_Z
        return _significantly_better(correct, s_v_rows, z)

    def _label_issues(self, split, fits, n_rows):
        """The rows of ``X`` whose label the learned weights judge wrong (see ``label_issues_``)."""
        mask = np.zeros(n_rows, dtype=bool)
        if self.learn != "sample_weight":
            return mask
        if len(fits) == 1:
            flagged = fits[0].label_issues
        else:  # one-vs-rest: judged in the problem of the row's own class
            own = np.searchsorted(self.classes_, split.y_train)
            flagged = np.vstack([f.label_issues for f in fits])[own, np.arange(own.size)]
        mask[split.train_indices] = flagged
        return mask

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


#: How many standard deviations of chance a weighting must beat the uniform SVM by (McNemar's test, one-sided)
#: on validation rows held out of (X, y), whose labels are as noisy as the training ones: about 2% of equally
#: good weightings pass, and one that learned the noise of those rows rarely does. On a given X_val, whose
#: labels the user vouches for, one deviation: a weighting that passes by chance is as good as the uniform
#: SVM in expectation, and the clean rows' evidence for a better one is not discounted.
_SAFEGUARD_Z, _SAFEGUARD_Z_GIVEN = 2.0, 1.0

#: The final SVMs the safeguard chooses from, in order of preference on ties
_WEIGHTINGS = ("uniform", "cleaned", "learned")


def _significantly_better(correct, sample_weight, z=_SAFEGUARD_Z):
    """The weighting of ``_WEIGHTINGS`` to use, from each one's held-out right (1) and wrong (0) rows.

    A weighting other than the uniform one wins only if it gets more rows
    right than the uniform SVM by more than ``z`` standard deviations of that
    difference under equal accuracy (McNemar's: the square root of the
    number of rows on which the two disagree): on a small or noisy validation
    set a difference of a few rows is chance, and the uniform SVM is what the
    user would run anyway. Of those that pass, the best.
    """
    gains = (correct[1:] - correct[0]) @ sample_weight
    spread = np.sqrt(np.abs(correct[1:] - correct[0]) @ sample_weight)
    passing = np.flatnonzero(gains > z * spread + 1e-12)
    return _WEIGHTINGS[0] if passing.size == 0 else _WEIGHTINGS[1 + passing[np.argmax(gains[passing])]]


class _BinaryFit(NamedTuple):
    """What one binary bilevel fit gives: the SVM at the learned hyperparameters, its weights, the run."""

    coef: np.ndarray
    intercept: float
    sample_weight: np.ndarray
    result: BilevelResult
    method: str
    weighting: str
    C: float
    label_issues: np.ndarray


def _one_or_per_class(values, stack=np.array):
    """The value of a binary problem, or the values of the one-vs-rest problems stacked."""
    return values[0] if len(values) == 1 else stack(values)
