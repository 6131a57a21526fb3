"""The worked example, end to end: `make run` runs this script.

It rebuilds the IVIG-in-systemic-sclerosis review from what is committed in this folder and the
study-level facts in ../shared/examples/ivig-ssc, through the same library calls a review team
makes: import two search exports -> dedup -> replay two reviewers' screening decisions (with one
resolved conflict) -> studies -> extraction -> analyses -> report. Everything it makes (review.db,
searches/, out/) is rebuilt on every run.
"""

from __future__ import annotations

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


def fresh_project() -> Review:
    for name in ("review.db", "review.db-wal", "review.db-shm"):
        (HERE / name).unlink(missing_ok=True)
    for name in ("searches", "out"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    return Review.open(HERE, actor="ana")


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
            review.resolve(ref, row["stage"][8:], row["reviewer"], row["decision"],
                           reason=row["reason"], note=row["note"])
        else:
            review.decide(ref, row["stage"], row["reviewer"], row["decision"],
                          reason=row["reason"], note=row["note"])
    say(f"screening: {len(rows)} decisions replayed")


def main() -> int:
    review = fresh_project()
    for f, db in (("pubmed.nbib", "MEDLINE (PubMed)"), ("embase.ris", "Embase")):
        rep = review.import_file(HERE / "exports" / f, database=db, searched=SEARCHED, query=QUERY, actor="ana")
        say(f"import: {f}: {rep.imported} records ({rep.format})")
    dd = review.dedup(actor="ana")
    say(f"dedup: {dd.summary.splitlines()[0]}")
    replay_decisions(review)
    review.close()
    from metasift.cli import main as cli

    cli(["status", str(HERE)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
