"""BilevelSearchCV runs its folds through joblib: loky and a local Dask cluster give the sequential result."""

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbilevel import BilevelSearchCV


@pytest.fixture(scope="module")
def search_and_data():
    X, y = load_breast_cancer(return_X_y=True)
    search = BilevelSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                             {"logisticregression__C": (1e-3, 1e3)}, cv=4, max_iter=8)
    sequential = search.fit(X, y).cv_results_
    return search, X, y, sequential


def _assert_same(results, reference):
    np.testing.assert_allclose(results["param_logisticregression__C"].data,
                               reference["param_logisticregression__C"].data, rtol=1e-8)
    np.testing.assert_allclose(results["validation_loss"], reference["validation_loss"], rtol=1e-8)
    np.testing.assert_array_equal(results["mean_test_score"], reference["mean_test_score"])


def test_loky_two_workers(search_and_data):
    search, X, y, reference = search_and_data
    with joblib.parallel_backend("loky"):
        results = search.set_params(n_jobs=2).fit(X, y).cv_results_
    _assert_same(results, reference)


def test_local_dask_cluster(search_and_data):
    distributed = pytest.importorskip("distributed")
    search, X, y, reference = search_and_data
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with joblib.parallel_backend("dask"):
            results = search.set_params(n_jobs=2).fit(X, y).cv_results_
    _assert_same(results, reference)
