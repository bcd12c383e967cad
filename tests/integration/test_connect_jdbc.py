"""samsa-connect's JDBC source and sink connectors (io.confluent.connect.jdbc.*) against
SQLite files and a real PostgreSQL 15 server, driven over the worker's REST API.

The module starts its own PostgreSQL (initdb + postgres in a temporary directory on a
free loopback port; as root it runs under the `postgres` account through setpriv,
since initdb refuses root) and stops it by pid. Rows are read back with psql and
Python's sqlite3.

Pipelines tested: SQLite table -> topic -> PostgreSQL table keeps rows, updates
(timestamp+incrementing source, upsert sink) and deletes (tombstones), and goes on
after a worker restart from the stored offsets without duplicates; PostgreSQL ->
SQLite with auto.create and auto.evolve; every source mode; bad input giving
validation errors or FAILED tasks with a trace; a killed PostgreSQL backend
connection reconnected by the sink.
"""

import calendar
import glob
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import free_ports, unique_topic, wait_until
from test_connect import JSON_CONV, consume_all, produce, workers  # noqa: F401 (fixture)

BROKER_CONFIG = {"num.partitions": "1"}


def _pg_bin():
    """PostgreSQL 15's server binaries (Debian bookworm's), else the newest installed."""
    if os.environ.get("SAMSA_PG_BIN"):
        return os.environ["SAMSA_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    preferred = [p for p in found if p.split("/")[4] == "15"]
    pick = (preferred or found or ["/usr/lib/postgresql/15/bin/postgres"])[-1]
    return os.path.dirname(pick)


PG_BIN = _pg_bin()

JSON_CONVERTERS = {
    "key.converter": JSON_CONV, "key.converter.schemas.enable": "true",
    "value.converter": JSON_CONV, "value.converter.schemas.enable": "true",
}


# --------------------------------------------------------------------------- PostgreSQL

class Postgres:
    """A throwaway PostgreSQL server: trust auth, superuser `samsa`, loopback only."""

    def __init__(self):
        if not os.path.exists(os.path.join(PG_BIN, "postgres")):
            pytest.fail(f"{PG_BIN}/postgres missing (apt-get install postgresql-15; make deps)")
        self.dir = tempfile.mkdtemp(prefix="samsa-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_ports(1)[0]
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.prefix = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o755)
            self.prefix = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                           "--"]
        subprocess.run(self.prefix + [f"{PG_BIN}/initdb", "-D", self.data, "-U", "samsa", "--auth=trust",
                                      "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"jdbc:postgresql://127.0.0.1:{self.port}/postgres"
        self.start()

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.prefix + [f"{PG_BIN}/postgres", "-D", self.data, "-p", str(self.port), "-k", self.dir,
                           "-h", "127.0.0.1", "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_until(self._ready, timeout_s=60, what="postgres accepting connections")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"postgres exited {self.proc.returncode}: {self.log_tail()}")
        return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "samsa", "-d",
                               "postgres", "-Atc", "SELECT 1"], capture_output=True).returncode == 0

    def sql(self, statement):
        """Run statement(s) with psql; the rows of the last as lists of strings."""
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "samsa", "-d", "postgres",
                            "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", statement],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"psql: {statement}: {r.stderr}"
        return [ln.split("\x1f") for ln in r.stdout.splitlines() if ln]

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""

    def halt(self):
        """Stop the server by pid (fast shutdown: clients are disconnected), keeping its data."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    yield p
    p.stop()


# --------------------------------------------------------------------------- helpers

def sqlite_exec(path, *statements, params=()):
    con = sqlite3.connect(path)
    try:
        for s in statements:
            con.execute(s, params) if params else con.execute(s)
        con.commit()
    finally:
        con.close()


def sqlite_rows(path, query):
    con = sqlite3.connect(path)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def source(name, url, **cfg):
    c = {"connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector", "tasks.max": "1",
         "connection.url": url, "poll.interval.ms": "300", **JSON_CONVERTERS}
    c.update(cfg)
    return {"name": name, "config": c}


def sink(name, url, topics, **cfg):
    c = {"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "1",
         "connection.url": url, "topics": topics, **JSON_CONVERTERS}
    c.update(cfg)
    return {"name": name, "config": c}


def create(w, spec):
    st, doc = w.req("POST", "/connectors", spec)
    assert st == 201, doc
    return doc


def write_connector_file(path, spec):
    with open(path, "w") as f:
        json.dump(spec, f)
    return str(path)


def id_key(i):
    """A JsonConverter key envelope {"id": i}, as the source's key.column.name=id writes it."""
    return json.dumps({"schema": {"type": "struct", "fields": [{"type": "int64", "optional": False,
                                                                 "field": "id"}], "optional": False},
                       "payload": {"id": i}}).encode()


NOW_MS_SQL = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


# --------------------------------------------------------------------------- tests

