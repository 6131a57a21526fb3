"""robvis-style risk-of-bias plots (McGuinness & Higgins, Res Syn Meth 2021;12:55-61).

``traffic_light`` draws one row per study and one coloured, symbol-marked circle per domain plus
the overall judgement; ``summary_plot`` draws, per domain, a horizontal bar split by the share
of studies (or of total weight) at each judgement level. Both take a mapping
``study -> Assessment`` (final judgements are drawn) or ``study -> {domain id: level,
"Overall": level}`` and return a matplotlib ``Figure`` (matplotlib is imported lazily; no
pyplot state is touched). Colours and symbols are robvis's "cochrane" palette.
"""

from __future__ import annotations

from collections.abc import Mapping

from metasift.appraisal import get_tool
from metasift.appraisal.model import Assessment, Tool
from metasift.errors import ParameterError

NONE_COLOUR = "#FFFFFF"


def _rows(assessments_by_study, tool: Tool, func: str) -> list[tuple[str, dict]]:
    if not isinstance(assessments_by_study, Mapping) or not assessments_by_study:
        raise ParameterError(
            "assessments_by_study", func, None, type(assessments_by_study).__name__
        )
    cols = [*tool.domain_ids, "Overall"]
    names = {lv.name for lv in tool.levels + tool.overall_levels}
    rows = []
    for study, a in assessments_by_study.items():
        if isinstance(a, Assessment):
            if a.tool != tool.name:
                raise ParameterError(f"assessment of {study!r}", func, [tool.name], a.tool)
            j = a.judgements
        else:
            j = dict(a)
        for c in cols:
            v = j.get(c)
            if v is not None and v not in names:
                raise ParameterError(f"judgement {c} of {study!r}", func, sorted(names), v)
        rows.append((str(study), {c: j.get(c) for c in cols}))
    return rows


def _legend_levels(tool: Tool, rows) -> list:
    used = {v for _, r in rows for v in r.values() if v is not None}
    levels = [lv for lv in tool.levels + tool.overall_levels if lv.name in used]
    seen, out = set(), []
    for lv in sorted(levels, key=lambda lv: (lv.rank < 0, lv.rank)):
        if lv.name not in seen:
            seen.add(lv.name)
            out.append(lv)
    return out


