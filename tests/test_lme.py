"""Lagrange multiplier expressions (skbilevel.problems.lme) against solver duals and finite differences.

Convention of the package: constraints ``A y - b(x) >= 0`` and KKT ``grad_y f = A^T lambda``,
``lambda >= 0``. For ``A @ y >= b`` in a minimisation, cvxpy's ``dual_value`` is that same
``lambda``. For an equality ``A_eq @ y == b`` cvxpy's dual ``nu`` satisfies
``grad f + A_eq^T nu = 0``, so our equality multiplier is ``-nu`` (checked in
``test_cvxpy_equality_dual_sign``).

The random QPs plant a KKT point: a solution ``y*``, an active set with strictly positive
multipliers and strictly positive slacks elsewhere, so the unconstrained minimiser is
infeasible and strict complementarity holds. cvxpy solves each QP independently and its
solution and duals are the reference.
"""

import cvxpy as cp
import numpy as np
import pytest

from conftest import fd_gradient
from skbilevel.problems.lme import (
    BoxLME,
    EqualityLME,
    IdentityBlockLME,
    MatrixLME,
    PseudoInverseLME,
    SimplexLME,
)
from skbilevel.problems import QuadraticLowerLevel, WeightedSquaredHingeSVM, example_2_2

TOL = 1e-6
CLARABEL_TIGHT = dict(tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, tol_ktratio=1e-9)
SEEDS = range(20)


def assert_close(actual, expected, tol=TOL):
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape
    err = np.linalg.norm(actual - expected)
    assert err <= tol * max(1.0, np.linalg.norm(expected)), (err, actual, expected)


# -- random problems with a planted KKT point -----------------------------------------------


def spd(rng, n):
    M = rng.standard_normal((n, n))
    return M @ M.T + np.eye(n)


def planted_qp(rng, A, y_star, lam, slack, n_hyper=2, x_dependent=True):
    """Return ``(lower, x)``: a strictly convex QP whose unique KKT pair is ``(y_star, lam)``."""
    n_con, n_var = A.shape
    Q = spd(rng, n_var)
    P = rng.standard_normal((n_var, n_hyper))
    B = rng.standard_normal((n_con, n_hyper)) if x_dependent else np.zeros((n_con, n_hyper))
    x = rng.standard_normal(n_hyper)
    q = A.T @ lam - Q @ y_star - P @ x  # grad_y f(x, y*) = A^T lam
    b0 = A @ y_star - slack - B @ x  # A y* - b(x) = slack
    return QuadraticLowerLevel(Q, P, q, A, B, b0), x


def solve_qp(lower, x, A_eq=None, b_eq=None):
    """Solve the QP at ``x`` with cvxpy (``A y >= b(x)``, or ``A_eq y = b_eq`` if given); return ``(y, duals)``."""
    y = cp.Variable(lower.n_var)
    c = lower.P @ x + lower.q
    cons = [lower.A @ y >= lower.b(x)] if A_eq is None else [A_eq @ y == b_eq]
    prob = cp.Problem(cp.Minimize(0.5 * cp.quad_form(y, lower.Q) + c @ y), cons)
    prob.solve(solver=cp.CLARABEL, **CLARABEL_TIGHT)
    assert prob.status == cp.OPTIMAL
    return y.value, cons[0].dual_value


def general_qp(rng, n_var, n_con):
    A = rng.standard_normal((n_con, n_var))
    n_active = rng.integers(1, min(n_var, n_con - 1) + 1)
    active = rng.permutation(n_con)[:n_active]
    lam, slack = np.zeros(n_con), rng.uniform(0.5, 2.0, n_con)
    lam[active], slack[active] = rng.uniform(0.5, 2.0, n_active), 0.0
    return planted_qp(rng, A, rng.standard_normal(n_var), lam, slack)


