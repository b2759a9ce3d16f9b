"""Sequential QCQP with barrier line search (methods/sqcqp.py; Sharifi et al. (2025))."""

import cvxpy as cp
import numpy as np
import pytest

from skbilevel.methods import sqcqp
from skbilevel.problems import BilevelProblem, LowerLevel, example_2_2
from skbilevel.problems.quadratic import quadratic_bilevel

Q = np.array([[2.0, 0.5], [0.5, 1.0]])
M = np.array([[1.0, 0.3], [-0.2, 1.0]])
T = np.array([1.0, -2.0])
# eps = 5e-4 keeps the O(eps) bias of the relaxation (2) at about 5e-4 < 1e-3
OPTIONS = {"epsilon": 5e-4, "w": 1e-2, "tol": 1e-5, "max_iter": 20000}


@pytest.mark.parametrize("offset", [[0.3, -0.2], [-0.2, -0.3]])
def test_reaches_the_bilevel_solution(offset):
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1)
    result = sqcqp.solve(problem, x_star + np.array(offset), **OPTIONS)
    assert result.converged, result.message
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-3
    residual = np.linalg.norm(problem.lower.grad_y(result.hyperparameters, result.model))
    assert residual <= OPTIONS["epsilon"] * (1 + 1e-9)
    assert result.history["complementarity"][-1] <= OPTIONS["tol"]


def test_anytime_feasibility_and_descent_from_an_infeasible_start():
    """From y0 = 0 feasibility is restored first; then h <= eps^2 (8) and F decreases (7) at every step."""
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    x0 = np.array([-2.0, 1.0])
    assert np.linalg.norm(problem.lower.grad_y(x0, np.zeros(2))) > 1.0
    result = sqcqp.solve(problem, x0, np.zeros(2), epsilon=1e-2, max_iter=200)
    assert result.n_iter == 200 and not result.converged
    assert max(result.history["lower_residual"]) <= 1e-2 * (1 + 1e-9)
    objective = np.array(result.history["objective"])
    assert np.all(np.diff(objective) < 0)


def test_box_bounds_reach_the_constrained_solution():
    """x* = (1.2, -1.21) lies outside [0, 1] x [-1, 1]; the box solution of F(x, y(x)) is its corner (1, -1)."""
    low, high = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1, x_bounds=(low, high))
    result = sqcqp.solve(problem, np.array([0.5, 0.0]), **OPTIONS)
    assert result.converged, result.message
    np.testing.assert_allclose(result.hyperparameters, [1.0, -1.0], atol=1e-12)


def _cvxpy_direction(grad_F, grad_h, h, epsilon, w, alpha_b):
    d = cp.Variable(grad_F.size)
    constraint = grad_h @ d + alpha_b * (h - epsilon**2) + w * cp.sum_squares(d) <= 0
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(d + grad_F)), [constraint])
    # SCS at a tight tolerance: Clarabel stops near 1e-5 relative accuracy on this QCQP
    problem.solve(solver=cp.SCS, eps_abs=1e-12, eps_rel=1e-12, max_iters=200000)
    assert problem.status == cp.OPTIMAL
    return d.value


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("active", [True, False])
def test_closed_form_direction_matches_cvxpy(seed, active):
    rng = np.random.default_rng(seed)
    n = 3 + seed
    epsilon, w, alpha_b = rng.uniform(0.5, 2), 10.0 ** rng.uniform(-2, 0), rng.uniform(0.05, 1)
    h = epsilon**2 * rng.uniform(0, 1)
    grad_h = rng.normal(size=n)
    c = -grad_h / (2 * w)
    r = np.sqrt(c @ c - alpha_b * (h - epsilon**2) / w)
    u = rng.normal(size=n)
    u /= np.linalg.norm(u)
    grad_F = -(c + (3.0 if active else 0.5) * r * u)  # -grad F outside / inside the ball
    dz = sqcqp.qcqp_direction(grad_F, grad_h, h, epsilon, w, alpha_b)
    slack = grad_h @ dz + alpha_b * (h - epsilon**2) + w * dz @ dz
    if active:
        # KKT system (9): dz + grad F + lam (grad h + 2 w dz) = 0, lam >= 0, constraint tight
        q = grad_h + 2 * w * dz
        lam = -(dz + grad_F) @ q / (q @ q)
        assert lam > 0
        np.testing.assert_allclose(dz + grad_F + lam * q, 0, atol=1e-10 * np.linalg.norm(grad_F))
        assert abs(slack) <= 1e-9 * (1 + np.abs(grad_h @ dz))
    else:
        np.testing.assert_array_equal(dz, -grad_F)
        assert slack < 0
    np.testing.assert_allclose(dz, _cvxpy_direction(grad_F, grad_h, h, epsilon, w, alpha_b),
                               rtol=1e-7, atol=1e-8 * np.linalg.norm(dz))


@pytest.mark.parametrize("seed", range(6))
def test_direction_in_the_tangent_cone_of_the_box_matches_cvxpy(seed):
    """Components on a bound of x get dz_i >= 0 (lower) or <= 0 (upper): the exact bounded QCQP."""
    rng = np.random.default_rng(seed)
    n = 6
    epsilon, w, alpha_b = 1.0, 10.0 ** rng.uniform(-2, 0), rng.uniform(0.05, 1)
    h = epsilon**2 * rng.uniform(0, 1)
    grad_F, grad_h = rng.normal(size=n), rng.normal(size=n)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    lo[:2], hi[2:4] = 0.0, 0.0
    dz = sqcqp.cone_qcqp_direction(grad_F, grad_h, h, epsilon, w, alpha_b, lo, hi)
    d = cp.Variable(n)
    constraints = [grad_h @ d + alpha_b * (h - epsilon**2) + w * cp.sum_squares(d) <= 0, d[:2] >= 0, d[2:4] <= 0]
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(d + grad_F)), constraints).solve(
        solver=cp.SCS, eps_abs=1e-12, eps_rel=1e-12, max_iters=200000)
    np.testing.assert_allclose(dz, d.value, atol=1e-7 * max(1.0, np.linalg.norm(dz)))


