"""metasift.dedup.evaluate on hand-made cases (definitions: ../shared/benchmarks/dedup/README.md)."""

from __future__ import annotations

import pytest

from metasift.dedup import evaluate
from metasift.errors import ParameterError

# truth: {0,1}, {2}, {3,4,5}: 6 records, 3 unique, 3 duplicates to remove
TRUTH = [[0, 1], [2], [3, 4, 5]]
TRUTH_LABELS = ["a", "a", "b", "c", "c", "c"]


def test_perfect():
    m = evaluate(TRUTH, TRUTH)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 0, 0, 3)
    assert m.sensitivity == m.specificity == m.precision == 1.0
    assert m.pairwise_precision == m.pairwise_recall == 1.0


def test_no_merges():
    m = evaluate([[i] for i in range(6)], TRUTH)
    assert (m.tp, m.fp, m.fn, m.tn) == (0, 0, 3, 3)
    assert m.sensitivity == 0.0 and m.specificity == 1.0


def test_everything_in_one_cluster():
    # correct removals (2-1)+(1-1)+(3-1) = 3; wrong removals 3 groups - 1 = 2
    m = evaluate([list(range(6))], TRUTH)
    assert (m.tp, m.fp, m.fn, m.tn) == (3, 2, 0, 1)
    assert m.sensitivity == 1.0
    assert m.specificity == pytest.approx(1 / 3)
    assert m.precision == pytest.approx(3 / 5)
    # pairs: 15 predicted, 1 + 3 = 4 true
    assert m.pairwise_precision == pytest.approx(4 / 15)


def test_mixed_errors():
    # {0,1,2}: tp 1, fp 1; {3,4}: tp 1; {5}: nothing
    m = evaluate([[0, 1, 2], [3, 4], [5]], TRUTH)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 1, 2)
    assert m.sensitivity == pytest.approx(2 / 3)
    assert m.specificity == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(2 / 3)
    assert m.n_pred_unique == 3 and m.n_true_unique == 3
    assert m.pairwise_recall == pytest.approx(2 / 4)


def test_labels_and_groups_agree_and_order_of_groups_is_irrelevant():
    a = evaluate([[5], [3, 4], [2, 1, 0]], TRUTH_LABELS)
    b = evaluate([0, 0, 0, 1, 1, 2], TRUTH)
    assert a == b
    assert "sensitivity" in a.summary()
    assert a.to_frame().loc[0, "tp"] == 2


@pytest.mark.parametrize(
    "pred",
    [
        [[0, 1], [1, 2], [3, 4, 5]],  # record 1 twice
        [[0, 1], [2]],  # records 3-5 missing
        [[0, 1, 2, 3, 4, 5, 6]],  # index out of range
        [0, 0, 1],  # wrong length
    ],
)
def test_bad_groups_raise(pred):
    with pytest.raises(ParameterError):
        evaluate(pred, TRUTH)