def box_qp(rng, p):
    """Box ``l <= y <= u``; the first third of y at l, the second third at u, the rest interior."""
    lo = rng.uniform(-2.0, -1.0, p)
    hi = lo + rng.uniform(1.0, 3.0, p)
    at_lo, at_hi = np.arange(p) % 3 == 0, np.arange(p) % 3 == 1
    y_star = np.where(at_lo, lo, np.where(at_hi, hi, lo + 0.5 * (hi - lo)))
    lam = np.concatenate([at_lo * rng.uniform(0.5, 2.0, p), at_hi * rng.uniform(0.5, 2.0, p)])
    A = np.vstack([np.eye(p), -np.eye(p)])
    return planted_qp(rng, A, y_star, lam, A @ y_star - np.concatenate([lo, -hi]), x_dependent=False)


def simplex_qp(rng, p, n_at_lo, sum_active=True):
    """``y >= l``, ``sum(y) <= u0`` with ``n_at_lo`` components at l (at least one is interior)."""
    lo = rng.uniform(-1.0, 1.0, p)
    at_lo = np.arange(p) < n_at_lo
    y_star = np.where(at_lo, lo, lo + rng.uniform(0.5, 1.5, p))
    u0 = y_star.sum() + (0.0 if sum_active else rng.uniform(0.5, 1.5))
    lam = np.concatenate([at_lo * rng.uniform(0.5, 2.0, p), [rng.uniform(0.5, 2.0) if sum_active else 0.0]])
    A = np.vstack([np.eye(p), -np.ones((1, p))])
    return planted_qp(rng, A, y_star, lam, A @ y_star - np.concatenate([lo, [-u0]]), x_dependent=False)


def svm_lower(rng, n_samples=12, n_features=3, per_sample=True):
    X = rng.standard_normal((n_samples, n_features))
    direction = rng.standard_normal(n_features)
    direction /= np.linalg.norm(direction)
    labels = np.where(np.arange(n_samples) % 2 == 0, 1.0, -1.0)
    X += 2.0 * labels[:, None] * direction  # classes 4 apart along direction: points beyond the margin ...
    labels[0] = -labels[0]  # ... except one margin error
    lower = WeightedSquaredHingeSVM(X, labels, per_sample=per_sample)
    return lower, rng.uniform(-1.0, 1.5, lower.n_hyper)


def svm_duals(lower, x):
    w, b, xi = cp.Variable(lower.n_features), cp.Variable(), cp.Variable(lower.n_samples)
    omega = lower.weights(x)
    cons = [cp.multiply(lower.y, lower.X @ w + b) >= 1 - xi]
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w) + 0.5 * cp.sum(cp.multiply(omega, xi**2))), cons)
    prob.solve(solver=cp.CLARABEL, **CLARABEL_TIGHT)
    assert prob.status == cp.OPTIMAL
    return cons[0].dual_value


# -- values at KKT points -------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_var,n_con", [(3, 2), (5, 10), (8, 6)])
def test_pseudo_inverse_matches_cvxpy_duals(seed, n_var, n_con):
    lower, x = general_qp(np.random.default_rng(seed), n_var, n_con)
    y_star, duals = solve_qp(lower, x)
    assert duals.max() > 0.1 and duals.min() < 1e-8  # some constraints active, some not
    assert_close(PseudoInverseLME().value(lower, x, y_star), duals)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [3, 7])
def test_box_lme_matches_cvxpy_and_pseudo_inverse(seed, p):
    lower, x = box_qp(np.random.default_rng(seed), p)
    y_star, duals = solve_qp(lower, x)
    tau = BoxLME().value(lower, x, y_star)
    assert_close(tau, duals)
    assert_close(tau, PseudoInverseLME().value(lower, x, y_star))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p,n_at_lo,sum_active", [(3, 2, True), (6, 4, True), (5, 0, True), (4, 2, False)])
def test_simplex_lme_matches_cvxpy_and_pseudo_inverse(seed, p, n_at_lo, sum_active):
    lower, x = simplex_qp(np.random.default_rng(seed), p, n_at_lo, sum_active)
    y_star, duals = solve_qp(lower, x)
    tau = SimplexLME().value(lower, x, y_star)
    assert_close(tau, duals)
    assert_close(tau, PseudoInverseLME().value(lower, x, y_star))


