"""Draw one summary figure per benchmark comparison from the tables in ``benchmarks/results/``.

Run from the repository root after the tables change (``pip install ".[plot]"``)::

    python doc/benchmark_figures.py

It reads the Markdown tables (``benchmarks/results/*.md``), finds the columns it plots by their
header names, and writes ``doc/_static/benchmarks/<table>.png``, which ``doc/benchmarks.md`` shows
above the tables. A table that is missing, or whose columns it does not find, is reported and its
figure left as it was: the documentation build does not run this script.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "doc" / "_static" / "benchmarks"

WIDTH = 8.0  # inches; at DPI 150 the image is 1,200 px, shown scaled to the text column
DPI = 150
MARKERS = "osD^vP*X"
# the same search keeps its colour and marker in every panel
STYLES = {"BilevelSearchCV": ("C0", "o"), "GridSearchCV": ("C1", "s"), "RandomizedSearchCV": ("C2", "D"),
          "HalvingRandomSearchCV": ("C3", "^"),
          # baselines in grey, so that the methods stand out
          "BilevelSVC (per-sample weights)": ("C0", "o"), "skbilevel (local SLSQP solves)": ("C0", "o"),
          "paper (one run)": ("k", "x"), "LinearSVC": ("0.55", "s"), "GridSearchCV(LinearSVC)": ("0.3", "D"),
          "paper": ("k", "x"), "paper (global moment-SOS solves)": ("0.45", "s"),
          "noisy (baseline)": ("0.7", "v"), "trusted only (baseline)": ("0.5", "P"),
          "noisy + trusted (baseline)": ("0.3", "X"), "oracle (baseline)": ("k", "*")}


# -- reading the Markdown tables ------------------------------------------------------------------

def read_tables(path: Path) -> list[dict]:
    """Every pipe table of a Markdown file: ``{"section", "header", "rows"}`` with cells as strings."""
    tables, section, lines = [], "", path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        is_table = (line.startswith("|") and i + 1 < len(lines)
                    and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()))
        if is_table:
            header = _cells(line)
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(header, _cells(lines[i]))))
                i += 1
            tables.append({"section": section, "header": header, "rows": rows})
            continue
        i += 1
    return tables


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(cell: str) -> tuple[float, float]:
    """``'0.93 ± 0.01'`` -> (0.93, 0.01); ``'5.9x'`` -> (5.9, 0); a cell without a number -> (nan, 0)."""
    values = re.findall(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", cell.replace("−", "-"))
    if not values:
        return np.nan, 0.0
    mean = float(values[0].replace(",", ""))
    std = float(values[1].replace(",", "")) if "±" in cell and len(values) > 1 else 0.0
    return mean, std


def column(table: dict, *words: str) -> str | None:
    """The first header that contains every one of ``words`` (case-insensitive)."""
    for name in table["header"]:
        if all(word.lower() in name.lower() for word in words):
            return name
    return None


def find_table(tables: list[dict], *words: str) -> dict | None:
    return next((t for t in tables if column(t, *words) is not None), None)


# -- drawing ----------------------------------------------------------------------------------------

def dot_plot(ax, labels, series, *, xlabel, xscale="linear"):
    """Rows on the y axis; each series a marker per row (with a horizontal error bar when it has one).

    ``series`` maps a legend label to ``(means, stds)``; a label of ``STYLES`` keeps its style.
    """
    n = len(series)
    offsets = np.linspace(-0.27, 0.27, n) if n > 1 else [0.0]
    y = np.arange(len(labels))
    for k, (name, (means, stds)) in enumerate(series.items()):
        colour, marker = STYLES.get(name, (f"C{k}", MARKERS[k % len(MARKERS)]))
        ax.errorbar(means, y + offsets[k], xerr=stds if np.any(stds) else None, fmt=marker,
                    color=colour, ms=5, capsize=2, lw=1, label=name)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xscale(xscale)
    if xscale == "log":
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    for boundary in y[:-1] + 0.5:
        ax.axhline(boundary, color="0.9", lw=0.5, zorder=0)


def legend_below(fig, axes, ncol=4):
    """One legend for all panels, under them, so that it hides no point."""
    with warnings.catch_warnings():  # suptitle and shared axes: tight_layout warns, and still fits
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()  # keeps the axis labels inside the figure, above the legend
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=ncol,
               bbox_to_anchor=(0.5, 0.0), frameon=False)


def save(fig, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / f"{name}.png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {OUT / f'{name}.png'}")


def _series(rows, name):
    pairs = [number(r.get(name, "")) for r in rows]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


# -- one figure per comparison ----------------------------------------------------------------------

def search_vs_grid(tables):
    """Fit time relative to BilevelSearchCV, and CV score minus GridSearchCV's, per estimator and data set."""
    table = find_table(tables, "BilevelSearchCV score")
    searches = ["GridSearchCV", "RandomizedSearchCV", "HalvingRandomSearchCV"]
    if table is None or column(table, "BilevelSearchCV (s)") is None:
        return None
    rows, labels = table["rows"], [r[table["header"][0]] for r in table["rows"]]
    ours_time = _series(rows, column(table, "BilevelSearchCV (s)"))[0]
    grid_score = _series(rows, column(table, "GridSearchCV score"))[0]
    times, scores = {}, {"BilevelSearchCV": (_series(rows, column(table, "BilevelSearchCV score"))[0] - grid_score,
                                             np.zeros(len(rows)))}
    for name in searches:
        t, s = column(table, f"{name} (s)"), column(table, f"{name} score")
        if t is not None:
            times[name] = (_series(rows, t)[0] / ours_time, np.zeros(len(rows)))
        if s is not None and name != "GridSearchCV":
            scores[name] = (_series(rows, s)[0] - grid_score, np.zeros(len(rows)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 0.42 * len(rows) + 1.4), sharey=True,
                                      gridspec_kw={"wspace": 0.08})
    dot_plot(left, labels, times, xlabel="fit time / BilevelSearchCV's fit time (log scale)", xscale="log")
    left.axvline(1, color="k", lw=0.8)
    dot_plot(right, labels, scores, xlabel="best CV score − GridSearchCV's")
    right.axvline(0, color="k", lw=0.8)
    legend_below(fig, (right, left))
    fig.suptitle("BilevelSearchCV against scikit-learn's searches (same folds, same estimator)", fontsize=11)
    return fig


