"""`make run`'s worked example (examples/ivig-ssc/build.py), end to end in a temporary project:
the report files exist; every PRISMA box equals a count computed independently from the inputs
(the two search exports and decisions.csv) and the store; the pooled characteristics equal values
computed by hand from ../shared/examples/ivig-ssc/studies.csv; the DOCX holds the tables; the HTML
renders in headless Chromium without console errors and shows the PRISMA diagram."""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ivig-ssc"
CHROMIUM = Path("/usr/bin/chromium")


def _load_build():
    spec = importlib.util.spec_from_file_location("ivig_build", EXAMPLE / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_dir):
    folder = tmp_path_factory.mktemp("ivig") / "project"
    build = _load_build()
    assert build.main(["--project", str(folder)]) == 0
    return folder


def _box(rows: list[dict], box: str, item: str = "") -> int:
    hits = [int(r["n"]) for r in rows if r["box"] == box and (r["item"] or "") == item]
    assert len(hits) == 1, (box, item, rows)
    return hits[0]


def _final(decisions: list[str]) -> str:
    """Two reviewers' decisions at one stage -> the stage result (no resolution)."""
    if "not_retrieved" in decisions:
        return "not_retrieved"
    s = {"include" if d == "maybe" else d for d in decisions}
    return s.pop() if len(s) == 1 else "conflict"


def test_report_files_exist(project):
    out = project / "out"
    for name in ("report.html", "report.docx", "prisma.svg", "prisma.png", "prisma.pdf"):
        assert (out / name).stat().st_size > 1000, name
    for table in ("characteristics", "pooled_characteristics", "adverse_events", "prisma"):
        assert (out / "tables" / f"{table}.csv").exists(), table


