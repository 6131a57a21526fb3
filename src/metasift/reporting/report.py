"""``build_report``: rebuild ``out/`` from the store — report.html, report.docx, the PRISMA
diagram (SVG/PNG/PDF), figures and every table as CSV.

The HTML is self-contained apart from its image files next to it (``prisma.svg``,
``figures/*.png``): CSS inline, no JavaScript. The DOCX holds the same sections with real Word
tables (python-docx). What ``build_report`` deletes before writing is only what it writes itself.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from metasift import __version__
from metasift.reporting import tables as T
from metasift.reporting.checklist import prisma_checklist
from metasift.reporting.prisma import draw_prisma, prisma_counts

TEMPLATES = Path(__file__).with_name("templates")
OWN = ("report.html", "report.docx", "prisma.svg", "prisma.png", "prisma.pdf", "tables", "figures")


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote."""

    out_dir: Path
    html: Path
    docx: Path
    prisma: dict
    tables: dict = field(default_factory=dict)  # key -> CSV path
    figures: dict = field(default_factory=dict)  # key -> PNG path
    store_checksum: str = ""

    def summary(self) -> str:
        lines = [
            f"report written to {self.out_dir}",
            f"  HTML   {self.html}",
            f"  DOCX   {self.docx}",
            f"  PRISMA {self.prisma.get('svg')} (+ .png, .pdf)",
            f"  tables {len(self.tables)} CSV files in {self.out_dir / 'tables'}",
            f"  figures {len(self.figures)}",
            f"  store checksum {self.store_checksum}",
        ]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        rows = [("html", "report", self.html), ("docx", "report", self.docx)]
        rows += [(k, "prisma", p) for k, p in self.prisma.items()]
        rows += [("csv", k, p) for k, p in self.tables.items()]
        rows += [("png", k, p) for k, p in self.figures.items()]
        return pd.DataFrame(rows, columns=["kind", "name", "path"])


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def _clean(out: Path) -> None:
    for name in OWN:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def collect(review, out: Path) -> tuple[list[T.Section], dict, str, dict]:
    """Read the store and draw the figures; returns the report sections, the provenance and the
    store checksum."""
    protocol = review.protocol
    figures_dir = out / "figures"
    with review.store.read() as s:
        counts = prisma_counts(s, protocol)
        counts.check()
        checksum = T.store_checksum(s)
        values, values_from = T.final_values(s, protocol)
        paras, agree = T.methods_section(s, protocol, counts)
        searches = T.searches_table(s)
        excluded = T.excluded_reports_table(s, protocol)
        chars = T.characteristics_table(s, protocol, values)
        pooled = T.pooled_characteristics_table(values)
        outcomes = T.outcomes_table(protocol, values, T.stored_directions(s))
        outcome_data = T.outcome_data_table(protocol, values)
        rob, rob_plot = T.risk_of_bias_table(s, protocol)
        syn, fits = T.syntheses_table(s)
        stored_dirs = T.stored_directions(s)
        aes = T.adverse_events_table(protocol, values)
        sof = T.sof_frame(protocol, values, fits, s, stored_dirs)
        counts_rows = T.row_counts(s)
    prisma = draw_prisma(counts, out / "prisma")

    figs: dict[str, list[T.Figure]] = {"rob": [], "syn": [], "dir": []}
    notes: dict[str, list[str]] = {"rob": [], "syn": [], "dir": []}
    for tool, data in rob_plot.items():
        try:
            from metasift.appraisal.plots import summary_plot, traffic_light

            for kind, fn in (("traffic_light", traffic_light), ("summary", summary_plot)):
                key = f"rob_{kind}_{tool}"
                _save(fn(data, tool), figures_dir / f"{key}.png")
                figs["rob"].append(
                    T.Figure(
                        key,
                        f"Risk of bias ({tool}): {kind.replace('_', ' ')}",
                        f"figures/{key}.png",
                    )
                )
        except Exception as exc:  # noqa: BLE001 - a plot that cannot be drawn is named, not fatal
            notes["rob"].append(f"Risk-of-bias plot for {tool} not drawn: {exc}")
    for i, (a, fit) in enumerate(fits, 1):
        try:
            from metasift.synthesis import forest

            key = f"forest_{i}"
            transf = (
                "exp" if (a.settings or {}).get("measure") in ("RR", "OR", "HR", "IRR") else None
            )
            _save(forest(fit, transf=transf, title=a.outcome), figures_dir / f"{key}.png")
            figs["syn"].append(T.Figure(key, f"Forest plot: {a.outcome}", f"figures/{key}.png"))
        except Exception as exc:  # noqa: BLE001
            notes["syn"].append(f"Forest plot for {a.outcome} not drawn: {exc}")
    dir_in = T.direction_inputs(protocol, values, stored_dirs)
    dir_table = None
    if dir_in is not None:
        try:
            from metasift.synthesis import direction_summary, effect_direction_plot

            ds = direction_summary(**dir_in)
            _save(effect_direction_plot(ds), figures_dir / "effect_direction.png")
            figs["dir"].append(
                T.Figure(
                    "effect_direction", "Effect direction plot", "figures/effect_direction.png"
                )
            )
            vt = pd.DataFrame(
                [
                    {
                        "Domain": v.domain,
                        "Benefit": v.benefit,
                        "Harm": v.harm,
                        "No change or mixed": v.excluded,
                        "Sign test P": round(v.pval, 4) if v.n else None,
                        "Sentence": v.sentence(),
                    }
                    for v in ds.votes
                ]
            )
            dir_table = T.Table("vote_counts", "Vote counting by direction of effect", vt)
        except Exception as exc:  # noqa: BLE001
            notes["dir"].append(f"Effect direction plot not drawn: {exc}")

    prisma_table = T.Table("prisma", "PRISMA 2020 flow counts", counts.to_frame())
    sections = [
        T.Section("question", "Review question", tables=(T.question_table(protocol),)),
        T.Section(
            "methods",
            "Methods",
            paragraphs=tuple(paras),
            tables=(searches, agree),
        ),
        T.Section(
            "selection",
            "Study selection",
            paragraphs=(
                f"The searches gave {counts.identified:,} records; after removing "
                f"{counts.duplicates:,} duplicates, {counts.records_screened:,} were screened and "
                f"{counts.records_excluded:,} excluded on title and abstract. Of "
                f"{counts.reports_sought:,} reports sought, {counts.reports_not_retrieved:,} could "
                f"not be retrieved and {counts.reports_excluded_total:,} were excluded at full "
                f"text; {counts.studies_included:,} studies ({counts.reports_of_included:,} "
                "reports) were included.",
                *counts.notes,
            ),
            tables=(prisma_table, excluded),
            figures=(T.Figure("prisma", "PRISMA 2020 flow diagram", "prisma.svg"),),
        ),
        T.Section(
            "characteristics",
            "Characteristics of included studies",
            paragraphs=(f"Values: {values_from}.",),
            tables=tuple(t for t in (chars, pooled) if t is not None),
        ),
        T.Section(
            "outcomes",
            "Outcomes by domain",
            tables=tuple(t for t in (outcomes, dir_table, outcome_data) if t is not None),
            figures=tuple(figs["dir"]),
            notes=tuple(notes["dir"]),
        ),
        T.Section(
            "risk-of-bias",
            "Risk of bias",
            tables=(rob,),
            figures=tuple(figs["rob"]),
            notes=tuple(notes["rob"]),
        ),
        T.Section(
            "syntheses",
            "Syntheses",
            paragraphs=()
            if len(syn.frame)
            else ("No pooled or narrative analysis is stored yet.",),
            tables=(syn,) if len(syn.frame) else (),
            figures=tuple(figs["syn"]),
            notes=tuple(notes["syn"]),
        ),
        T.Section("adverse-events", "Adverse events", tables=(aes,)),
        T.Section("summary-of-findings", "Summary of findings", tables=(sof,)),
    ]
    has = {s.key: bool(s.tables or s.figures) for s in sections}
    locations = {
        "1": "Title",
        "4": "Review question",
        "5": "Review question (eligibility)",
        "6": "Methods (searches table)",
        "7": "Methods (searches table: queries)",
        "8": "Methods (screening, agreement table)",
        "9": "Methods (data extraction)",
        "10a": "Outcomes by domain",
        "10b": "Characteristics of included studies",
        "11": "Methods (risk of bias); Risk of bias",
        "12": "Methods (synthesis)",
        "13a": "Outcomes by domain (studies per outcome)",
        "13c": "Characteristics; Outcomes by domain; figures",
        "13d": "Methods (synthesis)",
        "15": "Summary of findings",
        "16a": "Study selection (PRISMA 2020 flow diagram)",
        "16b": "Study selection (reports excluded at full text, with reasons)",
        "17": "Characteristics of included studies",
        "18": "Risk of bias",
        "19": "Outcomes by domain (results of individual studies); Adverse events",
        "20a": "Characteristics of included studies; Risk of bias",
        "22": "Summary of findings",
        "24b": "Provenance (protocol version)",
        "27": "Provenance; tables/*.csv",
    }
    if has["syntheses"] and len(syn.frame):
        locations["20b"] = "Syntheses"
    checklist = T.Table("prisma_checklist", "PRISMA 2020 checklist", prisma_checklist(locations))
    pv = review.protocol_version()
    prov = {
        "metasift version": __version__,
        "protocol version": str(pv) if pv is not None else "",
        "store checksum (SHA-256)": checksum,
        "store back end": review.store.dialect,
        "extracted values": values_from,
    }
    prov_table = T.Table(
        "provenance",
        "Provenance",
        pd.DataFrame(list(prov.items()), columns=["Item", "Value"]),
    )
    store_rows = T.Table("store_rows", "Rows in the store", counts_rows)
    sections.append(T.Section("checklist", "PRISMA 2020 checklist", tables=(checklist,)))
    sections.append(
        T.Section(
            "provenance",
            "Provenance",
            paragraphs=(
                "The store checksum is the SHA-256 of a canonical dump of every row in the store "
                "(tables by name, rows by primary key); the same store gives the same checksum.",
            ),
            tables=(prov_table, store_rows),
        )
    )
    return sections, prov, checksum, prisma


