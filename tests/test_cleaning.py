"""HyperCleaningClassifier and its lower levels: derivatives, hypergradients, the fit contract, bad input."""

import dataclasses
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from conftest import fd_directional, fd_gradient
from skbilevel import HyperCleaningClassifier, cleaning
from skbilevel._selection import select_method
from skbilevel.methods import METHODS, hypergradient as hg
from skbilevel.problems import BilevelProblem
from skbilevel.problems import classifiers as cleaning_classifiers
from skbilevel.problems.classifiers import CrossEntropyValidationLoss, WeightedMLP, WeightedSoftmaxRegression

MODELS = {"logistic": lambda X, Y: WeightedSoftmaxRegression(X, Y, alpha=0.1),
          "mlp": lambda X, Y: WeightedMLP(X, Y, n_hidden=6, alpha=0.1, random_state=1)}


def _data(seed, n=30, p=4, K=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return rng, X, np.eye(K)[rng.integers(0, K, n)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", range(3))
def test_lower_level_derivatives_match_finite_differences(model, seed):
    rng, X, Y = _data(seed)
    lower = MODELS[model](X, Y)
    x, theta = rng.normal(size=lower.n_hyper), 0.5 * rng.normal(size=lower.n_var)
    v = rng.normal(size=lower.n_var)
    np.testing.assert_allclose(lower.grad_y(x, theta), fd_gradient(lambda t: lower.value(x, t), theta), atol=1e-8)
    value, grad = lower.value_and_grad_y(x, theta)
    assert value == pytest.approx(lower.value(x, theta), rel=1e-12)
    np.testing.assert_array_equal(grad, lower.grad_y(x, theta))
    np.testing.assert_allclose(lower.grad_x(x, theta), fd_gradient(lambda s: lower.value(s, theta), x), atol=1e-8)
    hvp_fd = fd_directional(lambda t: lower.grad_y(x, t), theta, v)
    np.testing.assert_allclose(lower.hvp(x, theta, v), hvp_fd, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(lower.cross_vjp(x, theta, v), fd_gradient(lambda s: lower.grad_y(s, theta) @ v, x),
                               rtol=1e-5, atol=1e-9)
    upper = CrossEntropyValidationLoss(lower, X[:10], Y[:10])
    np.testing.assert_allclose(upper.gradient(x, theta)[1], fd_gradient(lambda t: upper.value(x, t), theta), atol=1e-8)


def test_dense_newton_converges_on_heavy_tailed_features_from_a_far_start():
    """Cubed features (heavy tails) and a start far from the minimiser: the dense Newton steps of the
    logistic model converge, in few evaluations, to the minimiser found from the default start (steps that
    only lowered the gradient norm, accepted away from the minimiser, sent the iterates round in cycles
    until the budget ended)."""
    from sklearn.datasets import make_classification

    for seed in range(3):
        rng = np.random.default_rng(seed)
        X, y = make_classification(300, 10, n_informative=5, random_state=seed)
        X = X**3 * rng.uniform(0.5, 3, 10)
        lower = WeightedSoftmaxRegression(X, np.eye(2)[y], alpha=1e-2, max_iter=200)
        x = rng.normal(size=300)
        values = []
        original = lower.value_and_grad_y

        def recorded(x_, theta):
            value, grad = original(x_, theta)
            values.append(value)
            return value, grad

        lower.value_and_grad_y = recorded
        theta, ok = lower.solve(x, 3 * rng.normal(size=lower.n_var), tol=1e-8)
        assert ok and len(values) < 200
        reference, _ = WeightedSoftmaxRegression(X, np.eye(2)[y], alpha=1e-2).solve(x, tol=1e-8)
        np.testing.assert_allclose(theta, reference, rtol=1e-6, atol=1e-8)


def _wide_softmax(seed=0, n=400, p=40, K=8):
    """A model above the dense-Newton limit, with features of scales 0.1 to 10 (a poorly conditioned Hessian)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    X = (rng.normal(size=(n, p)) + np.eye(K, p)[y]) * np.logspace(-1, 1, p)
    lower = WeightedSoftmaxRegression(X, np.eye(K)[y], alpha=1e-2)
    assert lower.n_var > cleaning_classifiers._DENSE_NEWTON_LIMIT and "preconditioner" in lower.capabilities
    return lower, rng


def test_kronecker_preconditioner_inverts_the_hessian_where_samples_share_their_curvature():
    """At theta = 0 every sample has the same softmax Hessian S_i: then the Hessian is G kron Q plus the ridge,
    and the preconditioner its exact inverse (up to the ridge of the intercepts, alpha there, and the single
    precision of G)."""
    lower, rng = _wide_softmax()
    x, theta = rng.normal(size=lower.n_hyper), np.zeros(lower.n_var)
    M = lower.preconditioner(x, theta)
    eye = np.eye(lower.n_var)
    H = np.column_stack([lower.hvp(x, theta, e) for e in eye])
    H += np.diag(lower.alpha - lower.penalty_diag())  # alpha on the intercepts as well
    inverse = np.column_stack([M.matvec(e) for e in eye])
    np.testing.assert_allclose(inverse @ H, eye, atol=1e-4)
    # kept for the same x only (an adjoint at a solve's point), and not pickled with the model
    assert lower.preconditioner(x, theta + 1.0) is M and lower.preconditioner(x + 1.0, theta) is not M
    import pickle
    assert pickle.loads(pickle.dumps(lower))._kept_preconditioner is None


def test_preconditioned_newton_matches_the_krylov_solve_with_fewer_products(monkeypatch):
    """Above the dense limit the model solves by Newton steps on CG preconditioned by the Kronecker
    factorisation (products with the data in single precision): the trust-region Newton-CG minimiser, cold
    and warm started, in fewer Hessian-vector products, and the same adjoint."""
    lower, rng = _wide_softmax()
    counts = []

    def counted(operator):
        def build(x, theta):
            op = operator(x, theta)

            def apply(v):
                counts[-1] += 1
                return op(v)

            return apply

        return build

    # Newton's steps take _step_hvp (the data's products in single precision), the rest hvp_operator
    for name in ("hvp_operator", "_step_hvp"):
        monkeypatch.setattr(lower, name, counted(getattr(lower, name)))
    x = rng.normal(size=lower.n_hyper)
    solutions = {}
    for name, solve in (("preconditioned", lower._solve),
                        ("trust-ncg", lambda *a: cleaning_classifiers._WeightedSoftmaxModel._solve(lower, *a))):
        counts.append(0)
        theta, ok = solve(x, None, 1e-10, 2000)
        warm, ok_warm = solve(x + 1.0, theta, 1e-10, 2000)
        assert ok and ok_warm
        solutions[name] = (theta, warm, counts[-1])
    (a, a_warm, n_new), (b, b_warm, n_old) = solutions["preconditioned"], solutions["trust-ncg"]
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-8 * np.abs(b).max())
    np.testing.assert_allclose(a_warm, b_warm, rtol=0, atol=1e-8 * np.abs(b).max())
    assert n_new < n_old / 2, (n_new, n_old)
    g = rng.normal(size=lower.n_var)
    v, _, ok = hg._iterative_kkt(lower, x, a, np.zeros(0, dtype=int), g, None, 1e-12)
    monkeypatch.setattr(lower, "capabilities", lower.capabilities - {"preconditioner"})
    plain, _, ok_plain = hg._iterative_kkt(lower, x, a, np.zeros(0, dtype=int), g, None, 1e-12)
    assert ok and ok_plain
    np.testing.assert_allclose(v, plain, rtol=1e-7, atol=1e-9 * np.abs(plain).max())


@pytest.mark.parametrize("model", [
    "logistic",
    # Minimisers of these small ReLU nets sit on kinks of the activation (a pre-activation exactly 0:
    # min |z| was 1e-10 to 1e-16 on 12 random problems), where h(x) is not differentiable; the
    # MLP's derivatives themselves are checked above.
    # (the kink is where the penalised training settles, not an accident of rounding: the solve to 1e-12 fails)
    pytest.param("mlp", marks=pytest.mark.xfail(strict=True, reason="lower-level minimiser on a ReLU kink")),
])
def test_hypergradient_matches_finite_differences(model):
    rng, X, Y = _data(0, n=25)
    lower = MODELS[model](X, Y)
    _, X_val, Y_val = _data(1, n=12)
    problem = BilevelProblem(CrossEntropyValidationLoss(lower, X_val, Y_val), lower)
    x = rng.normal(size=lower.n_hyper)
    theta, ok = lower.solve(x, tol=1e-12)
    assert ok

    def h_of(s):  # warm-started from theta: the MLP stays in the same local minimum
        return problem.upper.value(s, lower.solve(s, theta, tol=1e-12)[0])

    _, grad, _ = hg.hypergradient(problem, x, theta)
    fd = fd_gradient(h_of, x, h=1e-5)
    assert np.max(np.abs(grad - fd)) <= 1e-5 * np.max(np.abs(fd))


def _noisy_digits(p=0.5, seed=0, n_train=600, n_val=150):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(seed)
    idx = rng.permutation(y.size)
    tr, va, te = idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]
    y_noisy = y[tr].copy()
    bad = rng.random(tr.size) < p
    y_noisy[bad] = (y_noisy[bad] + rng.integers(1, 10, bad.sum())) % 10  # a wrong label, uniform
    return X[tr], y_noisy, bad, X[va], y[va], X[te], y[te]


def test_cleaning_finds_the_corrupted_labels_and_beats_the_baselines():
    X, y_noisy, bad, X_val, y_val, X_te, y_te = _noisy_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = HyperCleaningClassifier(max_iter=30, random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)

    def f1(detected):
        return 2 * np.sum(detected & bad) / (detected.sum() + bad.sum())

    trusted_model = LogisticRegression(max_iter=2000).fit(X_val, y_val)
    # the reference detector: the labels that a model of the trusted set alone disagrees with
    reference = f1(trusted_model.predict(X) != y_noisy)
    assert f1(clf.sample_weight_ < 0.5) >= reference - 0.02, (f1(clf.sample_weight_ < 0.5), reference)
    noisy = LogisticRegression(max_iter=2000).fit(X, y_noisy).score(X_te, y_te)
    trusted = trusted_model.score(X_te, y_te)
    assert clf.score(X_te, y_te) > max(noisy, trusted)


def test_fitted_attributes_callback_and_proba():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(n_train=200, n_val=60)
    seen = []
    clf = HyperCleaningClassifier(max_iter=50, random_state=0,
                                  callback=lambda info: seen.append(info) or len(seen) == 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the stop was asked for: no warning
        clf.fit(X, y_noisy, X_val=X_val, y_val=y_val)
    assert clf.n_iter_ == 3 and len(seen) == 3 and clf.method_ == "hypergradient"
    assert {"iteration", "objective", "time", "weights"} <= set(seen[0])
    assert np.all((0 <= seen[0]["weights"]) & (seen[0]["weights"] <= 1))
    assert clf.sample_weight_.shape == (200,) and clf.coef_.shape == (10, 64)
    proba = clf.predict_proba(X_val)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_val))
    assert len(clf.history_["objective"]) == clf.n_iter_


def test_mlp_model_and_sparse_input():
    X, y_noisy, _, X_val, y_val, X_te, y_te = _noisy_digits(p=0.2, n_train=200, n_val=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = HyperCleaningClassifier(model="mlp", n_hidden=16, max_iter=5, random_state=0)
        mlp.fit(X, y_noisy, X_val=X_val, y_val=y_val)
        dense = HyperCleaningClassifier(max_iter=5, random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
        sparse = HyperCleaningClassifier(max_iter=5, random_state=0).fit(sp.csr_matrix(X), y_noisy,
                                                                         X_val=sp.csr_matrix(X_val), y_val=y_val)
    trusted = LogisticRegression(max_iter=2000).fit(X_val, y_val).score(X_te, y_te)
    assert [W.shape for W in mlp.coef_] == [(64, 16), (16, 10)] and mlp.score(X_te, y_te) > trusted
    assert mlp.method_ == "perturbed-gd" and dense.method_ == "hypergradient"
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sparse", [False, True])
def test_mlp_products_with_float32_data_agree_with_float64(sparse):
    """float32 data is used as it is; only the products with it are rounded to float32."""
    rng, X, Y = _data(0, n=200, p=30)
    X32 = X.astype(np.float32)
    lower64 = WeightedMLP(X32.astype(np.float64), Y, n_hidden=8, alpha=0.1)
    lower32 = WeightedMLP(sp.csr_matrix(X32) if sparse else X32, Y, n_hidden=8, alpha=0.1)
    assert lower32.X.dtype == np.float32
    x, theta, v = rng.normal(size=200), 0.5 * rng.normal(size=lower64.n_var), rng.normal(size=lower64.n_var)
    for name, args in [("value_and_grad_y", ()), ("hvp", (v,)), ("cross_vjp", (v,)), ("grad_x", ())]:
        got, expected = getattr(lower32, name)(x, theta, *args), getattr(lower64, name)(x, theta, *args)
        np.testing.assert_allclose(np.hstack(got), np.hstack(expected), rtol=1e-5, atol=1e-7, err_msg=name)
        assert np.hstack(got).dtype == np.float64
    X_int = np.rint(10 * X).astype(int)  # integers are data, not a precision: products in float64
    np.testing.assert_array_equal(WeightedMLP(X_int, Y, n_hidden=8).grad_y(x, theta),
                                  WeightedMLP(X_int.astype(float), Y, n_hidden=8).grad_y(x, theta))


def test_float32_data_stays_float32_for_the_network_only(monkeypatch):
    """Like MLPClassifier, model='mlp' keeps float32 data (X_val is converted to it); model='logistic', whose
    lower level is solved to a gradient norm of 1e-10 for its implicit derivatives, converts it to float64."""
    X, y_noisy, _, X_val, y_val, X_te, y_te = _noisy_digits(p=0.2, n_train=150, n_val=50)
    X32 = X.astype(np.float32)
    dtypes = []
    for cls in ("WeightedMLP", "WeightedSoftmaxRegression"):
        spied = getattr(cleaning, cls)
        monkeypatch.setattr(cleaning, cls, lambda X, Y, _cls=spied, **kw: dtypes.append(X.dtype) or _cls(X, Y, **kw))

    def fit(model, X_train):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return HyperCleaningClassifier(model=model, method="sqcqp", n_hidden=8, max_iter=3, lower_max_iter=20,
                                           refit_max_iter=200, random_state=0).fit(X_train, y_noisy, X_val=X_val,
                                                                                  y_val=y_val)
    mlp32, mlp64 = fit("mlp", X32), fit("mlp", X32.astype(np.float64))
    assert dtypes == [np.float32] * 2 + [np.float64] * 2  # the method's network and the refit's
    # the method's steps: the learned weights are the float64 fit's to float32 rounding
    np.testing.assert_allclose(mlp32.sample_weight_, mlp64.sample_weight_, atol=1e-4)
    # The final refit trains the non-convex network for 200 L-BFGS iterations, whose paths the float32 rounding
    # parts into different local minima: which test samples the two networks agree on, and their accuracies,
    # vary with the initialisation and the BLAS as much as between two initialisations (over 5 seeds: agreement
    # 0.85-0.99, accuracy -1.9 to +1.4 points against the float64 fit). So only a loss of quality is bounded,
    # relative to the float64 fit of the same run.
    assert mlp32.score(X_te, y_te) >= mlp64.score(X_te, y_te) - 0.05
    dtypes.clear()
    logistic32, logistic64 = fit("logistic", X32), fit("logistic", X32.astype(np.float64))
    assert dtypes and all(d == np.float64 for d in dtypes)  # the method's, the refit's and the safeguard's models
    np.testing.assert_array_equal(logistic32.coef_, logistic64.coef_)


def test_mlp_value_function_carries_its_step_over_rounds(monkeypatch):
    """On the network each round of 'value-function' starts its step where the last ended.

    Each entry of the gradient of varphi_k is O(1/n): from a unit step the budget-solved rounds
    leave the weights near 1/2, with little between clean and corrupted samples.
    """
    import skbilevel.cleaning as cleaning

    X, y_noisy, bad, X_val, y_val, _, _ = _noisy_digits(p=0.4, n_train=200, n_val=60)

    def separation():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = HyperCleaningClassifier(model="mlp", method="value-function", n_hidden=16, max_iter=5,
                                          random_state=0).fit(X, y_noisy, X_val=X_val, y_val=y_val)
        return clf.sample_weight_[~bad].mean() - clf.sample_weight_[bad].mean()

    warm = separation()
    monkeypatch.setitem(cleaning._INEXACT_OPTIONS["value-function"], "warm_step", False)
    cold = separation()
    # 0.24-0.28 against 0.05-0.12 over random_state 0-3; the cold run's rounds are chaotic (a change of the
    # softmax's rounding moved this one from 0.05 to 0.12), the warm run's are not
    assert warm > 1.5 * cold and warm - cold > 0.1, (warm, cold)


@pytest.mark.parametrize("model, expected", [("logistic", "hypergradient"), ("mlp", "perturbed-gd")])
def test_auto_method_follows_convexity_of_the_lower_level(model, expected):
    _, X, Y = _data(0)
    lower = MODELS[model](X, Y)
    assert select_method(BilevelProblem(CrossEntropyValidationLoss(lower, X, Y), lower)) == expected
    # a non-convex lower level without the products perturbed-gd needs falls through to the other rules
    lower.capabilities = frozenset({"solve", "adjoint", "cross_vjp"})
    assert select_method(BilevelProblem(CrossEntropyValidationLoss(lower, X, Y), lower)) == "hypergradient"


def test_lower_max_iter_bounds_each_lower_level_solve():
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.2, n_train=200, n_val=60)
    Y = np.eye(10)[y_noisy]
    mlp = WeightedMLP(X, Y, n_hidden=16, alpha=1e-2, max_iter=3)
    x = np.zeros(mlp.n_hyper)
    theta, ok = mlp.solve(x)
    assert not ok  # 3 L-BFGS iterations from the random start do not train the network
    longer, _ = mlp.solve(x, max_iter=300)
    assert mlp.value(x, longer) < mlp.value(x, theta)
    steps = []  # the estimator hands its budget to the lower level: an MLP solve ends early, and says so
    with pytest.warns(ConvergenceWarning, match="lower-level solve did not reach its tolerance"):
        HyperCleaningClassifier(model="mlp", method="hypergradient", n_hidden=16, lower_max_iter=3, max_iter=2,
                                random_state=0, callback=lambda info: steps.append(info["objective"])).fit(
            X, y_noisy, X_val=X_val, y_val=y_val)
    assert len(steps) == 2 and HyperCleaningClassifier().get_params()["lower_max_iter"] == "auto"


@pytest.mark.parametrize("spoil", [False, True])
def test_final_refit_trains_the_network_from_the_methods_model_and_afresh(monkeypatch, spoil):
    """Two trainings of refit_max_iter L-BFGS iterations, from the network the method ended with and from the
    initial parameters; the one with the lower objective is kept (the method's, or the fresh one when the
    method's network is spoilt by large noise)."""
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.2, n_train=120, n_val=40)
    results, solves = [], []
    method = METHODS["perturbed-gd"]

    def run(*args, **kwargs):
        result = method(*args, **kwargs)
        noise = np.random.default_rng(0).normal(scale=10.0, size=result.model.shape)
        results.append(dataclasses.replace(result, model=result.model + noise) if spoil else result)
        return results[-1]

    monkeypatch.setitem(METHODS, "perturbed-gd", run)
    solve = WeightedMLP.solve
    monkeypatch.setattr(WeightedMLP, "solve", lambda self, x, y0=None, tol=1e-10, max_iter=None:
                        solves.append((self, x, y0, max_iter, solve(self, x, y0, tol, max_iter))) or solves[-1][4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = HyperCleaningClassifier(model="mlp", method="perturbed-gd", n_hidden=8, lower_max_iter=5,
                                      refit_max_iter=7, max_iter=3, random_state=0)
        clf.fit(X, y_noisy, X_val=X_val, y_val=y_val)
    (refit, x, warm, budget, (from_model, _)), (again, _, fresh, _, (afresh, _)) = solves[-2:]
    assert again is refit and refit.n_samples == 160 and refit.max_iter == 7 and budget is None and fresh is None
    np.testing.assert_array_equal(warm, results[0].model)
    values = [refit.value(x, theta) for theta in (from_model, afresh)]
    assert (values[1] < values[0]) == spoil
    for fitted, expected in zip((clf.coef_[0], clf.intercept_[0], clf.coef_[1], clf.intercept_[1]),
                                refit.unpack(afresh if spoil else from_model)):
        np.testing.assert_array_equal(fitted, expected)
    assert HyperCleaningClassifier(model="mlp")._refit_budget() == 5 * 200


def test_mlp_solve_polishes_only_where_lbfgs_met_its_tolerance(monkeypatch):
    """Newton polish costs Hessian products; after L-BFGS stopped at its budget on the network it is skipped."""
    rng, X, Y = _data(1, n=25)  # a problem whose minimiser is off the ReLU kinks (see above)
    products = []
    original = WeightedMLP.hvp_operator
    monkeypatch.setattr(WeightedMLP, "hvp_operator",
                        lambda self, x, t: products.append(1) or original(self, x, t))
    mlp = WeightedMLP(X, Y, n_hidden=6, alpha=0.1, random_state=1)
    x = rng.normal(size=mlp.n_hyper)
    theta, ok = mlp.solve(x, max_iter=3)
    assert not ok and not products
    theta, ok = mlp.solve(x, tol=1e-12)  # L-BFGS reaches 1e-8, the Newton steps the rest
    assert ok and products and np.linalg.norm(mlp.grad_y(x, theta)) < 1e-8


def test_binary_problem_and_held_out_trusted_set_warns():
    X, y = load_digits(n_class=2, return_X_y=True)
    labels = np.array(["zero", "one"])[y]
    with pytest.warns(UserWarning, match="must be clean"):
        clf = HyperCleaningClassifier(max_iter=5, random_state=0).fit(X / 16, labels)
    assert clf.coef_.shape == (1, 64) and clf.decision_function(X / 16).shape == (y.size,)
    assert clf.sample_weight_.shape == (y.size,) and np.all(clf.sample_weight_[clf.validation_indices_] == 1)
    reference = LogisticRegression().fit(X / 16, labels).score(X / 16, labels)
    assert clf.score(X / 16, labels) >= reference - 0.02


@pytest.mark.parametrize(
    "kwargs, match",
    [({"X": np.array([[0.0, np.nan]] * 10)}, "NaN"),
     ({"y": np.zeros(10)}, "one class"),
     ({"y": np.arange(9) % 2}, "inconsistent numbers of samples"),
     ({"X": np.array([["a", "b"]] * 10)}, "could not convert|dtype"),
     ({"X_val": np.ones((4, 2))}, "X_val and y_val"),
     ({"X_val": np.ones((4, 2)), "y_val": np.array([0, 1, 2, 2])}, "absent from the training"),
     ({"X_val": np.ones((4, 3)), "y_val": np.array([0, 1, 1, 0])}, "features"),
     ({"X_val": np.array([[np.inf, 0.0]] * 4), "y_val": np.array([0, 1, 1, 0])}, "infinity"),
     ({"sample_weight": -np.ones(10)}, "Negative values in data passed to sample_weight")],
)
def test_bad_input_raises_a_clear_error(kwargs, match):
    args = {"X": np.arange(20.0).reshape(10, 2), "y": np.arange(10) % 2, **kwargs}
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        HyperCleaningClassifier(max_iter=2).fit(X, y, **args)


def test_a_class_missing_from_the_trusted_set_is_warned_about():
    """Its training samples would lose their weights unnoticed: nothing in the trusted loss asks for them."""
    X, y_noisy, _, X_val, y_val, _, _ = _noisy_digits(p=0.0, n_train=200, n_val=60)
    keep = y_val != 9
    with pytest.warns(UserWarning, match=r"classes \[9\] of y do not occur in y_val"):
        clf = HyperCleaningClassifier(max_iter=20, random_state=0).fit(X, y_noisy, X_val=X_val[keep],
                                                                      y_val=y_val[keep])
    assert clf.sample_weight_[y_noisy == 9].mean() < clf.sample_weight_[y_noisy != 9].mean()


def test_held_out_trusted_rows_keep_their_sample_weights(monkeypatch):
    """Trusted rows held out of (X, y) are weighted by their sample_weight in the trusted-set loss (rows of
    weight 0 count as absent there) and in the final refit."""
    X, y = load_digits(n_class=3, return_X_y=True)
    X, y = X[:150] / 16, y[:150]
    with pytest.warns(UserWarning, match="must be clean"):
        first = HyperCleaningClassifier(max_iter=3, random_state=0).fit(X, y)
    held_out = first.validation_indices_
    sw = np.ones(len(y))
    sw[held_out[::2]] = 0.0
    # without the safeguard's folds, which would split the trusted rows of weight 0 with the others
    with pytest.warns(UserWarning, match="must be clean"):
        weighted = HyperCleaningClassifier(max_iter=3, safeguard_cv=None, random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(weighted.validation_indices_, held_out)
    kept, train = held_out[1::2], first.train_indices_
    by_hand = HyperCleaningClassifier(max_iter=3, safeguard_cv=None, random_state=0).fit(X[train], y[train],
                                                                                         X_val=X[kept], y_val=y[kept])
    np.testing.assert_allclose(weighted.sample_weight_[train], by_hand.sample_weight_, rtol=1e-6, atol=1e-9)
    # the refit trains on the trusted rows at their sample weights (it put them back at 1)
    refits = []
    refit = HyperCleaningClassifier._refit
    monkeypatch.setattr(HyperCleaningClassifier, "_refit",
                        lambda self, *args: refits.append(args[5]) or refit(self, *args))
    with pytest.warns(UserWarning, match="must be clean"):
        HyperCleaningClassifier(max_iter=3, random_state=0).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(refits[0], sw[held_out])


@pytest.mark.parametrize("model", ["logistic", "mlp"])
def test_final_refit_counts_weights_as_scikit_learn_does(model):
    """The refit minimises the weighted mean loss: a training row of weight 0 is an absent row and a row of
    weight 2 a repeated one, so the true weights would give the model of the clean rows (plus the trusted
    set) alone. Under the lower level's 1/n mean the dropped rows would still raise the penalty."""
    X, y_noisy, bad, X_val, y_val, _, _ = _noisy_digits(p=0.3, n_train=120, n_val=40)
    # a few iterations for the network, whose L-BFGS path over ReLU kinks magnifies rounding differences
    clf = HyperCleaningClassifier(model=model, n_hidden=5, lower_max_iter=300 if model == "logistic" else 4)
    clf.classes_ = np.arange(10)
    Y, Y_val, s_val = clf._one_hot(y_noisy), clf._one_hot(y_val), np.ones(len(y_val))
    start = None if model == "logistic" else WeightedMLP(X, Y, n_hidden=5, random_state=0).initial_parameters()
    refit = lambda X_tr, Y_tr, w: clf._refit(X_tr, Y_tr, w, X_val, Y_val, s_val, 0, start)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        true_weights = refit(X, Y, (~bad).astype(float))
        clean_only = refit(X[~bad], Y[~bad], np.ones((~bad).sum()))
        doubled = refit(X, Y, np.where(bad, 1.0, 2.0))
        repeated = refit(np.vstack([X, X[~bad]]), np.vstack([Y, Y[~bad]]), np.ones(len(Y) + (~bad).sum()))
    np.testing.assert_allclose(true_weights, clean_only, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(doubled, repeated, rtol=1e-5, atol=1e-7)


def test_features_whose_squares_overflow_are_refused():
    X, y = load_digits(n_class=3, return_X_y=True)
    with pytest.raises(ValueError, match="X has features of magnitude .* overflow"):
        HyperCleaningClassifier().fit(X * 1e155, y)
    with pytest.raises(ValueError, match="X_val has features of magnitude .* overflow"):
        HyperCleaningClassifier().fit(X[:100], y[:100], X_val=X[100:150] * 1e155, y_val=y[100:150])
