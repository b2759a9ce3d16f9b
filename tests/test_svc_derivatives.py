"""Derivatives of the binary kernel SVC lower level (skbilevel.problems.kernel_svc).

The hypergradient exists where no support vector changes state (free / at C /
at 0). Finite differences are only meaningful there, so every derivative test
first asserts that the active set at ``x +- h e_j`` is the one at ``x``
(:func:`_assert_smooth`); a point failing that sits on a kink and must be
replaced, not the tolerance loosened.
"""

import numpy as np
import pytest
from scipy import sparse
from sklearn.svm import SVC

from skbilevel.problems.kernel_svc import SVCLowerLevel

from _search_helpers import check_hypergradient, fold_problem

H = 1e-5  # the step of check_hypergradient


def _data(seed=0, n_features=4, balanced=False, shift=0.8):
    """60 training and 20 validation samples of two overlapping classes, string labels."""
    rng = np.random.default_rng(seed)
    t = np.tile([-1, 1], 40) if balanced else np.where(rng.random(80) < 0.5, -1, 1)
    X = rng.normal(size=(80, n_features))
    X[:, 0] += shift * t
    labels = np.where(t > 0, "b", "a")
    weights = rng.uniform(0.5, 2.0, 60)
    return X[:60], labels[:60], X[60:], labels[60:], weights


def _problem(estimator, names, weighted=False, **data):
    X, y, X_val, y_val, w = _data(**data)
    return fold_problem(SVCLowerLevel, estimator, X, y, X_val, y_val, names, ["log"] * len(names),
                        sample_weight=w if weighted else None)


def _active(lower, x):
    """Free and upper-bounded support vectors (and the intercept pair when none is free)."""
    y, ok = lower.solve(x, None, 1e-12)
    assert ok
    _, _, F, U, pair = lower._state(x, y[:-1])
    return F, U, None if pair is None else pair[:2]