def test_plugins_and_validation(workers, pg, tmp_path):
    w = workers().start()
    classes = {p["class"]: p["type"] for p in w.ok("GET", "/connector-plugins")}
    assert classes["io.confluent.connect.jdbc.JdbcSourceConnector"] == "source"
    assert classes["io.confluent.connect.jdbc.JdbcSinkConnector"] == "sink"
    names = {d["name"] for d in w.ok("GET", "/connector-plugins/JdbcSource/config")}
    assert {"connection.url", "mode", "incrementing.column.name", "timestamp.column.name",
            "table.whitelist", "table.include.list", "query", "topic.prefix", "poll.interval.ms",
            "batch.max.rows", "timestamp.delay.interval.ms"} <= names
    names = {d["name"] for d in w.ok("GET", "/connector-plugins/JdbcSinkConnector/config")}
    assert {"connection.url", "insert.mode", "pk.mode", "pk.fields", "auto.create", "auto.evolve",
            "batch.size", "delete.enabled", "fields.whitelist", "table.name.format"} <= names

    db = str(tmp_path / "v.db")
    sqlite_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")

    def errors(plugin, cfg):
        v = w.ok("PUT", f"/connector-plugins/{plugin}/config/validate", cfg)
        return {c["value"]["name"]: c["value"]["errors"] for c in v["configs"] if c["value"]["errors"]}

    good = {"connector.class": "JdbcSource", "name": "v", "connection.url": f"jdbc:sqlite:{db}",
            "mode": "incrementing", "incrementing.column.name": "id", "table.whitelist": "t",
            "topic.prefix": "p-"}
    assert errors("JdbcSource", good) == {}
    e = errors("JdbcSource", {**good, "table.whitelist": "t,nosuch", "incrementing.column.name": "nope"})
    assert "Table nosuch does not exist" in e["table.whitelist"][0]
    assert "has no column nope" in e["incrementing.column.name"][0]
    e = errors("JdbcSource", {**good, "key.column.name": "id,nokey"})
    assert list(e) == ["key.column.name"] and "has no column nokey" in e["key.column.name"][0]
    e = errors("JdbcSource", {**good, "table.exclude.list": "u"})
    assert "include list and an exclude list" in e["table.exclude.list"][0]
    e = errors("JdbcSource", {**good, "mode": "sometimes"})
    assert "must be one of bulk" in e["mode"][0]
    e = errors("JdbcSource", {**good, "mode": "timestamp"})
    assert "timestamp.column.name" in e
    e = errors("JdbcSource", {**good, "mode": "timestamp", "timestamp.column.name": "v,nots"})
    assert list(e) == ["timestamp.column.name"] and "has no column nots" in e["timestamp.column.name"][0]
    e = errors("JdbcSource", {**good, "connection.url": "jdbc:oracle:thin:@x"})
    assert "Unsupported connection.url" in e["connection.url"][0]
    e = errors("JdbcSource", {**good, "connection.url": f"jdbc:sqlite:{tmp_path}/missing.db"})
    assert "Cannot open SQLite database" in e["connection.url"][0]
    e = errors("JdbcSource", {**good, "connection.url": pg.url.replace("/postgres", "/nosuchdb"),
                              "connection.user": "samsa"})
    assert 'database "nosuchdb" does not exist' in e["connection.url"][0]
    e = errors("JdbcSource", {**good, "connection.url": pg.url, "connection.user": "nobody"})
    assert 'role "nobody" does not exist' in e["connection.url"][0]
    # A server that cannot be reached now is no config error: the tasks retry connecting.
    bad_port = free_ports(1)[0]
    e = errors("JdbcSource", {**good, "connection.url": f"jdbc:postgresql://127.0.0.1:{bad_port}/postgres"})
    assert "connection.url" not in e
    assert "the database cannot be checked now" in w.log_text()
    e = errors("JdbcSource", {**good, "connection.url": pg.url, "connection.user": "samsa"})
    assert "Table t does not exist" in e["table.whitelist"][0]

    sink_cfg = {"connector.class": "JdbcSink", "name": "s", "connection.url": pg.url, "topics": "x",
                "connection.user": "samsa"}
    assert errors("JdbcSink", sink_cfg) == {}
    lite = {**sink_cfg, "connection.url": f"jdbc:sqlite:{tmp_path}/new.db"}
    assert errors("JdbcSink", lite) == {}
    assert not os.path.exists(tmp_path / "new.db"), "validation created the database"
    e = errors("JdbcSink", {**lite, "connection.url": f"jdbc:sqlite:{tmp_path}/no/such/dir.db"})
    assert "Cannot create SQLite database" in e["connection.url"][0]
    e = errors("JdbcSink", {**sink_cfg, "insert.mode": "upsert"})
    assert "pk.mode" in e
    e = errors("JdbcSink", {**sink_cfg, "delete.enabled": "true", "pk.mode": "record_value"})
    assert "record_key" in e["delete.enabled"][0]
    e = errors("JdbcSink", {**sink_cfg, "pk.mode": "kafka", "pk.fields": "a,b"})
    assert "exactly 3" in e["pk.fields"][0]

    st, doc = w.req("POST", "/connectors", source("bad", "jdbc:nope", mode="bulk", **{"topic.prefix": "x"}))
    assert st == 400 and "Unsupported connection.url" in doc["message"], doc


