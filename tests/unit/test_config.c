/*
 * test_config.c - broker config loading (properties syntax, overrides,
 * defaults, validation, listeners, voters, retention precedence) and topic
 * config validation/resolution.
 */
#include "config.h"
#include "sm_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_path[256];

static const char *write_tmp(const char *text)
{
    snprintf(g_path, sizeof g_path, "/tmp/samsa-test-config-%d.properties", (int)getpid());
    FILE *f = fopen(g_path, "w");
    fputs(text, f);
    fclose(f);
    return g_path;
}

static sm_err_t load_text(const char *text, char **ov, int nov, sm_config_t *c, char *err)
{
    return sm_config_load(write_tmp(text), ov, nov, c, err, 512);
}

static void test_defaults(void)
{
    sm_config_t c;
    char err[512];
    CHECK_EQ(sm_config_load(NULL, NULL, 0, &c, err, sizeof err), SM_OK);
    CHECK_EQ(c.node_id, 1);
    CHECK(c.role_broker && c.role_controller);
    CHECK_EQ(c.num_partitions, 1);
    CHECK_EQ(c.default_replication_factor, 1);
    CHECK(c.auto_create_topics_enable);
    CHECK_EQ(c.message_max_bytes, 1048588);
    CHECK_EQ(c.socket_request_max_bytes, 104857600);
    CHECK_EQ(c.log_segment_bytes, 1073741824);
    CHECK_EQ(c.log_retention_ms, 168LL * 3600000);
    CHECK_EQ(c.log_roll_ms, 168LL * 3600000);
    CHECK_EQ(c.log_retention_bytes, -1);
    CHECK_EQ(c.log_flush_interval_messages, INT64_MAX);
    CHECK_EQ(c.log_flush_interval_ms, INT64_MAX);
    CHECK_EQ(c.offsets_topic_num_partitions, 50);
    CHECK_EQ(c.offsets_retention_minutes, 10080);
    CHECK_EQ(c.group_initial_rebalance_delay_ms, 3000);
    CHECK_EQ(c.group_min_session_timeout_ms, 6000);
    CHECK_EQ(c.group_max_session_timeout_ms, 1800000);
    CHECK_EQ(c.offset_metadata_max_bytes, 4096);
    CHECK_EQ(c.nlog_dirs, 1);
    CHECK(c.nlog_dirs == 1 && strcmp(c.log_dirs[0], "/tmp/kraft-combined-logs") == 0);
    CHECK_EQ(c.nlisteners, 2);
    CHECK_EQ(c.nadvertised, 1);
    CHECK(c.nadvertised == 1 && strcmp(c.advertised[0].name, "PLAINTEXT") == 0);
    CHECK(c.nadvertised == 1 && c.advertised[0].port == 9092 && c.advertised[0].host[0]);
    CHECK_EQ(c.nvoters, 1);
    CHECK(c.nvoters == 1 && c.voters[0].id == 1 && c.voters[0].port == 9093);
    CHECK(c.inter_broker_listener_name && strcmp(c.inter_broker_listener_name, "PLAINTEXT") == 0);
    sm_config_source_t src;
    const char *v = sm_config_get(&c, "num.partitions", &src);
    CHECK(v && strcmp(v, "1") == 0);
    CHECK_EQ(src, SM_CONFIG_SOURCE_DEFAULT);
    CHECK(sm_config_get(&c, "log.retention.ms", &src) == NULL);
    CHECK(sm_config_get(&c, "no.such.key", &src) == NULL && src == SM_CONFIG_SOURCE_UNKNOWN);
    sm_config_free(&c);
}

