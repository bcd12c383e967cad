/*
 * test_proto.c - generated protocol codecs: every message at every version
 * round-trips (fill with non-default values, encode, decode, compare field by
 * field, re-encode and compare bytes), every truncation of those encodings is
 * a parse error, and a few hand-checked byte vectors pin the wire format
 * (classic and compact lengths, tagged fields, header versions).
 */
#include "sm_proto_gen.h"
#include "sm_test.h"

/* Decode buf as message d at version v into a fresh struct from arena a. */
static sm_err_t decode_msg(const sm_proto_msg_t *d, int16_t v, const uint8_t *buf, size_t len,
                           sm_arena_t *a, void **out, size_t *left)
{
    sm_rd_t r;
    sm_rd_init(&r, buf, len);
    *out = sm_arena_alloc(a, d->size);
    sm_err_t err = d->decode(&r, a, v, *out);
    if (left)
        *left = sm_rd_remaining(&r);
    return err;
}

static void test_roundtrip_all(void)
{
    int checked = 0;
    for (size_t i = 0; i < sm_proto_msgs_count; i++) {
        const sm_proto_msg_t *d = &sm_proto_msgs[i];
        for (int16_t v = d->min_version; v <= d->max_version; v++) {
            sm_arena_t a;
            sm_arena_init(&a);
            sm_wbuf_t w1, w2;
            sm_wbuf_init(&w1);
            sm_wbuf_init(&w2);

            void *m = sm_arena_alloc(&a, d->size);
            d->test_fill(m, &a, v);
            d->encode(&w1, v, m);

            void *m2;
            size_t left = 99;
            sm_err_t err = decode_msg(d, v, w1.mem, w1.len, &a, &m2, &left);
            bool ok = err == SM_OK && left == 0 && d->test_equal(m, m2);
            if (ok) {
                d->encode(&w2, v, m2);
                ok = w1.len == w2.len && (w1.len == 0 || memcmp(w1.mem, w2.mem, w1.len) == 0);
            }
            if (!ok)
                fprintf(stderr, "round trip failed: %s v%d (err %d, left %zu)\n", d->name, v, err,
                        left);
            CHECK(ok);

            /* every proper prefix is truncated input */
            int bad = 0;
            for (size_t n = 0; n < w1.len; n++) {
                sm_arena_reset(&a);
                void *m3;
                if (decode_msg(d, v, w1.mem, n, &a, &m3, NULL) != SM_ERR_PARSE)
                    bad++;
            }
            if (bad)
                fprintf(stderr, "truncation accepted: %s v%d (%d lengths)\n", d->name, v, bad);
            CHECK_EQ(bad, 0);

            /* a default-initialised message round-trips too */
            sm_arena_reset(&a);
            sm_wbuf_reset(&w1);
            sm_wbuf_reset(&w2);
            m = sm_arena_alloc(&a, d->size);
            d->init(m);
            d->encode(&w1, v, m);
            err = decode_msg(d, v, w1.mem, w1.len, &a, &m2, &left);
            ok = err == SM_OK && left == 0 && d->test_equal(m, m2);
            if (!ok)
                fprintf(stderr, "default round trip failed: %s v%d\n", d->name, v);
            CHECK(ok);

            sm_wbuf_free(&w1);
            sm_wbuf_free(&w2);
            sm_arena_free(&a);
            checked++;
        }
        /* versions outside the valid range are refused */
        sm_arena_t a;
        sm_arena_init(&a);
        void *m;
        uint8_t zero[64] = {0};
        CHECK_EQ(decode_msg(d, (int16_t)(d->max_version + 1), zero, sizeof zero, &a, &m, NULL),
                 SM_ERR_UNSUPPORTED);
        CHECK_EQ(decode_msg(d, -1, zero, sizeof zero, &a, &m, NULL), SM_ERR_UNSUPPORTED);
        sm_arena_free(&a);
    }
    fprintf(stderr, "   %zu messages, %d message versions\n", sm_proto_msgs_count, checked);
    CHECK(checked > 300);
}

/* An ApiVersions v3 request frame body as librdkafka sends it: header v2 with
 * a classic (int16) client id and an empty tag section, then compact strings. */
static const uint8_t apiversions_v3[] = {
    0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,          /* key 18, v3, correlation 1 */
    0x00, 0x07, 'r', 'd', 'k', 'a', 'f', 'k', 'a',           /* client id (int16 length) */
    0x00,                                                    /* header tags */
    0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a',  /* compact "librdkafka" */
    0x06, '2', '.', '3', '.', '0',                           /* compact "2.3.0" */
    0x00,                                                    /* body tags */
};

