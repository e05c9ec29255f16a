"""What the same rows allow: a linear model and a nearest-neighbour one, fitted by scikit-learn on
the rows diagnose() reads and scored under the run's own loss.

A practitioner's first two questions about a network that will not train are "does a linear fit
of these rows do better?" and "does y depend on X at all?". Two numbers answer them:
``linear_cv`` and ``neighbours_cv``, a linear model (ridge for regression, logistic regression
for classes and 0/1 targets) and a k-nearest-neighbour one, each scored on rows it did not see:
the linear one on the rows of a fold it was not fitted on (k-fold cross-validated predictions),
the neighbours on each row from the other rows (leave-one-out). A fit scored on its own rows is
not kept: it would cost a fit more and says nothing the held-out one does not.

Each reference works on standardised inputs, so it is not hurt by the unscaled inputs that hurt
the network. The rows are scaled once, by all of their statistics (a mean and a spread per
column: what a fold's test rows add to them is negligible beside the gaps measured). On small
nets the call itself takes a few milliseconds and scikit-learn's fixed cost per fit
(~1.5 ms) is most of the reference's: fits are kept few. Custom losses get no reference.
"""

from __future__ import annotations

import hashlib
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from diagnostics.losses import CLASS_INDEX_LOSSES, KINDS, REGRESSION_LOSSES

REFERENCE_ROWS = 2000   # rows the references fit at most; more rows change no verdict
REFERENCE_CELLS = 800_000   # ...and rows x columns at most: the logistic fits' cost grows with
                        # both. With it (1020 rows of 784), the path stopping early and no
                        # in-sample fit, the reference took 0.23-0.24 s beside a 0.67-3.4 s
                        # diagnose() on a 987k-parameter net (1.1-1.3 s of ~2 s before)
MIN_ROWS = 30           # fewer rows than this make 3 folds of under 10 rows: no reference
FOLDS = 3               # held-out linear predictions for every row at 3 fits a penalty
NEIGHBOURS = 15         # k, large enough to average label noise...
NEIGHBOUR_SHARE = 30    # ...but at most 1/30 of the rows (1/20 of a fold's): on 41 points of a sine
                        # (2 periods) k = 15 spans most of a period and scores 1.3x a constant,
                        # k = 1 scores 0.21
PRIOR_WEIGHT = 0.2      # neighbour class shares are mixed 80/20 with the class prior, so a class
                        # absent among the 15 neighbours costs log(1/(0.2 p)), not infinity
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)   # ridge picks its penalty by leave-one-out (closed
                        # form, ~free): with rows few against the columns alpha 1 overfits
PENALTIES = (0.01, 0.1, 1.0)   # logistic C, strongest first, the held-out folds choose: on 2000
                        # rows of 784 inputs (a linear teacher, 10 classes) C=1 overfits to a
                        # held-out loss of 2.32 (the constant's 2.30) at accuracy 0.36, C=0.01
                        # reaches 1.79; the path stops where the held-out loss stops falling
MANY_ROWS = 20          # training rows per coefficient from which only the weakest penalty is
                        # fitted (3 fits, not up to 9), at TOL_MANY: there it scored within 0.6%
                        # of the path's best on every fault-matrix set, labels shuffled included
                        # (circles, 133 a coefficient: 0.6974 vs 0.6964, shuffled 0.7029 vs
                        # 0.6991; blobs 33 and a 2-input teacher 30: equal); below it (digits
                        # 1.8, wine 2.8, iris 6.7, breast_cancer 12) the path runs, as shuffled
                        # digits need: C=1 2.59, the path 2.33 (the constant's 2.30)
MAX_ITER = 300          # lbfgs iterations: digits converges in ~100; 300 leaves margin, since a
                        # fit stopped short makes the reference weaker (unpredictable-targets
                        # reads a weak reference as y not depending on X)
TOL = 1e-4              # lbfgs' tolerance (scikit-learn's default)...
TOL_MANY = 1e-3         # ...and where rows are many per coefficient, a well-determined fit: there
                        # it moved the held-out loss by <= 0.15% (teacher 0.1374 -> 0.1375, moons,
                        # circles, blobs <= 0.02%) and saved ~1.5 of ~7 ms (on digits, 1.8 rows a
                        # coefficient, it would cost 2.3%: the path keeps TOL)
SEED = 0                # the fold split and the row subsample: the same every call
BLAS_THREADS = 1        # the fits' matrix products are small (<= 800 000 cells): a second BLAS
                        # thread gains nothing, and on a busy machine (a test run's workers) it
                        # waits for a core: digits' reference took 1055 ms with numpy's threads
                        # beside another process, 172 ms with one...
THREADED_CELLS = 10_000 # ...from this many cells of X: under it no product is large enough to
                        # thread, and setting the limit costs 0.6-0.9 ms (2-16-3 net, 400 x 2
                        # rows: 10.2 ms with it, 9.3 without)
