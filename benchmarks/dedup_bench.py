"""Deduplication benchmark: metasift.dedup against bib-dedupe on labelled sets.

    .venv/bin/python benchmarks/dedup_bench.py --data ../shared/benchmarks/dedup/*.csv*

For each set and tool, one JSON line on stdout:
``{"dataset", "tool", "records", "sensitivity", "specificity", "precision", "auto_merged",
"queued", "seconds", "peak_mb"}`` (plus ``"error"`` when a tool could not run), then a summary
table on stderr. Scoring is ``metasift.dedup.evaluate`` (the shared README's group-aware
definitions) for both tools; metasift counts automatic merges only (the review queue counts as
not merged); bib-dedupe counts its "duplicate" matches only ("maybe" pairs are its queue).

Each (set, tool) runs in a fresh subprocess: ``seconds`` is the wall time of the dedup call
(loading excluded), ``peak_mb`` the subprocess's peak resident memory (``wait4``), so loading
counts towards memory. bib-dedupe (pinned, ``BIB_DEDUPE_VERSION``) is installed by this script
into its own virtual environment under ``$METASIFT_BENCH_CACHE`` (default
``~/.cache/metasift-bench``); if that fails, its lines carry the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

BIB_DEDUPE_VERSION = "0.11.0"
REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("METASIFT_BENCH_CACHE", Path.home() / ".cache" / "metasift-bench"))
FIELDS = (
    "dataset",
    "tool",
    "records",
    "sensitivity",
    "specificity",
    "precision",
    "auto_merged",
    "queued",
    "seconds",
    "peak_mb",
)

# --- workers (run in a subprocess) ---------------------------------------------------------


def _worker_metasift(path: str) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from metasift.dedup import dedup, evaluate, load_benchmark_csv

    records, truth = load_benchmark_csv(path)
    t0 = time.perf_counter()
    res = dedup(records)
    seconds = time.perf_counter() - t0
    m = evaluate(res.groups, truth)
    return {
        "records": len(records),
        "sensitivity": m.sensitivity,
        "specificity": m.specificity,
        "precision": m.precision,
        "auto_merged": res.auto_merged,
        "queued": len(res.queued),
        "seconds": seconds,
        "fp": m.fp,
        "fn": m.fn,
    }


_BIB_DEDUPE_WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import bib_dedupe.bib_dedupe as bd
from bib_dedupe.cluster import get_connected_components
df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
ren = {"record_id": "ID", "entry_type": "ENTRYTYPE", "authors": "author", "issue": "number"}
rec = df.drop(columns=["dup_group"]).rename(columns=ren)
if "ENTRYTYPE" not in rec:
    rec["ENTRYTYPE"] = "article"
rec["ENTRYTYPE"] = rec["ENTRYTYPE"].replace("", "article")
for col in ("abstract", "booktitle", "journal", "volume", "number", "pages", "doi", "title",
            "author", "year"):
    if col not in rec:
        rec[col] = ""
t0 = time.perf_counter()
prep = bd.prep(rec, verbosity_level=0)
pairs = bd.block(prep, verbosity_level=0)
matched = bd.match(pairs, verbosity_level=0)
dups = matched[matched["duplicate_label"] == "duplicate"]
groups = get_connected_components(dups) if len(dups) else []
seconds = time.perf_counter() - t0
n_maybe = int((matched["duplicate_label"] == "maybe").sum())
json.dump({"groups": [sorted(g) for g in groups], "seconds": seconds, "queued": n_maybe},
          sys.stdout)
"""