static void test_apiversions_request_v3(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t r;
    sm_rd_init(&r, apiversions_v3, sizeof apiversions_v3);
    sm_request_header_t h;
    CHECK_EQ(sm_request_header_decode(&r, &a, sm_request_header_version(18, 3), &h), SM_OK);
    CHECK_EQ(h.request_api_key, SM_API_API_VERSIONS);
    CHECK_EQ(h.request_api_version, 3);
    CHECK_EQ(h.correlation_id, 1);
    CHECK(sm_str_eq(h.client_id, "rdkafka"));
    sm_api_versions_request_t q;
    CHECK_EQ(sm_api_versions_request_decode(&r, &a, 3, &q), SM_OK);
    CHECK(sm_str_eq(q.client_software_name, "librdkafka"));
    CHECK(sm_str_eq(q.client_software_version, "2.3.0"));
    CHECK_EQ(sm_rd_remaining(&r), 0);

    /* and encoding the same structs gives the same bytes */
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_request_header_encode(&w, 2, &h);
    sm_api_versions_request_encode(&w, 3, &q);
    CHECK_EQ(w.len, sizeof apiversions_v3);
    CHECK(w.len == sizeof apiversions_v3 && memcmp(w.mem, apiversions_v3, w.len) == 0);

    /* an unknown tagged field in the body is skipped */
    static const uint8_t with_tag[] = {0x01, 0x01, 0x01, 0x07, 0x03, 'x', 'y', 'z'};
    sm_rd_init(&r, with_tag, sizeof with_tag);
    CHECK_EQ(sm_api_versions_request_decode(&r, &a, 3, &q), SM_OK);
    CHECK(sm_str_eq(q.client_software_name, ""));
    CHECK_EQ(sm_rd_remaining(&r), 0);
    /* a tagged field claiming more bytes than remain is an error */
    static const uint8_t bad_tag[] = {0x01, 0x01, 0x01, 0x07, 0x09, 'x'};
    sm_rd_init(&r, bad_tag, sizeof bad_tag);
    CHECK_EQ(sm_api_versions_request_decode(&r, &a, 3, &q), SM_ERR_PARSE);
    sm_wbuf_free(&w);
    sm_arena_free(&a);
}

static void test_metadata_request_v1(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_metadata_request_t q;
    sm_rd_t r;

    static const uint8_t one[] = {0, 0, 0, 1, 0, 4, 't', 'e', 's', 't'};
    sm_rd_init(&r, one, sizeof one);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 1, &q), SM_OK);
    CHECK_EQ(q.topics_count, 1);
    CHECK(sm_str_eq(q.topics[0].name, "test"));

    /* v1: null topics = all topics; v0 does not allow null */
    static const uint8_t null_topics[] = {0xff, 0xff, 0xff, 0xff};
    sm_rd_init(&r, null_topics, sizeof null_topics);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 1, &q), SM_OK);
    CHECK_EQ(q.topics_count, -1);
    sm_rd_init(&r, null_topics, sizeof null_topics);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 0, &q), SM_ERR_PARSE);

    /* a null topic name is not allowed in v1 (nullable only from v10) */
    static const uint8_t null_name[] = {0, 0, 0, 1, 0xff, 0xff};
    sm_rd_init(&r, null_name, sizeof null_name);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 1, &q), SM_ERR_PARSE);
    /* negative lengths other than -1 */
    static const uint8_t neg[] = {0, 0, 0, 1, 0xff, 0xfe, 'x', 'x'};
    sm_rd_init(&r, neg, sizeof neg);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 1, &q), SM_ERR_PARSE);

    /* the memory-bomb rule: a count larger than the remaining bytes */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 1, 'x'};
    sm_rd_init(&r, huge, sizeof huge);
    size_t before = a.total;
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 1, &q), SM_ERR_PARSE);
    CHECK(a.total - before < 4096);
    /* compact form: uvarint 0xffffffff - 1 elements */
    static const uint8_t huge_compact[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0};
    sm_rd_init(&r, huge_compact, sizeof huge_compact);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 12, &q), SM_ERR_PARSE);
    /* a varint longer than 5 bytes */
    static const uint8_t bad_varint[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    sm_rd_init(&r, bad_varint, sizeof bad_varint);
    CHECK_EQ(sm_metadata_request_decode(&r, &a, 12, &q), SM_ERR_PARSE);

    /* encoding matches the hand-written bytes */
    sm_metadata_request_init(&q);
    sm_metadata_request_metadata_request_topic_t t;
    sm_metadata_request_metadata_request_topic_init(&t);
    t.name = sm_str("test");
    q.topics = &t;
    q.topics_count = 1;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_metadata_request_encode(&w, 1, &q);
    CHECK(w.len == sizeof one && memcmp(w.mem, one, sizeof one) == 0);
    sm_wbuf_free(&w);
    sm_arena_free(&a);
}

