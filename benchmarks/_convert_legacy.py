"""One-off: convert the tables and per-seed files written before the harness into records.

Run once (``python -m benchmarks._convert_legacy``) to write ``benchmarks/results/records``; kept in
git history only. Each record carries the date, versions and machine the old table stated and
:data:`_harness.UNKNOWN` / :data:`_harness.NOT_RECORDED` for the rest.
"""

import json
import re
from pathlib import Path

from benchmarks import _harness
from benchmarks import example_2_2 as e22
from benchmarks import search_vs_grid as svg
from benchmarks import svm_paper as svp
from benchmarks import svm_validation_losses as svl

R = _harness.RESULTS
NR = _harness.NOT_RECORDED


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text == "—" else text


def parse_cell(template, text):
    """The value(s) ``template.format`` turned into ``text``."""
    parts = re.split(r"\{[^}]*\}", template)
    pattern = "(.*?)".join(re.escape(p) for p in parts)
    m = re.fullmatch(pattern, text)
    if m is None:
        if text == "—":
            return None
        raise ValueError(f"{text!r} does not match {template!r}")
    values = [value(g) for g in m.groups()]
    return values[0] if len(values) == 1 else values


def parse_table(lines, start, columns, as_list=False):
    """Rows of the Markdown table whose heading line is ``lines[start]``."""
    heads = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    assert heads == [c.head for c in columns], (heads, [c.head for c in columns])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        values = [parse_cell(c.cell, t) for c, t in zip(columns, cells)]
        rows.append(values if as_list else {c.head: v for c, v in zip(columns, values)})
    return rows


def header_date(lines):
    m = re.search(r"Date: (\d{4}-\d\d-\d\d) (\d\d:\d\d)", "\n".join(lines[:4]))
    return f"{m.group(1)}T{m.group(2)}"


def versions(**known):
    names = {"python": "python", "numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn"}
    out = {name: NR for name in ("python", *_harness.PACKAGES)}
    out.update({names[k]: v for k, v in known.items() if k in names})
    out["blas"] = known.get("blas", NR)
    return out


def x86(cores=2):
    return {"platform": NR, "machine": "x86_64", "processor": "x86_64", "cpu_count": cores}


def legacy(benchmark, date, command, config, results, notes=(), vers=None, mach=None):
    return {"benchmark": benchmark, "date": date, "commit": _harness.UNKNOWN, "dirty": None,
            "versions": vers or versions(), "machine": mach or {"platform": NR, "machine": NR, "processor": NR,
                                                                 "cpu_count": None},
            "command": command, "notes": list(notes), "config": config, "results": results}


def table_start(lines, first_head):
    return next(i for i, line in enumerate(lines) if line.startswith(f"| {first_head} |"))


# -- the four tables without per-seed files ------------------------------------------------------
def example_2_2():
    lines = (R / "example_2_2.md").read_text().splitlines()
    rows = parse_table(lines, table_start(lines, "method"), e22.COLUMNS)
    ratios = [float(x) for x in re.findall(r"\*\*([0-9.]+)x\*\*", "\n".join(lines))]
    res = {"starts": 20, "repeats": 5, "ratio": ratios[0], "ratio_paper_L": ratios[1],
           "rows": [{"method": r["method"], "seconds": r["time per solve (s)"], "max_abs_F": r["max abs F"],
                     "converged": r["converged"][0]} for r in rows]}
    vers = versions(python="3.11.7", numpy="2.4.6", scipy="1.17.1", blas=[{"num_threads": 1}])
    return legacy("example_2_2", header_date(lines), "PYTHONPATH=. python benchmarks/example_2_2.py", {}, res,
                  vers=vers, mach=x86())


def svm_validation_losses():
    lines = (R / "svm_validation_losses.md").read_text().splitlines()
    columns = [_harness.Column("row"), _harness.Column("paper", "{:.4f}"),
               *(_harness.Column(n, "{:.4f} ± {:.4f} ({})") for n in svl.MODELS)]
    rows = parse_table(lines, table_start(lines, "row"), columns)
    return legacy("svm_validation_losses", header_date(lines), "not recorded (the table names 10 seeds per row and every data set)",
                  {"seeds": 10, "datasets": list(svp.DATASETS)}, {"seeds": 10, "rows": rows},
                  vers=versions(python="3.11.7"))


