/*
 * test_connect_smt.c - unit tests of samsa-connect's Single Message Transforms and
 * predicates (smt.c, smt_xf.c): every transform with and without a schema, the $Key
 * and $Value variants, class names and aliases, predicates with negate, and the
 * configuration errors that validation reports (naming the key).
 */
#include "smt.h"

#include "../sm_test.h"

/* A chain from .properties text; NULL with key/err filled on a config error. */
static char g_key[400], g_err[1024];

static cn_chain_t *chain(const char *props)
{
    json_t *cfg = cn_props_parse(props, strlen(props));
    g_key[0] = g_err[0] = 0;
    cn_chain_t *c = cn_chain_new(cfg, g_key, sizeof g_key, g_err, sizeof g_err);
    json_decref(cfg);
    return c;
}

static samsa_connect_value_t jv(const char *json, const char *schema)
{
    if (!json)
        return (samsa_connect_value_t){SAMSA_VALUE_NULL, NULL, 0, schema};
    return (samsa_connect_value_t){SAMSA_VALUE_JSON, json, strlen(json), schema};
}

static samsa_connect_value_t sv(const char *s)
{
    return (samsa_connect_value_t){SAMSA_VALUE_STRING, s, strlen(s), "{\"type\":\"string\",\"optional\":true}"};
}

/* A sink-like record on topic "orders", partition 3, offset 42, timestamp 2021-03-04T05:06:07.089Z. */
static void rec(cn_record_t *r, samsa_connect_value_t key, samsa_connect_value_t value)
{
    bool bad_key;
    char err[256];
    samsa_connect_header_t h[] = {{"h1", "v1", 2}, {"h2", NULL, 0}};
    int rc = cn_record_init(r, "orders", 3, 42, 1614834367089LL, &key, &value, h, 2, &bad_key, err, sizeof err);
    CHECK(rc == 0);
}

/* Apply props to a record; returns rc, writes err. */
static int run(const char *props, cn_record_t *r, char *err, size_t len)
{
    cn_chain_t *c = chain(props);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "config error on %s: %s\n", g_key, g_err);
        return -2;
    }
    const char *cls = NULL;
    int rc = cn_chain_apply(c, r, &cls, err, len);
    cn_chain_free(c);
    return rc;
}

static bool json_eq_text(json_t *j, const char *text)
{
    json_t *want = json_loads(text, JSON_DECODE_ANY, NULL);
    bool eq = want && json_equal(j, want);
    if (!eq) {
        char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "  got  %s\n  want %s\n", got ? got : "(null)", text);
        free(got);
    }
    json_decref(want);
    return eq;
}

#define STRUCT_AB "{\"type\":\"struct\",\"optional\":false,\"fields\":[{\"field\":\"a\",\"type\":\"int32\",\"optional\":false},{\"field\":\"b\",\"type\":\"string\",\"optional\":true}]}"

static void test_insert_field(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"a\":1}", NULL));
    CHECK(run("transforms=i\ntransforms.i.type=org.apache.kafka.connect.transforms.InsertField$Value\n"
              "transforms.i.topic.field=t\ntransforms.i.partition.field=p\ntransforms.i.offset.field=o\n"
              "transforms.i.timestamp.field=ts\ntransforms.i.static.field=s\ntransforms.i.static.value=x\n",
              &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":1,\"t\":\"orders\",\"p\":3,\"o\":42,\"ts\":1614834367089,\"s\":\"x\"}"));
    CHECK(r.value_schema == NULL);
    cn_record_free(&r);

    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=i\ntransforms.i.type=InsertField$Value\ntransforms.i.topic.field=t!\n"
              "transforms.i.timestamp.field=ts\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":1,\"b\":\"x\",\"t\":\"orders\",\"ts\":1614834367089}"));
    json_t *f = json_array_get(json_object_get(r.value_schema, "fields"), 2);
    CHECK(json_eq_text(f, "{\"field\":\"t\",\"type\":\"string\",\"optional\":false}"));
    f = json_array_get(json_object_get(r.value_schema, "fields"), 3);
    CHECK(json_eq_text(f, "{\"field\":\"ts\",\"type\":\"int64\",\"optional\":true,\"name\":\"org.apache.kafka.connect.data.Timestamp\",\"version\":1}"));
    cn_record_free(&r);

    /* Tombstones pass; a non-map value without schema is an error. */
    rec(&r, jv(NULL, NULL), jv(NULL, NULL));
    CHECK(run("transforms=i\ntransforms.i.type=InsertField$Value\ntransforms.i.topic.field=t\n", &r, err, sizeof err) == 1);
    CHECK(json_is_null(r.value));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), sv("text"));
    json_decref(r.value_schema);
    r.value_schema = NULL;
    CHECK(run("transforms=i\ntransforms.i.type=InsertField$Value\ntransforms.i.topic.field=t\n", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "Only Map objects supported in absence of schema for [field insertion]") != NULL);
    cn_record_free(&r);

    /* $Key works on the key. */
    rec(&r, jv("{\"id\":7}", NULL), jv("1", NULL));
    CHECK(run("transforms=i\ntransforms.i.type=InsertField$Key\ntransforms.i.partition.field=p\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.key, "{\"id\":7,\"p\":3}"));
    CHECK(json_eq_text(r.value, "1"));
    cn_record_free(&r);
}

