"""HyperCleaningClassifier: learn a weight per training sample on a trusted set (data hyper-cleaning)."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike
import scipy.sparse as sp
from scipy.special import expit, logsumexp, softmax
from sklearn.base import _fit_context
from sklearn.model_selection import StratifiedKFold
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._bilevel_classifier import BilevelClassifier
from ._selection import select_method
from ._warnings import warn
from .problems import BilevelProblem
from .problems.cross_validation import CrossValidationProblem
from .problems.classifiers import (CrossEntropyValidationLoss, FeatureWeightedSoftmaxRegression, WeightedMLP,
                                   WeightedSoftmaxRegression)

#: Methods a user may name (``'auto'`` resolves to one of them).
CLEANING_METHODS = ("hypergradient", "value-function", "perturbed-gd", "sqcqp")

#: How the learned weights are parametrised (``'auto'`` resolves to one of them by ``model``).
WEIGHT_MODELS = ("losses", "per-sample")

# refit_max_iter='auto' as a multiple of lower_max_iter
_AUTO_REFIT_FACTOR = 5

# safeguard_cv='auto': stratified folds of the trusted set for model='logistic' (the network is not
# cross-validated by default: each fold would train three networks)
_AUTO_SAFEGUARD_FOLDS = 3

# the safeguard's trainings on part of the trusted rows, from the model on all of them: their
# held-out cross-entropies are compared, which needs no solve to the 1e-8 of the final model
_SAFEGUARD_TOL = 1e-4

# label_issues_ without trusted folds (no noise rate to count by): a training row whose learned weight
# is below this is reported as wrongly labelled
_ISSUE_THRESHOLD = 0.5

# Each method's options for a lower level that is solved within a budget rather than to a tolerance
# (the network; see lower_max_iter). The adjoint of 'hypergradient' is tracked, not solved. L-BFGS
# on the ReLU network stalls well above the default tolerance of 'sqcqp' (on the kinks of the
# activation): 'sqcqp' needs a tolerance eps above that level (Sharifi et al. (2025) used 0.1 and
# 0.5) and truncated Newton steps to restore it; 'value-function' takes at most 3 steps per round
# (Liu et al. (2021), section 6.1: a small L moves x sooner) with warm-started sub-problems of 50
# iterations, and carries its step over rounds (warm_step, as the paper's fixed step does): each
# entry of grad varphi_k is O(1/n), so a round started at step 1 moves x by O(1/n), and on the
# budget-solved varphi_k its Armijo search then mostly finds no decrease and ends the round with x
# unmoved, the weights near 1/2 (benchmarks/hyper_cleaning_overfit.py measures both).
_INEXACT_OPTIONS = {"hypergradient": {"adjoint_tol": 1e-4, "adjoint_max_iter": 50},
                    "sqcqp": {"epsilon": 0.05, "newton_max_iter": 50},
                    "value-function": {"inner_iter": 3, "sub_iter": 50, "warm_step": True},
                    "perturbed-gd": {}}

# The method's options for weight_model='losses' (by method name). Its three coefficients grow from 0
# while the trusted-set cross-entropy falls; run on until the gradient vanishes they fit the trusted
# set's noise, and stopping once an iteration lowers the loss by less than 0.01 max(1, F) (L-BFGS-B's
# ftol) generalised better on data the defaults were not chosen on. Three coefficients need no
# hypergradient to 1e-10: lower-level solves and adjoints to 1e-6 halve the cost.
_LOSSES_OPTIONS = {"hypergradient": {"ftol": 1e-2, "lower_tol": 1e-6, "adjoint_tol": 1e-6}}


# The lower-level models, one class each (registered in LOWER_MODELS below): what fit needs to know of a model
# is the dtype it accepts, its lower_max_iter='auto', the options it asks of the methods, how to build it, how
# the final refit trains it, and how its parameters become coef_, intercept_ and logits.
class _SoftmaxRegressionModel:
    """``model='logistic'``: multinomial logistic regression, a convex lower level solved to a tolerance."""

    #: float32 products would not reach the gradient norm of 1e-10 its implicit derivatives need
    dtype = np.float64
    #: lower_max_iter='auto': Newton's method converges in a few iterations of this budget
    auto_max_iter = 2000
    #: a lower level solved to its tolerance needs no options of the methods (by method name)
    method_options: dict = {}

    @staticmethod
    def build(X, Y, sample_weight, *, alpha, n_hidden, seed, max_iter):
        """The weighted lower level (``n_hidden`` and ``seed`` are the network's)."""
        return WeightedSoftmaxRegression(X, Y, alpha=alpha, sample_weight=sample_weight, max_iter=max_iter)

    @staticmethod
    def train(model, x, theta0, tol=1e-8):
        """The final refit: one training from the method's model ``theta0``; returns ``(theta, ok)``."""
        return model.solve(x, y0=theta0, tol=tol)

    @staticmethod
    def coefficients(lower, theta, n_classes):
        """``coef_, intercept_`` as scikit-learn's linear classifiers store them."""
        W, b = lower.unpack(theta)
        if n_classes == 2:  # the binary convention: one row, positive for classes_[1]
            return (W[:, 1] - W[:, 0])[None, :], np.array([b[1] - b[0]])
        return W.T.copy(), b.copy()

    @staticmethod
    def logits(coef, intercept, X):
        """One column per row of ``coef``."""
        return np.asarray(X @ coef.T) + intercept


class _NetworkModel:
    """``model='mlp'``: a one-hidden-layer ReLU network, a non-convex lower level trained within a budget."""

    #: float32 data is kept, as MLPClassifier keeps it: the products with the data run in float32
    dtype = [np.float64, np.float32]
    #: lower_max_iter='auto': the L-BFGS training continues across the outer iterations
    auto_max_iter = 200
    #: the options, by method name, for a lower level solved within a budget rather than to a tolerance
    method_options = _INEXACT_OPTIONS

    @staticmethod
    def build(X, Y, sample_weight, *, alpha, n_hidden, seed, max_iter):
        """The weighted network, initialised from ``seed``."""
        return WeightedMLP(X, Y, n_hidden=n_hidden, alpha=alpha, sample_weight=sample_weight, random_state=seed,
                           max_iter=max_iter)

    @staticmethod
    def train(model, x, theta0, tol=1e-8):
        """The final refit: from the method's network ``theta0`` and afresh; the lower objective decides.

        The method's network may sit in a poor local minimum: the training
        from the initial parameters (unless they were the start) is kept when
        its objective is lower (the benchmark's MLP rows,
        ``benchmarks/results/hyper_cleaning.md``, measure how often and by
        how much).
        """
        theta, ok = model.solve(x, y0=theta0, tol=tol)
        if theta0 is not None:
            fresh, fresh_ok = model.solve(x, tol=tol)
            if model.value(x, fresh) < model.value(x, theta):
                theta, ok = fresh, fresh_ok
        return theta, ok

    @staticmethod
    def coefficients(lower, theta, n_classes):
        """``[W1, W2], [b1, b2]`` as in ``MLPClassifier.coefs_`` and ``intercepts_``."""
        W1, b1, W2, b2 = lower.unpack(theta)
        return [W1, W2], [b1, b2]

    @staticmethod
    def logits(coef, intercept, X):
        """``relu(X W1 + b1) W2 + b2``."""
        (W1, W2), (b1, b2) = coef, intercept
        return np.maximum(X @ W1 + b1, 0.0) @ W2 + b2


#: The lower-level models of HyperCleaningClassifier, by the name its ``model`` parameter takes.
LOWER_MODELS = {"logistic": _SoftmaxRegressionModel(), "mlp": _NetworkModel()}


class HyperCleaningClassifier(BilevelClassifier):
    """Classifier (softmax or ReLU network) trained on noisy labels, with per-sample weights learned on a trusted set.

    Data hyper-cleaning (section 5.1 of the perturbed-gradient paper (2025);
    Liu et al. (2021), section 6.2, eqs. (31)-(32); Sharifi et al. (2025),
    section III-B): the upper level minimises the cross-entropy on a small trusted (clean) set;
    the lower level trains the classifier on the noisy training set, sample
    ``i`` weighted by ``sigma(x_i)`` in (0, 1):

    .. math::

        \\min_x \\; \\mathrm{CE}_{trusted}(\\theta^*(x)) \\quad \\text{s.t.} \\quad
        \\theta^*(x) = \\arg\\min_\\theta \\frac1n \\sum_i s_i \\sigma(x_i) \\ell_i(\\theta)
        + \\frac{\\alpha}{2} \\|W\\|^2.

    Samples whose labels are wrong get weights near 0. After the weights are
    learned, the final model is refit on the weighted training data plus the
    trusted set (weight 1), minimising the weighted mean loss
    :math:`\\sum_i w_i \\ell_i(\\theta) / \\sum_i w_i + \\frac{\\alpha}{2} \\|W\\|^2`:
    a sample of weight 0 counts as absent, so the true weights (1 for a clean
    label, 0 for a wrong one) would give the model trained on the clean
    samples and the trusted set alone.

    By default (``weight_model='auto'`` with ``model='logistic'``) the weights
    are not free: :math:`x_i = c_0 + c_1 u_i + c_2 v_i`, with :math:`u_i` and
    :math:`v_i` the standardised cross-entropies of sample ``i``'s label under
    the model of the trusted set alone and under the model of all samples at
    uniform weights (a low-dimensional parametrisation of the weights, Grazzi
    et al. (2026), section 4.1), so that a trusted set of a few hundred
    samples fits three numbers rather than one per sample. The three are
    cross-fitted over the folds of ``safeguard_cv``: fold ``k`` weights the
    training samples by their losses under models trained without its
    held-out trusted samples and is scored on those samples alone, the
    folds sharing ``c`` (fitted to all trusted samples at once, :math:`u`
    favoured itself: weighting the training samples by their agreement with
    a model of the trusted set lowers the trusted-set loss without cleaning
    anything). A safeguard
    (``safeguard_cv``) then keeps the learned weighting only if the
    cross-validated trusted-set cross-entropy does not favour a plain one:
    every training sample at weight 1, or the trusted set alone.
    ``weight_model='per-sample', safeguard_cv=None`` is the model of the
    papers (one free weight per sample, no safeguard).

    Parameters
    ----------
    model : {'logistic', 'mlp'}, default='logistic'
        Multinomial logistic regression or a one-hidden-layer ReLU network.
    method : {'auto', 'hypergradient', 'value-function', 'perturbed-gd', 'sqcqp'}, default='auto'
        Bilevel method; ``'auto'`` picks one from the problem's structure
        (see :ref:`auto` in the user guide): ``'hypergradient'``
        for ``model='logistic'``, ``'perturbed-gd'`` for the non-convex
        ``model='mlp'``. Its fixed steps keep the weights close to 1/2
        (their order, not their size, tells the wrong labels) and its runs
        end at ``max_iter`` with a ``ConvergenceWarning`` (the benchmark,
        ``benchmarks/results/hyper_cleaning.md``, gives it more iterations).
        With ``weight_model='losses'``, ``'hypergradient'`` (L-BFGS-B on the
        three coefficients) stops when an iteration lowers the trusted-set
        cross-entropy by less than ``0.01 max(1, F)`` (its ``ftol``; the
        run is converged, not cut short): the coefficients grow from 0 while
        the loss falls, and stopping once the fall levels off keeps the
        weights from fitting the trusted set's noise. Its lower-level solves
        and adjoints then run to ``1e-6``, enough for three coefficients.
    weight_model : {'auto', 'losses', 'per-sample'}, default='auto'
        How the weights are parametrised. ``'per-sample'``: one free
        :math:`x_i` per training sample (the papers'). ``'losses'``:
        :math:`x_i = c_0 + c_1 u_i + c_2 v_i` with the standardised losses
        :math:`u_i`, :math:`v_i` of sample ``i``'s label under the model of
        the trusted set alone and of all samples at weight 1 (only with
        ``model='logistic'``). ``'auto'``: ``'losses'`` for
        ``model='logistic'``, ``'per-sample'`` for ``model='mlp'``.
    safeguard_cv : 'auto', int >= 2 or None, default='auto'
        Folds of the trusted set on which the learned weighting is compared
        with the plain ones (``'uniform'``: every training sample at weight 1;
        ``'trusted'``: the trusted set alone): each is trained on the
        training samples at its weights plus the other folds and scored on
        the held-out fold; the highest accuracy wins (the lower
        cross-entropy breaking ties, then the learned weighting) and gives
        the final model (``weighting_``). The learned weights were fitted
        to every trusted sample, the held-out ones included: with
        ``weight_model='losses'`` each fold recomputes them from the losses
        under its own baseline models (its ``c`` kept), so that the held-out
        samples reach them no more than the baselines; per-sample weights
        are not relearned per fold, which favours them. The folds are
        stratified, at most as
        many as the rarest class has trusted samples (fewer than 2: no
        safeguard). With ``weight_model='losses'`` and
        ``method='hypergradient'`` the same folds cross-fit the coefficients
        ``c`` (see above); without folds they are fitted to all trusted
        samples at once. ``None``: the learned weighting, unchecked (the papers').
        ``'auto'``: 3 for ``model='logistic'``, None for ``model='mlp'``
        (each fold would train three networks).
    alpha : float, default=1e-2
        L2 penalty on the weight matrices of the lower level (whose loss is
        the mean over the training samples of the weighted cross-entropy) and
        of the final refit (whose loss is the weighted mean). A model that can
        fit the wrong labels gives them no reason to lose weight: the default
        detected the wrong labels better than values 10 and 100 times
        smaller when it was chosen (``benchmarks/results/hyper_cleaning.md`` records the
        runs at the default).
    n_hidden : int, default=64
        Hidden units when ``model='mlp'``.
    lower_max_iter : 'auto' or int, default='auto'
        Iterations of the lower-level solver per solve (each warm started from
        the last): ``'auto'`` is 2000 for ``'logistic'`` (Newton's method,
        which converges in a few) and 200 for ``'mlp'``, whose L-BFGS training
        then continues across the outer iterations instead of being finished
        at each (a solve to the tolerance is slow on data of the size of
        MNIST). With
        ``'mlp'`` the methods are set, for the same reason, for an inexact
        lower level: the adjoint system of ``'hypergradient'`` gets at most 50
        conjugate-gradient iterations per outer step (to a relative residual
        of 1e-4), each run continuing from the last adjoint; ``'sqcqp'``
        keeps ``||grad_y f|| <= 0.05`` (L-BFGS stalls on the ReLU network's
        kinks above the default 1e-3, which cannot be reached; Sharifi et
        al. (2025) used 0.1 and 0.5) and restores it by truncated Newton steps (50
        MINRES iterations); ``'value-function'`` takes at most 3 steps per
        round with sub-problems of 50 warm-started iterations, each round's
        step starting where the last ended (``warm_step=True``: from a unit
        step the budget-solved rounds mostly leave the weights where they
        are).
    refit_max_iter : 'auto' or int, default='auto'
        Iterations of each training of the final refit on the weighted
        training data plus the trusted set: ``'auto'`` is
        ``5 * lower_max_iter``. The logistic model is trained once, from the
        method's model; the network twice, from the method's model and from
        the initial parameters, keeping the lower objective. A training stops
        at its tolerance or at this budget; when the one kept stopped at the
        budget, a ``ConvergenceWarning`` says so (on MNIST the network
        usually does, as ``MLPClassifier(solver='lbfgs')`` ends at its
        ``max_iter``). A shorter refit trades accuracy for time: the MLP
        rows of ``benchmarks/results/hyper_cleaning.md`` measure
        ``method='sqcqp'`` with ``refit_max_iter=200`` against the
        default.
    validation_fraction : float, default=0.1
        Stratified fraction of ``(X, y)`` used as trusted set when ``X_val`` is
        not given to :meth:`fit` (with a warning: it must be clean).
    max_iter : int, default=100
        Maximum number of outer iterations of the method.
    tol : float, default=1e-5
        Stopping tolerance of the method (for ``'hypergradient'``, on the
        projected hypergradient).
    random_state : int, RandomState instance or None, default=None
        Controls the trusted split and the MLP's initial weights.
    verbose : int, default=0
        0: silent. 1: a progress bar over the outer iterations (tqdm, the
        ``progress`` extra; without it one log line per outer iteration).
        2: also the method's own line per iteration (objective, residuals,
        step sizes).
    callback : callable or None, default=None
        ``callback(info)`` after each outer iteration with ``info`` a dict:
        ``iteration``, ``objective`` (trusted-set cross-entropy), ``time``,
        ``weights`` (current ``sigma(x)``). Returning True stops the run.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen by :meth:`fit`.
    sample_weight_ : ndarray of shape (n_samples,)
        Learned weights in [0, 1] of the rows of ``X``; rows held out as
        trusted set (when ``X_val`` is not given) have weight 1.
    label_issues_ : ndarray of bool, shape (n_samples,)
        The rows of ``X`` whose label is judged wrong: the
        ``round(noise_rate_ * n_train)`` training rows of lowest learned
        weight (ties by row order), as cleanlab's default rule flags as many
        rows as it estimates wrong labels. Without trusted folds
        (``safeguard_cv=None``, the network's default, or too few trusted
        rows of a class) or when ``noise_rate_`` is None: the rows of
        learned weight below 1/2 (:math:`x_i < 0`). Rows used as trusted set
        are False. The same whichever weighting the safeguard kept.
    noise_rate_ : float or None
        The estimated share of wrong labels among the training rows:
        :math:`\\hat\\pi = (d - e) / (1 - e - e / (K - 1))`, clipped to
        [0, 1], with ``e`` the cross-validated error of the model of the
        trusted rows alone (over the ``safeguard_cv`` folds), ``d`` the rate
        at which the same fold models disagree with the training labels and
        ``K`` the number of classes (a wrong label is agreed with only when
        the model makes the same mistake, at ``e / (K - 1)`` if its errors
        spread evenly). None without trusted folds, or when their models
        are no better than chance.
    weighting_ : {'learned', 'uniform', 'trusted'}
        The weighting of the final model: the learned weights, every
        training sample at weight 1, or none (the trusted set alone); see
        ``safeguard_cv``. ``'learned'`` when there is no safeguard.
    safeguard_scores_ : dict or None
        The safeguard's cross-validated scores of each weighting on the
        trusted set: ``{weighting: {'accuracy': ..., 'cross_entropy': ...}}``
        (weighted means over the trusted samples); None without a
        safeguard.
    coef_ : ndarray or list of ndarray
        ``model='logistic'``: shape (1, n_features) for two classes, else
        (n_classes, n_features). ``model='mlp'``: ``[W1, W2]`` as in
        ``MLPClassifier.coefs_``.
    intercept_ : ndarray or list of ndarray
        Matching intercepts.
    train_indices_, validation_indices_ : ndarray
        Rows of ``X`` used for training and as trusted set.
    method_ : str
        The method that ran (``'auto'`` resolved).
    n_iter_ : int
        Outer iterations of the method.
    history_ : dict
        Per outer iteration: ``objective``, ``complementarity`` (the method's
        residual), ``time``.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.

    References
    ----------
    .. [1] Anonymous authors, "Perturbed Gradient Descent via Convex Quadratic
       Approximation for Nonconvex Bilevel Optimization", under
       double-blind review, 2025: Algorithm 1,
       data hyper-cleaning in section 5.1 (``method='perturbed-gd'``).
    .. [2] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: data reweighting with ``sigma(x_i)`` in
       section 4.1, implicit differentiation in section 5.1
       (``method='hypergradient'``).
    .. [3] R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based
       Interior-point Method for Non-convex Bi-level Optimization", ICML 2021,
       PMLR 139: Algorithm 1, data hyper-cleaning in section 6.2,
       eqs. (31)-(32) (``method='value-function'``).
    .. [4] S. Sharifi, E. Yazdandoost Hamedani, M. Fazlyab, "Sequential QCQP
       for Bilevel Optimization with Line Search", 2025: Algorithm 1,
       data hyper-cleaning in section III-B (``method='sqcqp'``).

    Examples
    --------
    Corrupt about 30% of 300 training labels of the digits and learn the
    sample weights on 100 clean samples:

    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skbilevel import HyperCleaningClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> rng = np.random.RandomState(0)
    >>> y_noisy = y[:300].copy()
    >>> wrong = rng.rand(300) < 0.3
    >>> y_noisy[wrong] = (y_noisy[wrong] + rng.randint(1, 10, wrong.sum())) % 10
    >>> clf = HyperCleaningClassifier(random_state=0)
    >>> clf.fit(X[:300], y_noisy, X_val=X[300:400], y_val=y[300:400]).sample_weight_.shape
    (300,)

    The wrongly labelled samples get small weights, and the safeguard kept
    the learned weighting:

    >>> np.round([clf.sample_weight_[wrong].mean(), clf.sample_weight_[~wrong].mean()], 1)
    array([0. , 0.9])
    >>> clf.weighting_, clf.label_issues_.dtype
    ('learned', dtype('bool'))
    >>> clf.predict_proba(X[400:403]).shape
    (3, 10)
    """

    _needs_two_classes = "needs at least 2 classes"
    _validation_set_name = "trusted"

    _parameter_constraints: dict = {
        "model": [StrOptions(set(LOWER_MODELS))],
        "method": [StrOptions({"auto", *CLEANING_METHODS})],
        "weight_model": [StrOptions({"auto", *WEIGHT_MODELS})],
        "safeguard_cv": [StrOptions({"auto"}), Interval(Integral, 2, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "lower_max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "refit_max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callback": [callable, None],
    }

    def __init__(self, *, model: str = "logistic", method: str = "auto", weight_model: str = "auto",
                 safeguard_cv: int | str | None = "auto", alpha: float = 1e-2,
                 n_hidden: int = 64, lower_max_iter: int | str = "auto", refit_max_iter: int | str = "auto",
                 validation_fraction: float = 0.1,
                 max_iter: int = 100, tol: float = 1e-5, random_state: int | np.random.RandomState | None = None,
                 verbose: int = 0, callback: Callable | None = None):
        self.model = model
        self.method = method
        self.weight_model = weight_model
        self.safeguard_cv = safeguard_cv
        self.alpha = alpha
        self.n_hidden = n_hidden
        self.lower_max_iter = lower_max_iter
        self.refit_max_iter = refit_max_iter
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, *,
            X_val: ArrayLike | None = None, y_val: ArrayLike | None = None) -> HyperCleaningClassifier:
        """Learn the sample weights on the trusted set, then refit on weighted data plus trusted set.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, possibly with wrong labels. With ``model='mlp'``
            float32 data is kept as float32 (as ``MLPClassifier`` keeps it;
            ``X_val`` is converted to it): the network's products with the
            data, nearly all of its cost, then run in float32, while its
            parameters and every solver stay in float64 (the float32 rows
            of ``benchmarks/results/hyper_cleaning.md`` measure the gain).
            Other data,
            and all data of ``model='logistic'``, whose lower level is solved
            to a gradient norm of 1e-10 for its implicit derivatives, which
            float32 products would not reach, is converted to float64.
        y : array-like of shape (n_samples,)
            Class labels, possibly wrong.
        sample_weight : array-like of shape (n_samples,), default=None
            Fixed non-negative weights ``s_i`` multiplying the learned
            ``sigma(x_i)`` (a negative one raises ``ValueError``). The rows
            held out as trusted set (without ``X_val``) keep theirs, in the
            trusted-set loss (a weighted mean) and in the final refit.
        X_val, y_val : array-like, default=None
            Trusted (clean) set. If omitted, a stratified ``validation_fraction``
            of ``(X, y)`` is held out as trusted set, with a warning.
            Inside a Pipeline, ``X_val`` reaches this step untransformed
            unless the Pipeline transforms it: with metadata routing enabled,
            ``Pipeline(steps, transform_input=["X_val"])`` and
            ``set_fit_request(X_val=True, y_val=True)`` on this step (see the
            user guide).

        Returns
        -------
        self : HyperCleaningClassifier
            The fitted estimator.

        Warns
        -----
        ConvergenceWarning
            When the method stops before its tolerance (not when ``callback``
            stopped it), or the final refit does not reach its tolerance.
        UserWarning
            When no trusted set is given (the held-out part must be clean), or
            a class of ``y`` does not occur in ``y_val`` (the weights of its
            samples are then pushed to 0).
        """
        X, y, sample_weight, self.classes_ = self._validate_training_data(X, y, sample_weight,
                                                                          dtype=LOWER_MODELS[self.model].dtype)
        if X_val is None and y_val is None:
            warn("HyperCleaningClassifier: no trusted set given; a stratified validation_fraction of "
                 "(X, y) is used as trusted set. Its labels must be clean for the weights to mean "
                 "anything.", UserWarning)
        split = self._split(X, y, sample_weight, X_val, y_val)
        self.train_indices_, self.validation_indices_ = split.train_indices, split.validation_indices
        Y_tr, Y_v = self._one_hot(split.y_train), self._one_hot(split.y_val)
        s_v = np.ones(Y_v.shape[0]) if split.sample_weight_val is None else split.sample_weight_val
        # drawn after the split, which may draw from the same RandomState
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        weight_model = self._resolved_weight_model()
        # each fold holds a trusted row of every class, so the safeguard needs at least 2 of the rarest
        folds = self._safeguard_folds()
        folds = min(folds, np.unique(split.y_val, return_counts=True)[1].min()) if folds else 0
        baselines = {}
        if weight_model == "losses" or folds >= 2:
            baselines = self._baselines(split, Y_tr, Y_v, s_v, seed)
        fold_baselines = self._fold_baselines(split, Y_tr, Y_v, s_v, seed, folds, baselines) if folds >= 2 else []
        lower = self._weighted_lower(weight_model, split, Y_tr, Y_v, seed, baselines)
        problem = BilevelProblem(CrossEntropyValidationLoss(lower, split.X_val, Y_v, split.sample_weight_val), lower)
        self.method_ = select_method(problem, self.method)
        solved = problem
        if weight_model == "losses" and fold_baselines and self.method_ == "hypergradient":
            solved = self._cross_fitted_problem(split, Y_tr, Y_v, seed, fold_baselines)
        result = self._run_method(self.method_, solved, np.zeros(lower.n_hyper),
                                  self._method_options(weight_model),
                                  callback=None if self.callback is None else _WeightsCallback(self.callback, lower))
        weights = expit(lower.sample_logits(result.hyperparameters))
        # a cross-fitted run ends with one model per fold; the refit starts from that of all rows at weight 1
        start = result.model if solved is problem else baselines["uniform"][1]
        theta = self._refit(split.X_train, Y_tr, split.sample_weight_train * weights, split.X_val, Y_v, s_v, seed,
                            start)
        self.weighting_, self.safeguard_scores_ = "learned", None
        if fold_baselines:
            candidates = {"learned": (weights, theta), **baselines}
            coefficients = result.hyperparameters if weight_model == "losses" else None
            self.weighting_, self.safeguard_scores_ = self._safeguard(candidates, split, Y_tr, Y_v, s_v, seed,
                                                                      fold_baselines, coefficients)
            theta = candidates[self.weighting_][1]
        self.sample_weight_ = np.ones(X.shape[0])
        self.sample_weight_[self.train_indices_] = weights
        self.noise_rate_ = self._noise_rate(split, Y_tr, Y_v, s_v, seed, fold_baselines) if fold_baselines else None
        self.label_issues_ = np.zeros(X.shape[0], dtype=bool)
        self.label_issues_[self.train_indices_] = _label_issues(weights, self.noise_rate_)
        self.n_iter_ = result.n_iter
        self.history_ = result.history
        self.coef_, self.intercept_ = self._coefficients(lower, theta)
        return self

    # -- fit helpers ------------------------------------------------------------
    def _one_hot(self, y):
        return (np.asarray(y)[:, None] == self.classes_[None, :]).astype(float)

    def _lower_budget(self):
        if self.lower_max_iter != "auto":
            return int(self.lower_max_iter)
        return LOWER_MODELS[self.model].auto_max_iter

    def _resolved_weight_model(self):
        if self.weight_model == "auto":
            return "losses" if self.model == "logistic" else "per-sample"
        if self.weight_model == "losses" and self.model != "logistic":
            raise ValueError(f"weight_model='losses' needs model='logistic'; got model={self.model!r}. Use "
                             "weight_model='per-sample' with the network.")
        return self.weight_model

    def _method_options(self, weight_model):
        """The method's options for this lower level (see ``_INEXACT_OPTIONS`` and ``_LOSSES_OPTIONS``)."""
        options = dict(LOWER_MODELS[self.model].method_options.get(self.method_, {}))
        if weight_model == "losses":
            options.update(_LOSSES_OPTIONS.get(self.method_, {}))
        return options

    def _safeguard_folds(self):
        if self.safeguard_cv == "auto":
            return _AUTO_SAFEGUARD_FOLDS if self.model == "logistic" else None
        return self.safeguard_cv

    def _refit_budget(self):
        if self.refit_max_iter != "auto":
            return int(self.refit_max_iter)
        return _AUTO_REFIT_FACTOR * self._lower_budget()

    def _lower(self, X, Y, s, seed, budget=None):
        """The lower-level model on ``(X, Y)`` with fixed sample weights ``s``, ``budget`` iterations a solve."""
        budget = self._lower_budget() if budget is None else budget
        return LOWER_MODELS[self.model].build(X, Y, s, alpha=self.alpha, n_hidden=self.n_hidden, seed=seed,
                                              max_iter=budget)

    def _refit(self, X_tr, Y_tr, w_tr, X_v, Y_v, s_v, seed, theta0):
        """Train on the training part weighted by ``w_tr`` plus the trusted part weighted by ``s_v``."""
        stack = _sparse_vstack if sp.issparse(X_tr) or sp.issparse(X_v) else np.vstack
        theta, ok = self._train(stack([X_tr, X_v]), np.vstack([Y_tr, Y_v]), np.concatenate([w_tr, s_v]), seed, theta0)
        if not ok:
            warn("HyperCleaningClassifier: the final refit did not reach its tolerance.",
                 ConvergenceWarning)
        return theta

    def _train(self, X, Y, s, seed, theta0=None, tol=1e-8):
        """The model trained on the rows of ``X`` at the weights ``s``: ``(theta, converged)``.

        ``tol`` is the solve's, relative to the gradient norm at the start.
        """
        # The weighted mean loss, (1 / sum w) sum_i w_i l_i: weights count as scikit-learn's do (a
        # row of weight 0 is an absent row, weight 2 a repeated one) at the penalty alpha of an
        # unweighted fit, and the true weights would give the model of the clean rows alone. The
        # model's mean divides by the number of rows: weights of mean 1 make the two equal. Under
        # the plain 1/n mean, weights below 1 raised the penalty as well (benchmarks/results/
        # hyper_cleaning.md measures both on MNIST 5k).
        s = s * (s.size / s.sum())
        model = self._lower(X, Y, s, seed, budget=self._refit_budget())
        # x = +inf gives sigma(x) = 1: the weights are exactly s
        return LOWER_MODELS[self.model].train(model, np.full(Y.shape[0], np.inf), theta0, tol)

    def _baselines(self, split, Y_tr, Y_v, s_v, seed):
        """The plain weightings, ``{name: (training weights, model)}``: every training row at 1; none."""
        stack = _sparse_vstack if sp.issparse(split.X_train) or sp.issparse(split.X_val) else np.vstack
        n = Y_tr.shape[0]
        uniform, _ = self._train(stack([split.X_train, split.X_val]), np.vstack([Y_tr, Y_v]),
                                 np.concatenate([split.sample_weight_train, s_v]), seed)
        trusted, _ = self._train(split.X_val, Y_v, s_v, seed)
        return {"uniform": (np.ones(n), uniform), "trusted": (np.zeros(n), trusted)}

    def _weighted_lower(self, weight_model, split, Y_tr, Y_v, seed, models):
        """The lower level of the bilevel problem: one free weight per training row, or weights of their losses.

        ``'losses'``: sample ``i`` is weighted by ``sigma(c_0 + c_1 u_i + c_2 v_i)``, with ``u_i``
        and ``v_i`` the standardised losses of its label under ``models``' ``'trusted'`` and
        ``'uniform'`` models (see :meth:`_loss_features`); its solves start from the latter.
        """
        if weight_model == "per-sample":
            return self._lower(split.X_train, Y_tr, split.sample_weight_train, seed)
        features = self._loss_features(split, Y_tr, Y_v, seed, models)
        return FeatureWeightedSoftmaxRegression(split.X_train, Y_tr, features=features, alpha=self.alpha,
                                                sample_weight=split.sample_weight_train,
                                                max_iter=self._lower_budget(), start=models["uniform"][1])

    def _loss_features(self, split, Y_tr, Y_v, seed, models):
        """``[u, v, 1]``: the standardised cross-entropies of the training rows' labels under ``models``'
        ``'trusted'`` and ``'uniform'`` models (``{name: (weights, theta)}``), and a column of ones."""
        scorer = self._lower(split.X_val, Y_v, None, seed)  # its logits do not depend on its data
        losses = [_cross_entropy(scorer.logits(models[name][1], split.X_train), Y_tr) for name in ("trusted", "uniform")]
        return np.column_stack([(u - u.mean()) / max(u.std(), np.finfo(float).tiny) for u in losses]
                               + [np.ones(Y_tr.shape[0])])

    def _train_fold(self, split, Y_tr, Y_v, s_v, seed, weights, fit_rows, theta0):
        """The model of the training rows at ``weights`` plus the trusted rows ``fit_rows``, from ``theta0``."""
        stack = _sparse_vstack if sp.issparse(split.X_train) or sp.issparse(split.X_val) else np.vstack
        w = split.sample_weight_train * weights
        kept = w > 0
        theta, _ = self._train(stack([split.X_train[kept], split.X_val[fit_rows]]),
                               np.vstack([Y_tr[kept], Y_v[fit_rows]]), np.concatenate([w[kept], s_v[fit_rows]]),
                               seed, theta0, tol=_SAFEGUARD_TOL)
        return theta

    def _fold_baselines(self, split, Y_tr, Y_v, s_v, seed, folds, baselines):
        """The plain weightings' models of each of ``folds`` stratified folds of the trusted rows.

        A list of ``(fit_rows, held_out, {name: (weights, theta)})``, one per fold: each of
        ``baselines``' weightings trained, from its model on all trusted rows, on the training
        rows at its weights plus the trusted rows ``fit_rows`` (not the fold's ``held_out``).
        """
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        out = []
        for fit_rows, held_out in splitter.split(np.zeros(Y_v.shape[0]), split.y_val):
            models = {name: (weights, self._train_fold(split, Y_tr, Y_v, s_v, seed, weights, fit_rows, theta))
                      for name, (weights, theta) in baselines.items()}
            out.append((fit_rows, held_out, models))
        return out

    def _cross_fitted_problem(self, split, Y_tr, Y_v, seed, fold_baselines):
        """The loss weights' bilevel problem, cross-fitted over the folds of the trusted rows.

        Fold ``k``'s lower level weights the training rows by the losses under the fold's own
        plain models, trained without its held-out trusted rows, and its upper level is the
        cross-entropy on those rows; the coefficients ``c`` are shared (a
        :class:`~skbilevel.problems.cross_validation.CrossValidationProblem`). On all trusted
        rows at once, the loss ``u_i`` under the model of the trusted rows alone would favour
        itself: weighting the training rows by their agreement with a model fitted to the very
        rows the upper level scores lowers that score without cleaning anything.
        """
        problems = []
        for _, held_out, models in fold_baselines:
            lower = self._weighted_lower("losses", split, Y_tr, Y_v, seed, models)
            s_held = None if split.sample_weight_val is None else split.sample_weight_val[held_out]
            upper = CrossEntropyValidationLoss(lower, split.X_val[held_out], Y_v[held_out], s_held)
            problems.append(BilevelProblem(upper, lower))
        return CrossValidationProblem(tuple(problems))

    def _safeguard(self, candidates, split, Y_tr, Y_v, s_v, seed, fold_baselines, coefficients=None):
        """The weighting of highest cross-validated trusted-set accuracy, and the scores of all.

        Each fold of ``fold_baselines`` (see :meth:`_fold_baselines`) holds its trusted rows out
        in turn; each weighting's model is trained on the training rows at its weights plus the
        other trusted rows (from its model on all of them) and scored on the fold: its weighted
        accuracy (the estimator's ``score``) and, which breaks ties, its weighted cross-entropy.
        Cross-entropy alone favoured the learned weighting where it lost accuracy: a model
        trained on fewer wrong labels is more confident, which cross-entropy rewards on the rows
        it gets right.

        The learned weights were fitted to all trusted rows, the held-out ones included, which
        favours them in this comparison. With ``coefficients`` (the ``c`` of ``weight_model='losses'``)
        the learned weighting of a fold is recomputed from features of that fold's own baseline
        models, trained without its held-out rows, so that those rows reach the learned weighting
        no more than they reach the baselines (``c``, three numbers, is kept).
        """
        scores = {name: {"accuracy": 0.0, "cross_entropy": 0.0} for name in candidates}
        total = max(s_v.sum(), np.finfo(float).tiny)
        scorer = self._lower(split.X_val, Y_v, None, seed)  # its logits do not depend on its data
        for fit_rows, held_out, models in fold_baselines:
            weights, theta = candidates["learned"]
            if coefficients is not None:
                weights = expit(self._loss_features(split, Y_tr, Y_v, seed, models) @ coefficients)
            fold_models = {**models, "learned": (weights, self._train_fold(split, Y_tr, Y_v, s_v, seed, weights,
                                                                           fit_rows, theta))}
            for name, (_, fold_theta) in fold_models.items():
                Z, Y = scorer.logits(fold_theta, split.X_val[held_out]), Y_v[held_out]
                right = np.argmax(Z, axis=1) == np.argmax(Y, axis=1)
                scores[name]["accuracy"] += float(s_v[held_out] @ right) / total
                scores[name]["cross_entropy"] += float(s_v[held_out] @ _cross_entropy(Z, Y)) / total
        best = max(scores, key=lambda name: (scores[name]["accuracy"], -scores[name]["cross_entropy"],
                                             name == "learned"))
        return best, scores

    def _noise_rate(self, split, Y_tr, Y_v, s_v, seed, fold_baselines):
        """The share of wrong labels among the training rows, from the trusted folds' models.

        Each fold's model of its trusted rows alone (``fold_baselines``' ``'trusted'``) errs on its
        held-out trusted rows at a rate ``e`` (together: a cross-validated error) and disagrees
        with the training labels at a rate ``d`` (the mean over the folds; both rates weighted by
        the sample weights). A right label is disagreed with at the rate ``e``; a wrong one
        unless the model makes the very mistake of the label, at ``e / (K - 1)`` with ``K``
        classes when its errors spread evenly over the other classes (for two classes: exactly
        ``e``). Hence ``d = pi (1 - e / (K - 1)) + (1 - pi) e``, solved for ``pi`` and clipped
        to [0, 1]. Rates of the same models on both sides (not the model of all trusted rows
        for ``d``): the error ``e`` is that of a model trained on fewer rows. None when the
        models are no better than chance (``1 - e - e / (K - 1) <= 0``): their disagreements
        then say nothing of the labels.
        """
        scorer = self._lower(split.X_val, Y_v, None, seed)  # its logits do not depend on its data
        label_tr, label_v = np.argmax(Y_tr, axis=1), np.argmax(Y_v, axis=1)
        s_tr = split.sample_weight_train
        tiny = np.finfo(float).tiny
        error, disagreement = 0.0, 0.0
        for _, held_out, models in fold_baselines:
            theta = models["trusted"][1]
            wrong = np.argmax(scorer.logits(theta, split.X_val[held_out]), axis=1) != label_v[held_out]
            error += float(s_v[held_out] @ wrong)
            other = np.argmax(scorer.logits(theta, split.X_train), axis=1) != label_tr
            disagreement += float(s_tr @ other) / max(s_tr.sum(), tiny)
        e, d = error / max(s_v.sum(), tiny), disagreement / len(fold_baselines)
        informative = 1.0 - e - e / (self.classes_.size - 1)  # 0 for a model no better than chance
        return float(np.clip((d - e) / informative, 0.0, 1.0)) if informative > 0 else None

    def _coefficients(self, lower, theta):
        """``coef_`` and ``intercept_`` of the model ``theta`` of ``lower``."""
        return LOWER_MODELS[self.model].coefficients(lower, theta, self.classes_.size)

    # -- prediction -------------------------------------------------------------
    def _decision_scores(self, X):
        """The logits; for two classes their difference ``z_1 - z_0``, positive for ``classes_[1]``."""
        Z = LOWER_MODELS[self.model].logits(self.coef_, self.intercept_, X)
        if self.classes_.size == 2:
            return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z.ravel()
        return Z

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Return class probabilities, shape (n_samples, n_classes).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Softmax of the logits; columns in the order of ``classes_``.
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1.0 - p, p])
        return softmax(scores, axis=1)


class _WeightsCallback:
    """Adapt a method's callback info (``hyperparameters = x``) to the user's (``weights = sigma(x)``)."""

    def __init__(self, user_callback, lower):
        self.user_callback, self.lower = user_callback, lower

    def __call__(self, info):
        info = dict(info)
        info["weights"] = expit(self.lower.sample_logits(info.pop("hyperparameters")))
        return self.user_callback(info)


def _label_issues(weights, noise_rate):
    """The training rows judged wrongly labelled (see ``label_issues_``): the ``round(noise_rate * n)``
    of lowest weight, or, when ``noise_rate`` is None, those of weight below ``_ISSUE_THRESHOLD``."""
    if noise_rate is None:
        return weights < _ISSUE_THRESHOLD
    flagged = np.zeros(weights.size, dtype=bool)
    flagged[np.argsort(weights, kind="stable")[: int(round(noise_rate * weights.size))]] = True
    return flagged


def _cross_entropy(Z, Y):
    """Per-row cross-entropy of the logits ``Z`` against the one-hot ``Y``."""
    return logsumexp(Z, axis=1) - np.sum(Z * Y, axis=1)


def _sparse_vstack(blocks):
    return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
