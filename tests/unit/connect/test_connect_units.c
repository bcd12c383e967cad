/*
 * test_connect_units.c - unit tests of samsa-connect's pure parts: .properties
 * parsing, connector files, converters (both directions, Kafka's envelope rules,
 * base64), the offset file (flush, reload, canonical partitions), config validation
 * and the logger table. Linked with the connect objects (CMakeLists.txt).
 */
#include "cn.h"

#include "../sm_test.h"

#include <unistd.h>

static void test_props(void)
{
    const char *text = "# comment\n! also\n  a=1\nb : two words \nc   3\nd=line\\\n    continued\n"
                       "e=tab\\tand\\u00e9\nf\\=g=h\n\nempty=\nb=override\r\nlast=no newline";
    json_t *p = cn_props_parse(text, strlen(text));
    CHECK(strcmp(cn_cfg_str(p, "a"), "1") == 0);
    CHECK(strcmp(cn_cfg_str(p, "b"), "override") == 0);
    CHECK(strcmp(cn_cfg_str(p, "c"), "3") == 0);
    CHECK(strcmp(cn_cfg_str(p, "d"), "linecontinued") == 0);
    CHECK(strcmp(cn_cfg_str(p, "e"), "tab\tand\xc3\xa9") == 0);
    CHECK(strcmp(cn_cfg_str(p, "f=g"), "h") == 0);
    CHECK(strcmp(cn_cfg_str(p, "empty"), "") == 0);
    CHECK(strcmp(cn_cfg_str(p, "last"), "no newline") == 0);
    CHECK(!cn_cfg_str(p, "# comment"));
    CHECK_EQ(json_object_size(p), 8);
    int64_t v;
    CHECK(cn_cfg_i64(p, "a", 0, &v) && v == 1);
    CHECK(!cn_cfg_i64(p, "b", 0, &v));
    CHECK(cn_cfg_i64(p, "missing", 42, &v) && v == 42);
    json_decref(p);
}

static void test_connector_files(void)
{
    char dir[] = "/tmp/cn-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/a.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\":\"x\",\"config\":{\"connector.class\":\"FileStreamSink\",\"tasks.max\":2,\"b\":true,\"n\":null}}", f);
    fclose(f);
    json_t *c = cn_connector_file_load(path, err, sizeof err);
    CHECK(c && strcmp(cn_cfg_str(c, "name"), "x") == 0 && strcmp(cn_cfg_str(c, "tasks.max"), "2") == 0);
    CHECK(c && strcmp(cn_cfg_str(c, "b"), "true") == 0 && !json_object_get(c, "n"));
    json_decref(c);
    f = fopen(path, "w");
    fputs("{\"config\":{\"nested\":{}}}", f);
    fclose(f);
    CHECK(cn_connector_file_load(path, err, sizeof err) == NULL);
    snprintf(path, sizeof path, "%s/b.properties", dir);
    f = fopen(path, "w");
    fputs("connector.class=FileStreamSource\n", f);
    fclose(f);
    CHECK(cn_connector_file_load(path, err, sizeof err) == NULL && strstr(err, "no 'name'"));
    unlink(path);
    snprintf(path, sizeof path, "%s/a.json", dir);
    unlink(path);
    rmdir(dir);
}

static bool conv(const char *cls, bool schemas, cn_converter_t *cv)
{
    json_t *p = json_pack("{s:s}", "schemas.enable", schemas ? "true" : "false");
    char err[256];
    bool ok = cn_converter_init(cv, cls, p, false, err, sizeof err);
    json_decref(p);
    return ok;
}

static char *from(cn_converter_t *cv, samsa_connect_kind_t kind, const char *data, const char *schema,
                  int *rc)
{
    samsa_connect_value_t v = {kind, data, data ? strlen(data) : 0, schema};
    char *out;
    size_t len;
    char err[512];
    *rc = cn_convert_from_connect(cv, &v, &out, &len, err, sizeof err);
    return out;
}

