/*
 * test_metrics.c - the pure parts of the metrics listener: the HTTP request
 * head parser (src/broker/http.c), the latency histogram and its quantiles
 * (src/core/histo.c), error names, and the generated walkers that count a
 * response's error codes (tools/protogen.py, sm_<response>_errors).
 */
#include "histo.h"
#include "http.h"
#include "metrics.h"
#include "sm_proto_gen.h"
#include "sm_test.h"

#include <math.h>

static sm_http_parse_t parse(const char *s, sm_http_req_t *r)
{
    return sm_http_parse(s, strlen(s), r);
}

static void test_http_parse(void)
{
    sm_http_req_t r;
    CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &r), SM_HTTP_DONE);
    CHECK(r.method_len == 3 && memcmp(r.method, "GET", 3) == 0);
    CHECK(r.path_len == 8 && memcmp(r.path, "/metrics", 8) == 0);
    CHECK(!r.head);
    CHECK_EQ(parse("HEAD /health?x=1&y HTTP/1.0\r\n\r\n", &r), SM_HTTP_DONE);
    CHECK(r.head && r.path_len == 7 && memcmp(r.path, "/health", 7) == 0);
    CHECK_EQ(parse("POST /metrics HTTP/1.1\r\n\r\n", &r), SM_HTTP_DONE); /* 405 is the server's */
    /* not finished yet */
    CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), SM_HTTP_INCOMPLETE);
    CHECK_EQ(parse("", &r), SM_HTTP_INCOMPLETE);
    /* malformed */
    CHECK_EQ(parse("garbage\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET metrics HTTP/1.1\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /metrics HTTP/2.0\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /metrics HTTP/1.1 extra\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET  /metrics HTTP/1.1\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /me\x01trics HTTP/1.1\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nX: a\x7f\r\n\r\n", &r), SM_HTTP_BAD);
    CHECK_EQ(parse("\r\n\r\n", &r), SM_HTTP_BAD);
}

static bool near(double a, double b) { return fabs(a - b) < 1e-9 * (1 + fabs(b)); }

static void test_histo(void)
{
    sm_histo_t h = {0};
    CHECK(sm_histo_quantile_ms(&h, 0.99) == 0);
    CHECK_EQ(sm_histo_bucket(0), 0);
    CHECK_EQ(sm_histo_bucket(50), 0);  /* le is inclusive */
    CHECK_EQ(sm_histo_bucket(51), 1);
    CHECK_EQ(sm_histo_bucket(30000000), SM_HISTO_NBUCKETS - 2);
    CHECK_EQ(sm_histo_bucket(30000001), SM_HISTO_NBUCKETS - 1);
    /* 100 values in (1, 2.5] ms: quantiles interpolate inside that bucket */
    for (int i = 0; i < 100; i++)
        sm_histo_record_us(&h, 2000);
    CHECK_EQ(sm_histo_count(&h), 100);
    CHECK_EQ(h.sum_us, 200000);
    CHECK(near(sm_histo_quantile_ms(&h, 0.5), 1.75));
    CHECK(near(sm_histo_quantile_ms(&h, 1.0), 2.5));
    /* one slow value moves p999 but not p50 */
    sm_histo_record_us_1w(&h, 700000); /* (500, 1000] ms */
    CHECK(sm_histo_quantile_ms(&h, 0.5) < 2.5);
    CHECK(sm_histo_quantile_ms(&h, 0.999) > 500 && sm_histo_quantile_ms(&h, 0.999) <= 1000);
    /* beyond the last edge: reported as the last finite edge */
    sm_histo_t big = {0};
    sm_histo_record_us(&big, 100000000);
    CHECK(near(sm_histo_quantile_ms(&big, 0.5), 30000));
    sm_histo_t sum = {0};
    sm_histo_add_snapshot(&sum, &h);
    sm_histo_add_snapshot(&sum, &big);
    CHECK_EQ(sm_histo_count(&sum), 102);
    CHECK_EQ(strcmp(sm_histo_edges_ms_text[0], "0.05"), 0);
    for (int i = 1; i < SM_HISTO_NBUCKETS - 1; i++) {
        CHECK(sm_histo_edges_us[i] > sm_histo_edges_us[i - 1]);
        CHECK(near(strtod(sm_histo_edges_ms_text[i], NULL) * 1000, (double)sm_histo_edges_us[i]));
    }
}

static void test_error_names(void)
{
    CHECK_EQ(strcmp(sm_metrics_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION"), 0);
    CHECK_EQ(strcmp(sm_metrics_error_name(-1), "UNKNOWN_SERVER_ERROR"), 0);
    CHECK(sm_metrics_error_name(9999) == NULL);
}

static int g_errs[200];
static void count_err(void *arg, int16_t code)
{
    (*(int *)arg)++;
    g_errs[code + 1]++;
}

static void test_response_error_walker(void)
{
    sm_produce_response_t resp;
    sm_produce_response_init(&resp);
    sm_produce_response_topic_produce_response_t topics[2];
    sm_produce_response_partition_produce_response_t parts[3];
    for (int i = 0; i < 2; i++)
        sm_produce_response_topic_produce_response_init(&topics[i]);
    for (int i = 0; i < 3; i++)
        sm_produce_response_partition_produce_response_init(&parts[i]);
    parts[0].error_code = 3;
    parts[2].error_code = 10;
    topics[0].partition_responses = parts;
    topics[0].partition_responses_count = 2;
    topics[1].partition_responses = parts + 2;
    topics[1].partition_responses_count = 1;
    resp.responses = topics;
    resp.responses_count = 2;
    int n = 0;
    memset(g_errs, 0, sizeof g_errs);
    sm_produce_response_errors(&resp, count_err, &n);
    CHECK_EQ(n, 2);
    CHECK_EQ(g_errs[3 + 1], 1);
    CHECK_EQ(g_errs[10 + 1], 1);
    /* a null array (count -1) is skipped */
    resp.responses_count = -1;
    n = 0;
    sm_produce_response_errors(&resp, count_err, &n);
    CHECK_EQ(n, 0);
    /* top-level error code */
    sm_heartbeat_response_t hb;
    sm_heartbeat_response_init(&hb);
    hb.error_code = 27;
    n = 0;
    sm_heartbeat_response_errors(&hb, count_err, &n);
    CHECK_EQ(n, 1);
}

int main(void)
{
    RUN(test_http_parse);
    RUN(test_histo);
    RUN(test_error_names);
    RUN(test_response_error_walker);
    TEST_MAIN_END();
}
