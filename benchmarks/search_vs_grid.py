"""BilevelSearchCV against GridSearchCV, RandomizedSearchCV and HalvingRandomSearchCV, all in the same run.

Writes a record (see ``benchmarks/_harness.py``) and ``benchmarks/results/search_vs_grid.md`` (or ``--out``,
with the record beside it) and prints the table. For each row (an estimator
on a data set, with one or two continuous hyperparameters) the four searches tune the same Pipeline
``StandardScaler() -> estimator`` (the scaler is fitted per fold) with the same ``cv`` object, the same
scoring (the estimator's ``score``: accuracy for the classifiers, R^2 for the regressors) and
``n_jobs=None``:

* ``BilevelSearchCV(pipe, space, cv=cv, **BILEVEL[k])`` with the library defaults (``k`` = the number
  of hyperparameters). A variant without the initial grid and one with 3 starts (``ALTERNATIVES``) are
  run beside it on every row and reported in a section of their own;
* ``GridSearchCV`` on ``--grid-points`` (30) values per hyperparameter, log-spaced over the same range
  (``l1_ratio``: linearly spaced), i.e. 30 or 30 x 30 = 900 candidates;
* ``RandomizedSearchCV`` with ``n_iter`` = the budget, where the budget is the number of candidate
  points BilevelSearchCV evaluated (``len(cv_results_['params'])``: outer iterations, line-search trials
  and all starts); ``loguniform`` over the range (``uniform`` for ``l1_ratio``), ``random_state=0``;
* ``HalvingRandomSearchCV`` with ``n_candidates`` = the budget, ``factor=3``, ``resource='n_samples'``,
  ``min_resources='exhaust'`` (the last round runs on all samples where the budget allows; the budget
  candidates start on a subsample and a third survives each round, so it fits about 1.5 x budget
  candidates, most on subsamples), ``random_state=0``. Its score in the table is the 5-fold CV score
  on all samples of the candidate it picked, recomputed untimed with the same ``cv`` (equal to its
  ``best_score_`` when its last round used all samples; not otherwise, where the latter is measured on
  a subsample and not comparable).

``cv`` is ``StratifiedKFold(5, shuffle=True, random_state=0)`` for classifiers and
``KFold(5, shuffle=True, random_state=0)`` for regressors. Times are the wall time of ``fit`` (search
plus refit); a search faster than ``REPEAT_BELOW`` seconds is repeated (up to ``MAX_REPEATS`` runs or
``REPEAT_BUDGET`` seconds in all) and the median time reported, so that sub-second rows are not timer
noise. One untimed warm-up of every search runs first.

Targets (issue): BilevelSearchCV's best CV score at least the dense grid's best minus ``SCORE_TOL``
(0.002), and the time ratio GridSearchCV / BilevelSearchCV at least 5 with one hyperparameter and 20
with two.

Rows
----
Classifiers on Spambase, Ionosphere, MNIST 1-vs-2 (digits 1 and 2 of ``mnist_5k``) from
``../shared/data`` (loaded by ``benchmarks.svm_paper.load_dataset``) and scikit-learn's breast cancer:
``LogisticRegression`` (C in [1e-3, 1e3]) on all rows; ``SVC`` (rbf; C in [1e-2, 1e3], gamma in
[1e-3, 1e1] / n_features, i.e. four decades around scikit-learn's ``gamma='scale'`` = 1 / n_features
on standardised data) on at most ``--svc-rows`` (1000) rows, a stratified subsample with a fixed seed,
because the 900-candidate SVC grid on all 4,597 Spambase rows would take about an hour on two cores.
Regressors on diabetes: ``Ridge`` (alpha in [1e-3, 1e4]), ``Lasso`` (alpha in [1e-4, 1e1]),
``ElasticNet`` (alpha in [1e-4, 1e1], l1_ratio in [0.05, 1] linear).

Usage
-----
::

    python -m benchmarks.search_vs_grid                # all rows (about 10 minutes on 2 cores)
    python -m benchmarks.search_vs_grid --quick        # smoke run: 4 small rows, 6-point grids
    python -m benchmarks.search_vs_grid --datasets ionosphere diabetes --rows logreg enet -v
"""

from __future__ import annotations

import os

