"""Per-sample datafits and the shared linear model: derivatives against central differences, adjoints
against the dot-product test."""

import numpy as np
import pytest
from scipy import sparse
from scipy.special import logsumexp

from skbilevel.problems.datafits import Logistic, Multinomial, Squared, SquaredHinge, validation_datafit
from skbilevel.problems.linear_model import LinearModel

rng = np.random.default_rng(0)
N, K = 7, 3
SIGNS = np.where(rng.random(N) < 0.5, -1.0, 1.0)
SIGN_MATRIX = np.where(rng.random((N, K)) < 0.5, -1.0, 1.0)
ONE_HOT = np.eye(K)[rng.integers(0, K, N)]

DATAFITS = {
    "logistic": (Logistic(SIGNS), (N,)),
    "squared_hinge": (SquaredHinge(SIGNS), (N,)),
    "squared_hinge_ovr": (SquaredHinge(SIGN_MATRIX), (N, K)),
    "squared": (Squared(rng.normal(size=N)), (N,)),
    "multinomial": (Multinomial(ONE_HOT), (N, K)),
}


def _central(f, D, h=1e-6):
    """Central differences of ``sum(f(D))`` entry by entry."""
    grad = np.zeros_like(D)
    for idx in np.ndindex(D.shape):
        e = np.zeros_like(D)
        e[idx] = h
        grad[idx] = (f(D + e).sum() - f(D - e).sum()) / (2 * h)
    return grad


def _away_from_kinks(D, fit):
    """Keep the squared hinge's margins away from 1, where its second derivative jumps."""
    if isinstance(fit, SquaredHinge):
        m = fit.t * D
        D = np.where(np.abs(m - 1.0) < 0.1, D + 0.3 * fit.t, D)
    return D


@pytest.mark.parametrize("name", DATAFITS)
def test_raw_grad_matches_finite_differences(name):
    fit, shape = DATAFITS[name]
    D = _away_from_kinks(2 * rng.normal(size=shape), fit)
    np.testing.assert_allclose(fit.raw_grad(D), _central(fit.loss, D), rtol=1e-6, atol=1e-8)
    loss, grad = fit.loss_and_raw_grad(D)
    np.testing.assert_allclose(loss, fit.loss(D), rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad, fit.raw_grad(D), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", DATAFITS)
def test_curvature_matches_finite_differences_of_the_gradient(name):
    """``diag(d_i) - u_i u_i^T`` applied to a direction is the derivative of ``s_i raw_grad_i`` along it."""
    fit, shape = DATAFITS[name]
    D = _away_from_kinks(2 * rng.normal(size=shape), fit)
    s, V, h = rng.uniform(0.5, 2.0, N), rng.normal(size=shape), 1e-6
    weights = s if len(shape) == 1 or isinstance(fit, Multinomial) else s[:, None] * np.ones(shape)
    d, u = fit.curvature(D, weights)
    HV = d * V if u is None else d * V - u * np.sum(u * V, axis=1, keepdims=True)
    sw = s if len(shape) == 1 else s[:, None]
    fd = sw * (fit.raw_grad(D + h * V) - fit.raw_grad(D - h * V)) / (2 * h)
    np.testing.assert_allclose(HV, fd, rtol=1e-6, atol=1e-8)
    if isinstance(fit, Multinomial):
        np.testing.assert_allclose(sw * fit.hessian_product(fit.probabilities(D), V), HV, rtol=1e-12, atol=1e-15)


def test_multinomial_is_logsumexp_minus_the_label_logit():
    D = rng.normal(size=(N, K))
    np.testing.assert_allclose(Multinomial(ONE_HOT).loss(D), logsumexp(D, axis=1) - np.sum(D * ONE_HOT, axis=1))
    t = ONE_HOT.argmax(axis=1)
    np.testing.assert_array_equal(Multinomial.from_indices(t, K).Y, ONE_HOT)


def test_validation_datafit_reads_binary_and_multiclass_targets():
    t = np.array([0, 2, 1])
    assert isinstance(validation_datafit("log", np.array([1.0, -1.0, 1.0]), np.zeros(3)), Logistic)
    assert isinstance(validation_datafit("log", t, np.zeros((3, 3))), Multinomial)
    ovr = validation_datafit("squared", t, np.zeros((3, 3)))
    np.testing.assert_array_equal(ovr.t, 2.0 * np.eye(3)[t] - 1.0)


@pytest.mark.parametrize("as_sparse", [False, True])
@pytest.mark.parametrize("layout,n_outputs,beta", [("vector", 1, 1.0), ("rows", 1, 1.0), ("rows", 3, 2.5),
                                                   ("rows", 2, 0.0), ("columns", 3, 1.0)])
def test_linear_model_adjoint_is_the_transpose_of_its_decision(layout, n_outputs, beta, as_sparse):
    """``<G, D(theta) - D(0)> = <adjoint(G), theta>`` (D is affine only through the zero intercept: linear)."""
    p = 4
    X = rng.normal(size=(N, p))
    if as_sparse:
        X[rng.random(X.shape) < 0.5] = 0.0
        X = sparse.csr_matrix(X)
    model = LinearModel(p, n_outputs, layout=layout, intercept_scaling=beta)
    theta = rng.normal(size=model.n_params)
    D = model.decision(theta, X)
    assert D.shape == ((N,) if layout == "vector" else (N, n_outputs))
    G = rng.normal(size=D.shape)
    np.testing.assert_allclose(np.sum(G * D), model.adjoint(G, X) @ theta, rtol=1e-12)
    W, b = model.split(theta)
    dense = X.toarray() if as_sparse else X
    expected = dense @ W + b if layout != "rows" else dense @ W.T + beta * b
    np.testing.assert_allclose(D, expected, rtol=1e-12)


def test_linear_model_refuses_unknown_layouts():
    with pytest.raises(ValueError, match="layout"):
        LinearModel(3, layout="diagonal")
    with pytest.raises(ValueError, match="one decision function"):
        LinearModel(3, 2, layout="vector")
