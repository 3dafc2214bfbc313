"""Run a command and sample the memory of it and all its descendants (the JVM and Spark's
Python workers included) once a second from /proc; print the peaks at the end (Linux only).

.venv/bin/python benchmarks/rss_tree.py -- .venv/bin/greenscreen screen p1m.parquet --out o \\
    -q --no-register --engine spark --master 'local[2]'

``peak RSS sum`` is the largest sum of resident set sizes over the tree at one sample (pages
shared between processes, e.g. forked Python workers, counted once per process: an upper
bound); ``peak PSS sum`` counts shared pages proportionally (what the tree really holds).
At that sample the largest processes are listed. ``--interval`` changes the sampling period;
``--trace FILE`` writes every sample (seconds, MB summed, MB of each process above 50 MB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(root: int) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _memory(pid: int) -> tuple[int, int, str] | None:
    """RSS and PSS in bytes and a short name, or None for a process gone meanwhile."""
    proc = Path("/proc") / str(pid)
    try:
        rss = int((proc / "statm").read_text().split()[1]) * _PAGE
        pss = rss
        with (proc / "smaps_rollup").open() as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    name = Path(argv[0].decode(errors="replace")).name
    if name == "java":
        name = "java (Spark JVM)"
    elif b"pyspark.daemon" in argv or b"pyspark.worker" in argv:
        name = f"python ({next(a.decode() for a in argv if a.startswith(b'pyspark.'))})"
    elif len(argv) > 1:
        name = f"{name} {Path(argv[1].decode(errors='replace')).name}"
    return rss, pss, name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--trace", type=Path, help="also write every sample to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    start = time.monotonic()
    child = subprocess.Popen(command)
    peak_rss = peak_pss = most = 0
    at_peak: list[tuple[int, int, int, str]] = []
    peak_at = 0.0
    trace = args.trace.open("w") if args.trace else None
    while child.poll() is None:
        seen = [(pid, m) for pid in _descendants(child.pid) if (m := _memory(pid))]
        rss = sum(m[0] for _, m in seen)
        peak_pss = max(peak_pss, sum(m[1] for _, m in seen))
        most = max(most, len(seen))
        if trace:
            tops = " ".join(f"{m[2].split()[0]}:{m[0] / 1e6:.0f}" for _, m in seen if m[0] > 5e7)
            trace.write(f"{time.monotonic() - start:7.1f} {rss / 1e6:8.0f} MB  {tops}\n")
            trace.flush()
        if rss > peak_rss:
            peak_rss, peak_at = rss, time.monotonic() - start
            at_peak = sorted(((m[0], m[1], pid, m[2]) for pid, m in seen), reverse=True)
        time.sleep(args.interval)
    wall = time.monotonic() - start
    if trace:
        trace.close()
    gb = 1e9
    print(
        f"rss_tree: exit {child.returncode}, wall {wall:.1f} s, "
        f"peak RSS sum {peak_rss / gb:.2f} GB (at {peak_at:.0f} s), "
        f"peak PSS sum {peak_pss / gb:.2f} GB, up to {most} processes",
        file=sys.stderr,
    )
    for rss, pss, pid, name in at_peak[:6]:
        print(f"  {pid:>7} {rss / gb:6.2f} GB RSS {pss / gb:6.2f} GB PSS  {name}", file=sys.stderr)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