WARNING = re.compile(r"- (.*), ({}) \((\d+)x\): `(.*)`$")


def warnings_of(lines, start, names, key):
    pattern = re.compile(WARNING.pattern.format("|".join(re.escape(n) for n in names)))
    out = []
    for line in lines[start:]:
        if not line.startswith("- ") or line == "- none":
            break
        m = pattern.match(line)
        out.append({"row": m.group(1), key: m.group(2), "count": int(m.group(3)), "message": m.group(4)})
    return out


def svm_paper():
    lines = (R / "svm_paper.md").read_text().splitlines()
    sections, i = [], 0
    while True:
        i = next((k for k in range(i, len(lines)) if lines[k].startswith("## ") and
                  ("Table" in lines[k] or "Iris" in lines[k])), None)
        if i is None:
            break
        acc = table_start(lines[i:], "row") + i
        clean = "oracle" in lines[acc]
        run = next(k for k in range(acc + 2, len(lines)) if lines[k].startswith("| row |"))
        warn = next(k for k in range(run, len(lines)) if lines[k] == "ConvergenceWarning messages:") + 2
        sections.append({"title": lines[i][3:], "intro": lines[i + 2], "clean": clean,
                         "accuracy": parse_table(lines, acc, svp.accuracy_columns(clean)),
                         "runtime": parse_table(lines, run, svp.RUNTIME_COLUMNS),
                         "warnings": warnings_of(lines, warn, svp.METHODS, "classifier")})
        i = warn
    scale = parse_table(lines, table_start(lines, "data set"), svp.SCALE_COLUMNS)
    single = next(k for k, line in enumerate(lines) if line.startswith("| data set | BilevelSVC val. loss"))
    res = {"seeds": 10, "sections": sections, "scale": scale,
           "single_C": parse_table(lines, single, svp.SINGLE_C_COLUMNS), "skipped": []}
    notes = ["The table was written to /work/hc_logs/svm_auto.md and copied here.",
             next(line[2:] for line in lines if line.startswith("- Run while"))]
    config = {"seeds": 10, "method": "auto", "table2": True, "datasets": list(svp.DATASETS),
              "ratios": list(svp.PAPER_TABLE2), "skip_small": False}
    vers = versions(python="3.11.7", numpy="2.4.6", scipy="1.17.1", sklearn="1.9.1")
    return legacy("svm_paper", header_date(lines),
                  "PYTHONPATH=. python benchmarks/svm_paper.py --table2 -v --out /work/hc_logs/svm_auto.md",
                  config, res, notes, vers, x86())