static void test_replace_field(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":2,\"c\":3}", NULL));
    CHECK(run("transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.exclude=b\n"
              "transforms.r.renames=a:alpha,c:gamma\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"alpha\":1,\"gamma\":3}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":2,\"c\":3}", NULL));
    CHECK(run("transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.whitelist=a,c\n"
              "transforms.r.blacklist=c\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":1}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.include=b\n"
              "transforms.r.renames=b:beta\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"beta\":\"x\"}"));
    CHECK(json_eq_text(json_object_get(r.value_schema, "fields"), "[{\"field\":\"beta\",\"type\":\"string\",\"optional\":true}]"));
    cn_record_free(&r);
    CHECK(chain("transforms=r\ntransforms.r.type=ReplaceField$Value\ntransforms.r.renames=a\n") == NULL);
    CHECK(strcmp(g_key, "transforms.r.renames") == 0);
}

static void test_mask_field(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"n\":5,\"d\":1.5,\"s\":\"secret\",\"b\":true,\"l\":[1],\"o\":{\"x\":1},\"k\":\"keep\"}", NULL));
    CHECK(run("transforms=m\ntransforms.m.type=MaskField$Value\ntransforms.m.fields=n,d,s,b,l,o\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"n\":0,\"d\":0.0,\"s\":\"\",\"b\":false,\"l\":[],\"o\":{},\"k\":\"keep\"}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":9,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=m\ntransforms.m.type=MaskField$Value\ntransforms.m.fields=b\n"
              "transforms.m.replacement=****\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":9,\"b\":\"****\"}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":9,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=m\ntransforms.m.type=MaskField$Value\ntransforms.m.fields=a\n"
              "transforms.m.replacement=nope\n", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "Unable to convert") != NULL);
    cn_record_free(&r);
    CHECK(chain("transforms=m\ntransforms.m.type=MaskField$Value\n") == NULL && strcmp(g_key, "transforms.m.fields") == 0);
}

static void test_cast(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"a\":300,\"b\":\"2.5\",\"c\":1,\"d\":7}", NULL));
    CHECK(run("transforms=c\ntransforms.c.type=Cast$Value\ntransforms.c.spec=a:int8,b:float64,c:boolean,d:string\n",
              &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":44,\"b\":2.5,\"c\":true,\"d\":\"7\"}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"12\"}", STRUCT_AB));
    CHECK(run("transforms=c\ntransforms.c.type=Cast$Value\ntransforms.c.spec=b:int64\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":1,\"b\":12}"));
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(json_object_get(r.value_schema, "fields"), 1), "type")), "int64") == 0);
    cn_record_free(&r);
    /* Whole value cast, on the key. */
    rec(&r, jv("17", "{\"type\":\"int32\",\"optional\":false}"), jv(NULL, NULL));
    CHECK(run("transforms=c\ntransforms.c.type=Cast$Key\ntransforms.c.spec=string\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.key, "\"17\"") && strcmp(json_string_value(json_object_get(r.key_schema, "type")), "string") == 0);
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"b\":\"abc\"}", NULL));
    CHECK(run("transforms=c\ntransforms.c.type=Cast$Value\ntransforms.c.spec=b:int32\n", &r, err, sizeof err) == -1);
    cn_record_free(&r);
    CHECK(chain("transforms=c\ntransforms.c.type=Cast$Value\ntransforms.c.spec=a:decimal\n") == NULL &&
          strcmp(g_key, "transforms.c.spec") == 0 && strstr(g_err, "Invalid value a:decimal"));
}

