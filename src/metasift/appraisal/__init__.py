"""Risk of bias: tools as data, the published algorithms, and the reviewer's override.

>>> from metasift.appraisal import assess, apply_override
>>> a = assess("rob2", {"1.1": "Y", "1.2": "Y", "1.3": "N", ...}, effect="assignment")
>>> a.domain("D1").suggested, a.domain("D1").rule
('Low', 'D1-3')
>>> a = apply_override(a, "D1", "Some concerns", "baseline imbalance in age (Table 1)")

``TOOLS`` maps a name to a :class:`Tool` (domains, questions, allowed answers, judgement levels,
rule tables). :func:`assess` applies a tool's algorithm to signalling answers and returns a
frozen :class:`Assessment` holding, per domain, the suggested judgement with the rule that fired
and the answers still missing. :func:`apply_override` records a reviewer's different judgement
beside the algorithm's suggestion; a written justification is required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

import pandas as pd

from metasift.appraisal import checklists, rob2, robins_i
from metasift.appraisal.model import (
    ANSWER_LABELS,
    AppraisalError,
    Assessment,
    Clause,
    Domain,
    Judgement,
    Level,
    Question,
    Rule,
    Tool,
    evaluate_rules,
)
from metasift.errors import ParameterError

TOOLS: dict[str, Tool] = {
    "rob2": rob2.TOOL,
    "robins_i": robins_i.TOOL,
    "nos_cohort": checklists.NOS_COHORT,
    "nos_case_control": checklists.NOS_CASE_CONTROL,
    "jbi_case_series": checklists.JBI_CASE_SERIES,
}

__all__ = [
    "TOOLS",
    "AppraisalError",
    "Assessment",
    "Clause",
    "Domain",
    "Judgement",
    "Level",
    "Question",
    "Rule",
    "Tool",
    "apply_override",
    "assess",
    "assessments_to_frame",
    "get_tool",
    "overall_from_domains",
]


def get_tool(name: str | Tool) -> Tool:
    """The tool registered as ``name`` (one of ``TOOLS``); a :class:`Tool` is returned as is."""
    if isinstance(name, Tool):
        return name
    if name not in TOOLS:
        raise ParameterError("tool", "get_tool", sorted(TOOLS), name)
    return TOOLS[name]


def _normalise(q: Question, value, func: str) -> str:
    if value is None:
        return None
    s = str(value).strip()
    for opt in q.options:
        if s.lower() == opt.lower() or s.lower() == ANSWER_LABELS.get(opt, opt).lower():
            return opt
    if q.options == checklists.JBI_OPTIONS:
        alias = {"y": "Yes", "n": "No", "u": "Unclear", "na": "Not applicable"}.get(s.lower())
        if alias:
            return alias
    raise ParameterError(f"answer to {q.id}", func, list(q.options), value)


def _check_effect(tool: Tool, effect, func: str):
    if tool.effects:
        if effect not in tool.effects:
            raise ParameterError("effect", func, list(tool.effects), effect)
        return effect
    if effect is not None:
        raise ParameterError("effect", func, [None], effect)
    return None


def _worst(tool: Tool, levels):
    ranked = {lv.name: lv.rank for lv in tool.levels}
    return max(levels, key=lambda v: ranked[v])


def _judge_domain(tool: Tool, domain: Domain, effect, given) -> Judgement:
    questions, parts = domain.for_effect(effect if domain.variants else None)
    if tool.score_domain is not None:
        level, rule, missing, stars = tool.score_domain(domain, given)
        return Judgement(domain.id, level, rule, level, missing=tuple(missing), stars=stars)
    if not parts:
        return Judgement(
            domain.id,
            None,
            "no published algorithm: reviewer judgement required",
            None,
            missing=(f"{domain.id} (judgement)",),
        )
    fired, missing = [], []
    for rules in parts:
        rule, miss = evaluate_rules(rules, given)
        if rule is None:
            missing += [m for m in miss if m not in missing]
            if not miss:  # every rule decidable and none held: answers off the flowchart
                missing.append(f"{domain.id}: no rule matches the answers given")
        else:
            fired.append(rule)
    worst_level = max(tool.levels, key=lambda lv: lv.rank).name
    if fired and (not missing or any(r.judgement == worst_level for r in fired)):
        level = _worst(tool, [r.judgement for r in fired])
        if missing:  # decided by a part at the worst level; the rest cannot change it
            fired = [r for r in fired if r.judgement == worst_level]
            missing = []
        return Judgement(domain.id, level, " + ".join(r.id for r in fired), level)
    return Judgement(domain.id, None, "incomplete", None, missing=tuple(missing))


def _overall(tool: Tool, domains: tuple[Judgement, ...], key_domains):
    return tool.overall({j.domain: j.judgement for j in domains}, key_domains=key_domains)


def _collect_missing(domains) -> tuple[str, ...]:
    out: list[str] = []
    for j in domains:
        if j.judgement is None:
            out += [m for m in j.missing if m not in out]
    return tuple(out)


def assess(
    tool: str | Tool,
    answers: Mapping[str, str],
    *,
    effect: str | None = None,
    judgements: Mapping[str, str] | None = None,
    key_domains=None,
) -> Assessment:
    """Apply ``tool``'s published algorithm to ``answers`` (question id -> answer code).

    ``effect`` is the effect of interest, required by RoB 2 and ROBINS-I ("assignment" or
    "adhering"): it selects the Domain 2 (RoB 2) or Domain 4 (ROBINS-I) questions.
    ``judgements`` gives the reviewer's judgement for domains that have no published algorithm
    (ROBINS-I 2016); for domains with an algorithm use :func:`apply_override`.
    ``key_domains`` (ROBINS-I) are the domains whose "No information" makes the overall
    judgement "No information" (default: all).
    """
    tool = get_tool(tool)
    func = f"assess({tool.name!r})"
    effect = _check_effect(tool, effect, func)
    qs = {q.id: q for q in tool.questions(effect)}
    given: dict[str, str] = {}
    for qid, value in dict(answers).items():
        if qid not in qs:
            raise ParameterError("answers", func, sorted(qs), qid)
        norm = _normalise(qs[qid], value, func)
        if norm is not None:
            given[qid] = norm
    judgements = dict(judgements or {})
    domains = []
    for d in tool.domains:
        j = _judge_domain(tool, d, effect, given)
        if d.id in judgements:
            if j.rule != "no published algorithm: reviewer judgement required":
                raise AppraisalError(
                    f"{tool.name} {d.id} has a published algorithm; give a different judgement "
                    "with apply_override(assessment, domain, judgement, justification)"
                )
            level = judgements.pop(d.id)
            if level not in tool.judgement_names:
                raise ParameterError(f"judgement for {d.id}", func, tool.judgement_names, level)
            j = replace(j, judgement=level, rule="reviewer judgement (no published algorithm)")
        domains.append(j)
    if judgements:
        raise ParameterError("judgements", func, list(tool.domain_ids), next(iter(judgements)))
    domains = tuple(domains)
    level, rule, flags = _overall(tool, domains, key_domains)
    return Assessment(
        tool=tool.name,
        effect=effect,
        answers=MappingProxyType(dict(given)),
        domains=domains,
        overall=Judgement(None, level, rule, level),
        missing=_collect_missing(domains),
        flags=tuple(flags),
        key_domains=None if key_domains is None else tuple(key_domains),
    )


def apply_override(
    assessment: Assessment,
    domain: str | None,
    judgement: str,
    justification: str,
    reviewer: str | None = None,
) -> Assessment:
    """Return a copy of ``assessment`` with the reviewer's ``judgement`` for ``domain`` (or for
    the overall result when ``domain`` is None). The algorithm's suggestion is kept beside it.
    A domain override re-derives the overall suggestion from the final domain judgements; an
    overall override made earlier stays. ``justification`` must be written out (non-empty)."""
    tool = get_tool(assessment.tool)
    func = "apply_override"
    if not isinstance(justification, str) or not justification.strip():
        raise AppraisalError(
            "A reviewer's judgement that departs from or replaces the algorithm needs a written "
            "justification (RoB 2 guidance; Cochrane Handbook 8.2.3); got an empty one."
        )
    if domain is None:
        if judgement not in tool.overall_names:
            raise ParameterError("judgement", func, list(tool.overall_names), judgement)
        overall = replace(
            assessment.overall,
            judgement=judgement,
            overridden=True,
            justification=justification.strip(),
            reviewer=reviewer,
        )
        return replace(assessment, overall=overall)
    if domain not in tool.domain_ids:
        raise ParameterError("domain", func, [*tool.domain_ids, None], domain)
    if judgement not in tool.judgement_names:
        raise ParameterError("judgement", func, list(tool.judgement_names), judgement)
    domains = tuple(
        replace(
            j,
            judgement=judgement,
            overridden=True,
            justification=justification.strip(),
            reviewer=reviewer,
        )
        if j.domain == domain
        else j
        for j in assessment.domains
    )
    level, rule, flags = _overall(tool, domains, assessment.key_domains)
    old = assessment.overall
    overall = replace(old, suggested=level, rule=rule)
    if not old.overridden:
        overall = replace(overall, judgement=level)
    return replace(
        assessment,
        domains=domains,
        overall=overall,
        missing=_collect_missing(domains),
        flags=tuple(flags),
    )


def overall_from_domains(
    tool: str | Tool, domain_judgements: Mapping[str, str], *, key_domains=None
) -> Judgement:
    """The overall judgement the tool's published rule gives for these domain judgements (for
    data that carry domain judgements only, e.g. robvis tables or a review's RoB table)."""
    tool = get_tool(tool)
    func = f"overall_from_domains({tool.name!r})"
    dj = dict(domain_judgements)
    if set(dj) != set(tool.domain_ids):
        raise ParameterError("domain_judgements", func, list(tool.domain_ids), sorted(dj))
    for d, v in dj.items():
        if v not in tool.judgement_names:
            raise ParameterError(f"judgement for {d}", func, list(tool.judgement_names), v)
    level, rule, _ = tool.overall(dj, key_domains=key_domains)
    return Judgement(None, level, rule, level)


def assessments_to_frame(assessments_by_study: Mapping[str, Assessment]) -> pd.DataFrame:
    """Long table of many assessments: one row per study x domain (plus ``Overall``), with the
    suggestion, the rule that fired, the final judgement and any override (for the store, a
    report table or a spreadsheet)."""
    frames = []
    for study, a in assessments_by_study.items():
        if not isinstance(a, Assessment):
            raise ParameterError(
                f"assessment of {study!r}", "assessments_to_frame", None, type(a).__name__
            )
        f = a.to_frame()
        f.insert(0, "study", study)
        f.insert(1, "tool", a.tool)
        f.insert(2, "effect", a.effect)
        frames.append(f)
    if not frames:
        raise ParameterError("assessments_by_study", "assessments_to_frame", None, "empty")
    return pd.concat(frames, ignore_index=True)
