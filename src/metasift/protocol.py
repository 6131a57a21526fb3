"""The protocol: what the team agreed before screening, in ``protocol.yaml``, validated with pydantic.

A bad protocol raises :class:`~metasift.errors.ProtocolError` whose problems each name the key path
(``outcome_domains[2].outcomes[0].type``), the line in the file, what was expected and what was found.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from metasift.errors import ProtocolError

STAGES = ("title_abstract", "full_text")
ROLES = ("owner", "reviewer", "resolver", "viewer")
FIELD_TYPES = ("integer", "number", "text", "choice", "boolean", "date")
RISK_OF_BIAS_TOOLS = (
    "rob2",
    "robins_i",
    "nos_cohort",
    "nos_case_control",
    "jbi_case_series",
    "none",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Question(_Strict):
    """The review question (PICO)."""

    population: str
    intervention: str
    comparator: str = ""
    outcomes: str = ""
    study_designs: list[str] = Field(default_factory=list)


class Eligibility(_Strict):
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)


class StageSettings(_Strict):
    reviewers_per_record: Literal[1, 2] = 2
    exclusion_reasons: list[str] = Field(default_factory=list)
    reason_required: bool | None = (
        None  # default: optional at title/abstract, required at full text
    )

    @field_validator("exclusion_reasons")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({r for r in v if v.count(r) > 1})
        if dup:
            raise ValueError(f"exclusion reasons must be unique; repeated: {dup}")
        return v


class Screening(_Strict):
    title_abstract: StageSettings = StageSettings(reviewers_per_record=2)
    full_text: StageSettings = StageSettings(reviewers_per_record=2)
    keywords_include: list[str] = Field(default_factory=list)
    keywords_exclude: list[str] = Field(default_factory=list)

    def stage(self, name: str) -> StageSettings:
        return getattr(self, name)

    def reason_required(self, stage: str) -> bool:
        s = self.stage(stage)
        return s.reason_required if s.reason_required is not None else stage == "full_text"


class FormField(_Strict):
    """One field of an extraction form."""

    name: str
    type: Literal["integer", "number", "text", "choice", "boolean", "date"] = "text"
    unit: str = ""
    allowed: list[str] = Field(default_factory=list)
    required: bool = False
    min: float | None = None
    max: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _choice_needs_values(self):
        if self.type == "choice" and not self.allowed:
            raise ValueError("a 'choice' field needs a non-empty 'allowed' list")
        return self


class Outcome(_Strict):
    name: str
    type: Literal["continuous", "dichotomous", "ordinal", "count", "descriptive"] = "continuous"
    unit: str = ""
    direction: Literal["higher_is_better", "lower_is_better", "none"] = "none"
    description: str = ""


class OutcomeDomain(_Strict):
    name: str
    outcomes: list[Outcome] = Field(default_factory=list)


class Extraction(_Strict):
    extractors_per_study: Literal[1, 2] = 2
    study_fields: list[FormField] = Field(default_factory=list)
    outcome_fields: list[FormField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self):
        for level in ("study_fields", "outcome_fields"):
            names = [f.name for f in getattr(self, level)]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{level}: field names must be unique; repeated: {dup}")
        return self


class Reviewer(_Strict):
    name: str
    roles: list[Literal["owner", "reviewer", "resolver", "viewer"]] = Field(
        default_factory=lambda: ["reviewer"]
    )


class SynthesisSettings(_Strict):
    """Defaults for pooled analyses: Cochrane's 2025 defaults (REML, Hartung-Knapp, prediction interval)."""

    method: Literal["EE", "FE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS"] = "REML"
    test: Literal["z", "knha"] = "knha"
    level: float = 95
    prediction_interval: bool = True
    min_studies: int = 2


