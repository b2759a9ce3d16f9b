"""Data hyper-cleaning on MNIST 5k: HyperCleaningClassifier against four baselines fitted in the same run.

Writes a record (see ``benchmarks/_harness.py``) and ``benchmarks/results/hyper_cleaning.md`` (or
``--out``, with the record beside it) and prints the table. Settings (those of the issue that set the
goal):

* (a) 2,000 noisy training / 1,000 trusted / 2,000 test samples;
* (b) 3,000 noisy training / 200 trusted / 1,800 test samples;

corruption ``p`` in {0.25, 0.5}: a training label is replaced, with probability ``p``, by one drawn
uniformly from the other nine. Pixels are scaled to [0, 1]. Ours: ``HyperCleaningClassifier`` with
its defaults (``defaults``; for the logistic model: weights as a function of per-sample losses, the
trusted-fold safeguard, ``label_issues_``), and the papers' configuration (one free weight per
training sample, no safeguard) run by each method. For each seed, model and column: test accuracy,
the F1 score of detecting corrupted samples (``label_issues_`` for the defaults, learned weight < 0.5
for the papers' configuration) and the wall time; beside them the baselines of the same model
family, fitted in the same run: noisy training data only, trusted set only, noisy + trusted, and
the oracle (the clean training samples plus the trusted set). Baselines are ``LogisticRegression``
for ``model='logistic'`` and ``MLPClassifier`` (same hidden size, trained by L-BFGS) for
``model='mlp'``, with the same L2 penalty as our lower level (``alpha``, translated to scikit-learn's scaling).

Speed is reported as the time of our fastest method over the time of one ``LogisticRegression``
fit on the same noisy training data, measured in the same run.

Usage::

    python -m benchmarks.hyper_cleaning                       # everything, 5 seeds (hours)
    python -m benchmarks.hyper_cleaning --seeds 1 --models logistic --methods hypergradient
    python -m benchmarks.hyper_cleaning --records DIR --method-iter perturbed-gd=600 \\
        perturbed-gd:mlp=300 ...

The table merges every record in ``benchmarks/results/records/hyper_cleaning`` whose options are the
table's (``alpha=0.01``, ``n_hidden=64``, the default refit, float64 pixels), oldest first: a cell
comes from the latest run that measured it, so a run of some methods (``--methods``, with
``--no-baselines`` to fit our methods only) replaces their cells and keeps the others.

``--records DIR`` keeps one JSON file per (setting, p, model, seed) while the run goes on, so that a
run can be resumed or split over processes (one folder per process: two processes on the same seed
overwrite each other's file), and ``--from-records`` makes the run's record from them without
fitting.

``--refit-max-iter N`` sets HyperCleaningClassifier's ``refit_max_iter`` (its per-seed files get the
suffix ``_refitN``); the baselines do not use the refit, so pair it with ``--no-baselines``.
``--float32`` passes the pixels as float32 to every model (suffix ``_float32``). Such runs are kept
as records but do not enter the table.

References
----------
R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A Value-Function-based Interior-point Method for
Non-convex Bi-level Optimization", ICML 2021.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state

from benchmarks import _harness
from skbilevel import HyperCleaningClassifier

NAME = "hyper_cleaning"
DATA = _harness.ROOT.parent / "shared" / "data" / "mnist_5k.csv.gz"
RESULTS = _harness.RESULTS / f"{NAME}.md"
SETTINGS = {"a": (2000, 1000, 2000), "b": (3000, 200, 1800)}
PAPER_METHODS = ("hypergradient", "value-function", "perturbed-gd", "sqcqp")
#: ``HyperCleaningClassifier(model=..., alpha=..., n_hidden=...)`` with every other parameter at its default (for the
#: logistic model: the loss-feature weights, the safeguard and ``label_issues_``), beside the papers' configuration
DEFAULTS = "defaults"
METHODS = (DEFAULTS, *PAPER_METHODS)
BASELINES = ("noisy", "trusted only", "noisy + trusted", "oracle")
ANCHORS = ("Anchors (other data sizes, stated for orientation only): BVFIM's Table 3 on MNIST, accuracy 90.41, "
           "F1 91.19 (Liu et al., 2021); BOME's linear model on MNIST with 50,000 samples: noisy + validation 83.99, "
           "validation only 91.06, clean 92.52. Our MNIST 5k holds 5,000 samples, so the settings above train on "
           "2,000-3,000.")


def load():
    data = np.loadtxt(DATA, delimiter=",")
    return data[:, :-1] / 255.0, data[:, -1].astype(int)


def task(X, y, setting, p, seed):
    """Split and corrupt: (X_tr, y_noisy, corrupted, X_val, y_val, X_te, y_te, y_clean_tr)."""
    n_tr, n_val, n_te = SETTINGS[setting]
    rng = np.random.default_rng((seed, int(100 * p), ord(setting)))
    idx = rng.permutation(y.size)
    tr, va, te = idx[:n_tr], idx[n_tr:n_tr + n_val], idx[n_tr + n_val:n_tr + n_val + n_te]
    corrupted = rng.random(n_tr) < p
    y_noisy = y[tr].copy()
    y_noisy[corrupted] = (y_noisy[corrupted] + rng.integers(1, 10, corrupted.sum())) % 10
    return X[tr], y_noisy, corrupted, X[va], y[va], X[te], y[te], y[tr]


def baseline(model, alpha, n_hidden, seed, n_samples):
    """The lower level's model with its penalty: ``mean CE + alpha/2 ||W||^2`` is scikit-learn's
    ``C = 1 / (n alpha)`` for LogisticRegression and ``alpha_sklearn = n alpha`` for MLPClassifier.

    The MLP is trained as our lower level is, by full-batch L-BFGS on that objective, for the
    default budget of our final refit (1000 iterations): with the default Adam solver (500 epochs)
    the penalised network did not settle, and the oracle scored below the trusted samples alone."""
    if model == "mlp":
        return MLPClassifier((n_hidden,), alpha=n_samples * alpha, solver="lbfgs", max_iter=1000,
                             random_state=seed)
    return LogisticRegression(C=1.0 / (n_samples * alpha), max_iter=2000)


def detection_f1(detected, corrupted):
    """F1 of the samples ``detected`` as corrupted against the truly ``corrupted`` ones."""
    return 2 * np.sum(detected & corrupted) / max(detected.sum() + corrupted.sum(), 1)


def fit_setup(clf, X_tr, y_noisy, y_v):
    """What ``clf.fit`` sets up before its method runs, for the diagnostics that replay its steps.

    Returns the one-hot training and trusted targets, the network's seed as ``fit`` draws it from
    ``clf.random_state``, and the lower level with every training weight 1."""
    clf.classes_, clf.n_features_in_ = np.arange(10), X_tr.shape[1]
    Y_tr, Y_v = clf._one_hot(y_noisy), clf._one_hot(y_v)
    seed = int(check_random_state(clf.random_state).randint(np.iinfo(np.int32).max))
    return Y_tr, Y_v, seed, clf._lower(X_tr, Y_tr, np.ones(len(y_noisy)), seed)


def timed(fn):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = fn()
    return out, time.perf_counter() - start


def record_path(opts, setting, p, model, seed):
    """Where one seed's record is cached, so that a long run can be split over processes and resumed."""
    suffix = "" if opts.refit_max_iter is None else f"_refit{opts.refit_max_iter}"
    suffix += "_float32" if opts.float32 else ""
    name = f"{setting}_p{p:g}_{model}_seed{seed}_it{opts.max_iter}_alpha{opts.alpha:g}_h{opts.n_hidden}{suffix}.json"
    return opts.records / name


