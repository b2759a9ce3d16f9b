"""skbilevel.plotting draws what it claims: lines, collections, patches, labels and scales."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_diabetes, make_classification  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import ElasticNet, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skbilevel import BilevelResult, BilevelSearchCV, BilevelSVC, HyperCleaningClassifier  # noqa: E402
from skbilevel.plotting import plot_history, plot_sample_weights, plot_search_path  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def blobs():
    """40 points in 2-D, two classes, three labels flipped."""
    rng = np.random.RandomState(0)
    y = np.repeat([-1, 1], 20)
    X = y[:, None] * 1.5 + rng.standard_normal((40, 2))
    flipped = np.zeros(40, dtype=bool)
    flipped[[3, 17, 30]] = True
    y_noisy = np.where(flipped, -y, y)
    return X, y_noisy, flipped


@pytest.fixture(scope="module")
def svc(blobs):
    X, y, _ = blobs
    return BilevelSVC(random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def cleaner():
    """Binary HyperCleaningClassifier on 4 features, trusted set passed explicitly."""
    X, y = make_classification(n_samples=120, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    corrupted = np.zeros(80, dtype=bool)
    corrupted[::5] = True
    y_noisy = np.where(corrupted, 1 - y[:80], y[:80])
    clf = HyperCleaningClassifier(method="hypergradient", weight_model="per-sample", max_iter=20, random_state=0)
    clf.fit(X[:80], y_noisy, X_val=X[80:], y_val=y[80:])
    return clf, X[:80], y_noisy, corrupted


@pytest.fixture(scope="module")
def ridge_search():
    X, y = load_diabetes(return_X_y=True)
    return BilevelSearchCV(Ridge(), {"alpha": (1e-4, 1e2)}, cv=3).fit(X, y)


# -- plot_history ----------------------------------------------------------------------------------
def test_history_one_line_per_key_with_labels(svc):
    ax = plot_history(svc, keys=("objective", "complementarity"))
    assert len(ax.lines) == 2
    assert [line.get_label() for line in ax.lines] == ["objective", "complementarity"]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "value"
    x, y = ax.lines[0].get_data()
    assert np.array_equal(x, np.arange(1, svc.n_iter_ + 1))
    assert np.allclose(y, svc.history_["objective"])
    assert ax.get_legend() is not None


def test_history_time_axis_is_cumulative():
    history = {"objective": [3.0, 2.0, 1.5], "time": [0.5, 0.25, 0.25]}
    ax = plot_history(history, x="time")
    assert np.allclose(ax.lines[0].get_xdata(), [0.5, 0.75, 1.0])
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "objective"


def test_history_log_scale_rule():
    decades = {"objective": [1.0, 1e-1, 1e-3], "time": [1, 1, 1]}
    assert plot_history(decades).get_yscale() == "log"
    narrow = {"objective": [2.0, 1.0, 0.5], "time": [1, 1, 1]}
    assert plot_history(narrow).get_yscale() == "linear"
    signed = {"objective": [1.0, -1e-3, 1e-4], "time": [1, 1, 1]}
    assert plot_history(signed).get_yscale() == "linear"
    assert plot_history(narrow, log_y=True).get_yscale() == "log"


def test_history_accepts_result_pipeline_and_shared_axes(svc, blobs):
    X, y, _ = blobs
    result = BilevelResult(np.zeros(1), np.zeros(1), {"objective": [1.0, 0.5]}, True, "", 2)
    ax = plot_history(result, label="a")
    pipe = make_pipeline(StandardScaler(), BilevelSVC(random_state=0)).fit(X, y)
    assert plot_history(pipe, ax=ax, label="b") is ax
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    ax = plot_history([{"objective": [1.0, 0.5]}, {"objective": [2.0, 1.0, 0.8]}])
    assert [len(line.get_xdata()) for line in ax.lines] == [2, 3]


def test_history_one_vs_rest_one_line_per_class():
    X, y = make_classification(n_samples=90, n_features=4, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    clf = BilevelSVC(learn="C", random_state=0).fit(X, y)
    ax = plot_history(clf)
    assert len(ax.lines) == 3
    assert ax.lines[2].get_label() == "objective (class 2 vs rest)"


def test_history_errors(svc):
    with pytest.raises(NotFittedError):
        plot_history(BilevelSVC())
    with pytest.raises(NotFittedError):
        plot_history(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]))
    with pytest.raises(ValueError, match="no entry 'nope'"):
        plot_history(svc, keys="nope")
    with pytest.raises(ValueError, match="x must be"):
        plot_history(svc, x="epoch")
    with pytest.raises(TypeError):
        plot_history(42)
    X, y = load_diabetes(return_X_y=True)
    no_best = BilevelSearchCV(Ridge(), {"alpha": (1e-3, 1e3)}, scoring=["r2", "neg_mean_squared_error"],
                              refit=False, cv=3, max_iter=2).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="refit=False it picks no best point"):
        plot_history(no_best)


# -- plot_sample_weights ---------------------------------------------------------------------------
def test_weights_scatter_marker_area_and_lines(svc, blobs):
    X, y, flipped = blobs
    ax = plot_sample_weights(svc, X, y)
    assert len(ax.collections) == 2  # one scatter per class
    assert len(ax.lines) == 3  # decision line and two margins
    sizes = np.concatenate([c.get_sizes() for c in ax.collections])
    weights = np.concatenate([svc.sample_weight_[y[svc.train_indices_] == c] for c in (-1, 1)])
    assert np.allclose(sizes, np.clip(40.0 * weights, 2.0, 400.0))  # area proportional to the weight
    # the decision line passes through points where w^T x + b = 0
    (w,), b = svc.coef_, svc.intercept_[0]
    line = ax.lines[0]
    xy1, xy2 = (line.get_xy1(), line.get_xy2()) if hasattr(line, "get_xy1") else (line._xy1, line._xy2)
    p1, p2 = np.asarray(xy1), np.asarray(xy2)
    assert np.allclose([w @ p1 + b, w @ p2 + b], 0.0)
    assert ax.get_xlabel() == "feature 0" and ax.get_ylabel() == "feature 1"


def test_weights_scatter_mask_and_no_margins(svc, blobs):
    X, y, flipped = blobs
    ax = plot_sample_weights(svc, X, y, mask=flipped, mask_labels=("flipped", "clean"), margins=False)
    assert len(ax.collections) == 3
    assert len(ax.collections[2].get_offsets()) == flipped[svc.train_indices_].sum()
    assert len(ax.lines) == 1
    assert "flipped" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_weights_hist_per_class_and_mask(cleaner):
    clf, X, y, corrupted = cleaner
    ax = plot_sample_weights(clf, X, y)
    assert len(ax.patches) == 2  # one filled step histogram per class
    w = clf.sample_weight_
    assert w.max() < 100 * w.min() and ax.get_xscale() == "linear"  # within two decades: linear axis
    assert ax.get_xlabel() == "learned sample weight"
    ax = plot_sample_weights(clf, X, y, mask=corrupted, mask_labels=("corrupted", "clean"))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"corrupted ({corrupted.sum()})", f"clean ({(~corrupted).sum()})"]


def test_weights_hist_log_scale_for_svm(blobs):
    X, _, _ = blobs
    y = np.repeat([-1, 1], 20)  # clean labels: without the safeguard, under the sigmoid loss, weights span decades
    svc = BilevelSVC(validation_loss="sigmoid", final_fit="train", safeguard_cv=None, random_state=0).fit(X, y)
    w = svc.sample_weight_
    assert w.min() > 0 and w.max() >= 100 * w.min()
    ax = plot_sample_weights(svc, X, y, kind="hist")
    assert ax.get_xscale() == "log" and len(ax.patches) == 2
    assert plot_sample_weights(svc, X, y, kind="hist", log_scale=False).get_xscale() == "linear"


def test_weights_hist_of_one_weight_on_a_log_axis(blobs):
    """learn='C' gives every sample the same weight: its bin must contain it on a log axis too."""
    X, y, _ = blobs
    svc = BilevelSVC(learn="C", random_state=0).fit(X, y)
    w = float(svc.sample_weight_[0])
    ax = plot_sample_weights(svc, X, y, kind="hist", log_scale=True)
    lo, hi = ax.get_xlim()
    assert ax.get_xscale() == "log" and lo < w < hi
    edges = [p.get_path().vertices[:, 0] for p in ax.patches]
    assert all(np.all(np.isfinite(e)) and e.min() < w < e.max() for e in edges)


def test_weights_cleaning_held_out_rows_and_line():
    X, y = make_classification(n_samples=80, n_features=2, n_informative=2, n_redundant=0, random_state=1)
    with pytest.warns(UserWarning, match="no trusted set"):
        clf = HyperCleaningClassifier(method="hypergradient", weight_model="per-sample", max_iter=20, random_state=0).fit(X, y)
    ax = plot_sample_weights(clf, X, y)
    assert sum(len(c.get_offsets()) for c in ax.collections) == clf.train_indices_.size
    assert len(ax.lines) == 3


def test_weights_multiclass_svm_needs_class_index():
    X, y = make_classification(n_samples=90, n_features=2, n_informative=2, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, random_state=0)
    clf = BilevelSVC(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="class_index"):
        plot_sample_weights(clf, X, y)
    ax = plot_sample_weights(clf, X, y, class_index=1)
    assert len(ax.collections) == 3 and len(ax.lines) == 3


def test_weights_errors(svc, blobs):
    X, y, flipped = blobs
    with pytest.raises(NotFittedError):
        plot_sample_weights(BilevelSVC(), X, y)
    with pytest.raises(ValueError, match="rows"):
        plot_sample_weights(svc, X[:-1], y)
    with pytest.raises(ValueError, match="labels passed to fit"):
        plot_sample_weights(svc, X, y[:-1])
    with pytest.raises(ValueError, match="features"):
        plot_sample_weights(svc, np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="boolean"):
        plot_sample_weights(svc, X, y, mask=flipped.astype(int))
    with pytest.raises(ValueError, match="kind"):
        plot_sample_weights(svc, X, y, kind="violin")


def test_weights_scatter_needs_two_features(cleaner):
    clf, X, y, _ = cleaner
    with pytest.raises(ValueError, match="needs 2 features"):
        plot_sample_weights(clf, X, y, kind="scatter")


# -- plot_search_path ------------------------------------------------------------------------------
def test_search_path_one_hyperparameter(ridge_search):
    search = ridge_search
    ax = plot_search_path(search)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "alpha" and ax.get_ylabel() == "mean CV score"
    n = len(search.cv_results_["params"])
    path = ax.lines[0]
    assert len(path.get_xdata()) == n  # every evaluated point, in evaluation order
    assert np.allclose(path.get_xdata(), np.asarray(search.cv_results_["param_alpha"], dtype=float))
    best = ax.lines[-1]
    assert best.get_label() == "best"
    assert np.allclose(best.get_xdata(), search.best_params_["alpha"])
    assert np.allclose(best.get_ydata(), search.best_score_)
    phases = {line.get_label() for line in ax.lines[1:-1]}
    assert phases <= {"initial grid", "descent", "score refinement"} and "descent" in phases


def test_search_path_two_hyperparameters():
    X, y = load_diabetes(return_X_y=True)
    space = {"alpha": (1e-3, 1.0), "l1_ratio": (0.1, 0.9, "linear")}
    search = BilevelSearchCV(ElasticNet(), space, cv=3, max_iter=5, refine=2).fit(X, y)
    ax = plot_search_path(search)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "alpha" and ax.get_ylabel() == "l1_ratio"
    n_phases = len({int(s) if s < 0 else 0 for s in search.cv_results_["start"]})
    assert len(ax.collections) == n_phases  # markers coloured by score, one collection per phase
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["evaluation order", "descent start", "best"]
    assert len(ax.figure.axes) == 2  # the colour bar
    scores = np.concatenate([c.get_array() for c in ax.collections])
    assert np.isclose(scores.max(), search.best_score_)


def test_search_path_errors(ridge_search):
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(NotFittedError):
        plot_search_path(BilevelSearchCV(Ridge(), {"alpha": (1e-3, 1.0)}))
    with pytest.raises(TypeError, match="BilevelSearchCV"):
        plot_search_path(GridSearchCV(Ridge(), {"alpha": [1.0, 2.0]}, cv=2).fit(X, y))
    with pytest.raises(ValueError, match="scoring must be one of"):
        plot_search_path(ridge_search, scoring="accuracy")
    search = BilevelSearchCV(ElasticNet(), {"alpha": (1e-3, 1.0), "l1_ratio": (0.1, 0.9, "linear"),
                                            "tol": (1e-4, 1e-3)}, cv=2)
    search.cv_results_ = {"start": np.zeros(1)}  # only param_space matters for the check
    with pytest.raises(ValueError, match="one or two hyperparameters"):
        plot_search_path(search)