static void test_extract_hoist(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv("{\"id\":5,\"x\":1}", NULL), jv(NULL, NULL));
    CHECK(run("transforms=e\ntransforms.e.type=ExtractField$Key\ntransforms.e.field=id\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.key, "5"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=e\ntransforms.e.type=ExtractField$Value\ntransforms.e.field=b\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "\"x\"") && json_eq_text(r.value_schema, "{\"type\":\"string\",\"optional\":true}"));
    cn_value_t k, v;
    CHECK(cn_record_export(&r, &k, &v, err, sizeof err) == 0);
    CHECK(v.v.kind == SAMSA_VALUE_STRING && v.v.len == 1 && v.v.data[0] == 'x');
    cn_value_free(&k);
    cn_value_free(&v);
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=e\ntransforms.e.type=ExtractField$Value\ntransforms.e.field=zz\n", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "Unknown field: zz") != NULL);
    cn_record_free(&r);

    rec(&r, jv(NULL, NULL), sv("hello"));
    CHECK(run("transforms=h\ntransforms.h.type=HoistField$Value\ntransforms.h.field=line\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"line\":\"hello\"}"));
    CHECK(json_eq_text(r.value_schema, "{\"type\":\"struct\",\"optional\":false,\"fields\":[{\"field\":\"line\",\"type\":\"string\",\"optional\":true}]}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("[1,2]", NULL));
    CHECK(run("transforms=h\ntransforms.h.type=HoistField$Value\ntransforms.h.field=v\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"v\":[1,2]}") && r.value_schema == NULL);
    cn_record_free(&r);
    CHECK(chain("transforms=h\ntransforms.h.type=HoistField$Value\n") == NULL && strcmp(g_key, "transforms.h.field") == 0);
}

static void test_value_to_key_and_flatten(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=v\ntransforms.v.type=org.apache.kafka.connect.transforms.ValueToKey\ntransforms.v.fields=a\n",
              &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.key, "{\"a\":1}"));
    CHECK(json_eq_text(r.key_schema, "{\"type\":\"struct\",\"optional\":false,\"fields\":[{\"field\":\"a\",\"type\":\"int32\",\"optional\":false}]}"));
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1}", NULL));
    CHECK(run("transforms=v\ntransforms.v.type=ValueToKey\ntransforms.v.fields=a,q\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.key, "{\"a\":1,\"q\":null}"));
    cn_record_free(&r);
    CHECK(chain("transforms=v\ntransforms.v.type=ValueToKey$Value\ntransforms.v.fields=a\n") == NULL &&
          strcmp(g_key, "transforms.v.type") == 0);

    rec(&r, jv(NULL, NULL), jv("{\"a\":{\"b\":{\"c\":1},\"d\":2},\"e\":[1]}", NULL));
    CHECK(run("transforms=f\ntransforms.f.type=Flatten$Value\ntransforms.f.delimiter=_\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a_b_c\":1,\"a_d\":2,\"e\":[1]}"));
    cn_record_free(&r);
    const char *nested = "{\"type\":\"struct\",\"optional\":false,\"fields\":[{\"field\":\"id\",\"type\":\"int32\",\"optional\":false},"
                         "{\"field\":\"addr\",\"type\":\"struct\",\"optional\":true,\"fields\":[{\"field\":\"city\",\"type\":\"string\",\"optional\":false}]}]}";
    rec(&r, jv(NULL, NULL), jv("{\"id\":1,\"addr\":{\"city\":\"Oslo\"}}", nested));
    CHECK(run("transforms=f\ntransforms.f.type=Flatten$Value\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"id\":1,\"addr.city\":\"Oslo\"}"));
    CHECK(json_eq_text(json_object_get(r.value_schema, "fields"),
                       "[{\"field\":\"id\",\"type\":\"int32\",\"optional\":false},{\"field\":\"addr.city\",\"type\":\"string\",\"optional\":true}]"));
    cn_record_free(&r);
}

