"""The peers benchmark: its acceptance checks follow the measured numbers, and a small run writes its record and table.

Skipped without optuna and optuna-integration (the benchmark's own requirements, the ``bench`` extra).
"""

import json
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("optuna_integration")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def peers():
    """``benchmarks.search_vs_peers`` of this checkout (a folder beside ``skbilevel``, not installed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(ROOT))
        import benchmarks.search_vs_peers
        yield benchmarks.search_vs_peers


def test_checks_pass_only_when_both_speed_and_score_are_met(peers):
    check = peers.mse_check(1, aim=5)
    assert check(1.0, 100.0, 100.0)[0] and check(2.0, 100.4, 100.0)[0]
    assert not check(0.99, 100.0, 100.0)[0]  # slower
    assert not check(2.0, 100.6, 100.0)[0]  # MSE more than 0.5% above the peer's
    assert "aim ≥ 5x: not met" in check(2.0, 100.0, 100.0)[1] and "met" in check(6.0, 100.0, 100.0)[1]
    accuracy = peers.acc_check(3)
    assert accuracy(3.0, 0.900, 0.9015)[0]
    assert not accuracy(3.0, 0.900, 0.9025)[0] and not accuracy(2.9, 0.95, 0.90)[0]


def test_rows_select_by_family_or_family_and_dataset(peers):
    rows = peers.ROWS
    assert peers.selected(rows, None) == list(rows)
    assert {d for f, d in peers.selected(rows, ["svc"])} == {"breast_cancer", "digits_3_vs_8", "ionosphere"}
    assert peers.selected(rows, ["lasso/diabetes", "ridge_cv"]) == [("lasso", "diabetes"), ("ridge_cv", "2000x500"),
                                                                   ("ridge_cv", "diabetes")]


def test_a_small_run_writes_its_record_and_the_table_rendered_from_it(peers, tmp_path, capsys):
    out = tmp_path / "peers.md"
    peers.main(["--quick", "--rows", "lasso/diabetes", "ridge_loo/diabetes", "vector/noise_95", "--out", str(out)])
    record = json.loads(out.with_suffix(".json").read_text())
    assert out.read_text() == peers.render([record])
    lasso, loo = record["results"]["main"]
    ours_cv, peer_cv, verdict = lasso[7], lasso[8], lasso[-1]
    # the same folds and metric on both sides: BilevelSearchCV's choice is as good as LassoCV's
    assert ours_cv == pytest.approx(peer_cv, rel=peers.MSE_TOL)
    assert verdict == ("PASS" if peers.mse_check(1)(lasso[5], ours_cv, peer_cv)[0] else "FAIL")
    # a row this version cannot run says so, and still reports the peer
    assert (loo[-1] == "n/a") == (peers.loo_option() is None) and loo[4] > 0
    [vector] = record["results"]["vector"]
    assert (vector[-1] == "n/a") == (peers.per_feature_search() is None)
