"""The worked example, end to end: `make run` runs this script.

It rebuilds the IVIG-in-systemic-sclerosis review from what is committed in this folder (the
protocol, and as later stages land, the search exports and the reviewers' decisions) and prints
where things are. Everything it makes (review.db, searches/, out/) is rebuilt on every run.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from metasift.cli import main as cli
from metasift.review import Review

HERE = Path(__file__).resolve().parent


def fresh_project() -> Review:
    for name in ("review.db", "review.db-wal", "review.db-shm"):
        (HERE / name).unlink(missing_ok=True)
    for name in ("searches", "out"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    return Review.open(HERE, actor="ana")


def main() -> int:
    review = fresh_project()
    review.close()
    cli(["status", str(HERE)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
