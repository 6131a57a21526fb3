"""Simulation on labelled data: the loop, its output, the labelled-CSV reader, and a run on a
real benchmark set (a seeded subset of Kitchenham 2010, shared/benchmarks/screening)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metasift.errors import ImportFormatError, MetasiftError, ParameterError
from metasift.screening import (
    DEFAULT_SETUP,
    ScreeningSetup,
    choose_priors,
    load_labelled_csv,
    simulate,
)
from metasift.screening import metrics as M


@pytest.fixture(scope="module")
def kitchenham_subset(shared_dir):
    data = load_labelled_csv(shared_dir / "benchmarks" / "screening" / "Kitchenham_2010.csv")
    y = np.asarray(data.labels)
    rng = np.random.default_rng(11)
    keep = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(y == 1), 20, replace=False),
                rng.choice(np.flatnonzero(y == 0), 280, replace=False),
            ]
        )
    )
    texts = [data.texts[i] for i in keep]
    return texts, y[keep].tolist(), [data.record_ids[i] for i in keep]


def test_load_labelled_csv_real_file(shared_dir):
    data = load_labelled_csv(shared_dir / "benchmarks" / "screening" / "Kwok_2020.csv")
    # counts from shared/benchmarks/screening/README.md
    assert len(data) == 2304 and sum(data.labels) == 114
    assert data.texts[0].startswith(data.titles[0])


@pytest.mark.parametrize(
    "frame, field",
    [
        (pd.DataFrame({"record_id": [1], "title": ["t"], "abstract": ["a"]}), "label_included"),
        (
            pd.DataFrame(
                {
                    "record_id": [1, 2],
                    "title": ["t", "u"],
                    "abstract": ["a", "b"],
                    "label_included": [1, "yes"],
                }
            ),
            "label_included",
        ),
        (
            pd.DataFrame(
                {
                    "record_id": [1, 1],
                    "title": ["t", "u"],
                    "abstract": ["a", "b"],
                    "label_included": [1, 0],
                }
            ),
            "record_id",
        ),
    ],
)
def test_load_labelled_csv_errors(tmp_path, frame, field):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ImportFormatError) as info:
        load_labelled_csv(path)
    assert info.value.field == field


def test_choose_priors_seeded():
    labels = [1] * 10 + [0] * 90
    a = choose_priors(labels, 3, 1, 1)
    assert a == choose_priors(labels, 3, 1, 1)
    assert labels[a[0]] == 1 and labels[a[1]] == 0
    assert len({choose_priors(labels, s)[0] for s in range(20)}) > 1
    with pytest.raises(ParameterError):
        choose_priors(labels, 0, 11, 1)


def test_simulation_on_real_subset(kitchenham_subset):
    texts, labels, ids = kitchenham_subset
    res = simulate(texts, labels, setup=DEFAULT_SETUP, seed=1, record_ids=ids)
    n = len(labels)
    assert sorted(res.order + res.priors) == list(range(n))
    assert res.n_records == n and res.n_relevant == sum(labels)
    # metrics are those of the labels in screening order
    lab = np.asarray(labels)[list(res.order)]
    assert res.labels_in_order == tuple(lab)
    assert res.wss95 == pytest.approx(M.wss(lab, 0.95))
    assert res.n_to_100 == M.n_to_recall(lab, 1.0) == res.n_queried
    # prioritisation beats random screening (expected WSS 0) by a wide margin
    assert res.wss95 > 0.2 and res.recall_at_10pct > 0.2
    frame = res.to_frame()
    assert len(frame) == n and frame["prior"].sum() == 2
    assert frame.loc[0, "record_id"] == ids[res.priors[0]]
    assert "WSS@95" in res.summary()
    # replayable: same seed and setup, same order
    again = simulate(texts, labels, setup=ScreeningSetup.from_dict(res.setup), seed=1)
    assert again.order == res.order


def test_every_step_retraining_matches_definition(kitchenham_subset):
    texts, labels, _ = kitchenham_subset
    texts, labels = texts[:120], labels[:120]
    setup = ScreeningSetup.from_dict({**DEFAULT_SETUP.to_dict(), "retrain_fraction": 0.0})
    res = simulate(texts, labels, setup=setup, seed=2)
    assert res.setup["retrain_fraction"] == 0.0
    assert sorted(res.order + res.priors) == list(range(len(labels)))


def test_simulate_errors():
    with pytest.raises(MetasiftError):
        simulate(["a", "b"], [1])
    with pytest.raises(MetasiftError):
        simulate(["a b", "c d"], [1, 0], priors=[0, 1])  # nothing left to find
    with pytest.raises(ParameterError):
        simulate(["a b", "c d", "e f"], [1, 0, 1], priors=[0, 0])