def _html(review, sections: list[T.Section], prov: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"])
    )

    def rows(df: pd.DataFrame):
        return [["" if pd.isna(v) else v for v in r] for r in df.itertuples(index=False)]

    env.filters["rows"] = rows
    return env.get_template("report.html.j2").render(
        title=review.protocol.title, sections=sections, prov=prov
    )


WIDE = 7  # tables with more columns go on a landscape page in the DOCX


def _orient(doc, landscape: bool) -> None:
    """Continue on a landscape (or portrait) page, starting a new section only when needed."""
    from docx.enum.section import WD_ORIENT, WD_SECTION

    want = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    if doc.sections[-1].orientation == want:
        return
    sec = doc.add_section(WD_SECTION.NEW_PAGE)
    sec.orientation = want
    w, h = sec.page_width, sec.page_height
    if (w < h) == landscape:
        sec.page_width, sec.page_height = h, w


def _docx(review, sections: list[T.Section], prov: dict, out: Path, path: Path) -> None:
    from docx import Document
    from docx.shared import Inches, Pt

    doc = Document()
    doc.styles["Normal"].font.size = Pt(10)
    doc.add_heading(review.protocol.title, level=0)
    doc.add_paragraph(
        "A systematic review. Generated by metasift from the review store: every number comes "
        "from the store."
    )
    for sec in sections:
        _orient(doc, False)
        doc.add_heading(sec.title, level=1)
        for p in sec.paragraphs:
            doc.add_paragraph(p)
        for fig in sec.figures:
            png = out / fig.path
            if png.suffix == ".svg":
                png = png.with_suffix(".png")
            if png.exists():
                doc.add_picture(str(png), width=Inches(6.3))
                doc.add_paragraph(fig.title, style="Caption")
        for t in sec.tables:
            df = t.frame
            _orient(doc, len(df.columns) > WIDE)
            doc.add_paragraph(t.title, style="Caption")
            if not len(df.columns):
                doc.add_paragraph("(no rows)")
                continue
            table = doc.add_table(rows=1, cols=len(df.columns))
            table.style = "Table Grid"
            for cell, name in zip(table.rows[0].cells, df.columns, strict=True):
                cell.text = str(name)
                for r in cell.paragraphs[0].runs:
                    r.bold = True
            for row in df.itertuples(index=False):
                cells = table.add_row().cells
                for cell, v in zip(cells, row, strict=True):
                    cell.text = "" if pd.isna(v) else str(v)
            if len(df.columns) > WIDE:
                for row in table.rows:
                    for cell in row.cells:
                        for par in cell.paragraphs:
                            for run in par.runs:
                                run.font.size = Pt(8)
            if not len(df):
                doc.add_paragraph("(no rows)")
            if t.note:
                doc.add_paragraph(t.note)
        for n in sec.notes:
            doc.add_paragraph(n)
    doc.core_properties.title = review.protocol.title
    doc.core_properties.comments = (
        f"metasift {prov['metasift version']}; store {prov['store checksum (SHA-256)']}"
    )
    doc.save(str(path))


def build_report(review, out_dir: str | Path | None = None) -> ReportPaths:
    """Rebuild the report folder (default ``<project>/out``) from the store: report.html,
    report.docx, prisma.svg/.png/.pdf, figures/*.png and tables/*.csv. Raises
    :class:`~metasift.reporting.prisma.PrismaError` when the flow counts do not add up."""
    out = Path(out_dir) if out_dir is not None else review.path / "out"
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    sections, prov, checksum, prisma = collect(review, out)
    tables_dir = out / "tables"
    tables_dir.mkdir(exist_ok=True)
    csvs = {}
    for sec in sections:
        for t in sec.tables:
            p = tables_dir / f"{t.key}.csv"
            t.frame.to_csv(p, index=False)
            csvs[t.key] = p
    html = out / "report.html"
    html.write_text(_html(review, sections, prov), encoding="utf-8")
    docx = out / "report.docx"
    _docx(review, sections, prov, out, docx)
    figures = {f.key: out / f.path for s in sections for f in s.figures if f.key != "prisma"}
    return ReportPaths(
        out_dir=out,
        html=html,
        docx=docx,
        prisma=prisma,
        tables=csvs,
        figures=figures,
        store_checksum=checksum,
    )
