"""Algorithm 1 on the LME-MPEC (2.4) and on the classical MPEC (1.3)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skbilevel.methods import lme_mpec, mpec
from skbilevel.problems.lme import MatrixLME, PseudoInverseLME
from skbilevel.problems import BilevelProblem, LowerLevel, example_2_2

# Starts with sum(x) >= 0. From sum(x) < 0 the local subproblem solvers may stop
# at a stationary point with F > 0; the paper's 0 came from a global
# (moment-SOS) solver.
STARTS = [np.array([1.0, -0.5, 2.0]), np.array([-0.2, 0.6, 0.1]), np.array([0.5, 0.5, 0.5])]


def _lower_level_solution(x):
    """Minimiser of Example 2.2's lower level: y = 0 if sum(x) >= 0, else sum(x)/3."""
    return np.full(3, min(x.sum(), 0.0) / 3.0)


@pytest.mark.parametrize("x0", STARTS)
@pytest.mark.parametrize(
    "solve, options",
    [(lme_mpec.solve, {}), (lme_mpec.solve, {"lme": MatrixLME([-1 / 3, -1 / 3, -1 / 3, 0])}),
     (lme_mpec.solve, {"lme": PseudoInverseLME()}), (mpec.solve, {})],
)
def test_example_2_2_reaches_zero(solve, options, x0):
    problem = example_2_2()
    result = solve(problem, x0, **options)
    x, y = result.hyperparameters, result.model
    assert result.converged, result.message
    assert abs(problem.upper.value(x, y)) <= 1e-6
    # the point is bilevel feasible: y solves the lower level at x
    np.testing.assert_allclose(y, _lower_level_solution(x), atol=1e-4)
    assert set(result.history) >= {"objective", "complementarity", "time"}
    assert len(result.history["objective"]) == result.n_iter


@pytest.mark.parametrize("blas_threads", [1, None])
@pytest.mark.parametrize("solve", [lme_mpec.solve, mpec.solve])
def test_example_2_2_from_random_starts(solve, blas_threads):
    """Regression: SLSQP used to stop at non-stationary points and report convergence, and
    (with one BLAS thread, from the 15th start) to run off to a spurious KKT point at x ~ 6e8,
    F = 1.3; such a subproblem now goes to the augmented Lagrangian."""
    problem = example_2_2()
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        for x0 in [x for x in rng.normal(size=(60, 3)) if x.sum() >= 0][:20]:
            result = solve(problem, x0)
            assert result.converged and abs(problem.upper.value(result.hyperparameters, result.model)) <= 1e-6


def test_history_records_every_iteration():
    result = lme_mpec.solve(example_2_2(), STARTS[0], eps_star=1e-12, max_iter=3)
    assert result.n_iter == len(result.history["time"]) == len(result.history["theta"])
    assert result.history["theta"] == sorted(result.history["theta"])


def test_callback_stops_the_run():
    result = lme_mpec.solve(example_2_2(), STARTS[0], eps_star=1e-12, callback=lambda info: True)
    assert result.n_iter == 1 and not result.converged
    assert "callback" in result.message


class _Unconstrained(LowerLevel):
    n_hyper, n_var = 1, 1
    capabilities = frozenset({"hvp"})

    def value(self, x, y):
        return float((y - x) @ (y - x))

    def grad_y(self, x, y):
        return 2 * (y - x)


@pytest.mark.parametrize("solve", [lme_mpec.solve, mpec.solve])
def test_methods_refuse_a_problem_without_constraints(solve):
    problem = BilevelProblem(example_2_2().upper, _Unconstrained())
    with pytest.raises(ValueError, match="constraints"):
        solve(problem, np.zeros(1))


def test_bad_penalty_factors_are_refused():
    with pytest.raises(ValueError, match="r1"):
        lme_mpec.solve(example_2_2(), STARTS[0], r1=1.5)


@pytest.mark.parametrize("name", ["hypergradient", "value-function", "perturbed-gd", "sqcqp"])
def test_unconstrained_methods_without_iterations_and_without_aliasing(name):
    """max_iter=0 returns the (non-converged) start; the result never shares memory with x0."""
    from skbilevel.methods import METHODS
    from skbilevel.problems.quadratic import quadratic_bilevel
    problem, _ = quadratic_bilevel(np.diag([2.0, 4.0]), np.eye(2), t=[1.0, 1.0], rho=0.1)
    x0 = np.ones(2)
    result = METHODS[name](problem, x0, max_iter=0)
    assert not result.converged and result.message
    # the start itself, and the lower-level start at x0 (its solution, nonzero here), not zeros
    np.testing.assert_array_equal(result.hyperparameters, np.ones(2))
    np.testing.assert_allclose(result.model, problem.lower.solve(np.ones(2))[0], atol=1e-6)
    assert np.abs(result.model).max() > 0.1
    x0[:] = 7.0
    assert not np.shares_memory(result.hyperparameters, x0) and np.all(result.hyperparameters != 7.0)


@pytest.mark.parametrize("solve", [lme_mpec.solve, mpec.solve])
def test_penalty_methods_without_iterations(solve):
    result = solve(example_2_2(), STARTS[0], max_iter=0)
    assert not result.converged and result.n_iter == 0 and "max_iter=0" in result.message


@pytest.mark.parametrize("solve", [lme_mpec.solve, mpec.solve])
def test_penalty_methods_start_inside_the_box(solve):
    """A start outside x_bounds is projected before the feasible y0 is built from it (y0 belonged to the
    unprojected x while the solver clipped x)."""
    from skbilevel.problems import BilevelProblem, LinearValidationLoss, WeightedSquaredHingeSVM
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    lower = WeightedSquaredHingeSVM(X, y, per_sample=False)
    upper = LinearValidationLoss(X[:5], y[:5], n_hyper=1, n_var=lower.n_var)
    problem = BilevelProblem(upper, lower, (np.array([-2.0]), np.array([2.0])))
    result = solve(problem, np.array([5.0]), max_iter=0)
    assert result.hyperparameters[0] == 2.0
    np.testing.assert_allclose(result.model, lower.feasible_start(np.array([2.0])))
