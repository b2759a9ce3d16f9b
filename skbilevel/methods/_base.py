"""The shape every bilevel method shares: check, set up, iterate, finalise.

A method is a :class:`BilevelMethod` (a stateless object holding its name and
what it needs of a problem); its public ``solve`` function declares the
method's options and calls :meth:`BilevelMethod.run`, which

1. checks the problem: every lower level must offer the capabilities in
   ``requires`` and must not have those in ``forbids`` (:meth:`check_problem`),
   then the options (:meth:`check_options`);
2. sets up the run (:meth:`setup`): the starting point and the method's
   quantities at it, on a :class:`Run`, the per-run state (nothing is
   written on the method object, so one object serves every run and thread);
3. iterates (:meth:`iterate`): one :meth:`step`, whose row of values is
   recorded in the history with its time, printed at ``verbose > 0`` and
   handed to the caller's ``callback``; then the stopping test
   (:meth:`should_stop`) and the move to the next iterate (:meth:`advance`);
4. finalises (:meth:`finalise`): a :class:`~skbilevel.BilevelResult` whose
   ``status`` says why the run stopped.

Methods whose loop is driven by another solver (the hypergradient by
scipy's L-BFGS-B) override :meth:`iterate` and call :meth:`record` from that
solver's callback. The layout follows scikit-learn's Newton solver for GLMs
(``sklearn/linear_model/_glm/_newton_solver.py``).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from .._progress import emit
from .._result import BilevelResult, Status
from ..problems.base import require

__all__ = ["BilevelMethod", "Run", "Status", "box", "project", "start_model"]


def box(problem):
    """``problem.x_bounds`` as two float arrays of shape ``(n_hyper,)``, or None."""
    if problem.x_bounds is None:
        return None
    return tuple(np.broadcast_to(np.asarray(b, dtype=float), (problem.lower.n_hyper,)) for b in problem.x_bounds)


def project(x, bounds):
    """``x`` clipped to the box ``bounds = (low, high)``; ``x`` itself when ``bounds`` is None."""
    return x if bounds is None else np.clip(x, bounds[0], bounds[1])


def start_model(lower, x0, y0, tol=1e-10):
    """The starting lower-level point and whether it met its tolerance: ``(y, solved)``.

    ``y0`` (copied) if given, else ``lower.solve(x0)`` to ``tol`` when the lower
    level offers ``'solve'`` (a warm start on the lower-level solution set),
    else zeros.
    """
    if y0 is not None:
        return np.array(y0, dtype=float), True
    if "solve" in lower.capabilities:
        y, solved = lower.solve(x0, None, tol)
        return np.asarray(y, dtype=float), bool(solved)
    return np.zeros(lower.n_var), True


def _has(lower, capability) -> bool:
    """Whether ``lower`` has ``capability``; ``'constraints'`` counts only with at least one constraint."""
    if capability == "constraints":
        return "constraints" in lower.capabilities and lower.n_constraints > 0
    return capability in lower.capabilities


class Run:
    """The state of one run of a method: options, iterate, history and why it stopped.

    Methods keep their own quantities (the current direction, the adjoint,
    the penalty parameter) as further attributes of the run.
    """

    def __init__(self, problem, options: SimpleNamespace, history_keys):
        self.problem, self.options = problem, options
        self.history = {key: [] for key in history_keys}
        self.x = self.y = None
        self.status, self.message = None, ""

    @property
    def n_iter(self) -> int:
        return len(self.history["objective"])

    @property
    def done(self) -> bool:
        return self.status is not None

    def stop(self, status: Status, message: str) -> None:
        """End the run with ``status``, explained by ``message``."""
        self.status, self.message = Status(status), message


class BilevelMethod:
    """A bilevel method as a template: :meth:`run` calls the hooks in a fixed order.

    Subclasses set :attr:`name`, :attr:`requires`, :attr:`forbids`,
    :attr:`history_keys` and implement :meth:`setup` and either :meth:`step`
    and :meth:`should_stop` or, when another solver drives the loop,
    :meth:`iterate`; the other hooks (:meth:`progress_line` among them) have
    defaults.
    """

    #: The method's name, as the estimators' ``method`` parameter spells it.
    name: str = ""
    #: Lower-level capabilities the method uses (see ``skbilevel.problems.base.CAPABILITIES``).
    requires: tuple = ()
    #: Lower-level capabilities the method cannot handle (``'constraints'``: at least one constraint).
    forbids: tuple = ()
    #: Why a forbidden capability is refused, for the error message.
    forbids_reason: str = ""
    #: History entries, in order; ``'time'`` is filled by :meth:`iterate`.
    history_keys: tuple = ("objective", "complementarity", "time")
    #: Row entries handed to the callback besides iteration, objective, time and hyperparameters.
    callback_keys: tuple = ()
    #: What one outer iteration is called in messages.
    unit: str = "iterations"

    # -- 1. checks ---------------------------------------------------------------------------------
    def lower_levels(self, problem):
        """The lower levels to check: the problem's own (a cross-validation problem has one per fold)."""
        return (problem.lower,)

    def needs(self, lower):
        """The capabilities required of ``lower`` (:attr:`requires` unless a method offers alternatives)."""
        return self.requires

    def accepts(self, lower) -> bool:
        """Whether ``lower`` offers every capability the method needs and none it forbids."""
        return set(self.needs(lower)) <= lower.capabilities and not any(_has(lower, cap) for cap in self.forbids)

    def check_problem(self, problem) -> None:
        """Raise ``ValueError`` naming a required capability a lower level lacks or a forbidden one it has."""
        for lower in self.lower_levels(problem):
            require(self.name, lower, self.needs(lower))
            present = [cap for cap in self.forbids if _has(lower, cap)]
            if present:
                what = (f"{lower.n_constraints} linear constraints" if present == ["constraints"]
                        else f"the capabilities {present}")
                reason = f" ({self.forbids_reason})" if self.forbids_reason else ""
                only = " It handles unconstrained lower levels only." if "constraints" in present else ""
                raise ValueError(f"method {self.name!r} refuses lower levels with the capabilities {present}{reason}; "
                                 f"{type(lower).__name__} has {what}.{only}")

    def check_options(self, options: SimpleNamespace) -> None:
        """Raise ``ValueError`` on an option value the method cannot use (default: none)."""

    # -- 2-4. the run ------------------------------------------------------------------------------
    def run(self, problem, x0, y0, settings: dict) -> BilevelResult:
        """Check, set up, iterate and finalise one run on ``problem`` from ``(x0, y0)``.

        ``settings`` holds the value of every option of the method's ``solve``, by name.
        """
        opts = SimpleNamespace(**settings)
        self.check_problem(problem)
        self.check_options(opts)
        state = Run(problem, opts, self.history_keys)
        self.setup(state, x0, y0)
        if not state.done:
            self.iterate(state)
        return self.finalise(state)

    def setup(self, run: Run, x0, y0) -> None:
        """Set ``run.x``, ``run.y`` and the method's quantities at the start; ``run.stop`` to end at once."""
        raise NotImplementedError

    def iterate(self, run: Run) -> None:
        """Up to ``max_iter`` iterations: step, record, callback, stopping test, advance."""
        for k in range(1, run.options.max_iter + 1):
            start = time.perf_counter()
            row = self.step(run, k)
            if row is None:  # the step could not be taken; step() said why
                return
            row["time"] = time.perf_counter() - start
            if self.record(run, k, row) or self.should_stop(run, k, row):
                return
            self.advance(run)

    def step(self, run: Run, k: int) -> dict | None:
        """Iteration ``k``: return its row (history entries but ``time``), or None after ``run.stop``."""
        raise NotImplementedError

    def record(self, run: Run, k: int, row: dict) -> bool:
        """Append ``row`` to the history, print it, call the callback; True when the callback stops the run."""
        for key in self.history_keys:
            run.history[key].append(row[key])
        if run.options.verbose:
            emit(self.progress_line(k, row))
        callback = run.options.callback
        if callback is None:
            return False
        info = {"iteration": k, "objective": row["objective"], "time": row["time"],
                "hyperparameters": self.hyperparameters(run).copy(),
                **{key: row[key] for key in self.callback_keys}}
        if callback(info):
            run.stop(Status.CALLBACK, f"stopped by the callback after {k} {self.unit}")
            return True
        return False

    def progress_line(self, k: int, row: dict) -> str:
        """The line printed after iteration ``k`` at ``verbose > 0``."""
        return f"[{self.name}] iter {k:4d}  F = {row['objective']:.6g}  ({row['time']:.3f}s)"

    def hyperparameters(self, run: Run):
        """The current hyperparameters, handed to the callback."""
        return run.x

    def should_stop(self, run: Run, k: int, row: dict) -> bool:
        """The stopping test after iteration ``k``: ``run.stop`` and True to end the run."""
        raise NotImplementedError

    def advance(self, run: Run) -> None:
        """Move to the next iterate after a test that did not stop (default: nothing left to do)."""

    def budget_message(self, run: Run) -> str:
        """The message when ``max_iter`` iterations ran out."""
        return f"no convergence in max_iter={run.options.max_iter} {self.unit}"

    def solution(self, run: Run):
        """The returned ``(hyperparameters, model)``."""
        return run.x, run.y

    def annotate(self, run: Run) -> None:
        """Amend ``run.status`` and ``run.message`` at the end (default: nothing)."""

    def finalise(self, run: Run) -> BilevelResult:
        """The :class:`~skbilevel.BilevelResult` of the run."""
        if not run.done:
            run.stop(Status.MAX_ITER, self.budget_message(run))
        self.annotate(run)
        x, y = self.solution(run)
        return BilevelResult(x, y, run.history, run.status is Status.CONVERGED, run.message, run.n_iter,
                             run.status)
