"""``dedup``: records in, groups + scored links + a review queue out.

Pipeline: normalise each record (:mod:`~metasift.dedup.normalize`) -> candidate pairs by
blocking (:mod:`~metasift.dedup.blocking`, about linear) -> evidence weight per pair
(:mod:`~metasift.dedup.scoring`) -> constrained clustering (here).

Clustering does not chain. Automatic links are merged strongest first; two clusters are joined
only if *every* pair across them is compatible: no hard rule (different PMIDs, erratum vs
article, comment vs article), no reviewer ``keep_apart``, not two different ``fixed_groups``,
and summed evidence of at least :data:`LINK_FLOOR` (so A~B and B~C cannot pull in a C that
does not resemble A). An automatic link refused by this check goes to the review queue.
Ties are broken by record content, never by input position, so shuffled input gives the same
groups.
"""

from __future__ import annotations

import gc
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from metasift.dedup import scoring
from metasift.dedup.blocking import candidate_pairs
from metasift.dedup.normalize import Norm, normalize
from metasift.errors import MetasiftError, ParameterError
from metasift.records import RecordData

try:  # pragma: no cover - version lookup only
    from importlib.metadata import version as _version

    _METASIFT_VERSION = _version("metasift")
except Exception:  # noqa: BLE001
    _METASIFT_VERSION = "unknown"

AUTO_THRESHOLD = 0.93  # score for an automatic merge (summed evidence >= 12.9)
REVIEW_THRESHOLD = 0.2  # score for the review queue (summed evidence >= ~6.9)
LINK_FLOOR = 0.0  # every pair inside a cluster needs at least this much summed evidence
MAX_GUARD = 30  # members of a large cluster checked by the no-chaining guard


class DedupConflictError(MetasiftError):
    """Reviewer decisions or fixed groups contradict each other."""


@dataclass(frozen=True)
class Link:
    """One scored candidate pair. ``outcome`` is ``merged`` (same group), ``queued`` (for a
    human) or ``apart``; ``evidence`` maps each evidence term to its weight (and the compared
    values), and ``rule`` names a hard or soft rule when one decided."""

    a: int
    b: int
    score: float
    outcome: str
    evidence: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def rule(self) -> str | None:
        return self.evidence.get("rule")


@dataclass(frozen=True)
class DedupResult:
    groups: list[list[int]]
    links: list[Link]
    queued: list[Link]
    settings: dict
    n_candidates: int
    _group_index: dict = field(default_factory=dict, repr=False, compare=False)

    def group_of(self, i: int) -> list[int]:
        """The group (list of record indices) holding record ``i``."""
        if i not in self._group_index:
            raise ParameterError("i", "DedupResult.group_of", None, i)
        return self.groups[self._group_index[i]]

    @property
    def n_records(self) -> int:
        return len(self._group_index)

    @property
    def auto_merged(self) -> int:
        """Records removed by automatic merges (records - groups)."""
        return self.n_records - len(self.groups)

    def summary(self) -> str:
        n_multi = sum(1 for g in self.groups if len(g) > 1)
        return (
            f"dedup: {self.n_records} records -> {len(self.groups)} references "
            f"({self.auto_merged} duplicates merged in {n_multi} groups); "
            f"{len(self.queued)} pairs queued for review; {self.n_candidates} pairs compared\n"
            f"thresholds: auto {self.settings['auto_threshold']}, review "
            f"{self.settings['review_threshold']}"
        )

    def to_frame(self, kind: str = "records") -> pd.DataFrame:
        """``kind="records"``: one row per record (record, group, group_size);
        ``kind="links"``: one row per link (a, b, score, outcome, rule)."""
        if kind == "records":
            rows = [(i, gi, len(g)) for gi, g in enumerate(self.groups) for i in g]
            return (
                pd.DataFrame(rows, columns=["record", "group", "group_size"])
                .sort_values("record")
                .reset_index(drop=True)
            )
        if kind == "links":
            return pd.DataFrame(
                [(lk.a, lk.b, lk.score, lk.outcome, lk.rule) for lk in self.links],
                columns=["a", "b", "score", "outcome", "rule"],
            )
        raise ParameterError("kind", "DedupResult.to_frame", ["records", "links"], kind)


