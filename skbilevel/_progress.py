"""Progress of the estimators' outer iterations: what ``verbose`` shows.

``verbose=0`` is silent. ``verbose=1`` shows a progress bar over the outer
iterations (tqdm, the optional ``progress`` extra) or, without tqdm, one log
line per outer iteration. ``verbose=2`` adds the method's own line per
iteration (its residuals, step sizes, penalty parameters), written above the
bar so that the bar stays intact.

Run state lives in the :class:`OuterProgress` object made by each ``fit``;
nothing is stored on the estimator.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _tqdm():
    """``tqdm.auto.tqdm`` (a widget in notebooks, text elsewhere), or None when tqdm is absent."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def emit(line: str) -> None:
    """Print one log line; above the active progress bar when tqdm draws one."""
    tqdm = _tqdm()
    if tqdm is None:
        print(line, flush=True)
    else:
        tqdm.write(line)


def _format(value) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


class OuterProgress:
    """Report an estimator's outer iterations according to ``verbose``.

    Parameters
    ----------
    name : str
        Prefix of the bar and of the log lines, e.g. ``'BilevelSVC (hypergradient)'``.
    verbose : int
        0 silent, 1 bar (log lines without tqdm), 2 bar and the method's own lines.
    total : int or None
        Expected number of outer iterations (``max_iter``); the bar is set to
        the count reached when it closes, as a run may stop early.
    """

    def __init__(self, name: str, verbose: int, total: int | None):
        self.name, self.verbose, self.total = name, int(verbose), total
        self._bar, self._count, self._start = None, 0, time.perf_counter()
        tqdm = _tqdm() if self.verbose >= 1 else None
        if tqdm is not None:
            self._bar = tqdm(total=total, desc=name, unit="it", leave=True, dynamic_ncols=True)

    @property
    def method_verbose(self) -> int:
        """The ``verbose`` passed to the method: its own lines only at ``verbose >= 2``."""
        return 1 if self.verbose >= 2 else 0

    def update(self, objective: float | None = None, fields: dict | None = None) -> None:
        """Count one outer iteration; ``objective`` and ``fields`` (name -> value) go to the postfix or log line."""
        self._count += 1
        if self.verbose < 1:
            return
        shown = {} if objective is None else {"objective": float(objective)}
        shown.update(fields or {})
        if self._bar is not None:
            self._bar.set_postfix({k: _format(v) for k, v in shown.items()}, refresh=False)
            self._bar.update(1)
        elif self.verbose == 1:  # at verbose=2 the method's own, fuller line is printed instead
            of_total = f"/{self.total}" if self.total else ""
            text = "  ".join(f"{k} {_format(v)}" for k, v in shown.items())
            emit(f"[{self.name}] iteration {self._count}{of_total}  {text}  "
                 f"({time.perf_counter() - self._start:.2f}s)")

    def wrap(self, callback: Callable | None) -> Callable:
        """A method callback that counts the iteration, then calls ``callback`` (whose return may stop the run)."""
        def on_iteration(info):
            self.update(info.get("objective"))
            return bool(callback(info)) if callback is not None else False
        return on_iteration

    def close(self) -> None:
        """Close the bar at the count reached."""
        if self._bar is not None:
            self._bar.total = self._count
            self._bar.refresh()
            self._bar.close()
            self._bar = None

    def __enter__(self) -> OuterProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