def test_sqlite_to_postgres_rows_updates_deletes_and_restart(workers, module_broker, pg, tmp_path):
    db = str(tmp_path / "shop.db")
    sqlite_exec(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price DOUBLE, "
                    "qty INT, updated TIMESTAMP NOT NULL)")
    for i in range(1, 51):
        sqlite_exec(db, f"INSERT INTO items VALUES (?, ?, ?, ?, {NOW_MS_SQL})",
                    params=(i, f"item {i}", i * 1.5, i * 10))
    prefix = unique_topic("shop") + "-"
    topic = prefix + "items"
    table = "items_" + topic.split("-")[1]
    src = source("shop-src", f"jdbc:sqlite:{db}", mode="timestamp+incrementing",
                 **{"incrementing.column.name": "id", "timestamp.column.name": "updated",
                    "table.whitelist": "items", "topic.prefix": prefix, "batch.max.rows": "7",
                    "key.column.name": "id"})
    snk = sink("shop-sink", pg.url, topic,
               **{"connection.user": "samsa", "insert.mode": "upsert", "pk.mode": "record_key",
                  "pk.fields": "id", "auto.create": "true", "delete.enabled": "true",
                  "table.name.format": table})
    files = [write_connector_file(tmp_path / "src.json", src), write_connector_file(tmp_path / "sink.json", snk)]
    w = workers()
    w.start(*files)
    w.wait_state("shop-src", "RUNNING", ["RUNNING"])
    w.wait_state("shop-sink", "RUNNING", ["RUNNING"])

    def pg_rows():
        try:
            return pg.sql(f'SELECT id, name, price, qty, (extract(epoch from updated) * 1000)::bigint '
                          f'FROM "{table}" ORDER BY id')
        except AssertionError:  # not created yet
            return []

    def sqlite_expected():
        out = []
        for i, name, price, qty, upd in sqlite_rows(db, "SELECT id, name, price, qty, updated FROM items "
                                                        "ORDER BY id"):
            ms = calendar.timegm(time.strptime(upd[:19], "%Y-%m-%d %H:%M:%S")) * 1000 + int(upd[20:23])
            out.append([str(i), name, repr(price).rstrip("0").rstrip(".") if price % 1 else str(int(price)),
                        str(qty), str(ms)])
        return out

    wait_until(lambda: len(pg_rows()) == 50, timeout_s=60, what="50 rows in PostgreSQL")
    assert pg_rows() == sqlite_expected()
    cols = pg.sql(f"SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                  f"WHERE table_name = '{table}' ORDER BY ordinal_position")
    assert cols == [["id", "bigint", "NO"], ["name", "text", "NO"], ["price", "double precision", "YES"],
                    ["qty", "integer", "YES"], ["updated", "timestamp without time zone", "NO"]]

    # Updates: new names and timestamps on five rows flow through as upserts.
    time.sleep(0.01)
    for i in (2, 4, 6, 8, 10):
        sqlite_exec(db, f"UPDATE items SET name = ?, updated = {NOW_MS_SQL} WHERE id = ?",
                    params=(f"renamed {i}", i))
    wait_until(lambda: pg_rows() == sqlite_expected(), timeout_s=30, what="updates in PostgreSQL")

    # Deletes: tombstones keyed like the source's records.
    produce(module_broker.bootstrap, topic, [(id_key(i), None, None) for i in (3, 5, 7)])
    wait_until(lambda: [r[0] for r in pg_rows()][:6] == ["1", "2", "4", "6", "8", "9"], timeout_s=30,
               what="rows 3, 5, 7 deleted")
    assert len(pg_rows()) == 47

    offsets = wait_until(lambda: w.ok("GET", "/connectors/shop-src/offsets")["offsets"], what="offsets")
    assert len(offsets) == 1 and offsets[0]["partition"] == {"table": "items"}
    assert set(offsets[0]["offset"]) == {"incrementing", "timestamp", "timestamp_nanos"}

    # Restart: the source goes on from its stored offset; nothing is sent twice.
    records_before = len(consume_all(module_broker.bootstrap, topic, expect=50 + 5 + 3))
    assert records_before == 58
    assert w.stop() == 0
    for i in range(51, 61):
        sqlite_exec(db, f"INSERT INTO items VALUES (?, ?, ?, ?, {NOW_MS_SQL})", params=(i, f"new {i}", 1.25, i))
    sqlite_exec(db, f"UPDATE items SET qty = 999, updated = {NOW_MS_SQL} WHERE id = 1")
    w.start(*files)
    expected = [r for r in sqlite_expected() if r[0] not in ("3", "5", "7")]
    wait_until(lambda: pg_rows() == expected, timeout_s=60, what="rows after the restart")
    msgs = consume_all(module_broker.bootstrap, topic, expect=58 + 11)
    assert len(msgs) == 58 + 11, "the restarted source re-sent rows"
    values = [json.loads(m.value()) for m in msgs if m.value() is not None]
    ids = [v["payload"]["id"] for v in values]
    assert sorted(ids) == sorted(list(range(1, 51)) + [2, 4, 6, 8, 10] + list(range(51, 61)) + [1])
    schema = values[0]["schema"]
    assert schema["type"] == "struct" and schema["name"] == "items"
    fields = {f["field"]: f for f in schema["fields"]}
    assert fields["id"]["type"] == "int64" and fields["qty"]["type"] == "int32"
    assert fields["price"]["type"] == "float64" and fields["price"]["optional"] is True
    assert fields["name"]["optional"] is False
    assert fields["updated"]["name"] == "org.apache.kafka.connect.data.Timestamp"
    assert json.loads(msgs[0].key())["payload"] == {"id": 1}


def test_postgres_to_sqlite_with_auto_create_and_evolve(workers, module_broker, pg, tmp_path):
    table = "orders_" + unique_topic("x").split("-")[1]
    pg.sql(f'CREATE TABLE "{table}" (id SERIAL PRIMARY KEY, customer TEXT NOT NULL, paid BOOLEAN, '
           f'total DOUBLE PRECISION, small SMALLINT, big BIGINT, blob BYTEA, '
           f'created TIMESTAMP DEFAULT now(), day DATE, at TIME)')
    pg.sql(f"INSERT INTO \"{table}\" (customer, paid, total, small, big, blob, created, day, at) "
           f"SELECT 'c' || g, g % 2 = 0, g * 0.5, g, g * 10000000000, decode('00ff' || lpad(to_hex(g), 2, '0'), 'hex'), "
           f"TIMESTAMP '2024-05-01 10:00:00.123456' + g * interval '1 second', "
           f"DATE '1969-12-30' + g, TIME '23:59:58.5' + g * interval '1 second' FROM generate_series(1, 30) g")
    topic = "pg-" + table
    out = str(tmp_path / "copy.db")
    w = workers().start()
    create(w, source("pg-src", pg.url, mode="incrementing",
                     **{"connection.user": "samsa", "incrementing.column.name": "id",
                        "table.include.list": table, "topic.prefix": "pg-", "batch.max.rows": "8"}))
    create(w, sink("lite-sink", f"jdbc:sqlite:{out}", topic,
                   **{"pk.mode": "record_value", "pk.fields": "id", "insert.mode": "insert",
                      "auto.create": "true", "auto.evolve": "true", "table.name.format": "copy_${topic}"}))
    dest = f"copy_{topic}"

    def rows():
        try:
            return sqlite_rows(out, f'SELECT * FROM "{dest}" ORDER BY id')
        except sqlite3.OperationalError:
            return []

    wait_until(lambda: len(rows()) == 30, timeout_s=60, what="30 rows in SQLite")
    r = rows()
    assert r[0] == (1, "c1", 0, 0.5, 1, 10000000000, b"\x00\xff\x01", "2024-05-01 10:00:01.123",
                    "1969-12-31", "23:59:59.500")
    assert r[1][8:] == ("1970-01-01", "00:00:00.500")
    assert r[29][:3] == (30, "c30", 1)
    decl = {c[1]: (c[2], c[3], c[5]) for c in sqlite_rows(out, f'PRAGMA table_info("{dest}")')}
    assert decl == {"id": ("INT", 1, 1), "customer": ("TEXT", 1, 0), "paid": ("BOOLEAN", 0, 0),
                    "total": ("DOUBLE", 0, 0), "small": ("SMALLINT", 0, 0), "big": ("BIGINT", 0, 0),
                    "blob": ("BLOB", 0, 0), "created": ("TIMESTAMP", 0, 0), "day": ("DATE", 0, 0),
                    "at": ("TIME", 0, 0)}
    fields = {f["field"]: f for f in json.loads(consume_all(module_broker.bootstrap, topic, expect=30)[0].value())
              ["schema"]["fields"]}
    assert fields["day"]["type"] == "int32" and fields["day"]["name"] == "org.apache.kafka.connect.data.Date"
    assert fields["at"]["type"] == "int32" and fields["at"]["name"] == "org.apache.kafka.connect.data.Time"

    # auto.evolve: a new nullable column in the source table appears in the copy.
    pg.sql(f'ALTER TABLE "{table}" ADD COLUMN note TEXT')
    pg.sql(f"INSERT INTO \"{table}\" (customer, note) VALUES ('late', 'hello'), ('later', NULL)")
    wait_until(lambda: len(rows()) == 32, timeout_s=60, what="2 more rows after ALTER TABLE")
    r = rows()
    assert r[30][1] == "late" and r[30][-1] == "hello" and r[31][-1] is None
    assert "note" in {c[1] for c in sqlite_rows(out, f'PRAGMA table_info("{dest}")')}
    assert w.status("lite-sink")["tasks"][0]["state"] == "RUNNING"


def test_source_modes_query_and_task_split(workers, module_broker, pg, tmp_path):
    db = str(tmp_path / "modes.db")
    sqlite_exec(db, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT, ts DATETIME)",
                "CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT, ts DATETIME)")
    for t in ("a", "b"):
        for i in range(1, 6):
            sqlite_exec(db, f"INSERT INTO {t} VALUES (?, ?, {NOW_MS_SQL})", params=(i, f"{t}{i}"))
    url = f"jdbc:sqlite:{db}"
    p = unique_topic("m")
    w = workers().start()
    create(w, source("bulk", url, mode="bulk", **{"table.whitelist": "a", "topic.prefix": p + "-bulk-",
                                                  "poll.interval.ms": "500"}))
    create(w, source("inc", url, mode="incrementing", **{"incrementing.column.name": "id",
                                                         "topic.prefix": p + "-inc-", "tasks.max": "2"}))
    create(w, source("ts", url, mode="timestamp", **{"timestamp.column.name": "ts",
                                                     "table.whitelist": "b", "topic.prefix": p + "-ts-"}))
    create(w, source("q", url, mode="incrementing",
                     **{"incrementing.column.name": "id", "topic.prefix": p + "-query",
                        "query": "SELECT a.id, a.v || '/' || b.v AS both_v FROM a JOIN b USING (id)"}))
    bs = module_broker.bootstrap
    # bulk: the whole table again at every poll.
    bulk = consume_all(bs, p + "-bulk-a", expect=15, timeout_s=60)
    assert [json.loads(m.value())["payload"]["id"] for m in bulk[:10]] == [1, 2, 3, 4, 5] * 2
    assert w.ok("GET", "/connectors/bulk/offsets")["offsets"] == []
    # incrementing over every table, split across two tasks.
    tasks = w.ok("GET", "/connectors/inc/tasks")
    assert sorted(t["config"]["tables"] for t in tasks) == ["a", "b"]
    w.wait_state("inc", "RUNNING", ["RUNNING", "RUNNING"])
    for t in ("a", "b"):
        assert [json.loads(m.value())["payload"]["v"] for m in consume_all(bs, f"{p}-inc-{t}", expect=5)] == \
            [f"{t}{i}" for i in range(1, 6)]
    # timestamp: an updated row comes again.
    ts_msgs = consume_all(bs, p + "-ts-b", expect=5)
    assert len(ts_msgs) == 5
    time.sleep(0.01)
    sqlite_exec(db, f"UPDATE b SET v = 'b3 again', ts = {NOW_MS_SQL} WHERE id = 3")
    ts_msgs = consume_all(bs, p + "-ts-b", expect=6)
    assert json.loads(ts_msgs[5].value())["payload"]["v"] == "b3 again"
    off = wait_until(lambda: w.ok("GET", "/connectors/ts/offsets")["offsets"], what="ts offsets")[0]
    assert off["partition"] == {"table": "b"} and set(off["offset"]) == {"timestamp", "timestamp_nanos"}
    # query: partition {"query": ...}, topic = the prefix.
    q = consume_all(bs, p + "-query", expect=5)
    assert [json.loads(m.value())["payload"]["both_v"] for m in q] == [f"a{i}/b{i}" for i in range(1, 6)]
    off = wait_until(lambda: [o for o in w.ok("GET", "/connectors/q/offsets")["offsets"]
                              if o["offset"] == {"incrementing": 5}], what="the query's stored offset")[0]
    assert off["partition"]["query"].startswith("SELECT a.id")
    # table.exclude.list when every table is copied; timestamp.initial=-1 skips existing rows.
    create(w, source("ex", url, mode="timestamp", **{"timestamp.column.name": "ts", "tasks.max": "3",
                                                     "table.exclude.list": "a", "timestamp.initial": "-1",
                                                     "topic.prefix": p + "-ex-"}))
    assert [t["config"]["tables"] for t in w.ok("GET", "/connectors/ex/tasks")] == ["b"]
    w.wait_state("ex", "RUNNING", ["RUNNING"])
    time.sleep(1)
    sqlite_exec(db, f"UPDATE b SET v = 'b1 new', ts = {NOW_MS_SQL} WHERE id = 1")
    ex = consume_all(bs, p + "-ex-b", expect=1)
    assert [json.loads(m.value())["payload"]["v"] for m in ex] == ["b1 new"]

    # timestamp.column.name as a list: the first non-null column (COALESCE) counts.
    sqlite_exec(db, "CREATE TABLE c (id INTEGER PRIMARY KEY, created DATETIME NOT NULL, modified DATETIME)",
                f"INSERT INTO c VALUES (1, {NOW_MS_SQL}, NULL)",
                f"INSERT INTO c VALUES (2, '2001-01-01 00:00:00', {NOW_MS_SQL})")
    create(w, source("co", url, mode="timestamp+incrementing",
                     **{"timestamp.column.name": "modified,created", "incrementing.column.name": "id",
                        "table.whitelist": "c", "topic.prefix": p + "-co-"}))
    co = consume_all(bs, p + "-co-c", expect=2)
    assert sorted(json.loads(m.value())["payload"]["id"] for m in co) == [1, 2]
    time.sleep(0.01)
    sqlite_exec(db, f"UPDATE c SET modified = {NOW_MS_SQL} WHERE id = 1")
    co = consume_all(bs, p + "-co-c", expect=3)
    assert json.loads(co[2].value())["payload"]["id"] == 1
    off = wait_until(lambda: [o["offset"] for o in w.ok("GET", "/connectors/co/offsets")["offsets"]
                              if o["offset"]["incrementing"] == 1], what="the stored offset of the update")
    assert off[0]["timestamp"] > 1700000000000

    sqlite_exec(db, "INSERT INTO a VALUES (6, 'a6', NULL)", "INSERT INTO b VALUES (6, 'b6', NULL)")
    assert len(consume_all(bs, f"{p}-inc-a", expect=6)) == 6
    assert json.loads(consume_all(bs, p + "-query", expect=6)[5].value())["payload"]["both_v"] == "a6/b6"