static void test_routers(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("1", NULL));
    CHECK(run("transforms=rr\ntransforms.rr.type=RegexRouter\ntransforms.rr.regex=(ord)(ers)\n"
              "transforms.rr.replacement=routed-$2-$1\n", &r, err, sizeof err) == 1);
    CHECK(strcmp(r.topic, "routed-ers-ord") == 0);
    /* Only whole-name matches route. */
    CHECK(run("transforms=rr\ntransforms.rr.type=RegexRouter\ntransforms.rr.regex=routed\n"
              "transforms.rr.replacement=x\n", &r, err, sizeof err) == 1);
    CHECK(strcmp(r.topic, "routed-ers-ord") == 0);
    CHECK(run("transforms=tr\ntransforms.tr.type=TimestampRouter\n", &r, err, sizeof err) == 1);
    CHECK(strcmp(r.topic, "routed-ers-ord-20210304") == 0);
    CHECK(run("transforms=tr\ntransforms.tr.type=TimestampRouter\ntransforms.tr.topic.format=${timestamp}_x\n"
              "transforms.tr.timestamp.format=yyyy-MM-dd'T'HH:mm:ss.SSS\n", &r, err, sizeof err) == 1);
    CHECK(strcmp(r.topic, "2021-03-04T05:06:07.089_x") == 0);
    r.timestamp_ms = -1;
    CHECK(run("transforms=tr\ntransforms.tr.type=TimestampRouter\n", &r, err, sizeof err) == -1);
    cn_record_free(&r);
    CHECK(chain("transforms=rr\ntransforms.rr.type=RegexRouter\ntransforms.rr.regex=(a\ntransforms.rr.replacement=x\n") == NULL &&
          strcmp(g_key, "transforms.rr.regex") == 0);
    CHECK(chain("transforms=tr\ntransforms.tr.type=TimestampRouter\ntransforms.tr.timestamp.format=EEE\n") == NULL &&
          strcmp(g_key, "transforms.tr.timestamp.format") == 0);
}

static void test_timestamp_converter(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"ts\":1614834367089}", NULL));
    CHECK(run("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.field=ts\n"
              "transforms.t.target.type=string\ntransforms.t.format=yyyy-MM-dd HH:mm:ss\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"ts\":\"2021-03-04 05:06:07\"}"));
    CHECK(run("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.field=ts\n"
              "transforms.t.target.type=unix\ntransforms.t.format=yyyy-MM-dd HH:mm:ss\ntransforms.t.unix.precision=seconds\n",
              &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"ts\":1614834367}"));
    cn_record_free(&r);
    const char *s = "{\"type\":\"struct\",\"optional\":false,\"fields\":[{\"field\":\"ts\",\"type\":\"int64\",\"optional\":false,"
                    "\"name\":\"org.apache.kafka.connect.data.Timestamp\",\"version\":1}]}";
    rec(&r, jv(NULL, NULL), jv("{\"ts\":1614834367089}", s));
    CHECK(run("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.field=ts\n"
              "transforms.t.target.type=Date\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"ts\":18690}"));
    CHECK(json_eq_text(json_array_get(json_object_get(r.value_schema, "fields"), 0),
                       "{\"field\":\"ts\",\"type\":\"int32\",\"optional\":false,\"name\":\"org.apache.kafka.connect.data.Date\",\"version\":1}"));
    cn_record_free(&r);
    /* The whole value, from a string. */
    rec(&r, jv(NULL, NULL), sv("2021-03-04"));
    CHECK(run("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.target.type=Timestamp\n"
              "transforms.t.format=yyyy-MM-dd\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "1614816000000"));
    CHECK(strcmp(json_string_value(json_object_get(r.value_schema, "name")), "org.apache.kafka.connect.data.Timestamp") == 0);
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), sv("garbage"));
    CHECK(run("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.target.type=unix\n"
              "transforms.t.format=yyyy-MM-dd\n", &r, err, sizeof err) == -1);
    CHECK(strstr(err, "Could not parse timestamp") != NULL);
    cn_record_free(&r);
    CHECK(chain("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.target.type=string\n") == NULL &&
          strcmp(g_key, "transforms.t.format") == 0);
    CHECK(chain("transforms=t\ntransforms.t.type=TimestampConverter$Value\ntransforms.t.target.type=week\n") == NULL &&
          strcmp(g_key, "transforms.t.target.type") == 0);
}

