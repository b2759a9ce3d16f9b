"""Huang et al. (2025), section 4: Table 1, Fisher Iris and Table 2 with BilevelSVC beside two scikit-learn baselines.

Writes a record (see ``benchmarks/_harness.py``) and ``benchmarks/results/svm_paper.md`` (or ``--out``,
with the record beside it) and prints the table. Every row is the mean and
standard deviation over ``--seeds`` random draws (seeds ``0, 1, ...``) of three classifiers:

* ``BilevelSVC()``: one weight ``e^{c_i}`` per training sample (the paper's model), fitted on the
  training part with the validation part passed as ``X_val``, ``y_val``;
* ``LinearSVC()`` fitted on the training part;
* ``GridSearchCV(LinearSVC(), {'C': np.logspace(-4, 4, 17)}, cv=k)`` on the training part, with
  ``k = min(5, smallest class count of the training part)``, on one core (``n_jobs=None``).

All are scored on the test part. ``ConvergenceWarning`` is recorded, not hidden: each row counts the
fits (seeds) in which a classifier raised one, and the distinct messages are listed under the tables.

Experiments
-----------
Table 1
    50 points in 2-D, 25 per class ``y = -1, +1``, drawn as ``x = y * (2.5, 2.5) / sqrt(2) + N(0, I)``
    (class means 5 standard deviations apart). A draw that is not linearly separable (checked by a
    feasibility LP) is rejected and redrawn, so the clean data is always separable, as in the paper's
    figure. Then ``k`` in {0, 4, 8, 12} labels, chosen uniformly among all 50 points, are flipped
    (nested: the 4 flipped points are among the 8). The split 30 / 5 / 15 (60 / 10 / 30 %) is
    stratified by the clean label and is the same for every ``k`` of a seed. Accuracy is reported
    against the observed, possibly flipped, test labels (as in the paper) and against the clean ones;
    the "oracle" is the observed-label accuracy of the clean labels themselves, the ceiling of a
    classifier that recovers the clean boundary. The flips also reach the validation part, which
    BilevelSVC fits; the table gives how many of its 5 labels are flipped.
Fisher Iris
    setosa vs virginica, petal length and width (the last two features), stratified split
    60 / 10 / 30, no scaling.
Table 2 (``--table2``)
    Ionosphere, Spambase, MNIST digits 1 vs 2 from ``../shared/data`` (skipped with a message when
    absent), stratified splits train : validation : test in the paper's five ratios; features
    standardised by a ``StandardScaler`` fitted on the training part.

Usage
-----
::

    python -m benchmarks.svm_paper                   # Table 1 and Iris, 10 seeds
    python -m benchmarks.svm_paper --table2          # also Table 2 (slow)
    python -m benchmarks.svm_paper --table2 --skip-small --datasets ionosphere \\
        --ratios 0.8:0.1:0.1 --seeds 2 --verbose --out /tmp/ionosphere.md
    python -m benchmarks.svm_paper --compare-methods hypergradient lme-mpec mpec \\
        --datasets ionosphere --ratios 0.8:0.1:0.1

``--compare-methods`` fits, on the Table 2 rows only, ``BilevelSVC(method=m)`` for each named method on
every seed, the methods one after the other on the same split (their order rotating with the seed), and
writes the section "Table 2 by method" of ``svm_paper.md``: accuracy, fits that reached the method's
exit test, time, and the time of MPEC over LME-MPEC, each row from the latest run that measured it. The
other sections come from the latest run without ``--compare-methods``.

Notes
-----
The paper reports one run per row (its accuracies are multiples of 1/16 in Table 1 and 30/31 for
Iris, so its test parts held 16 and 31 points; ours hold 15 and 30). Its runtimes are MATLAB R2024a
``fmincon`` on an Intel i5-14600K and are shown for reference only; the time ratio GridSearchCV /
BilevelSVC is measured in the same run on the same machine.

References
----------
L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for Hyperparameter Learning in Supporting
Vector Machines", 2025.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.optimize import linprog
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from benchmarks import _harness
from skbilevel import BilevelSVC

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
NAME = "svm_paper"
RESULTS = _harness.RESULTS / f"{NAME}.md"
GRID = {"C": np.logspace(-4, 4, 17)}
METHODS = ("BilevelSVC", "LinearSVC", "GridSearchCV")
DECIMAL = r"[-+]?\d*\.\d+(?:e[-+]?\d+)?"

FLIPS = (0, 4, 8, 12)
PAPER_TABLE1 = {0: (1.0000, 0.2641), 4: (0.9375, 0.2812), 8: (0.8750, 0.2341), 12: (0.8125, 0.3032)}
PAPER_IRIS = (0.9677, 0.5241)
DATASETS = ("ionosphere", "spambase", "mnist")
PAPER_TABLE2 = {  # ratio -> accuracy on (ionosphere, spambase, mnist); the paper gives no runtimes
    "0.8:0.1:0.1": (0.9167, 0.9020, 0.9608),
    "0.7:0.1:0.2": (0.9014, 0.9010, 0.9608),
    "0.6:0.1:0.3": (0.8962, 0.8874, 0.9404),
    "0.6:0.2:0.2": (0.8873, 0.8911, 0.9505),
    "0.5:0.2:0.3": (0.8491, 0.8808, 0.9535),
}


@dataclass
class Task:
    """One seed's data: features, observed and clean labels, and the train / validation / test rows."""

    X: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class Row:
    """One table row: its label, the paper's accuracy and runtime, and how to build a seed's task."""

    label: str
    paper_acc: float
    paper_time: float | None
    make_task: Callable[[int], Task]


