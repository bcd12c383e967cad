/*
 * test_connect_jdbc.c - unit tests of the JDBC connectors' database layer (jdbc.h):
 * URL parsing, type mapping, timestamps, quoting, base64, and an SQLite round trip
 * through bound parameters, catalog queries and typed rows. (PostgreSQL is exercised
 * by tests/integration/test_connect_jdbc.py against a real server.)
 */
#include "cn.h"
#include "jdbc.h"

#include "../sm_test.h"

#include <stdlib.h>
#include <unistd.h>

static void test_urls(void)
{
    jdbc_url_t u;
    char err[512];
    CHECK(jdbc_url_parse("jdbc:sqlite:/tmp/x.db", NULL, NULL, &u, err, sizeof err) == 0);
    CHECK(u.kind == JDBC_SQLITE && strcmp(u.path, "/tmp/x.db") == 0);
    jdbc_url_free(&u);
    CHECK(jdbc_url_parse("jdbc:sqlite:", NULL, NULL, &u, err, sizeof err) != 0);

    CHECK(jdbc_url_parse("jdbc:postgresql://db.example:5433/shop?user=bob&password=a%27b", NULL, NULL,
                         &u, err, sizeof err) == 0);
    CHECK(u.kind == JDBC_POSTGRES);
    CHECK(strstr(u.conninfo, "host='db.example'") && strstr(u.conninfo, "port='5433'") &&
          strstr(u.conninfo, "dbname='shop'") && strstr(u.conninfo, "user='bob'") &&
          strstr(u.conninfo, "password='a\\'b'"));
    jdbc_url_free(&u);
    /* connection.user/password win over the URL's. */
    CHECK(jdbc_url_parse("jdbc:postgresql://h/d?user=bob", "alice", "pw", &u, err, sizeof err) == 0);
    CHECK(strstr(u.conninfo, "user='alice'") && !strstr(u.conninfo, "bob") &&
          strstr(u.conninfo, "password='pw'"));
    jdbc_url_free(&u);
    CHECK(jdbc_url_parse("jdbc:postgresql://[::1]:6000/d", NULL, NULL, &u, err, sizeof err) == 0);
    CHECK(strstr(u.conninfo, "host='::1'") && strstr(u.conninfo, "port='6000'"));
    jdbc_url_free(&u);
    CHECK(jdbc_url_parse("jdbc:postgresql:shop", NULL, NULL, &u, err, sizeof err) == 0);
    CHECK(strstr(u.conninfo, "dbname='shop'"));
    jdbc_url_free(&u);
    CHECK(jdbc_url_parse("jdbc:postgresql://h:port/d", NULL, NULL, &u, err, sizeof err) != 0);
    CHECK(strstr(err, "Invalid PostgreSQL URL"));
    CHECK(jdbc_url_parse("jdbc:mysql://h/d", NULL, NULL, &u, err, sizeof err) != 0);
    CHECK(strstr(err, "Unsupported connection.url"));
    CHECK(jdbc_url_parse(NULL, NULL, NULL, &u, err, sizeof err) != 0);
}

static void test_types(void)
{
    CHECK(jdbc_sqlite_decltype_ctype("INTEGER") == JC_INT64);
    CHECK(jdbc_sqlite_decltype_ctype("int") == JC_INT32);
    CHECK(jdbc_sqlite_decltype_ctype("SMALLINT") == JC_INT16);
    CHECK(jdbc_sqlite_decltype_ctype("VARCHAR(20)") == JC_STRING);
    CHECK(jdbc_sqlite_decltype_ctype("BLOB") == JC_BYTES);
    CHECK(jdbc_sqlite_decltype_ctype("DOUBLE") == JC_FLOAT64);
    CHECK(jdbc_sqlite_decltype_ctype("BOOLEAN") == JC_BOOLEAN);
    CHECK(jdbc_sqlite_decltype_ctype("TIMESTAMP") == JC_TIMESTAMP);
    CHECK(jdbc_sqlite_decltype_ctype("DATETIME") == JC_TIMESTAMP);
    CHECK(jdbc_sqlite_decltype_ctype("") == JC_NONE);
    CHECK(jdbc_pg_oid_ctype(23) == JC_INT32 && jdbc_pg_oid_ctype(20) == JC_INT64 &&
          jdbc_pg_oid_ctype(1114) == JC_TIMESTAMP && jdbc_pg_oid_ctype(17) == JC_BYTES &&
          jdbc_pg_oid_ctype(25) == JC_STRING && jdbc_pg_oid_ctype(16) == JC_BOOLEAN);
    CHECK(jdbc_ctype_from_schema("int64", "org.apache.kafka.connect.data.Timestamp") == JC_TIMESTAMP);
    CHECK(jdbc_ctype_from_schema("int32", NULL) == JC_INT32);
    CHECK(jdbc_ctype_from_schema("int32", "org.apache.kafka.connect.data.Date") == JC_DATE);
    CHECK(jdbc_ctype_from_schema("int32", "org.apache.kafka.connect.data.Time") == JC_TIME);
    CHECK(jdbc_ctype_from_schema("int64", "org.apache.kafka.connect.data.Date") == JC_NONE);
    CHECK(jdbc_pg_oid_ctype(1082) == JC_DATE && jdbc_pg_oid_ctype(1083) == JC_TIME);
    CHECK(jdbc_sqlite_decltype_ctype("date") == JC_DATE && jdbc_sqlite_decltype_ctype("TIME") == JC_TIME);
    CHECK(strcmp(jdbc_ctype_logical_name(JC_DATE), "org.apache.kafka.connect.data.Date") == 0);
    CHECK(jdbc_ctype_logical_name(JC_INT32) == NULL);
    CHECK(jdbc_ctype_from_schema("struct", NULL) == JC_NONE);
    CHECK(jdbc_ctype_from_schema("bytes", "org.apache.kafka.connect.data.Decimal") == JC_NONE);
    CHECK(strcmp(jdbc_ctype_schema_type(JC_TIMESTAMP), "int64") == 0);
    CHECK(strcmp(jdbc_ctype_sql(JDBC_POSTGRES, JC_FLOAT64), "DOUBLE PRECISION") == 0);
    CHECK(strcmp(jdbc_ctype_sql(JDBC_SQLITE, JC_BYTES), "BLOB") == 0);
    /* What the sink creates reads back as the same Connect type. */
    for (jdbc_ctype_t t = JC_INT8; t <= JC_TIME; t++) {
        if (t == JC_FLOAT32)
            continue; /* SQLite has one floating type */
        CHECK_EQ(jdbc_sqlite_decltype_ctype(jdbc_ctype_sql(JDBC_SQLITE, t)), t);
    }
}

