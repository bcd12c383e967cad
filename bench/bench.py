#!/usr/bin/env python3
"""bench.py - side-by-side benchmarks of samsa-broker against librdkafka's
in-memory mock cluster, plus the machine's own limits, in one run.

Method (see docs/PERFORMANCE.md):
  - one client for both brokers: `samsa perf produce|consume|e2e` (librdkafka);
  - the reference is `samsa perf mock-cluster` (rd_kafka_mock_cluster_new() in
    its own process: everything in memory, nothing on disk);
  - every run gets a fresh broker process (Samsa: fresh data dir), and the two
    brokers alternate A B A B ... for `pairs` pairs; results are medians and
    Samsa/mock ratios of the medians;
  - broker CPU (utime+stime from /proc/PID/stat over the client's run, as %
    of one core) and peak RSS (VmRSS sampled every 20 ms) for each run;
  - the machine's limits (loopback TCP, sequential write with and without
    fdatasync, fdatasync latency) measured by bench/machine.c in the same run.
Never a pass/fail test: it reports numbers. Writes a JSON file of every
sample and, unless --no-docs, the tables between the bench markers of
docs/PERFORMANCE.md (the prose around them is written by hand).

Usage: bench.py --broker BIN --cli BIN --machine BIN [--quick] [--pairs N]
                [--json OUT] [--no-docs] [--only NAME,...]
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ /proc sampling

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Peak RSS of pid while running; CPU seconds between start and stop."""

    def __init__(self, pid):
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()

    def __enter__(self):
        self.cpu0, self.t0 = proc_cpu_s(self.pid), time.monotonic()
        self.peak_kb = proc_rss_kb(self.pid)
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()
        return self

    def _run(self):
        while not self._stop.wait(0.02):
            try:
                self.peak_kb = max(self.peak_kb, proc_rss_kb(self.pid))
            except OSError:
                return

    def __exit__(self, *exc):
        self._stop.set()
        self.th.join()
        self.cpu_s = proc_cpu_s(self.pid) - self.cpu0
        self.wall_s = time.monotonic() - self.t0
        self.cpu_pct = 100.0 * self.cpu_s / max(self.wall_s, 1e-9)


# ------------------------------------------------------------------ brokers

class Samsa:
    name = "samsa"

    def __init__(self, args, workdir, binary=None, extra=()):
        self.args = args
        self.port = free_port()
        cport = free_port()
        self.data = tempfile.mkdtemp(prefix="data-", dir=workdir)
        self.log = open(os.path.join(workdir, "samsa.log"), "ab")
        cmd = [binary or args.broker, os.path.join(REPO, "config", "server.properties")]
        for k, v in {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.quorum.voters": f"1@127.0.0.1:{cport}",
            "log.dirs": self.data,
            "metrics.listener": f"http://127.0.0.1:{free_port()}",  # never the shared 9644
            "num.partitions": "1",
        }.items():
            cmd += ["--override", f"{k}={v}"]
        for kv in extra:  # KEY=VALUE broker overrides of a variant under test
            cmd += ["--override", kv]
        env = dict(os.environ, SAMSA_LOG_LEVEL=os.environ.get("SAMSA_LOG_LEVEL", "warn"))
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        while not port_accepts(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"samsa-broker exited {self.proc.returncode}; see {self.log.name}")
            if time.monotonic() - t0 > 30:
                raise RuntimeError("samsa-broker not listening after 30 s")
            time.sleep(0.001)
        self.startup_ms = (time.monotonic() - t0) * 1000
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