def svm_paper(tables):
    """Test accuracy of BilevelSVC, LinearSVC and GridSearchCV against the paper's, per row."""
    parts = [t for t in tables if {"row", "paper", "BilevelSVC", "LinearSVC"} <= set(t["header"])]
    if not parts:
        return None
    rows = [r for t in parts for r in t["rows"]]
    labels = [r["row"] for r in rows]
    series = {"paper (one run)": _series(rows, "paper"),
              "BilevelSVC (per-sample weights)": _series(rows, "BilevelSVC"),
              "LinearSVC": _series(rows, "LinearSVC")}
    if all("GridSearchCV" in r for r in rows):
        series["GridSearchCV(LinearSVC)"] = _series(rows, "GridSearchCV")
    fig, ax = plt.subplots(figsize=(WIDTH, 0.3 * len(rows) + 1.2))
    dot_plot(ax, labels, series, xlabel="test accuracy (mean ± std over seeds)")
    legend_below(fig, (ax,))
    ax.set_title("Bilevel SVM: the experiments of Huang et al. (2025)", fontsize=11)
    return fig


def svm_validation_losses(tables):
    """Test accuracy of BilevelSVC with each validation loss, per row."""
    table = find_table(tables, "BilevelSVC, 'sigmoid'")
    if table is None:
        return None
    rows = table["rows"]
    names = [h for h in table["header"] if h.startswith("BilevelSVC") or h in ("paper", "LinearSVC")]
    series = {h: _series(rows, h) for h in names}
    fig, ax = plt.subplots(figsize=(WIDTH, 0.42 * len(rows) + 1.2))
    dot_plot(ax, [r["row"] for r in rows], series, xlabel="test accuracy (mean ± std over seeds)")
    legend_below(fig, (ax,), ncol=3)
    ax.set_title("BilevelSVC's validation losses", fontsize=11)
    return fig


def hyper_cleaning(tables):
    """Test accuracy of each method against the baselines, and the detection F1, per setting."""
    table = find_table(tables, "acc / F1")
    if table is None:
        return None
    rows = table["rows"]
    labels = [f"{r.get('setting', '')} p={r.get('p', '')} {r.get('model', '')}" for r in rows]
    methods = [h for h in table["header"] if "acc / F1" in h]
    baselines = [h for h in table["header"] if h.endswith(" acc") and "acc / F1" not in h]
    acc, f1 = {}, {}
    for h in methods:
        parts = [[number(p) for p in r.get(h, "").split("/")] for r in rows]
        name = h.split(" acc")[0]
        acc[name] = (np.array([p[0][0] for p in parts]), np.array([p[0][1] for p in parts]))
        f1[name] = (np.array([p[1][0] if len(p) > 1 else np.nan for p in parts]),
                    np.array([p[1][1] if len(p) > 1 else 0 for p in parts]))
    for h in baselines:
        acc[h[:-4] + " (baseline)"] = _series(rows, h)
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 0.75 * len(rows) + 1.6), sharey=True,
                                      gridspec_kw={"width_ratios": [3, 2], "wspace": 0.06})
    dot_plot(left, labels, acc, xlabel="test accuracy (%, mean ± std over seeds)")
    dot_plot(right, labels, f1, xlabel="F1 of the detected wrong labels (%)")
    legend_below(fig, (left,))
    fig.suptitle("Data hyper-cleaning on MNIST: HyperCleaningClassifier's methods and the baselines",
                 fontsize=11)
    return fig


def example_2_2(tables):
    """Time per solve of LME-MPEC and MPEC, ours (local solves) and the paper's (global solves)."""
    table = find_table(tables, "time per solve")
    if table is None:
        return None
    rows = table["rows"]
    labels = [r["method"] for r in rows]
    series = {"skbilevel (local SLSQP solves)": _series(rows, column(table, "time per solve"))}
    paper = column(table, "paper time")
    if paper is not None:
        series["paper (global moment-SOS solves)"] = _series(rows, paper)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 * len(rows) + 1.3))
    dot_plot(ax, labels, series, xlabel="seconds per solve (log scale)", xscale="log")
    legend_below(fig, (ax,))
    ax.set_title("Example 2.2 of Huang et al. (2025): LME-MPEC against MPEC", fontsize=11)
    return fig


FIGURES = {"search_vs_grid": search_vs_grid, "svm_paper": svm_paper,
           "hyper_cleaning": hyper_cleaning, "svm_validation_losses": svm_validation_losses,
           "example_2_2": example_2_2}


def main() -> int:
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 9})
    missing = []
    for name, draw in FIGURES.items():
        path = RESULTS / f"{name}.md"
        fig = draw(read_tables(path)) if path.exists() else None
        if fig is None:
            missing.append(name)
            print(f"skipped {name}: no table with the expected columns in {path}",
                  file=sys.stderr)
        else:
            save(fig, name)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
