"""The penalty subproblems by IPOPT (solver='ipopt'): casadi expressions of the problems, the program, the solver
choice and the refusals."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import fd_gradient
from skbilevel.methods import _penalty, lme_mpec, mpec
from skbilevel.methods._ipopt import SymbolicProgram
from skbilevel.problems import BilevelProblem, LinearValidationLoss, WeightedSquaredHingeSVM, example_2_2
from skbilevel.problems.lme import IdentityBlockLME, MatrixLME, PseudoInverseLME

ca = pytest.importorskip("casadi")


def _svm_problem(n=40, p=3, loss="sigmoid", seed=0, noise=2.0):
    rng = np.random.default_rng(seed)
    X, w = rng.normal(size=(n, p)), rng.normal(size=p)
    y = np.sign(X @ w + noise * rng.normal(size=n))
    X_val = rng.normal(size=(n // 4, p))
    lower = WeightedSquaredHingeSVM(X, y, sample_weight=rng.uniform(0.5, 2.0, n))
    upper = LinearValidationLoss(X_val, np.sign(X_val @ w), loss, n_hyper=lower.n_hyper, n_var=lower.n_var)
    return BilevelProblem(upper, lower, x_bounds=(np.full(n, np.log(1e-3)), np.full(n, np.log(1e3))))


def _form(problem, module):
    """The penalty form that ``module``'s method builds for ``problem`` (default options)."""
    run = SimpleNamespace(problem=problem, options=SimpleNamespace(lme=None, lambda0=None))
    return module.METHOD.build(run, np.zeros(problem.lower.n_hyper), None)[0]


def _evaluate(expression, symbols, values):
    return np.asarray(ca.Function("f", symbols, [expression])(*values), dtype=float).ravel()


@pytest.mark.parametrize("loss", ["sigmoid", "logistic", "squared_hinge"])
def test_casadi_expressions_match_the_numeric_values_and_gradients(loss):
    """The expressions IPOPT differentiates are the problem's own: values, and casadi's gradients against the
    analytic ones (and finite differences of the value for the lower level's gradient in x)."""
    problem = _svm_problem(loss=loss)
    lower, upper = problem.lower, problem.upper
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=lower.n_hyper), rng.normal(size=lower.n_var)
    xs, ys = ca.MX.sym("x", lower.n_hyper), ca.MX.sym("y", lower.n_var)
    f = lower.symbolic_value(ca, xs, ys)
    assert _evaluate(f, [xs, ys], [x, y])[0] == pytest.approx(lower.value(x, y), rel=1e-12)
    np.testing.assert_allclose(_evaluate(lower.symbolic_grad_y(ca, xs, ys), [xs, ys], [x, y]), lower.grad_y(x, y),
                               rtol=1e-12)
    np.testing.assert_allclose(_evaluate(ca.gradient(f, ys), [xs, ys], [x, y]), lower.grad_y(x, y), rtol=1e-12)
    np.testing.assert_allclose(_evaluate(ca.gradient(f, xs), [xs, ys], [x, y]),
                               fd_gradient(lambda s: lower.value(s, y), x), rtol=1e-6, atol=1e-8)
    F = upper.symbolic_value(ca, xs, ys)
    assert _evaluate(F, [xs, ys], [x, y])[0] == pytest.approx(upper.value(x, y), rel=1e-12)
    np.testing.assert_allclose(_evaluate(ca.gradient(F, ys), [xs, ys], [x, y]), upper.gradient(x, y)[1],
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("lme", [MatrixLME([-1 / 3, -1 / 3, -1 / 3, 0]), PseudoInverseLME()])
def test_casadi_multiplier_expressions_match_the_numeric_ones(lme):
    lower = example_2_2().lower
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=3), rng.normal(size=3)
    xs, ys = ca.MX.sym("x", 3), ca.MX.sym("y", 3)
    slack = ca.mtimes(ca.DM(lower.A), ys) - lower.symbolic_b(ca, xs)
    tau = lme.symbolic_value(ca, lower, lower.symbolic_grad_y(ca, xs, ys), slack)
    np.testing.assert_allclose(_evaluate(tau, [xs, ys], [x, y]), lme.value(lower, x, y), rtol=1e-10)


@pytest.mark.parametrize("solve", [lme_mpec.solve, mpec.solve])
def test_ipopt_reaches_the_slsqp_solution_and_the_exit_test(solve):
    """On a problem SLSQP solves (81 variables with slacks), IPOPT's run passes Algorithm 1's exit test at the
    same upper objective and hyperparameters, and its model solves the lower level at them."""
    problem = _svm_problem(n=20)
    reference = solve(problem, np.zeros(20), solver="sqp")
    result = solve(problem, np.zeros(20), solver="ipopt")
    assert reference.converged and result.converged, result.message
    x, y = result.hyperparameters, result.model
    F = problem.upper.value(x, y)
    assert F == pytest.approx(problem.upper.value(reference.hyperparameters, reference.model), abs=1e-4)
    y_star, _ = problem.lower.solve(x)
    assert problem.upper.value(x, y_star) == pytest.approx(F, abs=1e-3)
    # complementarity within Algorithm 1's exit tolerance, constraints within feas_tol
    g, tau = problem.lower.slack(x, y), problem.lower.grad_y(x, y)[-20:]
    assert g @ tau <= 0.01 * max(min(1.0, tau.sum()), 1e-6) and g.min() >= -1e-6 and tau.min() >= -1e-6


