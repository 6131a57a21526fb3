"""Fixtures of the extraction tests: projects whose references are included at full text."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PROTOCOL = REPO / "examples" / "ivig-ssc" / "protocol.yaml"


def include_all(review, ref_ids):
    """Both screening reviewers include every reference at title/abstract and at full text."""
    screeners = review.protocol.reviewers_with("reviewer")[:2]
    for stage in ("title_abstract", "full_text"):
        for ref in ref_ids:
            for who in screeners:
                review.decide(ref, stage, who, "include")


@pytest.fixture
def included(make_refs):
    """``included(review, titles) -> reference ids``, each included at full text."""

    def make(review, titles):
        ids = make_refs(review, titles)
        include_all(review, ids)
        return ids

    return make


@pytest.fixture
def ivig(tmp_path, db_url):
    """A project with the worked example's protocol (IVIG in SSc) on each back end."""
    from metasift.review import Review

    review = Review.create(
        tmp_path / "ivig",
        db=None if db_url.startswith("sqlite") else db_url,
        protocol_text=EXAMPLE_PROTOCOL.read_text(encoding="utf-8"),
        actor="tester",
    )
    try:
        yield review
    finally:
        review.close()
