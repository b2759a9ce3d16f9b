"""The ``method='auto'`` rule: pick a reformulation from the structure of the problem."""

from __future__ import annotations

from .methods import METHODS, hypergradient, perturbed_gd
from .problems.base import BilevelProblem


def select_method(problem: BilevelProblem, method: str = "auto") -> str:
    """Return the name of the method to run on ``problem``.

    ``'auto'`` picks

    - ``'perturbed-gd'`` for a non-convex lower level (``lower.convex`` is
      False, e.g. the ReLU network of ``HyperCleaningClassifier(model='mlp')``)
      offering ``'hvp'`` and ``'cross_vjp'``, without constraints. Implicit differentiation needs a
      lower-level minimiser reached exactly, with a nonsingular Hessian; a
      network trained to a budget is neither, and there its hypergradient
      was mostly noise (after 200 to 1,000 L-BFGS iterations, cosine 0.01-0.44
      with the one after 2,000: ``benchmarks/hyper_cleaning_hypergradient_drift.py``).
      Paper 001's single-loop method is built for non-convex lower levels and
      needs no lower-level solve after its warm start: on the four MLP rows
      of ``benchmarks/results/hyper_cleaning.md`` (``max_iter=600``) it
      scored 0.02-2.4 points of test accuracy above ``'hypergradient'`` and
      from 0.77 below to 2.8 above the 3.4-4.2 times slower
      ``'value-function'``, with the highest detection F1 on all four rows;
      at the estimator's default ``max_iter=100`` (2 seeds, ``hyper_cleaning_auto_mlp_records``) -0.07
      to +3.1 points against ``'hypergradient'``;
    - ``'hypergradient'`` otherwise, when the lower level can be solved and
      differentiated (``'solve'``, ``'cross_vjp'``, and ``'hvp'`` or
      ``'adjoint'``): its cost per iteration is one warm-started lower-level
      solve and one adjoint solve, whatever the number of hyperparameters. On the Ionosphere rows of paper
      000 it runs 20-500x faster than LME-MPEC and lowers the validation loss
      where LME-MPEC's first penalty subproblem diverges and it returns its
      start ``c = 0``, the plain SVM (whose test accuracy is then the higher
      one: weights fitted to a validation set of 35 samples overfit it); on
      single-``C`` problems it matched brute force where Algorithm 1 stopped at
      a worse stationary point (``tests/test_svm.py``);
    - ``'lme-mpec'`` for a linearly constrained convex lower level (it offers
      ``'constraints'``) that the hypergradient cannot use (no ``'solve'`` or
      ``'cross_vjp'``, or neither ``'hvp'`` nor ``'adjoint'``): paper 000
      shows that eliminating the multipliers through an LME solves the same
      program as the classical MPEC with fewer variables.

    A named method is returned unchanged after checking that it exists.
    """
    if method != "auto":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected 'auto' or one of {sorted(METHODS)}")
        return method
    lower = problem.lower
    caps = lower.capabilities
    if not lower.convex and set(perturbed_gd.REQUIRES) <= caps and "constraints" not in caps:
        return "perturbed-gd"
    if hypergradient.usable(lower):
        return "hypergradient"
    if "constraints" in caps:
        return "lme-mpec"
    raise ValueError(
        f"no method available for the lower level {type(lower).__name__} with "
        f"capabilities {sorted(caps)}; available: {sorted(METHODS)}"
    )
