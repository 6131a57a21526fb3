"""Active-learning components: the scikit-learn contract, the setup dataclass, the Prioritiser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from metasift import plugins
from metasift.errors import MetasiftError, ParameterError
from metasift.screening import DEFAULT_SETUP, Prioritiser, ScreeningSetup
from metasift.screening.features import EmbeddingFeatures, ModelNotInstalledError

KINDS = ["feature_extractors", "classifiers", "queriers", "balancers"]


def corpus(n_rel=30, n_irr=120, seed=0):
    """Relevant records are about cats' sleep; irrelevant ones about stock markets."""
    rng = np.random.default_rng(seed)
    rel_words = "cat cats feline sleep nap kitten purr whiskers rest dream".split()
    irr_words = "stock market price trading shares investor bond yield index fund".split()
    common = "study results analysis data report method".split()
    texts, labels = [], []
    for i in range(n_rel + n_irr):
        words = rel_words if i < n_rel else irr_words
        doc = " ".join(rng.choice(words, 8).tolist() + rng.choice(common, 6).tolist())
        texts.append(doc)
        labels.append(int(i < n_rel))
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], [labels[i] for i in order]


@pytest.mark.parametrize("kind", KINDS)
def test_registered_parts_follow_sklearn_contract(kind):
    for name in plugins.names(kind):
        klass = plugins.load(kind, name)
        obj = klass()
        params = obj.get_params()
        again = clone(obj)
        assert again.get_params() == params  # __init__ only stores parameters
        assert not [k for k in vars(obj) if k.endswith("_") and not k.startswith("_")]


def test_classifiers_fit_returns_self_and_rank_relevant_first():
    texts, labels = corpus()
    X = plugins.load("feature_extractors", "tfidf")().fit_transform(texts)
    y = np.asarray(labels)
    for name in plugins.names("classifiers"):
        clf = plugins.load("classifiers", name)()
        assert clf.fit(X, y) is clf
        s = clf.relevance(X)
        assert s[y == 1].min() > s[y == 0].max(), name


def test_queriers():
    scores = np.array([0.1, 3.0, -2.0, 0.0, 3.0])
    top2 = set(plugins.load("queriers", "max")().rank(scores, 0)[:2])
    assert top2 == {1, 4}
    assert plugins.load("queriers", "uncertainty")().rank(scores, 0)[0] == 3
    mixed = plugins.load("queriers", "mixed")(every=2).rank(scores, 0)
    assert sorted(mixed) == [0, 1, 2, 3, 4] and mixed[1] == 3


def test_max_query_ties_are_random_not_file_order():
    firsts = {int(plugins.load("queriers", "max")().rank(np.zeros(50), s)[0]) for s in range(10)}
    assert len(firsts) > 1


def test_balancers():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    w = plugins.load("balancers", "double")().sample_weight(y)
    assert w[0] == pytest.approx(w[1:].sum())  # equal class totals at ratio 1
    w3 = plugins.load("balancers", "double")(ratio=3.0).sample_weight(y)
    assert w3[0] == pytest.approx(3 * w3[1:].sum())
    assert np.all(plugins.load("balancers", "none")().sample_weight(y) == 1)


def test_setup_round_trip_and_validation():
    setup = ScreeningSetup(
        classifier="logistic",
        classifier_params={"C": 2.0},
        feature_extractor_params={"ngram_range": (1, 3)},
        random_state=7,
    )
    data = json.loads(json.dumps(setup.to_dict()))
    assert ScreeningSetup.from_dict(data) == setup
    assert ScreeningSetup.from_dict(DEFAULT_SETUP.to_dict()) == DEFAULT_SETUP
    DEFAULT_SETUP.validate()
    with pytest.raises(ParameterError, match="logistic"):
        ScreeningSetup(classifier="forest").validate()
    with pytest.raises(ParameterError):
        ScreeningSetup.from_dict({"classifer": "svm"})
    with pytest.raises(ParameterError):
        ScreeningSetup(classifier_params={"gamma": 1}).build()


def test_prioritiser_ranks_unlabelled_relevant_first():
    texts, labels = corpus()
    y = np.asarray(labels)
    labelled = {int(np.flatnonzero(y == 1)[0]): 1, int(np.flatnonzero(y == 0)[0]): 0}
    # this toy corpus is 20% relevant, so presuming random records irrelevant (an assumption of
    # low prevalence, true of real searches) would be wrong here: switch it off
    setup = ScreeningSetup.from_dict({**DEFAULT_SETUP.to_dict(), "presumed_irrelevant": 0})
    p = Prioritiser(setup)
    assert p.fit(texts, labelled) is p
    ranking = p.rank()
    assert sorted(ranking.tolist()) == sorted(set(range(len(texts))) - set(labelled))
    # from one labelled example per class: the top of the ranking is relevant, and relevant
    # records sit far above irrelevant ones on average
    assert y[ranking[:20]].all()
    rel = [i for i in ranking if y[i] == 1]
    where = {int(i): k for k, i in enumerate(ranking)}
    rel_pos = np.mean([where[int(i)] for i in rel])
    irr_pos = np.mean([where[int(i)] for i in ranking if y[i] == 0])
    assert rel_pos < 0.25 * irr_pos


