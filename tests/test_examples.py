"""The README's main job (``examples/quickstart.py``) runs and prints one line per model."""

import runpy
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def test_quickstart_runs_and_reports_every_model(capsys):
    module = runpy.run_path(str(QUICKSTART))
    module["main"].__globals__["SEEDS"] = range(1)  # one split keeps the test short
    module["main"]()
    lines = capsys.readouterr().out.strip().splitlines()
    models = module["models"](0)
    assert len(lines) == 1 + len(models)
    for name, line in zip(models, lines[1:]):
        assert line.startswith(name) and "test accuracy" in line and "fit time" in line
        accuracy = float(line.split("test accuracy")[1].split()[0])
        assert 0.8 <= accuracy <= 1.0
