"""casadi, the optional dependency behind ``solver='ipopt'``: its import and its matrices.

casadi (Andersson et al., 2019) writes a program as expressions and derives
their exact sparse derivatives; its wheel ships the IPOPT solver. The problems
that IPOPT can solve write their values with it (``symbolic_value``), and
:mod:`skbilevel.methods._ipopt` builds the programs.
"""

from __future__ import annotations

import scipy.sparse as sp


def import_casadi():
    """The ``casadi`` module, or an ``ImportError`` that names the extra to install."""
    try:
        import casadi
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("solver='ipopt' needs casadi, whose wheel ships the IPOPT solver: "
                          "pip install 'skbilevel[ipopt]' (or pip install casadi).") from exc
    return casadi


def sparse_dm(ca, matrix):
    """A scipy sparse or dense matrix as a casadi ``DM`` with the same sparsity pattern."""
    csc = sp.csc_matrix(matrix)
    csc.sort_indices()
    pattern = ca.Sparsity(csc.shape[0], csc.shape[1], csc.indptr.tolist(), csc.indices.tolist())
    return ca.DM(pattern, csc.data.astype(float))
