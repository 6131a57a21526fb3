"""Import benchmark: metasift's RIS reader (full read + normalisation) against plain ``rispy``.

    .venv/bin/python benchmarks/import_bench.py [--records 100000] [--shared ../shared]

Builds a RIS file of ``--records`` records in a temporary folder by cycling through the records
of the corpus's RIS exports (``corpus/imports/ris/*.ris``: Embase, Scopus, WoS, Ovid, Cochrane,
ProQuest; each copy gets a numbered title so no two records are the same), then, in the same run
and each in a fresh subprocess (so that ``peak_mb`` is that reader's own peak resident memory):

* ``rispy``: ``rispy.load(path)`` (parse only, the anchor);
* ``metasift``: ``sum(1 for _ in metasift.sources.iter_records(path))`` (sniffing incl. a
  full-file UTF-8 check, parsing, normalisation into ``RecordData``, streaming);
* ``store``: ``Review.create(dir)`` then ``review.import_file(path, database="Bench")`` if
  ``metasift.review.Review`` exists, else null with the reason.

Prints one line per step, then one JSON line
``{"records", "metasift_per_s", "rispy_per_s", "ratio", "store_import_s", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = {
    "rispy": """
import rispy, sys, time
from pathlib import Path
t = time.perf_counter()
n = len(rispy.load(Path(sys.argv[1]), encoding="utf-8"))
print(n, time.perf_counter() - t)
""",
    "metasift": """
import sys, time
from metasift import sources
t = time.perf_counter()
stream = sources.iter_records(sys.argv[1])
n = 0
for _ in stream:
    n += 1
assert not stream.problems
print(n, time.perf_counter() - t)
""",
    "store": """
import sys, time
from pathlib import Path
try:
    from metasift.review import Review
except Exception as e:
    print("null", repr(f"metasift.review.Review is not importable: {type(e).__name__}: {e}"))
    raise SystemExit(0)
review = Review.create(Path(sys.argv[2]))
t = time.perf_counter()
res = review.import_file(sys.argv[1], database="Bench")
dt = time.perf_counter() - t
n = getattr(res, "imported", None)
if n is None:
    n = getattr(res, "records", None)
print(n if isinstance(n, int) else len(n) if n is not None else -1, dt)
""",
}


def build_ris(shared: Path, n_records: int, out: Path) -> int:
    """Write ``n_records`` corpus records (cycled, titles numbered) to ``out``; return bytes."""
    blocks = []
    for f in sorted((shared / "corpus" / "imports" / "ris").glob("*.ris")):
        text = f.read_text(encoding="utf-8-sig")
        cur: list[str] = []
        inside = False
        for line in text.splitlines():
            if line.startswith("TY  -"):
                inside = True
                cur = []
            if inside:
                cur.append(line)
            if line.startswith("ER  -"):
                inside = False
                blocks.append(cur)
    if not blocks:
        raise SystemExit(f"no RIS records under {shared}/corpus/imports/ris")
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        for i in range(n_records):
            for line in blocks[i % len(blocks)]:
                if line[:2] in ("TI", "T1") and line[2:6].startswith("  -"):
                    line = f"{line} [{i + 1}]"
                fh.write(line + "\n")
            fh.write("\n")
    return out.stat().st_size


def run_child_rusage(name: str, *args: str):
    """(first output field, second output field, peak RSS in MB, CPU seconds) read with ``wait4``.

    The CPU seconds (user + system) include the child's own children (the store import reads a
    big file in a second process), so on a busy machine they show the work apart from the wait."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD[name], *args], stdout=out, stderr=err, text=True, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errtext = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{errtext.strip()[-2000:]}")
    first, _, second = text.strip().splitlines()[-1].partition(" ")
    return first, second, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--keep", type=Path, default=None, help="write the RIS file here and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="metasift-import-bench-") as tmp:
        tmp = Path(tmp)
        path = args.keep or tmp / "bench.ris"
        t = time.perf_counter()
        size = build_ris(args.shared, args.records, path)
        print(
            f"built {path.name}: {args.records} records, {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s",
            flush=True,
        )

        n_r, s_r, mb_r, cpu_r = run_child_rusage("rispy", str(path))
        rispy_s = float(s_r)
        rispy_per_s = int(n_r) / rispy_s
        print(
            f"rispy.load       : {int(n_r)} records in {rispy_s:.2f} s = {rispy_per_s:,.0f} records/s, peak {mb_r:.0f} MB, CPU {cpu_r:.1f} s",
            flush=True,
        )

        n_m, s_m, mb_m, cpu_m = run_child_rusage("metasift", str(path))
        ms_s = float(s_m)
        ms_per_s = int(n_m) / ms_s
        print(
            f"metasift (stream): {int(n_m)} records in {ms_s:.2f} s = {ms_per_s:,.0f} records/s, peak {mb_m:.0f} MB, CPU {cpu_m:.1f} s",
            flush=True,
        )
        if int(n_m) != int(n_r):
            print(f"WARNING: record counts differ: metasift {n_m}, rispy {n_r}", flush=True)
        ratio = ms_per_s / rispy_per_s
        print(f"ratio metasift/rispy: {ratio:.2f} (goal >= 1.0)", flush=True)

        store_s = None
        store_note = None
        mb_s = cpu_s = None
        try:
            first, second, mb_s, cpu_s = run_child_rusage("store", str(path), str(tmp / "review"))
            if first == "null":
                store_note = second.strip("'\"")
            else:
                store_s = float(second)
                print(
                    f"store import     : {first} records in {store_s:.2f} s "
                    f"({store_s / rispy_s:.2f}x rispy's parse time; goal < 2x), peak {mb_s:.0f} MB, "
                    f"CPU {cpu_s:.1f} s (all processes)",
                    flush=True,
                )
        except RuntimeError as e:
            store_note = str(e).splitlines()[-1][:300]
        if store_note:
            print(f"store import     : null ({store_note})", flush=True)

    result = {
        "records": int(n_m),
        "metasift_per_s": round(ms_per_s, 1),
        "rispy_per_s": round(rispy_per_s, 1),
        "ratio": round(ratio, 3),
        "store_import_s": None if store_s is None else round(store_s, 2),
        "store_vs_rispy": None if store_s is None else round(store_s / rispy_s, 3),
        "rispy_s": round(rispy_s, 2),
        "metasift_s": round(ms_s, 2),
        "file_mb": round(size / 1e6, 1),
        "metasift_peak_mb": round(mb_m, 1),
        "rispy_peak_mb": round(mb_r, 1),
        "store_peak_mb": None if mb_s is None else round(mb_s, 1),
        "rispy_cpu_s": round(cpu_r, 2),
        "metasift_cpu_s": round(cpu_m, 2),
        "store_cpu_s": None if cpu_s is None else round(cpu_s, 2),
    }
    if store_note:
        result["store_note"] = store_note
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