class Mock:
    name = "mock"

    def __init__(self, args, topic, partitions):
        self.proc = subprocess.Popen(
            [args.cli, "perf", "mock-cluster", "--topic", topic, "--partitions", str(partitions)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        m = re.search(r"(\d+\.\d+\.\d+\.\d+:\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"mock cluster printed {line!r}")
        self.bootstrap = m.group(1)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_ref(args, workdir, topic, partitions):
    """The reference broker of the B side: the mock cluster, or (--versus BIN)
    another samsa-broker build, e.g. the commit before an optimisation."""
    if args.versus:
        return Samsa(args, workdir, binary=args.versus)
    return Mock(args, topic, partitions)


# ------------------------------------------------------------------ client

def perf(args, bootstrap, verb, topic, *opts, timeout=300, extra=()):
    cmd = ([args.cli, "-b", bootstrap, "--format", "json"] + list(extra) + ["perf", verb, topic] +
           [str(o) for o in opts])
    # The client's CPU: the only child reaped during the call is the client
    # (brokers and the mock are reaped when they stop).
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    out = json.loads(lines[-1])
    out["client_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return out


def sample(res, broker, smp):
    out = {"msgs_per_sec": res["msgs_per_sec"], "mb_per_sec": res["mb_per_sec"],
           "cpu_pct": smp.cpu_pct, "rss_mb": smp.peak_kb / 1024.0, "cpu_s": smp.cpu_s,
           "messages": res["messages"], "client_cpu_s": res["client_cpu_s"]}
    if "latency_ms" in res:
        out["latency_ms"] = res["latency_ms"]
    if "txns_per_sec" in res:
        out["txns_per_sec"] = res["txns_per_sec"]
    return out


# ------------------------------------------------------------------ workloads

class Results:
    def __init__(self):
        self.data = {"workloads": {}, "machine": {}, "resources": {}, "startup_ms": []}

    def add(self, workload, broker, s):
        self.data["workloads"].setdefault(workload, {}).setdefault(broker, []).append(s)


HEADLINE = "produce-100B-p1-acks1"  # the workload with a ratio target: more pairs


def run_produce(args, res, workdir, wl, size, parts, acks, count):
    pairs = args.pairs + 4 if wl == HEADLINE and not args.quick else args.pairs
    for i in range(pairs):
        topic = f"bench-{wl}-{i}"
        for kind in ("samsa", "mock"):
            b = Samsa(args, workdir) if kind == "samsa" else make_ref(args, workdir, topic, parts)
            if kind == "samsa":
                res.data["startup_ms"].append(b.startup_ms)
            try:
                with Sampler(b.pid) as smp:
                    r = perf(args, b.bootstrap, "produce", topic, "-n", count, "-s", size,
                             "--acks", acks, "--partitions", parts)
                s = sample(r, kind, smp)
                res.add(wl, kind, s)
                log(f"  {wl} {kind}: {s['msgs_per_sec']:,.0f} msgs/s {s['mb_per_sec']:.1f} MB/s"
                    f" cpu {s['cpu_pct']:.0f}% rss {s['rss_mb']:.1f} MB")
            finally:
                b.stop()


BIG_FETCH = ("-X", "fetch.message.max.bytes=16777216")


def warm_files(d):
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            while f.read(1 << 20):
                pass


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def run_consume(args, res, workdir, small, count):
    """A/B on what the mock can hold (it keeps only the last 5 MB of each
    partition: 8 partitions x ~35k messages of 100 B), then Samsa alone on a
    larger log, from the page cache and (as root) after dropping caches."""
    topic = "bench-consume"
    sam = Samsa(args, workdir)
    ref = make_ref(args, workdir, topic, 8)
    try:
        for b in (sam, ref):
            # Random partition per message (no sticky batches), so no partition
            # of the mock goes over its 5 MB and loses its head.
            perf(args, b.bootstrap, "produce", topic, "-n", small, "-s", 100, "--acks", 1,
                 "--partitions", 8, extra=["-X", "sticky.partitioning.linger.ms=0"])
        for i in range(args.pairs):
            for kind, b in (("samsa", sam), ("mock", ref)):
                with Sampler(b.pid) as smp:
                    r = perf(args, b.bootstrap, "consume", topic, "-n", small)
                s = sample(r, kind, smp)
                res.add(f"consume-100B-p8-{small // 1000}k-cache", kind, s)
                log(f"  consume {kind}: {s['msgs_per_sec']:,.0f} msgs/s cpu {s['cpu_pct']:.0f}%")
        big = "bench-consume-big"
        perf(args, sam.bootstrap, "produce", big, "-n", count, "-s", 100, "--acks", 1,
             "--partitions", 1)
        # "From the page cache" means the segments are in it: write-behind
        # (log.cache.window.bytes) dropped all but the newest 32 MB of the log
        # while it was written, so read the files once first, as an earlier
        # consumer would have. The cold runs below drop the cache again.
        warm_files(os.path.join(sam.data, f"{big}-0"))
        # librdkafka's default of 1 MB per partition per fetch, then 16 MB: with
        # one fetch in flight per broker, the client's round trips set the pace.
        for i in range(args.pairs):
            for label, extra in (("", ()), ("-16MBfetch", BIG_FETCH)):
                with Sampler(sam.pid) as smp:
                    r = perf(args, sam.bootstrap, "consume", big, "-n", count, extra=extra)
                s = sample(r, "samsa", smp)
                res.add(f"consume-100B-p1-{count // 1000000}M-cache{label}", "samsa", s)
                log(f"  consume big{label} samsa: {s['msgs_per_sec']:,.0f} msgs/s"
                    f" cpu {s['cpu_pct']:.0f}%")
        if args.cold:
            for i in range(args.pairs):
                if not drop_caches():
                    log("  (cannot drop caches: need root and a writable /proc/sys/vm/drop_caches)")
                    break
                with Sampler(sam.pid) as smp:
                    r = perf(args, sam.bootstrap, "consume", big, "-n", count, extra=BIG_FETCH)
                s = sample(r, "samsa", smp)
                res.add(f"consume-100B-p1-{count // 1000000}M-cold-16MBfetch", "samsa", s)
                log(f"  consume cold samsa: {s['msgs_per_sec']:,.0f} msgs/s")
    finally:
        sam.stop()
        ref.stop()


def run_e2e(args, res, workdir, rates, secs):
    topic = "bench-e2e"
    sam = Samsa(args, workdir)
    mock = make_ref(args, workdir, topic, 1)
    try:
        for rate in rates:
            n = max(int(rate * secs), 2000)
            for i in range(args.pairs):
                for kind, b in (("samsa", sam), ("mock", mock)):
                    with Sampler(b.pid) as smp:
                        r = perf(args, b.bootstrap, "e2e", topic, "-n", n, "--rate", rate,
                                 "--acks", "all", "--partitions", 1)
                    s = sample(r, kind, smp)
                    res.add(f"e2e-{rate}", kind, s)
                    lat = s["latency_ms"]
                    log(f"  e2e {rate}/s {kind}: p50 {lat['p50']:.3f} p99 {lat['p99']:.3f}"
                        f" p99.9 {lat['p99_9']:.3f} max {lat['max']:.3f} ms")
    finally:
        sam.stop()
        mock.stop()


def run_idempotence(args, res, workdir, count):
    """Plain against idempotent produce, 1 KB, acks=all, 1 partition, each
    run on a fresh Samsa, the variants alternating. librdkafka's idempotent
    producer keeps at most 5 requests in flight per connection (plain: up to
    1,000,000), so a third variant, plain with 5 in flight, separates that
    client-side limit from the broker's sequence checks."""
    variants = (("plain", ()), ("idempotent", ("--idempotent",)),
                ("plain-inflight5", ()))
    for i in range(args.pairs):
        for kind, opts in variants:
            extra = ["-X", "max.in.flight.requests.per.connection=5"] if kind.endswith("5") else []
            b = Samsa(args, workdir)
            try:
                with Sampler(b.pid) as smp:
                    r = perf(args, b.bootstrap, "produce", f"bench-idem-{i}", "-n", count,
                             "-s", 1024, "--acks", "all", "--partitions", 1, *opts, extra=extra)
                s = sample(r, kind, smp)
                res.add("idem-1KB-p1-acksall", kind, s)
                log(f"  produce 1KB {kind}: {s['msgs_per_sec']:,.0f} msgs/s"
                    f" broker cpu {s['cpu_s']:.2f} s ({s['cpu_pct']:.0f}%)")
            finally:
                b.stop()


def run_txn_produce(args, res, workdir, sizes, txns):
    """Transactional produce, `txns` transactions of n messages of 1 KB for
    each n in sizes, one partition; Samsa and the mock cluster (which also
    coordinates transactions, in memory) alternating with the same client."""
    for n in sizes:
        wl = f"txn-{n}-1KB-p1"
        for i in range(args.pairs):
            topic = f"bench-{wl}-{i}"
            for kind in ("samsa", "mock"):
                b = Samsa(args, workdir) if kind == "samsa" else make_ref(args, workdir, topic, 1)
                try:
                    with Sampler(b.pid) as smp:
                        r = perf(args, b.bootstrap, "produce", topic, "-n", n * txns, "-s", 1024,
                                 "--partitions", 1, "--txn-size", n)
                    s = sample(r, kind, smp)
                    res.add(wl, kind, s)
                    log(f"  {wl} {kind}: {s['msgs_per_sec']:,.0f} msgs/s"
                        f" {s['txns_per_sec']:,.0f} txns/s cpu {s['cpu_pct']:.0f}%")
                finally:
                    b.stop()


def run_txn_consume(args, res, workdir, count, txn_size):
    """One topic of committed transactions (100 B messages, txn_size per
    transaction, so a commit marker after every txn_size records), read from
    the page cache with read_committed and read_uncommitted alternating.
    Samsa only: the mock keeps just the last 5 MB of a partition."""
    sam = Samsa(args, workdir)
    topic = "bench-txn-consume"
    try:
        perf(args, sam.bootstrap, "produce", topic, "-n", count, "-s", 100, "--partitions", 1,
             "--txn-size", txn_size)
        warm_files(os.path.join(sam.data, f"{topic}-0"))
        for i in range(args.pairs):
            order = ("read_committed", "read_uncommitted")
            for iso in order if i % 2 == 0 else order[::-1]:
                with Sampler(sam.pid) as smp:
                    r = perf(args, sam.bootstrap, "consume", topic, "-n", count, "--isolation", iso)
                s = sample(r, iso, smp)
                res.add(f"txnconsume-100B-p1-txn{txn_size}", iso, s)
                log(f"  consume {iso}: {s['msgs_per_sec']:,.0f} msgs/s broker cpu"
                    f" {s['cpu_s']:.2f} s ({s['cpu_pct']:.0f}%)")
    finally:
        sam.stop()


# ------------------------------------------------------------------ resources

def kafka_frame(api_key, version, corr, body=b""):
    h = struct.pack(">hhih", api_key, version, corr, 5) + b"bench" + body
    return struct.pack(">i", len(h)) + h


def recv_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise ConnectionError("closed")
            b += c
        return b
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


def run_resources(args, res, workdir, nconns, nslow, slow_mb):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = nconns + nslow + 256
    if soft < want and hard >= want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    r = res.data["resources"]
    # Start-up with the disk quiet (the workload runs' starts follow heavy
    # writeback, which each of the broker's start-up fsyncs waits behind).
    r["startup_quiet_ms"] = []
    for _ in range(5):
        os.sync()
        time.sleep(0.2)
        b = Samsa(args, workdir)
        r["startup_quiet_ms"].append(b.startup_ms)
        b.stop()
    sam = Samsa(args, workdir)
    try:
        time.sleep(0.5)
        r["idle_rss_mb"] = proc_rss_kb(sam.pid) / 1024.0
        # 1,000 idle connections, each having been served one request.
        socks = []
        for i in range(nconns):
            s = socket.create_connection(("127.0.0.1", sam.port), timeout=10)
            s.sendall(kafka_frame(18, 0, i))
            recv_frame(s)
            socks.append(s)
        time.sleep(0.3)
        r["conns"] = nconns
        r["conns_rss_mb"] = proc_rss_kb(sam.pid) / 1024.0
        for s in socks:
            s.close()
        time.sleep(0.3)
        r["after_conns_rss_mb"] = proc_rss_kb(sam.pid) / 1024.0
        # Slow consumers: each asks for a large Fetch and never reads it.
        topic = "bench-slow"
        perf(args, sam.bootstrap, "produce", topic, "-n", slow_mb * 1024, "-s", 1024,
             "--acks", 1, "--partitions", 1)
        r["slow_before_rss_mb"] = proc_rss_kb(sam.pid) / 1024.0
        tb = topic.encode()
        body = struct.pack(">iiiib", -1, 0, 0, 64 << 20, 0)
        body += struct.pack(">ih", 1, len(tb)) + tb + struct.pack(">iiqi", 1, 0, 0, 64 << 20)
        socks = []
        for i in range(nslow):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", sam.port))
            s.sendall(kafka_frame(1, 4, i, body))
            socks.append(s)
        peak = 0
        for _ in range(20):
            time.sleep(0.05)
            peak = max(peak, proc_rss_kb(sam.pid))
        r["slow_consumers"] = nslow
        r["slow_fetch_mb"] = slow_mb
        r["slow_rss_mb"] = peak / 1024.0
        for s in socks:
            s.close()
        time.sleep(0.2)
        r["final_rss_mb"] = proc_rss_kb(sam.pid) / 1024.0
        log(f"  resources: {r}")
    finally:
        sam.stop()


def run_machine(args, res, workdir):
    m = res.data["machine"]
    out = subprocess.run([args.machine, "tcp", "1" if args.quick else "2"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    writes = []
    for _ in range(1 if args.quick else 3):
        out += subprocess.run([args.machine, "write", workdir, "512"], stdout=subprocess.PIPE,
                              text=True, check=True).stdout
    # Fresh page-cache pages vs reused ones: 2 GiB, longer than the few
    # seconds freed pages stay backed by the host.
    out += subprocess.run([args.machine, "pagecache", workdir, "2048"],
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    out += subprocess.run([args.machine, "fsync", workdir, "200" if args.quick else "1000"],
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in out.splitlines():
        k, v = line.split("=")
        m.setdefault(k, []).append(float(v))
    log(f"  machine: {m}")


# ------------------------------------------------------------------ report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def machine_desc():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} x {model}, {mem:.0f} GiB RAM, Linux {platform.release()},"
            f" load average at start {os.getloadavg()[0]:.2f}")


def fmt_rate(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def report(res, args):
    d = res.data
    w = d["workloads"]
    R = "base" if args.versus else "mock"
    L = []
    L.append(f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{'quick' if args.quick else 'full'} mode, {args.pairs} A/B pair(s) per workload"
             f"{'' if args.quick else f' ({args.pairs + 4} for {HEADLINE[8:]})'}"
             f"{f' against {args.versus} (base)' if args.versus else ' against the mock cluster'}. "
             f"Machine: {machine_desc()}.")
    L.append("")
    m = d["machine"]
    if m:
        L.append(f"Machine limits (median): loopback TCP {med(m.get('tcp_mb_per_sec', [])):,.0f} MB/s;"
                 f" sequential write {med(m.get('write_mb_per_sec', [])):,.0f} MB/s buffered,"
                 f" {med(m.get('write_sync_mb_per_sec', [])):,.0f} MB/s with fdatasync every 16 MiB;"
                 f" 2 GiB into a new file {med(m.get('write_plain_mb_per_sec', [])):,.0f} MB/s plain,"
                 f" {med(m.get('writebehind_mb_per_sec', [])):,.0f} MB/s with write-behind;"
                 f" fdatasync of a 4 KiB append p50 {med(m.get('fsync_us_p50', [])):,.0f} us,"
                 f" p99 {med(m.get('fsync_us_p99', [])):,.0f} us.")
        L.append("")
    prod = [k for k in w if k.startswith("produce")]
    if prod:
        L.append(f"| produce workload | Samsa msgs/s | {R} msgs/s | ratio | Samsa MB/s | {R} MB/s"
                 f" | Samsa CPU | {R} CPU | Samsa peak RSS | {R} peak RSS |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in prod:
            s, mk = w[k].get("samsa", []), w[k].get("mock", [])
            sm, mm = med([x["msgs_per_sec"] for x in s]), med([x["msgs_per_sec"] for x in mk])
            L.append(f"| {k[len('produce-'):]} | {fmt_rate(sm)} | {fmt_rate(mm)} | {sm / mm:.2f}x"
                     f" | {med([x['mb_per_sec'] for x in s]):,.0f} | {med([x['mb_per_sec'] for x in mk]):,.0f}"
                     f" | {med([x['cpu_pct'] for x in s]):.0f}% | {med([x['cpu_pct'] for x in mk]):.0f}%"
                     f" | {med([x['rss_mb'] for x in s]):.0f} MB | {med([x['rss_mb'] for x in mk]):.0f} MB |")
        L.append("")
    cons = [k for k in w if k.startswith("consume")]
    if cons:
        L.append(f"| consume workload | Samsa msgs/s | {R} msgs/s | ratio | Samsa MB/s | Samsa CPU"
                 f" | {R} CPU | Samsa peak RSS | {R} peak RSS |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in cons:
            s, mk = w[k].get("samsa", []), w[k].get("mock", [])

            def m(xs, key):
                return med([x[key] for x in xs])
            sm = m(s, "msgs_per_sec")
            if mk:
                mm = m(mk, "msgs_per_sec")
                mock_cols = (f"{fmt_rate(mm)} | {sm / mm:.2f}x", f"{m(mk, 'cpu_pct'):.0f}%",
                             f"{m(mk, 'rss_mb'):.0f} MB")
            else:
                mock_cols = ("- | -", "-", "-")
            L.append(f"| {k[len('consume-'):]} | {fmt_rate(sm)} | {mock_cols[0]}"
                     f" | {m(s, 'mb_per_sec'):,.0f} | {m(s, 'cpu_pct'):.0f}% | {mock_cols[1]}"
                     f" | {m(s, 'rss_mb'):.0f} MB | {mock_cols[2]} |")
        L.append("")
    e2e = sorted((k for k in w if k.startswith("e2e")), key=lambda k: int(k.split("-")[1]))
    if e2e:
        L.append(f"| e2e, acks=all | Samsa p50 | p99 | p99.9 | max | {R} p50 | p99 | p99.9 | max"
                 " | Samsa CPU | Samsa peak RSS |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in e2e:
            s, mk = w[k].get("samsa", []), w[k].get("mock", [])

            def lat(xs, q):
                return med([x["latency_ms"][q] for x in xs])
            L.append(f"| {k.split('-')[1]} msgs/s | " +
                     " | ".join(f"{lat(s, q):.2f} ms" for q in ("p50", "p99", "p99_9", "max")) + " | " +
                     " | ".join(f"{lat(mk, q):.2f} ms" for q in ("p50", "p99", "p99_9", "max")) +
                     f" | {med([x['cpu_pct'] for x in s]):.0f}% | {med([x['rss_mb'] for x in s]):.0f} MB |")
        L.append("")
    L += report_txn(w, R)
    for f in d.get("failed", []):
        L.append(f"(not measured in this run: {f})")
        L.append("")
    r = d["resources"]
    st = d["startup_ms"]
    if st or r:
        L.append("| resource | measured |")
        L.append("|---|---:|")
        if st:
            L.append(f"| start-up to listening, empty data dir (median of {len(st)}; min; max)"
                     f" | {med(st):.0f} ms ({min(st):.0f}; {max(st):.0f}) |")
        if r.get("startup_quiet_ms"):
            q = r["startup_quiet_ms"]
            L.append(f"| start-up to listening, empty data dir, after a sync (median of {len(q)}; min; max)"
                     f" | {med(q):.0f} ms ({min(q):.0f}; {max(q):.0f}) |")
        rows = [
            ("idle_rss_mb", "idle RSS after start-up"),
            ("conns_rss_mb", f"RSS with {r.get('conns')} idle connections (each served one request)"),
            ("after_conns_rss_mb", "RSS after they closed"),
            ("slow_before_rss_mb", f"RSS before the slow consumers ({r.get('slow_fetch_mb')} MB in the topic)"),
            ("slow_rss_mb", f"peak RSS with {r.get('slow_consumers')} slow consumers (64 MB Fetch each, never read)"),
            ("final_rss_mb", "RSS after they closed"),
        ]
        for key, label in rows:
            if key in r:
                L.append(f"| {label} | {r[key]:.1f} MB |")
        L.append("")
    return "\n".join(L)


def paired(xs, ys, key="msgs_per_sec"):
    """Median of the ratios of runs made side by side (x[i] / y[i]): steadier
    than the ratio of medians when the machine's speed drifts during a run."""
    return med([x[key] / y[key] for x, y in zip(xs, ys)])


def report_txn(w, R):
    """Tables of the txn workload: idempotent/plain, transactional produce,
    read_committed/read_uncommitted."""
    L = []

    def m(xs, key):
        return med([x[key] for x in xs])
    idem = w.get("idem-1KB-p1-acksall")
    if idem and "plain" in idem:
        p = m(idem["plain"], "msgs_per_sec")
        L.append("| produce 1 KB, acks=all, 1 partition, fresh Samsa each run | msgs/s (median)"
                 " | vs plain (ratio of medians; median of the pairs' ratios) | runs (msgs/s)"
                 " | broker CPU s per run | client CPU s per run |")
        L.append("|---|---:|---:|---|---:|---:|")
        for kind in ("plain", "idempotent", "plain-inflight5"):
            xs = idem.get(kind, [])
            if not xs:
                continue
            v = m(xs, "msgs_per_sec")
            runs = ", ".join(fmt_rate(x["msgs_per_sec"]) for x in xs)
            L.append(f"| {kind} | {fmt_rate(v)} | {v / p:.3f}x; {paired(xs, idem['plain']):.3f}x"
                     f" | {runs} | {m(xs, 'cpu_s'):.2f} | {m(xs, 'client_cpu_s'):.2f} |")
        L.append("")
    txn = sorted((k for k in w if k.startswith("txn-")), key=lambda k: int(k.split("-")[1]))
    if txn:
        L.append(f"| transactional produce, 1 KB, 1 partition | Samsa msgs/s | Samsa txns/s"
                 f" | {R} msgs/s | {R} txns/s | ratio (of medians; median of pairs) | Samsa CPU |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for k in txn:
            s, mk = w[k].get("samsa", []), w[k].get("mock", [])
            sm = m(s, "msgs_per_sec")
            mm = m(mk, "msgs_per_sec") if mk else float("nan")
            L.append(f"| {k.split('-')[1]} msgs per transaction | {sm:,.0f} | {m(s, 'txns_per_sec'):,.0f}"
                     f" | {mm:,.0f} | {m(mk, 'txns_per_sec') if mk else float('nan'):,.0f}"
                     f" | {sm / mm:.2f}x; {paired(s, mk) if mk else float('nan'):.2f}x"
                     f" | {m(s, 'cpu_pct'):.0f}% |")
        L.append("")
    for k in (k for k in w if k.startswith("txnconsume")):
        rc, ru = w[k].get("read_committed", []), w[k].get("read_uncommitted", [])
        if not rc or not ru:
            continue
        a, b = m(rc, "msgs_per_sec"), m(ru, "msgs_per_sec")
        L.append(f"| consume {k[len('txnconsume-'):]} (committed transactions) | msgs/s (median)"
                 " | runs (msgs/s) | broker CPU s per run | client CPU s per run |")
        L.append("|---|---:|---|---:|---:|")
        for name, xs, v in (("read_committed", rc, a), ("read_uncommitted", ru, b)):
            runs = ", ".join(fmt_rate(x["msgs_per_sec"]) for x in xs)
            L.append(f"| {name} | {fmt_rate(v)} | {runs} | {m(xs, 'cpu_s'):.2f}"
                     f" | {m(xs, 'client_cpu_s'):.2f} |")
        L.append(f"| read_committed / read_uncommitted | {a / b:.3f}x (ratio of medians);"
                 f" {paired(rc, ru):.3f}x (median of the pairs' ratios) | | | |")
        L.append("")
    return L


BEGIN, END = "<!-- bench:begin (generated by bench/run.sh) -->", "<!-- bench:end -->"


def write_docs(text):
    path = os.path.join(REPO, "docs", "PERFORMANCE.md")
    with open(path) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        log(f"docs/PERFORMANCE.md has no bench markers; results not written there")
        return
    a, rest = doc.split(BEGIN, 1)
    _, b = rest.split(END, 1)
    with open(path + ".tmp", "w") as f:
        f.write(a + BEGIN + "\n" + text + "\n" + END + b)
    os.replace(path + ".tmp", path)
    log(f"results written to {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pairs", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--only", default="",
                    help="comma list: machine,produce,consume,e2e,txn,resources")
    ap.add_argument("--versus", default=None,
                    help="compare with another samsa-broker binary instead of the mock")
    args = ap.parse_args()
    if args.pairs is None:
        args.pairs = 1 if args.quick else 5
    args.cold = not args.quick
    only = set(filter(None, args.only.split(",")))

    def want(x):
        return not only or x in only

    workdir = tempfile.mkdtemp(prefix="samsa-bench-")
    res = Results()
    t0 = time.monotonic()
    def section(name, fn, *a):
        log(f"== {name}")
        try:
            fn(*a)
        except Exception as e:  # noqa: BLE001 - reported, the other sections still run
            log(f"!! {name} failed: {e}")
            res.data.setdefault("failed", []).append(f"{name}: {e}")

    try:
        if want("machine"):
            section("machine limits", run_machine, args, res, workdir)
        if want("produce"):
            # Full runs last ~3 s each (10M x 100 B, 3M x 1 KB): long enough that
            # connection set-up and the first, cold megabytes are a small share.
            n100 = 2_000_000 if args.quick else 10_000_000
            n1k = 600_000 if args.quick else 3_000_000
            combos = [(100, 1, "1"), (1024, 1, "1")] if args.quick else [
                (s, p, a) for s in (100, 1024) for p in (1, 8) for a in ("1", "all")]
            for size, parts, acks in combos:
                wl = f"produce-{'100B' if size == 100 else '1KB'}-p{parts}-acks{acks}"
                section(wl, run_produce, args, res, workdir, wl, size, parts, acks,
                        n100 if size == 100 else n1k)
        if want("consume"):
            section("consume", run_consume, args, res, workdir, 240_000,
                    1_000_000 if args.quick else 5_000_000)
        if want("e2e"):
            rates = [2000] if args.quick else [1000, 2000, 10000, 50000]
            section("e2e latency", run_e2e, args, res, workdir, rates, 2.0 if args.quick else 3.0)
        if want("txn"):
            # ~3 s per run on this machine: 1 KB produce at ~1 M msgs/s; ~700
            # transactions/s whatever their size.
            section("idempotence", run_idempotence, args, res, workdir,
                    300_000 if args.quick else 3_000_000)
            section("transactional produce", run_txn_produce, args, res, workdir,
                    (1, 10, 100), 300 if args.quick else 2000)
            section("read_committed consume", run_txn_consume, args, res, workdir,
                    500_000 if args.quick else 2_000_000, 1000)
        if want("resources"):
            section("resources", run_resources, args, res, workdir, 1000, 100,
                    64 if args.quick else 256)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    res.data["seconds"] = time.monotonic() - t0
    text = report(res, args)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.data, f, indent=1)
    if not args.no_docs and not args.quick and not only and not args.versus:
        write_docs(text)
    log(f"bench done in {res.data['seconds']:.0f} s")


if __name__ == "__main__":
    main()