@pytest.mark.parametrize("seed", range(5))
def test_simplex_paper_formula_is_wrong_with_several_active_bounds(seed):
    """The printed ``tau_i = (u0 - y_i) G_i / s`` misses the cvxpy multipliers when p > 1."""
    lower, x = simplex_qp(np.random.default_rng(seed), 4, 2, sum_active=True)
    y_star, duals = solve_qp(lower, x)
    bx, G = lower.b(x), lower.grad_y(x, y_star)
    lo, u0 = bx[:4], -bx[4]
    printed = (u0 - y_star) * G / (u0 - lo.sum())
    assert np.linalg.norm(printed - duals[:4]) > 1e-2


def equality_qp(rng, n_var, n_eq):
    A_eq = rng.standard_normal((n_eq, n_var))
    Q, P, q = spd(rng, n_var), rng.standard_normal((n_var, 2)), rng.standard_normal(n_var)
    B, b0 = rng.standard_normal((n_eq, 2)), rng.standard_normal(n_eq)
    lower = QuadraticLowerLevel(Q, P, q, np.vstack([A_eq, -A_eq]), np.vstack([B, -B]), np.concatenate([b0, -b0]))
    return lower, A_eq, B, b0, rng.standard_normal(2)


def test_cvxpy_equality_dual_sign():
    """cvxpy: ``grad f + A^T nu = 0``, i.e. nu = -lambda in our ``grad f = A^T lambda``."""
    y = cp.Variable(2)
    cons = [cp.sum(y) == 1]
    cp.Problem(cp.Minimize(cp.sum_squares(y) + y[0]), cons).solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(y.value, [0.25, 0.75], atol=1e-7)
    np.testing.assert_allclose(cons[0].dual_value, -1.5, atol=1e-7)  # grad f = (1.5, 1.5) = A^T 1.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_var,n_eq", [(3, 1), (6, 3), (8, 8)])
def test_equality_lme_matches_cvxpy_and_pseudo_inverse_pair(seed, n_var, n_eq):
    lower, A_eq, B, b0, x = equality_qp(np.random.default_rng(seed), n_var, n_eq)
    y_star, nu = solve_qp(lower, x, A_eq, B @ x + b0)
    tau = EqualityLME(A_eq).value(lower, x, y_star)
    assert_close(tau, -nu)  # sign convention, see the module docstring
    pair = PseudoInverseLME().value(lower, x, y_star)
    assert_close(pair[:n_eq] - pair[n_eq:], tau)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_samples,n_features", [(12, 3), (25, 5)])
def test_svm_identity_block_lme_matches_cvxpy(seed, n_samples, n_features):
    lower, x = svm_lower(np.random.default_rng(seed), n_samples, n_features)
    y_star, converged = lower.solve(x)
    assert converged
    duals = svm_duals(lower, x)
    assert duals.max() > 0.1 and duals.min() < 1e-8  # margin errors and non-support vectors
    tau = lower.default_lme().value(lower, x, y_star)
    assert isinstance(lower.default_lme(), IdentityBlockLME)
    assert_close(tau, duals)


@pytest.mark.parametrize("x", [[1.0, -2.0, 0.5], [-1.0, 0.3, -0.2], [0.4, 0.5, -0.1], [2.0, 1.0, 3.0]])
def test_matrix_lme_example_2_2(x):
    lower, x = example_2_2().lower, np.array(x)
    s = x.sum()
    y_star = np.full(3, min(s, 0.0) / 3)  # argmin y.y s.t. sum(y) <= sum(x)
    expected = np.array([max(-2 * s / 3, 0.0)])
    tau = MatrixLME([-1 / 3, -1 / 3, -1 / 3, 0]).value(lower, x, y_star)
    assert_close(tau, expected)
    assert_close(tau, PseudoInverseLME().value(lower, x, y_star))


