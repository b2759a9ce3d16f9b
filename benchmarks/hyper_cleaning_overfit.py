"""Does solving the hyper-cleaning problem further help the network? value-function with a warm step.

``HyperCleaningClassifier(model='mlp', method='value-function')`` carries the x step of
Algorithm 1 over rounds (``warm_step=True``) since 2026-12-03. Before, each round started its
spectral step at 1; on the MLP rows of ``hyper_cleaning.py`` most rounds then moved ``x`` by
``O(1/n)`` and ended when the Armijo search on the budget-solved ``varphi_k`` found no decrease,
and the weights ended near 1/2 (on (a) p = 0.25 seed 0: mean 0.53 on clean labels, 0.47 on
corrupted ones). This script runs exactly what ``HyperCleaningClassifier(model='mlp',
method='value-function', max_iter=10)`` runs in the table (same split, network initialisation,
method options and final refit), with the warm step or (``--cold``) without it, and prints per
seed the trusted-set cross-entropy the method ends at, the mean weights of clean and corrupted
samples, the test accuracy and the detection F1, beside the record of the earlier table's cell
(``warm_step=False``, the earlier refit) where ``benchmarks/results/hyper_cleaning_records`` holds it.

Usage::

    PYTHONPATH=. python benchmarks/hyper_cleaning_overfit.py a 0.25 0,1,2 [--cold]
"""

import json
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hyper_cleaning as hc  # noqa: E402

from skbilevel import HyperCleaningClassifier  # noqa: E402
from skbilevel.cleaning import _INEXACT_OPTIONS  # noqa: E402
from skbilevel.methods import value_function  # noqa: E402
from skbilevel.problems import BilevelProblem  # noqa: E402
from skbilevel.problems.classifiers import CrossEntropyValidationLoss  # noqa: E402

# the table's run: its records, the default max_iter, alpha and n_hidden, and value-function:mlp=10
TABLE = SimpleNamespace(records=Path(__file__).resolve().parent / "results" / "hyper_cleaning_records",
                        max_iter=30, alpha=0.01, n_hidden=64)
ROUNDS = 10


def table_record(setting, p, seed):
    """The earlier table's value-function cell for this seed (``warm_step=False``), or None."""
    path = hc.record_path(TABLE, setting, p, "mlp", seed)
    rec = json.loads(path.read_text()).get("value-function") if path.exists() else None
    return None if rec is None else {"acc": rec["acc"], "f1": rec["f1"]}


def run(X, y, setting, p, seed, warm_step):
    """HyperCleaningClassifier.fit's steps for the table's MLP value-function cell, with ``warm_step``."""
    X_tr, y_noisy, bad, X_v, y_v, X_te, y_te, _ = hc.task(X, y, setting, p, seed)
    clf = HyperCleaningClassifier(model="mlp", method="value-function", alpha=TABLE.alpha, n_hidden=TABLE.n_hidden,
                                  max_iter=ROUNDS, random_state=seed)
    Y_tr, Y_v, init, lower = hc.fit_setup(clf, X_tr, y_noisy, y_v)
    problem = BilevelProblem(CrossEntropyValidationLoss(lower, X_v, Y_v), lower)
    start = time.perf_counter()
    result = value_function.solve(problem, np.zeros(lower.n_hyper), tol=clf.tol, max_iter=ROUNDS,
                                  **{**_INEXACT_OPTIONS, "warm_step": warm_step})
    weights = expit(result.hyperparameters)
    theta = clf._refit(X_tr, Y_tr, weights, X_v, Y_v, np.ones(Y_v.shape[0]), init, result.model)
    clf.coef_, clf.intercept_ = clf._coefficients(lower, theta)
    return {"trusted_ce": round(result.history["objective"][-1], 4),
            "weight_clean": round(float(weights[~bad].mean()), 3),
            "weight_corrupted": round(float(weights[bad].mean()), 3),
            "acc": clf.score(X_te, y_te), "f1": round(hc.detection_f1(weights < 0.5, bad), 4),
            "seconds": round(time.perf_counter() - start, 1)}


def main(setting, p, seeds, warm_step=True):
    warnings.simplefilter("ignore")
    X, y = hc.load()
    for seed in seeds:
        out = {"setting": setting, "p": p, "seed": seed, "warm_step": warm_step,
               **run(X, y, setting, p, seed, warm_step),
               "earlier table (warm_step=False)": table_record(setting, p, seed)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")],
         warm_step="--cold" not in sys.argv[4:])