def test_bad_input_fails_tasks_with_a_trace(workers, module_broker, pg, tmp_path):
    w = workers().start()
    bs = module_broker.bootstrap
    # Missing table without auto.create.
    t1 = unique_topic("nomissing")
    create(w, sink("no-create", pg.url, t1, **{"connection.user": "samsa"}))
    produce(bs, t1, [(None, json.dumps({"schema": {"type": "struct", "fields": [
        {"field": "a", "type": "int32", "optional": False}], "optional": False}, "payload": {"a": 1}}).encode(),
        None)])
    s = w.wait_state("no-create", "RUNNING", ["FAILED"], timeout_s=60)
    assert "missing and auto-creation is disabled" in s["tasks"][0]["trace"]
    # A value that is not a struct.
    t2 = unique_topic("notstruct")
    create(w, sink("not-struct", pg.url, t2, **{"connection.user": "samsa", "auto.create": "true"}))
    produce(bs, t2, [(None, json.dumps({"schema": {"type": "string", "optional": False},
                                        "payload": "hello"}).encode(), None)])
    s = w.wait_state("not-struct", "RUNNING", ["FAILED"], timeout_s=60)
    assert "needs record values that are structs" in s["tasks"][0]["trace"]
    # A field whose value does not match its schema type.
    t3 = unique_topic("wrongtype")
    create(w, sink("wrong-type", pg.url, t3, **{"connection.user": "samsa", "auto.create": "true"}))
    produce(bs, t3, [(None, json.dumps({"schema": {"type": "struct", "fields": [
        {"field": "n", "type": "int64", "optional": False}], "optional": False},
        "payload": {"n": "not a number"}}).encode(), None)])
    s = w.wait_state("wrong-type", "RUNNING", ["FAILED"], timeout_s=60)
    assert "does not match its schema type int64" in s["tasks"][0]["trace"]
    # A source table dropped under a running task.
    db = str(tmp_path / "drop.db")
    sqlite_exec(db, "CREATE TABLE gone (id INTEGER PRIMARY KEY)", "INSERT INTO gone VALUES (1)")
    create(w, source("dropped", f"jdbc:sqlite:{db}", mode="incrementing",
                     **{"incrementing.column.name": "id", "table.whitelist": "gone",
                        "topic.prefix": unique_topic("g") + "-"}))
    w.wait_state("dropped", "RUNNING", ["RUNNING"])
    sqlite_exec(db, "DROP TABLE gone")
    s = w.wait_state("dropped", "RUNNING", ["FAILED"], timeout_s=30)
    assert "Table gone does not exist" in s["tasks"][0]["trace"]
    # The worker is still fine.
    assert w.ok("GET", "/health")["status"] == "healthy"


