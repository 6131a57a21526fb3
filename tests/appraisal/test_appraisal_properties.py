"""Invariants of the algorithms, checked over all (or many random) inputs."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from metasift.appraisal import TOOLS, assess, overall_from_domains

ROB2_ORDER = ["Low", "Some concerns", "High"]
ROBINS_ORDER = ["Low", "Moderate", "Serious", "Critical"]


def test_rob2_overall_never_improves_when_a_domain_worsens():
    doms = TOOLS["rob2"].domain_ids
    for combo in itertools.product(ROB2_ORDER, repeat=len(doms)):
        base = dict(zip(doms, combo, strict=True))
        o = ROB2_ORDER.index(overall_from_domains("rob2", base).judgement)
        assert o == max(ROB2_ORDER.index(v) for v in combo)  # least favourable domain
        for d in doms:
            for worse in ROB2_ORDER[ROB2_ORDER.index(base[d]) + 1 :]:
                w = overall_from_domains("rob2", base | {d: worse}).judgement
                assert ROB2_ORDER.index(w) >= o


def test_robins_i_overall_is_the_worst_domain_without_no_information():
    doms = TOOLS["robins_i"].domain_ids
    for combo in itertools.product(ROBINS_ORDER, repeat=len(doms)):
        got = overall_from_domains("robins_i", dict(zip(doms, combo, strict=True))).judgement
        assert got == max(combo, key=ROBINS_ORDER.index)


def _full_answers(effect):
    qs = TOOLS["rob2"].questions(effect)
    return st.fixed_dictionaries(
        {q.id: st.sampled_from([o for o in q.options if o != "NA"]) for q in qs}
    )


@settings(max_examples=150, deadline=None)
@given(effect=st.sampled_from(["assignment", "adhering"]), data=st.data())
def test_rob2_every_full_answer_set_gets_a_judgement(effect, data):
    answers = data.draw(_full_answers(effect))
    a = assess("rob2", answers, effect=effect)
    assert a.missing == () and a.complete
    assert all(j.suggested in ROB2_ORDER for j in a.domains)
    # Removing an answer never changes a judgement the algorithm still gives.
    qid = data.draw(st.sampled_from(sorted(answers)))
    b = assess("rob2", {k: v for k, v in answers.items() if k != qid}, effect=effect)
    for ja, jb in zip(a.domains, b.domains, strict=True):
        assert jb.suggested in (None, ja.suggested)
        assert jb.suggested is not None or qid in jb.missing