static void test_syntax(void)
{
    sm_config_t c;
    char err[512];
    const char *text =
        "# a comment\n"
        "  ! another comment\n"
        "\n"
        "node.id = 7\n"
        "num.partitions: 3\n"
        "log.dirs /a/b,\\\n"
        "         /c/d\n"
        "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://[::1]:9093\r\n"
        "controller.quorum.voters=7@localhost:9093\n"
        "broker.rack=rack\\u0041\\tX\n"
        "some.plugin.key=whatever\n"
        "num.partitions=4\n"
        "auto.create.topics.enable = FALSE   \n";
    sm_err_t rc = load_text(text, NULL, 0, &c, err);
    if (rc)
        fprintf(stderr, "err: %s\n", err);
    CHECK_EQ(rc, SM_OK);
    CHECK_EQ(c.node_id, 7);
    CHECK_EQ(c.num_partitions, 4); /* last duplicate wins */
    CHECK(!c.auto_create_topics_enable);
    CHECK_EQ(c.nlog_dirs, 2);
    CHECK(c.nlog_dirs == 2 && strcmp(c.log_dirs[0], "/a/b") == 0 &&
          strcmp(c.log_dirs[1], "/c/d") == 0);
    CHECK(c.rack && strcmp(c.rack, "rackA\tX") == 0);
    CHECK_EQ(c.nlisteners, 2);
    CHECK(strcmp(c.listeners[0].host, "127.0.0.1") == 0 && c.listeners[0].port == 9092);
    CHECK(strcmp(c.listeners[1].host, "::1") == 0 && c.listeners[1].port == 9093);
    CHECK(c.listeners[1].controller && !c.listeners[0].controller);
    CHECK_EQ(c.listeners[0].protocol, SM_SECPROTO_PLAINTEXT);
    CHECK_EQ(c.nadvertised, 1);
    CHECK(strcmp(c.advertised[0].host, "127.0.0.1") == 0);
    /* unknown key kept and reported as set */
    sm_config_source_t src;
    const char *v = sm_config_get(&c, "some.plugin.key", &src);
    CHECK(v && strcmp(v, "whatever") == 0 && src == SM_CONFIG_SOURCE_STATIC_BROKER);
    v = sm_config_get(&c, "num.partitions", &src);
    CHECK(v && strcmp(v, "4") == 0 && src == SM_CONFIG_SOURCE_STATIC_BROKER);
    sm_config_free(&c);
}

static void test_overrides(void)
{
    sm_config_t c;
    char err[512];
    char *ov[] = {"num.partitions=9", "log.dirs = /x ", "log.retention.hours=1"};
    CHECK_EQ(load_text("num.partitions=2\nlog.dirs=/y\n", ov, 3, &c, err), SM_OK);
    CHECK_EQ(c.num_partitions, 9);
    CHECK(c.nlog_dirs == 1 && strcmp(c.log_dirs[0], "/x") == 0);
    CHECK_EQ(c.log_retention_ms, 3600000);
    sm_config_free(&c);

    char *bad[] = {"novalue"};
    CHECK_EQ(sm_config_load(NULL, bad, 1, &c, err, sizeof err), SM_ERR_PARSE);
    CHECK(strstr(err, "novalue") != NULL);
}

static void test_retention_precedence(void)
{
    sm_config_t c;
    char err[512];
    CHECK_EQ(load_text("log.retention.hours=2\nlog.retention.minutes=30\n", NULL, 0, &c, err), SM_OK);
    CHECK_EQ(c.log_retention_ms, 30LL * 60000);
    sm_config_free(&c);
    CHECK_EQ(load_text("log.retention.hours=2\nlog.retention.minutes=30\nlog.retention.ms=1234\n",
                       NULL, 0, &c, err), SM_OK);
    CHECK_EQ(c.log_retention_ms, 1234);
    sm_config_free(&c);
    CHECK_EQ(load_text("log.retention.ms=-5\n", NULL, 0, &c, err), SM_OK);
    CHECK_EQ(c.log_retention_ms, -1);
    sm_config_free(&c);
    CHECK_EQ(load_text("log.retention.hours=-1\n", NULL, 0, &c, err), SM_OK);
    CHECK_EQ(c.log_retention_ms, -1);
    sm_config_free(&c);
    /* "key=" leaves a number at its default (null), so hours applies */
    CHECK_EQ(load_text("log.retention.ms=\nlog.retention.hours=3\n", NULL, 0, &c, err), SM_OK);
    CHECK_EQ(c.log_retention_ms, 3LL * 3600000);
    sm_config_free(&c);
    CHECK_EQ(load_text("log.roll.ms=5000\nlog.roll.hours=1\nlog.flush.interval.ms=10\n", NULL, 0,
                       &c, err), SM_OK);
    CHECK_EQ(c.log_roll_ms, 5000);
    CHECK_EQ(c.log_flush_interval_ms, 10);
    sm_config_free(&c);
}

