"""How far the hyper-cleaning hypergradient can be trusted: its direction as the lower level trains on.

Implicit differentiation assumes ``grad_y f = 0`` at a smooth minimum. For one row of
``hyper_cleaning.py`` (default (a) p = 0.5, seed 0) at ``x = 0`` (every weight 1/2), the lower level
is trained on by warm-started solves (200, 400, 1,000, 2,000 iterations in all) and after each the
hypergradient is computed with its adjoint solved to 1e-6. Prints per stage ``||grad_y f||``, the
upper objective and the detection F1 of the hypergradient's order (the largest entries, as many as
there are corrupted labels, called corrupted), then the cosine of each hypergradient with the last.
For the logistic model one solve reaches ``||grad_y f|| ~ 1e-15`` and there is one stage.

Usage::

    python -m benchmarks.hyper_cleaning_hypergradient_drift [mlp|logistic] [a|b] [P] [SEED]
"""

import sys
import time
import warnings

import numpy as np

from benchmarks import hyper_cleaning as hc

from skbilevel.methods.hypergradient import hypergradient
from skbilevel.problems import BilevelProblem
from skbilevel.problems.classifiers import (CrossEntropyValidationLoss, WeightedMLP,
                                            WeightedSoftmaxRegression)

# iterations added per stage (the MLP's solves stop at their budget: L-BFGS stalls on the ReLU kinks)
STAGES = {"mlp": (200, 200, 600, 1000), "logistic": (2000,)}


def order_f1(grad, corrupted):
    """F1 of calling corrupted the samples with the largest hypergradient (their weight would go down)."""
    detected = np.zeros(corrupted.size, dtype=bool)
    detected[np.argsort(grad)[-corrupted.sum():]] = True
    return hc.detection_f1(detected, corrupted)


def main(model="mlp", setting="a", p=0.5, seed=0, alpha=0.01, n_hidden=64):
    warnings.simplefilter("ignore")
    X, y = hc.load()
    X_tr, y_noisy, bad, X_v, y_v, _, _, _ = hc.task(X, y, setting, p, seed)
    Y, Y_v = np.eye(10)[y_noisy], np.eye(10)[y_v]
    lower = (WeightedMLP(X_tr, Y, n_hidden=n_hidden, alpha=alpha, random_state=seed) if model == "mlp"
             else WeightedSoftmaxRegression(X_tr, Y, alpha=alpha))
    problem = BilevelProblem(CrossEntropyValidationLoss(lower, X_v, Y_v), lower)
    x, theta, total, grads = np.zeros(lower.n_hyper), None, 0, {}
    for iters in STAGES[model]:
        start = time.perf_counter()
        theta, _ = lower.solve(x, theta, tol=1e-12, max_iter=iters)
        total += iters
        F, grads[total], _ = hypergradient(problem, x, theta, tol=1e-6, max_iter=500)
        print(f"{model} after {total:5d} iterations: ||grad_y f|| {np.linalg.norm(lower.grad_y(x, theta)):.2e}  "
              f"F {F:.5f}  ||hypergradient|| {np.linalg.norm(grads[total]):.3e}  "
              f"F1 of its order {order_f1(grads[total], bad):.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    last = grads[total]
    for k, g in grads.items():
        if k != total:
            print(f"cosine(after {k}, after {total}) = {g @ last / np.linalg.norm(g) / np.linalg.norm(last):.3f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:2], *(float(a) for a in args[2:3]), *(int(a) for a in args[3:4]))