static void test_timestamps_and_text(void)
{
    int64_t ns;
    CHECK(jdbc_parse_timestamp("1970-01-01 00:00:01", 19, &ns) && ns == 1000000000);
    CHECK(jdbc_parse_timestamp("2024-02-29 12:34:56.789", 23, &ns) && ns == 1709210096789000000LL);
    CHECK(jdbc_parse_timestamp("2024-02-29T12:34:56.789123Z", 27, &ns) && ns == 1709210096789123000LL);
    CHECK(jdbc_parse_timestamp("2024-02-29 14:34:56.789+02", 26, &ns) && ns == 1709210096789000000LL);
    CHECK(jdbc_parse_timestamp("2024-02-29", 10, &ns) && ns == 1709164800000000000LL);
    CHECK(!jdbc_parse_timestamp("yesterday", 9, &ns));
    CHECK(!jdbc_parse_timestamp("2024-13-01 00:00:00", 19, &ns));
    char buf[48];
    jdbc_format_timestamp(1709210096789123000LL, 6, buf, sizeof buf);
    CHECK(strcmp(buf, "2024-02-29 12:34:56.789123") == 0);
    jdbc_format_timestamp(1709210096789123000LL, 3, buf, sizeof buf);
    CHECK(strcmp(buf, "2024-02-29 12:34:56.789") == 0);

    int64_t ms;
    CHECK(jdbc_parse_time("13:45:07.25", 11, &ms) && ms == 49507250);
    CHECK(jdbc_parse_time("00:01", 5, &ms) && ms == 60000);
    CHECK(!jdbc_parse_time("25:00:00", 8, &ms) && !jdbc_parse_time("1:00", 4, &ms));
    jdbc_format_time(49507250, buf, sizeof buf);
    CHECK(strcmp(buf, "13:45:07.250") == 0);
    jdbc_format_date(19782, buf, sizeof buf);
    CHECK(strcmp(buf, "2024-02-29") == 0);
    jdbc_format_date(-1, buf, sizeof buf);
    CHECK(strcmp(buf, "1969-12-31") == 0);

    jdbc_sb_t b = {0};
    jdbc_sb_ident(&b, "we\"ird");
    CHECK(strcmp(b.s, "\"we\"\"ird\"") == 0);
    jdbc_sb_free(&b);

    char *e = jdbc_b64_encode((const unsigned char *)"\x00\xffhi", 4);
    CHECK(strcmp(e, "AP9oaQ==") == 0);
    size_t n;
    unsigned char *d = jdbc_b64_decode(e, strlen(e), &n);
    CHECK(n == 4 && memcmp(d, "\x00\xffhi", 4) == 0);
    free(d);
    free(e);
    CHECK(jdbc_b64_decode("no!", 3, &n) == NULL);

    char **names;
    size_t k = jdbc_split_list(" a, b ,,c ", &names);
    CHECK(k == 3 && strcmp(names[0], "a") == 0 && strcmp(names[1], "b") == 0 && strcmp(names[2], "c") == 0);
    jdbc_names_free(names, k);
}