static void expect_invalid(const char *text, const char *must1, const char *must2)
{
    sm_config_t c;
    char err[512];
    sm_err_t rc = load_text(text, NULL, 0, &c, err);
    CHECK(rc == SM_ERR_INVALID || rc == SM_ERR_PARSE);
    CHECK(must1 == NULL || strstr(err, must1) != NULL);
    CHECK(must2 == NULL || strstr(err, must2) != NULL);
    if (rc == SM_OK)
        sm_config_free(&c);
    if ((must1 && !strstr(err, must1)) || (must2 && !strstr(err, must2)))
        fprintf(stderr, "  message was: %s\n", err);
}

static void test_errors(void)
{
    expect_invalid("num.partitions=abc\n", "num.partitions", "abc");
    expect_invalid("num.partitions=0\n", "num.partitions", "0");
    expect_invalid("auto.create.topics.enable=yes\n", "auto.create.topics.enable", "yes");
    expect_invalid("message.max.bytes=99999999999\n", "message.max.bytes", "99999999999");
    expect_invalid("log.message.timestamp.type=Now\n", "log.message.timestamp.type", "Now");
    expect_invalid("compression.type=brotli\n", "compression.type", "brotli");
    expect_invalid("process.roles=broker,router\n", "process.roles", "router");
    expect_invalid("listeners=PLAINTEXT:9092\n", "listeners", "PLAINTEXT:9092");
    expect_invalid("listeners=PLAINTEXT://h:99999,CONTROLLER://:9093\n", "listeners", NULL);
    expect_invalid("listeners=FOO://:1,CONTROLLER://:9093\n", "FOO", "listener.security.protocol.map");
    expect_invalid("listeners=PLAINTEXT://:1,PLAINTEXT://:2,CONTROLLER://:3\n", "PLAINTEXT", "repeated");
    expect_invalid("controller.quorum.voters=2@localhost:9093\n", "node.id=1", "voters");
    expect_invalid("controller.quorum.voters=x@localhost:9093\n", "controller.quorum.voters", NULL);
    expect_invalid("listeners=PLAINTEXT://:9092\n", "CONTROLLER", "listeners");
    expect_invalid("broker.id=4\n", "broker.id", "node.id");
    expect_invalid("min.insync.replicas=0\n", "min.insync.replicas", NULL);
    expect_invalid("log.cleaner.min.cleanable.ratio=1.5\n", "log.cleaner.min.cleanable.ratio", "1.5");
    expect_invalid("broker.rack=\\u00zz\n", NULL, "escape");

    sm_config_t c;
    char err[512];
    CHECK_EQ(sm_config_load("/nonexistent/samsa.properties", NULL, 0, &c, err, sizeof err),
             SM_ERR_IO);
    CHECK(strstr(err, "/nonexistent/samsa.properties") != NULL);
}