# -- data ----------------------------------------------------------------------------------------
def linearly_separable(X, y):
    """Whether some ``(w, b)`` has ``y_i (w^T x_i + b) >= 1`` for all ``i`` (a feasibility LP)."""
    A = -y[:, None] * np.hstack([X, np.ones((len(y), 1))])
    res = linprog(np.zeros(A.shape[1]), A_ub=A, b_ub=-np.ones(len(y)), bounds=(None, None))
    return res.status == 0


def synthetic(rng, n=50, shift=2.5):
    """Two unit-variance Gaussian clusters at ``+-(shift, shift) / sqrt(2)``, redrawn until separable."""
    y = np.repeat([-1, 1], n // 2)
    mean = np.full(2, shift / np.sqrt(2))
    while True:
        X = y[:, None] * mean + rng.standard_normal((n, 2))
        if linearly_separable(X, y):
            return X, y


def split(y, ratios, seed):
    """Stratified train / validation / test row indices in proportions ``ratios``."""
    n = len(y)
    n_test, n_val = round(ratios[2] * n), round(ratios[1] * n)
    rest, test = train_test_split(np.arange(n), test_size=n_test, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=seed)
    return train, val, test


def parse_ratios(text):
    """``'0.8:0.1:0.1'`` -> ``(0.8, 0.1, 0.1)``."""
    return tuple(float(r) for r in text.split(":"))


def load_dataset(name):
    """Features and labels of a Table 2 data set from ``DATA_DIR`` (MNIST restricted to digits 1, 2)."""
    if name == "mnist":
        data = np.loadtxt(DATA_DIR / "mnist_5k.csv.gz", delimiter=",")
        keep = np.isin(data[:, -1], (1, 2))
        return data[keep, :-1], data[keep, -1].astype(int)
    raw = np.genfromtxt(DATA_DIR / f"{name}.dat", delimiter=",", dtype=str)
    return raw[:, :-1].astype(float), np.char.strip(raw[:, -1])


# -- the three experiments as rows ---------------------------------------------------------------
def table1_rows():
    """Table 1: synthetic data with 0, 4, 8, 12 flipped labels."""

    def make(k):
        def task(seed):
            X, y_clean = synthetic(np.random.default_rng((seed, 0)))
            y = y_clean.copy()
            flipped = np.random.default_rng((seed, 1)).permutation(len(y))[:k]
            y[flipped] *= -1
            return Task(X, y, y_clean, *split(y_clean, (0.6, 0.1, 0.3), seed))

        return task

    return [Row(f"{k} flipped", *PAPER_TABLE1[k], make(k)) for k in FLIPS]


def iris_rows():
    """Fisher Iris, setosa vs virginica, last two features."""
    iris = load_iris()
    keep = np.isin(iris.target, (0, 2))
    X, y = iris.data[keep][:, 2:], iris.target_names[iris.target[keep]]

    def task(seed):
        return Task(X, y, y, *split(y, (0.6, 0.1, 0.3), seed))

    return [Row("setosa vs virginica", *PAPER_IRIS, task)]


def table2_rows(datasets, ratios):
    """Table 2: standardised real data sets in the given split ratios."""
    rows = []
    for name in datasets:
        X_raw, y = load_dataset(name)
        for text in ratios:
            rows.append(Row(f"{name} {text}", PAPER_TABLE2[text][DATASETS.index(name)], None,
                            _standardised_task(X_raw, y, parse_ratios(text))))
    return rows


def _standardised_task(X_raw, y, ratios):
    def task(seed):
        train, val, test = split(y, ratios, seed)
        X = StandardScaler().fit(X_raw[train]).transform(X_raw)
        return Task(X, y, y, train, val, test)

    return task


# -- fitting and scoring -------------------------------------------------------------------------
def timed_fit(estimator, X, y, **fit_params):
    """Fit; return wall seconds and the messages of the ConvergenceWarnings raised (others re-raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y, **fit_params)
        seconds = time.perf_counter() - start
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return seconds, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def classifiers(y_train, seed, method="auto"):
    """The three classifiers of a seed."""
    folds = max(2, min(5, np.unique(y_train, return_counts=True)[1].min()))
    return {"BilevelSVC": BilevelSVC(method=method),
            "LinearSVC": LinearSVC(random_state=seed),
            "GridSearchCV": GridSearchCV(LinearSVC(random_state=seed), GRID, cv=folds)}


def evaluate(task, seed, method="auto"):
    """Fit the three classifiers on one task; per classifier: accuracies, seconds, warnings."""
    X_tr, y_tr, X_te = task.X[task.train], task.y[task.train], task.X[task.test]
    record = {"oracle": np.mean(task.y[task.test] == task.y_clean[task.test]),
              "val_flipped": np.sum(task.y[task.val] != task.y_clean[task.val])}
    for name, clf in classifiers(y_tr, seed, method).items():
        extra = {"X_val": task.X[task.val], "y_val": task.y[task.val]} if name == "BilevelSVC" else {}
        seconds, messages = timed_fit(clf, X_tr, y_tr, **extra)
        record[name] = {"acc": clf.score(X_te, task.y[task.test]), "clean": clf.score(X_te, task.y_clean[task.test]),
                        "seconds": seconds, "warnings": messages}
        if name == "BilevelSVC":
            record["n_iter"] = clf.n_iter_
            record["method"] = clf.method_
    return record


def warm_up():
    """One untimed fit of each classifier, so that lazy imports and caches do not land in seed 0's time."""
    task = table1_rows()[1].make_task(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        evaluate(task, 0)


def run_row(row, seeds, verbose, method="auto"):
    """Records of all seeds of one row."""
    records = []
    for seed in range(seeds):
        records.append(evaluate(row.make_task(seed), seed, method))
        if verbose:
            r = records[-1]["BilevelSVC"]
            print(f"  {row.label} seed {seed}: BilevelSVC {r['seconds']:.2f} s, acc {r['acc']:.4f}, "
                  f"{len(r['warnings'])} ConvergenceWarning(s)", file=sys.stderr, flush=True)
    return records


def compare_fit(task, method):
    """One ``BilevelSVC(method=method)`` fit on a task: accuracy, seconds, warnings, outer iterations and
    whether it reached the method's exit test (no ConvergenceWarning and fewer than ``max_iter`` outer
    iterations: with the default safeguard a stop at ``max_iter`` is a budget, which does not warn)."""
    clf = BilevelSVC(method=method)
    seconds, messages = timed_fit(clf, task.X[task.train], task.y[task.train], X_val=task.X[task.val],
                                  y_val=task.y[task.val])
    return {"acc": clf.score(task.X[task.test], task.y[task.test]), "seconds": seconds, "warnings": messages,
            "n_iter": clf.n_iter_, "exit": not messages and clf.n_iter_ < clf.max_iter}


def compare_row(row, seeds, methods, verbose):
    """``{method: [per-seed fits]}`` of one row, the methods in rotating order per seed."""
    out = {m: [] for m in methods}
    for seed in range(seeds):
        task = row.make_task(seed)
        for m in methods[seed % len(methods):] + methods[:seed % len(methods)]:
            out[m].append(compare_fit(task, m))
            if verbose:
                r = out[m][-1]
                print(f"  {row.label} seed {seed} {m}: {r['seconds']:.1f} s, acc {r['acc']:.4f}, exit test "
                      f"{'reached' if r['exit'] else 'not reached'}", file=sys.stderr, flush=True)
    return out


# -- summaries -----------------------------------------------------------------------------------
def stat(records, method, key):
    """Mean and std over seeds of ``records[.][method][key]`` (``method=None``: a top-level key)."""
    values = np.array([r[key] if method is None else r[method][key] for r in records], dtype=float)
    return [float(values.mean()), float(values.std())]


def accuracy_row(row, records, clean):
    """The accuracy table's cells of one row (mean and std over seeds)."""
    cells = {"row": row.label, "paper": row.paper_acc, **{m: stat(records, m, "acc") for m in METHODS}}
    if clean:
        cells.update({f"{m}, clean labels": stat(records, m, "clean") for m in METHODS})
        cells.update({"oracle": stat(records, None, "oracle"),
                      "flipped validation labels (of 5)": stat(records, None, "val_flipped")})
    mean, std = stat(records, "BilevelSVC", "acc")
    cells[MET] = "yes" if mean >= row.paper_acc - std else "no"
    cells[WARNED] = [sum(bool(r[m]["warnings"]) for r in records) for m in METHODS]
    return cells


def runtime_row(row, records):
    """The runtime table's cells of one row; the ratio is of the means."""
    bilevel, grid = stat(records, "BilevelSVC", "seconds"), stat(records, "GridSearchCV", "seconds")
    return {"row": row.label, "paper (s, MATLAB)": row.paper_time, "BilevelSVC (s)": bilevel,
            "outer iterations": stat(records, None, "n_iter"), "LinearSVC (s)": stat(records, "LinearSVC", "seconds"),
            "GridSearchCV (s)": grid, "GridSearchCV / BilevelSVC": grid[0] / bilevel[0]}


def warning_counts(rows, results):
    """Distinct ConvergenceWarning messages per row and classifier, with counts (decimals shown as #)."""
    out = []
    for row, records in zip(rows, results):
        for m in METHODS:
            messages = (re.sub(DECIMAL, "#", w)[:160] for r in records for w in r[m]["warnings"])
            out += [{"row": row.label, "classifier": m, "count": count, "message": message}
                    for message, count in Counter(messages).items()]
    return out


def section(title, intro, rows, results, clean=False):
    """One experiment's cells: accuracy table, runtime table, warnings."""
    return {"title": title, "intro": intro, "clean": clean,
            "accuracy": [accuracy_row(r, rec, clean) for r, rec in zip(rows, results)],
            "runtime": [runtime_row(r, rec) for r, rec in zip(rows, results)],
            "warnings": warning_counts(rows, results)}


SCALE_TARGETS = {"spambase 0.8:0.1:0.1": 120.0, "mnist 0.8:0.1:0.1": 60.0}


def scale_rows(rows, results):
    """Per-sample fit time on full Spambase and MNIST 1-vs-2 (0.8 : 0.1 : 0.1) against the issue's targets."""
    out = []
    for row, records in zip(rows, results):
        if row.label not in SCALE_TARGETS:
            continue
        task = row.make_task(0)
        mean, std = stat(records, "BilevelSVC", "seconds")
        target = SCALE_TARGETS[row.label]
        out.append({"data set": row.label, "training samples": task.train.size, "weights learned": task.train.size,
                    "BilevelSVC fit (s)": [mean, std], "target (s)": target, "met": "yes" if mean < target else "no"})
    return out


def single_C_rows(datasets, seeds):
    """``BilevelSVC(learn='C')`` against GridSearchCV: validation loss, test accuracy, time (0.8:0.1:0.1)."""
    from skbilevel.problems import LinearValidationLoss

    out = []
    for name in datasets:
        X_raw, y = load_dataset(name)
        task_of = _standardised_task(X_raw, y, (0.8, 0.1, 0.1))
        recs = []
        for seed in range(seeds):
            t = task_of(seed)
            X_tr, y_tr, X_v, y_v = t.X[t.train], t.y[t.train], t.X[t.val], t.y[t.val]
            ours = BilevelSVC(learn="C")
            grid = GridSearchCV(LinearSVC(random_state=seed), GRID, cv=5)
            t_ours, _ = timed_fit(ours, X_tr, y_tr, X_val=X_v, y_val=y_v)
            t_grid, _ = timed_fit(grid, X_tr, y_tr)
            upper = LinearValidationLoss(X_v, np.where(y_v == ours.classes_[1], 1.0, -1.0), "sigmoid",
                                         n_hyper=1, n_var=X_v.shape[1] + 1)
            best = grid.best_estimator_
            rec = {"ours": {"val": upper.value(None, np.r_[ours.coef_[0], ours.intercept_]),
                            "acc": ours.score(t.X[t.test], t.y[t.test]), "seconds": t_ours},
                   "grid": {"val": upper.value(None, np.r_[best.coef_[0], best.intercept_]),
                            "acc": grid.score(t.X[t.test], t.y[t.test]), "seconds": t_grid}}
            rec["win"] = rec["ours"]["val"] <= rec["grid"]["val"] and t_ours < t_grid
            recs.append(rec)
        ours_t, grid_t = stat(recs, "ours", "seconds"), stat(recs, "grid", "seconds")
        out.append({"data set": name, "BilevelSVC val. loss": stat(recs, "ours", "val"),
                    "GridSearchCV val. loss": stat(recs, "grid", "val"),
                    "BilevelSVC test acc.": stat(recs, "ours", "acc"),
                    "GridSearchCV test acc.": stat(recs, "grid", "acc"), "BilevelSVC (s)": ours_t,
                    "GridSearchCV (s)": grid_t, "GridSearchCV / BilevelSVC": grid_t[0] / ours_t[0],
                    "faster at ≤ val. loss (seeds)": [sum(r["win"] for r in recs), seeds]})
    return out


# -- markdown ------------------------------------------------------------------------------------
Column = _harness.Column
PM4, PM1 = "{:.4f} ± {:.4f}", "{:.1f} ± {:.1f}"
MET = "BilevelSVC mean ≥ paper − std"
WARNED = "fits with ConvergenceWarning (Bilevel / Linear / Grid)"
RUNTIME_COLUMNS = [Column("row"), Column("paper (s, MATLAB)", "{:.4f}"), Column("BilevelSVC (s)", PM4),
                   Column("outer iterations", PM1), Column("LinearSVC (s)", PM4), Column("GridSearchCV (s)", PM4),
                   Column("GridSearchCV / BilevelSVC", "{:.2f}")]
SCALE_COLUMNS = [Column("data set"), Column("training samples"), Column("weights learned"),
                 Column("BilevelSVC fit (s)", "{:.2f} ± {:.2f}"), Column("target (s)", "{:.0f}"), Column("met")]
SINGLE_C_COLUMNS = [Column("data set"), Column("BilevelSVC val. loss", PM4), Column("GridSearchCV val. loss", PM4),
                    Column("BilevelSVC test acc.", PM4), Column("GridSearchCV test acc.", PM4),
                    Column("BilevelSVC (s)", "{:.3f} ± {:.3f}"), Column("GridSearchCV (s)", "{:.3f} ± {:.3f}"),
                    Column("GridSearchCV / BilevelSVC", "{:.2f}"), Column("faster at ≤ val. loss (seeds)", "{} / {}")]


def accuracy_columns(clean):
    columns = [Column("row"), Column("paper", "{:.4f}"), *(Column(m, PM4) for m in METHODS)]
    if clean:
        columns += [Column(f"{m}, clean labels", PM4) for m in METHODS]
        columns += [Column("oracle", PM4), Column("flipped validation labels (of 5)", PM1)]
    return columns + [Column(MET), Column(WARNED, "{} / {} / {}")]


def section_lines(sec):
    """Markdown of one experiment: accuracy table, runtime table, warnings."""
    warned = [f"- {w['row']}, {w['classifier']} ({w['count']}x): `{w['message']}`" for w in sec["warnings"]]
    return [f"## {sec['title']}", "", sec["intro"], "", "Test accuracy (mean ± std over seeds):", "",
            *_harness.table_lines(accuracy_columns(sec["clean"]), sec["accuracy"]), "",
            "Fit time in seconds (mean ± std; the ratio is of the means):", "",
            *_harness.table_lines(RUNTIME_COLUMNS, sec["runtime"]), "",
            "ConvergenceWarning messages:", "", *(warned or ["- none"]), ""]


COMPARED = ("hypergradient", "lme-mpec", "mpec")
#: the methods of Algorithm 1, whose runs end at its exit test (the hypergradient's safeguarded run ends at its budget)
PENALTY_METHODS = ("lme-mpec", "mpec")


def compare_lines(records):
    """The section "Table 2 by method" from the runs made with ``--compare-methods`` (each row from the
    latest run that measured it), or nothing without such a run."""
    rows, runs = {}, []
    for record in records:
        compare = record["results"].get("compare")
        if compare:
            runs.append(record)
            rows.update({r["row"]: r["fits"] for r in compare["rows"]})
    if not rows:
        return []
    head = [Column("row"), Column("seeds")]
    for m in COMPARED:
        exit_test = [Column(f"{m}: exit test reached", "{} of {}")] if m in PENALTY_METHODS else []
        head += [Column(f"{m} acc", PM4), *exit_test, Column(f"{m} (s)", PM1)]
    head += [Column("mpec / lme-mpec time", "{:.2f}"), Column("within one std of hypergradient (lme-mpec / mpec)")]
    table = []
    for label, fits in rows.items():
        cells = {"row": label, "seeds": max(len(v) for v in fits.values())}
        for m in COMPARED:
            recs = fits.get(m)
            cells[f"{m} acc"] = None if not recs else stat(recs, None, "acc")
            cells[f"{m}: exit test reached"] = None if not recs else [sum(r["exit"] for r in recs), len(recs)]
            cells[f"{m} (s)"] = None if not recs else stat(recs, None, "seconds")
        both = fits.get("lme-mpec") and fits.get("mpec")
        cells["mpec / lme-mpec time"] = (cells["mpec (s)"][0] / cells["lme-mpec (s)"][0]) if both else None
        hg = cells["hypergradient acc"]
        cells["within one std of hypergradient (lme-mpec / mpec)"] = " / ".join(
            "—" if hg is None or cells[f"{m} acc"] is None else
            ("yes" if abs(cells[f"{m} acc"][0] - hg[0]) <= hg[1] else "no") for m in ("lme-mpec", "mpec"))
        table.append(cells)
    lines = ["## Table 2 by method", "",
             "`BilevelSVC(method=m)` with its defaults (the safeguard runs the method on five folds of the "
             "validation part as well), every method on the same splits in the same run (see the module "
             "docstring); a fit reached the exit test when it raised no ConvergenceWarning and stopped before "
             "`max_iter` outer iterations; 'within one std': the method's mean accuracy is within one standard "
             "deviation (over seeds) of hypergradient's. Rows not listed were not run (a Spambase fit by the "
             "penalty methods takes minutes to tens of minutes).", "",
             *_harness.table_lines(head, table), "", "Runs:", ""]
    for record in runs:
        lines += [*_harness.run_lines(record), *_harness.note_lines(record)]
    return lines + [""]


def render(records):
    """The tables of the latest record without ``--compare-methods``, then the section of those with it."""
    main_runs = [r for r in records if not r["config"].get("compare_methods")]
    record = main_runs[-1] if main_runs else None
    if record is None:
        return "\n".join(["# Huang et al. (2025), section 4: BilevelSVC's methods side by side", "",
                          *compare_lines(records)])
    res = record["results"]
    lines = ["# Huang et al. (2025), section 4: BilevelSVC against the paper's Table 1, Fisher Iris and Table 2", "",
             *_harness.run_lines(record, f" ({res['seeds']} seeds per row)"),
             "- Runtimes are not comparable with the paper's (MATLAB R2024a `fmincon`, Intel i5-14600K) except "
             "as the order of magnitude; the ratio GridSearchCV / BilevelSVC is measured in this run on this "
             "machine (GridSearchCV with `n_jobs=None`), after one untimed warm-up fit.",
             f"- BilevelSVC is `BilevelSVC(method={record['config']['method']!r})` (per-sample weights; `'auto'` "
             "runs the hypergradient method, implicit differentiation through the SVM's active set) given the "
             "validation part; the baselines see the training part only. See the module docstring of "
             "`benchmarks/svm_paper.py` for the data generator and splits.", *_harness.note_lines(record), ""]
    for sec in res["sections"]:
        lines += section_lines(sec)
    if res.get("scale") is not None:
        lines += ["## Scale: per-sample weights on the full data sets", "",
                  "From the Table 2 rows above (same fits); target = the time the issue that set the goal allows.",
                  "", *_harness.table_lines(SCALE_COLUMNS, res["scale"]), ""]
    if res.get("single_C") is not None:
        lines += ["## Single C: BilevelSVC(learn='C') against GridSearchCV(LinearSVC, 17 log C, 5-fold)", "",
                  "Split 0.8 : 0.1 : 0.1. The validation loss is BilevelSVC's upper level (sigmoid of the negative "
                  "signed distance) on the validation part, evaluated for both models; GridSearchCV picks C by "
                  "5-fold CV accuracy on the training part. BilevelSVC screens its default 5 starts (one SVM solve "
                  "each) and descends from the best.", "",
                  *_harness.table_lines(SINGLE_C_COLUMNS, res["single_C"]), ""]
    lines += res["skipped"]
    by_method = compare_lines(records)
    lines += ["", *by_method] if by_method else []
    return "\n".join(lines) + "\n"


# -- driver --------------------------------------------------------------------------------------
def experiments(opts):
    """(title, intro, rows, clean) of each experiment to run, plus notes about skipped ones."""
    todo, notes = [], []
    if not opts.skip_small:
        todo.append(("Table 1: synthetic data with flipped labels",
                     "50 points, two Gaussian clusters at ±(2.5, 2.5)/√2, redrawn until linearly separable; "
                     "k labels flipped among all 50; split 30 / 5 / 15.", table1_rows(), True))
        todo.append(("Fisher Iris", "Setosa vs virginica, petal length and width; split 60 / 10 / 30.",
                     iris_rows(), False))
    if not opts.table2:
        notes.append("Table 2, the scale check and the single-C comparison not run (pass `--table2`).")
    elif not DATA_DIR.is_dir():
        notes.append(f"Table 2 skipped: data folder `{DATA_DIR}` not found.")
    else:
        todo.append(("Table 2: high-dimensional data sets",
                     "Stratified splits train : validation : test; StandardScaler fitted on the training part.",
                     table2_rows(opts.datasets, opts.ratios), False))
    return todo, notes


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds per row (default 10)")
    p.add_argument("--table2", action="store_true", help="also run Table 2 (slow)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="Table 2 data sets")
    p.add_argument("--ratios", nargs="+", choices=list(PAPER_TABLE2), default=list(PAPER_TABLE2),
                   help="Table 2 split ratios")
    p.add_argument("--method", default="auto", choices=["auto", "lme-mpec", "mpec", "hypergradient"],
                   help="BilevelSVC's method (default 'auto')")
    p.add_argument("--compare-methods", nargs="+", choices=list(COMPARED), default=None, metavar="METHOD",
                   help="fit BilevelSVC by each of these methods on the Table 2 rows only (see the docstring)")
    p.add_argument("--skip-small", action="store_true", help="skip Table 1 and Iris")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="markdown output file (another than the default: the record is written beside it)")
    p.add_argument("--note", action="append", default=[],
                   help="a line on how the run was made (e.g. other jobs sharing the cores), added to the header")
    p.add_argument("--verbose", "-v", action="store_true", help="one line per BilevelSVC fit on stderr")
    opts = p.parse_args(argv)
    if opts.skip_small and not opts.table2 and not opts.compare_methods:
        p.error("nothing to run: --skip-small without --table2")
    return opts


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    if opts.compare_methods:
        return compare_main(argv, opts)
    todo, notes = experiments(opts)
    for note in notes:
        print(note, file=sys.stderr)
    warm_up()
    results = {"seeds": opts.seeds, "sections": [], "scale": None, "single_C": None, "skipped": notes,
               "per_seed": {}}
    for title, intro, rows, clean in todo:
        start = time.perf_counter()
        recs = [run_row(row, opts.seeds, opts.verbose, opts.method) for row in rows]
        print(f"{title}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        results["sections"].append(section(title, intro, rows, recs, clean))
        results["per_seed"].update({row.label: r for row, r in zip(rows, recs)})
    if opts.table2 and DATA_DIR.is_dir():
        table2 = todo[-1][2]
        results["scale"] = scale_rows(table2, [results["per_seed"][row.label] for row in table2])
        results["single_C"] = single_C_rows(opts.datasets, opts.seeds)
    config = {"seeds": opts.seeds, "method": opts.method, "table2": opts.table2, "datasets": opts.datasets,
              "ratios": opts.ratios, "skip_small": opts.skip_small}
    record = _harness.new_record(NAME, argv, config, results, opts.note)
    _harness.publish(record, opts.out, RESULTS, render)


def compare_main(argv, opts):
    """The ``--compare-methods`` run: every named method on every seed of the Table 2 rows asked for."""
    if not DATA_DIR.is_dir():
        print(f"Table 2 skipped: data folder `{DATA_DIR}` not found.", file=sys.stderr)
        return
    warm_up()
    rows = []
    for row in table2_rows(opts.datasets, opts.ratios):
        start = time.perf_counter()
        rows.append({"row": row.label, "fits": compare_row(row, opts.seeds, list(opts.compare_methods), opts.verbose)})
        print(f"{row.label}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    config = {"seeds": opts.seeds, "compare_methods": opts.compare_methods, "datasets": opts.datasets,
              "ratios": opts.ratios}
    record = _harness.new_record(NAME, argv, config, {"compare": {"rows": rows}}, opts.note)
    _harness.publish(record, opts.out, RESULTS, render, label="compare")


if __name__ == "__main__":
    main()