def save(cache, rec):
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(rec))


def iterations(opts, method, model):
    """Outer iterations of ``method`` on ``model``: ``--max-iter`` unless ``--method-iter`` names it
    (for this model, else for every model); the estimator's default for ``DEFAULTS``."""
    if method == DEFAULTS:
        return HyperCleaningClassifier().max_iter
    return opts.method_iter.get((method, model), opts.method_iter.get((method, None), opts.max_iter))


def estimator(method, model, seed, opts):
    """The estimator of one column: the papers' configuration (one free weight per training sample, no
    safeguard) run by ``method``, or, for ``DEFAULTS``, the estimator's defaults."""
    refit = "auto" if opts.refit_max_iter is None else opts.refit_max_iter
    common = {"model": model, "alpha": opts.alpha, "n_hidden": opts.n_hidden, "random_state": seed,
              "refit_max_iter": refit}
    if method == DEFAULTS:
        return HyperCleaningClassifier(**common)
    return HyperCleaningClassifier(method=method, max_iter=iterations(opts, method, model), weight_model="per-sample",
                                   safeguard_cv=None, **common)


def detected(clf, method):
    """The samples a column reports as corrupted: ``label_issues_`` (the documented rule) for the defaults, a
    learned weight below 1/2 for the papers' configuration (whose weights are read that way there)."""
    return clf.label_issues_ if method == DEFAULTS else clf.sample_weight_ < 0.5


