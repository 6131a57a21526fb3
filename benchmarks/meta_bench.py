"""metasift meta-analysis benchmark: correctness against metafor reference cases and speed.

Usage: python benchmarks/meta_bench.py [--cases PATH] [--fits 1000] [--k 20] [--seed 1]

(a) For a cases file in the ../shared/benchmarks/meta/cases.json schema (its data/ folder next
    to it), prints one JSON line per case category {"category", "cases", "passed",
    "max_rel_err"} and a final line {"cases", "passed"}.
(b) Times ``--fits`` random-effects fits with k = ``--k`` studies for DL and for REML, each
    including the prediction interval (``predict``), in microseconds per fit, and the same fits
    in R metafor via Rscript in the same run when R with metafor is installed, with the ratio.
    Without R the script says so and prints metasift's figures alone.

metasift iterates REML to a change in tau^2 below 1e-10; metafor is run with its default
control (threshold 1e-5), i.e. it does less work per fit than metasift. Both sides are timed
in CPU time of their own process (user + system), so a busy shared machine inflates neither
side by time spent waiting for a core; metasift reports the best of three passes.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from metasift.synthesis.refcases import run_cases  # noqa: E402
from metasift.synthesis.rma import predict, rma  # noqa: E402

DEFAULT_CASES = REPO.parent / "shared" / "benchmarks" / "meta" / "cases.json"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly=TRUE)
Y <- as.matrix(read.csv(args[1], header=FALSE)); V <- as.matrix(read.csv(args[2], header=FALSE))
n <- nrow(Y)
for (m in c("DL", "REML")) {
  fit <- function(i) try({ res <- rma(Y[i,], V[i,], method=m); predict(res) }, silent=TRUE)
  for (i in 1:min(n, 20)) fit(i)  # warm-up
  fails <- 0
  cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
  t0 <- cpu()
  for (i in 1:n) if (inherits(fit(i), "try-error")) fails <- fails + 1
  el <- cpu() - t0
  cat(m, el / n * 1e6, fails, "\n")
}
cat("version", as.character(packageVersion("metafor")), R.version$major, R.version$minor, "\n")
"""


def correctness(path: Path) -> None:
    by_cat = collections.OrderedDict()
    for out in run_cases(path):
        c = by_cat.setdefault(out.category, {"cases": 0, "passed": 0, "max_rel_err": 0.0})
        c["cases"] += 1
        c["passed"] += int(out.passed)
        err = out.max_rel_err if math.isfinite(out.max_rel_err) else None
        if err is None or c["max_rel_err"] is None:
            c["max_rel_err"] = None
        else:
            c["max_rel_err"] = max(c["max_rel_err"], err)
        if not out.passed:
            print(json.dumps({"failed": out.case_id, "error": out.error,
                              "first_failures": [list(map(str, f)) for f in out.failures[:3]]}),
                  file=sys.stderr)  # fmt: skip
    total = passed = 0
    for cat, c in by_cat.items():
        print(json.dumps({"category": cat, **c}))
        total += c["cases"]
        passed += c["passed"]
    print(json.dumps({"cases": total, "passed": passed}))


def make_data(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.25, size=(n, k))
    tau2 = rng.uniform(0.0, 0.3, size=(n, 1))
    yi = rng.normal(0.3, np.sqrt(vi + tau2))
    return yi, vi


def time_metasift(yi, vi, method: str) -> float:
    for i in range(min(20, len(yi))):  # warm-up
        predict(rma(yi[i], vi[i], method=method))
    best = math.inf
    for _ in range(3):  # best of three passes: the machine may be shared
        t0 = time.process_time()
        for i in range(len(yi)):
            predict(rma(yi[i], vi[i], method=method))
        best = min(best, (time.process_time() - t0) / len(yi) * 1e6)
    return best


def time_metafor(yi, vi):
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None, "Rscript not found (install r-base-core r-cran-metafor to compare)"
    with tempfile.TemporaryDirectory() as tmp:
        fy, fv, fs = (Path(tmp) / n for n in ("y.csv", "v.csv", "bench.R"))
        np.savetxt(fy, yi, delimiter=",", fmt="%.17g")
        np.savetxt(fv, vi, delimiter=",", fmt="%.17g")
        fs.write_text(R_SCRIPT)
        proc = subprocess.run([rscript, str(fs), str(fy), str(fv)], capture_output=True,
                              text=True, timeout=1800)  # fmt: skip
    if proc.returncode != 0:
        return None, "R metafor not available: " + proc.stderr.strip().splitlines()[-1:][0] \
            if proc.stderr.strip() else "R metafor failed"  # fmt: skip
    out, version = {}, ""
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in ("DL", "REML"):
            out[parts[0]] = float(parts[1])
            out[parts[0] + "_failed"] = int(parts[2])
        elif parts and parts[0] == "version":
            version = f"metafor {parts[1]}, R {parts[2]}.{parts[3]}"
    return out, version


def speed(n: int, k: int, seed: int) -> None:
    yi, vi = make_data(n, k, seed)
    ours = {m: time_metasift(yi, vi, m) for m in ("DL", "REML")}
    theirs, note = time_metafor(yi, vi)
    for m in ("DL", "REML"):
        line = {"speed": f"rma {m} + prediction interval", "fits": n, "k": k,
                "metasift_us_per_fit": round(ours[m], 1)}  # fmt: skip
        if theirs:
            line["metafor_us_per_fit"] = round(theirs[m], 1)
            line["speedup_vs_metafor"] = round(theirs[m] / ours[m], 1)
            line["metafor_failed_fits"] = theirs[m + "_failed"]
            line["anchor"] = note
        else:
            line["metafor"] = note
        print(json.dumps(line))
    if not theirs:
        print(json.dumps({"note": "R with metafor is not installed: speed shown without the "
                                  "metafor anchor"}))  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    ap.add_argument("--fits", type=int, default=1000)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args(argv)
    if not args.cases.is_file():
        print(json.dumps({"error": f"cases file not found: {args.cases}"}))
        return 2
    correctness(args.cases)
    if not args.no_speed:
        speed(args.fits, args.k, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
