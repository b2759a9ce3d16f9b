"""The hyper-cleaning benchmark's table: summaries of per-seed records, and reading a table back (--merge)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "hyper_cleaning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("hyper_cleaning_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_a_table_reads_back_to_its_summaries(bench, tmp_path):
    rng = np.random.default_rng(1)
    partial = records(rng, bench.METHODS)
    for rec in partial[1:]:
        del rec["sqcqp"]  # one seed: the cell says "(1 seed)"
    for rec in partial[3:]:
        del rec["value-function"]
    rows = [(("a", 0.25, "logistic"), bench.summarise(partial, bench.METHODS)),
            (("b", 0.5, "mlp"), bench.summarise(records(rng, ["perturbed-gd"], seeds=3), bench.METHODS))]
    path = tmp_path / "table.md"
    path.write_text("\n".join(bench.table(rows, bench.METHODS)) + "\n")
    assert "(1 seed)" in path.read_text() and "(3 seeds)" in path.read_text()
    back = bench.parse_table(path, bench.METHODS)
    assert set(back) == {key for key, _ in rows}
    for key, row in rows:
        assert back[key]["seeds"] == row["seeds"]
        assert set(back[key]["methods"]) == set(row["methods"])
        for m, summary in row["methods"].items():
            assert back[key]["methods"][m]["acc"] == pytest.approx(summary["acc"], abs=5e-5)
            assert back[key]["methods"][m]["seconds"] == pytest.approx(summary["seconds"], abs=0.05)
        for b, summary in row["baselines"].items():
            assert back[key]["baselines"][b]["acc"] == pytest.approx(summary["acc"], abs=5e-5)
        # the LogisticRegression time is recovered from the ratio column (printed to 0.1x)
        assert back[key]["lr_seconds"] == pytest.approx(row["lr_seconds"], rel=0.1)
    # and writing the read table gives the same lines (up to the rounding of the verdict columns)
    again = bench.table(list(back.items()), bench.METHODS)
    assert [line.split("|")[:14] for line in again] == [line.split("|")[:14] for line in path.read_text().splitlines()]


def test_merge_replaces_what_was_measured_and_keeps_the_rest(bench):
    rng = np.random.default_rng(2)
    old = bench.summarise(records(rng, ["hypergradient", "perturbed-gd"]), bench.METHODS)
    new = bench.summarise([{"sqcqp": r["sqcqp"]} for r in records(rng, ["sqcqp"])], bench.METHODS)
    merged = bench.merge(old, new)
    assert set(merged["methods"]) == {"hypergradient", "perturbed-gd", "sqcqp"}
    assert merged["methods"]["sqcqp"] is new["methods"]["sqcqp"]
    assert merged["baselines"] == old["baselines"] and merged["lr_seconds"] == old["lr_seconds"]
    assert bench.merge(None, new) is new
