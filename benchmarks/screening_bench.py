"""Screening prioritisation benchmark: metasift's default setup vs ASReview LAB 3.0.8 (elas_u4).

    .venv/bin/python benchmarks/screening_bench.py --data ../shared/benchmarks/screening/*.csv --seeds 5

For each labelled CSV and seed s = 0..seeds-1 both tools screen the same data from the same two
prior records (one relevant, one irrelevant, drawn by ``metasift.screening.choose_priors(labels,
s)``; ASReview gets them as ``--prior-idx``), in the same run, one simulation at a time.
ASReview LAB is installed by this script with pip into its own virtual environment under
``--cache`` (default ``~/.cache/metasift-bench``, outside the repo) and run as
``asreview simulate DATA --prior-idx I J --seed s -o OUT.asreview`` (default model ``elas_u4``).

Both screening orders are scored by the same code (``metasift.screening.metrics``) over the
non-prior records; ASReview stops when the last relevant record is found, and the records it did
not reach (all irrelevant) are appended, which does not change any metric reported here.
Time is wall time of one simulation including feature extraction (for ASReview, the whole
``asreview simulate`` process); peak_mb is the peak resident memory of the simulating process
(metasift: ``ru_maxrss`` of a child process running one simulation; ASReview: of its process).

Prints one JSON line per dataset and tool, then a side-by-side table. WSS and recall values are
proportions (0.30 = 30 points).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from metasift.screening import (  # noqa: E402
    DEFAULT_SETUP,
    choose_priors,
    load_labelled_csv,
    simulate,
)
from metasift.screening import metrics as M  # noqa: E402

ASREVIEW_VERSION = "3.0.8"


# --- ASReview ------------------------------------------------------------------------------
def ensure_asreview(cache: Path) -> Path:
    """Create the venv and pip-install ASReview LAB once; return the ``asreview`` executable."""
    venv = cache / f"asreview-{ASREVIEW_VERSION}"
    exe = venv / "bin" / "asreview"
    if exe.exists():
        return exe
    cache.mkdir(parents=True, exist_ok=True)
    print(f"installing ASReview LAB {ASREVIEW_VERSION} into {venv} …", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"asreview=={ASREVIEW_VERSION}"], check=True
    )
    return exe


def asreview_order(project: Path, n: int, priors: tuple[int, ...]) -> list[int]:
    """Row positions screened by ASReview (priors excluded), then the rows it did not reach."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(project) as z:
            z.extract("results.db", tmp)
        con = sqlite3.connect(Path(tmp) / "results.db")
        rows = con.execute(
            "SELECT rec.dataset_row, r.classifier FROM results r "
            "JOIN record rec ON r.record_id = rec.record_id ORDER BY r.rowid"
        ).fetchall()
        con.close()
    order = [int(row) for row, clf in rows if clf is not None]
    seen = set(order) | set(priors)
    if set(row for row, clf in rows if clf is None) != set(priors):
        raise RuntimeError("ASReview used other prior records than the ones passed")
    return order + [i for i in range(n) if i not in seen]


