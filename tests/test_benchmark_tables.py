"""The benchmark harness: records carry their environment, and the committed tables are rendered from them.

Also the hyper-cleaning table's arithmetic: summaries of per-seed records and merging runs.
"""

import datetime
import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def benchmarks():
    """The ``benchmarks`` package of this checkout (a folder beside ``skbilevel``, not installed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))
        import benchmarks._harness
        import benchmarks.hyper_cleaning
        import benchmarks.render
        yield benchmarks


@pytest.fixture(scope="module")
def bench(benchmarks):
    return benchmarks.hyper_cleaning


def records(rng, methods, seeds=5):
    recs = []
    for _ in range(seeds):
        rec = {m: {"acc": rng.uniform(0.8, 0.9), "f1": rng.uniform(0.6, 0.95), "seconds": rng.uniform(10, 90)}
               for m in methods}
        rec.update({b: {"acc": rng.uniform(0.7, 0.9), "seconds": 1.0} for b in ("noisy", "trusted only",
                                                                               "noisy + trusted", "oracle")})
        rec["lr_seconds"] = rng.uniform(1, 3)
        recs.append(rec)
    return recs


def test_summary_is_the_mean_and_std_over_the_seeds_that_hold_a_method(bench):
    recs = records(np.random.default_rng(0), ["hypergradient", "sqcqp", "value-function"])
    del recs[4]["sqcqp"]
    for rec in recs[1:]:
        del rec["value-function"]
    row = bench.summarise(recs, bench.METHODS)
    assert row["seeds"] == 5 and set(row["methods"]) == {"hypergradient", "sqcqp", "value-function"}
    assert row["methods"]["sqcqp"]["n"] == 4 and row["methods"]["value-function"]["n"] == 1
    acc = [r["sqcqp"]["acc"] for r in recs[:4]]
    assert row["methods"]["sqcqp"]["acc"] == pytest.approx((np.mean(acc), np.std(acc)))
    # the verdicts compare the methods run on every seed
    assert set(bench.verdict_methods(row)) == {"hypergradient"}


def test_merge_replaces_what_was_measured_and_keeps_the_rest(bench):
    rng = np.random.default_rng(2)
    old = bench.summarise(records(rng, ["hypergradient", "perturbed-gd"]), bench.METHODS)
    new = bench.summarise([{"sqcqp": r["sqcqp"]} for r in records(rng, ["sqcqp"])], bench.METHODS)
    merged = bench.merge(old, new)
    assert set(merged["methods"]) == {"hypergradient", "perturbed-gd", "sqcqp"}
    assert merged["methods"]["sqcqp"] is new["methods"]["sqcqp"]
    assert merged["baselines"] == old["baselines"] and merged["lr_seconds"] == old["lr_seconds"]
    assert bench.merge(None, new) is new


def hc_record(bench, date, rows, **config):
    base = {"seeds": [0, 1, 2], "methods": list(bench.METHODS), "max_iter": 30, "method_iter": [],
            **bench.TABLE_CONFIG}
    return {"benchmark": "hyper_cleaning", "date": date, "commit": "abc", "dirty": False, "versions": {},
            "machine": {"cpu_count": 2, "processor": "x86_64"}, "command": "c", "notes": [],
            "config": {**base, **config}, "results": {"rows": rows}}


def test_the_table_merges_the_runs_with_its_options_oldest_first(bench):
    rng = np.random.default_rng(1)
    first = [{"seed": s, **r} for s, r in enumerate(records(rng, ["hypergradient", "sqcqp"], seeds=3))]
    later = [{"seed": s, "sqcqp": r["sqcqp"], "lr_seconds": r["lr_seconds"]}
             for s, r in enumerate(records(rng, ["sqcqp"], seeds=3))]
    runs = [hc_record(bench, "2026-01-01T00:00:00+00:00", [{"setting": "a", "p": 0.25, "model": "logistic",
                                                            "seeds": first}]),
            hc_record(bench, "2026-01-02T00:00:00+00:00", [{"setting": "a", "p": 0.25, "model": "logistic",
                                                            "seeds": later}]),
            hc_record(bench, "2026-01-03T00:00:00+00:00", [{"setting": "a", "p": 0.25, "model": "logistic",
                                                            "seeds": first}], float32=True)]
    assert [bench.in_table(r["config"]) for r in runs] == [True, True, False]
    [(key, row)] = bench.table_rows([r for r in runs if bench.in_table(r["config"])])
    assert key == ("a", 0.25, "logistic")
    assert row["methods"]["sqcqp"]["acc"][0] == pytest.approx(np.mean([r["sqcqp"]["acc"] for r in later]))
    assert row["methods"]["hypergradient"]["acc"][0] == pytest.approx(
        np.mean([r["hypergradient"]["acc"] for r in first]))
    assert row["baselines"]["oracle"]["acc"][0] == pytest.approx(np.mean([r["oracle"]["acc"] for r in first]))
    text = bench.render(runs)
    assert text.count("\n| (a) | 0.25 | logistic | 3 |") == 1 and text.count("### ") == 2  # float32 run left out


def test_a_method_run_for_other_iterations_is_left_out(bench):
    seeds = [{"seed": 0, "perturbed-gd": {"acc": 0.8, "f1": 0.9, "seconds": 1.0, "max_iter": 300},
              "sqcqp": {"acc": 0.7, "f1": 0.6, "seconds": 1.0, "max_iter": 30}}]
    run = hc_record(bench, "2026-01-01T00:00:00+00:00", [{"setting": "b", "p": 0.5, "model": "mlp", "seeds": seeds}],
                    method_iter=[["perturbed-gd", None, 600]])
    [summary] = bench.row_summaries(run).values()
    assert set(summary["methods"]) == {"sqcqp"}


def test_every_committed_table_is_rendered_from_its_records(benchmarks):
    for name in benchmarks.render.BENCHMARKS:
        committed = (ROOT / "benchmarks" / "results" / f"{name}.md").read_text()
        assert benchmarks.render.rendered(name) == committed, f"run python -m benchmarks.render ({name})"


def test_every_record_carries_date_commit_versions_and_machine(benchmarks):
    paths = sorted((ROOT / "benchmarks" / "results" / "records").glob("*/*.json"))
    assert {p.parent.name for p in paths} == set(benchmarks.render.BENCHMARKS)
    for path in paths:
        record = json.loads(path.read_text())
        assert record["benchmark"] == path.parent.name
        datetime.datetime.fromisoformat(record["date"])
        assert record["commit"] and "dirty" in record and record["command"]
        assert {"python", "numpy", "scipy", "scikit-learn", "cvxpy", "skbilevel", "blas"} <= set(record["versions"])
        assert "cpu_count" in record["machine"] and "platform" in record["machine"]
        assert {"config", "results", "notes"} <= set(record)


def test_a_new_record_states_its_environment(benchmarks):
    h = benchmarks._harness
    record = h.new_record("example_2_2", ["--note", "busy"], {"k": (1, 2)}, {"x": np.float64(0.5),
                                                                           "y": np.arange(2)})
    assert record["date"].endswith("+00:00")
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]) or record["commit"].startswith("unknown")
    assert record["versions"]["numpy"] == np.__version__
    assert record["command"] == "python -m benchmarks.example_2_2 --note ..."
    assert json.loads(json.dumps(record))["results"] == {"x": 0.5, "y": [0, 1]}
    assert "commit " + record["commit"] in h.run_lines(record)[0]


def test_a_run_with_another_out_writes_its_record_beside_its_table(benchmarks, tmp_path):
    h = benchmarks._harness
    record = h.new_record("svm_validation_losses", [], {}, {"seeds": 1, "rows": []})
    out = tmp_path / "table.md"
    text = h.publish(record, out, h.RESULTS / "svm_validation_losses.md", lambda recs: f"{len(recs)} run\n")
    assert text == "1 run\n" and out.read_text() == text
    assert json.loads(out.with_suffix(".json").read_text())["date"] == record["date"]


def test_table_cells_format_values_lists_and_missing(benchmarks):
    h = benchmarks._harness
    columns = [h.Column("a"), h.Column("b", "{:.2f} ± {:.2f}"), h.Column("c", "{:.1f}x")]
    lines = h.table_lines(columns, [{"a": "x", "b": [1, 0.25], "c": None}, ["y", [2, 0], 3.14]])
    assert lines == ["| a | b | c |", "|---|---|---|", "| x | 1.00 ± 0.25 | — |", "| y | 2.00 ± 0.00 | 3.1x |"]
