"""Per-partition throughput of a ``--engine spark`` run, read from Spark's event log (no code
in the product path: Spark writes the log when asked to).

export PYSPARK_SUBMIT_ARGS="--conf spark.eventLog.enabled=true \\
  --conf spark.eventLog.dir=file:/tmp/ev --conf spark.eventLog.compress=false pyspark-shell"
.venv/bin/greenscreen screen p1m.parquet --out o -q --engine spark --master 'local[2]'
.venv/bin/python benchmarks/spark_tasks.py /tmp/ev/*     # the newest log

Prints every job (its call site and seconds) and, for the stage that screens (the tasks that
read the Parquet file and run ``mapInArrow(_screen_partition)``), one line per partition:
input rows, task seconds (launch to finish: read, screen, write to the persisted table), rows
per second, the time Spark counts in Python ("time to execute Python code") and the JVM's GC.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _events(path: Path) -> list[dict[str, Any]]:
    """The events of a log file, or of a rolling log's folder (Spark 4's default)."""
    files = sorted(path.glob("events_*"), key=lambda f: int(f.name.split("_")[1])) or [path]
    events = []
    for file in files:
        if file.suffix == ".zstd":  # spark.eventLog.compress was not turned off
            raise SystemExit(f"{file} is compressed: zstd -d it, or log with compress=false")
        with file.open(encoding="utf-8") as log:
            events += [json.loads(line) for line in log if line.strip()]
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "log", type=Path, nargs="+", help="event logs (files or folders); the newest is read"
    )
    args = parser.parse_args()
    path = max(args.log, key=lambda p: p.stat().st_mtime)
    events = _events(path)
    stages: dict[int, dict[str, Any]] = {}
    tasks: dict[int, list[dict[str, Any]]] = {}
    jobs: dict[int, dict[str, Any]] = {}
    for e in events:
        kind = e["Event"]
        if kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info = e["Stage Info"]  # submitted: a run still going (or failed) shows its tasks
            stages[info["Stage ID"]] = info
        elif kind == "SparkListenerTaskEnd":
            tasks.setdefault(e["Stage ID"], []).append(e)
        elif kind == "SparkListenerJobStart":
            jobs[e["Job ID"]] = {"start": e["Submission Time"], "stages": e["Stage IDs"]}
        elif kind == "SparkListenerJobEnd":
            jobs[e["Job ID"]]["end"] = e["Completion Time"]
    first = min(j["start"] for j in jobs.values())
    print(f"{path.name}: {len(jobs)} jobs")
    for job_id, job in sorted(jobs.items()):
        names = {stages[s]["Stage Name"] for s in job["stages"] if s in stages}
        seconds = (job.get("end", job["start"]) - job["start"]) / 1000
        at = (job["start"] - first) / 1000
        print(f"  job {job_id:>3} at {at:6.1f} s: {seconds:6.1f} s  {', '.join(sorted(names))}")
    # the screening stage: the first with the MapInArrow whose input has the row numbers (later
    # stages show it in their lineage too: they read its persisted output)
    candidates = [
        s
        for s, info in stages.items()
        if any(
            r["Name"].startswith("MapInArrow") and "__gs_row__" in r["Name"].splitlines()[0]
            for r in info["RDD Info"]
        )
    ]
    if not candidates:
        print("no screening stage in the log (yet)")
    screening = candidates and [min(candidates)]
    for stage_id in sorted(screening):
        ends = sorted(tasks.get(stage_id, []), key=lambda t: t["Task Info"]["Partition ID"])
        print(f"stage {stage_id} ({stages[stage_id]['Stage Name']}): {len(ends)} partitions")
        print("  partition      rows   task s   rows/s   Python s   GC s")
        total = busy = 0.0
        for t in ends:
            info, metrics = t["Task Info"], t["Task Metrics"]
            n = metrics["Input Metrics"]["Records Read"]
            seconds = (info["Finish Time"] - info["Launch Time"]) / 1000
            python = sum(
                float(a.get("Update", 0))
                for a in info.get("Accumulables", [])
                if a.get("Name") == "time to execute Python code"
            )
            gc = metrics["JVM GC Time"] / 1000
            print(
                f"  {info['Partition ID']:>9} {n:>9,} {seconds:8.1f} {n / seconds:8,.0f}"
                f" {python / 1000:10.1f} {gc:6.1f}"
            )
            total += n
            busy += seconds
        span = (
            max(t["Task Info"]["Finish Time"] for t in ends)
            - min(t["Task Info"]["Launch Time"] for t in ends)
        ) / 1000
        print(
            f"  all {total:>13,.0f} rows: stage {span:.1f} s ({total / span:,.0f} rows/s), "
            f"{total / busy:,.0f} rows/s per partition on average"
        )


if __name__ == "__main__":
    main()
