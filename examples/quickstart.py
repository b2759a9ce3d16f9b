"""BilevelSVC against GridSearchCV(LinearSVC) on breast cancer with 20% of training labels flipped.

Run: ``python examples/quickstart.py``. Prints test accuracy and fit time of both.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skbilevel import BilevelSVC


def main(seed: int = 0) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    flip = rng.choice(y_tr.size, size=y_tr.size // 5, replace=False)
    y_noisy = y_tr.copy()
    y_noisy[flip] = 1 - y_noisy[flip]

    models = {
        "BilevelSVC(learn='C')": make_pipeline(StandardScaler(), BilevelSVC(learn="C", random_state=seed)),
        "GridSearchCV(LinearSVC, 17 C, 5-fold)": GridSearchCV(
            make_pipeline(StandardScaler(), LinearSVC()), {"linearsvc__C": np.logspace(-4, 4, 17)}, cv=5),
    }
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_tr, y_noisy)
        elapsed = time.perf_counter() - start
        print(f"{name:40s} test accuracy {model.score(X_te, y_te):.4f}   fit time {elapsed:6.2f} s")


if __name__ == "__main__":
    main()
