"""The ``param_space`` of BilevelSearchCV: bounds, scales and starting points."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

# Distributions whose natural scale is logarithmic (scipy.stats.loguniform's names).
_LOG_DISTRIBUTIONS = ("loguniform", "reciprocal")
# Quantiles bounding a distribution with unbounded support.
_TAIL = 1e-3


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: its name, scale and bounds in search coordinates ``x``.

    ``x = log(value)`` on the ``'log'`` scale, ``x = value`` on the
    ``'linear'`` one. ``distribution`` is the scipy.stats frozen
    distribution it came from, if any (extra starting points are drawn
    from it). ``low_value`` and ``high_value`` are the edges as the user
    wrote them: ``exp(log(0.1))`` is ``0.10000000000000002``, and a search
    that ends on an edge reports the user's number. ``values`` are the
    search coordinates of a ``param_grid`` list, sorted: the initial grid
    takes its points among them.
    """

    name: str
    scale: str
    low: float
    high: float
    distribution: object = None
    low_value: float | None = None
    high_value: float | None = None
    values: tuple | None = None

    def to_value(self, x: float) -> float:
        if x == self.low and self.low_value is not None:
            return self.low_value
        if x == self.high and self.high_value is not None:
            return self.high_value
        return float(np.exp(x)) if self.scale == "log" else float(x)

    def start(self) -> float:
        """The first starting point: the middle of the box (the median of a distribution)."""
        if self.distribution is not None:
            return self.to_x(self.distribution.median())
        return 0.5 * (self.low + self.high)

    def sample(self, rng: np.random.RandomState) -> float:
        """A random starting point."""
        if self.distribution is not None:
            return float(np.clip(self.to_x(self.distribution.rvs(random_state=rng)), self.low, self.high))
        return float(rng.uniform(self.low, self.high))

    def grid(self, m: int) -> np.ndarray:
        """``m`` points spread over the box: the centres of ``m`` equal cells (quantiles of a distribution;
        of a ``param_grid`` list, the values at the centres of ``m`` equal runs of it, or all its values
        when it has at most ``m``)."""
        centres = (np.arange(m) + 0.5) / m
        if self.values is not None:
            values = np.asarray(self.values)
            return values if values.size <= m else values[np.floor(centres * values.size).astype(int)]
        if self.distribution is not None:
            return np.array([self.to_x(v) for v in self.distribution.ppf(centres)])
        return self.low + centres * (self.high - self.low)

    def to_x(self, value) -> float:
        """The search coordinate of ``value``: ``log(value)`` on the log scale, else ``value``."""
        return float(np.log(value)) if self.scale == "log" else float(value)


def _from_tuple(name, spec) -> Dimension:
    if len(spec) not in (2, 3):
        raise ValueError(f"param_space[{name!r}] must be (low, high) or (low, high, scale); got {spec!r}")
    low, high = float(spec[0]), float(spec[1])
    values = (low, high)
    scale = spec[2] if len(spec) == 3 else "log"
    if scale not in ("log", "linear"):
        raise ValueError(f"param_space[{name!r}]: scale must be 'log' or 'linear', got {scale!r}")
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"param_space[{name!r}]: need finite low < high, got ({low}, {high})")
    if scale == "log":
        if low <= 0:
            raise ValueError(f"param_space[{name!r}]: a log scale needs low > 0, got {low}")
        low, high = np.log(low), np.log(high)
    return Dimension(name, scale, float(low), float(high), None, *values)


def _from_distribution(name, dist) -> Dimension:
    if not hasattr(dist, "ppf") or not hasattr(dist, "rvs"):
        raise ValueError(
            f"param_space[{name!r}] must be a (low, high[, scale]) tuple or a continuous scipy.stats "
            f"frozen distribution such as loguniform(1e-3, 1e3); got {dist!r}"
        )
    low, high = dist.support()
    if not np.isfinite(low):
        low = dist.ppf(_TAIL)
    if not np.isfinite(high):
        high = dist.ppf(1 - _TAIL)
    scale = "log" if getattr(getattr(dist, "dist", None), "name", "") in _LOG_DISTRIBUTIONS else "linear"
    values = (float(low), float(high))
    if scale == "log":
        low, high = np.log(low), np.log(high)
    return Dimension(name, scale, float(low), float(high), dist, *values)


def within_valid_values(dim: Dimension, is_valid) -> Dimension:
    """``dim`` with box edges the estimator accepts (``is_valid(value) -> error message or None``).

    The box is closed, so the descent may reach its edges. A distribution
    whose support ends at an invalid value (``expon`` for ``C``: ``C = 0``,
    as in scikit-learn's RandomizedSearchCV examples) is cut at its
    ``_TAIL`` quantile there instead; an invalid edge given by the user
    raises ``ValueError`` with the estimator's own message.
    """
    edges = {"low": (dim.low, dim.to_value(dim.low)), "high": (dim.high, dim.to_value(dim.high))}
    for end, quantile in (("low", _TAIL), ("high", 1 - _TAIL)):
        edge, value = edges[end]
        error = is_valid(value)
        if error is not None and dim.distribution is not None:
            value = float(dim.distribution.ppf(quantile))
            edge, error = dim.to_x(value), is_valid(value)
        if error is not None:
            raise ValueError(f"param_space[{dim.name!r}]: the {end} end of the range, "
                             f"{value:g}, is not a valid value: {error}")
        edges[end] = (float(edge), value)
    (low, low_value), (high, high_value) = edges["low"], edges["high"]
    return Dimension(dim.name, dim.scale, low, high, dim.distribution, low_value, high_value, dim.values)


