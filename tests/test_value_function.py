"""BVFIM (methods/value_function.py) on known solutions, and its gradient (17) against finite differences."""

import numpy as np
import pytest
from scipy.optimize import minimize

from conftest import fd_gradient
from skbilevel.methods import value_function as vf
from skbilevel.problems import BilevelProblem, LowerLevel, UpperLevel, example_2_2, quadratic_bilevel

Q = np.array([[2.0, 0.5], [0.5, 1.0]])
M = np.array([[1.0, 0.3], [-0.2, 1.0]])
T = np.array([1.0, -2.0])
RHO = 0.1


class ToyUpper(UpperLevel):
    """Upper level of the toy problem (30) of Liu et al. (2021): ``F = (x - a)^2 + (y - a)^2``."""

    def __init__(self, a):
        self.a = float(a)

    def value(self, x, y):
        return float(np.sum((x - self.a) ** 2) + np.sum((y - self.a) ** 2))

    def gradient(self, x, y):
        return 2.0 * (x - self.a), 2.0 * (y - self.a)


class ToyLower(LowerLevel):
    """Lower level of (30): ``f = sin(x + y)``, non-convex with ``S(x) = {-pi/2 - x + 2 k pi}``."""

    n_hyper, n_var = 1, 1
    capabilities = frozenset({"grad_x"})

    def value(self, x, y):
        return float(np.sin(x + y)[0])

    def grad_y(self, x, y):
        return np.cos(x + y)

    def grad_x(self, x, y):
        return np.cos(x + y)


def toy(a):
    return BilevelProblem(ToyUpper(a), ToyLower())


def toy_solution(a):
    """Solution of (30): on the branch ``x + y = c`` of ``S`` the best point is ``x = y = c / 2``,
    so ``F = 2 (c/2 - a)^2`` over ``c = -pi/2 + 2 k pi``: ``c = -pi/2`` for a = 0, ``c = 3 pi/2`` for a = 2.

    The optimal value for a = 2 is ``2 (3 pi/4 - 2)^2 = 9 pi^2/8 - 6 pi + 8``; the paper's
    ``F*_{a=3} = 3 pi^2/16 - 9 pi/2 + 9`` (negative) is a typo.
    """
    c = -np.pi / 2 + 2 * np.pi * np.round((4 * a + np.pi) / (4 * np.pi))
    return c / 2, 2 * (c / 2 - a) ** 2


def test_toy_solution_is_the_papers():
    assert toy_solution(0)[0] == pytest.approx(-np.pi / 4)
    assert toy_solution(0)[1] == pytest.approx(np.pi ** 2 / 8)
    assert toy_solution(2)[0] == pytest.approx(3 * np.pi / 4)
    assert toy_solution(2)[1] == pytest.approx(9 * np.pi ** 2 / 8 - 6 * np.pi + 8)


def test_toy_gradients_match_finite_differences():
    problem, h = toy(2.0), 1e-6
    x, y = np.array([0.3]), np.array([-1.1])
    gx, gy = problem.upper.gradient(x, y)
    for fun, grad_x, grad_y in [(problem.upper.value, gx, gy),
                                (problem.lower.value, problem.lower.grad_x(x, y), problem.lower.grad_y(x, y))]:
        assert fd_gradient(lambda s: fun(s, y), x, h)[0] == pytest.approx(grad_x[0], abs=1e-8)
        assert fd_gradient(lambda t: fun(x, t), y, h)[0] == pytest.approx(grad_y[0], abs=1e-8)


@pytest.mark.parametrize("x0", [[0.0, 0.0], [3.0, -3.0], [-5.0, 5.0]])
def test_quadratic_reaches_x_star(x0):
    problem, x_star = quadratic_bilevel(Q, M, T, RHO)
    result = vf.solve(problem, np.array(x0))
    assert result.converged, result.message
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-3
    # the model is (nearly) the lower-level solution y(x) = Q^{-1} M x
    np.testing.assert_allclose(result.model, np.linalg.solve(Q, M @ result.hyperparameters), atol=1e-3)
    assert result.history["complementarity"][-1] <= 1e-6


def test_quadratic_with_the_papers_fixed_step():
    problem, x_star = quadratic_bilevel(Q, M, T, RHO)
    G = np.linalg.solve(Q, M)
    alpha = 1.0 / np.linalg.eigvalsh(G.T @ G + RHO * np.eye(2)).max()
    result = vf.solve(problem, np.zeros(2), step=alpha)
    assert result.converged, result.message
    assert np.linalg.norm(result.hyperparameters - x_star) <= 1e-3


