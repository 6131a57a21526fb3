"""Feature extractors (scikit-learn transformers) that turn record texts into a matrix.

Registered as ``metasift.feature_extractors``: ``tfidf`` (words + bigrams, sparse) and
``embedding`` (a sentence-transformers-style model installed locally; never downloaded).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from metasift.errors import MetasiftError

__all__ = ["TfidfFeatures", "EmbeddingFeatures", "ModelNotInstalledError"]


class ModelNotInstalledError(MetasiftError):
    """An optional model (sentence embeddings) is not installed locally; metasift never downloads."""


def _texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise MetasiftError("texts must be a sequence of strings, not one string")
    return ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]


class TfidfFeatures(TransformerMixin, BaseEstimator):
    """TF-IDF of word unigrams and bigrams (sublinear tf, l2-normalised rows).

    Parameters follow :class:`sklearn.feature_extraction.text.TfidfVectorizer`. The defaults
    (``ngram_range=(1, 2)``, ``sublinear_tf=True``, ``min_df=1``, ``max_df=0.95``) are the
    usual ones for screening prioritisation (they are also ASReview's ``elas_u4`` extractor).
    """

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        sublinear_tf: bool = True,
        min_df: int | float = 1,
        max_df: int | float = 0.95,
        stop_words: str | None = None,
        max_features: int | None = None,
    ):
        self.ngram_range = ngram_range
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.max_df = max_df
        self.stop_words = stop_words
        self.max_features = max_features

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            sublinear_tf=self.sublinear_tf,
            min_df=self.min_df,
            max_df=self.max_df,
            stop_words=self.stop_words,
            max_features=self.max_features,
            dtype=np.float64,
        )

    def fit(self, texts: Sequence[str], y=None):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y=None):
        docs = _texts(texts)
        self.vectorizer_ = self._vectorizer()
        try:
            X = self.vectorizer_.fit_transform(docs)
        except ValueError as exc:  # empty vocabulary
            raise MetasiftError(f"cannot build TF-IDF features: {exc}") from exc
        self.n_features_out_ = X.shape[1]
        return X.tocsr()

    def transform(self, texts: Sequence[str]):
        if not hasattr(self, "vectorizer_"):
            raise MetasiftError("TfidfFeatures is not fitted; call fit(texts) first")
        return self.vectorizer_.transform(_texts(texts)).tocsr()


class EmbeddingFeatures(TransformerMixin, BaseEstimator):
    """Sentence embeddings from a locally installed sentence-transformers model.

    ``model`` is a folder path or a model name already in the local Hugging Face cache. Nothing
    is downloaded (``local_files_only`` and ``HF_HUB_OFFLINE=1``): a missing package or model
    raises :class:`ModelNotInstalledError` with what to install.
    """

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        batch_size: int = 32,
        normalize: bool = True,
    ):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize

    def _load(self):
        try:
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415
        except ImportError as exc:
            raise ModelNotInstalledError(
                "the 'embedding' feature extractor needs the sentence-transformers package and "
                f"a locally installed model ({self.model!r}); the package is not installed (metasift never "
                "downloads models). Install both, "
                "or use feature_extractor='tfidf'."
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        kwargs = {"local_files_only": True} if not Path(self.model).is_dir() else {}
        try:
            return SentenceTransformer(self.model, **kwargs)
        except Exception as exc:  # the library raises several types for a missing model
            raise ModelNotInstalledError(
                f"sentence-transformers model {self.model!r} is not installed locally "
                "(metasift never downloads models); pass a local folder as model=..."
            ) from exc

    def fit(self, texts: Sequence[str], y=None):
        self.model_ = self._load()
        return self

    def transform(self, texts: Sequence[str]):
        if not hasattr(self, "model_"):
            raise MetasiftError("EmbeddingFeatures is not fitted; call fit(texts) first")
        emb = self.model_.encode(
            _texts(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float64)