def parse_param_space(param_space) -> list[Dimension]:
    """Return one :class:`Dimension` per entry of ``param_space``, in sorted name order."""
    if not isinstance(param_space, dict) or not param_space:
        raise ValueError(f"param_space must be a non-empty dict {{name: (low, high)}}; got {param_space!r}")
    dims = []
    for name in sorted(param_space):
        spec = param_space[name]
        if isinstance(spec, (list, np.ndarray)):
            raise ValueError(
                f"param_space[{name!r}] is a list of values (a grid); BilevelSearchCV searches a continuous "
                "range: give (low, high), (low, high, 'linear') or a scipy.stats frozen distribution, or "
                "pass the lists as param_grid="
            )
        if isinstance(spec, _GridValues):
            dims.append(_from_values(name, spec.values))
        else:
            dims.append(_from_tuple(name, spec) if isinstance(spec, tuple) else _from_distribution(name, spec))
    return dims


@dataclass(frozen=True)
class _GridValues:
    """A ``param_grid`` list in a ``param_space``: the values it spans."""

    values: tuple


def _from_values(name, values) -> Dimension:
    low, high = min(values), max(values)
    scale = "log" if low > 0 else "linear"
    dim = _from_tuple(name, (low, high, scale))
    return Dimension(dim.name, dim.scale, dim.low, dim.high, None, dim.low_value, dim.high_value,
                     tuple(sorted(dim.to_x(v) for v in values)))


def resolve_param_space(param_space, param_grid):
    """The ``param_space`` to search and the parameters held fixed, from BilevelSearchCV's ``param_space``
    or ``param_grid`` (exactly one of them).

    ``param_grid`` is what a GridSearchCV user writes, ``{name: list of
    values}`` (or a one-element list of such a dict): a list of numbers
    spans the continuous range ``[min, max]``, on a log scale when every
    value is positive, else on a linear one, and the initial grid takes its
    points among the values; a list of one value (of any type) holds the
    parameter at it. A list of several non-numeric values is refused: it is
    not a continuous range.

    Returns
    -------
    space : dict
        For :func:`parse_param_space`.
    fixed : dict
        ``{name: value}`` of the one-value lists (``{}`` for a ``param_space``).
    """
    if (param_space is None) == (param_grid is None):
        raise ValueError("BilevelSearchCV needs exactly one of param_space ({name: (low, high)}) and param_grid "
                         f"({{name: list of values}}); got param_space={param_space!r}, param_grid={param_grid!r}")
    if param_grid is None:
        return param_space, {}
    grid = param_grid
    if isinstance(grid, (list, tuple)) and len(grid) == 1:
        grid = grid[0]
    if not isinstance(grid, dict) or not grid:
        raise ValueError("param_grid must be a non-empty dict {name: list of values} (one dict: a list of "
                         "several grids is a GridSearchCV search over separate grids, which a continuous "
                         f"search cannot merge); got {param_grid!r}")
    space, fixed = {}, {}
    for name, values in grid.items():
        if isinstance(values, str) or not hasattr(values, "__len__") or len(values) == 0:
            raise ValueError(f"param_grid[{name!r}] must be a non-empty list of values; got {values!r}")
        values = list(values)
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        if len(set(map(repr, values))) == 1:
            fixed[name] = values[0]
        elif not numeric:
            raise ValueError(
                f"param_grid[{name!r}] = {values!r}: BilevelSearchCV searches continuous ranges, and these "
                "values are not numbers. Search them with GridSearchCV (a BilevelSearchCV per value, or "
                "GridSearchCV around it), or fix the parameter with a one-value list.")
        else:
            space[name] = _GridValues(tuple(float(v) for v in values))
    if not space:
        raise ValueError(f"param_grid {param_grid!r} holds every parameter at one value: nothing to search. "
                         "Give at least one parameter a list of several numbers.")
    return space, fixed


def initial_grid(dims: list[Dimension], per_dimension: int) -> np.ndarray:
    """The coarse grid scanned before the descent, as rows of ``x``, in snake order.

    Consecutive points are neighbours (every other row of the product is
    reversed), so that each lower-level solve is warm started from a nearby
    solution.
    """
    points = [[]]
    for d in dims:
        values = d.grid(per_dimension)
        points = [p + [v] for i, p in enumerate(points) for v in (values if i % 2 == 0 else values[::-1])]
    return np.array(points, dtype=float)
