"""Classifiers for prioritisation (scikit-learn estimators, registered as ``metasift.classifiers``).

Each is the scikit-learn model with screening defaults, and adds ``score(X)``-free
``relevance(X)``: a real-valued score, higher = more likely relevant, used for ranking.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.svm import LinearSVC

__all__ = ["NaiveBayes", "Logistic", "LinearSVM", "relevance"]


def relevance(clf, X) -> np.ndarray:
    """Score of class 1 for each row of X (probability where the model has one)."""
    if hasattr(clf, "relevance"):
        return clf.relevance(X)
    if hasattr(clf, "decision_function"):
        return np.asarray(clf.decision_function(X), dtype=float).ravel()
    return np.asarray(clf.predict_proba(X), dtype=float)[:, 1]


class NaiveBayes(MultinomialNB):
    """Multinomial naive Bayes (``alpha=3.822``, the value ASReview tuned for TF-IDF input)."""

    def __init__(self, alpha: float = 3.822, fit_prior: bool = True):
        super().__init__(alpha=alpha, fit_prior=fit_prior)

    def relevance(self, X) -> np.ndarray:
        # log-odds rather than the probability: NB probabilities saturate at 0/1 on long texts,
        # which would turn the ranking into ties
        jll = self.predict_joint_log_proba(X)
        pos = int(np.flatnonzero(self.classes_ == 1)[0])
        return jll[:, pos] - jll[:, 1 - pos]


class Logistic(LogisticRegression):
    """L2 logistic regression (liblinear; ``C=1``)."""

    def __init__(self, C: float = 1.0, random_state=None, max_iter: int = 1000):
        super().__init__(C=C, solver="liblinear", random_state=random_state, max_iter=max_iter)

    def relevance(self, X) -> np.ndarray:
        return np.asarray(self.decision_function(X), dtype=float).ravel()


class LinearSVM(LinearSVC):
    """Linear SVM, squared hinge loss; ranks by the signed distance to the hyperplane."""

    def __init__(self, C: float = 0.11, loss: str = "squared_hinge", random_state=None):
        super().__init__(C=C, loss=loss, random_state=random_state, dual="auto")

    def relevance(self, X) -> np.ndarray:
        return np.asarray(self.decision_function(X), dtype=float).ravel()