static void test_listeners_and_roles(void)
{
    sm_config_t c;
    char err[512];
    /* broker only: controller listener not in listeners, voters required */
    const char *text = "process.roles=broker\n"
                       "node.id=2\n"
                       "listeners=PLAINTEXT://:9092,INTERNAL://127.0.0.1:19092\n"
                       "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:PLAINTEXT\n"
                       "advertised.listeners=PLAINTEXT://broker2:9092,INTERNAL://127.0.0.1:19092\n"
                       "inter.broker.listener.name=internal\n"
                       "controller.quorum.voters=1@c1:9093,3@[::1]:9093\n";
    sm_err_t rc = load_text(text, NULL, 0, &c, err);
    if (rc)
        fprintf(stderr, "err: %s\n", err);
    CHECK_EQ(rc, SM_OK);
    CHECK(c.role_broker && !c.role_controller);
    CHECK_EQ(c.nadvertised, 2);
    const sm_listener_t *l = sm_config_advertised(&c, "internal");
    CHECK(l && l->protocol == SM_SECPROTO_SSL && l->port == 19092);
    CHECK(strcmp(c.inter_broker_listener_name, "INTERNAL") == 0);
    CHECK_EQ(c.nvoters, 2);
    CHECK(c.nvoters == 2 && c.voters[1].id == 3 && strcmp(c.voters[1].host, "::1") == 0);
    sm_config_free(&c);

    expect_invalid("process.roles=broker\nnode.id=2\nlisteners=PLAINTEXT://:9092\n",
                   "controller.quorum.voters", NULL);
    expect_invalid("process.roles=broker\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\n"
                   "controller.quorum.voters=1@h:9093\n", "CONTROLLER", "broker only");
    expect_invalid("inter.broker.listener.name=NOPE\n", "NOPE", NULL);

    /* controller only: no advertised listener needed */
    rc = load_text("process.roles=controller\nlisteners=CONTROLLER://127.0.0.1:9093\n", NULL, 0, &c,
                   err);
    CHECK_EQ(rc, SM_OK);
    CHECK_EQ(c.nadvertised, 0);
    CHECK(c.nvoters == 1 && strcmp(c.voters[0].host, "127.0.0.1") == 0);
    if (rc == SM_OK)
        sm_config_free(&c);
}

