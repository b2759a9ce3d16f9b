"""Per-sample datafits: a loss of a model's decision values against fixed targets.

A datafit ``ell(D, t)`` sees only the decision values ``D`` of a model on the
samples (shape ``(n,)`` for one output, ``(n, K)`` for ``K``) and the
targets it was built with. It gives

* :meth:`~Datafit.loss`: the loss of every entry of ``D`` (of every row, for
  the multinomial loss, which couples the ``K`` outputs of a sample);
* :meth:`~Datafit.raw_grad`: its derivative in ``D``, same shape as ``D``;
* :meth:`~Datafit.curvature`: its second derivative in ``D``, weighted per
  sample, as ``diag(d_i) - u_i u_i^T`` for each sample ``i``.

The model (how ``D`` depends on the parameters, the penalty, the sample
weights) stays with the lower or upper level that uses the datafit, as
skglm separates datafits from penalties: the squared-hinge SVM, the softmax
regression of hyper-cleaning, the linear classifiers of the search and every
validation loss evaluate their losses here.

* :class:`Logistic`: ``log(1 + exp(-t d))`` with ``t = +-1``; logistic
  regression with two classes, validation losses;
* :class:`SquaredHinge`: ``max(0, 1 - t d)^2`` with ``t = +-1``; the SVMs,
  validation losses;
* :class:`Multinomial`: ``logsumexp(d) - d . y`` with one-hot ``y``; the
  softmax regression and network of hyper-cleaning, multinomial logistic
  regression, the validation cross-entropy;
* :class:`Squared`: ``(d - t)^2``; ridge regression, validation of regressors.

Each expression is written here in the arithmetic its callers have always
used, so that rewiring a caller leaves its numbers unchanged to the last
bit; this is why the multinomial Hessian has two forms, a product with a
direction (:meth:`Multinomial.hessian_product`, for Hessian-vector products)
and weighted factors (:meth:`Multinomial.curvature`, from which a dense
Hessian is assembled).

References
----------
.. [1] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
   "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
   the separation of datafits from penalties.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit


class Datafit:
    """A loss of decision values ``D`` against the targets held by the datafit.

    Subclasses implement :meth:`loss`, :meth:`raw_grad` and, where a model
    needs its Hessian, :meth:`curvature`.

    References
    ----------
    .. [1] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
       "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
       datafits as objects with a value and derivatives in ``X w``.

    Examples
    --------
    A one-vs-rest squared hinge sums its columns into the loss of a sample:

    >>> import numpy as np
    >>> from skbilevel.problems.datafits import SquaredHinge
    >>> fit = SquaredHinge(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    >>> fit.sample_loss(np.zeros((2, 2)))
    array([2., 2.])
    """

    def loss(self, D):
        """Return the loss of each entry of ``D`` (each row for a coupled loss)."""
        raise NotImplementedError

    def raw_grad(self, D):
        """Return ``d loss / d D``, the shape of ``D``."""
        raise NotImplementedError

    def loss_and_raw_grad(self, D):
        """Return ``(loss(D), raw_grad(D))``."""
        return self.loss(D), self.raw_grad(D)

    def sample_loss(self, D):
        """Return the loss of each sample: :meth:`loss` summed over the outputs of a row."""
        loss = self.loss(D)
        return loss.sum(axis=1) if loss.ndim == 2 else loss

    def curvature(self, D, weights):
        """Return ``(d, u)``: the Hessian of ``sum_i weights_i loss_i`` in ``D_i`` is ``diag(d_i) - u_i u_i^T``.

        ``u`` is None for a loss that is separable over the entries of ``D``.
        """
        raise NotImplementedError


class Logistic(Datafit):
    """Logistic loss ``log(1 + exp(-t_i d_i))`` of labels ``t_i = +-1``.

    Parameters
    ----------
    t : array of shape (n,)
        The labels, ``-1`` or ``+1``.

    References
    ----------
    .. [1] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
       "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
       the logistic datafit (its ``Logistic``).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems.datafits import Logistic
    >>> fit = Logistic(np.array([1.0, -1.0]))
    >>> np.round(fit.loss(np.array([0.0, 0.0])), 4), fit.raw_grad(np.array([0.0, 0.0]))
    (array([0.6931, 0.6931]), array([-0.5,  0.5]))
    """

    def __init__(self, t):
        self.t = t

    def loss(self, D):
        return -log_expit(self.t * D)

    def raw_grad(self, D):
        return -self.t * expit(-(self.t * D))

    def loss_and_raw_grad(self, D):
        m = self.t * D  # the margins, computed once
        return -log_expit(m), -self.t * expit(-m)

    def curvature(self, D, weights):
        return weights * expit(D) * expit(-D), None


class SquaredHinge(Datafit):
    """Squared hinge ``max(0, 1 - t d)^2`` of labels ``t = +-1`` (one column per one-vs-rest problem).

    Parameters
    ----------
    t : array of shape (n,) or (n, K)
        The labels, ``-1`` or ``+1`` (a column per one-vs-rest problem).

    References
    ----------
    .. [1] L. Huang, J. Nie, J. Wang, S. Zhong, "Bilevel Optimization for
       Hyperparameter Learning in Supporting Vector Machines", 2025: the
       squared slacks of the SVM of section 4, whose optimal values are
       :meth:`residual`.
    .. [2] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
       "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
       the datafit interface.

    Examples
    --------
    The residual ``max(0, 1 - t d)`` is the slack ``xi`` of the SVM's
    constrained form:

    >>> import numpy as np
    >>> from skbilevel.problems.datafits import SquaredHinge
    >>> fit = SquaredHinge(np.array([1.0, -1.0, 1.0]))
    >>> D = np.array([2.0, 0.5, 0.0])
    >>> fit.residual(D), fit.loss(D), fit.raw_grad(D)
    (array([0. , 1.5, 1. ]), array([0.  , 2.25, 1.  ]), array([-0.,  3., -2.]))
    """

    def __init__(self, t):
        self.t = t

    def residual(self, D):
        """Return ``max(0, 1 - t D)``."""
        return np.maximum(0.0, 1.0 - self.t * D)

    def loss(self, D):
        return self.residual(D) ** 2

    def raw_grad(self, D):
        return -2.0 * self.t * self.residual(D)

    def curvature(self, D, weights):
        # the generalised Hessian: 2 on the margin violators (the map has a kink at margin 1)
        return 2.0 * weights * (self.t * D < 1.0), None


class Squared(Datafit):
    """Squared error ``(d - t)^2``.

    Parameters
    ----------
    t : array of shape (n,) or (n, K)
        The targets.

    References
    ----------
    .. [1] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias,
       "Beyond L1: Faster and Better Sparse Models with skglm", NeurIPS 2022:
       the quadratic datafit (its ``Quadratic``, there halved).

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems.datafits import Squared
    >>> Squared(np.array([1.0, 2.0])).raw_grad(np.array([1.5, 1.0]))
    array([ 1., -2.])
    """

    def __init__(self, t):
        self.t = t

    def loss(self, D):
        return (D - self.t) ** 2

    def raw_grad(self, D):
        return 2.0 * (D - self.t)

    def curvature(self, D, weights):
        return 2.0 * weights * np.ones_like(D), None


class Multinomial(Datafit):
    """Softmax cross-entropy ``logsumexp(d_i) - d_i^T y_i`` of label rows ``y_i`` (one-hot).

    The loss of a sample couples its ``K`` decision values: :meth:`loss` has
    one entry per row, and the Hessian of a row is
    ``diag(p_i) - p_i p_i^T`` with ``p_i = softmax(d_i)``.

    Parameters
    ----------
    Y : array of shape (n, K)
        The labels as rows (one-hot).

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the cross-entropy of section 4.1, the training loss
       of the reweighting problem (4.2) and the validation loss of a
       classifier.

    Examples
    --------
    At equal logits the loss is ``log K`` and the gradient ``1/K - y``:

    >>> import numpy as np
    >>> from skbilevel.problems.datafits import Multinomial
    >>> fit = Multinomial(np.eye(3)[[0, 2]])
    >>> D = np.zeros((2, 3))
    >>> bool(np.allclose(fit.loss(D), np.log(3))), np.round(fit.raw_grad(D), 3)
    (True, array([[-0.667,  0.333,  0.333],
           [ 0.333,  0.333, -0.667]]))
    """

    def __init__(self, Y):
        self.Y = Y

    @classmethod
    def from_indices(cls, t, n_classes):
        """The datafit of integer class indices ``t`` (one-hot rows)."""
        Y = np.zeros((len(t), n_classes))
        Y[np.arange(len(t)), t] = 1.0
        return cls(Y)

    @staticmethod
    def _shifted_softmax(D):
        """``(Z, P, norm)``: ``Z = D - max_k D`` row by row (no overflow), ``P = softmax(D)`` and the row sums
        ``norm`` of ``exp(Z)`` (``log norm - Z`` is the cross-entropy of each class). Hand-written: the
        multinomial solvers spend most of an iteration here, and scipy's ``log_softmax`` takes about
        half as long again on a few classes."""
        Z = D - D.max(axis=1, keepdims=True)
        P = np.exp(Z)
        norm = P.sum(axis=1)
        P /= norm[:, None]
        return Z, P, norm

    def probabilities(self, D):
        """Return ``softmax(D)`` row by row."""
        return self._shifted_softmax(D)[1]

    def loss(self, D):
        Z, _, norm = self._shifted_softmax(D)
        return np.log(norm) - np.einsum("ij,ij->i", Z, self.Y)

    def raw_grad(self, D):
        return self.probabilities(D) - self.Y

    def loss_and_raw_grad(self, D):
        """Both from one softmax pass."""
        Z, P, norm = self._shifted_softmax(D)
        P -= self.Y
        return np.log(norm) - np.einsum("ij,ij->i", Z, self.Y), P

    @staticmethod
    def hessian_product(P, V):
        """Rows of ``(diag(p_i) - p_i p_i^T) v_i``: the Hessian of each row applied to ``V``."""
        PV = P * V
        return PV - P * PV.sum(axis=1, keepdims=True)

    def curvature(self, D, weights):
        P = self.probabilities(D)
        return weights[:, None] * P, np.sqrt(weights)[:, None] * P


def validation_datafit(kind, t, D):
    """The datafit ``kind`` for encoded targets ``t`` and decision values shaped like ``D``.

    One decision value per sample: ``t`` holds regression targets (``'squared'``)
    or the labels ``+-1``. ``K`` values per sample: ``t`` holds class indices,
    read one-vs-rest (``+-1`` per column) for ``'squared'`` and
    ``'squared_hinge'``, and as one-hot rows for ``'log'`` (the multinomial
    loss).

    Parameters
    ----------
    kind : {'squared', 'log', 'squared_hinge'}
        The loss.
    t : array of shape (n,)
        Encoded targets.
    D : array of shape (n,) or (n, K)
        Decision values (only their shape is read).

    Returns
    -------
    Datafit

    References
    ----------
    .. [1] R. Grazzi, M. Pontil, S. Salzo, A. Zemkoho, "Bilevel Learning"
       (survey), 2026: the validation objective ``F`` of (4.1), section 4.1.

    Examples
    --------
    >>> import numpy as np
    >>> from skbilevel.problems.datafits import validation_datafit
    >>> validation_datafit("squared_hinge", np.array([2, 0]), np.zeros((2, 3))).t
    array([[-1., -1.,  1.],
           [ 1., -1., -1.]])
    """
    if D.ndim == 1:
        return {"squared": Squared, "log": Logistic, "squared_hinge": SquaredHinge}[kind](t)
    if kind == "log":
        return Multinomial.from_indices(t, D.shape[1])
    sign = -np.ones_like(D)
    sign[np.arange(len(t)), t] = 1.0  # one-vs-rest targets
    return Squared(sign) if kind == "squared" else SquaredHinge(sign)
