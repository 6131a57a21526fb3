"""The PRISMA 2020 flow diagram, counted from the store and drawn in the official template's layout.

Every count comes from the store (``prisma_counts``); none is typed in. Units follow Page et al.
(BMJ 2021;372:n71, Box 1): screening counts *records* (here: deduplicated references), retrieval
and eligibility count *reports*, inclusion counts *studies* and *reports*. Box labels and the
PRISMA2020 R package field names are in ``../shared/reference/prisma2020-flow.md`` (labels checked
against the package's ``inst/extdata/PRISMA.csv``).

How each box is derived:

* Records identified: ``Source.n_records`` summed per ``Source.database``; ``kind == "database"``
  and ``"register"`` feed the left arm, ``"other"`` (websites, citation searching, ...) the
  optional right arm ("Identification of studies via other methods").
* A reference belongs to the left arm when any of its records comes from a database or register
  source, else to the other-methods arm.
* Duplicate records removed = left-arm records held by an active reference - active left-arm
  references. Records removed for other reasons = identified - records held by an active reference
  (records counted by their source but not stored, or left outside every reference). Records marked
  ineligible by automation tools: 0 (the store has no automated exclusions).
* Records screened = active left-arm references (every one is eligible at title/abstract); excluded
  = title/abstract status ``excluded``; reports sought = status ``included``; any reference still
  pending or in conflict is shown as "awaiting a decision" (the review is then not finished).
* Reports not retrieved = full-text status ``not_retrieved``; assessed = sought - not retrieved;
  excluded per reason = full-text ``excluded`` grouped by reason.
* Studies included = ``Study`` rows; reports of included studies = ``StudyReport`` rows.
* Updated reviews: the "previous studies" arm is drawn when the store holds the setting
  ``prisma.previous_review`` = ``{"studies": n, "reports": n}`` (the counts of the earlier version).
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from metasift.errors import MetasiftError
from metasift.protocol import Protocol
from metasift.store.models import Record, Reference, Setting, Source, Study, StudyReport

PREVIOUS_REVIEW_SETTING = "prisma.previous_review"
LEFT_KINDS = ("database", "register")
NO_REASON = "reason not recorded"

# Box names as printed in the template (used in error messages and in to_frame()).
BOX = {
    "identified": "Records identified (databases and registers)",
    "duplicates": "Duplicate records removed",
    "excluded_automatic": "Records marked as ineligible by automation tools",
    "excluded_other": "Records removed for other reasons",
    "records_screened": "Records screened",
    "records_excluded": "Records excluded",
    "records_awaiting": "Records awaiting a decision",
    "reports_sought": "Reports sought for retrieval",
    "reports_not_retrieved": "Reports not retrieved",
    "reports_assessed": "Reports assessed for eligibility",
    "reports_excluded": "Reports excluded",
    "reports_awaiting": "Reports awaiting a decision",
    "reports_included": "Reports included (databases and registers)",
    "other_identified": "Records identified via other methods",
    "other_sought": "Reports sought for retrieval (other methods)",
    "other_not_retrieved": "Reports not retrieved (other methods)",
    "other_assessed": "Reports assessed for eligibility (other methods)",
    "other_excluded": "Reports excluded (other methods)",
    "other_awaiting": "Reports awaiting a decision (other methods)",
    "other_included": "Reports included (other methods)",
    "studies_included": "Studies included in review",
    "reports_of_included": "Reports of included studies",
    "previous_studies": "Studies included in previous version of review",
    "previous_reports": "Reports of studies included in previous version of review",
}


class PrismaError(MetasiftError):
    """The PRISMA counts break an arithmetic identity between boxes.

    ``problems`` is a list of ``(identity, boxes, message)``; ``boxes`` names every box involved.
    """

    def __init__(self, problems: list[tuple[str, tuple[str, ...], str]]):
        self.problems = list(problems)
        self.boxes = tuple(dict.fromkeys(b for _, bs, _ in self.problems for b in bs))
        lines = [f"{ident}: {msg}" for ident, _, msg in self.problems]
        super().__init__(
            "the PRISMA flow does not add up (boxes: "
            + "; ".join(self.boxes)
            + ")\n  "
            + "\n  ".join(lines)
        )


Counts = tuple[tuple[str, int], ...]  # (label, n) pairs, in display order


@dataclass(frozen=True)
class PrismaCounts:
    """Every box of the PRISMA 2020 flow diagram (new review; optional other-methods and
    previous-studies arms). Per-source and per-reason counts are ``((label, n), ...)``."""

    databases: Counts
    registers: Counts
    duplicates: int
    excluded_automatic: int
    excluded_other: int
    records_screened: int
    records_excluded: int
    records_awaiting: int
    reports_sought: int
    reports_not_retrieved: int
    reports_assessed: int
    reports_excluded: Counts
    reports_awaiting: int
    reports_included: int
    studies_included: int
    reports_of_included: int
    other_sources: Counts = ()
    other_sought: int = 0
    other_not_retrieved: int = 0
    other_assessed: int = 0
    other_excluded: Counts = ()
    other_awaiting: int = 0
    other_included: int = 0
    previous_studies: int | None = None
    previous_reports: int | None = None
    notes: tuple[str, ...] = field(default=())

    # -- derived totals ---------------------------------------------------------------------------
    @property
    def identified_databases(self) -> int:
        return sum(n for _, n in self.databases)

    @property
    def identified_registers(self) -> int:
        return sum(n for _, n in self.registers)

    @property
    def identified(self) -> int:
        return self.identified_databases + self.identified_registers

    @property
    def reports_excluded_total(self) -> int:
        return sum(n for _, n in self.reports_excluded)

    @property
    def other_identified(self) -> int:
        return sum(n for _, n in self.other_sources)

    @property
    def other_excluded_total(self) -> int:
        return sum(n for _, n in self.other_excluded)

    @property
    def other_used(self) -> bool:
        return bool(self.other_sources) or self.other_sought > 0

    @property
    def previous_used(self) -> bool:
        return self.previous_studies is not None

    @property
    def total_studies(self) -> int:
        return self.studies_included + (self.previous_studies or 0)

    @property
    def total_reports(self) -> int:
        return self.reports_of_included + (self.previous_reports or 0)

    # -- identities -------------------------------------------------------------------------------
    def problems(self) -> list[tuple[str, tuple[str, ...], str]]:
        """Every broken identity as ``(id, boxes, message)`` (ids follow the spec's A1-A10)."""
        out: list[tuple[str, tuple[str, ...], str]] = []

        def need(ident, ok, boxes, msg):
            if not ok:
                out.append((ident, tuple(BOX[b] for b in boxes), msg))

        ints = {
            k: v
            for k, v in asdict(self).items()
            if isinstance(v, int) and not isinstance(v, bool) and v is not None
        }
        for label_counts in ("databases", "registers", "reports_excluded"):
            for label, n in getattr(self, label_counts):
                ints[f"{label_counts}[{label}]"] = n
        for label_counts in ("other_sources", "other_excluded"):
            for label, n in getattr(self, label_counts):
                ints[f"{label_counts}[{label}]"] = n
        neg = sorted(k for k, v in ints.items() if v < 0)
        if neg:
            boxes = tuple(BOX.get(k.split("[")[0], k.split("[")[0].replace("_", " ")) for k in neg)
            out.append(("A10", tuple(dict.fromkeys(boxes)), f"negative counts: {', '.join(neg)}"))
        removed = self.duplicates + self.excluded_automatic + self.excluded_other
        need(
            "A2",
            self.records_screened == self.identified - removed,
            (
                "records_screened",
                "identified",
                "duplicates",
                "excluded_automatic",
                "excluded_other",
            ),
            f"records screened ({self.records_screened}) != records identified "
            f"({self.identified}) - removed before screening ({removed})",
        )
        need(
            "A3",
            self.reports_sought
            == self.records_screened - self.records_excluded - self.records_awaiting,
            ("reports_sought", "records_screened", "records_excluded", "records_awaiting"),
            f"reports sought ({self.reports_sought}) != records screened "
            f"({self.records_screened}) - excluded ({self.records_excluded}) - awaiting "
            f"({self.records_awaiting})",
        )
        need(
            "A4",
            self.reports_assessed == self.reports_sought - self.reports_not_retrieved,
            ("reports_assessed", "reports_sought", "reports_not_retrieved"),
            f"reports assessed ({self.reports_assessed}) != sought ({self.reports_sought}) - "
            f"not retrieved ({self.reports_not_retrieved})",
        )
        need(
            "A5",
            self.reports_included
            == self.reports_assessed - self.reports_excluded_total - self.reports_awaiting,
            ("reports_included", "reports_assessed", "reports_excluded", "reports_awaiting"),
            f"reports included ({self.reports_included}) != assessed ({self.reports_assessed}) "
            f"- excluded ({self.reports_excluded_total}) - awaiting ({self.reports_awaiting})",
        )
        need(
            "A6",
            self.other_assessed == self.other_sought - self.other_not_retrieved,
            ("other_assessed", "other_sought", "other_not_retrieved"),
            f"other-methods reports assessed ({self.other_assessed}) != sought "
            f"({self.other_sought}) - not retrieved ({self.other_not_retrieved})",
        )
        need(
            "A6",
            self.other_included
            == self.other_assessed - self.other_excluded_total - self.other_awaiting,
            ("other_included", "other_assessed", "other_excluded", "other_awaiting"),
            f"other-methods reports included ({self.other_included}) != assessed "
            f"({self.other_assessed}) - excluded ({self.other_excluded_total}) - awaiting "
            f"({self.other_awaiting})",
        )
        need(
            "A7",
            self.reports_of_included == self.reports_included + self.other_included,
            ("reports_of_included", "reports_included", "other_included"),
            f"reports of included studies ({self.reports_of_included}) != reports included at "
            f"full text ({self.reports_included} + {self.other_included} via other methods)",
        )
        need(
            "A8",
            self.studies_included <= self.reports_of_included,
            ("studies_included", "reports_of_included"),
            f"studies included ({self.studies_included}) > reports of included studies "
            f"({self.reports_of_included})",
        )
        need(
            "A10",
            (self.previous_studies is None) == (self.previous_reports is None)
            and (self.previous_studies or 0) <= (self.previous_reports or 0),
            ("previous_studies", "previous_reports"),
            f"previous studies ({self.previous_studies}) and reports ({self.previous_reports}) "
            "must both be given, with studies <= reports",
        )
        return out

    def check(self) -> PrismaCounts:
        """Raise :class:`PrismaError` naming the boxes that disagree; return ``self`` if all hold."""
        problems = self.problems()
        if problems:
            raise PrismaError(problems)
        return self

    # -- views ------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per number in the diagram: ``box``, ``item`` (source/reason or ""), ``n``."""
        rows = [(BOX["identified"], f"Databases: {lbl}", n) for lbl, n in self.databases]
        rows += [(BOX["identified"], f"Registers: {lbl}", n) for lbl, n in self.registers]
        rows += [
            (BOX["duplicates"], "", self.duplicates),
            (BOX["excluded_automatic"], "", self.excluded_automatic),
            (BOX["excluded_other"], "", self.excluded_other),
            (BOX["records_screened"], "", self.records_screened),
            (BOX["records_excluded"], "", self.records_excluded),
        ]
        if self.records_awaiting:
            rows.append((BOX["records_awaiting"], "", self.records_awaiting))
        rows += [
            (BOX["reports_sought"], "", self.reports_sought),
            (BOX["reports_not_retrieved"], "", self.reports_not_retrieved),
            (BOX["reports_assessed"], "", self.reports_assessed),
        ]
        rows += [(BOX["reports_excluded"], r, n) for r, n in self.reports_excluded]
        if self.reports_awaiting:
            rows.append((BOX["reports_awaiting"], "", self.reports_awaiting))
        if self.other_used:
            rows += [(BOX["other_identified"], lbl, n) for lbl, n in self.other_sources]
            rows += [
                (BOX["other_sought"], "", self.other_sought),
                (BOX["other_not_retrieved"], "", self.other_not_retrieved),
                (BOX["other_assessed"], "", self.other_assessed),
            ]
            rows += [(BOX["other_excluded"], r, n) for r, n in self.other_excluded]
        if self.previous_used:
            rows += [
                (BOX["previous_studies"], "", self.previous_studies),
                (BOX["previous_reports"], "", self.previous_reports),
            ]
        rows += [
            (BOX["studies_included"], "", self.studies_included),
            (BOX["reports_of_included"], "", self.reports_of_included),
        ]
        if self.previous_used:
            rows += [
                ("Total studies included in review", "", self.total_studies),
                ("Reports of total included studies", "", self.total_reports),
            ]
        return pd.DataFrame(rows, columns=["box", "item", "n"])

    def prisma2020_fields(self) -> dict[str, object]:
        """The counts under the PRISMA2020 R package's field names (``PRISMA.csv``), so the same
        diagram can be drawn there; reasons use its "Reason, n; Reason, n" format."""

        def reasons(c: Counts) -> str:
            return "; ".join(f"{r}, {n}" for r, n in c)

        return {
            "previous_studies": self.previous_studies,
            "previous_reports": self.previous_reports,
            "database_results": self.identified_databases,
            "register_results": self.identified_registers,
            "website_results": None,
            "organisation_results": None,
            "citations_results": None,
            "duplicates": self.duplicates,
            "excluded_automatic": self.excluded_automatic,
            "excluded_other": self.excluded_other,
            "records_screened": self.records_screened,
            "records_excluded": self.records_excluded,
            "dbr_sought_reports": self.reports_sought,
            "dbr_notretrieved_reports": self.reports_not_retrieved,
            "dbr_assessed": self.reports_assessed,
            "dbr_excluded": reasons(self.reports_excluded),
            "other_sought_reports": self.other_sought,
            "other_notretrieved_reports": self.other_not_retrieved,
            "other_assessed": self.other_assessed,
            "other_excluded": reasons(self.other_excluded),
            "new_studies": self.studies_included,
            "new_reports": self.reports_of_included,
            "total_studies": self.total_studies if self.previous_used else None,
            "total_reports": self.total_reports if self.previous_used else None,
        }

    def summary(self) -> str:
        df = self.to_frame()
        width = max(
            len(f"{b}{': ' + i if i else ''}") for b, i in zip(df.box, df["item"], strict=True)
        )
        lines = ["PRISMA 2020 flow (counted from the store)"]
        for b, i, n in df.itertuples(index=False):
            label = f"{b}: {i}" if i else b
            lines.append(f"  {label:<{width}}  {n:>7,}")
        problems = self.problems()
        lines.append(
            "  identities: all hold"
            if not problems
            else "  identities broken: " + "; ".join(p[0] for p in problems)
        )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- counting from the store ---------------------------------------------------------------------
def _per_source(session: Session, kinds: tuple[str, ...]) -> Counts:
    rows = session.execute(
        select(Source.database, func.sum(Source.n_records))
        .where(Source.kind.in_(kinds))
        .group_by(Source.database)
        .order_by(Source.database)
    ).all()
    return tuple((str(d), int(n or 0)) for d, n in rows)


def _by_reason(states, refs) -> Counts:
    c = Counter((states[r].reason or NO_REASON) for r in refs)
    return tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _full_text_arm(ta, ft, refs: set[int]) -> dict:
    sought = {r for r in refs if r in ta and ta[r].status == "included"}
    not_retrieved = {r for r in sought if r in ft and ft[r].status == "not_retrieved"}
    excluded = {r for r in sought if r in ft and ft[r].status == "excluded"}
    included = {r for r in sought if r in ft and ft[r].status == "included"}
    assessed = sought - not_retrieved
    return {
        "sought": len(sought),
        "not_retrieved": len(not_retrieved),
        "assessed": len(assessed),
        "excluded": _by_reason(ft, excluded),
        "awaiting": len(assessed - excluded - included),
        "included": len(included),
    }


def prisma_counts(session: Session, protocol: Protocol) -> PrismaCounts:
    """Count every PRISMA 2020 box from the store (see the module docstring for each rule)."""
    from metasift.screening.decisions import stage_states

    databases = _per_source(session, ("database",))
    registers = _per_source(session, ("register",))
    other_sources = _per_source(session, ("other",))

    active = set(session.scalars(select(Reference.id).where(Reference.active)))
    rec_rows = session.execute(
        select(Record.id, Record.reference_id, Source.kind).join(
            Source, Record.source_id == Source.id
        )
    ).all()
    kinds_of_ref: dict[int, set[str]] = defaultdict(set)
    left_records_in_active = 0
    for _rid, ref, kind in rec_rows:
        if ref is not None and ref in active:
            kinds_of_ref[ref].add(kind)
            if kind in LEFT_KINDS:
                left_records_in_active += 1
    left_refs = {r for r in active if kinds_of_ref.get(r, set()) & set(LEFT_KINDS)}
    other_refs = active - left_refs

    identified = sum(n for _, n in databases) + sum(n for _, n in registers)
    duplicates = left_records_in_active - len(left_refs)
    excluded_other = identified - left_records_in_active

    ta = stage_states(session, protocol, "title_abstract")
    ft = stage_states(session, protocol, "full_text")
    ta_excluded = sum(1 for r in left_refs if r in ta and ta[r].status == "excluded")
    ta_included = sum(1 for r in left_refs if r in ta and ta[r].status == "included")
    left = _full_text_arm(ta, ft, left_refs)
    other = _full_text_arm(ta, ft, other_refs)

    n_studies = session.scalar(select(func.count(Study.id))) or 0
    n_reports = session.scalar(select(func.count(StudyReport.id))) or 0

    prev = session.get(Setting, PREVIOUS_REVIEW_SETTING)
    prev_studies = prev_reports = None
    notes: list[str] = []
    if prev is not None:
        prev_studies = int((prev.value or {}).get("studies", 0))
        prev_reports = int((prev.value or {}).get("reports", 0))
    awaiting_ta = len(left_refs) - ta_excluded - ta_included
    if awaiting_ta:
        notes.append(f"{awaiting_ta} records still await a title/abstract decision")
    if left["awaiting"] + other["awaiting"]:
        notes.append(
            f"{left['awaiting'] + other['awaiting']} reports still await a full-text decision"
        )
    return PrismaCounts(
        databases=databases,
        registers=registers,
        duplicates=duplicates,
        excluded_automatic=0,
        excluded_other=excluded_other,
        records_screened=len(left_refs),
        records_excluded=ta_excluded,
        records_awaiting=awaiting_ta,
        reports_sought=left["sought"],
        reports_not_retrieved=left["not_retrieved"],
        reports_assessed=left["assessed"],
        reports_excluded=left["excluded"],
        reports_awaiting=left["awaiting"],
        reports_included=left["included"],
        studies_included=int(n_studies),
        reports_of_included=int(n_reports),
        other_sources=other_sources,
        other_sought=other["sought"],
        other_not_retrieved=other["not_retrieved"],
        other_assessed=other["assessed"],
        other_excluded=other["excluded"],
        other_awaiting=other["awaiting"],
        other_included=other["included"],
        previous_studies=prev_studies,
        previous_reports=prev_reports,
        notes=tuple(notes),
    )


# -- drawing ---------------------------------------------------------------------------------------
YELLOW = "#FFC000"  # the template's header of the databases-and-registers arm
GREY = "#D9D9D9"  # header of the other-methods and previous-studies arms
BLUE = "#A6C8E8"  # the phase bands down the left edge
LINE = 0.19  # inches per text line at 9 pt
PAD = 0.12
WRAP = 44  # characters per line in a 3.4-inch box at 9 pt


def _fmt(n: int) -> str:
    return f"n = {n:,}"


def _lines(parts: list[str], wrap: int = WRAP) -> list[str]:
    """Wrap each part to the box width, never breaking inside "(n = 1,234)"."""
    out: list[str] = []
    for p in parts:
        indent = "    " if p.startswith("    ") else ""
        keep = p.strip().replace("n = ", "n\u00a0=\u00a0")
        wrapped = textwrap.wrap(
            keep, wrap, initial_indent=indent, subsequent_indent=indent + "  "
        ) or [""]
        # indents as no-break spaces: SVG collapses ordinary leading spaces
        out += [
            w.replace("\u00a0", " ").replace("  ", "\u00a0\u00a0")
            if w.startswith(" ")
            else w.replace("\u00a0", " ")
            for w in wrapped
        ]
    return out


def _box_texts(c: PrismaCounts) -> dict[str, list[str]]:
    t: dict[str, list[str]] = {}
    ident = ["Records identified from*:"]
    if c.databases:
        ident.append(f"Databases ({_fmt(c.identified_databases)})")
        if len(c.databases) > 1:
            ident += [f"    {lbl} ({_fmt(n)})" for lbl, n in c.databases]
    else:
        ident.append(f"Databases ({_fmt(0)})")
    ident.append(f"Registers ({_fmt(c.identified_registers)})")
    if len(c.registers) > 1:
        ident += [f"    {lbl} ({_fmt(n)})" for lbl, n in c.registers]
    t["L1"] = ident
    t["L2"] = [
        "Records removed before screening:",
        f"    Duplicate records removed ({_fmt(c.duplicates)})",
        f"    Records marked as ineligible by automation tools ({_fmt(c.excluded_automatic)})",
        f"    Records removed for other reasons ({_fmt(c.excluded_other)})",
    ]
    t["L3"] = [f"Records screened ({_fmt(c.records_screened)})"]
    t["L4"] = [f"Records excluded** ({_fmt(c.records_excluded)})"]
    if c.records_awaiting:
        t["L4"].append(f"Records awaiting a decision ({_fmt(c.records_awaiting)})")
    t["L5"] = [f"Reports sought for retrieval ({_fmt(c.reports_sought)})"]
    t["L6"] = [f"Reports not retrieved ({_fmt(c.reports_not_retrieved)})"]
    t["L7"] = [f"Reports assessed for eligibility ({_fmt(c.reports_assessed)})"]
    t["L8"] = ["Reports excluded:"] + (
        [f"    {r} ({_fmt(n)})" for r, n in c.reports_excluded] or [f"    none ({_fmt(0)})"]
    )
    if c.reports_awaiting:
        t["L8"].append(f"Reports awaiting a decision ({_fmt(c.reports_awaiting)})")
    new = "New studies" if c.previous_used else "Studies"
    rep = "Reports of new included studies" if c.previous_used else "Reports of included studies"
    t["INC"] = [
        f"{new} included in review ({_fmt(c.studies_included)})",
        f"{rep} ({_fmt(c.reports_of_included)})",
    ]
    if c.other_used:
        t["R1"] = ["Records identified from:"] + [
            f"    {lbl} ({_fmt(n)})" for lbl, n in c.other_sources
        ]
        t["R2"] = [f"Reports sought for retrieval ({_fmt(c.other_sought)})"]
        t["R3"] = [f"Reports not retrieved ({_fmt(c.other_not_retrieved)})"]
        t["R4"] = [f"Reports assessed for eligibility ({_fmt(c.other_assessed)})"]
        t["R5"] = ["Reports excluded:"] + (
            [f"    {r} ({_fmt(n)})" for r, n in c.other_excluded] or [f"    none ({_fmt(0)})"]
        )
        if c.other_awaiting:
            t["R5"].append(f"Reports awaiting a decision ({_fmt(c.other_awaiting)})")
    if c.previous_used:
        t["P1"] = [
            f"Studies included in previous version of review ({_fmt(c.previous_studies)})",
            "Reports of studies included in previous version of review "
            f"({_fmt(c.previous_reports)})",
        ]
        t["TOT"] = [
            f"Total studies included in review ({_fmt(c.total_studies)})",
            f"Reports of total included studies ({_fmt(c.total_reports)})",
        ]
    return {k: _lines(v) for k, v in t.items()}


def draw_prisma(counts: PrismaCounts, path: str | Path, *, dpi: int = 200) -> dict[str, Path]:
    """Draw the PRISMA 2020 flow diagram (template for new reviews, with the other-methods and
    previous-studies arms when used) to ``path`` with the suffixes .svg, .png and .pdf.

    The identities are checked first (:class:`PrismaError` names the boxes that disagree).
    SVG text is kept as text (searchable, selectable). Returns ``{"svg": ..., "png": ...,
    "pdf": ...}``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    counts.check()
    texts = _box_texts(counts)
    base = Path(path)
    base = base.with_suffix("") if base.suffix.lower() in (".svg", ".png", ".pdf") else base
    base.parent.mkdir(parents=True, exist_ok=True)

    def h(key: str) -> float:
        return len(texts[key]) * LINE + 2 * PAD

    # columns (x of left edge, width), in inches
    band_w, gap, bw, sw = 0.45, 0.45, 3.4, 3.4
    x = 0.1
    cols: dict[str, tuple[float, float]] = {"band": (x, band_w)}
    x += band_w + 0.2
    if counts.previous_used:
        cols["prev"] = (x, 2.6)
        x += 2.6 + gap
    cols["main"] = (x, bw)
    x += bw + gap
    cols["side"] = (x, sw)
    x += sw
    if counts.other_used:
        x += gap + 0.15
        cols["omain"] = (x, 2.7)
        x += 2.7 + gap
        cols["oside"] = (x, 2.7)
        x += 2.7
    width = x + 0.15

    rows = [
        ["L1", "L2", "R1", "P1"],
        ["L3", "L4"],
        ["L5", "L6", "R2", "R3"],
        ["L7", "L8", "R4", "R5"],
        ["INC"],
    ]
    if counts.previous_used:
        rows.append(["TOT"])
    header_h, vgap = 0.55, 0.42
    heights = [max(h(k) for k in r if k in texts) for r in rows]
    heights[4] = max(heights[4], 1.0)  # room for the rotated "Included" band label
    foot = "*Records are listed per database/register where more than one was searched."
    if counts.excluded_automatic == 0:
        foot += " **No automation tool excluded records; every exclusion was made by reviewers."
    foot += (
        " From: Page MJ, McKenzie JE, Bossuyt PM, et al. The PRISMA 2020 statement: an updated"
        " guideline for reporting systematic reviews. BMJ 2021;372:n71. Counts derived by"
        " metasift from the review store."
    )
    foot_wrapped = textwrap.wrap(foot, max(40, int((width - 0.3) * 17)))
    foot_h = 0.25 + 0.14 * len(foot_wrapped)
    height = 0.15 + header_h + 0.25 + sum(heights) + vgap * (len(rows) - 1) + 0.2 + foot_h
    ys: list[float] = []  # top of each row
    y = height - 0.15 - header_h - 0.25
    for rh in heights:
        ys.append(y)
        y -= rh + vgap

    col_of = {
        "L1": "main",
        "L3": "main",
        "L5": "main",
        "L7": "main",
        "INC": "main",
        "TOT": "main",
        "L2": "side",
        "L4": "side",
        "L6": "side",
        "L8": "side",
        "R1": "omain",
        "R2": "omain",
        "R4": "omain",
        "R3": "oside",
        "R5": "oside",
        "P1": "prev",
    }
    geo: dict[str, tuple[float, float, float, float]] = {}  # key -> (x, y_bottom, w, h)
    for ri, r in enumerate(rows):
        for k in r:
            if k not in texts:
                continue
            cx, cw = cols[col_of[k]]
            bh = heights[ri] if col_of[k] in ("main", "omain", "prev") else h(k)
            top = ys[ri]
            if col_of[k] in ("side", "oside"):  # side boxes centred on their row
                top = ys[ri] - (heights[ri] - bh) / 2
            geo[k] = (cx, top - bh, cw, bh)

    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")

    def box(key: str):
        bx, by, bw_, bh_ = geo[key]
        ax.add_patch(
            Rectangle((bx, by), bw_, bh_, facecolor="white", edgecolor="black", linewidth=0.9)
        )
        ax.text(
            bx + 0.1,
            by + bh_ - PAD,
            "\n".join(texts[key]),
            ha="left",
            va="top",
            fontsize=9,
            linespacing=1.3,
            gid=f"prisma-{key}",
        )

    def rounded(x0, y0, w, hh, face):
        ax.add_patch(
            FancyBboxPatch(
                (x0, y0),
                w,
                hh,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=face,
                edgecolor="black",
                linewidth=0.9,
            )
        )

    def header(col_keys: list[str], label: str, face: str):
        x0 = cols[col_keys[0]][0]
        x1 = cols[col_keys[-1]][0] + cols[col_keys[-1]][1]
        top = height - 0.15
        rounded(x0, top - header_h, x1 - x0, header_h, face)
        lines = textwrap.wrap(label, max(20, int((x1 - x0) * 10)))
        ax.text(
            (x0 + x1) / 2,
            top - header_h / 2,
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=10 if len(lines) == 1 else 9,
            fontweight="bold",
        )

    def arrow(p0, p1):
        ax.add_patch(
            FancyArrowPatch(
                p0,
                p1,
                arrowstyle="-|>",
                mutation_scale=11,
                linewidth=0.9,
                color="black",
                shrinkA=0,
                shrinkB=0,
            )
        )

    def down(a: str, b: str):
        ax0, ay0, aw, _ = geo[a]
        _, by0, _, bh_ = geo[b]
        arrow((ax0 + aw / 2, ay0), (ax0 + aw / 2, by0 + bh_))

    def side(a: str, b: str):
        ax0, ay0, aw, ah = geo[a]
        bx0, by0, _, bh_ = geo[b]
        yy = by0 + bh_ / 2
        arrow((ax0 + aw, yy), (bx0, yy))

    def elbow(a: str, b: str, into: str):
        """From the bottom of ``a`` down to the middle of ``b``, then across into it."""
        ax0, ay0, aw, _ = geo[a]
        bx0, by0, bw_, bh_ = geo[b]
        mid = by0 + bh_ / 2
        ax.plot([ax0 + aw / 2, ax0 + aw / 2], [ay0, mid], color="black", linewidth=0.9)
        arrow((ax0 + aw / 2, mid), (bx0 + bw_ if into == "right" else bx0, mid))

    new = "new " if counts.previous_used else ""
    header(["main", "side"], f"Identification of {new}studies via databases and registers", YELLOW)
    if counts.other_used:
        header(["omain", "oside"], f"Identification of {new}studies via other methods", GREY)
    if counts.previous_used:
        header(["prev"], "Previous studies", GREY)

    for k in texts:
        box(k)
    for a, b in (("L1", "L3"), ("L3", "L5"), ("L5", "L7"), ("L7", "INC")):
        down(a, b)
    for a, b in (("L1", "L2"), ("L3", "L4"), ("L5", "L6"), ("L7", "L8")):
        side(a, b)
    if counts.other_used:
        down("R1", "R2")
        down("R2", "R4")
        side("R2", "R3")
        side("R4", "R5")
        elbow("R4", "INC", "right")
    if counts.previous_used:
        down("INC", "TOT")
        elbow("P1", "TOT", "left")

    # phase bands down the left edge
    bx0, bw0 = cols["band"]
    phases = [("Identification", 0, 0), ("Screening", 1, 3), ("Included", 4, len(rows) - 1)]
    for label, r0, r1 in phases:
        top = ys[r0]
        bottom = ys[r1] - heights[r1]
        rounded(bx0, bottom, bw0, top - bottom, BLUE)
        ax.text(
            bx0 + bw0 / 2,
            (top + bottom) / 2,
            label,
            rotation=90,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
        )
    ax.text(0.15, 0.12, "\n".join(foot_wrapped), fontsize=7, ha="left", va="bottom")

    out = {}
    save_kw = {"svg": {"metadata": {"Date": None}}, "pdf": {"metadata": {"CreationDate": None}}}
    # SVG text stays text (searchable); PDF uses Type 3 fonts (Type 42 subsetting costs seconds)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "prisma"}):
        for ext in ("svg", "png", "pdf"):
            p = base.with_suffix(f".{ext}")
            fig.savefig(p, format=ext, dpi=dpi, facecolor="white", **save_kw.get(ext, {}))
            out[ext] = p
    return out