/* ApiVersionsResponse v3 with one API and the tagged FinalizedFeaturesEpoch. */
static void test_tagged_field(void)
{
    static const uint8_t bytes[] = {
        0x00, 0x00,                               /* error code */
        0x02, 0x00, 0x12, 0x00, 0x00, 0x00, 0x04, /* 1 api: key 18, 0..4 */
        0x00,                                     /* element tags */
        0x00, 0x00, 0x00, 0x00,                   /* throttle */
        0x01, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 5, /* 1 tag: tag 1, 8 bytes, epoch 5 */
    };
    sm_api_versions_response_t m;
    sm_api_versions_response_init(&m);
    CHECK_EQ(m.finalized_features_epoch, -1);
    sm_api_versions_response_api_version_t k = {.api_key = 18, .min_version = 0, .max_version = 4};
    m.api_keys = &k;
    m.api_keys_count = 1;
    m.finalized_features_epoch = 5;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_api_versions_response_encode(&w, 3, &m);
    CHECK(w.len == sizeof bytes && memcmp(w.mem, bytes, sizeof bytes) == 0);

    sm_arena_t a;
    sm_arena_init(&a);
    sm_rd_t r;
    sm_rd_init(&r, bytes, sizeof bytes);
    sm_api_versions_response_t d;
    CHECK_EQ(sm_api_versions_response_decode(&r, &a, 3, &d), SM_OK);
    CHECK_EQ(d.finalized_features_epoch, 5);
    CHECK_EQ(d.api_keys_count, 1);
    CHECK_EQ(d.api_keys[0].max_version, 4);
    CHECK_EQ(d.supported_features_count, 0);

    /* the default is not written: no tags */
    m.finalized_features_epoch = -1;
    sm_wbuf_reset(&w);
    sm_api_versions_response_encode(&w, 3, &m);
    CHECK_EQ(w.len, sizeof bytes - 10);
    CHECK_EQ(w.mem[w.len - 1], 0);
    sm_wbuf_free(&w);
    sm_arena_free(&a);
}

static void test_records_splice(void)
{
    sm_fetch_response_fetchable_topic_response_t t;
    sm_fetch_response_fetchable_topic_response_init(&t);
    sm_fetch_response_partition_data_t p;
    sm_fetch_response_partition_data_init(&p);
    CHECK_EQ(p.records.len, -1);
    CHECK_EQ(p.records.fd, -1);
    CHECK_EQ(p.last_stable_offset, -1);
    CHECK_EQ(p.preferred_read_replica, -1);
    CHECK_EQ(p.aborted_transactions_count, 0); /* nullable without a default: empty */
    p.records.fd = 7;
    p.records.file_off = 4096;
    p.records.len = 300;
    t.partitions = &p;
    t.partitions_count = 1;
    sm_fetch_response_t m;
    sm_fetch_response_init(&m);
    m.responses = &t;
    m.responses_count = 1;
    sm_wbuf_t w;
    sm_wbuf_init(&w);
    sm_fetch_response_encode(&w, 12, &m);
    CHECK_EQ(w.nsplices, 1);
    CHECK_EQ(w.splice_bytes, 300);
    CHECK_EQ(w.splices[0].fd, 7);
    CHECK_EQ(w.splices[0].off, 4096);
    /* compact length 301 = 0xad 0x02 just before the splice point */
    CHECK(w.splices[0].at >= 2 && w.mem[w.splices[0].at - 2] == 0xad &&
          w.mem[w.splices[0].at - 1] == 0x02);
    sm_wbuf_free(&w);
}

static void test_header_versions(void)
{
    CHECK_EQ(sm_request_header_version(SM_API_PRODUCE, 8), 1);
    CHECK_EQ(sm_request_header_version(SM_API_PRODUCE, 9), 2);
    CHECK_EQ(sm_request_header_version(SM_API_API_VERSIONS, 3), 2);
    CHECK_EQ(sm_response_header_version(SM_API_API_VERSIONS, 3), 0);
    CHECK_EQ(sm_response_header_version(SM_API_METADATA, 8), 0);
    CHECK_EQ(sm_response_header_version(SM_API_METADATA, 9), 1);
    CHECK_EQ(sm_response_header_version(SM_API_SASL_HANDSHAKE, 1), 0);
    const sm_api_desc_t *d = sm_api_desc(SM_API_FETCH);
    CHECK(d && d->min_version == 0 && d->max_version >= 12 && d->flexible_from == 12);
    CHECK(sm_api_desc(9999) == NULL);
    CHECK(sm_api_desc(-1) == NULL);
    CHECK_EQ(SM_METADATA_TOPIC_RECORD, 2);
    CHECK_EQ(SM_METADATA_PARTITION_RECORD, 3);
    CHECK(sm_proto_msg(SM_PROTO_RECORD, SM_METADATA_TOPIC_RECORD) != NULL);
}

static void test_str_helpers(void)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_str_t n = sm_str(NULL), e = sm_str(""), s = sm_str_n("abcdef", 3);
    CHECK_EQ(n.len, -1);
    CHECK(sm_str_eq(n, NULL));
    CHECK(!sm_str_eq(n, ""));
    CHECK(sm_str_eq(e, ""));
    CHECK(sm_str_eq(s, "abc"));
    CHECK(!sm_str_eq(s, "abcd"));
    CHECK(sm_str_dup(&a, n) == NULL);
    CHECK(strcmp(sm_str_dup(&a, s), "abc") == 0);
    sm_str_t zero = {NULL, 0};
    CHECK(strcmp(sm_str_dup(&a, zero), "") == 0);
    sm_arena_free(&a);
}

int main(void)
{
    RUN(test_roundtrip_all);
    RUN(test_apiversions_request_v3);
    RUN(test_metadata_request_v1);
    RUN(test_tagged_field);
    RUN(test_records_splice);
    RUN(test_header_versions);
    RUN(test_str_helpers);
    TEST_MAIN_END();
}
