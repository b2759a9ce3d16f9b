"""The perturbed gradient method (methods/perturbed_gd.py; section 3 of the perturbed-gradient paper (2025))."""

import cvxpy as cp
import numpy as np
import pytest

from conftest import fd_gradient
from skbilevel.methods import perturbed_gd as pgd
from skbilevel.problems import BilevelProblem, QuadraticLowerLevel
from skbilevel.problems.quadratic import TargetUpper, quadratic_bilevel

Q = [[2.0, 0.5], [0.5, 1.0]]
M = [[1.0, 0.3], [-0.2, 1.0]]
T = [1.0, -2.0]


@pytest.mark.parametrize("rho", pgd.RHO_CHOICES)
@pytest.mark.parametrize("x0", [[0.0, 0.0], [3.0, -3.0]])
def test_reaches_the_solution_of_a_quadratic_bilevel_problem(rho, x0):
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1)
    # the iterates settle within O(step) of the solution (about 0.5 step here), after ~25 / step iterations
    result = pgd.solve(problem, x0, rho=rho, step=1.5e-3, max_iter=20000)
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-3
    # the lower level is nearly stationary at the returned pair
    assert np.linalg.norm(problem.lower.grad_y(result.hyperparameters, result.model)) <= 2e-3


def test_converges_when_the_solution_is_unconstrained_stationary():
    """With no upper-level regularisation ``y(x*) = t``: ``grad F = 0`` there and the tol test is met."""
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.0)
    result = pgd.solve(problem, [0.0, 0.0], rho="adaptive", step=0.1, tol=1e-6, max_iter=5000)
    assert result.converged, result.message
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-4


def _qp_by_cvxpy(grad_F, grad_h, alpha, rho):
    d = cp.Variable(grad_F.size)
    constraint = grad_h @ d + alpha * rho <= 0
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(d + grad_F)), [constraint])
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL
    return d.value, float(constraint.dual_value)


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_direction_solves_the_qp(seed):
    """(8a)-(8c) against QP (7) solved by cvxpy, with the constraint active and inactive."""
    rng = np.random.default_rng(seed)
    grad_F, grad_h = rng.normal(size=7), rng.normal(size=7)
    alpha = rng.uniform(0.1, 2.0)
    if seed % 2:  # grad_h . grad_F > alpha rho: -grad_F already decreases h enough, lambda = 0
        grad_F = grad_F + (2.0 - grad_h @ grad_F / (grad_h @ grad_h)) * grad_h
        rho = 0.5 * (grad_h @ grad_F) / alpha
    else:
        rho = grad_h @ grad_h
    direction, lam = pgd.qp_direction(grad_F, grad_h, alpha, rho)
    d_ref, lam_ref = _qp_by_cvxpy(grad_F, grad_h, alpha, rho)
    np.testing.assert_allclose(direction, d_ref, atol=1e-6)
    assert lam == pytest.approx(lam_ref, abs=1e-6)
    assert (lam == 0.0) == bool(seed % 2)


def test_direction_is_the_negative_gradient_when_grad_h_vanishes():
    grad_F = np.array([1.0, -2.0, 3.0])
    direction, lam = pgd.qp_direction(grad_F, np.zeros(3), alpha=1.0, rho=0.0)
    np.testing.assert_array_equal(direction, -grad_F)
    assert lam == 0.0


def test_grad_h_matches_finite_differences():
    """``grad h = 2 (cross_vjp, hvp)(grad_y f)`` (Remark 3.1) on a lower level with a nonzero cross term."""
    rng = np.random.default_rng(0)
    n_var, n_hyper = 4, 3
    A = rng.normal(size=(n_var, n_var))
    lower = QuadraticLowerLevel(Q=A @ A.T + np.eye(n_var), P=rng.normal(size=(n_var, n_hyper)), q=rng.normal(size=n_var),
                                A=np.zeros((0, n_var)), B=np.zeros((0, n_hyper)), b0=np.zeros(0))
    problem = BilevelProblem(TargetUpper(np.zeros(n_var)), lower)
    x, y = rng.normal(size=n_hyper), rng.normal(size=n_var)
    state = pgd._evaluate(problem, x, y)
    z, eps = np.concatenate([x, y]), 1e-6

    def h(z):
        r = lower.grad_y(z[:n_hyper], z[n_hyper:])
        return r @ r

    fd = fd_gradient(h, z, eps)
    np.testing.assert_allclose(state["grad_h"], fd, rtol=1e-6, atol=1e-6)
    assert state["h"] == pytest.approx(h(z))