# -- vector-Jacobian products by central finite differences ---------------------------------


def fd_grads(lme, lower, x, y, u):
    """Gradients in ``x`` and in ``y`` of ``u^T lambda(x, y)``."""
    def phi(xx, yy):
        return lme.value(lower, xx, yy) @ u

    return fd_gradient(lambda xx: phi(xx, y), x), fd_gradient(lambda yy: phi(x, yy), y)


def assert_vjp(lme, lower, x, y, rng):
    u = rng.standard_normal(lme.value(lower, x, y).size)
    gx, gy = lme.vjp(lower, x, y, u)
    fx, fy = fd_grads(lme, lower, x, y, u)
    assert_close(gx, fx)
    assert_close(gy, fy)
    assert np.linalg.norm(gx) + np.linalg.norm(gy) > 1e-3  # the check is not vacuous


def generic_qp(rng, n_var, n_con, n_hyper=3):
    lower = QuadraticLowerLevel(spd(rng, n_var), rng.standard_normal((n_var, n_hyper)), rng.standard_normal(n_var),
                                rng.standard_normal((n_con, n_var)), rng.standard_normal((n_con, n_hyper)),
                                rng.standard_normal(n_con))
    return lower, rng.standard_normal(n_hyper), rng.standard_normal(n_var)


def bounds_qp(rng, A, b0, n_hyper=3):
    """A QP with fixed ``A``, ``b(x) = 0.1 B x + b0`` (x-dependent bounds) at a random point."""
    n_con, n_var = A.shape
    lower = QuadraticLowerLevel(spd(rng, n_var), rng.standard_normal((n_var, n_hyper)), rng.standard_normal(n_var),
                                A, 0.1 * rng.standard_normal((n_con, n_hyper)), b0)
    return lower, rng.standard_normal(n_hyper), rng.standard_normal(n_var)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_var,n_con", [(3, 2), (4, 9), (6, 6)])
def test_pseudo_inverse_vjp(seed, n_var, n_con):
    rng = np.random.default_rng(seed)
    lower, x, y = generic_qp(rng, n_var, n_con)
    assert_vjp(PseudoInverseLME(), lower, x, y, rng)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [1, 4])
def test_box_vjp(seed, p):
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-2.0, -1.0, p)
    hi = lo + rng.uniform(1.0, 3.0, p)
    lower, x, y = bounds_qp(rng, np.vstack([np.eye(p), -np.eye(p)]), np.concatenate([lo, -hi]))
    assert_vjp(BoxLME(), lower, x, y, rng)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("p", [1, 3, 5])
def test_simplex_vjp(seed, p):
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-1.0, 0.0, p)
    u0 = lo.sum() + rng.uniform(1.0, 2.0)
    lower, x, y = bounds_qp(rng, np.vstack([np.eye(p), -np.ones((1, p))]), np.concatenate([lo, [-u0]]))
    assert_vjp(SimplexLME(), lower, x, y, rng)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_var,n_eq", [(3, 1), (5, 3)])
def test_equality_vjp(seed, n_var, n_eq):
    rng = np.random.default_rng(seed)
    lower, A_eq, _, _, x = equality_qp(rng, n_var, n_eq)
    assert_vjp(EqualityLME(A_eq), lower, x, rng.standard_normal(n_var), rng)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("per_sample", [True, False])
def test_identity_block_vjp_svm(seed, per_sample):
    rng = np.random.default_rng(seed)
    lower, x = svm_lower(rng, per_sample=per_sample)
    assert_vjp(lower.default_lme(), lower, x, rng.standard_normal(lower.n_var), rng)


@pytest.mark.parametrize("seed", range(5))
def test_matrix_lme_vjp(seed):
    rng = np.random.default_rng(seed)
    lower, x, y = generic_qp(rng, 4, 3)
    assert_vjp(MatrixLME(rng.standard_normal((3, 4 + 3))), lower, x, y, rng)