# Before numpy is imported: multi-threaded BLAS makes the small products of both sides ~10x slower on
# this 2-core machine (it affects every search alike).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import loguniform, uniform  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.experimental import enable_halving_search_cv  # noqa: E402,F401
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV, HalvingRandomSearchCV, KFold, RandomizedSearchCV, StratifiedKFold, cross_val_score,
    train_test_split,
)
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from benchmarks import _harness  # noqa: E402
from benchmarks.svm_paper import DATA_DIR, load_dataset  # noqa: E402
from skbilevel import BilevelSearchCV  # noqa: E402

NAME = "search_vs_grid"
RESULTS = _harness.RESULTS / f"{NAME}.md"
SEARCHES = ("BilevelSearchCV", "GridSearchCV", "RandomizedSearchCV", "HalvingRandomSearchCV")
SCORE_TOL = 0.002
SPEED_TARGET = {1: 5.0, 2: 20.0}
#: BilevelSearchCV settings by number of hyperparameters (the same for every row of that kind): the
#: library defaults (an initial coarse grid of 5 or 3 x 3 points, then one descent from its best point,
#: tol=1e-4).
BILEVEL = {1: dict(random_state=0), 2: dict(random_state=0)}
#: Other settings, run on every row beside the main one (BilevelSearchCV only; same GridSearchCV time):
#: without the initial grid (one descent from the middle of the box, as in the first version) and with
#: three descents from the three best grid points.
ALTERNATIVES = {"no initial grid (initial_grid=0)": dict(initial_grid=0, random_state=0),
                "3 starts (n_starts=3)": dict(n_starts=3, random_state=0)}
REPEAT_BELOW, MAX_REPEATS, REPEAT_BUDGET = 1.0, 5, 3.0
SEED = 0
DATASETS = ("spambase", "ionosphere", "mnist", "breast_cancer", "diabetes")
CLASSIFICATION = ("spambase", "ionosphere", "mnist", "breast_cancer")
DECIMAL = r"[-+]?\d*\.?\d+(?:e[-+]?\d+)?"


@dataclass
class Model:
    """An estimator with its searched ranges: ``{name: (low, high)}`` log scale, ``(low, high, 'linear')``."""

    key: str
    step: str
    make: object
    space: object  # callable n_features -> {name: range}
    classifier: bool


MODELS = {
    "logreg": Model("logreg", "logisticregression", LogisticRegression,
                    lambda p: {"C": (1e-3, 1e3)}, True),
    "svc": Model("svc", "svc", lambda: SVC(kernel="rbf"),
                 lambda p: {"C": (1e-2, 1e3), "gamma": (1e-3 / p, 1e1 / p)}, True),
    "ridge": Model("ridge", "ridge", Ridge, lambda p: {"alpha": (1e-3, 1e4)}, False),
    "lasso": Model("lasso", "lasso", Lasso, lambda p: {"alpha": (1e-4, 1e1)}, False),
    "enet": Model("enet", "elasticnet", ElasticNet,
                  lambda p: {"alpha": (1e-4, 1e1), "l1_ratio": (0.05, 1.0, "linear")}, False),
}
ROWS = (("logreg", "spambase"), ("logreg", "ionosphere"), ("logreg", "mnist"), ("logreg", "breast_cancer"),
        ("svc", "spambase"), ("svc", "ionosphere"), ("svc", "mnist"), ("svc", "breast_cancer"),
        ("ridge", "diabetes"), ("lasso", "diabetes"), ("enet", "diabetes"))
QUICK_ROWS = (("logreg", "ionosphere"), ("svc", "ionosphere"), ("ridge", "diabetes"), ("enet", "diabetes"))


@dataclass
class Result:
    """One search of one row."""

    score: float
    seconds: float
    params: dict
    runs: int
    warnings: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


# -- data ----------------------------------------------------------------------------------------
def load(name):
    """Features and targets of a data set (MNIST: digits 1 and 2 only)."""
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    return load_dataset(name)


def subsample(X, y, n_max, seed=SEED):
    """A stratified subsample of at most ``n_max`` rows (fixed seed)."""
    if len(y) <= n_max:
        return X, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=n_max, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return X[keep], y[keep]


# -- the searches --------------------------------------------------------------------------------
def pipeline(model):
    return Pipeline([("standardscaler", StandardScaler()), (model.step, model.make())])


