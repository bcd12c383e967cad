/*
 * fuzz_request.c - libFuzzer target for the request decoders.
 *
 * Input: a request frame body as it follows the int32 size on the wire:
 * int16 api key, int16 api version, the rest of the request header, then the
 * request body. The header is decoded at the version the API key/version
 * call for, then the body with the generated decoder of that API.
 *
 * Oracle, besides the sanitizers: whatever decodes must re-encode, the
 * re-encoding must decode to an equal struct, and encoding that again must give
 * identical bytes (encode . decode is a fixed point after one step; the first
 * step may normalise non-canonical input such as unknown tags or bool 2).
 * Built with clang -fsanitize=fuzzer (tests/fuzz/run.sh) and, with any
 * compiler, as fuzz_request_replay that replays the committed corpus in ctest.
 */
#include "sm_proto_gen.h"

#include <stdio.h>
#include <stdlib.h>

static void must(bool cond, const char *what, int16_t key, int16_t version)
{
    if (!cond) {
        fprintf(stderr, "fuzz_request: %s (api %d v%d)\n", what, key, version);
        abort();
    }
}

/* Decode header+body from buf; returns false if the input is rejected. */
static bool decode_frame(const uint8_t *buf, size_t len, sm_arena_t *a, sm_request_header_t *h,
                         void **body, size_t *left)
{
    if (len < 4)
        return false;
    int16_t key = (int16_t)((buf[0] << 8) | buf[1]);
    int16_t version = (int16_t)((buf[2] << 8) | buf[3]);
    if (!sm_api_desc(key))
        return false;
    sm_rd_t r;
    sm_rd_init(&r, buf, len);
    if (sm_request_header_decode(&r, a, sm_request_header_version(key, version), h) != SM_OK)
        return false;
    if (sm_request_decode_any(key, version, &r, a, body) != SM_OK)
        return false;
    *left = sm_rd_remaining(&r);
    return true;
}

static void encode_frame(sm_wbuf_t *w, const sm_request_header_t *h, const void *body)
{
    int16_t key = h->request_api_key, version = h->request_api_version;
    sm_request_header_encode(w, sm_request_header_version(key, version), h);
    sm_request_encode_any(w, key, version, body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sm_arena_t a;
    sm_arena_init(&a);
    sm_request_header_t h;
    void *body;
    size_t left;
    if (decode_frame(data, size, &a, &h, &body, &left)) {
        int16_t key = h.request_api_key, version = h.request_api_version;
        const sm_proto_msg_t *d = sm_proto_msg(SM_PROTO_REQUEST, key);
        sm_wbuf_t w1, w2;
        sm_wbuf_init(&w1);
        sm_wbuf_init(&w2);
        encode_frame(&w1, &h, body);
        must(w1.nsplices == 0, "decoded records must not splice", key, version);

        sm_request_header_t h2;
        void *body2;
        size_t left2;
        must(decode_frame(w1.mem, w1.len, &a, &h2, &body2, &left2), "re-encoding does not decode",
             key, version);
        must(left2 == 0, "re-encoding has trailing bytes", key, version);
        must(h2.correlation_id == h.correlation_id && sm_str_equal(h2.client_id, h.client_id),
             "header changed", key, version);
        must(d->test_equal(body, body2), "decoded struct changed", key, version);
        encode_frame(&w2, &h2, body2);
        must(w1.len == w2.len && (w1.len == 0 || memcmp(w1.mem, w2.mem, w1.len) == 0),
             "encoding not stable", key, version);
        sm_wbuf_free(&w1);
        sm_wbuf_free(&w2);
    }
    sm_arena_free(&a);
    return 0;
}
