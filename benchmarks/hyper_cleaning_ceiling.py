"""How much any learned weighting can gain: HyperCleaningClassifier's final refit with the true weights.

For each seed of a hyper-cleaning row (``hyper_cleaning.py``'s splits), the estimator's final refit
(weighted training data plus the trusted set, same network initialisation as ``fit`` draws) is run
with every training weight 1, with every training weight 1/2 (where the single-loop methods
leave the weights: their refit is this one) and with the true weights (1 for a clean label, 0 for
a corrupted one). Prints one JSON line per seed with the three test accuracies.

Usage::

    python -m benchmarks.hyper_cleaning_ceiling a 0.25 0,1,2,3,4 [mlp]
"""

import json
import sys
import warnings

import numpy as np

from benchmarks import hyper_cleaning as hc

from skbilevel import HyperCleaningClassifier


def main(setting, p, seeds, model="mlp"):
    warnings.simplefilter("ignore")
    X, y = hc.load()
    for seed in seeds:
        X_tr, y_noisy, bad, X_v, y_v, X_te, y_te, _ = hc.task(X, y, setting, p, seed)
        clf = HyperCleaningClassifier(model=model, random_state=seed)
        Y_tr, Y_v, init, lower = hc.fit_setup(clf, X_tr, y_noisy, y_v)
        out = {}
        for name, weights in (("ones", np.ones(len(y_noisy))), ("half", np.full(len(y_noisy), 0.5)),
                              ("true", (~bad).astype(float))):
            theta = clf._refit(X_tr, Y_tr, weights, X_v, Y_v, np.ones(len(y_v)), init, None)
            clf.coef_, clf.intercept_ = clf._coefficients(lower, theta)
            out[name] = clf.score(X_te, y_te)
        print(json.dumps({"setting": setting, "p": p, "model": model, "seed": seed, **out}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")], *sys.argv[4:5])
