"""Risk-of-bias assessments in the store: record one study's assessment, read the current ones.

:func:`record_assessment` runs the tool's published algorithm on the signalling answers
(:func:`metasift.appraisal.assess`), applies the reviewer's overrides
(:func:`metasift.appraisal.apply_override`) and writes the result in one transaction, audited.
Rules (enforced here, so no interface can bypass them):

* The tool defaults to the protocol's ``risk_of_bias`` tool for the study's design.
* The reviewer is a protocol reviewer with role owner, reviewer or resolver.
* An override (a judgement that departs from the algorithm's suggestion, for a domain or for
  the overall result) needs a written justification, kept beside the suggestion.
* Where the tool publishes no algorithm (ROBINS-I 2016 domains) the reviewer gives the domain
  judgement (``judgements``); a justification is optional there and kept when given. JBI has no
  overall decision rule: its overall judgement is an override of ``"overall"`` (justification
  required, as :func:`~metasift.appraisal.apply_override` demands).
* Only complete assessments are recorded: every domain and the overall result must end with a
  judgement (the report and the robvis plots draw nothing else).

Row convention (:func:`metasift.reporting.tables.risk_of_bias_table` reads it): one
:class:`~metasift.store.models.Judgement` row per domain of the tool, ``domain`` = the tool's domain
id (``D1`` .., ``Selection`` .., ``Q1`` ..), and one with ``domain="overall"``. ``suggested`` is the
algorithm's suggestion ("" where it has none), ``judgement`` the final level (a level name of the
tool, as :mod:`metasift.appraisal.plots` draws them), ``justification`` the reviewer's reason.
``answers`` of a domain row holds the answers to that domain's questions; the overall row holds
every answer, plus the effect of interest under the key ``"effect"`` (RoB 2, ROBINS-I).
``outcome`` is "" for the study as a whole, else the protocol outcome whose result was assessed.
Rows are append-only: the newest per (study, tool, outcome, domain) is current. Recording an
assessment equal to the current one writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from metasift.appraisal import apply_override, assess, get_tool
from metasift.appraisal.model import AppraisalError, Assessment, Tool
from metasift.errors import ParameterError
from metasift.protocol import Protocol
from metasift.store import Store
from metasift.store.models import Judgement, Study

APPRAISER_ROLES = ("owner", "reviewer", "resolver")
OVERALL = "overall"  # the domain name of the overall row (what the report looks for)
EFFECT_KEY = "effect"  # key of the effect of interest in the overall row's answers
NO_ALGORITHM = "no published algorithm: reviewer judgement required"


def aware(t: datetime | None) -> datetime | None:
    """A stored time as UTC-aware (SQLite hands back naive UTC times, PostgreSQL aware ones)."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


# -- who, which study, which tool -----------------------------------------------------------------
def check_appraiser(protocol: Protocol, reviewer: str) -> str:
    """``reviewer`` must be a protocol reviewer with role owner, reviewer or resolver (any name
    when the protocol lists no reviewers). Returns the name."""
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise AppraisalError("say who is appraising (a reviewer name from the protocol)")
    if protocol.reviewers:
        allowed = {r.name for r in protocol.reviewers if set(r.roles) & set(APPRAISER_ROLES)}
        if reviewer not in allowed:
            raise AppraisalError(
                f"{reviewer!r} is not a protocol reviewer with role "
                f"{' or '.join(APPRAISER_ROLES)}; allowed: {', '.join(sorted(allowed)) or '(none)'}"
            )
    return reviewer


def protocol_tool(protocol: Protocol, design: str) -> str | None:
    """The protocol's risk-of-bias tool for ``design`` (matched ignoring case): a tool name,
    ``"none"`` when the protocol assesses no risk of bias for it, or None when it names no tool."""
    by_design = {k.casefold(): v for k, v in protocol.risk_of_bias.items()}
    return by_design.get((design or "").strip().casefold())


def resolve_tool(protocol: Protocol, label: str, design: str, tool: str | None) -> str:
    """The tool to appraise study ``label`` with: ``tool`` when given, else the protocol's."""
    if tool is not None:
        return get_tool(tool).name
    t = protocol_tool(protocol, design)
    if t is None:
        raise AppraisalError(
            f"the protocol names no risk-of-bias tool for study {label!r} (design {design!r}); "
            f"its risk_of_bias maps {', '.join(protocol.risk_of_bias) or 'no designs'}; "
            "give the tool explicitly"
        )
    if t == "none":
        raise AppraisalError(
            f"the protocol assesses no risk of bias for design {design!r} (study {label!r})"
        )
    return t