@pytest.mark.parametrize("x0", [np.array([1.0, -0.5, 2.0]), np.array([-0.2, 0.6, 0.1])])
def test_ipopt_on_example_2_2_reaches_zero(x0):
    """Near F = 0 at a bilevel feasible point. The interior point stops at the exit test's complementarity
    (eps_star) rather than SLSQP's exact zero, so y solves the lower level only as closely as eps_star asks:
    within 5e-3 at the paper's 0.01, within 1e-6 at eps_star = 1e-6."""
    problem = example_2_2()
    for solve, options in [(lme_mpec.solve, {"lme": MatrixLME([-1 / 3, -1 / 3, -1 / 3, 0])}), (mpec.solve, {})]:
        result = solve(problem, x0, solver="ipopt", **options)
        x, y = result.hyperparameters, result.model
        assert result.converged and abs(problem.upper.value(x, y)) <= 1e-5
        np.testing.assert_allclose(y, np.full(3, min(x.sum(), 0.0) / 3.0), atol=5e-3)
        tight = solve(problem, x0, solver="ipopt", eps_star=1e-6, **options)
        x, y = tight.hyperparameters, tight.model
        np.testing.assert_allclose(y, np.full(3, min(x.sum(), 0.0) / 3.0), atol=1e-6)
        assert abs(problem.upper.value(x, y)) <= 1e-5


def test_svm_multiplier_sign_becomes_a_bound():
    """LME-MPEC on the SVM: tau = omega * xi >= 0 is imposed as xi >= 0 and the MPEC's lambda >= 0 is its own
    bound: only g is lifted into a slack (one constraint row g - s = 0 each); without such a bound t is
    lifted as well."""
    problem = _svm_problem(n=10)
    form = _form(problem, lme_mpec)
    assert isinstance(form.lme, IdentityBlockLME)
    symbols = form.symbolic(ca)
    np.testing.assert_array_equal(symbols.t_bounds, 10 + np.arange(3 + 1, 3 + 1 + 10))
    program = SymbolicProgram(form, tol=1e-6, feas_tol=1e-6)
    assert program.lbx[symbols.t_bounds].min() == 0.0 and program.n_con == (3 + 1) + 10  # (w, b) rows, g - s
    assert program.lbx.size == symbols.z.numel() + 10
    assert SymbolicProgram(_form(problem, mpec), tol=1e-6, feas_tol=1e-6).n_con == (3 + 1 + 10) + 10
    quadratic = SymbolicProgram(_form(example_2_2(), lme_mpec), tol=1e-6, feas_tol=1e-6)
    assert quadratic.lift_t and quadratic.n_con == 3 + 1 + 1  # phi rows, g - s, t - r


def test_ipopt_status_is_reported():
    """A subproblem cut short by IPOPT's iteration budget is not reported as solved, and says why."""
    problem = _svm_problem(n=20)
    form = _form(problem, lme_mpec)
    z0 = np.concatenate([np.zeros(20), problem.lower.feasible_start(np.zeros(20))])
    sub = SymbolicProgram(form, tol=1e-8, feas_tol=1e-8, max_iter=1).solve(z0, 0.1)
    assert not sub.converged and "Maximum_Iterations_Exceeded" in sub.message
    solved = SymbolicProgram(form, tol=1e-8, feas_tol=1e-8).solve(z0, 0.1)
    assert solved.converged and solved.stationarity <= 1e-8 and solved.infeasibility <= 1e-8


def test_auto_picks_ipopt_above_the_smallest_programs_and_alm_without_expressions():
    problem = _svm_problem(n=20)
    form = _form(problem, lme_mpec)
    assert _penalty.choose_solver("auto", form, _penalty.SQP_MAX_VARIABLES_WITH_IPOPT) == "sqp"
    assert _penalty.choose_solver("auto", form, _penalty.SQP_MAX_VARIABLES_WITH_IPOPT + 1) == "ipopt"
    assert _penalty.choose_solver("alm", form, 10) == "alm"

    class Opaque(WeightedSquaredHingeSVM):
        """The SVM without its casadi expression (hasattr sees an AttributeError)."""

        symbolic_value = property(lambda self: (_ for _ in ()).throw(AttributeError))

    lower = Opaque(problem.lower.X, problem.lower.y)
    opaque = BilevelProblem(problem.upper, lower, problem.x_bounds)
    form = _form(opaque, lme_mpec)
    assert _penalty.choose_solver("auto", form, 10_000) == "alm"
    assert _penalty.choose_solver("auto", form, _penalty.SQP_MAX_VARIABLES) == "sqp"  # no IPOPT: SLSQP further
    with pytest.raises(ValueError, match="solver='ipopt' needs the casadi expressions.*Opaque"):
        lme_mpec.solve(opaque, np.zeros(20), solver="ipopt")


def test_missing_casadi_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "casadi", None)  # import casadi now raises ImportError
    with pytest.raises(ImportError, match=r"skbilevel\[ipopt\]"):
        lme_mpec.solve(_svm_problem(n=10), np.zeros(10), solver="ipopt")
    with pytest.raises(ValueError, match="solver must be one of"):
        lme_mpec.solve(_svm_problem(n=10), np.zeros(10), solver="knitro")