def test_sink_reconnects_after_the_connection_is_killed(workers, module_broker, pg, tmp_path):
    topic = unique_topic("reconn")
    table = topic.replace("-", "_")
    w = workers().start()
    create(w, sink("reconn", pg.url, topic,
                   **{"connection.user": "samsa", "auto.create": "true", "pk.mode": "kafka",
                      "insert.mode": "upsert", "table.name.format": table, "retry.backoff.ms": "200",
                      "connection.backoff.ms": "200"}))
    schema = {"type": "struct", "optional": False, "fields": [
        {"field": "n", "type": "int32", "optional": False},
        {"field": "d", "type": "int32", "optional": True, "name": "org.apache.kafka.connect.data.Date"},
        {"field": "tm", "type": "int32", "optional": True, "name": "org.apache.kafka.connect.data.Time"}]}

    def send(rng):
        produce(module_broker.bootstrap, topic,
                [(None, json.dumps({"schema": schema, "payload": {"n": i, "d": 19782 + i, "tm": 1000 * i + 5}}).encode(),
                  None) for i in rng])

    def count():
        try:
            return int(pg.sql(f'SELECT count(*) FROM "{table}"')[0][0])
        except AssertionError:
            return 0

    send(range(10))
    wait_until(lambda: count() == 10, timeout_s=60, what="10 rows")
    killed = pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = 'samsa' AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
    assert killed, "no sink connection to kill"
    send(range(10, 20))
    wait_until(lambda: count() == 20, timeout_s=60, what="20 rows after the reconnect")
    assert w.status("reconn")["tasks"][0]["state"] == "RUNNING"
    assert pg.sql(f'SELECT "__connect_topic", min("__connect_offset"), max("__connect_offset") '
                  f'FROM "{table}" GROUP BY 1') == [[topic, "0", "19"]]
    assert pg.sql(f'SELECT d, tm, pg_typeof(d), pg_typeof(tm) FROM "{table}" WHERE n = 1') == \
        [["2024-03-01", "00:00:01.005", "date", "time without time zone"]]
    assert "reconnecting and retrying" in w.log_text()