class _Clusters:
    """Union-find with member lists and cannot-link constraints."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.fixed: dict[int, int | None] = {i: None for i in range(n)}
        self.vouched: dict[int, bool] = {i: False for i in range(n)}  # fixed or force-merged

    def find(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = p[i]
        return i

    def union(self, ra: int, rb: int) -> int:
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))
        fb = self.fixed.pop(rb)
        if self.fixed[ra] is None:
            self.fixed[ra] = fb
        self.vouched[ra] = self.vouched[ra] or self.vouched.pop(rb)
        return ra


def _check_pairs(pairs, n: int, name: str) -> list[tuple[int, int]]:
    out = []
    for p in pairs:
        try:
            a, b = (int(x) for x in p)
        except (TypeError, ValueError) as e:
            raise ParameterError(name, "dedup", None, p) from e
        if not (0 <= a < n and 0 <= b < n) or a == b:
            raise ParameterError(name, "dedup", None, p)
        out.append((min(a, b), max(a, b)))
    return out


def _checksum(records: Sequence[RecordData]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update(
            "\x1f".join(
                [r.title, r.year and str(r.year) or "", r.journal, r.volume, r.pages, r.doi]
            ).encode("utf-8", "replace")
        )
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def dedup(
    records: Sequence[RecordData],
    *,
    fixed_groups: Sequence[Sequence[int]] = (),
    keep_apart: Iterable[tuple[int, int]] = (),
    force_merge: Iterable[tuple[int, int]] = (),
    auto_threshold: float = AUTO_THRESHOLD,
    review_threshold: float = REVIEW_THRESHOLD,
) -> DedupResult:
    """Find duplicate records.

    ``records``: the records, addressed by index. ``fixed_groups``: groups from an earlier run
    that stay exactly as they are (never split, never merged with each other; a new record may
    join one). ``keep_apart`` / ``force_merge``: reviewer decisions (index pairs), always
    honoured. ``auto_threshold`` / ``review_threshold``: scores in (0, 1) for an automatic merge
    and for the review queue (see :func:`metasift.dedup.scoring.to_score`).
    """
    if not isinstance(records, Sequence):
        raise ParameterError("records", "dedup", None, type(records).__name__)
    for r in records:
        if not isinstance(r, RecordData):
            raise ParameterError("records", "dedup", None, f"an item of type {type(r).__name__}")
    if not (0.0 < review_threshold <= auto_threshold < 1.0):
        raise ParameterError(
            "auto_threshold/review_threshold",
            "dedup",
            None,
            f"({auto_threshold}, {review_threshold}); need 0 < review <= auto < 1",
        )
    n = len(records)
    keep_apart = _check_pairs(keep_apart, n, "keep_apart")
    force_merge = _check_pairs(force_merge, n, "force_merge")
    fixed: list[list[int]] = []
    seen: set[int] = set()
    for g in fixed_groups:
        g = sorted(int(i) for i in g)
        for i in g:
            if not 0 <= i < n or i in seen:
                raise ParameterError("fixed_groups", "dedup", None, f"index {i} (range or repeat)")
            seen.add(i)
        if g:
            fixed.append(g)

    # the pipeline builds many small objects and frees none until the end: the cyclic garbage
    # collector would rescan them all again and again (a third of the run time on 80k records)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _dedup(records, fixed, keep_apart, force_merge, auto_threshold, review_threshold)
    finally:
        if gc_was_enabled:
            gc.enable()


def _dedup(records, fixed, keep_apart, force_merge, auto_threshold, review_threshold):
    n = len(records)
    norms: list[Norm] = [normalize(r) for r in records]
    w_auto = scoring.SCORE_CENTRE + scoring.SCORE_SCALE * math.log(
        auto_threshold / (1 - auto_threshold)
    )
    w_review = scoring.SCORE_CENTRE + scoring.SCORE_SCALE * math.log(
        review_threshold / (1 - review_threshold)
    )

    cache: dict[tuple[int, int], tuple[float, dict]] = {}

    def pair(a: int, b: int) -> tuple[float, dict]:
        key = (a, b) if a < b else (b, a)
        got = cache.get(key)
        if got is None:
            got = scoring.compare(norms[key[0]], norms[key[1]])
            cache[key] = got
        return got

    cands = candidate_pairs(norms)
    for a, b in cands:
        pair(a, b)

    apart = set(keep_apart)
    cl = _Clusters(n)

    def apart_across(ra: int, rb: int) -> bool:
        ma, mb = cl.members[ra], cl.members[rb]
        if len(ma) * len(mb) > len(apart):
            return any(
                (x, y) in apart and (cl.find(x), cl.find(y)) in ((ra, rb), (rb, ra))
                for x, y in apart
            )
        return any(((x, y) if x < y else (y, x)) in apart for x in ma for y in mb)

    for gi, g in enumerate(fixed):
        r = g[0]
        cl.fixed[r] = gi
        for i in g[1:]:
            r = cl.union(cl.find(r), cl.find(i))
            cl.fixed[r] = gi
        cl.vouched[r] = True
    for a, b in sorted(apart):
        if cl.find(a) == cl.find(b):
            raise DedupConflictError(f"keep_apart {(a, b)}: both records are in one fixed group")
    forced = set(force_merge)
    for a, b in sorted(force_merge):
        ra, rb = cl.find(a), cl.find(b)
        if ra == rb:
            continue
        if apart_across(ra, rb):
            raise DedupConflictError(
                f"force_merge {(a, b)} joins records that keep_apart keeps apart"
            )
        fa, fb = cl.fixed[ra], cl.fixed[rb]
        r = cl.union(ra, rb)
        cl.vouched[r] = True
        if fa is not None and fb is not None and fa != fb:
            cl.fixed[r] = fa  # a reviewer joined two fixed groups: honoured

    def guard(ra: int, rb: int) -> str | None:
        """Why clusters ra and rb may not be joined (None if they may)."""
        fa, fb = cl.fixed[ra], cl.fixed[rb]
        if fa is not None and fb is not None and fa != fb:
            return "fixed-groups"
        if apart and apart_across(ra, rb):
            return "keep-apart"
        ma, mb = cl.members[ra], cl.members[rb]
        if len(ma) > MAX_GUARD:
            ma = sorted(ma, key=lambda i: norms[i].sort_key)[:MAX_GUARD]
        if len(mb) > MAX_GUARD:
            mb = sorted(mb, key=lambda i: norms[i].sort_key)[:MAX_GUARD]
        # a group vouched for (fixed from an earlier run, or force-merged by a reviewer) may
        # hold records that do not resemble each other; a new record joins it on its best
        # link, so only the hard rules are checked against such a group
        floor = -math.inf if (cl.vouched[ra] or cl.vouched[rb]) else LINK_FLOOR
        for x in ma:
            for y in mb:
                w, ev = pair(x, y)
                if w == -math.inf:
                    return ev.get("rule", "hard-rule")
                if w < floor:
                    return "no-chaining"
        return None

    def order_key(p):
        (a, b), (w, _ev) = p
        ka, kb = norms[a].sort_key, norms[b].sort_key
        return (-w, min(ka, kb), max(ka, kb))

    auto_edges = sorted(
        ((k, v) for k, v in cache.items() if v[0] >= w_auto and "rule" not in v[1]),
        key=order_key,
    )
    refused: dict[tuple[int, int], str] = {}
    for (a, b), _ in auto_edges:
        ra, rb = cl.find(a), cl.find(b)
        if ra == rb:
            continue
        why = guard(ra, rb)
        if why is None:
            cl.union(ra, rb)
        else:
            refused[(a, b)] = why

    # final groups, ordered by their smallest member
    roots: dict[int, list[int]] = {}
    for i in range(n):
        roots.setdefault(cl.find(i), []).append(i)
    groups = sorted((sorted(g) for g in roots.values()), key=lambda g: g[0])
    index = {i: gi for gi, g in enumerate(groups) for i in g}

    # links: every compared pair with some support, or decided by a rule
    links: list[Link] = []
    best_queued: dict[tuple[int, int], Link] = {}
    for (a, b), (w, ev) in sorted(cache.items()):
        ga, gb = index[a], index[b]
        if (a, b) in forced:
            ev = {**ev, "rule": "force-merge"}
        if ga == gb:
            outcome = "merged"
        elif (a, b) in apart:
            outcome, ev = "apart", {**ev, "rule": "keep-apart"}
        elif w >= w_review and refused.get((a, b)) not in {"fixed-groups", "keep-apart"}:
            gp = (min(ga, gb), max(ga, gb))
            ok = guard(cl.find(a), cl.find(b)) in (None, "no-chaining")
            outcome = "queued" if ok else "apart"
            if (a, b) in refused:
                ev = {**ev, "refused": refused[(a, b)]}
        else:
            outcome = "apart"
        if outcome == "apart" and w < w_review and "rule" not in ev:
            continue  # an ordinary non-match: not worth a link
        score = 0.0 if w == -math.inf else round(scoring.to_score(w), 6)
        link = Link(a, b, score, outcome, ev)
        links.append(link)
        if outcome == "queued":
            old = best_queued.get(gp)
            if old is None or (link.score, -link.a, -link.b) > (old.score, -old.a, -old.b):
                best_queued[gp] = link
    # one queued link per pair of groups: a reviewer decides groups, not every record pair
    keep = {id(lk) for lk in best_queued.values()}
    links = [
        lk
        if lk.outcome != "queued" or id(lk) in keep
        else Link(lk.a, lk.b, lk.score, "apart", {**lk.evidence, "superseded": True})
        for lk in links
    ]
    queued = [lk for lk in links if lk.outcome == "queued"]
    settings = {
        "method": "metasift.dedup",
        "version": _METASIFT_VERSION,
        "auto_threshold": auto_threshold,
        "review_threshold": review_threshold,
        "link_floor": LINK_FLOOR,
        "weights": dict(scoring.WEIGHTS),
        "score_centre": scoring.SCORE_CENTRE,
        "score_scale": scoring.SCORE_SCALE,
        "n_fixed_groups": len(fixed),
        "n_keep_apart": len(apart),
        "n_force_merge": len(forced),
        "input_checksum": _checksum(records),
    }
    return DedupResult(
        groups=groups,
        links=links,
        queued=queued,
        settings=settings,
        n_candidates=len(cands),
        _group_index=index,
    )