static void test_sqlite_round_trip(void)
{
    char path[] = "/tmp/samsa-jdbc-unit-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char url[128], err[512];
    snprintf(url, sizeof url, "jdbc:sqlite:%s", path);
    jdbc_db_t *db = jdbc_open(url, NULL, NULL, false, err, sizeof err);
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK(jdbc_exec(db, "CREATE TABLE \"t\" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                        "ts TIMESTAMP, b BLOB, ok BOOLEAN, x DOUBLE)",
                    NULL, 0, NULL, err, sizeof err) == 0);
    jdbc_value_t ps[6] = {
        {.t = JC_INT64, .i = 7},
        {.t = JC_STRING, .s = "it's; DROP TABLE t", .len = 18},
        {.t = JC_TIMESTAMP, .i = 1709210096789000000LL},
        {.t = JC_BYTES, .s = "\x00\x01", .len = 2},
        {.t = JC_BOOLEAN, .i = 1},
        {.t = JC_NONE},
    };
    int64_t changes = 0;
    CHECK(jdbc_exec(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ps, 6, &changes, err, sizeof err) == 0);
    CHECK(changes == 1);
    jdbc_rows_t *r;
    CHECK(jdbc_query(db, "SELECT * FROM t", NULL, 0, &r, err, sizeof err) == 0);
    CHECK(jdbc_rows_next(r, err, sizeof err) == 1);
    CHECK(jdbc_rows_ncols(r) == 6 && strcmp(jdbc_rows_name(r, 1), "name") == 0);
    jdbc_value_t v;
    CHECK(jdbc_rows_get(r, 0, &v, err, sizeof err) && v.t == JC_INT64 && v.i == 7);
    CHECK(jdbc_rows_get(r, 1, &v, err, sizeof err) && v.t == JC_STRING && v.len == 18 &&
          memcmp(v.s, "it's; DROP TABLE t", 18) == 0);
    CHECK(jdbc_rows_get(r, 2, &v, err, sizeof err) && v.t == JC_TIMESTAMP && v.i == 1709210096789000000LL);
    CHECK(jdbc_rows_get(r, 3, &v, err, sizeof err) && v.t == JC_BYTES && v.len == 2);
    CHECK(jdbc_rows_get(r, 4, &v, err, sizeof err) && v.t == JC_BOOLEAN && v.i == 1);
    CHECK(jdbc_rows_get(r, 5, &v, err, sizeof err) && v.t == JC_NONE);
    CHECK(jdbc_rows_next(r, err, sizeof err) == 0);
    jdbc_rows_close(r);

    /* A malformed timestamp is an error, not a crash. */
    CHECK(jdbc_exec(db, "INSERT INTO t (id, name, ts) VALUES (8, 'x', 'not a time')", NULL, 0, NULL, err,
                    sizeof err) == 0);
    CHECK(jdbc_query(db, "SELECT ts FROM t WHERE id = 8", NULL, 0, &r, err, sizeof err) == 0);
    CHECK(jdbc_rows_next(r, err, sizeof err) == 1);
    CHECK(!jdbc_rows_get(r, 0, &v, err, sizeof err) && strstr(err, "not a timestamp"));
    jdbc_rows_close(r);

    jdbc_column_t *cols;
    size_t n;
    bool exists;
    CHECK(jdbc_table_columns(db, "t", &cols, &n, &exists, err, sizeof err) == 0 && exists && n == 6);
    if (n == 6) {
        CHECK(cols[0].pk && !cols[0].nullable && cols[0].type == JC_INT64);
        CHECK(!cols[1].nullable && cols[1].type == JC_STRING);
        CHECK(cols[2].nullable && cols[2].type == JC_TIMESTAMP);
    }
    jdbc_columns_free(cols, n);
    CHECK(jdbc_table_columns(db, "nope", &cols, &n, &exists, err, sizeof err) == 0 && !exists && n == 0);
    char **tables;
    CHECK(jdbc_list_tables(db, &tables, &n, err, sizeof err) == 0 && n == 1 && strcmp(tables[0], "t") == 0);
    jdbc_names_free(tables, n);
    CHECK(jdbc_exec(db, "SELEC nonsense", NULL, 0, NULL, err, sizeof err) != 0 && strstr(err, "SQLite"));
    jdbc_close(db);
    unlink(path);

    CHECK(jdbc_open("jdbc:sqlite:/nonexistent-dir/x.db", NULL, NULL, true, err, sizeof err) == NULL);
    CHECK(strstr(err, "Cannot open SQLite database"));
}

static void test_registered(void)
{
    cn_plugins_t *ps = cn_plugins_new(NULL);
    const samsa_connect_plugin_t *src = cn_plugins_find(ps, "JdbcSource");
    const samsa_connect_plugin_t *sink = cn_plugins_find(ps, "io.confluent.connect.jdbc.JdbcSinkConnector");
    CHECK(src && src->type == SAMSA_CONNECT_SOURCE);
    CHECK(sink && sink->type == SAMSA_CONNECT_SINK && cn_plugins_find(ps, "JdbcSinkConnector") == sink);
    cn_plugins_free(ps);
}

int main(void)
{
    RUN(test_urls);
    RUN(test_types);
    RUN(test_timestamps_and_text);
    RUN(test_sqlite_round_trip);
    RUN(test_registered);
    TEST_MAIN_END();
}
