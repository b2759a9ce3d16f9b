"""What every benchmark shares: the run's environment, its record, and the Markdown of its tables.

A run of a benchmark is stored as one JSON record, ``benchmarks/results/records/<benchmark>/<date>_<label>.json``::

    {"benchmark": ..., "date": ..., "commit": ..., "dirty": ..., "versions": {...}, "machine": {...},
     "command": ..., "notes": [...], "config": {...}, "results": {...}}

``results`` holds the numbers (per-seed measurements where the benchmark keeps them, and the table
cells computed from them); each benchmark's ``render(records)`` turns its records into its table,
and ``python -m benchmarks.render`` writes every ``benchmarks/results/<benchmark>.md`` from the
records. No table is read back from Markdown.

Records converted from the tables and per-seed files written before this harness carry what those
files stated and :data:`NOT_RECORDED` for the versions and machine details the old tables did not
name; their commit is inferred (``"commit_inferred": true``): the last commit at or before the run's
recorded date, whose tree holds the run's code unless the run had uncommitted changes.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RECORDS = RESULTS / "records"
UNKNOWN = "unknown (before the harness)"
#: a version or machine detail an old table did not state
NOT_RECORDED = "not recorded"
PACKAGES = ("numpy", "scipy", "scikit-learn", "cvxpy", "skbilevel")


# -- the environment of a run ----------------------------------------------------------------------
def git_state(root=ROOT):
    """``(commit, dirty)`` of the checkout: dirty when a tracked file outside the results differs."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git checkout)", None
    # a run writes its own record and table into benchmarks/results: that does not make the code dirty
    dirty = any(not line[3:].startswith("benchmarks/results/") for line in status)
    return commit, dirty


def versions():
    """Python, the numerical packages (``'not installed'`` when absent) and the BLAS libraries in use."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
                       for info in threadpool_info() if info.get("user_api") == "blas"]
    except ImportError:
        out["blas"] = "threadpoolctl not installed"
    return out


def machine():
    """The platform, processor and number of CPUs."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}


def command_line(module, argv):
    """How the run was started, with the text of each ``--note`` (kept in ``notes``) shown as ``...``."""
    shown = ["..." if i and argv[i - 1] == "--note" else a for i, a in enumerate(argv)]
    return " ".join(["python -m", f"benchmarks.{module}", *map(shlex.quote, shown)])


def new_record(benchmark, argv, config, results, notes=()):
    """A record of a run made now: its environment, command, options and numbers."""
    commit, dirty = git_state()
    return {"benchmark": benchmark,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit, "dirty": dirty, "versions": versions(), "machine": machine(),
            "command": command_line(benchmark, argv), "notes": list(notes), "config": config,
            "results": jsonable(results)}


def jsonable(value):
    """``value`` with numpy scalars and arrays, tuples and paths made plain JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


# -- reading and writing records -------------------------------------------------------------------
def record_path(record, label=""):
    """Where a run's record is kept: ``records/<benchmark>/<UTC date and time>[_<label>].json``."""
    stamp = re.sub(r"[^0-9T]", "", record["date"][:19])
    return RECORDS / record["benchmark"] / f"{stamp}{'_' + label if label else ''}.json"


def write_record(record, path):
    """Write ``record`` as indented JSON; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def read_records(benchmark, folder=RECORDS):
    """The records of ``benchmark``, oldest first."""
    records = [json.loads(p.read_text()) for p in sorted((folder / benchmark).glob("*.json"))]
    return sorted(records, key=lambda r: r["date"])


def publish(record, out, default_out, render, label=""):
    """Store a finished run and write its table.

    With the default output the record joins the benchmark's records and the committed table is
    rendered from all of them; with another ``--out`` the record is written beside it (``.json``)
    and the table holds this run alone.
    """
    if Path(out).resolve() == Path(default_out).resolve():
        write_record(record, record_path(record, label))
        text = render(read_records(record["benchmark"]))
    else:
        write_record(record, Path(out).with_suffix(".json"))
        text = render([record])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    print(text, end="")
    return text


# -- Markdown --------------------------------------------------------------------------------------
def run_lines(record, command_note=""):
    """The lines that say when, where and how a run was made (``command_note`` follows the command)."""
    v, m = record["versions"], record["machine"]
    dirty = {True: ", with uncommitted changes", False: "", None: ""}[record.get("dirty")]
    packages = ", ".join(f"{name} {v.get(name, UNKNOWN)}" for name in ("numpy", "scipy", "scikit-learn", "cvxpy",
                                                                         "skbilevel"))
    where = f"{m['processor']}, {m['cpu_count']} cores" if m.get("cpu_count") else "not recorded"
    commit = record["commit"] + (" (inferred: the last commit before the run's date)"
                                 if record.get("commit_inferred") else "")
    return [f"- Run: {_date(record['date'])}; commit {commit}{dirty}; machine: {where}; "
            f"Python {v.get('python', UNKNOWN)}, {packages}; BLAS: {_blas(v.get('blas'))}.",
            f"- Command: `{record['command']}`{command_note}."]


def _date(text):
    if text.endswith("+00:00"):
        return text[:16].replace("T", " ") + " UTC"
    return text.replace("T", " ") + " (time zone not recorded)"


def _blas(blas):
    if not isinstance(blas, list):
        return str(blas)
    if not blas:
        return "none found"
    return ", ".join(f"{b.get('internal_api') or 'library not recorded'} {b.get('version') or ''}".rstrip()
                     + f" with {b['num_threads']} thread(s)" for b in blas)


def note_lines(record):
    """The ``--note`` lines of a run, as Markdown items."""
    return [f"- {note}" for note in record.get("notes", ())]


class Column(NamedTuple):
    """A table column: its heading and the format of its cells (``str.format`` with the cell's value,
    or with its items when the value is a list, e.g. ``'{:.4f} ± {:.4f}'`` for ``[mean, std]``; a value
    None is shown as a dash)."""

    head: str
    cell: str = "{}"


def table_lines(columns, rows):
    """A Markdown table of ``rows``: dicts from column heading to value, or lists of values in column order."""
    lines = ["| " + " | ".join(c.head for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        values = row if isinstance(row, list) else [row[c.head] for c in columns]
        cells = [_cell(c.cell, v) for c, v in zip(columns, values)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(template, value):
    if value is None:
        return "—"
    return template.format(*value) if isinstance(value, list) else template.format(value)
