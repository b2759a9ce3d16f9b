"""Shared infrastructure of the test suite: the one finite-difference helper.

Analytic derivatives (gradients, hypergradients, Hessian-vector and cross products, vector-Jacobian
products of the LMEs) are checked against central differences, as scikit-learn checks its losses
(``sklearn/linear_model/tests/test_linear_loss.py``). Every check goes through the two functions
below, so that the rule is written once. The step ``h`` defaults to ``1e-6`` (closed forms); call sites
pass ``h=1e-5`` on most functions that first solve a lower-level problem, whose solver error is divided
by ``2 h``.

Tests import them as ``from conftest import fd_gradient, fd_directional``: ``tests/`` is not a
package and holds the repository's only ``conftest.py``, and pytest's default (prepend) import mode
puts ``tests/`` on ``sys.path``, as it does for ``tests/_search_helpers.py``. Under
``--import-mode=importlib`` the import gives a second copy of these pure functions, which is harmless.

Long checks carry ``@pytest.mark.slow`` (declared in ``pyproject.toml``); the default run
(``python -m pytest -q``) leaves them out, ``python -m pytest -q -m slow`` (run by ``.ci/run``) runs
them. A check is marked slow only when a faster test checks the same property.
"""

import numpy as np


def fd_directional(fun, x, direction, h=1e-6):
    """Central difference of ``fun`` at ``x`` along ``direction``.

    ``(fun(x + h d) - fun(x - h d)) / (2 h)``: the directional derivative ``J(x) d`` of a scalar or
    vector function, with an error ``O(h^2)`` plus the rounding error of ``fun`` divided by ``2 h``.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float or ndarray``.
    x, direction : ndarray
        The point and the direction ``d`` (not normalised: the result scales with it).
    h : float, default=1e-6
        The step.

    Returns
    -------
    float or ndarray
        ``J(x) d``, of the shape of ``fun(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> fd = fd_directional(lambda z: z ** 3, np.array([1.0, 2.0]), np.array([1.0, 0.5]), h=1e-6)
    >>> np.allclose(fd, [3.0, 6.0])
    True
    """
    return (fun(x + h * direction) - fun(x - h * direction)) / (2 * h)


def fd_gradient(fun, x, h=1e-6):
    """Gradient of a scalar function by central differences along each coordinate.

    ``g_i = (fun(x + h e_i) - fun(x - h e_i)) / (2 h)``, one :func:`fd_directional` per unit vector
    ``e_i``: ``2 n`` evaluations of ``fun`` for ``x`` of size ``n``.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float``.
    x : array-like of shape (n,)
        The point.
    h : float, default=1e-6
        The step.

    Returns
    -------
    ndarray of shape (n,)
        The gradient of ``fun`` at ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> g = fd_gradient(lambda z: z @ z + z[0] * z[1], np.array([1.0, -2.0]), h=1e-6)
    >>> np.allclose(g, [2 * 1.0 - 2.0, 2 * -2.0 + 1.0])
    True
    """
    x = np.asarray(x, dtype=float)
    return np.array([fd_directional(fun, x, e, h) for e in np.eye(x.size)])
