"""How a bilevel problem is solved: one module per reformulation."""

from . import hypergradient, lme, lme_mpec, mpec, perturbed_gd, sqcqp, value_function

#: Method name -> solver function ``solve(problem, x0, y0=None, **options)``.
METHODS = {
    "lme-mpec": lme_mpec.solve,
    "mpec": mpec.solve,
    "hypergradient": hypergradient.solve,
    "value-function": value_function.solve,
    "perturbed-gd": perturbed_gd.solve,
    "sqcqp": sqcqp.solve,
}

__all__ = ["METHODS", "hypergradient", "lme", "lme_mpec", "mpec", "perturbed_gd", "sqcqp", "value_function"]