static void test_headers_and_filter(void)
{
    cn_record_t r;
    char err[512];
    rec(&r, jv(NULL, NULL), jv("{\"a\":1,\"b\":\"x\"}", STRUCT_AB));
    CHECK(run("transforms=d,i\ntransforms.d.type=DropHeaders\ntransforms.d.headers=h1\n"
              "transforms.i.type=InsertHeader\ntransforms.i.header=src\ntransforms.i.value.literal=file\n",
              &r, err, sizeof err) == 1);
    CHECK(!cn_record_header(&r, "h1") && cn_record_header(&r, "h2") && !cn_record_header(&r, "h2")->value);
    CHECK(cn_record_header(&r, "src") && strcmp(cn_record_header(&r, "src")->value, "file") == 0);
    CHECK(run("transforms=hf\ntransforms.hf.type=HeaderFrom$Value\ntransforms.hf.fields=a,b\n"
              "transforms.hf.headers=ha,hb\ntransforms.hf.operation=move\n", &r, err, sizeof err) == 1);
    CHECK(strcmp(cn_record_header(&r, "ha")->value, "1") == 0 && strcmp(cn_record_header(&r, "hb")->value, "x") == 0);
    CHECK(json_eq_text(r.value, "{}") && json_array_size(json_object_get(r.value_schema, "fields")) == 0);
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv("{\"a\":1}", NULL));
    CHECK(run("transforms=hf\ntransforms.hf.type=HeaderFrom$Value\ntransforms.hf.fields=a\n"
              "transforms.hf.headers=ha\ntransforms.hf.operation=copy\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"a\":1}") && cn_record_header(&r, "ha"));
    CHECK(run("transforms=f\ntransforms.f.type=org.apache.kafka.connect.transforms.Filter\n", &r, err, sizeof err) == 0);
    cn_record_free(&r);
    CHECK(chain("transforms=hf\ntransforms.hf.type=HeaderFrom$Value\ntransforms.hf.fields=a,b\n"
                "transforms.hf.headers=ha\ntransforms.hf.operation=copy\n") == NULL && strcmp(g_key, "transforms.hf.headers") == 0);
    CHECK(chain("transforms=hf\ntransforms.hf.type=HeaderFrom$Value\ntransforms.hf.fields=a\n"
                "transforms.hf.headers=ha\ntransforms.hf.operation=swap\n") == NULL && strcmp(g_key, "transforms.hf.operation") == 0);
    CHECK(chain("transforms=i\ntransforms.i.type=InsertHeader\ntransforms.i.header=x\n") == NULL &&
          strcmp(g_key, "transforms.i.value.literal") == 0);
    CHECK(chain("transforms=d\ntransforms.d.type=DropHeaders\n") == NULL && strcmp(g_key, "transforms.d.headers") == 0);
}

static void test_predicates(void)
{
    cn_record_t r;
    char err[512];
    const char *base = "transforms=f\ntransforms.f.type=Filter\ntransforms.f.predicate=p\n"
                       "predicates=p\n";
    char props[1024];
    rec(&r, jv(NULL, NULL), jv("{\"a\":1}", NULL));
    snprintf(props, sizeof props, "%spredicates.p.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches\n"
             "predicates.p.pattern=ord.*\n", base);
    CHECK(run(props, &r, err, sizeof err) == 0);
    snprintf(props, sizeof props, "%spredicates.p.type=TopicNameMatches\npredicates.p.pattern=rd.*\n", base);
    CHECK(run(props, &r, err, sizeof err) == 1); /* a partial match does not count */
    snprintf(props, sizeof props, "%stransforms.f.negate=true\npredicates.p.type=TopicNameMatches\npredicates.p.pattern=x\n", base);
    CHECK(run(props, &r, err, sizeof err) == 0);
    snprintf(props, sizeof props, "%spredicates.p.type=HasHeaderKey\npredicates.p.name=h2\n", base);
    CHECK(run(props, &r, err, sizeof err) == 0);
    snprintf(props, sizeof props, "%spredicates.p.type=HasHeaderKey\npredicates.p.name=nope\n", base);
    CHECK(run(props, &r, err, sizeof err) == 1);
    snprintf(props, sizeof props, "%spredicates.p.type=RecordIsTombstone\n", base);
    CHECK(run(props, &r, err, sizeof err) == 1);
    cn_record_free(&r);
    rec(&r, jv(NULL, NULL), jv(NULL, NULL));
    CHECK(run(props, &r, err, sizeof err) == 0);
    cn_record_free(&r);

    /* Configuration errors name their key. */
    CHECK(chain("transforms=f\ntransforms.f.type=Filter\ntransforms.f.predicate=q\n") == NULL &&
          strcmp(g_key, "transforms.f.predicate") == 0);
    CHECK(chain("predicates=p\npredicates.p.type=TopicNameMatches\n") == NULL && strcmp(g_key, "predicates.p.pattern") == 0);
    CHECK(chain("predicates=p\npredicates.p.type=Bogus\n") == NULL && strcmp(g_key, "predicates.p.type") == 0);
    CHECK(chain("predicates=p\npredicates.p.type=HasHeaderKey\n") == NULL && strcmp(g_key, "predicates.p.name") == 0);
    CHECK(chain("transforms=x\n") == NULL && strcmp(g_key, "transforms.x.type") == 0 && strstr(g_err, "Missing required"));
    CHECK(chain("transforms=x\ntransforms.x.type=InsertField\n") == NULL && strstr(g_err, "could not be found"));
    CHECK(chain("transforms=x\ntransforms.x.type=com.example.InsertField$Value\n") == NULL);
    CHECK(chain("transforms=x\ntransforms.x.type=Filter\ntransforms.x.negate=maybe\n") == NULL &&
          strcmp(g_key, "transforms.x.negate") == 0);
    CHECK(chain("transforms=f,f\ntransforms.f.type=Filter\n") == NULL && strcmp(g_key, "transforms") == 0 &&
          strstr(g_err, "Duplicate alias"));
    cn_chain_t *c = chain("");
    CHECK(c && cn_chain_size(c) == 0);
    cn_chain_free(c);
}