def _bib_dedupe_python() -> tuple[Path | None, str]:
    """Create/reuse the bib-dedupe venv; return (python, '') or (None, why it failed)."""
    env_dir = CACHE / f"bibdedupe-{BIB_DEDUPE_VERSION}"
    py = env_dir / "bin" / "python"
    ok = env_dir / ".installed"
    if ok.exists() and py.exists():
        return py, ""
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", f"bib-dedupe=={BIB_DEDUPE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"cannot create the bib-dedupe venv in {env_dir}: {e}"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return None, f"pip install bib-dedupe=={BIB_DEDUPE_VERSION} failed: {' | '.join(tail)}"
    ok.write_text(BIB_DEDUPE_VERSION)
    return py, ""


def _run(cmd: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Run a subprocess; return (returncode, stdout, stderr, peak resident MB)."""
    with (
        open(os.devnull, "rb") as devnull,
        _tmpfile() as out,
        _tmpfile() as err,
    ):
        p = subprocess.Popen(cmd, stdin=devnull, stdout=out, stderr=err)
        t0 = time.monotonic()
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        _run.last_cpu = ru.ru_utime + ru.ru_stime  # the whole subprocess, loading included
        return p.returncode, out.read().decode(), err.read().decode(), ru.ru_maxrss / 1024


def _tmpfile():
    import tempfile

    return tempfile.TemporaryFile()


def _truth(path: str) -> list[str]:
    sys.path.insert(0, str(REPO / "src"))
    from metasift.dedup import load_benchmark_csv

    return load_benchmark_csv(path)[1]


def run_metasift(path: str, timeout: float) -> dict:
    rc, out, err, peak = _run(
        [sys.executable, __file__, "--worker", "metasift", "--data", path], timeout
    )
    if rc != 0:
        return {"error": f"exit {rc}: {err.strip().splitlines()[-1:] if err else ''}"}
    d = json.loads(out)
    d["peak_mb"] = peak
    d["cpu_seconds"] = _run.last_cpu
    return d


def run_bib_dedupe(path: str, timeout: float) -> dict:
    py, why = _bib_dedupe_python()
    if py is None:
        return {"error": why}
    rc, out, err, peak = _run([str(py), "-c", _BIB_DEDUPE_WORKER, path], timeout)
    if rc != 0:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"
        return {"error": f"bib-dedupe failed: {last}"}
    d = json.loads(out)
    sys.path.insert(0, str(REPO / "src"))
    import pandas as pd

    from metasift.dedup import evaluate

    ids = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["record_id"])["record_id"]
    index = {rid: i for i, rid in enumerate(ids)}
    truth = _truth(path)
    label = list(range(len(ids)))
    for gi, g in enumerate(d["groups"]):
        for rid in g:
            label[index[rid]] = len(ids) + gi
    m = evaluate(label, truth)
    return {
        "records": len(ids),
        "sensitivity": m.sensitivity,
        "specificity": m.specificity,
        "precision": m.precision,
        "auto_merged": len(ids) - len(set(label)),
        "queued": d["queued"],
        "seconds": d["seconds"],
        "peak_mb": peak,
        "cpu_seconds": _run.last_cpu,
        "fp": m.fp,
        "fn": m.fn,
    }


def _dataset_name(path: str) -> str:
    name = Path(path).name
    for suf in (".gz", ".csv"):
        name = name.removesuffix(suf)
    return name


def _fmt(v, nd=4):
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="labelled CSVs (.csv or .csv.gz)")
    ap.add_argument(
        "--tools", nargs="+", default=["metasift", "bib-dedupe"], choices=["metasift", "bib-dedupe"]
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per tool and set")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker == "metasift":
        json.dump(_worker_metasift(args.data[0]), sys.stdout)
        return 0

    rows = []
    for path in args.data:
        if not Path(path).is_file():
            print(f"no such file: {path}", file=sys.stderr)
            return 2
        for tool in args.tools:
            runner = run_metasift if tool == "metasift" else run_bib_dedupe
            d = runner(path, args.timeout)
            row = {"dataset": _dataset_name(path), "tool": tool}
            row.update({k: d.get(k) for k in FIELDS if k not in row})
            if "error" in d:
                row["error"] = d["error"]
            for k in ("sensitivity", "specificity", "precision"):
                if row[k] is not None:
                    row[k] = round(row[k], 5)
            if d.get("cpu_seconds") is not None:
                # CPU time of the tool's whole subprocess (loading included): on a shared
                # machine wall-clock "seconds" also counts time spent waiting for a core
                row["cpu_seconds"] = round(d["cpu_seconds"], 1)
            for k in ("seconds", "peak_mb"):
                if row[k] is not None:
                    row[k] = round(row[k], 1)
            print(json.dumps(row), flush=True)
            rows.append({**row, "fp": d.get("fp"), "fn": d.get("fn")})

    head = [
        "dataset",
        "tool",
        "records",
        "sens",
        "spec",
        "prec",
        "FP",
        "FN",
        "merged",
        "queued",
        "queue%",
        "s",
        "cpu_s",
        "MB",
    ]
    lines = [head]
    for r in rows:
        q = r["queued"]
        qpct = f"{100 * q / r['records']:.2f}" if q is not None and r["records"] else "-"
        lines.append(
            [
                r["dataset"],
                r["tool"],
                _fmt(r["records"]),
                _fmt(r["sensitivity"]),
                _fmt(r["specificity"], 5),
                _fmt(r["precision"]),
                _fmt(r["fp"]),
                _fmt(r["fn"]),
                _fmt(r["auto_merged"]),
                _fmt(q),
                qpct,
                _fmt(r["seconds"], 1),
                _fmt(r.get("cpu_seconds"), 1),
                _fmt(r["peak_mb"], 0),
            ]
            if "error" not in r
            else [r["dataset"], r["tool"], "error: " + r["error"][:200]]
        )
    widths = [max(len(str(ln[i])) for ln in lines if i < len(ln)) for i in range(len(head))]
    print("\nsummary (goal: sens >= 0.995, spec >= 0.9995, queue < 2%)", file=sys.stderr)
    for ln in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(ln, widths, strict=False)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