def search_vs_grid():
    lines = (R / "search_vs_grid.md").read_text().splitlines()
    labels = list(svg.ALTERNATIVES)
    main = parse_table(lines, table_start(lines, "row | hyper-parameters"), svg.MAIN_COLUMNS, as_list=True)
    details = parse_table(lines, table_start(lines, "row | searched ranges"), svg.DETAIL_COLUMNS, as_list=True)
    alt = parse_table(lines, table_start(lines, "row | GridSearchCV score"), svg.alternative_columns(labels),
                      as_list=True)
    warn = next(k for k, line in enumerate(lines) if line.startswith("## Warnings")) + 2
    names = [*svg.SEARCHES, *labels]
    res = {"wall_seconds": float(re.search(r"whole run (\d+) s", "\n".join(lines)).group(1)), "main": main,
           "details": details, "alternative_labels": labels, "alternatives": alt,
           "warnings": warnings_of(lines, warn, names, "search"), "skipped": []}
    note = next(line[2:] for line in lines if line.startswith("- 2026-12-02 22:13"))
    config = {"quick": False, "rows": [list(r) for r in svg.ROWS], "grid_points": 30, "svc_rows": 1000,
              "alternatives": True, "bilevel": {"1": {"random_state": 0}, "2": {"random_state": 0}},
              "threads": {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": NR}}
    vers = versions(python="3.11.7", numpy="2.4.6", scipy="1.17.1", sklearn="1.9.1")
    return legacy("search_vs_grid", header_date(lines), "PYTHONPATH=. python benchmarks/search_vs_grid.py -v --note ...",
                  config, res, [note], vers, x86())


# -- hyper-cleaning: per-seed files, and the baselines of an earlier table ---------------------------
FILE = re.compile(r"([ab])_p([0-9.]+)_(logistic|mlp)_seed(\d+)_it30_alpha0\.01_h64(.*)\.json")
EARLIER_REFIT = "1/n (the refit before commit 4630723)"
HC_CONFIG = {"settings": ["a", "b"], "ps": [0.25, 0.5], "max_iter": 30, "alpha": 0.01, "n_hidden": 64,
             "refit_max_iter": None, "float32": False, "refit": "weighted-mean", "no_baselines": True}
NEW = "benchmarks/results/records/hyper_cleaning/"
RENAMES = {"`benchmarks/results/hyper_cleaning_records_weighted_refit`": f"`{NEW}20261203T1853_weighted_refit.json`",
           "`benchmarks/results/hyper_cleaning_records` keeps": f"`{NEW}20261202T1639_earlier_refit.json` keeps",
           "records `*_refit200` beside the table's": "record `20261203T1514_refit200.json` in the same folder",
           "records in `benchmarks/results/hyper_cleaning_records_single_start_refit`":
               "records `20261203T1558_single_start_refit.json` and `20261203T1558_single_start_refit200.json`",
           "records `*_float32` beside the table's":
               "records `20261203T1705_float32.json` and `20261203T1705_refit200_float32.json`"}


def seed_rows(folder, suffix):
    rows = {}
    for path in sorted((R / folder).glob("*.json")):
        m = FILE.fullmatch(path.name)
        if m.group(5) != suffix:
            continue
        key = (m.group(1), float(m.group(2)), m.group(3))
        rows.setdefault(key, []).append({"seed": int(m.group(4)), **json.loads(path.read_text())})
    return [{"setting": s, "p": p, "model": mo, "seeds": sorted(recs, key=lambda r: r["seed"])}
            for (s, p, mo), recs in sorted(rows.items())]


def methods_of(rows):
    return [m for m in svg_methods() if any(m in rec for row in rows for rec in row["seeds"])]



def svg_methods():
    from benchmarks.hyper_cleaning import METHODS
    return METHODS


def hc_record(label, date, folder, suffix, command, notes, **config):
    rows = seed_rows(folder, suffix)
    cfg = {**HC_CONFIG, "seeds": sorted({r["seed"] for row in rows for r in row["seeds"]}),
           "models": sorted({row["model"] for row in rows}), "methods": methods_of(rows), **config}
    vers = config.pop("vers", None)
    cfg.pop("vers", None)
    return label, legacy("hyper_cleaning", date, command, cfg, {"rows": rows}, notes, vers, x86())


def hyper_cleaning():
    from benchmarks.hyper_cleaning import BASELINES
    lines = (R / "hyper_cleaning.md").read_text().splitlines()
    notes = [line[2:] for line in lines[4:] if line.startswith("- ") and not line.startswith("- Accuracy and F1")]
    for old, new in RENAMES.items():
        notes = [n.replace(old, new) for n in notes]
    head = [c.strip() for c in next(l for l in lines if l.startswith("| setting")).strip("|").split("|")]
    base_rows = []
    for line in lines:
        if not line.startswith("| ("):
            continue
        cell = dict(zip(head, (c.strip() for c in line.strip().strip("|").split("|"))))
        summary = {"seeds": int(cell["seeds"]), "methods": {}, "lr_seconds": None,
                   "baselines": {b: {"n": int(cell["seeds"]),
                                     "acc": [round(float(t) / 100, 6) for t in cell[f"{b} acc"].split("±")]}
                                 for b in BASELINES}}
        base_rows.append({"setting": cell["setting"].strip("()"), "p": float(cell["p"]), "model": cell["model"],
                          "summary": summary})
    common = "Converted from per-seed files (benchmarks/results/{}) written before the harness; "
    git_date = "the date is that of the commit that added the files."
    out = [("baselines", legacy(
        "hyper_cleaning", "2026-12-02T18:41",
        "PYTHONPATH=. python benchmarks/hyper_cleaning.py --records benchmarks/results/hyper_cleaning_records "
        "--from-records --merge benchmarks/results/hyper_cleaning.md --method-iter perturbed-gd=600 "
        "value-function:mlp=10 --out /tmp/hc.md --note ...",
        {k: HC_CONFIG[k] for k in ("alpha", "n_hidden", "refit_max_iter", "float32")} | {"refit": "none (baselines only)"},
        {"rows": base_rows},
        ["The baseline cells of the table of 2026-12-02 18:41 (git history of benchmarks/results/hyper_cleaning.md, "
         "commit 45f35a0), which no later run remeasured: logistic rows from 2026-12-01, MLP rows from 2026-12-02 "
         "00:00-02:00. Their per-seed records were not kept; the cells are mean ± std as the table printed them."],
        versions(numpy="2.4.6", sklearn="1.9.1"), x86()))]
    mi = [["perturbed-gd", None, 600], ["value-function", "mlp", 10]]
    out.append(hc_record("weighted_refit", "2026-12-03T18:53", "hyper_cleaning_records_weighted_refit", "",
                         "PYTHONPATH=. python benchmarks/hyper_cleaning.py --records "
                         "benchmarks/results/hyper_cleaning_records_weighted_refit --from-records --merge "
                         "benchmarks/results/hyper_cleaning.md --methods hypergradient value-function perturbed-gd "
                         "sqcqp --method-iter perturbed-gd=600 value-function:mlp=10 --out "
                         "benchmarks/results/hyper_cleaning.md --note ... (x10)",
                         [common.format("hyper_cleaning_records_weighted_refit") + "runs of 2026-12-03 10:00-18:51; "
                          "the date is that of the table they made.", *notes],
                         method_iter=mi, vers=versions(numpy="2.4.6", sklearn="1.9.1")))
    side = "Not in the table (another refit budget or pixel type); the table's notes compare it."
    for label, date, suffix, extra in (("refit200", "2026-12-03T15:14", "_refit200", {"refit_max_iter": 200}),
                                       ("float32", "2026-12-03T17:05", "_float32", {"float32": True}),
                                       ("refit200_float32", "2026-12-03T17:05", "_refit200_float32",
                                        {"refit_max_iter": 200, "float32": True})):
        out.append(hc_record(label, date, "hyper_cleaning_records_weighted_refit", suffix,
                             "PYTHONPATH=. python benchmarks/hyper_cleaning.py ... (not recorded)",
                             [common.format("hyper_cleaning_records_weighted_refit") + "the date is the start of "
                              "the runs the table's notes give.", side], method_iter=mi, **extra))
    single = "single start (code of commit 6a7d03f: one training from the method's model)"
    for label, suffix, extra in (("single_start_refit", "", {}), ("single_start_refit200", "_refit200",
                                                                  {"refit_max_iter": 200})):
        out.append(hc_record(label, "2026-12-03T15:58", "hyper_cleaning_records_single_start_refit", suffix,
                             "PYTHONPATH=. python benchmarks/hyper_cleaning.py ... (not recorded)",
                             [common.format("hyper_cleaning_records_single_start_refit") + git_date, side],
                             method_iter=mi, refit=single, **extra))
    out.append(hc_record("earlier_refit", "2026-12-02T16:39", "hyper_cleaning_records", "",
                         "PYTHONPATH=. python benchmarks/hyper_cleaning.py ... (not recorded)",
                         [common.format("hyper_cleaning_records") + git_date + " The MLP method cells of the "
                          "table of 2026-12-02 (value-function without the warm step); "
                          "benchmarks/hyper_cleaning_overfit.py compares with its value-function entries."],
                         method_iter=mi, refit=EARLIER_REFIT))
    out.append(hc_record("auto_mlp", "2026-12-02T20:41", "hyper_cleaning_auto_mlp_records", "",
                         "PYTHONPATH=. python benchmarks/hyper_cleaning.py --seed-list 0 1 --models mlp --methods "
                         "perturbed-gd --method-iter perturbed-gd=100 --no-baselines",
                         [common.format("hyper_cleaning_auto_mlp_records") + "runs of 2026-12-02 20:41-20:57. "
                          "perturbed-gd at the estimator's default max_iter=100 on the MLP rows (method='auto')."],
                         method_iter=[["perturbed-gd", None, 100]], refit=EARLIER_REFIT))
    return out


def main():
    for rec in (example_2_2(), svm_validation_losses(), svm_paper(), search_vs_grid()):
        _harness.write_record(rec, _harness.record_path(rec, "converted"))
    for label, rec in hyper_cleaning():
        _harness.write_record(rec, _harness.record_path(rec, label))


if __name__ == "__main__":
    main()
