"""protocol.yaml validation: every error names the key path, its line, what was expected and found."""

from __future__ import annotations

import pytest

from metasift.errors import ProtocolError
from metasift.protocol import TEMPLATE, load_protocol, parse_protocol


def test_the_template_is_a_valid_protocol():
    p = parse_protocol(TEMPLATE)
    assert p.screening.title_abstract.reviewers_per_record == 2
    assert p.screening.reason_required("full_text") is True
    assert p.screening.reason_required("title_abstract") is False
    assert p.synthesis.method == "REML" and p.synthesis.test == "knha"
    assert p.reviewers_with("resolver") == ["carol"]


@pytest.mark.parametrize(
    ("edit", "key", "line", "found"),
    [
        (
            ("type: continuous", "type: contnuous"),
            "outcome_domains[0].outcomes[0].type",
            35,
            "'contnuous'",
        ),
        (
            ("reviewers_per_record: 2      #", "reviewers_per_record: 3 #"),
            "screening.title_abstract.reviewers_per_record",
            24,
            "3",
        ),
        (("  population:", "  populaton:"), "question.population", 7, "nothing (missing)"),
        (("  cohort: robins_i", "  cohort: robins"), "risk_of_bias.cohort", 52, "'robins'"),
    ],
)
def test_errors_name_key_path_line_expected_and_found(edit, key, line, found):
    bad = TEMPLATE.replace(*edit)
    assert bad != TEMPLATE
    with pytest.raises(ProtocolError) as info:
        parse_protocol(bad, "p.yaml")
    problems = info.value.problems
    hit = [p for p in problems if p[0].startswith(key)]
    assert hit, problems
    assert f"(line {line})" in hit[0][0]
    assert hit[0][2] == found
    assert "p.yaml" in str(info.value)


def test_misspelt_keys_are_refused():
    with pytest.raises(ProtocolError) as info:
        parse_protocol(TEMPLATE.replace("synthesis:\n  method", "synthesis:\n  methd"))
    (key, expected, _found), *_ = info.value.problems
    assert key.startswith("synthesis.methd") and "misspelt" in expected


def test_choice_fields_need_values_and_names_are_unique():
    bad = TEMPLATE.replace("allowed: [RCT, cohort, case-control, case series], ", "")
    with pytest.raises(ProtocolError, match="choice"):
        parse_protocol(bad)
    bad = TEMPLATE.replace("{name: bob, roles: [reviewer]}", "{name: alice, roles: [reviewer]}")
    with pytest.raises(ProtocolError, match="reviewer names must be unique"):
        parse_protocol(bad)


def test_yaml_syntax_errors_say_the_line(tmp_path):
    f = tmp_path / "protocol.yaml"
    f.write_text("title: x\nquestion: [unclosed\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="line"):
        load_protocol(f)
    with pytest.raises(ProtocolError, match="no file"):
        load_protocol(tmp_path / "missing.yaml")
    f.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ProtocolError, match="a mapping"):
        load_protocol(f)
