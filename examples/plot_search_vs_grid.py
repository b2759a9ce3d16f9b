"""
==================================================
BilevelSearchCV and GridSearchCV on an RBF SVC
==================================================

:class:`~skbilevel.BilevelSearchCV` has the interface of
:class:`~sklearn.model_selection.GridSearchCV`, but instead of a list of
values per hyperparameter it takes a range, ``(low, high)``, and searches it
by descending the gradient of the cross-validation loss with respect to the
hyperparameters (obtained by implicit differentiation of each fold's
training problem). It evaluates a few dozen points where a grid fine enough
to find the same optimum evaluates a hundred.

This example tunes ``C`` and ``gamma`` of an RBF :class:`~sklearn.svm.SVC`
in a :class:`~sklearn.pipeline.Pipeline` with a
:class:`~sklearn.preprocessing.StandardScaler`, on the breast cancer data,
with the same 5 folds for both searches, and draws the points the bilevel
search evaluated on the contour of the grid's CV accuracy.
"""

# %%
# The two searches
# ----------------
# Both score by accuracy (the estimator's default ``score``) and refit the
# best point. ``param_space`` ranges of the form ``(low, high)`` are searched
# on a log scale, like the grid's ``np.logspace``.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skbilevel import BilevelSearchCV
from skbilevel.plotting import plot_search_path

X, y = load_breast_cancer(return_X_y=True)
pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
cv = StratifiedKFold(5, shuffle=True, random_state=0)

start = time.perf_counter()
search = BilevelSearchCV(pipe, {"svc__C": (1e-2, 1e3), "svc__gamma": (1e-4, 1.0)}, cv=cv,
                         random_state=0)
search.fit(X, y)
bilevel_time = time.perf_counter() - start

C_grid, gamma_grid = np.logspace(-2, 3, 11), np.logspace(-4, 0, 9)
start = time.perf_counter()
grid = GridSearchCV(pipe, {"svc__C": C_grid, "svc__gamma": gamma_grid}, cv=cv).fit(X, y)
grid_time = time.perf_counter() - start

n_bilevel, n_grid = len(search.cv_results_["params"]), len(grid.cv_results_["params"])
print(f"BilevelSearchCV: {n_bilevel} points, {bilevel_time:.1f} s, best {search.best_params_}, "
      f"CV accuracy {search.best_score_:.4f}")
print(f"GridSearchCV:    {n_grid} points, {grid_time:.1f} s, best {grid.best_params_}, "
      f"CV accuracy {grid.best_score_:.4f}")

# %%
# The path on the CV accuracy surface
# -----------------------------------
# The filled contour is the grid's mean CV accuracy (``cv_results_`` of
# ``GridSearchCV`` reshaped to its 11 x 9 grid: ``ParameterGrid`` varies the
# last name, ``svc__gamma``, fastest); its points are the small white dots.
# :func:`~skbilevel.plotting.plot_search_path` then draws the bilevel
# search's points on the same axes, coloured on the same scale: the 3 x 3
# initial grid (squares), the hypergradient descent (circles, the triangle
# marks where it started) and the compass refinement of the accuracy
# (diamonds), joined in evaluation order, the best point starred. Both axes
# are logarithmic because both ranges were searched on a log scale.
scores = grid.cv_results_["mean_test_score"].reshape(C_grid.size, gamma_grid.size)
vmin, vmax = 0.9, max(scores.max(), search.best_score_)
fig, ax = plt.subplots(figsize=(8, 6))
contour = ax.contourf(C_grid, gamma_grid, scores.T, levels=np.linspace(vmin, vmax, 12),
                      cmap="viridis", extend="min", alpha=0.7)
C_points, gamma_points = np.meshgrid(C_grid, gamma_grid)
ax.scatter(C_points, gamma_points, s=6, color="w", edgecolors="0.3", linewidths=0.4,
           label=f"GridSearchCV ({n_grid} points, {grid_time:.1f} s)")
plot_search_path(search, ax=ax, vmin=vmin, vmax=vmax)
ax.set_title(f"BilevelSearchCV: {n_bilevel} points, {bilevel_time:.1f} s, "
             f"CV accuracy {search.best_score_:.4f}\n"
             f"GridSearchCV: {n_grid} points, {grid_time:.1f} s, "
             f"CV accuracy {grid.best_score_:.4f}")
ax.set_xlabel("C")
ax.set_ylabel("gamma")
_ = ax.legend(loc="lower left", fontsize="small")

# %%
# What to look for
# ----------------
# The accuracy is high in a diagonal band (a larger ``C`` wants a smaller
# ``gamma``) and falls off sharply at large ``gamma`` and small ``C``. The
# initial 3 x 3 grid lands one point in the band; the descent starts there
# and walks up the band a short way, to the minimum of the smooth surrogate
# it descends (the squared hinge loss on the validation folds, the
# ``validation_loss`` column of ``cv_results_``); the refinement then
# probes the piecewise constant accuracy around the best-scoring point on
# a shrinking cross. Both searches end on the flat top, at different
# points and within a sample or two of each other in CV accuracy (the
# titles); the bilevel search with a third of the evaluations. The contour
# comes from the grid search: the bilevel search knows only the points it
# evaluated, which is why its ``cv_results_`` has
# one row per evaluated point rather than a full grid.
plt.show()