def run_row(X, y, setting, p, model, methods, seeds, opts):
    recs = []
    for seed in seeds:
        cache = record_path(opts, setting, p, model, seed) if opts.records else None
        rec = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
        done = [m for m in methods
                if m in rec and rec[m].get("max_iter", opts.max_iter) == iterations(opts, m, model)]
        if opts.from_records or (len(done) == len(methods) and (opts.no_baselines
                                                                or all(b in rec for b in BASELINES))):
            if rec:
                recs.append({"seed": seed, **current(rec, opts, model)})
            continue
        X_tr, y_noisy, bad, X_v, y_v, X_te, y_te, y_clean = task(X, y, setting, p, seed)
        for method in methods:
            if method in done:
                continue
            clf = estimator(method, model, seed, opts)
            _, seconds = timed(lambda: clf.fit(X_tr, y_noisy, X_val=X_v, y_val=y_v))
            f1 = detection_f1(detected(clf, method), bad)
            rec[method] = {"acc": float(clf.score(X_te, y_te)), "f1": float(f1), "seconds": seconds,
                           "max_iter": iterations(opts, method, model)}
            save(cache, rec)
            if opts.verbose:
                print(f"  ({setting}) p={p} {model} {method} seed {seed}: acc {rec[method]['acc']:.4f} "
                      f"F1 {f1:.3f} {seconds:.1f} s", file=sys.stderr, flush=True)
        # the speed column's reference, timed in the same run as the methods
        _, rec["lr_seconds"] = timed(lambda: LogisticRegression(max_iter=2000).fit(X_tr, y_noisy))
        save(cache, rec)
        if opts.no_baselines:
            recs.append({"seed": seed, **current(rec, opts, model)})
            continue
        clean = ~bad
        data = {"noisy": (X_tr, y_noisy), "trusted only": (X_v, y_v),
                "noisy + trusted": (np.vstack([X_tr, X_v]), np.concatenate([y_noisy, y_v])),
                "oracle": (np.vstack([X_tr[clean], X_v]), np.concatenate([y_clean[clean], y_v]))}
        for name, (Xb, yb) in data.items():
            if name in rec:
                continue
            est = baseline(model, opts.alpha, opts.n_hidden, seed, len(yb))
            _, seconds = timed(lambda: est.fit(Xb, yb))
            rec[name] = {"acc": float(est.score(X_te, y_te)), "seconds": seconds}
        save(cache, rec)
        recs.append({"seed": seed, **current(rec, opts, model)})
    return recs


def current(rec, opts, model):
    """``rec`` without the methods run for another number of iterations than asked now."""
    return {k: v for k, v in rec.items()
            if k not in METHODS or v.get("max_iter", opts.max_iter) == iterations(opts, k, model)}


def mean_std(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std())


def summarise(recs, methods):
    """One row's summary: for each method and baseline the seeds that hold it and the mean and
    std of its columns over them (accuracy and F1 as fractions, seconds), and the mean time of
    one LogisticRegression fit."""
    out = {"seeds": 0, "methods": {}, "baselines": {}, "lr_seconds": None}
    for m in methods:
        runs = [r[m] for r in recs if m in r]
        if runs:
            out["methods"][m] = {"n": len(runs), **{k: mean_std([v[k] for v in runs])
                                                   for k in ("acc", "f1", "seconds")}}
    for b in BASELINES:
        runs = [r[b]["acc"] for r in recs if b in r]
        if runs:
            out["baselines"][b] = {"n": len(runs), "acc": mean_std(runs)}
    lr = [r["lr_seconds"] for r in recs if "lr_seconds" in r]
    if lr:
        out["lr_seconds"] = float(np.mean(lr))
    out["seeds"] = _row_seeds(out)
    return out


