"""Feature extractors (scikit-learn transformers) that turn record texts into a matrix.

Registered as ``metasift.feature_extractors``: ``tfidf`` (words + bigrams, sparse) and
``embedding`` (a sentence-transformers-style model installed locally; never downloaded).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from itertools import chain
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.preprocessing import normalize

from metasift.errors import MetasiftError

__all__ = ["TfidfFeatures", "EmbeddingFeatures", "ModelNotInstalledError"]


class ModelNotInstalledError(MetasiftError):
    """An optional model (sentence embeddings) is not installed locally; metasift never downloads."""


def _texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise MetasiftError("texts must be a sequence of strings, not one string")
    return ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]


#: scikit-learn's token pattern ``\b\w\w+\b`` without the boundaries: a greedy ``\w\w+`` that
#: findall tries from the start of every run of word characters already ends at a boundary, so
#: the tokens are the same, found about 30% faster
_TOKEN = re.compile(r"\w\w+")


def _ngram_counts(docs: list[str], ngram_range, stop_words) -> tuple[sp.csr_matrix, tuple]:
    """Term counts of word n-grams, the terms of scikit-learn's word analyzer (lowercase, token
    pattern, stop words removed before n-grams are formed), and how to name the columns.

    The tokens are found per document (C regex) but terms are numbered with numpy: an n-gram is
    the pair (its first n−1 words' id, its last word's id), made unique with ``np.unique``. This
    avoids CountVectorizer's per-term Python dictionary loop and its alphabetical re-sort of the
    vocabulary, which dominated feature extraction: about 2.5 times faster (Kitchenham_2010's
    1,698 records with bigrams: 1.8 s → 0.7 s). Columns are unigrams, then bigrams, …;
    ``terms`` is ``(words, grams, min_n)`` where ``grams[k]`` holds the (prefix, last word) ids
    of the (k+2)-grams (see :func:`_term_names`).
    """
    min_n, max_n = (int(v) for v in ngram_range)
    tokens = [_TOKEN.findall(d.lower()) for d in docs]
    if stop_words is not None:
        stop = ENGLISH_STOP_WORDS if stop_words == "english" else frozenset(stop_words)
        tokens = [[t for t in doc if t not in stop] for doc in tokens]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    flat = list(chain.from_iterable(tokens))
    words = list(dict.fromkeys(flat))
    index = {w: i for i, w in enumerate(words)}
    uni = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
    doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    # tokens left in the document from each position on (this one included)
    left = lengths[doc_of] - (
        np.arange(uni.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    n_words = len(words)
    rows, cols, grams, sizes = [], [], [], []
    ids, valid, n_terms = uni, np.ones(uni.size, dtype=bool), n_words
    for n in range(1, max_n + 1):
        if n > 1:  # the n-gram at i is the (n-1)-gram at i followed by the word at i+n-1
            m = uni.size - n + 1
            valid = valid[:m] & (left[:m] >= n)
            key = ids[:m][valid] * n_words + uni[n - 1 :][valid]
            uniq, inv = np.unique(key, return_inverse=True)
            ids = np.full(m, -1, dtype=np.int64)
            ids[valid] = inv
            grams.append((uniq // n_words, uniq % n_words))
            n_terms = uniq.size
        if n >= min_n:
            rows.append(doc_of[: valid.size][valid])
            cols.append(ids[valid] + sum(sizes))
            sizes.append(n_terms)
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    X = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(len(docs), sum(sizes)))
    X.sum_duplicates()
    return X, (words, grams, min_n)


def _term_names(terms) -> list[str]:
    """The term of every column of :func:`_ngram_counts` (joined by one space, as scikit-learn)."""
    words, grams, min_n = terms
    names, level = [], words
    for n in range(1, len(grams) + 2):
        if n > 1:
            first, last = grams[n - 2]
            level = [
                f"{level[a]} {words[b]}" for a, b in zip(first.tolist(), last.tolist(), strict=True)
            ]
        if n >= min_n:
            names.extend(level)
    return names


class TfidfFeatures(TransformerMixin, BaseEstimator):
    """TF-IDF of word unigrams and bigrams (sublinear tf, l2-normalised rows).

    Parameters and output are those of :class:`sklearn.feature_extraction.text.TfidfVectorizer`
    (same terms, counts, smoothed idf and norms; the columns are in first-occurrence rather than
    alphabetical order), computed by a vectorised counter (:func:`_ngram_counts`). The defaults
    (``ngram_range=(1, 2)``, ``sublinear_tf=True``, ``min_df=1``, ``max_df=0.95``) are the
    usual ones for screening prioritisation (they are also ASReview's ``elas_u4`` extractor).
    ``stop_words`` is None, ``"english"`` (scikit-learn's list) or a collection of words.
    With ``max_features``, terms tied on their total count at the cut may differ from
    scikit-learn's choice (first occurrence wins here).
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

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        X = counts.astype(np.float64, copy=True)
        if self.sublinear_tf:
            np.log(X.data, out=X.data)
            X.data += 1.0
        X.data *= self.idf_[X.indices]
        return normalize(X, norm="l2", copy=False).tocsr()

    def fit(self, texts: Sequence[str], y=None):
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y=None):
        docs = _texts(texts)
        self._vocabulary = None
        n_docs = len(docs)
        counts, terms = _ngram_counts(docs, self.ngram_range, self.stop_words)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        high = self.max_df if isinstance(self.max_df, Integral) else self.max_df * n_docs
        low = self.min_df if isinstance(self.min_df, Integral) else self.min_df * n_docs
        if high < low:
            raise MetasiftError(
                "cannot build TF-IDF features: max_df corresponds to fewer records than min_df"
            )
        keep = (df <= high) & (df >= low)
        if self.max_features is not None:
            total = np.asarray(counts.sum(axis=0)).ravel()
            best = np.flatnonzero(keep)[np.argsort(-total[keep], kind="stable")]
            keep = np.zeros_like(keep)
            keep[best[: self.max_features]] = True
        cols = np.flatnonzero(keep)
        if cols.size == 0:
            raise MetasiftError("cannot build TF-IDF features: empty vocabulary after pruning")
        counts = counts[:, cols]
        self.terms_, self.columns_ = terms, cols
        self.idf_ = np.log((1.0 + n_docs) / (1.0 + df[cols])) + 1.0
        self.n_features_out_ = cols.size
        return self._weigh(counts)

    @property
    def vocabulary_(self) -> dict[str, int]:
        """Term → column (built on first use: simulation and ranking never need it)."""
        if not hasattr(self, "terms_"):
            raise MetasiftError("TfidfFeatures is not fitted; call fit(texts) first")
        if getattr(self, "_vocabulary", None) is None:
            names = _term_names(self.terms_)
            self._vocabulary = {names[i]: j for j, i in enumerate(self.columns_.tolist())}
        return self._vocabulary

    def transform(self, texts: Sequence[str]):
        if not hasattr(self, "terms_"):
            raise MetasiftError("TfidfFeatures is not fitted; call fit(texts) first")
        counter = CountVectorizer(
            vocabulary=self.vocabulary_,
            ngram_range=tuple(self.ngram_range),
            stop_words=list(ENGLISH_STOP_WORDS)
            if self.stop_words == "english"
            else self.stop_words,
            dtype=np.float64,
        )
        return self._weigh(counter.transform(_texts(texts)).tocsr())


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