def prefixed(model, space):
    return {f"{model.step}__{k}": v for k, v in space.items()}


def grid_of(space, points):
    return {k: (np.linspace(v[0], v[1], points) if len(v) == 3 else np.geomspace(v[0], v[1], points))
            for k, v in space.items()}


def distributions_of(space):
    return {k: (uniform(v[0], v[1] - v[0]) if len(v) == 3 else loguniform(v[0], v[1])) for k, v in space.items()}


def timed_fit(make_search, X, y):
    """Fit ``make_search()`` (repeated while fast, median time); return ``(fitted, seconds, runs, warnings)``."""
    times, total = [], 0.0
    while True:
        search = make_search()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            search.fit(X, y)
            seconds = time.perf_counter() - start
        times.append(seconds)
        total += seconds
        if seconds >= REPEAT_BELOW or len(times) >= MAX_REPEATS or total >= REPEAT_BUDGET:
            break
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    return search, float(np.median(times)), len(times), messages


def run_row(model_key, dataset, opts):
    """Fit the four searches on one row; return its description and results."""
    model = MODELS[model_key]
    X, y = load(dataset)
    n_full = len(y)
    if model_key == "svc":
        X, y = subsample(X, y, opts.svc_rows)
    space = prefixed(model, model.space(X.shape[1]))
    k = len(space)
    cv = (StratifiedKFold(5, shuffle=True, random_state=SEED) if model.classifier
          else KFold(5, shuffle=True, random_state=SEED))
    pipe = pipeline(model)
    results = {}

    bilevel, seconds, runs, msgs = timed_fit(lambda: BilevelSearchCV(pipe, space, cv=cv, **BILEVEL[k]), X, y)
    budget = len(bilevel.cv_results_["params"])
    results["BilevelSearchCV"] = Result(bilevel.best_score_, seconds, bilevel.best_params_, runs, msgs,
                                        {"n_iter": bilevel.n_iter_, "budget": budget})
    if opts.verbose:
        print(f"  {model_key} on {dataset}: BilevelSearchCV {seconds:.2f} s, {budget} points, "
              f"score {bilevel.best_score_:.4f}", file=sys.stderr, flush=True)

    grid = grid_of(space, opts.grid_points)
    makers = {
        "GridSearchCV": lambda: GridSearchCV(pipe, grid, cv=cv),
        "RandomizedSearchCV": lambda: RandomizedSearchCV(pipe, distributions_of(space), n_iter=budget, cv=cv,
                                                         random_state=SEED),
        "HalvingRandomSearchCV": lambda: HalvingRandomSearchCV(pipe, distributions_of(space), n_candidates=budget,
                                                               factor=3, min_resources="exhaust", cv=cv,
                                                               random_state=SEED),
    }
    for name, make in makers.items():
        search, seconds, runs, msgs = timed_fit(make, X, y)
        score, extra = search.best_score_, {}
        if name == "HalvingRandomSearchCV":
            extra = {"own_best_score": search.best_score_, "n_resources": list(search.n_resources_),
                     "n_candidates": list(search.n_candidates_)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = float(np.mean(cross_val_score(clone(pipe).set_params(**search.best_params_), X, y, cv=cv)))
        results[name] = Result(score, seconds, search.best_params_, runs, msgs, extra)
        if opts.verbose:
            print(f"  {model_key} on {dataset}: {name} {seconds:.2f} s, score {score:.4f}", file=sys.stderr,
                  flush=True)
    for label, settings in ALTERNATIVES.items() if opts.alternatives else ():
        search, seconds, runs, msgs = timed_fit(lambda: BilevelSearchCV(pipe, space, cv=cv, **settings), X, y)
        results[label] = Result(search.best_score_, seconds, search.best_params_, runs, msgs,
                                {"n_iter": search.n_iter_, "budget": len(search.cv_results_["params"])})
        if opts.verbose:
            print(f"  {model_key} on {dataset}: BilevelSearchCV, {label}: {seconds:.2f} s, "
                  f"score {search.best_score_:.4f}", file=sys.stderr, flush=True)
    info = {"model": model, "dataset": dataset, "n_samples": len(y), "n_full": n_full, "n_features": X.shape[1],
            "space": space, "k": k, "grid_size": opts.grid_points ** k}
    return info, results


def warm_up():
    """One untimed small fit of each search, so that imports and caches do not land in the first row."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:120], y[:120]
    pipe = pipeline(MODELS["logreg"])
    space = prefixed(MODELS["logreg"], {"C": (1e-2, 1e2)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BilevelSearchCV(pipe, space, cv=3, max_iter=3).fit(X, y)
        GridSearchCV(pipe, grid_of(space, 3), cv=3).fit(X, y)
        RandomizedSearchCV(pipe, distributions_of(space), n_iter=3, cv=3, random_state=0).fit(X, y)
        HalvingRandomSearchCV(pipe, distributions_of(space), n_candidates=3, cv=3, random_state=0).fit(X, y)


# -- the cells of the tables ---------------------------------------------------------------------
def short(name):
    return name.split("__", 1)[1]


def fmt_params(params):
    return ", ".join(f"{short(k)}={float(v):.3g}" for k, v in sorted(params.items()))


def fmt_space(space):
    parts = []
    for k, v in space.items():
        scale = "lin" if len(v) == 3 else "log"
        parts.append(f"{short(k)} ∈ [{v[0]:.3g}, {v[1]:.3g}] {scale}")
    return "; ".join(parts)


def row_label(info):
    return f"{type(info['model'].make()).__name__} on {info['dataset']}"


def verdict(info, results, which="BilevelSearchCV"):
    """``(met, why)`` for the issue's targets."""
    ours, grid = results[which], results["GridSearchCV"]
    ratio = grid.seconds / ours.seconds
    misses = []
    if ours.score < grid.score - SCORE_TOL:
        misses.append("score")
    if ratio < SPEED_TARGET[info["k"]]:
        misses.append("speed")
    return (not misses), ("yes" if not misses else "no (" + ", ".join(misses) + ")")


def main_cells(info, res):
    """A row of the main table: scores, times, their ratio and the verdict."""
    ours, grid = res["BilevelSearchCV"], res["GridSearchCV"]
    n = f"{info['n_samples']}" + (f" (of {info['n_full']})" if info["n_samples"] < info["n_full"] else "")
    return [row_label(info), ", ".join(short(k) for k in info["space"]), n, info["n_features"], info["grid_size"],
            ours.extra["budget"], *(res[s].score for s in SEARCHES), ours.score - grid.score,
            *(res[s].seconds for s in SEARCHES), grid.seconds / ours.seconds, SPEED_TARGET[info["k"]],
            verdict(info, res)[1]]


def detail_cells(info, res):
    h = res["HalvingRandomSearchCV"].extra
    rounds = ", ".join(f"{c} @ {r}" for c, r in zip(h["n_candidates"], h["n_resources"]))
    return [row_label(info), fmt_space(info["space"]), res["BilevelSearchCV"].extra["n_iter"],
            *(fmt_params(res[s].params) for s in SEARCHES), rounds, h["own_best_score"],
            [res[s].runs for s in SEARCHES]]


def alternative_cells(info, res):
    grid = res["GridSearchCV"]
    cells = [row_label(info), grid.score, grid.seconds]
    for label in ALTERNATIVES:
        r = res[label]
        cells += [r.score, r.score - grid.score, r.extra["budget"], r.seconds, grid.seconds / r.seconds,
                  verdict(info, res, label)[1]]
    return cells


def warning_counts(rows):
    """Distinct warning messages per row and search (of the last timed run), with counts (numbers shown as #)."""
    out = []
    for info, res in rows:
        for s in (*SEARCHES, *(a for a in ALTERNATIVES if a in res)):
            counts = Counter(re.sub(DECIMAL, "#", " ".join(m.split()))[:220] for m in res[s].warnings)
            out += [{"row": row_label(info), "search": s, "count": count, "message": message}
                    for message, count in counts.most_common()]
    return out


def raw(info, res):
    """Everything measured on one row, for the record."""
    return {"row": row_label(info), "space": {k: list(v) for k, v in info["space"].items()},
            **{k: info[k] for k in ("dataset", "n_samples", "n_full", "n_features", "k", "grid_size")},
            "searches": {name: vars(r) for name, r in res.items()}}


# -- markdown ------------------------------------------------------------------------------------
Column = _harness.Column
MAIN_COLUMNS = [Column("row"), Column("hyper-parameters"), Column("n_samples"), Column("n_features"),
                Column("grid size"), Column("budget (Bilevel points)"),
                *(Column(f"{s} score", "{:.4f}") for s in SEARCHES), Column("Bilevel − Grid", "{:+.4f}"),
                *(Column(f"{s} (s)", "{:.3g}") for s in SEARCHES), Column("Grid / Bilevel time", "{:.1f}x"),
                Column("target ratio", "{:.0f}x"), Column("target met")]
DETAIL_COLUMNS = [Column("row"), Column("searched ranges"), Column("Bilevel outer iterations"),
                  Column("Bilevel best"), Column("Grid best"), Column("Randomized best"), Column("Halving best"),
                  Column("Halving rounds (candidates @ samples)"), Column("Halving own best_score_", "{:.4f}"),
                  Column("timed runs (B / G / R / H)", "{} / {} / {} / {}")]


def alternative_columns(labels):
    columns = [Column("row"), Column("GridSearchCV score", "{:.4f}"), Column("GridSearchCV (s)", "{:.3g}")]
    for label in labels:
        columns += [Column(f"{label}: score", "{:.4f}"), Column("− Grid", "{:+.4f}"), Column("budget"),
                    Column("s", "{:.3g}"), Column("Grid / it", "{:.1f}x"), Column("target met")]
    return columns


def header(record):
    config, res = record["config"], record["results"]
    threads = ", ".join(f"{v}={config['threads'].get(v)}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
    settings = "; ".join(f"{k} hyperparameter{'s' if int(k) > 1 else ''}: "
                         + ", ".join(f"{a}={b!r}" for a, b in s.items()) for k, s in config["bilevel"].items())
    return [
        "# BilevelSearchCV against GridSearchCV, RandomizedSearchCV and HalvingRandomSearchCV", "",
        *_harness.run_lines(record, f"; whole run {res['wall_seconds']:.0f} s"),
        f"- {threads} (set by the script before numpy is imported: multi-threaded BLAS makes the small products "
        "~10x slower on this machine, for every search alike).",
        "- Every search tunes `Pipeline([StandardScaler(), estimator])` (scaler fitted per fold) with the same cv "
        "object (5 folds: `StratifiedKFold(shuffle=True, random_state=0)` for classifiers, `KFold(shuffle=True, "
        "random_state=0)` for regressors), the estimator's default `score` (accuracy / R²) and `n_jobs=None`. "
        "Estimators at scikit-learn defaults apart from the searched hyperparameters.",
        f"- BilevelSearchCV settings — {settings}. Its budget is `len(cv_results_['params'])`, every point it "
        "evaluated (initial grid, outer iterations, line-search trials and the score refinement).",
        f"- GridSearchCV: {config['grid_points']} log-spaced points per hyperparameter over the same range "
        "(`l1_ratio` linear). RandomizedSearchCV: `n_iter` = budget, `loguniform` (`uniform` for `l1_ratio`), "
        "`random_state=0`. HalvingRandomSearchCV: `n_candidates` = budget, `factor=3`, `min_resources='exhaust'`, "
        "`random_state=0`; its score column is the 5-fold CV score on all samples of the candidate it picked "
        "(recomputed untimed; its own `best_score_` is in the details table and is on a subsample when its last "
        "round did not reach all samples).",
        f"- SVC rows use a stratified subsample of at most {config['svc_rows']} rows (seed 0; `n_samples` column) "
        "so that the 900-candidate grid fits the time budget; gamma is searched in [1e-3, 1e1] / n_features "
        "(scikit-learn's `gamma='scale'` is 1 / n_features on standardised data).",
        f"- Times: wall seconds of `fit` (search + refit), measured in this run after an untimed warm-up; searches "
        f"under {REPEAT_BELOW:g} s are repeated (up to {MAX_REPEATS} runs or {REPEAT_BUDGET:g} s) and the median "
        "is shown. Ratio = GridSearchCV time / BilevelSearchCV time.",
        f"- Target met: BilevelSearchCV score ≥ GridSearchCV score − {SCORE_TOL} and ratio ≥ 5x (one "
        "hyperparameter) / 20x (two); `no (...)` names the target missed.",
        *_harness.note_lines(record), ""]


def render(records):
    """The table of the latest record."""
    record = records[-1]
    res = record["results"]
    n = len(res["main"])
    met = sum(row[-1] == "yes" for row in res["main"])
    lines = header(record)
    lines += ["## Best CV score and fit time", "", *_harness.table_lines(MAIN_COLUMNS, res["main"]), "",
              f"Targets met on {met} of {n} rows.", "",
              "## Details", "", *_harness.table_lines(DETAIL_COLUMNS, res["details"]), ""]
    labels = res["alternative_labels"]
    if res["alternatives"] is not None:
        counts = [sum(row[8 + 6 * i] == "yes" for row in res["alternatives"]) for i in range(len(labels))]
        lines += ["## Other BilevelSearchCV settings", "",
                  "BilevelSearchCV alone with other settings (the same for every row), timed in the same run; "
                  "the GridSearchCV score and time are those of the table above.", "",
                  *_harness.table_lines(alternative_columns(labels), res["alternatives"]), "",
                  "Targets met: " + "; ".join(f"{label}: {k} of {n}" for label, k in zip(labels, counts)) + ".", ""]
    warned = [f"- {w['row']}, {w['search']} ({w['count']}x): `{w['message']}`" for w in res["warnings"]]
    lines += ["## Warnings (last timed run of each search)", "", *(warned or ["- none"]), "", *res["skipped"]]
    return "\n".join(lines) + "\n"


# -- driver --------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 4 small rows, 6-point grids, SVC on 200 rows (unless given explicitly)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, help="only rows on these data sets")
    p.add_argument("--rows", nargs="+", choices=list(MODELS), help="only rows of these estimators")
    p.add_argument("--grid-points", type=int, default=None, help="grid points per hyperparameter (default 30)")
    p.add_argument("--svc-rows", type=int, default=None, help="subsample size of the SVC rows (default 1000)")
    p.add_argument("--no-alternatives", dest="alternatives", action="store_false",
                   help="skip the other BilevelSearchCV settings (see ALTERNATIVES)")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="markdown output file (another than the default: the record is written beside it)")
    p.add_argument("--verbose", "-v", action="store_true", help="one line per search on stderr")
    p.add_argument("--note", action="append", default=[],
                   help="a line on how the run was made (e.g. processes sharing the cores), added to the header")
    opts = p.parse_args(argv)
    opts.grid_points = opts.grid_points or (6 if opts.quick else 30)
    opts.svc_rows = opts.svc_rows or (200 if opts.quick else 1000)
    rows = QUICK_ROWS if opts.quick else ROWS
    rows = [(m, d) for m, d in rows if (not opts.rows or m in opts.rows) and (not opts.datasets or d in opts.datasets)]
    missing = [d for d in DATASETS if d not in ("breast_cancer", "diabetes") and not DATA_DIR.is_dir()]
    opts.notes = [f"- Rows on {d} skipped: data folder `{DATA_DIR}` not found." for d in missing
                  if any(r[1] == d for r in rows)]
    opts.todo = [r for r in rows if r[1] not in missing]
    if not opts.todo:
        p.error("no rows selected")
    return opts


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    start = time.perf_counter()
    warm_up()
    rows = []
    for model_key, dataset in opts.todo:
        t = time.perf_counter()
        rows.append(run_row(model_key, dataset, opts))
        print(f"{model_key} on {dataset}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    results = {"wall_seconds": time.perf_counter() - start,
               "main": [main_cells(i, r) for i, r in rows], "details": [detail_cells(i, r) for i, r in rows],
               "alternative_labels": list(ALTERNATIVES),
               "alternatives": [alternative_cells(i, r) for i, r in rows] if opts.alternatives else None,
               "warnings": warning_counts(rows), "skipped": opts.notes, "raw": [raw(i, r) for i, r in rows]}
    config = {"quick": opts.quick, "rows": [list(r) for r in opts.todo], "grid_points": opts.grid_points,
              "svc_rows": opts.svc_rows, "alternatives": opts.alternatives, "bilevel": BILEVEL,
              "threads": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                         "MKL_NUM_THREADS")}}
    record = _harness.new_record(NAME, argv, config, results, opts.note)
    _harness.publish(record, opts.out, RESULTS, render)


if __name__ == "__main__":
    main()