def test_callback_stops_the_run_and_history_has_one_entry_per_iteration():
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    seen = []

    def callback(info):
        assert set(info) >= {"iteration", "objective", "time", "hyperparameters"}
        seen.append(info["iteration"])
        return info["iteration"] == 7

    result = pgd.solve(problem, [0.0, 0.0], callback=callback, max_iter=100)
    assert not result.converged and "callback" in result.message
    assert result.n_iter == 7 and seen == list(range(1, 8))
    assert {"objective", "complementarity", "time"} <= set(result.history)
    assert all(len(values) == result.n_iter for values in result.history.values())


@pytest.mark.parametrize("rho", pgd.RHO_CHOICES)
def test_max_iter_reports_no_convergence(rho):
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    result = pgd.solve(problem, [0.0, 0.0], rho=rho, max_iter=50)
    assert not result.converged and "max_iter=50" in result.message
    assert result.n_iter == 50 and len(result.history["complementarity"]) == 50


def test_stall_is_reported_when_rho_vanishes():
    """``c0=0`` and an exact warm start give the paper's fixed rho ~ 0: Delta -> 0 with h > 0."""
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    result = pgd.solve(problem, [0.0, 0.0], rho="fixed", c0=0.0, step=1e-2, tol=1e-4, max_iter=5000)
    assert not result.converged and "stalled" in result.message
    assert result.n_iter < 5000


def test_bounds_are_respected():
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1, x_bounds=(np.array([-0.5, -0.5]), np.array([0.5, 0.5])))
    assert np.any(np.abs(x_star) > 0.5)
    xs = []
    result = pgd.solve(problem, [3.0, -3.0], step=1e-2, max_iter=500,
                       callback=lambda info: xs.append(info["hyperparameters"]) and False)
    xs = np.array(xs + [result.hyperparameters])
    assert np.all(np.abs(xs) <= 0.5 + 1e-15)
    # the bound stops the x-component that pulls towards x_star
    np.testing.assert_allclose(result.hyperparameters[0], 0.5)


class _NoCrossLower(QuadraticLowerLevel):
    capabilities = frozenset({"hvp", "solve"})


def test_missing_capability_is_refused():
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    lower = problem.lower
    crippled = _NoCrossLower(lower.Q, lower.P, lower.q, lower.A, lower.B, lower.b0)
    with pytest.raises(ValueError, match="cross_vjp"):
        pgd.solve(BilevelProblem(problem.upper, crippled), [0.0, 0.0])


def test_constrained_lower_level_and_unknown_rho_are_refused():
    lower = QuadraticLowerLevel(Q=np.eye(2), P=np.eye(2), q=np.zeros(2), A=np.eye(2), B=np.zeros((2, 2)), b0=np.zeros(2))
    with pytest.raises(ValueError, match="constraints"):
        pgd.solve(BilevelProblem(TargetUpper(np.zeros(2)), lower), [0.0, 0.0])
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    with pytest.raises(ValueError, match="rho"):
        pgd.solve(problem, [0.0, 0.0], rho="squared")


def test_solution_without_solve_capability_starts_from_zero():
    """A lower level without ``solve`` is started at ``y = 0`` and still approaches the solution."""
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1)
    lower = problem.lower
    bare = _NoSolveLower(lower.Q, lower.P, lower.q, lower.A, lower.B, lower.b0)
    result = pgd.solve(BilevelProblem(problem.upper, bare), [0.0, 0.0], step=1e-2, max_iter=3000)
    assert np.linalg.norm(result.hyperparameters - x_star) <= 2e-2


class _NoSolveLower(QuadraticLowerLevel):
    capabilities = frozenset({"hvp", "cross_vjp"})