@pytest.mark.parametrize("seed", range(3))
def test_matrix_lme_vjp_example_2_2(seed):
    rng = np.random.default_rng(seed)
    lower = example_2_2().lower
    lme, x, y, u = MatrixLME([-1 / 3, -1 / 3, -1 / 3, 0]), rng.standard_normal(3), rng.standard_normal(3), [1.7]
    gx, gy = lme.vjp(lower, x, y, np.array(u))
    fx, fy = fd_grads(lme, lower, x, y, np.array(u))
    assert_close(gx, fx)
    assert_close(gy, np.full(3, -2 / 3 * 1.7))  # d(-1/3 sum(2y)) / dy, times u
    assert_close(gy, fy)


def test_no_convergence_claimed_where_the_pseudo_inverse_lme_loses_rank():
    """A simplex lower level: at an active constraint the Jacobian of the pseudo-inverse LME (2.3) loses
    rank, the constraint qualification of Theorem 3.5 fails, and multipliers of 1e11 made the KKT residual
    vanish at x = 0.26, where dF/dx = -0.62 (the optimum is x = 2/3, which SimplexLME finds)."""
    from skbilevel.methods import lme_mpec
    from skbilevel.problems.lme import SimplexLME
    from skbilevel.problems import BilevelProblem, QuadraticLowerLevel, TargetUpper
    M = np.array([[1.0], [0.5], [-0.3]])
    A = np.vstack([np.eye(3), -np.ones((1, 3))])
    lower = QuadraticLowerLevel(np.eye(3), -M, np.zeros(3), A, np.zeros((4, 1)), np.r_[np.zeros(3), -1.0])
    problem = BilevelProblem(TargetUpper([0.7, 0.5, 0.0]), lower)
    default = lme_mpec.solve(problem, np.array([2.0]))
    assert not default.converged or abs(default.hyperparameters[0] - 2 / 3) < 1e-3
    simplex = lme_mpec.solve(problem, np.array([2.0]), lme=SimplexLME())
    assert simplex.converged and simplex.hyperparameters[0] == pytest.approx(2 / 3, abs=1e-3)


def test_lme_mpec_refuses_an_lme_of_the_wrong_size():
    """EqualityLME gives one multiplier per equality; the lower level writes each as two inequalities."""
    from skbilevel.methods import lme_mpec
    from skbilevel.problems import BilevelProblem, TargetUpper
    lower, A_eq, _, _, x = equality_qp(np.random.default_rng(0), 3, 1)
    problem = BilevelProblem(TargetUpper(np.zeros(3)), lower)
    with pytest.raises(ValueError, match=r"EqualityLME gives 1 multiplier\(s\) but the lower level has 2"):
        lme_mpec.solve(problem, x, lme=EqualityLME(A_eq))


def test_box_and_simplex_lmes_refuse_degenerate_bounds():
    """Their closed forms divide by u - l and by u0 - sum(l): equal or infinite bounds are an error, not inf/nan."""
    from skbilevel.problems.lme import BoxLME, SimplexLME
    from skbilevel.problems import QuadraticLowerLevel

    def box(lo, hi):
        return QuadraticLowerLevel(Q=[[1.0]], P=[[0.0]], q=[2.0], A=[[1.0], [-1.0]], B=[[0.0], [0.0]], b0=[lo, -hi])

    with pytest.raises(ValueError, match="l\\(x\\) < u\\(x\\)"):
        BoxLME().value(box(1.0, 1.0), np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="l\\(x\\) < u\\(x\\)"):
        BoxLME().value(box(-np.inf, np.inf), np.zeros(1), np.zeros(1))
    simplex = QuadraticLowerLevel(Q=np.eye(2), P=np.zeros((2, 1)), q=np.ones(2), A=[[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]],
                                  B=np.zeros((3, 1)), b0=[0.5, 0.5, -1.0])
    with pytest.raises(ValueError, match="u0\\(x\\) - sum\\(l\\(x\\)\\) > 0"):
        SimplexLME().value(simplex, np.zeros(1), np.array([0.5, 0.5]))