QUICK = dict(assume_finite=True,            # X and y were checked finite on the way in, and the
             skip_parameter_validation=True)  # estimators' parameters are this module's: ~10%
PROB_EPS = 1e-7         # probabilities clipped off 0 and 1 before the log
REMEMBERED_MAX = 16     # row sets whose predictions are kept (the last ones fitted): at most
                        # 2 x 2000 x 10 floats each (~0.3 MB), a test session's few data sets
REMEMBERED: dict = {}   # (digest of X, of y, the loss's kind, width) -> (cv, neighbours)


@dataclass(frozen=True)
class Reference:
    """Losses under the run's loss: the constant predictor's and the two references'."""
    constant: float
    linear_cv: float
    neighbours_cv: float
    rows: int
    k: int                  # the neighbours each nearest-neighbour prediction averages

    def as_evidence(self) -> dict:
        return {"constant_predictor_loss": round(self.constant, 6),
                "linear_cv_loss": round(self.linear_cv, 6),
                "neighbours_cv_loss": round(self.neighbours_cv, 6), "reference_rows": self.rows,
                "neighbours": self.k}


def reference_of(X: np.ndarray, y: np.ndarray, loss_name: str, width: int,
                 constant: float, score=None, y_score=None) -> Reference | None:
    """The references for these rows, or None for a custom loss or too few rows. ``score(pred,
    y_score)`` scores the predictions when the loss is not the plain numpy one of ``scorer``
    (options such as label_smoothing, soft targets ``y_score`` beside their classes ``y``)."""
    if loss_name not in KINDS or len(X) < MIN_ROWS:   # a custom loss: no kind, no reference
        return None
    if loss_name in CLASS_INDEX_LOSSES and np.ndim(y) != 1:   # soft targets: no classes to fit
        return None
    X, y, y_score = rows_for_reference(X, y, y if y_score is None else y_score)
    cv, near = remembered_predictions(X, y, loss_name, width)
    score = score or scorer(loss_name)
    return Reference(constant, score(cv, y_score), score(near, y_score),
                     len(X), neighbours_for(len(X)))


def remembered_predictions(X: np.ndarray, y: np.ndarray, loss_name: str, width: int) -> tuple:
    """The held-out predictions for these rows, fitted once: they depend on the rows, the
    targets, the loss's kind and the output width only, never on the model, so diagnosing
    several models on the same rows (a test suite's runs, the fault matrix's mutants) fits the
    references once. The key is a digest of the arrays' bytes; each call gets its own copies."""
    key = (digest(X), digest(y), KINDS[loss_name], width)
    if key not in REMEMBERED:
        REMEMBERED[key] = fitted_predictions(X, y, loss_name, width)
        while len(REMEMBERED) > REMEMBERED_MAX:
            REMEMBERED.pop(next(iter(REMEMBERED)))
    return tuple(p.copy() for p in REMEMBERED[key])


def digest(a: np.ndarray) -> tuple:
    a = np.ascontiguousarray(a)
    return a.shape, a.dtype.str, hashlib.blake2b(a.view(np.uint8).reshape(-1),
                                                 digest_size=16).digest()


def fitted_predictions(X: np.ndarray, y: np.ndarray, loss_name: str, width: int) -> tuple:
    with warnings.catch_warnings(), np.errstate(all="ignore"), sklearn.config_context(**QUICK), \
            blas_threads_for(X):
        warnings.simplefilter("ignore")   # convergence and one-class-fold notes change nothing
        return predictions(StandardScaler().fit_transform(X), y, loss_name, width)


def blas_threads_for(X: np.ndarray):
    """BLAS_THREADS for the fits on rows large enough to thread, else BLAS as it is."""
    return threadpool_limits(limits=BLAS_THREADS) if X.size >= THREADED_CELLS else nullcontext()