def traffic_light(assessments_by_study, tool, *, psize: float = 0.32, dpi: int = 100):
    """Traffic-light plot: rows = studies, columns = domains + Overall."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    tool = get_tool(tool)
    rows = _rows(assessments_by_study, tool, "traffic_light")
    cols = [*tool.domain_ids, "Overall"]
    nr, nc = len(rows), len(cols)
    label_w = max(len(s) for s, _ in rows) * 0.075 + 0.3
    top, row_h, gap = 0.75, 0.42, 0.25
    legend_h = (len(tool.domains) + 1) * 0.14 + 0.15
    width = max(label_w + nc * 0.55 + 0.3, 6.0)
    height = top + nr * row_h + gap + legend_h
    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes(
        (label_w / width, (gap + legend_h) / height, nc * 0.55 / width, nr * row_h / height)
    )
    ax.set_xlim(0.5, nc + 0.5)
    ax.set_ylim(nr + 0.5, 0.5)
    ax.set_aspect("auto")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xticks(range(1, nc + 1), labels=cols)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_yticks(range(1, nr + 1), labels=[s for s, _ in rows])
    ax.set_title("Risk of bias domains", fontsize=10, pad=20)
    ax.axvline(nc - 0.5, color="#999999", lw=0.8)
    for i, (_, r) in enumerate(rows, start=1):
        for k, c in enumerate(cols, start=1):
            v = r[c]
            lv = tool.level(v) if v is not None else None
            face = lv.colour if lv else NONE_COLOUR
            # Circles in data units are ellipses unless axes are square; draw in points instead.
            ax.plot(
                [k],
                [i],
                marker="o",
                ms=psize * 55,
                mfc=face,
                mec="#333333",
                mew=0.6,
                linestyle="none",
                gid=f"cell:{i - 1}:{c}",
            )
            ax.text(
                k,
                i,
                lv.symbol if lv else "",
                ha="center",
                va="center",
                fontsize=9,
                fontweight="bold",
                color="black",
            )
    # Legend: domain names on the left, judgement symbols on the right.
    lines = [f"{d.id}: {d.name}" for d in tool.domains]
    fig.text(
        0.02, legend_h / height, "Domains:\n" + "\n".join(lines), fontsize=7, va="top", ha="left"
    )
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="none",
            mfc=lv.colour,
            mec="#333333",
            ms=8,
            label=f"{lv.symbol}  {lv.name}".strip(),
        )
        for lv in _legend_levels(tool, rows)
    ]
    fig.legend(
        handles=handles,
        title="Judgement",
        loc="lower right",
        fontsize=7,
        title_fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.99, 0.0),
    )
    return fig


def summary_plot(assessments_by_study, tool, weights=None, *, overall: bool = True, dpi: int = 100):
    """Weighted (or unweighted) bar plot of the share of studies at each level per domain.

    ``weights`` maps a study to its weight in the analysis (e.g. inverse-variance weights);
    with weights, each bar shows the share of the total weight, as robvis's
    ``rob_summary(weighted=TRUE)``."""
    from matplotlib.figure import Figure

    tool = get_tool(tool)
    rows = _rows(assessments_by_study, tool, "summary_plot")
    if weights is None:
        w = {s: 1.0 for s, _ in rows}
    else:
        w = {}
        for s, _ in rows:
            if s not in weights:
                raise ParameterError("weights", "summary_plot", None, f"no weight for {s!r}")
            x = float(weights[s])
            if not x >= 0:
                raise ParameterError("weights", "summary_plot", None, weights[s])
            w[s] = x
    total = sum(w.values())
    if total <= 0:
        raise ParameterError("weights", "summary_plot", None, "all zero")
    cols = [*tool.domain_ids] + (["Overall"] if overall else [])
    labels = [f"{d.short or d.name}" for d in tool.domains] + (
        ["Overall risk of bias"] if overall else []
    )
    levels = _legend_levels(tool, rows)
    shares = summary_shares(rows, cols, w, [lv.name for lv in levels])
    height = 0.42 * len(cols) + 0.9
    fig = Figure(figsize=(8, height), dpi=dpi)
    ax = fig.add_axes((0.36, 0.65 / height, 0.6, (height - 0.75) / height))
    y = list(range(len(cols)))[::-1]
    for lv in levels:
        left = [shares[c]["_left_" + lv.name] for c in cols]
        width = [shares[c][lv.name] for c in cols]
        ax.barh(
            y,
            width,
            left=left,
            color=lv.colour,
            edgecolor="#333333",
            linewidth=0.5,
            height=0.72,
            label=lv.name,
            gid=f"bar:{lv.name}",
        )
    ax.set_yticks(y, labels=labels, fontsize=8)
    ax.set_ylim(-0.5, len(cols) - 0.5)
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 25, 50, 75, 100], labels=["0%", "25%", "50%", "75%", "100%"], fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.legend(
        loc="lower center", ncol=len(levels), fontsize=8, frameon=False, bbox_to_anchor=(0.6, 0.0)
    )
    return fig


def summary_shares(rows, cols, weights, level_names) -> dict[str, dict[str, float]]:
    """Percent of weight at each level per column (and the bar's left edge per level)."""
    out = {}
    total = sum(weights.values())
    for c in cols:
        d, left = {}, 0.0
        for name in level_names:
            p = 100.0 * sum(weights[s] for s, r in rows if r[c] == name) / total
            d[name], d["_left_" + name] = p, left
            left += p
        out[c] = d
    return out