def check_outcome(protocol: Protocol, outcome: str | None) -> str:
    """ "" (the study as a whole) or a protocol outcome, returned as the protocol spells it."""
    outcome = " ".join((outcome or "").split())
    if not outcome:
        return ""
    names = [o.name for _, o in protocol.outcomes()]
    match = {n.casefold(): n for n in names}.get(outcome.casefold())
    if match is None:
        raise ParameterError("outcome", "record_assessment", ["", *names], outcome)
    return match


def get_study(session: Session, study: int | str) -> Study:
    """A study by label (or id)."""
    row = None
    if isinstance(study, int) or (isinstance(study, str) and study.strip().isdigit()):
        row = session.get(Study, int(study))
    if row is None and isinstance(study, str):
        row = session.scalar(select(Study).where(Study.label == study.strip()))
    if row is None:
        raise AppraisalError(f"no study {study!r} (add it first; see `metasift extract studies`)")
    return row


# -- the assessment -------------------------------------------------------------------------------
def _domain_key(tool: Tool, domain: str) -> str | None:
    """A domain id of ``tool`` or None for the overall result (``"overall"``, any case)."""
    if str(domain).strip().casefold() == OVERALL:
        return None
    ids = {d.casefold(): d for d in tool.domain_ids}
    d = ids.get(str(domain).strip().casefold())
    if d is None:
        raise ParameterError("domain", "record_assessment", [*tool.domain_ids, OVERALL], domain)
    return d


def _pair(value, what: str) -> tuple[str, str]:
    if isinstance(value, str):
        return value, ""
    try:
        judgement, justification = value
    except (TypeError, ValueError):
        raise ParameterError(
            what, "record_assessment", None, f"{value!r} (expected (judgement, justification))"
        ) from None
    return judgement, justification or ""


def _level(names: tuple[str, ...], value, what: str) -> str:
    s = " ".join(str(value or "").split())
    match = {n.casefold(): n for n in names}.get(s.casefold())
    if match is None:
        raise ParameterError(what, "record_assessment", list(names), value)
    return match


def has_algorithm(tool: Tool, domain_id: str) -> bool:
    """Whether the tool maps answers to a judgement for this domain (else the reviewer judges)."""
    return tool.score_domain is not None or tool.domain(domain_id).has_algorithm


def overall_has_rule(tool: Tool) -> bool:
    """Whether the tool derives an overall judgement from the domains (JBI does not)."""
    best = {d: tool.levels[0].name for d in tool.domain_ids}
    level, _, _ = tool.overall(best)
    return level is not None


def gaps(tool: Tool, a: Assessment) -> list[tuple[str | None, tuple[str, ...], str]]:
    """What keeps ``a`` from being complete: ``(domain id or None for overall, question ids
    still to answer, why)`` per domain without a final judgement."""
    out = []
    for j in a.domains:
        if j.judgement is not None:
            continue
        if j.rule == NO_ALGORITHM:
            out.append(
                (
                    j.domain,
                    (),
                    f"{tool.name} publishes no algorithm for {j.domain}: give the reviewer's "
                    "judgement",
                )
            )
            continue
        qs = tuple(m for m in j.missing if ":" not in m and "(" not in m)
        if qs:
            why = f"{j.domain}: answers the algorithm needs: {', '.join(qs)}"
        else:
            why = f"{j.domain}: no rule of the algorithm matches the answers given"
        out.append((j.domain, qs, why))
    if a.overall.judgement is None and not out:
        if overall_has_rule(tool):
            why = "the overall judgement could not be derived"
        else:
            why = (
                f"{tool.name} has no overall decision rule: give the overall judgement as an "
                "override with a justification"
            )
        out.append((None, (), why))
    return out


