"""Does solving the hyper-cleaning problem further help the network? value-function with a warm step.

``HyperCleaningClassifier(model='mlp', method='value-function')`` carries the x step of
Algorithm 1 of Liu et al. (2021) over rounds (``warm_step=True``). Without it each round starts its
spectral step at 1; on the MLP rows of ``hyper_cleaning.py`` most rounds then move ``x`` by
``O(1/n)`` and end when the Armijo search on the budget-solved ``varphi_k`` finds no decrease,
and the weights end near 1/2 (the notes of ``benchmarks/results/hyper_cleaning.md``). This
script runs exactly what ``HyperCleaningClassifier(model='mlp', method='value-function',
max_iter=10)`` runs in the table (same split, network initialisation,
method options and final refit), with the warm step or (``--cold``) without it, and prints per
seed the trusted-set cross-entropy the method ends at, the mean weights of clean and corrupted
samples, the test accuracy and the detection F1, beside the record of the earlier table's cell
(``warm_step=False``, the earlier refit) where its record
(``benchmarks/results/records/hyper_cleaning/20261202T1639_earlier_refit.json``) holds it.

Usage::

    python -m benchmarks.hyper_cleaning_overfit a 0.25 0,1,2 [--cold]

References
----------
R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based Interior-point Method for
Non-convex Bi-level Optimization", ICML 2021.
"""

import json
import sys
import time
import warnings
from types import SimpleNamespace

import numpy as np
from scipy.special import expit

from benchmarks import _harness
from benchmarks import hyper_cleaning as hc

from skbilevel import HyperCleaningClassifier
from skbilevel.cleaning import _INEXACT_OPTIONS
from skbilevel.methods import value_function
from skbilevel.problems import BilevelProblem
from skbilevel.problems.classifiers import CrossEntropyValidationLoss

# the earlier table's run: its record, the default max_iter, alpha and n_hidden, and value-function:mlp=10
EARLIER = _harness.RECORDS / "hyper_cleaning" / "20261202T1639_earlier_refit.json"
TABLE = SimpleNamespace(max_iter=30, alpha=0.01, n_hidden=64)
ROUNDS = 10


def table_record(setting, p, seed):
    """The earlier table's value-function cell for this seed (``warm_step=False``), or None."""
    for row in json.loads(EARLIER.read_text())["results"]["rows"]:
        if (row["setting"], row["p"], row["model"]) == (setting, p, "mlp"):
            rec = next((r.get("value-function") for r in row["seeds"] if r["seed"] == seed), None)
            return None if rec is None else {"acc": rec["acc"], "f1": rec["f1"]}
    return None


def run(X, y, setting, p, seed, warm_step):
    """HyperCleaningClassifier.fit's steps for the table's MLP value-function cell, with ``warm_step``."""
    X_tr, y_noisy, bad, X_v, y_v, X_te, y_te, _ = hc.task(X, y, setting, p, seed)
    clf = HyperCleaningClassifier(model="mlp", method="value-function", alpha=TABLE.alpha, n_hidden=TABLE.n_hidden,
                                  max_iter=ROUNDS, random_state=seed)
    Y_tr, Y_v, init, lower = hc.fit_setup(clf, X_tr, y_noisy, y_v)
    problem = BilevelProblem(CrossEntropyValidationLoss(lower, X_v, Y_v), lower)
    start = time.perf_counter()
    result = value_function.solve(problem, np.zeros(lower.n_hyper), tol=clf.tol, max_iter=ROUNDS,
                                  **{**_INEXACT_OPTIONS["value-function"], "warm_step": warm_step})
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
