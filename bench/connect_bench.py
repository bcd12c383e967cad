#!/usr/bin/env python3
"""connect_bench.py - samsa-connect's throughput and memory (issue #16).

Pipeline: a file of N lines of SIZE bytes -> FileStreamSource -> a topic ->
FileStreamSink -> a file, on one standalone samsa-connect (StringConverter).
The sink is created first and its consumer joins its group; the run is timed
from the POST that creates the source until the sink file holds N lines. Reference, measured in the same run against the same kind of fresh
broker: `samsa perf consume -n N` started, then `samsa perf produce -n N -s
SIZE` into the same topic, timed until both finish (the same data moved in and
out of the broker concurrently by librdkafka with no connector in between).
Pairs alternate; medians of records/s and of the ratio connect / reference.
The worker's RSS is sampled: idle after start-up, and its peak during the run.

  /usr/bin/python3 bench/connect_bench.py [--lines N] [--size B] [--pairs P] [--quick]

Printed only; docs/PERFORMANCE.md ("Connect") is updated by hand.
"""
import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Samsa, Sampler, free_port, port_accepts, proc_rss_kb  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRING_CONV = "org.apache.kafka.connect.storage.StringConverter"


class Worker:
    def __init__(self, binary, workdir, bootstrap):
        self.port = free_port()
        props = os.path.join(workdir, "worker.properties")
        for old in ("offsets.json", "out.txt"):  # every run starts from the file's start
            if os.path.exists(os.path.join(workdir, old)):
                os.unlink(os.path.join(workdir, old))
        with open(props, "w") as f:
            for k, v in {"bootstrap.servers": bootstrap, "key.converter": STRING_CONV,
                         "value.converter": STRING_CONV,
                         "offset.storage.file.filename": os.path.join(workdir, "offsets.json"),
                         "offset.flush.interval.ms": "1000",
                         "listeners": f"http://127.0.0.1:{self.port}"}.items():
                f.write(f"{k}={v}\n")
        self.log = open(os.path.join(workdir, "connect.log"), "ab")
        env = dict(os.environ, SAMSA_LOG_LEVEL=os.environ.get("CONNECT_LOG_LEVEL", "warn"))
        self.proc = subprocess.Popen([binary, props], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir, env=env)
        self.pid = self.proc.pid
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"samsa-connect exited {self.proc.returncode}")
            try:
                if self.req("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 30:
                raise RuntimeError("samsa-connect not ready after 30 s")
            time.sleep(0.05)

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def run_connect(args, workdir, infile):
    b = Samsa(args, workdir)
    w = None
    try:
        w = Worker(args.connect, workdir, b.bootstrap)
        time.sleep(1.0)
        idle_kb = proc_rss_kb(w.pid)
        out = os.path.join(workdir, "out.txt")
        if os.path.exists(out):
            os.unlink(out)
        # the sink's consumer joins its group first (a topic that exists, an
        # assignment): what is timed is the flow of records, not the join
        subprocess.run([args.cli, "-b", b.bootstrap, "topic", "create", "pipe", "-p", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        st, body = w.req("POST", "/connectors", {"name": "sink", "config": {
            "connector.class": "FileStreamSink", "file": out, "topics": "pipe"}})
        assert st == 201, body
        t_join = time.monotonic()
        while "pipe" not in subprocess.run([args.cli, "-b", b.bootstrap, "group", "describe",
                                            "connect-sink"], capture_output=True,
                                           text=True).stdout.split("ASSIGNMENT")[-1]:
            if time.monotonic() - t_join > 60:
                raise RuntimeError("the sink's consumer got no assignment in 60 s")
            time.sleep(0.1)
        t0 = time.monotonic()
        with Sampler(w.pid) as smp:
            st, body = w.req("POST", "/connectors", {"name": "src", "config": {
                "connector.class": "FileStreamSource", "file": infile, "topic": "pipe",
                "batch.size": "2000"}})
            assert st == 201, body
            want = args.lines * args.size  # every line is SIZE bytes: no re-reading to count
            while (os.path.getsize(out) if os.path.exists(out) else 0) < want:
                if time.monotonic() - t0 > 120:
                    diag = [subprocess.run([args.cli, "-b", b.bootstrap] + c, capture_output=True,
                                           text=True, stderr=subprocess.STDOUT).stdout
                            for c in (["group", "describe", "connect-sink"],
                                      ["topic", "describe", "pipe"])]
                    raise RuntimeError(f"pipeline stuck at {count_lines(out)} lines; "
                                       f"status {w.req('GET', '/connectors/sink/status')};"
                                       f" {' '.join(diag)}")
                time.sleep(0.01)
            secs = time.monotonic() - t0
        if count_lines(out) != args.lines:
            raise RuntimeError(f"the sink wrote {count_lines(out)} lines, not {args.lines}")
        return {"rps": args.lines / secs, "secs": secs, "idle_mb": idle_kb / 1024.0,
                "peak_mb": smp.peak_kb / 1024.0, "cpu_pct": smp.cpu_pct}
    finally:
        if w:
            w.stop()
        b.stop()


def run_reference(args, workdir):
    b = Samsa(args, workdir)
    try:
        base = [args.cli, "-b", b.bootstrap, "--format", "json", "perf"]
        subprocess.run([args.cli, "-b", b.bootstrap, "topic", "create", "pipe", "-p", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        cons = subprocess.Popen(base + ["consume", "pipe", "-n", str(args.lines)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        subprocess.run(base + ["produce", "pipe", "-n", str(args.lines), "-s", str(args.size)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cons.wait(600)
        secs = time.monotonic() - t0
        if cons.returncode != 0:
            raise RuntimeError("perf consume failed")
        return {"rps": args.lines / secs, "secs": secs}
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=os.path.join(REPO, "bin", "samsa-broker"))
    ap.add_argument("--cli", default=os.path.join(REPO, "bin", "samsa"))
    ap.add_argument("--connect", default=os.path.join(REPO, "bin", "samsa-connect"))
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    args.versus = None
    if args.quick:
        args.pairs, args.lines = 1, 200000
    workdir = tempfile.mkdtemp(prefix="connect-bench-")
    infile = os.path.join(workdir, "in.txt")
    with open(infile, "w") as f:
        pad = "x" * args.size
        for i in range(args.lines):  # SIZE bytes with the newline
            f.write((f"{i:011d}" + pad)[: max(args.size - 1, 1)] + "\n")
    rows = []
    for i in range(args.pairs):
        c = run_connect(args, workdir, infile)
        r = run_reference(args, workdir)
        rows.append((c, r))
        print(f"  pair {i + 1}: connect {c['rps']:,.0f} records/s ({c['secs']:.2f} s, worker cpu"
              f" {c['cpu_pct']:.0f}%, rss idle {c['idle_mb']:.1f} MB peak {c['peak_mb']:.1f} MB);"
              f" perf produce+consume {r['rps']:,.0f} records/s; ratio {c['rps'] / r['rps']:.2f}",
              flush=True)
    med = statistics.median
    print(f"median: connect {med(c['rps'] for c, _ in rows):,.0f} records/s, reference"
          f" {med(r['rps'] for _, r in rows):,.0f} records/s, ratio"
          f" {med(c['rps'] / r['rps'] for c, r in rows):.2f}; worker RSS idle"
          f" {med(c['idle_mb'] for c, _ in rows):.1f} MB, peak {med(c['peak_mb'] for c, _ in rows):.1f} MB")


if __name__ == "__main__":
    main()