def build_assessment(
    tool: str | Tool,
    answers: Mapping[str, str],
    *,
    effect: str | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
    judgements: Mapping[str, str | tuple[str, str]] | None = None,
    require_complete: bool = True,
) -> Assessment:
    """Apply ``tool``'s algorithm to ``answers`` and then the reviewer's decisions; no store.

    ``overrides``: domain id (or ``"overall"``) -> ``(judgement, justification)``; the
    justification must be written out. For a domain without a published algorithm an override
    is taken as the reviewer's judgement. ``judgements``: domain id -> judgement, or
    ``(judgement, justification)``, for domains without a published algorithm (ROBINS-I 2016).
    With ``require_complete`` an assessment with a domain or overall result left without a
    judgement raises :class:`AppraisalError` naming what is missing."""
    tool = get_tool(tool)
    decided: dict[str, tuple[str, str]] = {}  # no-algorithm domain -> (judgement, justification)
    domain_overrides: dict[str, tuple[str, str]] = {}
    overall_override: tuple[str, str] | None = None
    for key, value in dict(judgements or {}).items():
        d = _domain_key(tool, key)
        if d is None or has_algorithm(tool, d):
            raise AppraisalError(
                f"{tool.name} {d or OVERALL} has a published algorithm; give a different "
                "judgement as an override with a justification"
            )
        j, why = _pair(value, f"judgement of {d}")
        decided[d] = (_level(tool.judgement_names, j, f"judgement of {d}"), why.strip())
    for key, value in dict(overrides or {}).items():
        d = _domain_key(tool, key)
        j, why = _pair(value, f"override of {d or OVERALL}")
        names = tool.overall_names if d is None else tool.judgement_names
        j = _level(names, j, f"override of {d or OVERALL}")
        if not isinstance(why, str) or not why.strip():
            raise AppraisalError(
                f"the override of {tool.name} {d or OVERALL} ({j!r}) needs a written "
                "justification: a judgement that departs from the algorithm is kept beside its "
                "suggestion with the reason (RoB 2 guidance; Cochrane Handbook 8.2.3)"
            )
        if d is None:
            overall_override = (j, why.strip())
        elif not has_algorithm(tool, d):
            if d in decided:
                raise AppraisalError(f"{tool.name} {d} is judged twice (judgements and overrides)")
            decided[d] = (j, why.strip())
        else:
            domain_overrides[d] = (j, why.strip())
    a = assess(tool, answers, effect=effect, judgements={d: j for d, (j, _) in decided.items()})
    if any(why for _, why in decided.values()):
        a = replace(
            a,
            domains=tuple(
                replace(j, justification=decided[j.domain][1]) if j.domain in decided else j
                for j in a.domains
            ),
        )
    for d, (j, why) in domain_overrides.items():
        a = apply_override(a, d, j, why)
    if overall_override is not None:
        a = apply_override(a, None, *overall_override)
    if require_complete:
        missing = gaps(tool, a)
        if missing:
            raise AppraisalError(
                f"incomplete {tool.name} assessment: " + "; ".join(why for _, _, why in missing)
            )
    return a


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredJudgement:
    """The current judgement of one domain (or ``"overall"``) as stored."""

    id: int
    domain: str
    suggested: str
    judgement: str
    justification: str
    answers: dict
    reviewer: str
    created_at: datetime | None = None

    @property
    def source(self) -> str:
        """``"algorithm"`` (the suggestion kept), ``"override"`` (the reviewer departed from the
        suggestion) or ``"reviewer"`` (no suggestion: the reviewer's own judgement)."""
        if not self.suggested:
            return "reviewer"
        return "algorithm" if self.judgement == self.suggested else "override"

    def to_dict(self) -> dict:
        return {
            "domain": self.domain,
            "suggested": self.suggested,
            "judgement": self.judgement,
            "source": self.source,
            "justification": self.justification,
            "answers": dict(self.answers),
            "reviewer": self.reviewer,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class StoredAssessment:
    """The current risk-of-bias judgements of one study with one tool (for one outcome)."""

    study_id: int
    study: str
    design: str
    tool: str
    outcome: str
    effect: str | None
    domains: tuple[StoredJudgement, ...]  # in the tool's order
    overall: StoredJudgement | None

    @property
    def judgements(self) -> dict[str, str]:
        """Final judgements by domain id plus ``"Overall"`` (the robvis plots' input)."""
        out = {j.domain: j.judgement for j in self.domains}
        if self.overall is not None:
            out["Overall"] = self.overall.judgement
        return out

    @property
    def answers(self) -> dict:
        """Every signalling answer (from the overall row, without the effect)."""
        if self.overall is None:
            return {k: v for j in self.domains for k, v in j.answers.items()}
        return {k: v for k, v in self.overall.answers.items() if k != EFFECT_KEY}

    @property
    def reviewers(self) -> tuple[str, ...]:
        rows = (*self.domains, *((self.overall,) if self.overall else ()))
        return tuple(dict.fromkeys(j.reviewer for j in rows))

    def to_dict(self) -> dict:
        return {
            "study_id": self.study_id,
            "study": self.study,
            "design": self.design,
            "tool": self.tool,
            "outcome": self.outcome,
            "effect": self.effect,
            "judgements": self.judgements,
            "domains": [j.to_dict() for j in self.domains],
            "overall": self.overall.to_dict() if self.overall else None,
        }

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for j in (*self.domains, *((self.overall,) if self.overall else ())):
            rows.append(
                {
                    "study": self.study,
                    "tool": self.tool,
                    "outcome": self.outcome,
                    "effect": self.effect,
                    "domain": j.domain,
                    "suggested": j.suggested,
                    "judgement": j.judgement,
                    "source": j.source,
                    "justification": j.justification,
                    "reviewer": j.reviewer,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        head = f"{self.study} ({self.tool}" + (f", {self.outcome}" if self.outcome else "")
        head += f", effect of {self.effect})" if self.effect else ")"
        lines = [head]
        for j in (*self.domains, *((self.overall,) if self.overall else ())):
            s = f"  {j.domain:<14} {j.judgement:<16}"
            if j.source == "override":
                s += f" overrides {j.suggested}: {j.justification}"
            elif j.justification:
                s += f" {j.justification}"
            lines.append(s)
        return "\n".join(lines)


def _order(tool_name: str, domain: str) -> tuple[int, str]:
    if domain.casefold() == OVERALL:
        return (10_000, domain)
    try:
        ids = get_tool(tool_name).domain_ids
    except ParameterError:
        return (5_000, domain)
    return (ids.index(domain), domain) if domain in ids else (5_000, domain)


def _newest(session: Session, study_id: int | None = None) -> dict[tuple, Judgement]:
    q = select(Judgement).order_by(Judgement.id)
    if study_id is not None:
        q = q.where(Judgement.study_id == study_id)
    out: dict[tuple, Judgement] = {}
    for j in session.scalars(q):
        out[(j.study_id, j.tool, j.outcome, j.domain)] = j
    return out


def _stored(j: Judgement) -> StoredJudgement:
    return StoredJudgement(
        id=j.id,
        domain=j.domain,
        suggested=j.suggested or "",
        judgement=j.judgement or "",
        justification=j.justification or "",
        answers=dict(j.answers or {}),
        reviewer=j.reviewer,
        created_at=aware(j.created_at),
    )


def current_judgements(
    session: Session, *, study: int | str | None = None, tool: str | None = None
) -> list[StoredAssessment]:
    """The current (newest) judgement of every domain, grouped per study x tool x outcome, by
    study label, tool and outcome. ``study`` (label or id) and ``tool`` narrow the list."""
    sid = get_study(session, study).id if study is not None else None
    newest = _newest(session, sid)
    meta = {
        i: (lab, des)
        for i, lab, des in session.execute(select(Study.id, Study.label, Study.design))
    }
    groups: dict[tuple, list[Judgement]] = defaultdict(list)
    for (s_id, t, outcome, _), j in newest.items():
        if tool is None or t == tool:
            groups[(s_id, t, outcome)].append(j)
    out = []
    for (s_id, t, outcome), rows in groups.items():
        rows.sort(key=lambda j: _order(t, j.domain))
        overall = next((j for j in rows if j.domain.casefold() == OVERALL), None)
        label, design = meta.get(s_id, (str(s_id), ""))
        effect = (overall.answers or {}).get(EFFECT_KEY) if overall is not None else None
        out.append(
            StoredAssessment(
                study_id=s_id,
                study=label,
                design=design,
                tool=t,
                outcome=outcome,
                effect=effect,
                domains=tuple(_stored(j) for j in rows if j is not overall),
                overall=_stored(overall) if overall is not None else None,
            )
        )
    out.sort(key=lambda a: (a.study, a.tool, a.outcome))
    return out


# -- writing --------------------------------------------------------------------------------------
def _rows_for(study_id: int, a: Assessment, outcome: str, reviewer: str) -> list[Judgement]:
    tool = get_tool(a.tool)
    rows = []
    for j in a.domains:
        qs = tool.domain(j.domain).for_effect(a.effect if tool.domain(j.domain).variants else None)
        rows.append(
            Judgement(
                study_id=study_id,
                tool=a.tool,
                outcome=outcome,
                domain=j.domain,
                answers={q.id: a.answers[q.id] for q in qs[0] if q.id in a.answers},
                suggested=j.suggested or "",
                judgement=j.judgement or "",
                justification=j.justification or "",
                reviewer=reviewer,
            )
        )
    answers = dict(a.answers)
    if a.effect is not None:
        answers[EFFECT_KEY] = a.effect
    rows.append(
        Judgement(
            study_id=study_id,
            tool=a.tool,
            outcome=outcome,
            domain=OVERALL,
            answers=answers,
            suggested=a.overall.suggested or "",
            judgement=a.overall.judgement or "",
            justification=a.overall.justification or "",
            reviewer=reviewer,
        )
    )
    return rows


def _same(a: Judgement, b: Judgement) -> bool:
    return (a.answers or {}, a.suggested, a.judgement, a.justification, a.reviewer) == (
        b.answers or {},
        b.suggested,
        b.judgement,
        b.justification,
        b.reviewer,
    )


def _audit_view(a: Assessment, outcome: str) -> dict:
    return {
        "tool": a.tool,
        "outcome": outcome,
        "effect": a.effect,
        "answers": dict(a.answers),
        "domains": {
            j.domain: {
                "suggested": j.suggested,
                "rule": j.rule,
                "judgement": j.judgement,
                "justification": j.justification,
                **({"stars": j.stars} if j.stars is not None else {}),
            }
            for j in a.domains
        },
        "overall": {
            "suggested": a.overall.suggested,
            "rule": a.overall.rule,
            "judgement": a.overall.judgement,
            "justification": a.overall.justification,
        },
        "flags": list(a.flags),
    }


def write_assessment(
    session: Session, study: Study, a: Assessment, outcome: str, reviewer: str
) -> list[Judgement]:
    """Append the rows of a complete assessment inside an open write transaction and audit it.
    Returns the new rows (none when every row equals the current one)."""
    rows = _rows_for(study.id, a, outcome, reviewer)
    current = {
        d: j
        for (_, t, o, d), j in _newest(session, study.id).items()
        if t == a.tool and o == outcome
    }
    if all(r.domain in current and _same(r, current[r.domain]) for r in rows):
        return []
    session.add_all(rows)
    session.flush()
    before = (
        {d: {"judgement": j.judgement, "reviewer": j.reviewer} for d, j in current.items()}
        if current
        else None
    )
    Store.audit(
        session,
        reviewer,
        "appraise.assessment",
        "study",
        study.id,
        before=before,
        after={"study": study.label, **_audit_view(a, outcome)},
    )
    return rows


def record_assessment(
    store: Store,
    protocol: Protocol,
    study_label: int | str,
    answers: Mapping[str, str],
    reviewer: str,
    *,
    tool: str | None = None,
    outcome: str = "",
    effect: str | None = None,
    overrides: Mapping[str, tuple[str, str]] | None = None,
    judgements: Mapping[str, str | tuple[str, str]] | None = None,
) -> StoredAssessment:
    """Record ``reviewer``'s risk-of-bias assessment of one study (one transaction, audited).

    ``answers``: question id -> answer code (``Y``, ``PY``, ... or the tool's options; labels
    such as "Probably yes" are accepted). ``tool`` defaults to the protocol's tool for the study's
    design. ``effect`` ("assignment" or "adhering") is required by RoB 2 and ROBINS-I.
    ``overrides``: domain id or ``"overall"`` -> ``(judgement, justification)``.
    ``judgements``: domain id -> judgement (or ``(judgement, justification)``) for domains the
    tool has no algorithm for. Everything is validated before anything is written: a bad answer,
    an override without justification or an incomplete assessment writes nothing. Returns the
    current assessment as stored."""
    check_appraiser(protocol, reviewer)
    outcome = check_outcome(protocol, outcome)
    with store.read() as s:
        st = get_study(s, study_label)
        study_id, label, design = st.id, st.label, st.design
    tool_name = resolve_tool(protocol, label, design, tool)
    a = build_assessment(
        tool_name, answers, effect=effect, overrides=overrides, judgements=judgements
    )
    with store.write() as s:
        st = s.get(Study, study_id)
        write_assessment(s, st, a, outcome, reviewer)
        return next(
            x for x in current_judgements(s, study=study_id, tool=tool_name) if x.outcome == outcome
        )


def judgements_frame(assessments: Iterable[StoredAssessment]) -> pd.DataFrame:
    """Long table of stored assessments: one row per study x tool x outcome x domain."""
    frames = [a.to_frame() for a in assessments]
    cols = [
        "study",
        "tool",
        "outcome",
        "effect",
        "domain",
        "suggested",
        "judgement",
        "source",
        "justification",
        "reviewer",
    ]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


__all__ = [
    "APPRAISER_ROLES",
    "OVERALL",
    "StoredAssessment",
    "StoredJudgement",
    "build_assessment",
    "check_appraiser",
    "current_judgements",
    "gaps",
    "judgements_frame",
    "protocol_tool",
    "record_assessment",
    "write_assessment",
]