def test_box_bound_is_left_when_the_multiplier_says_so():
    """A run that reaches a face of the box may not stop there while moving off it lowers F.

    Upper level F = a^T x + b^T y (linear), lower level quadratic, x in [0, 1]^2, started on the face
    x = 0 where the direction first points out of the box in x_1 but, once the ball constraint is
    taken into account, into it: the exact solution of the relaxed problem (2) on the box (cvxpy)
    is x = (1, 0), F = -0.5410.
    """
    from skbilevel.problems import QuadraticLowerLevel, UpperLevel
    a, b = np.array([0.39, 11.897]), np.array([-1.911, 1.399])
    gh = np.array([-0.49, 0.674, 1.006, -0.736])  # grad h at x = 0, y = 0
    eps, w = 0.1, 0.01
    s = np.linalg.norm(gh[2:]) / (2 * eps)
    g = gh[2:] / (2 * s)  # grad_y f at x = 0, y = 0, of norm eps
    P = np.outer(g, gh[:2] / 2) / (g @ g)

    class Linear(UpperLevel):
        def value(self, x, y):
            return float(a @ x + b @ y)

        def gradient(self, x, y):
            return a.copy(), b.copy()

    lower = QuadraticLowerLevel(Q=s * np.eye(2), P=P, q=g, A=np.zeros((0, 2)), B=np.zeros((0, 2)),
                                b0=np.zeros(0))
    problem = BilevelProblem(Linear(), lower, (np.zeros(2), np.ones(2)))
    result = sqcqp.solve(problem, np.zeros(2), -g / s, epsilon=eps, w=w, tol=1e-6, max_iter=5000)
    assert result.converged, result.message
    np.testing.assert_allclose(result.hyperparameters, [1.0, 0.0], atol=1e-9)
    assert problem.upper.value(result.hyperparameters, result.model) == pytest.approx(-0.541012364, abs=1e-6)


def test_callback_stops_the_run_and_history_matches_n_iter():
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1)
    calls = []

    def stop_at_five(info):
        assert set(info) >= {"iteration", "objective", "time", "hyperparameters"}
        calls.append(info["iteration"])
        return info["iteration"] == 5

    result = sqcqp.solve(problem, x_star + 1.0, callback=stop_at_five)
    assert calls == [1, 2, 3, 4, 5]
    assert not result.converged and "callback" in result.message
    assert result.n_iter == 5
    assert all(len(v) == result.n_iter for v in result.history.values())
    assert set(result.history) >= {"objective", "complementarity", "time"}


def test_max_iter_reports_no_convergence():
    problem, x_star = quadratic_bilevel(Q, M, T, rho=0.1)
    result = sqcqp.solve(problem, x_star + 1.0, max_iter=7)
    assert not result.converged and "max_iter" in result.message
    assert result.n_iter == 7 == len(result.history["time"])


class _NoCrossDerivative(LowerLevel):
    """``f = 1/2 ||y - x||^2`` with ``hvp`` but no ``cross_vjp``."""

    n_hyper = n_var = 2
    capabilities = frozenset({"hvp", "solve"})

    def value(self, x, y):
        return 0.5 * np.sum((y - x) ** 2)

    def grad_y(self, x, y):
        return y - x

    def hvp(self, x, y, v):
        return v


def test_missing_capability_is_refused():
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    with pytest.raises(ValueError, match="cross_vjp"):
        sqcqp.solve(BilevelProblem(problem.upper, _NoCrossDerivative()), np.zeros(2))


def test_constrained_lower_level_is_refused():
    with pytest.raises(ValueError, match="unconstrained"):
        sqcqp.solve(example_2_2(), np.ones(3))


@pytest.mark.parametrize("option", [{"beta": 1.0}, {"beta": 0.0}, {"alpha_ls": 1.5}, {"gamma": 0.0},
                                    {"alpha_b": -0.1}, {"t_max": 0.0}])
def test_line_search_options_out_of_range_are_refused(option):
    """beta >= 1 tried the same step 61 times and then reported a failed line search."""
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    with pytest.raises(ValueError, match="needs 0 < beta < 1"):
        sqcqp.solve(problem, np.zeros(2), **option)


def test_truncated_newton_steps_restore_feasibility():
    """One MINRES iteration per Newton step (a scaled gradient step) still decreases h, so enough steps
    restore ||grad_y f|| <= eps; one step does not, and the run says so."""
    problem, _ = quadratic_bilevel(Q, M, T, rho=0.1)
    x0 = np.array([-2.0, 1.0])
    result = sqcqp.solve(problem, x0, np.zeros(2), epsilon=1e-2, max_iter=50, restore_steps=200,
                         newton_max_iter=1)
    assert result.n_iter == 50
    assert max(result.history["lower_residual"]) <= 1e-2 * (1 + 1e-9)
    failed = sqcqp.solve(problem, x0, np.zeros(2), epsilon=1e-2, max_iter=50, restore_steps=1, newton_max_iter=1)
    assert failed.n_iter == 0 and not failed.converged and "feasible" in failed.message
