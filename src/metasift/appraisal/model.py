"""The data model of a risk-of-bias tool and of one assessment made with it.

A :class:`Tool` is pure data: its domains, each domain's signalling questions with their allowed
answers, the judgement levels, and the published algorithm as ordered rule tables (first match
wins). :func:`evaluate_rules` walks a rule table the way an assessor walks the guidance's
flowchart; it stops at the first rule it cannot decide and names the answers it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from metasift.errors import MetasiftError

# Signalling-question answers shared by RoB 2 and ROBINS-I (Sterne et al. 2019; 2016).
Y, PY, PN, N, NI, NA = "Y", "PY", "PN", "N", "NI", "NA"
ANSWER_LABELS = {
    Y: "Yes",
    PY: "Probably yes",
    PN: "Probably no",
    N: "No",
    NI: "No information",
    NA: "Not applicable",
}
_ORDER = (Y, PY, PN, N, NI, NA)


def _answer_order(a: str):
    return (_ORDER.index(a), a) if a in _ORDER else (len(_ORDER), a)


YPY = frozenset({Y, PY})
NPN = frozenset({N, PN})
YPYNI = frozenset({Y, PY, NI})
NPNNI = frozenset({N, PN, NI})


class AppraisalError(MetasiftError, ValueError):
    """A risk-of-bias or certainty input breaks a rule of the method (e.g. an override
    without a justification)."""


@dataclass(frozen=True)
class Question:
    """One signalling question (or checklist item)."""

    id: str
    text: str
    options: tuple[str, ...]
    condition: str | None = None  # when the question is asked, as worded in the guidance

    @property
    def conditional(self) -> bool:
        return self.condition is not None


@dataclass(frozen=True)
class Clause:
    """``quantifier`` ('all' or 'any') of the answers to ``questions`` lie in ``answers``."""

    questions: tuple[str, ...]
    answers: frozenset[str]
    quantifier: str = "all"

    def evaluate(self, given: Mapping[str, str]) -> bool | None:
        """True, False, or None when undecidable because an answer is missing.

        An NA given to a question the path consults counts as missing unless the clause
        lists NA (conditional questions are NA only when the path does not reach them)."""
        vals = []
        for q in self.questions:
            a = given.get(q)
            if a == NA and NA not in self.answers:
                a = None
            vals.append(a)
        known = [v for v in vals if v is not None]
        if self.quantifier == "all":
            if any(v not in self.answers for v in known):
                return False
            return True if len(known) == len(vals) else None
        if any(v in self.answers for v in known):
            return True
        return False if len(known) == len(vals) else None

    def unanswered(self, given: Mapping[str, str]) -> list[str]:
        return [
            q
            for q in self.questions
            if given.get(q) is None or (given.get(q) == NA and NA not in self.answers)
        ]


@dataclass(frozen=True)
class Rule:
    """One row of a rule table: if every clause holds, the domain gets ``judgement``."""

    id: str
    clauses: tuple[Clause, ...]
    judgement: str
    note: str = ""

    def evaluate(self, given: Mapping[str, str]) -> bool | None:
        results = [c.evaluate(given) for c in self.clauses]
        if any(r is False for r in results):
            return False
        return True if all(r is True for r in results) else None


def when(*questions: str, answers, quantifier: str = "all") -> Clause:
    """Shorthand for a :class:`Clause`."""
    return Clause(tuple(questions), frozenset(answers), quantifier)


def evaluate_rules(rules: tuple[Rule, ...], given: Mapping[str, str]):
    """Walk ``rules`` top-down. Returns ``(rule, missing)``: the first rule that holds and an
    empty list, or ``None`` and the unanswered questions of the first undecidable rule."""
    for rule in rules:
        r = rule.evaluate(given)
        if r is True:
            return rule, []
        if r is None:
            missing: list[str] = []
            for c in rule.clauses:
                if c.evaluate(given) is None:
                    missing += [q for q in c.unanswered(given) if q not in missing]
            return None, missing
    return None, []


@dataclass(frozen=True)
class Level:
    """One judgement level, with its robvis colour and symbol."""

    name: str
    rank: int  # higher = worse
    colour: str
    symbol: str


@dataclass(frozen=True)
class Domain:
    """One bias domain (or checklist item / NOS category).

    ``parts`` holds one rule table per part of the domain's algorithm (RoB 2 Domain 2 for the
    effect of assignment has two parts, combined as the worse of the two); empty when the
    guidance publishes no algorithm for the domain. ``variants`` maps an effect of interest to
    the questions and parts used for it (RoB 2 Domain 2)."""

    id: str
    name: str
    questions: tuple[Question, ...] = ()
    parts: tuple[tuple[Rule, ...], ...] = ()
    variants: Mapping[str, tuple[tuple[Question, ...], tuple[tuple[Rule, ...], ...]]] = field(
        default_factory=dict
    )
    short: str = ""

    def for_effect(self, effect: str | None) -> tuple[tuple[Question, ...], tuple]:
        if self.variants:
            return self.variants[effect]
        return self.questions, self.parts

    @property
    def has_algorithm(self) -> bool:
        if self.variants:
            return all(parts for _, parts in self.variants.values())
        return bool(self.parts)


@dataclass(frozen=True)
class Tool:
    """A risk-of-bias tool as data.

    ``score_domain`` (optional) replaces the rule tables for tools that count rather than
    branch (Newcastle-Ottawa); ``overall`` maps the final domain judgements to
    ``(overall, rule id, flags)``."""

    name: str
    label: str
    domains: tuple[Domain, ...]
    levels: tuple[Level, ...]
    overall: Callable
    overall_levels: tuple[Level, ...] = ()
    effects: tuple[str, ...] = ()
    score_domain: Callable | None = None
    source: str = ""
    notes: str = ""

    def domain(self, domain_id: str) -> Domain:
        for d in self.domains:
            if d.id == domain_id:
                return d
        raise KeyError(domain_id)

    @property
    def domain_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.domains)

    def level(self, name: str) -> Level:
        for lv in self.levels + self.overall_levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    @property
    def judgement_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    @property
    def overall_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in (self.overall_levels or self.levels))

    def questions(self, effect: str | None = None) -> tuple[Question, ...]:
        """Every question of the tool, in order, for the given effect of interest."""
        out: list[Question] = []
        for d in self.domains:
            out += d.for_effect(effect if d.variants else None)[0]
        return tuple(out)

    def to_frame(self, effect: str | None = None) -> pd.DataFrame:
        """One row per question: domain, id, text, allowed answers, condition."""
        rows = []
        for d in self.domains:
            for q in d.for_effect(effect if d.variants else None)[0]:
                rows.append(
                    {
                        "domain": d.id,
                        "domain_name": d.name,
                        "question": q.id,
                        "text": q.text,
                        "options": ", ".join(q.options),
                        "condition": q.condition or "",
                    }
                )
        return pd.DataFrame(rows)

    def rules_to_frame(self, effect: str | None = None) -> pd.DataFrame:
        """The published algorithm as a table: one row per rule, in evaluation order (first
        match wins within a part; a domain with several parts takes the worst part)."""
        rows = []
        for d in self.domains:
            _, parts = d.for_effect(effect if d.variants else None)
            for p, rules in enumerate(parts, start=1):
                for r in rules:
                    cond = " AND ".join(
                        ("either of " if c.quantifier == "any" and len(c.questions) > 1 else "")
                        + " & ".join(c.questions)
                        + " in {"
                        + ", ".join(sorted(c.answers, key=_answer_order))
                        + "}"
                        for c in r.clauses
                    )
                    rows.append(
                        {
                            "domain": d.id,
                            "part": p,
                            "rule": r.id,
                            "condition": cond,
                            "judgement": r.judgement,
                        }
                    )
        return pd.DataFrame(rows, columns=["domain", "part", "rule", "condition", "judgement"])


@dataclass(frozen=True)
class Judgement:
    """A judgement for one domain (``domain`` set) or the overall result (``domain`` None).

    ``suggested`` is what the published algorithm proposes and ``rule`` the rule that fired;
    ``judgement`` is the final one: the reviewer's override when given (``overridden`` True,
    ``justification`` required), else the suggestion."""

    domain: str | None
    suggested: str | None
    rule: str
    judgement: str | None
    overridden: bool = False
    justification: str = ""
    reviewer: str | None = None
    missing: tuple[str, ...] = ()
    stars: int | None = None  # Newcastle-Ottawa only


@dataclass(frozen=True)
class Assessment:
    """One risk-of-bias assessment of one result (RoB 2, ROBINS-I) or study (NOS, JBI)."""

    tool: str
    effect: str | None
    answers: Mapping[str, str]
    domains: tuple[Judgement, ...]
    overall: Judgement
    missing: tuple[str, ...]
    flags: tuple[str, ...] = ()
    key_domains: tuple[str, ...] | None = None  # ROBINS-I: domains whose NI decides overall

    def domain(self, domain_id: str) -> Judgement:
        for j in self.domains:
            if j.domain == domain_id:
                return j
        raise KeyError(domain_id)

    @property
    def complete(self) -> bool:
        return not self.missing and self.overall.judgement is not None

    @property
    def judgements(self) -> dict[str, str | None]:
        """Final judgements by domain id, plus ``"Overall"``."""
        out = {j.domain: j.judgement for j in self.domains}
        out["Overall"] = self.overall.judgement
        return out

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for j in (*self.domains, self.overall):
            rows.append(
                {
                    "domain": j.domain or "Overall",
                    "suggested": j.suggested,
                    "rule": j.rule,
                    "judgement": j.judgement,
                    "overridden": j.overridden,
                    "justification": j.justification,
                    "reviewer": j.reviewer,
                    "missing": ", ".join(j.missing),
                    "stars": j.stars,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        lines = [f"{self.tool} assessment" + (f" (effect: {self.effect})" if self.effect else "")]
        for j in (*self.domains, self.overall):
            name = j.domain or "Overall"
            s = f"  {name:<8} {j.judgement or '—':<16} suggested {j.suggested or '—'} [{j.rule}]"
            if j.stars is not None:
                s += f" {j.stars} star(s)"
            if j.overridden:
                s += f"; overridden: {j.justification}"
            lines.append(s)
        if self.missing:
            lines.append("  missing answers: " + ", ".join(self.missing))
        for f in self.flags:
            lines.append("  note: " + f)
        return "\n".join(lines)