def rows_for_reference(X: np.ndarray, y: np.ndarray, y_score: np.ndarray) -> tuple:
    rows = max(MIN_ROWS, min(REFERENCE_ROWS, REFERENCE_CELLS // max(X.shape[1], 1)))
    if len(X) <= rows:
        return X, y, y_score
    keep = np.sort(np.random.default_rng(SEED).choice(len(X), rows, replace=False))
    return X[keep], y[keep], y_score[keep]


def predictions(X, y, loss_name: str, width: int) -> tuple:
    """(held-out linear, held-out neighbours) predictions on standardised X: values for
    regression, class probabilities (n, width) for class indices, P(1) per column for 0/1."""
    if loss_name in REGRESSION_LOSSES:
        return regression_predictions(X, y)
    if loss_name in CLASS_INDEX_LOSSES:
        return class_predictions(X, y, width)
    cols = [class_predictions(X, (y[:, j] > 0.5).astype(np.int64), 2) for j in range(y.shape[1])]
    return tuple(np.stack([c[i][:, 1] for c in cols], axis=1) for i in range(2))


def neighbours_for(n: int) -> int:
    """k for n rows."""
    return int(np.clip(n // NEIGHBOUR_SHARE, 1, NEIGHBOURS))


def folds():
    return KFold(FOLDS, shuffle=True, random_state=SEED)   # shuffled: sorted rows stay fair


def nearest_others(X) -> np.ndarray:
    """(n, k): each row's k nearest other rows (kneighbors of the fitted rows leaves each out)."""
    return NearestNeighbors(n_neighbors=neighbours_for(len(X))).fit(X).kneighbors(
        return_distance=False)


def regression_predictions(X, y) -> tuple:
    linear = cross_val_predict(RidgeCV(alphas=RIDGE_ALPHAS), X, y, cv=folds())
    return linear.reshape(y.shape), y[nearest_others(X)].mean(axis=1).reshape(y.shape)


def class_predictions(X, y, width: int) -> tuple:
    """Probabilities over ``width`` classes; a class absent from y gets probability 0."""
    classes = np.unique(y)
    if len(classes) < 2:    # one class: every reference is the constant
        p = np.zeros((len(y), width))
        p[:, classes[0]] = 1.0
        return p, p
    cv = held_out_logistic(X, y, classes)
    nn = np.eye(len(classes))[np.searchsorted(classes, y)][nearest_others(X)].mean(axis=1)
    prior = np.bincount(y, minlength=width)[classes] / len(y)
    nn = (1 - PRIOR_WEIGHT) * nn + PRIOR_WEIGHT * prior
    return tuple(over_width(p, classes, width) for p in (cv, nn))


def held_out(X, y, classes, model) -> np.ndarray:
    """Held-out class probabilities (n, len(classes)), the model fitted on each fold's rows in
    turn. A warm-started logistic fit starts from the previous fold's coefficients: the same
    convex minimum (to its tolerance) in about half the iterations (12 -> 6 on 400 rows)."""
    p = np.zeros((len(y), len(classes)))
    for train, test in folds().split(X):
        if not same_classes(model, y[train]):
            model = clone(model)    # a class absent from these rows: no coefficients to start from
        model.fit(X[train], y[train])
        p[np.ix_(test, np.searchsorted(classes, model.classes_))] = model.predict_proba(X[test])
    return p


def same_classes(model, y) -> bool:
    """The model (if fitted) was fitted on the classes of y: its coefficients can start a fit."""
    return not hasattr(model, "classes_") or np.array_equal(model.classes_, np.unique(y))


def many_rows(X, classes) -> bool:
    """MANY_ROWS or more training rows per coefficient of the logistic fit."""
    coefficients = (X.shape[1] + 1) * (len(classes) if len(classes) > 2 else 1)
    return len(X) * (FOLDS - 1) / FOLDS >= MANY_ROWS * coefficients


def held_out_logistic(X, y, classes) -> np.ndarray:
    """The held-out probabilities along the penalty path, stopped at the first penalty whose
    held-out log loss is no better than the previous one's (weaker ones only overfit more): one
    choice among three, so its optimism is small beside the gaps it measures."""
    many = many_rows(X, classes)
    model = LogisticRegression(max_iter=MAX_ITER, warm_start=True, tol=TOL_MANY if many else TOL)
    index, best = np.searchsorted(classes, y), None
    for C in PENALTIES[-1:] if many else PENALTIES:
        p = held_out(X, y, classes, model.set_params(C=C))
        loss = log_loss(p, index)
        if best is not None and loss >= best[1]:
            break
        best = (p, loss)
    return best[0]


def over_width(p: np.ndarray, classes: np.ndarray, width: int) -> np.ndarray:
    full = np.zeros((len(p), width))
    full[:, classes] = p
    return full


def scorer(loss_name: str):
    """(predictions, y) -> the mean loss, as diagnostics.losses computes it for the network."""
    return {"mse": lambda p, y: float(np.mean((p - y) ** 2)),
            "half_mse": lambda p, y: float(0.5 * np.sum((p - y) ** 2) / len(y)),
            "cross_entropy": log_loss, "nll": log_loss, "hinge": hinge_of_probabilities,
            "bce": binary_log_loss, "bce_with_logits": binary_log_loss}[loss_name]


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], PROB_EPS, 1.0))))


def binary_log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, PROB_EPS, 1 - PROB_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def hinge_of_probabilities(p: np.ndarray, y: np.ndarray) -> float:
    """The multiclass hinge (margin 1) of probabilities used as scores: 0 when the right class
    has all the mass, k - 1 (the constant predictor's) when it is spread evenly."""
    s_y = p[np.arange(len(y)), y][:, None]
    return float((np.maximum(0.0, 1.0 + p - s_y).sum() - len(y)) / len(y))
