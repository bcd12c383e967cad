#!/usr/bin/env python3
"""cleaner_latency.py - what the log cleaner costs produce latency (issue #15).

Each variant runs on a fresh Samsa: a background producer writes keyed 1 KB
records into a compacted topic (8 MB segments, min.cleanable.dirty.ratio 0.05,
5,000 keys) at a steady rate, so segments keep rolling and becoming cleanable;
meanwhile `samsa perf e2e` measures produce-to-consume latency (acks=all) on
another topic at a fixed rate. The variants differ only in
log.cleaner.enable: with the cleaner off the compacted topic just grows, with
it on the cleaner keeps compacting it during the whole measurement. Pairs
alternate off/on; the medians of p50/p99/p99.9 and of the broker's CPU are
printed, and the compacted topic's size on disk at the end shows that the
cleaner did run.

  /usr/bin/python3 bench/cleaner_latency.py [--pairs N] [--secs S] [--quick]

Printed only; docs/PERFORMANCE.md ("Log cleaner") is updated by hand.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Samsa, Sampler, perf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dir_mb(path):
    total = 0
    for name in os.listdir(path):
        if name.endswith(".log"):
            total += os.path.getsize(os.path.join(path, name))
    return total / 1048576.0


def one(args, workdir, cleaner_on):
    extra = [f"log.cleaner.enable={'true' if cleaner_on else 'false'}",
             "log.cleaner.backoff.ms=100"]
    if cleaner_on:
        extra += args.on_override
    b = Samsa(args, workdir, extra=tuple(extra))
    try:
        subprocess.run([args.cli, "-b", b.bootstrap, "topic", "create", "compact", "-p", "1",
                        "-c", "cleanup.policy=compact", "-c", "segment.bytes=8388608",
                        "-c", "min.cleanable.dirty.ratio=0.05"], check=True,
                       stdout=subprocess.DEVNULL)
        bg_n = int(args.bg_rate * (args.secs + 2))
        bg_out = {}

        def background():
            bg_out["r"] = perf(args, b.bootstrap, "produce", "compact", "-n", bg_n, "-s", 1024,
                               "--keys", 5000, "--rate", args.bg_rate, "--acks", "1")

        th = threading.Thread(target=background)
        th.start()
        time.sleep(1.0)  # the first segments roll before the measurement starts
        with Sampler(b.pid) as smp:
            r = perf(args, b.bootstrap, "e2e", "lat", "-n", int(args.rate * args.secs),
                     "--rate", args.rate, "--acks", "all", "--partitions", 1)
        th.join()
        lat = r["latency_ms"]
        return {"p50": lat["p50"], "p99": lat["p99"], "p99_9": lat["p99_9"], "max": lat["max"],
                "cpu_pct": smp.cpu_pct, "bg_mb": bg_out["r"]["bytes"] / 1048576.0,
                "compact_mb": dir_mb(os.path.join(b.data, "compact-0"))}
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "bin", "samsa-broker"))
    ap.add_argument("--cli", default=os.path.join(REPO, "bin", "samsa"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--rate", type=int, default=1000, help="e2e messages/s (1 KB)")
    ap.add_argument("--bg-rate", type=int, default=20000,
                    help="keyed 1 KB records/s into the compacted topic")
    ap.add_argument("--on-override", action="append", default=[], metavar="KEY=VALUE",
                    help="broker override of the cleaner-on variant only, e.g."
                         " log.cleaner.io.max.bytes.per.second=20971520")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    args.versus = None
    if args.quick:
        args.pairs, args.secs = 1, 4
    workdir = tempfile.mkdtemp(prefix="cleaner-lat-")
    rows = {"off": [], "on": []}
    for i in range(args.pairs):
        for variant in ("off", "on"):
            s = one(args, workdir, variant == "on")
            rows[variant].append(s)
            print(f"  pair {i + 1} cleaner {variant}: e2e p50 {s['p50']:.3f} p99 {s['p99']:.3f}"
                  f" p99.9 {s['p99_9']:.3f} max {s['max']:.3f} ms; broker cpu {s['cpu_pct']:.0f}%;"
                  f" compacted topic {s['bg_mb']:.0f} MB written, {s['compact_mb']:.1f} MB on disk",
                  flush=True)
    med = {v: {k: statistics.median(x[k] for x in rows[v]) for k in rows[v][0]} for v in rows}
    print(f"| cleaner | e2e p50 ms | p99 ms | p99.9 ms | broker CPU | compacted topic on disk |")
    print(f"|---|---|---|---|---|---|")
    for v in ("off", "on"):
        m = med[v]
        print(f"| {v} | {m['p50']:.3f} | {m['p99']:.3f} | {m['p99_9']:.3f} | {m['cpu_pct']:.0f}% |"
              f" {m['compact_mb']:.1f} MB of {m['bg_mb']:.0f} MB written |")
    ratio = statistics.median(on["p99"] / off["p99"] for off, on in zip(rows["off"], rows["on"]))
    ratio50 = statistics.median(on["p50"] / off["p50"] for off, on in zip(rows["off"], rows["on"]))
    print(f"median of paired ratios (on / off): p50 {ratio50:.2f}x, p99 {ratio:.2f}x")


if __name__ == "__main__":
    main()