def test_sink_schemaless_whitelist_and_update_mode(workers, module_broker, pg, tmp_path):
    out = str(tmp_path / "people.db")
    t_in, t_upd = unique_topic("people"), unique_topic("people-upd")
    w = workers().start()
    schemaless = {"value.converter.schemas.enable": "false",
                  "key.converter": "org.apache.kafka.connect.storage.StringConverter"}
    create(w, sink("people", f"jdbc:sqlite:{out}", t_in,
                   **{**schemaless, "pk.mode": "record_value", "pk.fields": "id", "insert.mode": "upsert",
                      "auto.create": "true", "fields.whitelist": "name,tags,score,active",
                      "table.name.format": "people"}))
    produce(module_broker.bootstrap, t_in, [
        (b"k", json.dumps({"id": i, "name": f"p{i}", "secret": "x", "tags": ["a", i], "score": i / 4,
                           "active": i % 2 == 0}).encode(), None) for i in range(1, 6)])
    rows = lambda: sqlite_rows(out, "SELECT * FROM people ORDER BY id")  # noqa: E731
    wait_until(lambda: len(rows()) == 5, timeout_s=60, what="5 schemaless rows")
    assert [c[1:3] for c in sqlite_rows(out, "PRAGMA table_info(people)")] == [
        ("id", "BIGINT"), ("name", "TEXT"), ("tags", "TEXT"), ("score", "DOUBLE"), ("active", "BOOLEAN")]
    assert rows()[1] == (2, "p2", '["a",2]', 0.5, 1)

    # insert.mode=update: existing rows change, unknown keys change nothing.
    create(w, sink("people-upd", f"jdbc:sqlite:{out}", t_upd,
                   **{**schemaless, "pk.mode": "record_value", "pk.fields": "id", "insert.mode": "update",
                      "fields.whitelist": "name", "table.name.format": "people"}))
    produce(module_broker.bootstrap, t_upd, [(None, json.dumps({"id": i, "name": f"P{i}", "score": 99}).encode(),
                                              None) for i in (2, 3, 42)])
    wait_until(lambda: [r[1] for r in rows()] == ["p1", "P2", "P3", "p4", "p5"], timeout_s=60,
               what="updated names")
    assert [r[3] for r in rows()] == [0.25, 0.5, 0.75, 1.0, 1.25]  # score not in fields.whitelist
    assert w.status("people-upd")["tasks"][0]["state"] == "RUNNING"