static void test_bytes_survive_and_validation(void)
{
    /* A BYTES value untouched by the chain comes out as the same bytes. */
    cn_record_t r;
    char err[512];
    bool bad_key;
    samsa_connect_value_t k = {SAMSA_VALUE_NULL, NULL, 0, NULL};
    samsa_connect_value_t v = {SAMSA_VALUE_BYTES, "\x00\xff\x01", 3, NULL};
    CHECK(cn_record_init(&r, "t", 0, 0, -1, &k, &v, NULL, 0, &bad_key, err, sizeof err) == 0);
    CHECK(run("transforms=i\ntransforms.i.type=InsertHeader\ntransforms.i.header=a\ntransforms.i.value.literal=b\n",
              &r, err, sizeof err) == 1);
    cn_value_t ko, vo;
    CHECK(cn_record_export(&r, &ko, &vo, err, sizeof err) == 0);
    CHECK(vo.v.kind == SAMSA_VALUE_BYTES && vo.v.len == 3 && memcmp(vo.v.data, "\x00\xff\x01", 3) == 0);
    CHECK(r.nhdrs == 1 && strcmp(r.view[0].key, "a") == 0 && r.view[0].len == 1);
    cn_value_free(&ko);
    cn_value_free(&vo);
    cn_record_free(&r);
    /* Hoisted bytes become base64 (the JsonConverter's form), with or without a schema. */
    CHECK(cn_record_init(&r, "t", 0, 0, -1, &k, &v, NULL, 0, &bad_key, err, sizeof err) == 0);
    CHECK(run("transforms=h\ntransforms.h.type=HoistField$Value\ntransforms.h.field=b\n", &r, err, sizeof err) == 1);
    CHECK(json_eq_text(r.value, "{\"b\":\"AP8B\"}"));
    CHECK(cn_record_export(&r, &ko, &vo, err, sizeof err) == 0 && vo.v.kind == SAMSA_VALUE_JSON);
    cn_value_free(&ko);
    cn_value_free(&vo);
    cn_record_free(&r);
    /* A non-UTF-8 string moved inside a struct cannot be written: an error, not a crash. */
    samsa_connect_value_t latin = {SAMSA_VALUE_STRING, "\xe9t\xe9", 3, NULL};
    CHECK(cn_record_init(&r, "t", 0, 0, -1, &k, &latin, NULL, 0, &bad_key, err, sizeof err) == 0);
    CHECK(run("transforms=h\ntransforms.h.type=HoistField$Value\ntransforms.h.field=s\n", &r, err, sizeof err) == 1);
    CHECK(cn_record_export(&r, &ko, &vo, err, sizeof err) == -1 && strstr(err, "UTF-8"));
    CHECK(run("transforms=c\ntransforms.c.type=Cast$Value\ntransforms.c.spec=s:string\n", &r, err, sizeof err) == 1);
    CHECK(run("transforms=hf\ntransforms.hf.type=HeaderFrom$Value\ntransforms.hf.fields=s\n"
              "transforms.hf.headers=h\ntransforms.hf.operation=copy\n", &r, err, sizeof err) == 1);
    CHECK(cn_record_header(&r, "h") && cn_record_header(&r, "h")->len == 3);
    cn_record_free(&r);
    samsa_connect_value_t bad = {SAMSA_VALUE_JSON, "{nope", 5, NULL};
    CHECK(cn_record_init(&r, "t", 0, 0, -1, &k, &bad, NULL, 0, &bad_key, err, sizeof err) == -1 && !bad_key);

    /* Connector validation reports the transform's key. */
    cn_worker_t w = {0};
    w.plugins = cn_plugins_new(NULL);
    const samsa_connect_plugin_t *src = cn_plugins_find(w.plugins, "FileStreamSource");
    json_t *cfg = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", "n", "connector.class", "FileStreamSource",
                            "topic", "t", "transforms", "r", "transforms.r.type", "RegexRouter",
                            "transforms.r.regex", "[");
    int nerr;
    json_t *infos = cn_validate(&w, src, cfg, &nerr);
    CHECK_EQ(nerr, 1); /* the first problem of the chain, on its key */
    char *msg = cn_validate_message(infos, nerr);
    CHECK(strstr(msg, "transforms.r.regex") != NULL);
    free(msg);
    json_decref(infos);
    json_object_set_new(cfg, "transforms.r.regex", json_string("(.*)"));
    json_object_set_new(cfg, "transforms.r.replacement", json_string("x-$1"));
    infos = cn_validate(&w, src, cfg, &nerr);
    CHECK_EQ(nerr, 0);
    json_decref(infos);
    json_decref(cfg);
    const samsa_connect_plugin_t *sink = cn_plugins_find(w.plugins, "FileStreamSink");
    cfg = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "n", "connector.class", "FileStreamSink", "topics", "a,b",
                    "file", "/tmp/x", "errors.deadletterqueue.topic.name", "b");
    infos = cn_validate(&w, sink, cfg, &nerr);
    CHECK_EQ(nerr, 1);
    json_decref(infos);
    json_decref(cfg);
    cn_plugins_free(w.plugins);
}

