"""BilevelSVC's validation losses, per-sample and single-C, on the rows of Table 1 and Table 2 of Huang et al. (2025).

Writes a record (see ``benchmarks/_harness.py``) and ``benchmarks/results/svm_validation_losses.md``
(or ``--out``, with the record beside it) and prints the table. For every row
of ``benchmarks/svm_paper.py`` (the same data, splits and seeds), the per-sample model
``BilevelSVC(validation_loss=...)`` is fitted with each upper-level loss, ``'sigmoid'`` (the
paper's, the default), ``'logistic'`` and ``'squared_hinge'``, and the single-``C`` model
``BilevelSVC(learn='C')`` with ``'sigmoid'`` and ``'logistic'``, beside ``LinearSVC()`` on the
training part. Each cell is the test accuracy, mean ± std over the seeds, and whether it meets the
target (mean ≥ the paper's number − the std; LinearSVC judged by the same rule).

The question it answers: is a row that BilevelSVC misses in ``svm_paper.md`` a matter of the
paper's loss, or of learning one weight per training sample on a small validation part at all
(the single-``C`` columns learn one hyperparameter on the same validation part)?

Usage
-----
::

    python -m benchmarks.svm_validation_losses             # Table 1 and Table 2, 10 seeds
    python -m benchmarks.svm_validation_losses --seeds 2 --datasets ionosphere --out /tmp/l.md

References
----------
L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for Hyperparameter Learning in Supporting
Vector Machines", 2025.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.svm import LinearSVC

from benchmarks import _harness
from benchmarks.svm_paper import DATA_DIR, DATASETS, PAPER_TABLE2, iris_rows, table1_rows, table2_rows
from skbilevel import BilevelSVC

LOSSES = ("sigmoid", "logistic", "squared_hinge")
#: column name -> BilevelSVC parameters
CONFIGS = {**{f"BilevelSVC, {loss!r}": {"validation_loss": loss} for loss in LOSSES},
           **{f"BilevelSVC(learn='C'), {loss!r}": {"learn": "C", "validation_loss": loss}
              for loss in ("sigmoid", "logistic")}}
NAME = "svm_validation_losses"
RESULTS = _harness.RESULTS / f"{NAME}.md"
MODELS = ("LinearSVC", *CONFIGS)


def row_accuracies(row, seeds):
    """Test accuracies of LinearSVC and of BilevelSVC in each configuration, one list per model."""
    acc = {name: [] for name in ("LinearSVC", *CONFIGS)}
    for seed in range(seeds):
        t = row.make_task(seed)
        X_tr, y_tr, X_te, y_te = t.X[t.train], t.y[t.train], t.X[t.test], t.y[t.test]
        acc["LinearSVC"].append(LinearSVC(random_state=seed).fit(X_tr, y_tr).score(X_te, y_te))
        for name, params in CONFIGS.items():
            with warnings.catch_warnings():
                # svm_paper.md counts the ConvergenceWarnings of the default loss; here only accuracy is
                # compared (and a constant classifier shows in it)
                warnings.simplefilter("ignore", UserWarning)
                clf = BilevelSVC(**params).fit(X_tr, y_tr, X_val=t.X[t.val], y_val=t.y[t.val])
            acc[name].append(clf.score(X_te, y_te))
    return acc


def cell(values, paper):
    """Mean, std and whether the mean is at least ``paper`` minus the std."""
    mean, std = float(np.mean(values)), float(np.std(values))
    return [mean, std, "yes" if mean >= paper - std else "no"]


def render(records):
    """The table of the latest record."""
    record = records[-1]
    res = record["results"]
    columns = [_harness.Column("row"), _harness.Column("paper", "{:.4f}"),
               *(_harness.Column(name, "{:.4f} ± {:.4f} ({})") for name in MODELS)]
    met = {name: sum(row[name][2] == "yes" for row in res["rows"]) for name in MODELS}
    n = len(res["rows"])
    lines = ["# BilevelSVC's validation losses on the rows of Huang et al. (2025)", "", *_harness.run_lines(record),
             f"- {res['seeds']} seeds per row; the data, splits and seeds of `benchmarks/svm_paper.py`.",
             "- `BilevelSVC(validation_loss=...)` with one weight per training sample (the paper's model, "
             "`method='auto'`) and `BilevelSVC(learn='C', ...)` with one `C`, given the validation part; "
             "`LinearSVC()` on the training part. Test accuracy, "
             "mean ± std; (yes) when the mean is at least the paper's number minus the std, the target.",
             *_harness.note_lines(record), "", *_harness.table_lines(columns, res["rows"]), "",
             "Rows meeting the target: " + ", ".join(f"{name} {k} of {n}" for name, k in met.items())
             + " (LinearSVC judged by the same rule).", ""]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="markdown output file (another than the default: the record is written beside it)")
    opts = p.parse_args(argv)
    rows = table1_rows() + iris_rows()
    if DATA_DIR.is_dir():
        rows += table2_rows(opts.datasets, list(PAPER_TABLE2))
    else:
        print(f"Table 2 skipped: data folder {DATA_DIR} not found", file=sys.stderr)
    results = {"seeds": opts.seeds, "rows": [], "per_seed": {}}
    for row in rows:
        acc = row_accuracies(row, opts.seeds)
        results["rows"].append({"row": row.label, "paper": row.paper_acc,
                                **{name: cell(acc[name], row.paper_acc) for name in MODELS}})
        results["per_seed"][row.label] = acc
        print(row.label, {name: round(v[0], 4) for name, v in results["rows"][-1].items() if name in MODELS},
              file=sys.stderr, flush=True)
    record = _harness.new_record(NAME, argv, {"seeds": opts.seeds, "datasets": opts.datasets}, results)
    _harness.publish(record, opts.out, RESULTS, render)


if __name__ == "__main__":
    main()
