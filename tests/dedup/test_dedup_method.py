"""metasift.dedup.dedup: behaviour on hand-made records, the shared special cases, and floors
measured on small real sets (stroke, diabetes; see benchmarks/dedup_bench.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metasift.dedup import DedupConflictError, DedupResult, dedup, evaluate, load_benchmark_csv
from metasift.errors import ParameterError
from metasift.records import Author, RecordData

# floors measured with benchmarks/dedup_bench.py (automatic merges only), rounded down
FLOORS = {
    "stroke.csv": (0.98, 0.999),  # measured 0.984 / 1.0
    "diabetes.csv": (0.995, 0.999),  # measured 0.998 / 1.0
}


def rec(
    title,
    *,
    authors=("Smith J",),
    year=2010,
    journal="J Test",
    volume="12",
    pages="100-110",
    doi="",
    pmid="",
    publication_type="article",
):
    return RecordData(
        title=title,
        authors=[Author(*a.split(" ", 1)) for a in authors],
        year=year,
        journal=journal,
        volume=volume,
        pages=pages,
        doi=doi,
        pmid=pmid,
        publication_type=publication_type,
    )


T1 = "Effects of exercise on depressive symptoms in older adults: a randomised controlled trial"
T2 = "Cognitive behavioural therapy for insomnia in adolescents with chronic pain conditions"
T3 = "Lithium versus placebo for the prevention of relapse in bipolar disorder over five years"


def by_ids(groups, ids):
    return sorted(sorted(ids[i] for i in g) for g in groups)


@pytest.fixture(scope="module")
def sets(shared_dir):
    d = shared_dir / "benchmarks/dedup"
    return {name: load_benchmark_csv(d / name) for name in ("special_cases.csv", *FLOORS)}


# --- the shared special cases and real sets --------------------------------------------------


def test_special_cases_exact(sets):
    records, truth = sets["special_cases.csv"]
    res = dedup(records)
    true_groups = {}
    for i, t in enumerate(truth):
        true_groups.setdefault(t, []).append(i)
    assert sorted(res.groups) == sorted(true_groups.values())


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_floors_on_real_sets(sets, name):
    records, truth = sets[name]
    res = dedup(records)
    m = evaluate(res.groups, truth)
    sens, spec = FLOORS[name]
    assert m.sensitivity >= sens, m.summary()
    assert m.specificity >= spec, m.summary()
    assert len(res.queued) < 0.02 * len(records)


def test_order_independence_on_a_real_set(sets):
    records, _ = sets["stroke.csv"]
    ids = [r.raw["record_id"][0] for r in records]
    base = by_ids(dedup(records).groups, ids)
    order = list(range(len(records)))
    random.Random(7).shuffle(order)
    shuffled = dedup([records[i] for i in order]).groups
    assert by_ids(shuffled, [ids[i] for i in order]) == base


def test_idempotent_and_stable_under_its_own_fixed_groups(sets):
    records, _ = sets["stroke.csv"]
    first = dedup(records)
    again = dedup(records)
    assert first.groups == again.groups
    assert [(lk.a, lk.b, lk.outcome) for lk in first.links] == [
        (lk.a, lk.b, lk.outcome) for lk in again.links
    ]
    rerun = dedup(records, fixed_groups=first.groups)
    assert rerun.groups == first.groups


SMALL = [
    rec(T1),
    rec(T1.upper(), pages="100-10"),
    rec(T2, authors=("Jones A", "Brown B")),
    rec(T2 + ".", authors=("Jones A.", "Brown B.")),
    rec(T3, authors=("Lee K",), journal="Lancet", volume="3", pages="5-9"),
    rec(T3, authors=("Lee K",), journal="Lancet", volume="3", pages="5-9", doi="10.1/x"),
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(range(len(SMALL))))
def test_order_independence_property(order):
    base = by_ids(dedup(SMALL).groups, list(range(len(SMALL))))
    got = dedup([SMALL[i] for i in order]).groups
    assert by_ids(got, list(order)) == base
    assert base == [[0, 1], [2, 3], [4, 5]]


# --- method rules ------------------------------------------------------------------------------


def test_obvious_duplicates_merge_and_result_api():
    res = dedup(SMALL)
    assert isinstance(res, DedupResult)
    assert res.groups == [[0, 1], [2, 3], [4, 5]]
    assert res.group_of(1) == [0, 1]
    assert res.auto_merged == 3
    merged = [lk for lk in res.links if lk.outcome == "merged"]
    assert {(lk.a, lk.b) for lk in merged} == {(0, 1), (2, 3), (4, 5)}
    assert all(0.0 <= lk.score <= 1.0 for lk in res.links)
    assert all("title_exact" in lk.evidence or "title_095" in lk.evidence for lk in merged)
    frame = res.to_frame()
    assert list(frame["group"]) == [0, 0, 1, 1, 2, 2]
    assert set(res.to_frame("links")["outcome"]) == {"merged"}
    assert "6 records -> 3 references" in res.summary()
    assert res.settings["auto_threshold"] == pytest.approx(0.93)
    with pytest.raises(ParameterError):
        res.to_frame("nope")
    with pytest.raises(ParameterError):
        res.group_of(99)


def test_different_pmids_never_merge():
    a = rec(T1, pmid="12345678")
    b = rec(T1, pmid="23456789")
    res = dedup([a, b])
    assert res.groups == [[0], [1]]
    (link,) = res.links
    assert link.outcome == "apart" and link.rule == "different-pmid"
    assert dedup([a, rec(T1, pmid="12345678")]).groups == [[0, 1]]


def test_erratum_is_not_merged_with_its_article():
    res = dedup([rec(T1), rec("Erratum: " + T1), rec(T1 + " [Erratum appears in J Test 2011]")])
    assert res.groups == [[0, 2], [1]]
    assert any(lk.rule == "erratum-vs-article" for lk in res.links)


def test_translated_title_in_brackets_merges():
    res = dedup(
        [
            rec("[" + T1 + "]", journal="Zhonghua Yi Xue Za Zhi"),
            rec(T1 + ".", journal="Zhonghua yi xue za zhi"),
        ]
    )
    assert res.groups == [[0, 1]]


def test_conference_abstract_is_not_merged_with_the_later_article():
    abstract = rec(
        T1,
        journal="European Neuropsychopharmacology. Conference: 28th ECNP Congress",
        volume="25",
        pages="S564",
        year=2015,
    )
    article = rec(
        T1, journal="Journal of Affective Disorders", volume="190", pages="12-20", year=2016
    )
    res = dedup([abstract, article])
    assert res.groups == [[0], [1]]


def test_no_chaining_through_a_record_without_pmid():
    # b matches both a and c, but a and c carry different PMIDs: they never share a group
    a = rec(T1, pmid="11111111")
    b = rec(T1)
    c = rec(T1, pmid="22222222")
    for order in ([a, b, c], [c, b, a], [b, a, c]):
        res = dedup(order)
        pa, pc = order.index(a), order.index(c)
        assert res.group_of(pa) != res.group_of(pc)
        assert len(res.groups) == 2


def test_part_one_and_part_two_stay_apart():
    res = dedup([rec(T1 + ". Part 1", pages=""), rec(T1 + ". Part 2", pages="")])
    assert res.groups == [[0], [1]]


# --- reviewer decisions and earlier groups ------------------------------------------------------


def test_keep_apart_and_force_merge_are_honoured():
    res = dedup(SMALL, keep_apart=[(0, 1)], force_merge=[(2, 4)])
    assert res.group_of(0) != res.group_of(1)
    assert res.group_of(2) == res.group_of(4)
    apart = [lk for lk in res.links if (lk.a, lk.b) == (0, 1)]
    assert apart and apart[0].outcome == "apart" and apart[0].rule == "keep-apart"
    assert res.settings["n_keep_apart"] == 1 and res.settings["n_force_merge"] == 1


def test_contradicting_decisions_raise():
    with pytest.raises(DedupConflictError):
        dedup(SMALL, keep_apart=[(0, 1)], force_merge=[(0, 1)])
    with pytest.raises(DedupConflictError):
        dedup(SMALL, fixed_groups=[[0, 1]], keep_apart=[(1, 0)])


def test_fixed_groups_are_never_split_nor_joined_but_new_records_may_join():
    # an earlier run kept 0 and 1 apart (two fixed groups) and grouped 2 with unrelated 4
    res = dedup(SMALL, fixed_groups=[[0], [1], [2, 4]])
    assert res.group_of(0) != res.group_of(1)
    assert res.group_of(2) == res.group_of(4)
    # 3 is new and a duplicate of 2: it joins the fixed group; 5 is new, duplicate of 4
    assert sorted(res.group_of(2)) == [2, 3, 4, 5]
    # new record 6, duplicate of 0, joins exactly one of the two fixed groups
    res = dedup([*SMALL, rec(T1)], fixed_groups=[[0], [1]])
    assert res.group_of(0) != res.group_of(1)
    assert 6 in res.group_of(0) or 6 in res.group_of(1)


def test_bad_parameters_raise():
    with pytest.raises(ParameterError):
        dedup(SMALL, auto_threshold=0.5, review_threshold=0.8)
    with pytest.raises(ParameterError):
        dedup(SMALL, keep_apart=[(0, 99)])
    with pytest.raises(ParameterError):
        dedup(SMALL, force_merge=[(1, 1)])
    with pytest.raises(ParameterError):
        dedup(SMALL, fixed_groups=[[0, 1], [1, 2]])
    with pytest.raises(ParameterError):
        dedup(["not a record"])


def test_empty_input():
    res = dedup([])
    assert res.groups == [] and res.links == [] and res.queued == []


def test_uncertain_pair_is_queued_not_merged():
    # same long title, one year apart, nothing else to go on: for a human
    a = RecordData(title=T1, year=2010)
    b = RecordData(title=T1, year=2011)
    res = dedup([a, b, rec(T2)])
    assert res.groups == [[0], [1], [2]]
    (q,) = res.queued
    assert (q.a, q.b, q.outcome) == (0, 1, "queued")
    assert res.settings["review_threshold"] <= q.score < res.settings["auto_threshold"]
    assert q.evidence["year_off1"][1] == (2010, 2011)
    # a stricter automatic threshold never merges more; a lower one may merge this pair
    assert dedup([a, b], auto_threshold=0.5, review_threshold=0.2).groups == [[0, 1]]
