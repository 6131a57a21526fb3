"""The worked example, end to end: `make run` runs this script.

It rebuilds the IVIG-in-systemic-sclerosis review from what is committed in this folder and the
study-level facts in ../shared/examples/ivig-ssc, through the same library calls a review team
makes: import two search exports -> dedup -> replay two reviewers' screening decisions (with one
resolved conflict) -> studies -> extraction -> analyses -> report. Everything it makes (review.db,
searches/, out/) is rebuilt on every run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

from metasift.review import Review

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("METASIFT_SHARED", HERE.parents[2] / "shared")).resolve()
DATA = SHARED / "examples" / "ivig-ssc"
SEARCHED = "2024-03-31"  # illustrative: R2 searched "up to March 2024"
QUERY = (
    '("Immunoglobulins, Intravenous"[Mesh] OR IVIG OR "intravenous immunoglobulin*") AND '
    '("Scleroderma, Systemic"[Mesh] OR "systemic sclerosis" OR scleroderma)'
)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fresh_project(project: Path) -> Review:
    """The project folder emptied of everything a previous run made (the protocol is kept, or
    copied from this folder when the project lives elsewhere)."""
    project.mkdir(parents=True, exist_ok=True)
    for name in ("review.db", "review.db-wal", "review.db-shm"):
        (project / name).unlink(missing_ok=True)
    for name in ("searches", "out"):
        shutil.rmtree(project / name, ignore_errors=True)
    if project.resolve() != HERE:
        shutil.copyfile(HERE / "protocol.yaml", project / "protocol.yaml")
    return Review.open(project, actor="ana")


def reference_keys(review) -> dict[str, int]:
    """doi:/pmid:/title: keys -> active reference id."""
    keys: dict[str, int] = {}
    for ref in review.references():
        if ref.doi:
            keys[f"doi:{ref.doi.lower()}"] = ref.id
        if ref.pmid:
            keys[f"pmid:{ref.pmid}"] = ref.id
        keys[f"title:{ref.title.lower()}"] = ref.id
    return keys


def find(keys: dict[str, int], key: str) -> int:
    key = key.strip()
    if key.startswith("title:"):
        start = key[6:].lower()
        hits = {v for k, v in keys.items() if k.startswith("title:") and k[6:].startswith(start)}
    else:
        hits = {keys[key.lower()]} if key.lower() in keys else set()
    if len(hits) != 1:
        raise SystemExit(f"decisions.csv: key {key!r} matches {len(hits)} references")
    return hits.pop()


def replay_decisions(review) -> None:
    keys = reference_keys(review)
    with open(HERE / "decisions.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    for row in rows:
        ref = find(keys, row["key"])
        if row["stage"].startswith("resolve:"):
            review.resolve(
                ref,
                row["stage"][8:],
                row["reviewer"],
                row["decision"],
                reason=row["reason"],
                note=row["note"],
            )
        else:
            review.decide(
                ref,
                row["stage"],
                row["reviewer"],
                row["decision"],
                reason=row["reason"],
                note=row["note"],
            )
    say(f"screening: {len(rows)} decisions replayed")


def reference_of(keys: dict[str, int], study) -> int:
    """The included reference that reports a study: by PMID, then DOI, then title."""
    for key in (
        f"pmid:{study.pmid}" if study.pmid else "",
        f"doi:{study.doi}" if study.doi else "",
    ):
        if key and key.lower() in keys:
            return keys[key.lower()]
    return find(keys, "title:" + study.title[:45])


def extract(review) -> None:
    """Studies from the included references; two extractors (ana, ben) record the same readings of
    studies.csv / outcomes.csv, so every value is agreed (see extraction.py for the rules)."""
    from metasift.extraction import add_study, record_values

    sys.path.insert(0, str(HERE))
    from extraction import read

    ex = read(DATA, review.protocol)
    keys = reference_keys(review)
    for st in ex.studies.values():
        add_study(
            review.store,
            st.label,
            st.design,
            [reference_of(keys, st)],
            "ana",
            protocol=review.protocol,
        )
        for who in ("ana", "ben"):
            record_values(review.store, review.protocol, st.label, who, st.values)
    n = sum(len(st.values) for st in ex.studies.values())
    say(
        f"extraction: {len(ex.studies)} studies, {n} values per extractor; "
        f"{len(ex.refused)} cells refused by the form (e.g. an SEM in the SD column), "
        f"{len(ex.not_outcomes)} rows outside the protocol's outcomes"
    )


DEMO_PASSWORD = "ivig-demo"  # the worked example's web users; served on this machine only


def serve(project: Path, port: int) -> None:
    """Serve the web app over the example (loopback only) with the protocol's people as users."""
    from metasift.cli_web import serve as serve_app
    from metasift.cli_web import user_add

    roles = {"ana": "owner", "ben": "reviewer", "carmen": "resolver"}
    for name, role in roles.items():
        user_add(project, name, role=role, password=DEMO_PASSWORD, db=None)
    say(f"web app: sign in as ana, ben or carmen with password {DEMO_PASSWORD!r}; Ctrl-C stops it")
    serve_app(project, db=None, host="127.0.0.1", port=port, workers=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=HERE, help="project folder (default: here)")
    ap.add_argument("--serve", action="store_true", help="then serve the web app over it")
    ap.add_argument(
        "--serve-if-interactive",
        action="store_true",
        help="serve only when run from a terminal (what `make run` does)",
    )
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    review = fresh_project(args.project)
    for f, db in (("pubmed.nbib", "MEDLINE (PubMed)"), ("embase.ris", "Embase")):
        rep = review.import_file(
            HERE / "exports" / f, database=db, searched=SEARCHED, query=QUERY, actor="ana"
        )
        say(f"import: {f}: {rep.imported} records ({rep.format})")
    dd = review.dedup(actor="ana")
    say(dd.summary.splitlines()[0])
    replay_decisions(review)
    extract(review)
    from metasift.reporting import build_report
    from metasift.workflow.analyses import run

    res = run(review, "ana")
    say(
        f"analyses: {len(res.pooled)} pooled, "
        f"{int(res.directions['direction'].notna().sum())} study x outcome directions, "
        f"{len(res.characteristics)} pooled characteristics"
    )
    paths = build_report(review)
    review.close()
    print(paths.summary(), flush=True)
    if args.serve or (args.serve_if_interactive and sys.stdin.isatty()):
        serve(args.project, args.port)
    elif args.serve_if_interactive:
        say("not serving the web app: not an interactive terminal (`make serve` serves it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