def test_source_reconnects_after_the_connection_is_killed(workers, module_broker, pg, tmp_path):
    table = "ev_" + unique_topic("x").split("-")[1]
    pg.sql(f'CREATE TABLE "{table}" (id BIGSERIAL PRIMARY KEY, v TEXT)')
    pg.sql(f"INSERT INTO \"{table}\" (v) SELECT 'v' || g FROM generate_series(1, 5) g")
    w = workers().start()
    create(w, source("ev", pg.url, mode="incrementing",
                     **{"connection.user": "samsa", "incrementing.column.name": "id",
                        "table.whitelist": table, "topic.prefix": "", "connection.backoff.ms": "200"}))
    assert len(consume_all(module_broker.bootstrap, table, expect=5)) == 5
    killed = pg.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = 'samsa' AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
    assert killed, "no source connection to kill"
    pg.sql(f"INSERT INTO \"{table}\" (v) SELECT 'w' || g FROM generate_series(1, 5) g")
    msgs = consume_all(module_broker.bootstrap, table, expect=10)
    assert [json.loads(m.value())["payload"]["v"] for m in msgs] == \
        [f"v{i}" for i in range(1, 6)] + [f"w{i}" for i in range(1, 6)]
    assert w.status("ev")["tasks"][0]["state"] == "RUNNING"
    assert "database connection lost" in w.log_text()