def test_quadratic_respects_x_bounds():
    low, high = np.array([-1.0, -1.0]), np.array([1.0, 0.5])
    problem, _ = quadratic_bilevel(Q, M, T, RHO, x_bounds=(low, high))
    G = np.linalg.solve(Q, M)
    reference = minimize(lambda x: (0.5 * np.sum((G @ x - T) ** 2) + 0.5 * RHO * x @ x, G.T @ (G @ x - T) + RHO * x),
                         np.zeros(2), jac=True, method="L-BFGS-B", bounds=list(zip(low, high)),
                         options={"gtol": 1e-12, "ftol": 1e-15}).x
    result = vf.solve(problem, np.array([0.9, -0.9]))
    assert result.converged, result.message
    assert np.all(result.hyperparameters >= low) and np.all(result.hyperparameters <= high)
    assert np.linalg.norm(result.hyperparameters - reference) <= 1e-3


def test_warm_step_reaches_x_star_where_unit_start_steps_stall():
    # a flat varphi (curvature 1e-4): each round's unit start step moves x so little that the
    # default run stops 2e-3 from x*; starting each round from the spectral step the previous
    # one ended with reaches x*
    problem, x_star = quadratic_bilevel(1e-4 * Q, M, T, RHO)
    cold = vf.solve(problem, np.zeros(2))
    warm = vf.solve(problem, np.zeros(2), warm_step=True)
    assert np.linalg.norm(warm.hyperparameters - x_star) <= 1e-4
    assert np.linalg.norm(cold.hyperparameters - x_star) > 10 * np.linalg.norm(warm.hyperparameters - x_star)
    # the cold run stops where its step searches stall, far from stationary: no convergence claimed
    assert not cold.converged and "found no decrease" in cold.message
    assert cold.history["stationarity"][-1] > 1e3
    for result in (cold, warm):  # converged only where the last round met the tolerance
        assert result.converged == (result.history["stationarity"][-1] <= 1e-4), result.message


class _ScaledUpper(UpperLevel):
    def __init__(self, upper, scale):
        self.upper, self.scale = upper, scale

    def value(self, x, y):
        return self.scale * self.upper.value(x, y)

    def gradient(self, x, y):
        gx, gy = self.upper.gradient(x, y)
        return self.scale * gx, self.scale * gy


def test_a_stalled_step_search_is_not_convergence():
    """F scaled by 1e7: varphi_k is too curved for 20 halvings of the unit step, x never moves after
    round 1 and the rounds stop with x 0.8 from x*. The run must not claim convergence."""
    base, x_star = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    problem = BilevelProblem(_ScaledUpper(base.upper, 1e7), base.lower)
    result = vf.solve(problem, np.zeros(2), schedule=(1.0, 1.0, 1.0, 1e7))
    assert np.linalg.norm(result.hyperparameters - x_star) > 0.1
    assert not result.converged and "found no decrease" in result.message and "not converged" in result.message


def test_a_failed_sub_problem_is_not_reported_as_convergence(monkeypatch):
    """The stopping test met with sub-problems stopped at sub_iter: the message must not open with
    'converged' (it ends up in the estimators' ConvergenceWarning)."""
    problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    assert vf.solve(problem, np.zeros(2)).converged
    evaluate = vf.evaluate
    monkeypatch.setattr(vf, "evaluate", lambda *args, **kwargs: evaluate(*args, **kwargs)._replace(ok=False))
    result = vf.solve(problem, np.zeros(2))
    assert not result.converged
    assert result.message.startswith("stopping test met") and "not converged" in result.message


def test_an_unresolved_slack_is_flagged():
    """A constant added to f (R) changes neither S(x) nor x*, but puts the slack f*_mu - f(x, y) within
    rounding of f: the evaluation says its phi and gradient are noise."""
    from skbilevel.problems import QuadraticLowerLevel, TargetUpper

    lower = QuadraticLowerLevel(Q=np.diag([2.0, 4.0]), P=-np.eye(2), q=np.zeros(2), A=np.zeros((0, 2)),
                                B=np.zeros((0, 2)), b0=np.zeros(0), R=1e14 * np.eye(2))
    problem = BilevelProblem(TargetUpper([1.0, 1.0], 0.1), lower)
    point = vf.evaluate(problem, np.ones(2), np.zeros(2), None, (1e-8, 1e-8, 1e-8, 1e-8), tol=1e-10, max_iter=200)
    assert not point.ok
    result = vf.solve(problem, np.zeros(2), tol=1e-9)
    assert not result.converged