def test_prisma_boxes_equal_independent_counts(project):
    import sqlalchemy as sa

    # identified: count the records in the exports themselves
    nbib = (EXAMPLE / "exports" / "pubmed.nbib").read_text(encoding="utf-8")
    ris = (EXAMPLE / "exports" / "embase.ris").read_text(encoding="utf-8-sig")
    n_pubmed = len(re.findall(r"^PMID- ", nbib, re.M))
    n_embase = len(re.findall(r"^TY  - ", ris, re.M))
    # references left after dedup: straight from the store's record table
    engine = sa.create_engine(f"sqlite:///{project / 'review.db'}")
    with engine.connect() as c:
        n_refs = c.execute(
            sa.text(
                "SELECT COUNT(DISTINCT reference_id) FROM record WHERE reference_id IS NOT NULL"
            )
        ).scalar()
    engine.dispose()
    # screening results: from the decisions the example replays
    with open(EXAMPLE / "decisions.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    by = defaultdict(list)
    resolved = {}
    for r in rows:
        if r["stage"].startswith("resolve:"):
            resolved[(r["stage"][8:], r["key"])] = r["decision"]
        else:
            by[(r["stage"], r["key"])].append((r["decision"], r["reason"]))
    result = {k: resolved.get(k) or _final([d for d, _ in v]) for k, v in by.items()}
    result |= {k: v for k, v in resolved.items() if k not in result}
    ta = Counter(v for (stage, _), v in result.items() if stage == "title_abstract")
    ft = Counter(v for (stage, _), v in result.items() if stage == "full_text")
    reasons = Counter(
        {r for d, r in by[k] if d == "exclude"}.pop()
        for k, v in result.items()
        if k[0] == "full_text" and v == "exclude"
    )

    with open(project / "out" / "tables" / "prisma.csv", encoding="utf-8") as fh:
        boxes = list(csv.DictReader(fh))
    identified = n_pubmed + n_embase
    assert (n_pubmed, n_embase) == (8, 14)
    assert _box(boxes, "Records identified (databases and registers)", "Databases: Embase") == (
        n_embase
    )
    assert (
        _box(boxes, "Records identified (databases and registers)", "Databases: MEDLINE (PubMed)")
        == n_pubmed
    )
    assert _box(boxes, "Duplicate records removed") == identified - n_refs
    assert _box(boxes, "Records screened") == n_refs == sum(ta.values())
    assert _box(boxes, "Records excluded") == ta["exclude"]
    assert _box(boxes, "Reports sought for retrieval") == ta["include"] == sum(ft.values())
    assert _box(boxes, "Reports not retrieved") == ft["not_retrieved"]
    assert _box(boxes, "Reports assessed for eligibility") == ft["include"] + ft["exclude"]
    for reason, n in reasons.items():
        assert _box(boxes, "Reports excluded", reason) == n
    assert _box(boxes, "Studies included in review") == ft["include"]
    assert _box(boxes, "Reports of included studies") == ft["include"]
    # and the diagram says the same
    svg = (project / "out" / "prisma.svg").read_text(encoding="utf-8")
    text = " ".join(re.sub(r"<[^>]+>", " ", svg).split())
    for label, n in (
        ("Records screened", n_refs),
        ("Records excluded**", ta["exclude"]),
        ("Duplicate records removed", identified - n_refs),
        ("Studies included in review", ft["include"]),
    ):
        assert f"{label} (n = {n})" in text, label


def _lead(cell: str) -> float | None:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", cell)
    return float(m.group(1)) if m else None


def test_pooled_characteristics_by_hand(project, shared_dir):
    with open(shared_dir / "examples/ivig-ssc/studies.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["design"].strip()]
    n = {r["study_id"]: _lead(r["n_total"]) for r in rows}
    with_n = {s: v for s, v in n.items() if v is not None}
    # women: a count where given, else the percentage of n; N-weighted over those studies
    women = {}
    for r in rows:
        if n[r["study_id"]] is None:
            continue
        if _lead(r["n_female"]) is not None:
            women[r["study_id"]] = _lead(r["n_female"])
        elif _lead(r["pct_female"]) is not None:
            women[r["study_id"]] = _lead(r["pct_female"]) * n[r["study_id"]] / 100
    pct_women = 100 * sum(women.values()) / sum(n[s] for s in women)
    # age: studies with mean and SD combined (Cochrane Handbook 6.5.2.10, Table 6.5.a)
    msd = []
    for r in rows:
        sd = re.search(r"\(SD\s*([\d.]+)\)", r["mean_age"])
        if sd and r["age_stat"].lower().startswith("mean") and n[r["study_id"]]:
            msd.append((n[r["study_id"]], _lead(r["mean_age"]), float(sd.group(1))))
    (n1, m1, s1), (n2, m2, s2) = msd
    mean = (n1 * m1 + n2 * m2) / (n1 + n2)
    sd = math.sqrt(
        ((n1 - 1) * s1**2 + (n2 - 1) * s2**2 + n1 * n2 / (n1 + n2) * (m1 - m2) ** 2) / (n1 + n2 - 1)
    )

    with open(project / "out" / "tables" / "pooled_characteristics.csv", encoding="utf-8") as fh:
        got = {r["Characteristic"]: r for r in csv.DictReader(fh)}
    assert int(got["participants"]["Studies"]) == len(with_n) == 7
    assert float(got["participants"]["Value"]) == sum(with_n.values()) == 237
    assert int(got["women (%)"]["Studies"]) == len(women)
    assert float(got["women (%)"]["Value"]) == pytest.approx(pct_women, abs=0.05)
    age = got["age, mean (years)"]["Value"]
    m = re.fullmatch(r"([\d.]+) \(SD ([\d.]+)\)", age)
    assert float(m.group(1)) == pytest.approx(mean, abs=0.05)
    assert float(m.group(2)) == pytest.approx(sd, abs=0.05)


def test_docx_holds_the_tables(project):
    import docx

    doc = docx.Document(str(project / "out" / "report.docx"))
    first_rows = [" | ".join(c.text for c in t.rows[0].cells) for t in doc.tables]
    assert len(doc.tables) >= 10
    text = "\n".join(first_rows)
    for header in ("Study", "Characteristic", "Domain", "Outcomes"):
        assert header in text, header
    cells = {c.text for t in doc.tables for row in t.rows for c in row.cells}
    assert {"Takehara2013", "Poelman2015", "not assessed"} <= cells
    assert any(p.text.startswith("The searches gave 22 records") for p in doc.paragraphs)


def test_html_renders_in_chromium_with_the_prisma_diagram(project, tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("METASIFT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((project / "out" / "report.html").as_uri())
        page.wait_for_load_state("load")
        img = page.locator("img[src$='prisma.svg'], object[data$='prisma.svg'], svg").first
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        natural = page.evaluate(
            "() => { const i = document.querySelector(\"img[src$='prisma.svg']\");"
            " return i ? [i.naturalWidth, i.complete] : [null, null]; }"
        )
        shot = tmp_path / "prisma.png"
        img.screenshot(path=str(shot))
        browser.close()
    assert errors == []
    assert box and box["width"] > 300 and box["height"] > 300
    if natural[0] is not None:
        assert natural[1] and natural[0] > 0  # the image loaded
    # the screenshot is a drawing: mostly white with dark box outlines and text
    im = Image.open(shot).convert("L")
    hist = im.histogram()
    dark = sum(hist[:100]) / (im.width * im.height)
    light = sum(hist[200:]) / (im.width * im.height)
    assert light > 0.5 and 0.01 < dark < 0.5


def test_analyse_and_report_through_the_cli(project, tmp_path):
    """`metasift analyse` stores a new run of the analyses; `metasift report --out` rebuilds the
    report elsewhere from the store alone, with the same PRISMA counts."""
    from typer.testing import CliRunner

    from metasift.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["analyse", str(project), "--as", "ana"])
    assert r.exit_code == 0, r.output
    assert "pooled characteristics: patients (N), women" in r.output
    out = tmp_path / "again"
    r = runner.invoke(app, ["report", str(project), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").exists() and (out / "prisma.svg").exists()
    assert (out / "tables" / "prisma.csv").read_text() == (
        project / "out" / "tables" / "prisma.csv"
    ).read_text()
