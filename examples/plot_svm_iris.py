"""
==========================================================
Per-sample weights on Fisher's Iris: setosa vs virginica
==========================================================

The second experiment of Huang et al. (2025) (Figure 2): a linear
:class:`~skbilevel.BilevelSVC` separating *setosa* from *virginica* with the
last two features of the Iris data (petal length and width), one learned
weight per training sample, the data split 60% train, 10% validation, 30%
test. The two species are far apart in this plane, so the point of the
figure is the margin: which training samples the learned weights make
count.
"""

# %%
# Split and fit
# -------------
# The split is stratified; the validation part is passed as ``X_val``,
# ``y_val``. Without it, ``BilevelSVC`` would hold out
# ``validation_fraction`` of ``X`` itself (``train_indices_`` and
# ``validation_indices_`` record which rows), and
# :func:`~skbilevel.plotting.plot_sample_weights` would select the
# training rows of the ``X`` given to it.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from skbilevel import BilevelSVC
from skbilevel.plotting import plot_sample_weights

iris = load_iris()
keep = np.isin(iris.target, (0, 2))
X, y = iris.data[keep][:, 2:], iris.target_names[iris.target[keep]]
rest, test = train_test_split(np.arange(y.size), test_size=30, stratify=y, random_state=0)
train, val = train_test_split(rest, test_size=10, stratify=y[rest], random_state=0)

clf = BilevelSVC(random_state=0).fit(X[train], y[train], X_val=X[val], y_val=y[val])
print(f"test accuracy {clf.score(X[test], y[test]):.3f}, {clf.n_iter_} iterations of {clf.method_}")
print("learned weights: min {:.3g}, median {:.3g}, max {:.3g}".format(
    clf.sample_weight_.min(), np.median(clf.sample_weight_), clf.sample_weight_.max()))

# %%
# The decision line and the weights
# ---------------------------------
# On the left, marker area is proportional to the learned weight ``e^{c_i}``
# (the legend's markers have weight 1); the solid line is ``w^T x + b = 0``,
# the dashed ones the margins ``w^T x + b = +-1``; the test points are
# added as small black crosses. On the right, each training sample's
# learned weight against its margin ``y_i (w^T x_i + b)``.
fig, (ax, ax_w) = plt.subplots(1, 2, figsize=(11, 4.5),
                               gridspec_kw={"width_ratios": [1.4, 1]})
plot_sample_weights(clf, X[train], y[train], ax=ax)
ax.scatter(X[test, 0], X[test, 1], marker="x", color="k", s=20, linewidths=0.8)
ax.set_xlabel("petal length (cm)")
ax.set_ylabel("petal width (cm)")
ax.set_title(f"BilevelSVC on Iris: test accuracy {clf.score(X[test], y[test]):.2f}")

sign = np.where(y[train] == clf.classes_[1], 1.0, -1.0)
margin = sign * clf.decision_function(X[train])
ax_w.axvline(1.0, color="0.6", linestyle="--", label="margin = 1")
for k, label in enumerate(clf.classes_):
    rows = y[train] == label
    ax_w.scatter(margin[rows], clf.sample_weight_[rows], color=f"C{k}", marker="o*"[k], label=label)
ax_w.set_xlabel("margin $y_i (w^T x_i + b)$")
ax_w.set_ylabel("learned weight $e^{c_i}$")
ax_w.legend()
ax_w.set_title("weights move only inside the margin")
fig.tight_layout()

# %%
# What to look for
# ----------------
# The squared-hinge SVM only feels the weight of a sample whose slack is
# positive, that is whose margin ``y_i (w^T x_i + b)`` is below 1: for the
# others, changing ``e^{c_i}`` does not move the line, the hypergradient of
# their weight is zero and they keep their starting weight 1 (right). The
# few samples inside the margin, those nearest the other species, are the
# ones the upper level re-weights: here it lowers them, most of all for the
# virginica flower closest to the setosa cloud, which lets the line sit
# where the validation loss (a sigmoid of the signed distance of the
# validation points to the line) is smallest. The two species are far apart
# and, as in the paper, all test points are classified correctly. The method
# stopped after two iterations: the validation loss is flat here, as the
# paper's tiny runtimes on this data also suggest.
plt.show()
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_svm_iris.png"