static void test_errors_and_retries(void)
{
    cn_errh_t e = {0};
    snprintf(e.task_name, sizeof e.task_name, "c-0");
    char fatal[512] = "";
    cn_err_rec_t er = {.topic = "t", .partition = 0, .offset = 5};
    CHECK(!cn_errh_report(&e, "VALUE_CONVERTER", "X", "bad", &er, fatal, sizeof fatal));
    CHECK(strstr(fatal, "Tolerance exceeded in error handler") && strstr(fatal, "bad") && strstr(fatal, "VALUE_CONVERTER"));
    e.tolerate_all = true;
    fatal[0] = 0;
    CHECK(cn_errh_report(&e, "TRANSFORMATION", "X", "bad", &er, fatal, sizeof fatal) && !fatal[0]);
    char err[64];
    CHECK(cn_errh_flush(&e, err, sizeof err)); /* no DLQ: nothing to flush */

    cn_retry_t r;
    e.retry_timeout_ms = 0;
    cn_retry_start(&r, &e);
    CHECK(!cn_retry_again(&r, NULL)); /* 0: no retries */
    e.retry_timeout_ms = 1000;
    e.retry_delay_max_ms = 400;
    cn_retry_start(&r, &e);
    int64_t t0 = cn_now_ms();
    int n = 0;
    while (cn_retry_again(&r, NULL))
        n++;
    int64_t took = cn_now_ms() - t0;
    /* 300, then capped at 400, 400 ... within 1 s: 3 attempts (the last one cut short). */
    CHECK(n == 3);
    CHECK(took >= 950 && took < 1500);
}

int main(void)
{
    cn_log_init();
    RUN(test_insert_field);
    RUN(test_replace_field);
    RUN(test_mask_field);
    RUN(test_cast);
    RUN(test_extract_hoist);
    RUN(test_value_to_key_and_flatten);
    RUN(test_routers);
    RUN(test_timestamp_converter);
    RUN(test_headers_and_filter);
    RUN(test_predicates);
    RUN(test_bytes_survive_and_validation);
    RUN(test_errors_and_retries);
    TEST_MAIN_END();
}