def _run_process(cmd: list[str]) -> tuple[float, float, str]:
    """Run one command; return (wall seconds, peak resident MB of that process, stderr tail)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {tail}")
    return seconds, usage.ru_maxrss / 1024.0, tail


def run_asreview(exe: Path, data: Path, seed: int, priors: tuple[int, ...], n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim.asreview"
        cmd = [str(exe), "simulate", str(data), "--prior-idx", *map(str, priors)]
        cmd += ["--seed", str(seed), "-o", str(out)]
        seconds, peak_mb, _ = _run_process(cmd)
        order = asreview_order(out, n, priors)
    return {"order": order, "seconds": seconds, "peak_mb": peak_mb}


def run_metasift(data: Path, seed: int, priors: tuple[int, ...]) -> dict:
    """One simulation in its own Python process (timed and measured like ASReview's)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "order.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(data), str(seed)]
        cmd += [str(out), *map(str, priors)]
        seconds, peak_mb, _ = _run_process(cmd)
        order = json.loads(out.read_text())
    return {"order": order, "seconds": seconds, "peak_mb": peak_mb}


def _child(argv: list[str]) -> int:
    path, seed, out, *priors = argv
    data = load_labelled_csv(path)
    res = simulate(
        data.texts,
        data.labels,
        setup=DEFAULT_SETUP,
        seed=int(seed),
        priors=[int(p) for p in priors],
    )
    Path(out).write_text(json.dumps(list(res.order)))
    return 0


def score(order: list[int], labels: np.ndarray) -> dict:
    return M.all_metrics(labels[order])


def aggregate(dataset: str, tool: str, runs: list[dict]) -> dict:
    w = [r["wss95"] for r in runs]
    return {
        "dataset": dataset,
        "tool": tool,
        "seeds": len(runs),
        "wss95_mean": round(float(np.mean(w)), 4),
        "wss95_min": round(float(np.min(w)), 4),
        "recall_at_10pct_mean": round(float(np.mean([r["recall_at_10pct"] for r in runs])), 4),
        "n_to_95_mean": round(float(np.mean([r["n_to_95"] for r in runs])), 1),
        "seconds_mean": round(float(np.mean([r["seconds"] for r in runs])), 2),
        "peak_mb": round(float(np.max([r["peak_mb"] for r in runs])), 1),
    }


def table(rows: list[dict]) -> str:
    by = {(r["dataset"], r["tool"]): r for r in rows}
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    head = (
        f"{'dataset':28s} {'WSS@95 ms':>9s} {'asr':>6s} {'diff':>6s} {'min ms':>7s} {'asr':>6s} "
        f"{'RRF10 ms':>8s} {'asr':>6s} {'n95 ms':>7s} {'asr':>7s} {'s ms':>6s} {'asr':>6s} "
        f"{'t ratio':>7s} {'MB ms':>6s} {'asr':>6s}"
    )
    lines = [head, "-" * len(head)]
    diffs, ratios = [], []
    for d in datasets:
        m, a = by[(d, "metasift")], by[(d, "asreview")]
        diff = 100 * (m["wss95_mean"] - a["wss95_mean"])
        ratio = m["seconds_mean"] / a["seconds_mean"]
        diffs.append(diff)
        ratios.append(ratio)
        lines.append(
            f"{d:28s} {100 * m['wss95_mean']:9.1f} {100 * a['wss95_mean']:6.1f} {diff:+6.1f} "
            f"{100 * m['wss95_min']:7.1f} {100 * a['wss95_min']:6.1f} "
            f"{100 * m['recall_at_10pct_mean']:8.1f} {100 * a['recall_at_10pct_mean']:6.1f} "
            f"{m['n_to_95_mean']:7.1f} {a['n_to_95_mean']:7.1f} "
            f"{m['seconds_mean']:6.1f} {a['seconds_mean']:6.1f} {ratio:7.2f} "
            f"{m['peak_mb']:6.0f} {a['peak_mb']:6.0f}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"mean WSS@95 difference {np.mean(diffs):+.1f} points (goal >= +3.0; every set >= 0: "
        f"{'yes' if min(diffs) >= 0 else 'no'}); time ratio mean {np.mean(ratios):.2f}, "
        f"max {max(ratios):.2f} (goal <= 0.50)"
    )
    lines.append(f"metasift default setup: {json.dumps(DEFAULT_SETUP.to_dict())}")
    lines.append(f"ASReview LAB {ASREVIEW_VERSION}, default model elas_u4")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True, type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "metasift-bench")
    ap.add_argument("--tools", nargs="+", default=["metasift", "asreview"])
    args = ap.parse_args(argv)
    exe = ensure_asreview(args.cache) if "asreview" in args.tools else None
    datasets = []
    for path in args.data:
        data = load_labelled_csv(path)
        datasets.append((path, path.stem, np.asarray(data.labels)))
    runs: dict[tuple[str, str], list[dict]] = {}
    # seed-major order: after each round every set has the same number of seeds, so a run cut
    # short by the clock still covers every set (the partial table goes to stderr)
    for seed in range(args.seeds):
        for path, name, labels in datasets:
            priors = choose_priors(labels, seed, 1, 1)
            for tool in args.tools:
                if tool == "metasift":
                    out = run_metasift(path, seed, priors)
                else:
                    out = run_asreview(exe, path, seed, priors, len(labels))
                met = score(out["order"], labels)
                runs.setdefault((name, tool), []).append(
                    {**met, "seconds": out["seconds"], "peak_mb": out["peak_mb"]}
                )
                print(
                    f"# {name} seed {seed} {tool}: wss95={met['wss95']:.4f} "
                    f"n_to_95={met['n_to_95']} {out['seconds']:.1f}s {out['peak_mb']:.0f}MB",
                    file=sys.stderr,
                    flush=True,
                )
        if set(args.tools) == {"metasift", "asreview"} and seed < args.seeds - 1:
            partial = [aggregate(n, t, r) for (n, t), r in runs.items()]
            print(f"# after {seed + 1} seed(s):\n{table(partial)}", file=sys.stderr, flush=True)
    rows = [aggregate(n, t, r) for (n, t), r in runs.items()]
    for row in rows:
        print(json.dumps(row), flush=True)
    if set(args.tools) == {"metasift", "asreview"}:
        print(table(rows))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        raise SystemExit(_child(sys.argv[2:]))
    raise SystemExit(main())