def test_postgres_restarts_under_a_running_sink(workers, module_broker, tmp_path):
    """A server going away: the sink's put retries (max.retries, retry.backoff.ms) until it is
    back; a task restarted while it is down waits for it (connection.attempts)."""
    own = Postgres()
    try:
        topic = unique_topic("pgdown")
        table = topic.replace("-", "_")
        w = workers().start()
        create(w, sink("pgdown", own.url, topic,
                       **{"connection.user": "samsa", "auto.create": "true", "pk.mode": "kafka",
                          "insert.mode": "upsert", "table.name.format": table, "max.retries": "100",
                          "retry.backoff.ms": "200", "connection.attempts": "100",
                          "connection.backoff.ms": "200"}))
        schema = {"type": "struct", "fields": [{"field": "n", "type": "int32", "optional": False}],
                  "optional": False}

        def send(rng):
            produce(module_broker.bootstrap, topic,
                    [(None, json.dumps({"schema": schema, "payload": {"n": i}}).encode(), None) for i in rng])

        def count():
            try:
                return int(own.sql(f'SELECT count(*) FROM "{table}"')[0][0])
            except AssertionError:
                return -1

        send(range(5))
        wait_until(lambda: count() == 5, timeout_s=60, what="5 rows")
        own.halt()
        send(range(5, 10))
        wait_until(lambda: "reconnecting and retrying" in w.log_text(), timeout_s=30, what="a retried put")
        own.start()
        wait_until(lambda: count() == 10, timeout_s=60, what="10 rows once the server is back")
        assert w.status("pgdown")["tasks"][0]["state"] == "RUNNING"

        own.halt()
        w.ok("POST", "/connectors/pgdown/restart?includeTasks=true", status=202)
        wait_until(lambda: "PostgreSQL connection failed" in w.log_text() and "attempt" in w.log_text(),
                   timeout_s=30, what="the restarted task retrying its connection")
        send(range(10, 15))
        own.start()
        wait_until(lambda: count() == 15, timeout_s=60, what="15 rows after the task's start retries")
        assert w.status("pgdown")["tasks"][0]["state"] == "RUNNING"
    finally:
        own.stop()


def test_pipeline_survives_kill9_with_upserts(workers, module_broker, pg, tmp_path):
    """kill -9 in the middle of a copy: records since the last stored offsets are sent and
    written again, and the upsert sink makes the table end exactly like the source."""
    db = str(tmp_path / "big.db")
    sqlite_exec(db, "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")

    def writer():  # rows keep arriving while the worker is killed and restarted
        con = sqlite3.connect(db, timeout=30)
        for start in range(1, 5001, 50):
            con.executemany("INSERT INTO big VALUES (?, ?)", [(i, f"value {i}") for i in range(start, start + 50)])
            con.commit()
            time.sleep(0.05)
        con.close()
    prefix = unique_topic("big") + "-"
    table = prefix.replace("-", "_") + "copy"
    files = [write_connector_file(tmp_path / "src.json", source(
                 "big-src", f"jdbc:sqlite:{db}", mode="incrementing",
                 **{"incrementing.column.name": "id", "table.whitelist": "big", "topic.prefix": prefix,
                    "batch.max.rows": "50", "poll.interval.ms": "100"})),
             write_connector_file(tmp_path / "sink.json", sink(
                 "big-sink", pg.url, prefix + "big",
                 **{"connection.user": "samsa", "insert.mode": "upsert", "pk.mode": "record_value",
                    "pk.fields": "id", "auto.create": "true", "table.name.format": table,
                    "batch.size": "100"}))]
    w = workers({"offset.flush.interval.ms": "300"})
    w.start(*files)
    t = threading.Thread(target=writer)
    t.start()

    def count():
        try:
            return int(pg.sql(f'SELECT count(*) FROM "{table}"')[0][0])
        except AssertionError:
            return 0

    try:
        wait_until(lambda: count() >= 1000, timeout_s=60, what="a first part copied")
        w.kill9()
        assert t.is_alive(), "the writer finished before the kill: the test proves nothing"
        w.start(*files)
    finally:
        t.join()
    wait_until(lambda: count() == 5000, timeout_s=120, what="all 5000 rows after kill -9")
    assert pg.sql(f'SELECT count(*), min(id), max(id), count(DISTINCT v) FROM "{table}" '
                  f"WHERE v = 'value ' || id") == [["5000", "1", "5000", "5000"]]
    assert len(consume_all(module_broker.bootstrap, prefix + "big", expect=5000)) >= 5000