static void test_converters(void)
{
    cn_converter_t js, jn, st, by;
    char err[512];
    CHECK(conv("org.apache.kafka.connect.json.JsonConverter", true, &js));
    CHECK(conv("JsonConverter", false, &jn));
    CHECK(conv("org.apache.kafka.connect.storage.StringConverter", true, &st));
    CHECK(conv("ByteArrayConverter", true, &by));
    CHECK(!conv("org.example.JsonConverter", true, &st) && conv("StringConverter", true, &st));
    CHECK(!conv("Nope", true, &st) && conv("StringConverter", true, &st));

    int rc;
    char *o = from(&js, SAMSA_VALUE_STRING, "hi", "{\"type\":\"string\",\"optional\":false}", &rc);
    CHECK(rc == 0 && strcmp(o, "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":\"hi\"}") == 0);
    free(o);
    o = from(&jn, SAMSA_VALUE_STRING, "hi", NULL, &rc);
    CHECK(rc == 0 && strcmp(o, "\"hi\"") == 0);
    free(o);
    o = from(&js, SAMSA_VALUE_BYTES, "\x00\x01", NULL, &rc); /* strlen: 0 bytes */
    CHECK(rc == 0 && strcmp(o, "{\"schema\":null,\"payload\":\"\"}") == 0);
    free(o);
    samsa_connect_value_t b = {SAMSA_VALUE_BYTES, "\x00\x01\xff", 3, "{\"type\":\"bytes\"}"};
    size_t len;
    CHECK(cn_convert_from_connect(&js, &b, &o, &len, err, sizeof err) == 0);
    CHECK(strcmp(o, "{\"schema\":{\"type\":\"bytes\"},\"payload\":\"AAH/\"}") == 0);
    cn_value_t back;
    CHECK(cn_convert_to_connect(&js, o, len, &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_BYTES && back.v.len == 3 && memcmp(back.v.data, "\x00\x01\xff", 3) == 0);
    cn_value_free(&back);
    free(o);
    o = from(&js, SAMSA_VALUE_NULL, NULL, NULL, &rc);
    CHECK(rc == 0 && o == NULL); /* a tombstone */
    o = from(&js, SAMSA_VALUE_JSON, "{\"a\": [1, 2.5, true]}", NULL, &rc);
    CHECK(rc == 0 && strcmp(o, "{\"schema\":null,\"payload\":{\"a\":[1,2.5,true]}}") == 0);
    free(o);
    o = from(&js, SAMSA_VALUE_JSON, "{bad", NULL, &rc);
    CHECK(rc != 0 && !o);
    o = from(&by, SAMSA_VALUE_JSON, "{}", NULL, &rc);
    CHECK(rc != 0 && !o);
    o = from(&st, SAMSA_VALUE_JSON, "{\"x\":1}", NULL, &rc);
    CHECK(rc == 0 && strcmp(o, "{\"x\":1}") == 0);
    free(o);

    const char *env = "{\"schema\":{\"type\":\"struct\",\"fields\":[]},\"payload\":{\"n\":1}}";
    CHECK(cn_convert_to_connect(&js, env, strlen(env), &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_JSON && strcmp(back.v.data, "{\"n\":1}") == 0);
    CHECK(back.v.schema && strstr(back.v.schema, "\"struct\""));
    cn_value_free(&back);
    const char *plain = "{\"n\":1}";
    CHECK(cn_convert_to_connect(&js, plain, strlen(plain), &back, err, sizeof err) != 0);
    CHECK(strstr(err, "requires \"schema\" and \"payload\" fields"));
    CHECK(cn_convert_to_connect(&jn, plain, strlen(plain), &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_JSON && !back.v.schema);
    cn_value_free(&back);
    CHECK(cn_convert_to_connect(&jn, "\"s\"", 3, &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_STRING && back.v.len == 1 && back.v.data[0] == 's');
    cn_value_free(&back);
    CHECK(cn_convert_to_connect(&js, NULL, 0, &back, err, sizeof err) == 0 && back.v.kind == SAMSA_VALUE_NULL);
    cn_value_free(&back);
    CHECK(cn_convert_to_connect(&js, "{\"schema\":{\"type\":\"string\"},\"payload\":5}", 40, &back, err, sizeof err) != 0);
    CHECK(cn_convert_to_connect(&st, "abc", 3, &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_STRING && strstr(back.v.schema, "\"string\""));
    cn_value_free(&back);
    CHECK(cn_convert_to_connect(&by, "\x00z", 2, &back, err, sizeof err) == 0);
    CHECK(back.v.kind == SAMSA_VALUE_BYTES && back.v.len == 2);
    cn_value_free(&back);
}

static void test_offsets(void)
{
    char path[] = "/tmp/cn-offsets-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    char err[256];
    cn_offsets_t *o = cn_offsets_open(path, err, sizeof err);
    CHECK(o != NULL);
    json_t *p1 = json_pack("{s:s, s:i}", "f", "a", "g", 1), *p1r = json_pack("{s:i, s:s}", "g", 1, "f", "a");
    json_t *off = json_pack("{s:I}", "position", (json_int_t)1 << 40);
    cn_offsets_put(o, "c1", p1, off);
    json_t *got = cn_offsets_get(o, "c1", p1r); /* same partition, keys in another order */
    CHECK(got && json_equal(got, off));
    json_decref(got);
    CHECK(cn_offsets_get(o, "c2", p1) == NULL);
    CHECK(cn_offsets_flush(o, err, sizeof err) == 0);
    cn_offsets_close(o);
    o = cn_offsets_open(path, err, sizeof err);
    got = cn_offsets_get(o, "c1", p1);
    CHECK(got && json_integer_value(json_object_get(got, "position")) == (json_int_t)1 << 40);
    json_decref(got);
    json_t *list = cn_offsets_list(o, "c1");
    CHECK_EQ(json_array_size(list), 1);
    json_decref(list);
    cn_offsets_put(o, "c1", p1, NULL);
    CHECK(cn_offsets_get(o, "c1", p1) == NULL);
    cn_offsets_put(o, "c1", p1, off);
    cn_offsets_reset(o, "c1");
    list = cn_offsets_list(o, "c1");
    CHECK_EQ(json_array_size(list), 0);
    json_decref(list);
    CHECK(cn_offsets_flush(o, err, sizeof err) == 0);
    cn_offsets_close(o);
    FILE *f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    CHECK(cn_offsets_open(path, err, sizeof err) == NULL);
    unlink(path);
    json_decref(p1);
    json_decref(p1r);
    json_decref(off);
}

static void test_loggers(void)
{
    cn_logger_t *a = cn_logger("unit.a.b");
    cn_logger("unit.a");
    CHECK(!cn_log_enabled(a, SAMSA_LOG_DEBUG) && cn_log_enabled(a, SAMSA_LOG_INFO));
    json_t *aff = cn_log_set("unit.a", SAMSA_LOG_DEBUG);
    CHECK_EQ(json_array_size(aff), 2);
    json_decref(aff);
    CHECK(cn_log_enabled(a, SAMSA_LOG_DEBUG));
    json_t *g = cn_log_get("unit.a.b");
    CHECK(g && strcmp(json_string_value(json_object_get(g, "level")), "DEBUG") == 0);
    json_decref(g);
    CHECK(cn_log_get("unit.nope") == NULL);
    CHECK(cn_log_level_parse("warn") == SAMSA_LOG_WARN && cn_log_level_parse("FATAL") == SAMSA_LOG_ERROR);
    CHECK(cn_log_level_parse("loud") == -1 && cn_log_level_parse("OFF") == CN_LOG_OFF);
    aff = cn_log_set("root", CN_LOG_OFF);
    json_decref(aff);
    CHECK(!cn_log_enabled(a, SAMSA_LOG_ERROR));
    aff = cn_log_set("root", SAMSA_LOG_INFO);
    json_decref(aff);
}

static void test_validation(void)
{
    cn_worker_t w = {0};
    w.plugins = cn_plugins_new(NULL);
    const samsa_connect_plugin_t *src = cn_plugins_find(w.plugins, "FileStreamSource");
    CHECK(src == cn_plugins_find(w.plugins, "FileStreamSourceConnector"));
    CHECK(src == cn_plugins_find(w.plugins, "org.apache.kafka.connect.file.FileStreamSourceConnector"));
    CHECK(cn_plugins_find(w.plugins, "FileStream") == NULL);
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s}", "name", "n", "connector.class", "FileStreamSource", "topic",
                            "a,b", "errors.tolerance", "some");
    int nerr;
    json_t *infos = cn_validate(&w, src, cfg, &nerr);
    CHECK_EQ(nerr, 2); /* a comma in topic (the plugin's validate), errors.tolerance */
    char *msg = cn_validate_message(infos, nerr);
    CHECK(strstr(msg, "contains the following 2 error(s)") && strstr(msg, "String must be one of: none, all"));
    free(msg);
    json_decref(infos);
    json_decref(cfg);
    cn_plugins_free(w.plugins);
}

int main(void)
{
    RUN(test_props);
    RUN(test_connector_files);
    RUN(test_converters);
    RUN(test_offsets);
    RUN(test_loggers);
    RUN(test_validation);
    TEST_MAIN_END();
}