def _row_seeds(row):
    """A row's seeds: the most held by any of its methods or baselines."""
    return max([v["n"] for v in (*row["methods"].values(), *row["baselines"].values())], default=0)


def pm(stat, scale=100.0, digits=2):
    mean, std = stat
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def method_cell(summary):
    """``acc / F1 / s`` of one method: mean ± std over its seeds."""
    return f"{pm(summary['acc'])} / {pm(summary['f1'])} / {pm(summary['seconds'], 1.0, 1)}"


def verdict_methods(row):
    """The methods the verdict columns compare: those run on every seed of the row, when there are any."""
    ours = row["methods"]
    return {m: v for m, v in ours.items() if v["n"] == row["seeds"]} or ours


def table(rows, methods):
    head = (["setting", "p", "model", "seeds"] + [f"{m} acc / F1 / s" for m in methods]
            + [f"{b} acc" for b in BASELINES]
            + ["best ours beats every non-oracle baseline", "best ours − oracle (points)",
               "best F1 (p = 0.5: target >= 90)", "fastest ours / one LogisticRegression fit",
               "defaults − best non-oracle baseline (points; logistic: target ≥ +0.5)",
               "defaults − oracle (points; (b) p = 0.5: target ≥ −3)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (setting, p, model), row in rows:
        if not row["methods"] or len(row["baselines"]) < len(BASELINES):
            continue
        cells = [f"({setting})", f"{p}", model, str(row["seeds"])]
        for m in methods:
            # a method missing from some seeds (a run cut short) is averaged over the seeds that
            # hold it, and the cell says over how many
            summary = row["methods"].get(m)
            cells.append("not run" if summary is None else method_cell(summary)
                         + ("" if summary["n"] == row["seeds"] else f" ({_seeds(summary['n'])})"))
        cells += [pm(row["baselines"][b]["acc"]) for b in BASELINES]
        ours = verdict_methods(row)
        best = max(v["acc"][0] for v in ours.values())
        others = max(row["baselines"][b]["acc"][0] for b in BASELINES[:3])
        oracle = row["baselines"]["oracle"]["acc"][0]
        fastest = min(v["seconds"][0] for v in ours.values())
        best_f1 = 100 * max(v["f1"][0] for v in ours.values())
        f1_cell = f"{best_f1:.2f}" + ("" if p != 0.5 else (" (met)" if best_f1 >= 90 else " (missed)"))
        ratio = "n/a" if not row["lr_seconds"] else f"{fastest / row['lr_seconds']:.1f}x"
        cells += ["yes" if best > others else "no", f"{100 * (best - oracle):+.2f}", f1_cell, ratio]
        cells += defaults_cells(row, setting, p, model, others, oracle)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def defaults_cells(row, setting, p, model, others, oracle):
    """The defaults' margins over the best non-oracle baseline and to the oracle, in points, with the
    verdict of the issue that set them (every logistic row >= +0.5; (b) p = 0.5 within 3 points of the
    oracle)."""
    summary = row["methods"].get(DEFAULTS)
    if summary is None or summary["n"] != row["seeds"]:
        return ["not run", "not run"]
    acc = summary["acc"][0]
    margin, gap = 100 * (acc - others), 100 * (acc - oracle)
    margin_cell = f"{margin:+.2f}" + ("" if model != "logistic" else " (met)" if margin >= 0.5 else " (missed)")
    gap_cell = f"{gap:+.2f}" + ("" if (setting, p) != ("b", 0.5) else " (met)" if gap >= -3 else " (missed)")
    return [margin_cell, gap_cell]


def _seeds(n):
    return f"{n} seed" + ("s" if n != 1 else "")


def merge(old, new):
    """``new`` row summary over ``old``: each method and baseline measured in ``new`` replaces its
    cell; the rest is kept. Either may be None (a row only one of them has)."""
    if old is None or new is None:
        return new if old is None else old
    out = {"methods": {**old["methods"], **new["methods"]},
           "baselines": {**old["baselines"], **new["baselines"]},
           "lr_seconds": new["lr_seconds"] if new["lr_seconds"] else old["lr_seconds"]}
    out["seeds"] = _row_seeds(out)
    return out


def parse_method_iter(ap, items):
    """``METHOD=N`` or ``METHOD:MODEL=N`` -> ``{(method, model or None): N}``."""
    out = {}
    for item in items:
        key, _, n = item.partition("=")
        method, _, model = key.partition(":")
        if method not in PAPER_METHODS or model not in ("", "logistic", "mlp") or not n.isdigit() or int(n) < 1:
            ap.error(f"--method-iter expects METHOD=N or METHOD:MODEL=N with METHOD in {PAPER_METHODS} and MODEL "
                     f"logistic or mlp; got {item!r}")
        out[(method, model or None)] = int(n)
    return out


# -- records and the table -----------------------------------------------------------------------
#: the options of the runs the table merges (another refit, float32 pixels, ... are kept as records only)
TABLE_CONFIG = {"alpha": 0.01, "n_hidden": 64, "refit_max_iter": None, "float32": False, "refit": "weighted-mean"}


def run_config(opts, seeds):
    """The options of a run, as its record keeps them. ``refit`` names the estimator's final refit
    (the weighted-mean loss of the current code; records of earlier code name theirs)."""
    return {"seeds": list(seeds), "settings": opts.settings, "ps": opts.ps, "models": opts.models,
            "methods": opts.methods, "max_iter": opts.max_iter,
            "method_iter": [[m, model, n] for (m, model), n in opts.method_iter.items()],
            "alpha": opts.alpha, "n_hidden": opts.n_hidden, "refit_max_iter": opts.refit_max_iter,
            "float32": opts.float32, "refit": "weighted-mean", "no_baselines": opts.no_baselines}


def iteration_options(config):
    """``max_iter`` and ``method_iter`` of a record's options, as :func:`iterations` reads them."""
    return SimpleNamespace(max_iter=config.get("max_iter", 30),
                           method_iter={(m, model): n for m, model, n in config.get("method_iter", [])})


def in_table(config):
    """Whether a run with these options enters the table (a run of baselines only names no refit)."""
    return all(config.get(k, v) == v for k, v in TABLE_CONFIG.items() if k != "refit") and (
        config.get("refit") in (TABLE_CONFIG["refit"], "none (baselines only)"))


def row_summaries(record):
    """``{(setting, p, model): summary}`` of one record: its stored summary (records converted from a
    table) or the summary of its seeds, each without the methods run for other iteration counts."""
    opts = iteration_options(record["config"])
    out = {}
    for row in record["results"]["rows"]:
        key = (row["setting"], row["p"], row["model"])
        if "summary" in row:
            out[key] = row["summary"]
        else:
            out[key] = summarise([current(rec, opts, row["model"]) for rec in row["seeds"]], METHODS)
    return out


def table_rows(records):
    """The table's rows: the records' summaries merged oldest first (a later run's cells replace)."""
    rows = {}
    for record in records:
        for key, summary in row_summaries(record).items():
            rows[key] = merge(rows.get(key), summary)
    return sorted(rows.items())


def describe(config):
    """The options of a run in words."""
    if not config.get("methods"):
        return "baseline cells only"
    options = f"max_iter={config['max_iter']}, alpha={config['alpha']:g}, n_hidden={config['n_hidden']}" + (
        "" if config["refit_max_iter"] is None else f", refit_max_iter={config['refit_max_iter']}")
    papers = [m for m in config["methods"] if m != DEFAULTS]
    columns = ([f"`{DEFAULTS}`: the estimator's defaults at alpha={config['alpha']:g}, "
                f"n_hidden={config['n_hidden']}"] if DEFAULTS in config["methods"] else [])
    if papers:
        columns.append(f"{', '.join(papers)}: `HyperCleaningClassifier({options}, weight_model='per-sample', "
                       "safeguard_cv=None)`")
    return (f"{len(config['seeds'])} seed(s) per row; " + "; ".join(columns)
            + (", pixels as float32" if config["float32"] else "")
            + "".join(f", `max_iter={n}` for {m}" + (f" on the {model} rows" if model else "")
                      for m, model, n in config["method_iter"])
            + f"; final refit: {config['refit']}")


def render(records):
    """The table from the records whose options are the table's (all of ``records`` when it holds
    one run made with another ``--out``), then the runs it merges with their notes."""
    used = [r for r in records if in_table(r["config"])] if len(records) > 1 else records
    rows = table_rows(used)
    shown = [m for m in METHODS if any(m in row["methods"] for _, row in rows)
             or m in used[-1]["config"].get("methods", ())]
    lines = ["# Data hyper-cleaning on MNIST 5k", "",
             "- Accuracy and F1 in percent, mean ± std over seeds; times in seconds. The four columns after the "
             "baselines use the columns of ours run on every seed of the row, `defaults` among them; the last two "
             "the defaults alone. F1 of detecting the corrupted samples: by `label_issues_` for `defaults`, by a "
             "learned weight below 1/2 for the papers' configuration.",
             "- The table merges the runs listed below it, oldest first: each cell comes from the latest run that "
             "measured it.", "", *table(rows, shown), "", ANCHORS, "", "## Runs", ""]
    for record in used:
        lines += [f"### Run of {record['date'][:16].replace('T', ' ')}", "", *_harness.run_lines(record),
                  f"- Options: {describe(record['config'])}.", *_harness.note_lines(record), ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0, ..., SEEDS - 1 (default 5)")
    ap.add_argument("--seed-list", type=int, nargs="+", default=None, metavar="SEED",
                    help="these seeds instead (e.g. to spread a row's seeds over processes)")
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    ap.add_argument("--ps", nargs="+", type=float, default=[0.25, 0.5])
    ap.add_argument("--models", nargs="+", choices=["logistic", "mlp"], default=["logistic", "mlp"])
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--max-iter", type=int, default=30, help="outer iterations of every method (default 30)")
    ap.add_argument("--method-iter", nargs="+", default=[], metavar="METHOD[:MODEL]=N",
                    help="outer iterations of single methods, on every model or on one (e.g. perturbed-gd=600 "
                         "perturbed-gd:mlp=300: single-loop methods take many cheap steps)")
    ap.add_argument("--alpha", type=float, default=1e-2)
    ap.add_argument("--n-hidden", type=int, default=64)
    ap.add_argument("--refit-max-iter", type=int, default=None, metavar="N",
                    help="HyperCleaningClassifier's refit_max_iter (default 'auto')")
    ap.add_argument("--float32", action="store_true",
                    help="pass the pixels as float32 (the network then computes its products with them in "
                         "float32; per-seed files get the suffix _float32)")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="markdown output file (another than the default: the record is written beside it and "
                         "the table holds this run alone)")
    ap.add_argument("--records", type=Path, default=None,
                    help="folder caching one JSON file per (setting, p, model, seed); reused when present")
    ap.add_argument("--from-records", action="store_true",
                    help="fit nothing: make the run's record from the per-seed files in --records")
    ap.add_argument("--no-baselines", action="store_true",
                    help="fit only our methods and the LogisticRegression of the speed column (the table keeps the "
                         "baselines' cells of earlier records)")
    ap.add_argument("--note", action="append", default=[],
                    help="a line on how the run was made (e.g. processes sharing the cores), added to the header")
    ap.add_argument("--verbose", "-v", action="store_true")
    argv = sys.argv[1:] if argv is None else argv
    opts = ap.parse_args(argv)
    opts.method_iter = parse_method_iter(ap, opts.method_iter)
    if opts.from_records and opts.records is None:
        ap.error("--from-records needs --records")
    if not DATA.is_file():
        sys.exit(f"data file {DATA} not found")
    X, y = load()
    X = X.astype(np.float32) if opts.float32 else X
    seeds = range(opts.seeds) if opts.seed_list is None else opts.seed_list
    rows = [{"setting": s, "p": p, "model": m, "seeds": run_row(X, y, s, p, m, opts.methods, seeds, opts)}
            for s in opts.settings for p in opts.ps for m in opts.models]
    record = _harness.new_record(NAME, argv, run_config(opts, seeds), {"rows": rows}, opts.note)
    _harness.publish(record, opts.out, RESULTS, render)


if __name__ == "__main__":
    main()
