"""Where BilevelSearchCV's metadata go: the splitter, earlier Pipeline steps, the folds' training problems,
the scorer and the refit.

Without metadata routing the search takes ``groups`` and ``sample_weight``
only, as GridSearchCV does (scikit-learn 1.9): the weights train every fold
and the refit, and weight the fold scores when the scorer accepts them. With
routing on (``sklearn.set_config(enable_metadata_routing=True)``) the search
is a router, as GridSearchCV is: :func:`metadata_router` says who requests
what and :func:`route_fit_params` hands it over.
"""

from __future__ import annotations

from inspect import signature

import numpy as np
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils.metadata_routing import (
    MetadataRouter, MethodMapping, _routing_enabled, get_routing_for_object, process_routing,
)

from ._validation_split import check_sample_weight
from ._warnings import warn


def split_pipeline(estimator):
    """Return ``(preprocessing, final, prefix)``: a Pipeline's earlier steps, its last step and
    the parameter prefix of the last step (``'svc__'``)."""
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        pre = Pipeline(estimator.steps[:-1]) if len(estimator.steps) > 1 else None
        return pre, final, f"{name}__"
    return None, estimator, ""


def accepts_sample_weight(scorer):
    """Whether GridSearchCV (scikit-learn 1.9, metadata routing off) hands ``sample_weight`` to ``scorer``:
    a scikit-learn scorer that says so, or a callable with a ``sample_weight`` parameter."""
    if hasattr(scorer, "_accept_sample_weight"):
        return bool(scorer._accept_sample_weight())
    return "sample_weight" in signature(scorer).parameters


def scorers_refusing_sample_weight(scorer):
    """The names of the scorers that take no ``sample_weight`` (each of a multi-metric scorer's)."""
    named = getattr(scorer, "_scorers", None)
    if isinstance(named, dict):
        return [f"{name}={s}" for name, s in named.items() if not accepts_sample_weight(s)]
    return [] if accepts_sample_weight(scorer) else [str(scorer)]


def fold_params(params, n_samples, indices):
    """``params`` restricted to the rows ``indices`` where they are per-sample arrays."""
    return {key: _safe_indexing(value, indices) if hasattr(value, "__len__") and len(value) == n_samples
            else value for key, value in params.items() if value is not None}


def route_fit_params(search, scorer, groups, sample_weight, params):
    """Where the metadata of ``search.fit`` go.

    Parameters
    ----------
    search : BilevelSearchCV
        The search being fitted (its ``estimator`` and, with routing on,
        its :meth:`get_metadata_routing`).
    scorer : callable
        The scorer of the fold scores.
    groups, sample_weight : array-like or None
        ``fit``'s named metadata (``sample_weight`` already checked).
    params : dict
        ``fit``'s other metadata (refused without routing).

    Returns
    -------
    dict
        ``split`` (the splitter's), ``pre`` (earlier Pipeline steps'),
        ``weight`` (the training problem's sample weights or None),
        ``score`` (the scorer's) and ``refit`` (the refit's ``fit``'s).
    """
    if _routing_enabled():
        return _routed_fit_params(search, groups, sample_weight, params)
    if params:
        raise TypeError(f"{type(search).__name__}.fit got unexpected arguments {sorted(params)}: without "
                        "metadata routing it takes sample_weight and groups only (see "
                        "sklearn.set_config(enable_metadata_routing=True)).")
    score = {}
    if sample_weight is not None:
        for name in scorers_refusing_sample_weight(scorer):  # GridSearchCV's warning
            warn(f"The scoring {name} does not support sample_weight, which may lead to statistically "
                 f"incorrect results when fitting {type(search).__name__} with sample_weight.", UserWarning)
        if accepts_sample_weight(scorer):  # GridSearchCV weights the fold scores too
            score = {"sample_weight": sample_weight}
    refit = {} if sample_weight is None else {f"{split_pipeline(search.estimator)[2]}sample_weight": sample_weight}
    return {"split": {"groups": groups}, "pre": {}, "weight": sample_weight, "score": score, "refit": refit}


def _routed_fit_params(search, groups, sample_weight, params):
    """:func:`route_fit_params` with metadata routing on: each goes where it is requested."""
    metadata = {k: v for k, v in {"groups": groups, "sample_weight": sample_weight, **params}.items()
                if v is not None}
    routed = process_routing(search, "fit", **metadata)
    fit_params = dict(routed.estimator.fit)
    pre, final, _ = split_pipeline(search.estimator)
    if pre is None:  # the estimator's own parameter names (aliases resolved)
        final_params = fit_params
    else:  # what the Pipeline hands its last step, under the step's own names
        last = search.estimator.steps[-1][0]
        final_params = dict(get_routing_for_object(search.estimator).route_params(params=fit_params,
                                                                                    caller="fit")[last].fit)
    if set(final_params) - {"sample_weight"}:
        raise ValueError(f"{type(final).__name__} requests {sorted(set(final_params) - {'sample_weight'})} in "
                         f"fit, but {type(search).__name__} solves its training problem itself and takes "
                         "sample_weight only.")
    pre_params = {} if pre is None else {
        k: fit_params[k] for k in get_routing_for_object(pre).consumes("fit", set(fit_params))}
    weight = final_params.get("sample_weight")
    if weight is not None:
        weight = check_sample_weight(weight, np.ones(len(weight)))
    return {"split": dict(routed.splitter.split), "pre": pre_params, "weight": weight,
            "score": dict(routed.scorer.score), "refit": fit_params}


def route_score_params(search, params):
    """The scorer's metadata of ``search.score``: routed when routing is on, else none accepted."""
    if _routing_enabled():
        return dict(process_routing(search, "score", **params).scorer.score)
    if params:
        raise ValueError(f"{type(search).__name__}.score takes {sorted(params)} only with metadata routing "
                         "enabled (sklearn.set_config(enable_metadata_routing=True)).")
    return params


def metadata_router(search):
    """GridSearchCV's routing: ``fit`` routes to the estimator's ``fit``, the scorer's ``score`` and the
    splitter's ``split``; ``score`` to the scorer."""
    router = MetadataRouter(owner=search)
    router.add(estimator=search.estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit"))
    router.add(scorer=check_scoring(search.estimator, scoring=search.scoring),
               method_mapping=MethodMapping().add(caller="score", callee="score")
               .add(caller="fit", callee="score"))
    # search.cv as it is (GridSearchCV's way): check_cv would consume a generator of splits
    router.add(splitter=search.cv, method_mapping=MethodMapping().add(caller="fit", callee="split"))
    return router
