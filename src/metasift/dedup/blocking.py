"""Blocking: which pairs are compared at all.

Every record gets a few keys; records sharing a key are candidate pairs. Blocks larger than
``max_block`` (generic titles such as "Editorial", DOIs shared by a whole supplement) are not
compared all-against-all but by a sliding window over their content-sorted members, so cost
stays about linear in the number of records. A sorted-neighbourhood pass over the titles (and
over the reversed titles, for records whose titles differ at the start) catches typos that
break the exact keys.

Keys: title prefix, title suffix (40 characters without spaces, also for the bracket/alternative
titles), each DOI, PMID, first author + year + first page, year + volume + first page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from metasift.dedup.normalize import Norm

KEY_CHARS = 40
MAX_BLOCK = 40
WINDOW = 3


def _keys(n: Norm) -> list[tuple]:
    keys: list[tuple] = []
    if len(n.title_key) >= 8:
        keys.append(("t", n.title_key[:KEY_CHARS]))
        keys.append(("e", n.title_key[-KEY_CHARS:]))
    for alt in n.title_alts:
        k = alt.replace(" ", "")
        if len(k) >= 10:
            keys.append(("t", k[:KEY_CHARS]))
            keys.append(("e", k[-KEY_CHARS:]))
    for d in n.dois:
        keys.append(("d", d))
    if n.pmid:
        keys.append(("m", n.pmid))
    if n.page1 and n.fam1:
        keys.append(("a", n.fam1[:6], n.year, n.page1))
    if n.page1 and n.volume:
        keys.append(("v", n.year, n.volume, n.page1))
    return keys


def _window_pairs(order: Sequence[int], window: int, out: set[tuple[int, int]]) -> None:
    for pos, i in enumerate(order):
        for j in order[pos + 1 : pos + window]:
            out.add((i, j) if i < j else (j, i))


def candidate_pairs(norms: Sequence[Norm]) -> set[tuple[int, int]]:
    """Candidate pairs ``(i, j)`` with ``i < j``."""
    blocks: dict[tuple, list[int]] = defaultdict(list)
    for i, n in enumerate(norms):
        for k in _keys(n):
            blocks[k].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2:
            continue
        if len(members) <= MAX_BLOCK:
            for a in range(len(members)):
                ia = members[a]
                for ib in members[a + 1 :]:
                    pairs.add((ia, ib) if ia < ib else (ib, ia))
        else:
            order = sorted(set(members), key=lambda i: norms[i].sort_key)
            _window_pairs(order, WINDOW, pairs)
    with_title = [i for i, n in enumerate(norms) if n.title]
    _window_pairs(sorted(with_title, key=lambda i: norms[i].sort_key), WINDOW, pairs)
    _window_pairs(
        sorted(with_title, key=lambda i: (norms[i].title_key[::-1], norms[i].sort_key)),
        WINDOW,
        pairs,
    )
    return pairs