def _assert_smooth(lower, x, h=H):
    F, U, pair = _active(lower, x)
    for j in range(x.size):
        for sign in (-1.0, 1.0):
            step = np.zeros_like(x)
            step[j] = sign * h
            F2, U2, pair2 = _active(lower, x + step)
            assert np.array_equal(F, F2) and np.array_equal(U, U2) and pair == pair2, \
                f"x = {x} is at a kink (a support vector changes state within {h}); pick another point"
    return F, U


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
@pytest.mark.parametrize("weighted", [False, True])
def test_solve_matches_svc(kernel, weighted):
    X, y, X_val, _, w = _data()
    w = w if weighted else None
    est = SVC(kernel=kernel, C=1.0, gamma=0.3)
    lower = SVCLowerLevel(est, X, y, ("C",), ("log",), sample_weight=w)
    x = np.log([1.0])
    ref = SVC(kernel=kernel, C=1.0, gamma=0.3, tol=1e-12).fit(X, y, sample_weight=w)
    # libsvm's own solution, mapped onto (beta, b): the sign conventions are exact.
    lower.polish = False
    raw, _ = lower.solve(x, None, 1e-12)
    np.testing.assert_allclose(lower.decision(x, raw, X_val), ref.decision_function(X_val), atol=1e-10)
    np.testing.assert_array_equal(np.flatnonzero(raw[:-1]), np.sort(ref.support_))
    # The polished solution moves by libsvm's float32 kernel rounding only, and solves G = 0.
    lower.polish = True
    y_opt, ok = lower.solve(x, None, 1e-12)
    assert ok
    np.testing.assert_allclose(lower.decision(x, y_opt, X_val), ref.decision_function(X_val), atol=1e-6)
    assert np.abs(lower.grad_y(x, y_opt)).max() < 1e-10
    F, U, _ = _active(lower, x)
    assert F.size and U.size  # overlapping classes: both kinds of support vectors
    a = np.abs(ref.dual_coef_[0])
    K = np.exp(-0.3 * ((ref.support_vectors_[:, None] - ref.support_vectors_) ** 2).sum(-1)) \
        if kernel == "rbf" else ref.support_vectors_ @ ref.support_vectors_.T
    dual = 0.5 * ref.dual_coef_[0] @ K @ ref.dual_coef_[0] - a.sum()
    assert lower.value(x, y_opt) == pytest.approx(dual, rel=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("C, gamma", [(1.0, 0.3), (3.0, 0.1), (0.3, 1.0)])
def test_hypergradient_rbf(weighted, C, gamma):
    problem = _problem(SVC(), ("C", "gamma"), weighted)
    x = np.log([C, gamma])
    F, U = _assert_smooth(problem.lower, x)
    assert F.size and U.size
    grad, _ = check_hypergradient(problem, x, h=H, rtol=1e-4)
    assert np.all(np.abs(grad) > 1e-6)  # a real check, not 0 == 0


@pytest.mark.parametrize("as_sparse", [False, True])
def test_large_folds_compute_kernel_blocks_on_demand(monkeypatch, as_sparse):
    """Past DISTANCE_CACHE_BYTES no n x n distance matrix is stored; the blocks, the solution and
    the hypergradient are those of the stored matrix."""
    from skbilevel.problems import kernel_svc

    X, y, X_val, y_val, w = _data()
    X = sparse.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X)) if as_sparse else X
    stored = fold_problem(SVCLowerLevel, SVC(), X, y, X_val, y_val, ("C", "gamma"), ["log"] * 2, w)
    monkeypatch.setattr(kernel_svc, "DISTANCE_CACHE_BYTES", 0)
    on_demand = fold_problem(SVCLowerLevel, SVC(), X, y, X_val, y_val, ("C", "gamma"), ["log"] * 2, w)
    assert stored.lower.D is not None and on_demand.lower.D is None
    rows, cols = np.array([3, 0, 7, 59]), np.arange(60)
    np.testing.assert_allclose(on_demand.lower._distances(rows, cols), stored.lower._distances(rows, cols),
                               rtol=0, atol=1e-12)
    assert np.all(on_demand.lower._distances(rows, rows).diagonal() == 0.0)
    x = np.log([1.0, 0.3])
    y_stored, _ = stored.lower.solve(x, None, 1e-12)
    y_demand, ok = on_demand.lower.solve(x, None, 1e-12)
    assert ok
    np.testing.assert_allclose(y_demand, y_stored, rtol=0, atol=1e-9)
    grad, _ = check_hypergradient(on_demand, x, h=H, rtol=1e-4)
    np.testing.assert_allclose(grad, check_hypergradient(stored, x, h=H, rtol=1e-4)[0], rtol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_hypergradient_linear(weighted, C):
    # 10 features: with |F| = p + 1 free support vectors (w, b) would be pinned and the
    # hypergradient identically zero; with more features it is not.
    problem = _problem(SVC(kernel="linear"), ("C",), weighted, seed=1, n_features=10, shift=1.0)
    x = np.log([C])
    F, _ = _assert_smooth(problem.lower, x)
    assert 0 < F.size <= 10
    grad, _ = check_hypergradient(problem, x, h=H, rtol=1e-4)
    assert abs(grad[0]) > 1e-6


def test_hypergradient_without_free_support_vectors():
    # Balanced classes and a small C: every multiplier sits at C, and libsvm's intercept
    # is the midpoint of its feasible interval.
    problem = _problem(SVC(), ("C", "gamma"), seed=2, balanced=True, shift=0.3)
    x = np.log([0.01, 0.5])
    F, U = _assert_smooth(problem.lower, x)
    assert F.size == 0 and U.size == 60
    lower = problem.lower
    lower.polish = False
    raw, _ = lower.solve(x, None, 1e-12)
    lower.polish = True
    polished, _ = lower.solve(x, None, 1e-12)
    np.testing.assert_allclose(polished, raw, atol=1e-9)
    check_hypergradient(problem, x, h=H, rtol=1e-4)


def test_class_weight_zero_weights_gamma_scale_sparse():
    X, y, X_val, y_val, w = _data(seed=3)
    w[:4], w[4] = 0.0, -1.0  # libsvm drops non-positive weights
    est = SVC(C=2.0, gamma="scale", class_weight={"a": 2.0, "b": 0.7})
    ref = SVC(**{**est.get_params(), "tol": 1e-12}).fit(X, y, sample_weight=w)
    x = np.log([2.0])
    for data in (X, sparse.csr_matrix(X)):
        problem = fold_problem(SVCLowerLevel, est, data, y, X_val, y_val, ("C",), ("log",), sample_weight=w)
        lower = problem.lower
        assert sparse.issparse(lower.X) == sparse.issparse(data)  # libsvm fits sparse rows as they are
        assert lower.gamma == pytest.approx(ref._gamma, rel=1e-12)
        lower.polish = False
        raw, _ = lower.solve(x, None, 1e-12)
        np.testing.assert_allclose(lower.decision(x, raw, X_val), ref.decision_function(X_val), atol=1e-10)
        assert not raw[:5].any()
        lower.polish = True
        _assert_smooth(lower, x)
        check_hypergradient(problem, x, h=H, rtol=1e-4)


def test_string_labels_sorted():
    X, y, X_val, _, _ = _data()
    y = np.where(y == "b", "neg", "pos")  # the first label seen is not classes_[1]
    y[0] = "pos"
    lower = SVCLowerLevel(SVC(), X, y, ("C",), ("log",))
    np.testing.assert_array_equal(lower.classes_, ["neg", "pos"])
    np.testing.assert_array_equal(lower.encode_targets(["pos", "neg"]), [1.0, -1.0])
    x = np.log([1.0])
    yy, _ = lower.solve(x, None, 1e-12)
    ref = SVC(tol=1e-12).fit(X, y)
    np.testing.assert_allclose(lower.decision(x, yy, X_val), ref.decision_function(X_val), atol=1e-6)


def test_errors():
    X, y, *_ = _data()
    three = y.copy()
    three[:10] = "c"
    with pytest.raises(ValueError, match="binary-only.*LinearSVC"):
        SVCLowerLevel(SVC(), X, three, ("C",), ("log",))
    with pytest.raises(ValueError, match="kernel='rbf' or 'linear'"):
        SVCLowerLevel(SVC(kernel="poly"), X, y, ("C",), ("log",))
    with pytest.raises(ValueError, match="no gamma"):
        SVCLowerLevel(SVC(kernel="linear"), X, y, ("C", "gamma"), ("log", "log"))
    with pytest.raises(ValueError, match="cannot be differentiated"):
        SVCLowerLevel(SVC(), X, y, ("degree",), ("log",))


def test_polish_repairs_a_wrong_active_set():
    # What libsvm's float32 kernel can do to an ill-conditioned problem (tiny gamma, huge C):
    # report a free support vector at its bound and a bounded one at zero. The polish's
    # active-set steps restore the double-precision solution.
    problem = _problem(SVC(), ("C", "gamma"))
    lower, x = problem.lower, np.log([1.0, 0.3])
    y, _ = lower.solve(x, None, 1e-12)
    F, U, _ = _active(lower, x)
    wrong = y.copy()
    wrong[F[0]] = lower.t[F[0]] * 1.0 * lower.r[F[0]]
    wrong[U[0]] = 0.0
    wrong[F[1]] = 0.0
    np.testing.assert_allclose(lower._polish(1.0, 0.3, wrong), y, atol=1e-10)