class Protocol(_Strict):
    title: str
    question: Question
    eligibility: Eligibility = Eligibility()
    screening: Screening = Screening()
    outcome_domains: list[OutcomeDomain] = Field(default_factory=list)
    extraction: Extraction = Extraction()
    risk_of_bias: dict[str, Literal[RISK_OF_BIAS_TOOLS]] = Field(default_factory=dict)  # type: ignore[valid-type]
    reviewers: list[Reviewer] = Field(default_factory=list)
    synthesis: SynthesisSettings = SynthesisSettings()

    @model_validator(mode="after")
    def _checks(self):
        names = [r.name for r in self.reviewers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"reviewer names must be unique; repeated: {dup}")
        domains = [d.name for d in self.outcome_domains]
        dup = sorted({n for n in domains if domains.count(n) > 1})
        if dup:
            raise ValueError(f"outcome domain names must be unique; repeated: {dup}")
        return self

    # -- convenience ---------------------------------------------------------------------------
    def outcomes(self) -> list[tuple[str, Outcome]]:
        return [(d.name, o) for d in self.outcome_domains for o in d.outcomes]

    def domain_of(self, outcome: str) -> str | None:
        for d, o in self.outcomes():
            if o.name == outcome:
                return d
        return None

    def exclusion_reasons(self, stage: str) -> list[str]:
        return list(self.screening.stage(stage).exclusion_reasons)

    def reviewers_with(self, role: str) -> list[str]:
        return [r.name for r in self.reviewers if role in r.roles]


# -- loading with located errors ---------------------------------------------------------------
def _loc_str(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _line_of(node, loc) -> int | None:
    """The 1-based line of the YAML node at key path ``loc`` (nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if node is None:
            break
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if k.value == part:
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _clip(v, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def parse_protocol(text: str, path: str | Path = "protocol.yaml") -> Protocol:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(unknown line)"
        raise ProtocolError(path, [(where, "valid YAML", str(exc).splitlines()[0])]) from None
    if not isinstance(data, dict):
        raise ProtocolError(path, [("(top level)", "a mapping of keys", type(data).__name__)])
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p.startswith("literal["))
            )
            line = _line_of(root, loc)
            key = _loc_str(loc) + (f" (line {line})" if line else "")
            found = "nothing (missing)" if err["type"] == "missing" else _clip(err.get("input"))
            expected = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                expected = "no such key (misspelt?)"
            problems.append((key, expected, found))
        raise ProtocolError(path, problems) from None


def load_protocol(path: str | Path) -> Protocol:
    p = Path(path)
    if not p.is_file():
        raise ProtocolError(p, [("(file)", "a protocol.yaml file", "no file")])
    return parse_protocol(p.read_text(encoding="utf-8-sig"), p)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


TEMPLATE = """\
# metasift protocol: what the review team agreed before screening.
# Edit it, then run `metasift protocol check .`; every change is versioned in the store.
title: "My systematic review"

# The review question (PICO).
question:
  population: "Adults with ..."
  intervention: "..."
  comparator: "placebo, usual care or no treatment"
  outcomes: "..."
  study_designs: [RCT, non-randomised study]

eligibility:
  inclusion:
    - "..."
  exclusion:
    - "..."

screening:
  # Words to highlight when screening (case-insensitive).
  keywords_include: []
  keywords_exclude: []
  title_abstract:
    reviewers_per_record: 2      # 1 or 2 independent reviewers
    exclusion_reasons: [wrong population, wrong intervention, wrong design, not primary research]
  full_text:
    reviewers_per_record: 2
    exclusion_reasons: [wrong population, wrong intervention, wrong design, wrong outcomes,
                        conference abstract only, duplicate report]

# Outcome domains and their outcomes (type: continuous|dichotomous|ordinal|count|descriptive).
outcome_domains:
  - name: primary
    outcomes:
      - {name: "main outcome", type: continuous, direction: lower_is_better, unit: ""}

extraction:
  extractors_per_study: 2
  # type: integer|number|text|choice|boolean|date; choice needs `allowed`.
  study_fields:
    - {name: design, type: choice, allowed: [RCT, cohort, case-control, case series], required: true}
    - {name: n_total, type: integer, min: 1, required: true}
  outcome_fields:
    - {name: n, type: integer, min: 0}
    - {name: mean, type: number}
    - {name: sd, type: number, min: 0}
    - {name: events, type: integer, min: 0}

# Risk-of-bias tool per study design: rob2 | robins_i | nos_cohort | nos_case_control | jbi_case_series | none
risk_of_bias:
  RCT: rob2
  cohort: robins_i

# Reviewers and roles: owner | reviewer | resolver | viewer
reviewers:
  - {name: alice, roles: [owner, reviewer]}
  - {name: bob, roles: [reviewer]}
  - {name: carol, roles: [resolver]}

# Pooled analyses (metafor codes). Cochrane's 2025 defaults: REML, Hartung-Knapp, prediction interval.
synthesis:
  method: REML
  test: knha
  level: 95
  prediction_interval: true
"""
