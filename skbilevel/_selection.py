"""The ``method='auto'`` rule: pick a reformulation from the structure of the problem."""

from __future__ import annotations

from .methods import METHOD_OBJECTS, METHODS
from .problems.base import BilevelProblem


def select_method(problem: BilevelProblem, method: str = "auto") -> str:
    """Return the name of the method to run on ``problem``.

    ``'auto'`` picks

    - ``'perturbed-gd'`` for a non-convex lower level (``lower.convex`` is
      False, e.g. the ReLU network of ``HyperCleaningClassifier(model='mlp')``)
      offering ``'hvp'`` and ``'cross_vjp'``, without constraints. Implicit
      differentiation needs a lower-level minimiser reached exactly, with a
      nonsingular Hessian; a network trained to a budget is neither, and its
      hypergradient then points in directions that change from one budget to
      the next (``benchmarks/hyper_cleaning_hypergradient_drift.py``). The
      single-loop method of the perturbed-gradient paper (2025) is built for
      non-convex lower levels and needs no lower-level solve after its warm
      start; on the network rows of ``benchmarks/results/hyper_cleaning.md``
      it reaches test accuracies at least those of ``'hypergradient'`` and
      close to the slower ``'value-function'``, with the best detection of
      the corrupted samples;
    - ``'hypergradient'`` otherwise, when the lower level can be solved and
      differentiated (``'solve'``, ``'cross_vjp'``, and ``'hvp'`` or
      ``'adjoint'``): its cost per iteration is one warm-started lower-level
      solve and one adjoint solve, whatever the number of hyperparameters.
      On the SVM problems of Huang et al. (2025) it runs orders of magnitude
      faster than LME-MPEC, whose penalty subproblems are programs in all
      the weights and slacks at once, even with IPOPT's sparse interior
      point (``solver='ipopt'``) on Ionosphere and Spambase
      (``python -m benchmarks.svm_paper --table2 --method lme-mpec`` against
      the default measures both). On
      single-``C`` problems it matched brute force where Algorithm 1
      stopped at a worse stationary point (``tests/test_svm.py``). So
      ``'auto'`` never picks LME-MPEC for a lower level the hypergradient
      can use;
    - ``'lme-mpec'`` for a linearly constrained convex lower level (it offers
      ``'constraints'``, ``'hvp'`` and ``'cross_vjp'``) that the hypergradient cannot use (no ``'solve'`` or
      ``'cross_vjp'``, or neither ``'hvp'`` nor ``'adjoint'``): Huang et al.
      (2025) show that eliminating the multipliers through an LME solves the
      same program as the classical MPEC with fewer variables.

    A named method is returned unchanged after checking that it exists.

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025.
    .. [2] "Perturbed Gradient Descent via Convex Quadratic Approximation for
       Nonconvex Bilevel Optimization", anonymous authors (under double-blind
       review), 2025.
    .. [3] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the hypergradient by implicit differentiation, section 5.1.
    """
    if method != "auto":
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected 'auto' or one of {sorted(METHODS)}")
        return method
    lower = problem.lower
    # each method states what it needs of a lower level and what it refuses: the rule reads it from them
    if not lower.convex and METHOD_OBJECTS["perturbed-gd"].accepts(lower):
        return "perturbed-gd"
    for name in ("hypergradient", "lme-mpec"):
        if METHOD_OBJECTS[name].accepts(lower):
            return name
    raise ValueError(
        f"no method available for the lower level {type(lower).__name__} with "
        f"capabilities {sorted(lower.capabilities)}; available: {sorted(METHODS)}"
    )