static void test_topic_configs(void)
{
    char err[256];
    CHECK_EQ(sm_topic_config_validate("retention.ms", "1000", err, sizeof err), SM_OK);
    CHECK_EQ(sm_topic_config_validate("retention.ms", "-1", err, sizeof err), SM_OK);
    CHECK_EQ(sm_topic_config_validate("retention.ms", "-2", err, sizeof err), SM_ERR_INVALID);
    CHECK(strstr(err, "retention.ms") && strstr(err, "-2"));
    CHECK_EQ(sm_topic_config_validate("cleanup.policy", "compact,delete", err, sizeof err), SM_OK);
    CHECK_EQ(sm_topic_config_validate("cleanup.policy", "compact,bogus", err, sizeof err),
             SM_ERR_INVALID);
    CHECK_EQ(sm_topic_config_validate("segment.bytes", "13", err, sizeof err), SM_ERR_INVALID);
    CHECK_EQ(sm_topic_config_validate("min.cleanable.dirty.ratio", "0.25", err, sizeof err), SM_OK);
    CHECK_EQ(sm_topic_config_validate("preallocate", "maybe", err, sizeof err), SM_ERR_INVALID);
    CHECK_EQ(sm_topic_config_validate("no.such.config", "1", err, sizeof err), SM_ERR_NOT_FOUND);
    CHECK(strstr(err, "no.such.config") != NULL);

    sm_config_t c;
    char cerr[512];
    CHECK_EQ(load_text("log.retention.hours=5\nlog.segment.bytes=1000\nmessage.max.bytes=500\n",
                       NULL, 0, &c, cerr), SM_OK);
    char buf[64];
    sm_config_source_t src;
    const char *syn;
    CHECK_EQ(sm_topic_config_resolve(&c, "retention.ms", NULL, 0, buf, sizeof buf, &src, &syn),
             SM_OK);
    CHECK(strcmp(buf, "18000000") == 0 && src == SM_CONFIG_SOURCE_STATIC_BROKER &&
          strcmp(syn, "log.retention.hours") == 0);
    CHECK_EQ(sm_topic_config_resolve(&c, "segment.bytes", NULL, 0, buf, sizeof buf, &src, &syn),
             SM_OK);
    CHECK(strcmp(buf, "1000") == 0 && src == SM_CONFIG_SOURCE_STATIC_BROKER);
    CHECK_EQ(sm_topic_config_resolve(&c, "max.message.bytes", NULL, 0, buf, sizeof buf, &src, NULL),
             SM_OK);
    CHECK(strcmp(buf, "500") == 0);
    CHECK_EQ(sm_topic_config_resolve(&c, "cleanup.policy", NULL, 0, buf, sizeof buf, &src, &syn),
             SM_OK);
    CHECK(strcmp(buf, "delete") == 0 && src == SM_CONFIG_SOURCE_DEFAULT && syn == NULL);
    sm_config_kv_t ov[] = {{"retention.ms", "42"}};
    CHECK_EQ(sm_topic_config_resolve(&c, "retention.ms", ov, 1, buf, sizeof buf, &src, &syn), SM_OK);
    CHECK(strcmp(buf, "42") == 0 && src == SM_CONFIG_SOURCE_TOPIC);
    CHECK_EQ(sm_topic_config_resolve(&c, "bogus", NULL, 0, buf, sizeof buf, &src, &syn),
             SM_ERR_NOT_FOUND);
    sm_config_free(&c);

    /* every topic default passes its own validator, and so does every broker default */
    for (size_t i = 0; i < sm_topic_config_ndefs; i++) {
        const sm_config_def_t *d = &sm_topic_config_defs[i].def;
        bool ok = !d->dflt || sm_config_def_check(d, d->dflt, err, sizeof err) == SM_OK;
        if (!ok)
            fprintf(stderr, "  bad topic default: %s\n", err);
        CHECK(ok);
        for (int s = 0; s < 3 && sm_topic_config_defs[i].synonyms[s].key; s++)
            CHECK(sm_broker_config_def(sm_topic_config_defs[i].synonyms[s].key) != NULL);
    }
    for (size_t i = 0; i < sm_broker_config_ndefs; i++) {
        const sm_config_def_t *d = &sm_broker_config_defs[i];
        bool ok = !d->dflt || !*d->dflt || sm_config_def_check(d, d->dflt, err, sizeof err) == SM_OK;
        if (!ok)
            fprintf(stderr, "  bad broker default: %s\n", err);
        CHECK(ok);
    }
}

/* The shipped sample must load and describe a single combined node. */
static void test_sample_file(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (!slash) {
        fprintf(stderr, "  skipped: __FILE__ is relative\n");
        return;
    }
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../../config/server.properties");
    sm_config_t c;
    char err[512];
    sm_err_t rc = sm_config_load(path, NULL, 0, &c, err, sizeof err);
    if (rc)
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ(rc, SM_OK);
    if (rc)
        return;
    CHECK_EQ(c.node_id, 1);
    CHECK(c.role_broker && c.role_controller);
    CHECK(c.nadvertised == 1 && strcmp(c.advertised[0].host, "127.0.0.1") == 0 &&
          c.advertised[0].port == 9092);
    CHECK(c.nvoters == 1 && c.voters[0].id == 1 && c.voters[0].port == 9093);
    CHECK(c.nlog_dirs == 1 && strcmp(c.log_dirs[0], "./data") == 0);
    CHECK_EQ(c.offsets_topic_replication_factor, 1);
    sm_config_free(&c);
}

int main(void)
{
    RUN(test_sample_file);
    RUN(test_defaults);
    RUN(test_syntax);
    RUN(test_overrides);
    RUN(test_retention_precedence);
    RUN(test_errors);
    RUN(test_listeners_and_roles);
    RUN(test_topic_configs);
    unlink(g_path);
    TEST_MAIN_END();
}