def test_prioritiser_cold_start_and_cache():
    texts, labels = corpus()
    y = np.asarray(labels)
    only_relevant = {int(i): 1 for i in np.flatnonzero(y == 1)[:2]}
    p = Prioritiser().fit(texts, only_relevant)
    assert y[p.rank()[:10]].all()  # similarity to the relevant records
    X = p.X_
    p.fit(texts, {})  # nothing labelled: seeded random order
    assert p.X_ is X  # features computed once per set of texts
    assert len(p.rank()) == len(texts)
    with pytest.raises(MetasiftError):
        p.fit(texts, {len(texts) + 5: 1})
    with pytest.raises(MetasiftError):
        Prioritiser().rank()


def test_refit_async_serves_latest_finished_model():
    texts, labels = corpus()
    y = np.asarray(labels)
    first = {int(np.flatnonzero(y == 1)[0]): 1, int(np.flatnonzero(y == 0)[0]): 0}
    p = Prioritiser().fit(texts, first)
    more = dict(first)
    more.update({int(i): int(y[i]) for i in p.rank()[:5]})
    thread = p.refit_async(texts, more)
    # while (or after) training, rank() answers and can leave out newly labelled records
    assert not set(p.rank(exclude=list(more))) & set(more)
    thread.join()
    assert p.model_.n_train == len(more)
    assert not set(p.rank()) & set(more)


def test_embedding_extractor_never_downloads():
    with pytest.raises(ModelNotInstalledError, match="sentence-transformers"):
        EmbeddingFeatures(model="/nonexistent/model").fit(["a text"])


def test_presumed_irrelevant_joins_training_set():
    from metasift.screening.prioritiser import train_scores

    seen = {}

    class Spy:
        def fit(self, X, y, sample_weight=None):
            seen["n"], seen["zeros"] = X.shape[0], int((y == 0).sum())
            return self

        def relevance(self, X):
            return np.zeros(X.shape[0])

    texts, labels = corpus()
    X = plugins.load("feature_extractors", "tfidf")().fit_transform(texts)
    parts = ScreeningSetup().build()
    parts = type(parts)(parts.feature_extractor, Spy(), parts.querier, parts.balancer)
    idx = np.array([0, 1, 2])
    y = np.array([1, 0, 0])
    train_scores(parts, X, idx, y, np.random.default_rng(0), presumed_irrelevant=10)
    assert seen == {"n": 13, "zeros": 12}
    train_scores(parts, X, idx, y, np.random.default_rng(0), presumed_irrelevant=0)
    assert seen == {"n": 3, "zeros": 2}


TFIDF_CASES = [
    {},
    {"min_df": 2},
    {"ngram_range": (1, 3), "stop_words": "english", "sublinear_tf": False},
    {"ngram_range": (2, 2), "max_df": 0.5},
    {"max_features": 40},
]


@pytest.mark.parametrize("params", TFIDF_CASES)
def test_tfidf_matches_scikit_learn(params):
    """The vectorised counter gives TfidfVectorizer's terms and values (columns permuted)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, _ = corpus()
    texts = texts + [
        "",
        "a",
        "Ünïcode café—naïve x2 re-test",
        "COVID-19 in 2020: the the cat",
        "one",
    ]
    fe = plugins.load("feature_extractors", "tfidf")(**params)
    X = fe.fit_transform(texts)
    kw = {k: v for k, v in fe.get_params().items()}
    ref = TfidfVectorizer(**kw)
    Y = ref.fit_transform(texts)
    names = ref.get_feature_names_out()
    if "max_features" not in params:  # (ties in the total count may pick other terms)
        assert set(fe.vocabulary_) == set(names)
        perm = [fe.vocabulary_[t] for t in names]
        assert abs(X[:, perm] - Y).max() < 1e-12
    assert X.shape[1] == Y.shape[1]
    assert abs(fe.transform(texts[:20]) - X[:20]).max() < 1e-12


def test_relevance_is_the_models_decision_function():
    texts, labels = corpus()
    X = plugins.load("feature_extractors", "tfidf")().fit_transform(texts)
    y = np.asarray(labels)
    for name in ("svm", "logistic"):
        clf = plugins.load("classifiers", name)().fit(X, y)
        assert np.allclose(clf.relevance(X), clf.decision_function(X))
    nb = plugins.load("classifiers", "nb")().fit(X, y)
    jll = nb.predict_joint_log_proba(X)
    assert np.allclose(nb.relevance(X), jll[:, 1] - jll[:, 0])


def test_a_querier_asked_for_the_top_gives_the_head_of_its_whole_order():
    """``rank(..., top=k)`` sorts only the rows that can be in the first k, with the same random
    tie-breaks: its result is exactly the first k of the whole order (many ties included)."""
    import numpy as np

    from metasift.screening.queriers import MaxQuery, UncertaintyQuery

    rng = np.random.default_rng(7)
    for trial in range(500):
        n = int(rng.integers(1, 200))
        scores = rng.integers(-3, int(rng.integers(1, 6)), n) / 2.0  # few distinct values
        top = int(rng.integers(0, n + 3))
        for querier in (MaxQuery(), UncertaintyQuery()):
            whole = querier.rank(scores, trial)
            head = querier.rank(scores, trial, top=top)
            assert np.array_equal(whole[:top], head), (trial, n, top)