@pytest.mark.parametrize("a", [0.0, 2.0])
@pytest.mark.parametrize("start", [0.0, 3.0, -3.0])
def test_toy_problem_30_reaches_the_global_solution(a, start):
    """Figure 1 of Liu et al. (2021) starts from (0, 0) and (3, 3); (-3, -3) starts on yet another branch of S."""
    problem = toy(a)
    result = vf.solve(problem, np.array([start]), np.array([start]))
    x_opt, F_opt = toy_solution(a)
    assert result.converged, result.message
    assert abs(result.hyperparameters[0] - x_opt) <= 1e-3
    assert abs(result.model[0] - x_opt) <= 1e-3
    assert problem.upper.value(result.hyperparameters, result.model) == pytest.approx(F_opt, abs=1e-3)


@pytest.mark.parametrize("problem, x, y0", [(toy(2.0), np.array([2.3]), np.array([2.0])),
                                            (quadratic_bilevel(Q, M, T, RHO)[0], np.array([0.4, -0.7]), np.zeros(2))])
def test_gradient_17_matches_finite_differences_of_varphi(problem, x, y0):
    params = (1e-3, 1e-3, 1e-3, 1e-2)
    sub = {"tol": 1e-12, "max_iter": 1000}
    point = vf.evaluate(problem, x, y0, None, params, **sub)
    assert point.ok and point.slack > 0
    h = 1e-5
    fd = fd_gradient(lambda s: vf.evaluate(problem, s, point.z, point.y, params, **sub).phi, x, h)
    for i in range(x.size):
        assert fd[i] == pytest.approx(point.grad[i], rel=1e-5, abs=1e-7)


def test_history_has_one_entry_per_round_and_the_schedule_decreases():
    result = vf.solve(quadratic_bilevel(Q, M, T, RHO)[0], np.zeros(2))
    assert result.n_iter >= 2
    assert all(len(values) == result.n_iter for values in result.history.values())
    assert {"objective", "complementarity", "time"} <= set(result.history)
    for key in ("mu1", "mu2", "theta", "tau"):
        assert np.all(np.diff(result.history[key]) < 0)


def test_max_iter_reports_no_convergence():
    result = vf.solve(toy(0.0), np.array([3.0]), np.array([3.0]), max_iter=2)
    assert not result.converged and "max_iter" in result.message
    assert result.n_iter == 2 == len(result.history["objective"])


def test_callback_stops_the_run(capsys):
    seen = []

    def callback(info):
        seen.append(info)
        return info["iteration"] == 2

    result = vf.solve(toy(0.0), np.array([3.0]), np.array([3.0]), callback=callback, verbose=1)
    assert result.n_iter == 2 and not result.converged and "callback" in result.message
    assert [info["iteration"] for info in seen] == [1, 2]
    assert set(seen[0]) == {"iteration", "objective", "time", "hyperparameters"}
    assert all(len(values) == 2 for values in result.history.values())
    assert capsys.readouterr().out.count("[value-function]") == 2


class _NoGradX(LowerLevel):
    n_hyper, n_var = 1, 1
    capabilities = frozenset({"solve"})

    def value(self, x, y):
        return float(np.sin(x + y)[0])

    def grad_y(self, x, y):
        return np.cos(x + y)


def test_lower_level_without_grad_x_is_refused():
    with pytest.raises(ValueError, match="grad_x"):
        vf.solve(BilevelProblem(ToyUpper(0.0), _NoGradX()), np.zeros(1))


def test_constrained_lower_level_is_refused():
    with pytest.raises(ValueError, match="constraints"):
        vf.solve(example_2_2(), np.ones(3))


@pytest.mark.parametrize("options", [{"decay": 1.0}, {"schedule": (1.0, 0.0, 1.0, 1.0)}, {"floor": 0.0}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        vf.solve(toy(0.0), np.zeros(1), **options)


def test_armijo_search_gives_up_when_varphi_does_not_decrease(monkeypatch):
    """Sub-problems solved to a budget leave varphi_k known only to their accuracy: where no trial
    decreases it, Algorithm 1 stops after MAX_HALVINGS halvings instead of halving the step to nothing."""
    # varphi = 0 everywhere: no trial satisfies Armijo's strict decrease, at any step size
    point = vf._Point(np.zeros(3), np.zeros(1), np.zeros(1), 0.0, np.full(3, 1e-4), 1.0, True)
    calls = []

    def flat(problem, x, z0, y0, params, **sub):
        calls.append(x)
        return point._replace(x=np.asarray(x))

    monkeypatch.setattr(vf, "evaluate", flat)
    out, n_steps, status, alpha = vf.algorithm_1(None, point, (1.0, 1.0, 1.0, 1.0), step=None,
                                                 inner_iter=5, tol=1e-12, bounds=None, sub={})
    assert status == "stalled" and n_steps == 0 and out is point
    assert alpha == 1.0  # no accepted step: the halved trials are not carried to the next round
    assert len(calls) == vf.MAX_HALVINGS + 1
