/*
 * proto_rt.c - runtime helpers of the generated protocol codecs: length-checked
 * string/bytes/array readers for the classic and compact encodings, tagged-field
 * framing, header-version rules and the by-key entry points.
 *
 * Invariant kept by every reader: a length or count is accepted only if the
 * bytes it announces are still in the input, so a decode never allocates more
 * than (remaining bytes / minimal element size) elements. All functions are
 * pure and may run on any thread.
 */
#include "proto.h"

#include <stdio.h>

bool sm_str_eq(sm_str_t s, const char *cstr)
{
    if (s.len < 0 || cstr == NULL)
        return s.len < 0 && cstr == NULL;
    size_t n = strlen(cstr);
    return (size_t)s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

bool sm_str_equal(sm_str_t x, sm_str_t y)
{
    if (x.len != y.len)
        return false;
    return x.len <= 0 || memcmp(x.ptr, y.ptr, (size_t)x.len) == 0;
}

char *sm_str_dup(sm_arena_t *a, sm_str_t s)
{
    if (s.len < 0)
        return NULL;
    return sm_arena_strndup(a, s.len ? s.ptr : "", (size_t)s.len);
}

/* ---------------------------------------------------------------- readers */

static void fail(sm_rd_t *r)
{
    r->err = SM_ERR_PARSE;
    r->p = r->end;
}

/* Length prefix of a string/bytes/records field: -1 for null, else a length
 * that fits in what remains. classic16 selects the int16 string prefix. */
static int32_t rd_len(sm_rd_t *r, bool flex, bool classic16, bool nullable)
{
    int64_t len;
    if (flex)
        len = (int64_t)sm_rd_uvarint(r) - 1;
    else
        len = classic16 ? sm_rd_i16(r) : sm_rd_i32(r);
    if (r->err)
        return -1;
    if (len == -1) {
        if (!nullable)
            fail(r);
        return -1;
    }
    if (len < 0 || (uint64_t)len > sm_rd_remaining(r)) {
        fail(r);
        return -1;
    }
    return (int32_t)len;
}

void sm_proto_rd_str(sm_rd_t *r, bool flex, bool nullable, sm_str_t *out)
{
    int32_t n = rd_len(r, flex, true, nullable);
    if (r->err)
        return;
    out->len = n;
    out->ptr = n >= 0 ? (const char *)sm_rd_take(r, (size_t)n) : NULL;
}

void sm_proto_rd_bytes(sm_rd_t *r, bool flex, bool nullable, sm_bytes_t *out)
{
    int32_t n = rd_len(r, flex, false, nullable);
    if (r->err)
        return;
    out->len = n;
    out->ptr = n >= 0 ? sm_rd_take(r, (size_t)n) : NULL;
}

void sm_proto_rd_records(sm_rd_t *r, bool flex, bool nullable, sm_records_t *out)
{
    int32_t n = rd_len(r, flex, false, nullable);
    if (r->err)
        return;
    out->len = n;
    out->ptr = n >= 0 ? sm_rd_take(r, (size_t)n) : NULL;
    out->fd = -1;
    out->file_off = 0;
    out->ref = NULL;
}

void sm_proto_rd_uuid(sm_rd_t *r, sm_uuid_t *out)
{
    const uint8_t *p = sm_rd_take(r, 16);
    if (p)
        memcpy(out->b, p, 16);
}

int32_t sm_proto_rd_count(sm_rd_t *r, bool flex, bool nullable, size_t elem_min)
{
    int64_t n = flex ? (int64_t)sm_rd_uvarint(r) - 1 : sm_rd_i32(r);
    if (r->err)
        return 0;
    if (n == -1) {
        if (!nullable)
            fail(r);
        return -1;
    }
    if (n < 0 || (uint64_t)n > sm_rd_remaining(r) / (elem_min ? elem_min : 1)) {
        fail(r);
        return 0;
    }
    return (int32_t)n;
}

bool sm_proto_rd_tag(sm_rd_t *r, uint32_t *tag, sm_rd_t *body)
{
    *tag = sm_rd_uvarint(r);
    uint32_t size = sm_rd_uvarint(r);
    const uint8_t *p = r->err ? NULL : sm_rd_take(r, size);
    if (!p) {
        fail(r);
        return false;
    }
    sm_rd_init(body, p, size);
    return true;
}

void sm_proto_rd_skip_tags(sm_rd_t *r)
{
    uint32_t n = sm_rd_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        uint32_t tag;
        sm_rd_t body;
        if (!sm_proto_rd_tag(r, &tag, &body))
            return;
    }
}

/* ---------------------------------------------------------------- writers */

static void wr_len(sm_wbuf_t *w, bool flex, bool classic16, int32_t n)
{
    if (n < 0)
        n = -1;
    if (flex)
        sm_wbuf_uvarint(w, (uint64_t)((int64_t)n + 1));
    else if (classic16)
        sm_wbuf_i16(w, (int16_t)n);
    else
        sm_wbuf_i32(w, n);
}

void sm_proto_wr_str(sm_wbuf_t *w, bool flex, sm_str_t s)
{
    wr_len(w, flex, true, s.len);
    if (s.len > 0)
        sm_wbuf_bytes(w, s.ptr, (size_t)s.len);
}

void sm_proto_wr_bytes(sm_wbuf_t *w, bool flex, sm_bytes_t b)
{
    wr_len(w, flex, false, b.len);
    if (b.len > 0)
        sm_wbuf_bytes(w, b.ptr, (size_t)b.len);
}

void sm_proto_wr_records(sm_wbuf_t *w, bool flex, sm_records_t rec)
{
    wr_len(w, flex, false, rec.len);
    if (rec.len <= 0)
        return;
    if (rec.fd >= 0)
        sm_wbuf_splice(w, rec.fd, rec.file_off, rec.len, rec.ref);
    else
        sm_wbuf_bytes(w, rec.ptr, (size_t)rec.len);
}

void sm_proto_wr_count(sm_wbuf_t *w, bool flex, int32_t n)
{
    wr_len(w, flex, false, n);
}

void sm_proto_wr_tag_size(sm_wbuf_t *w, size_t at)
{
    size_t n = w->len - at;
    int k = sm_uvarint_size(n);
    sm_wbuf_space(w, (size_t)k);
    memmove(w->mem + at + k, w->mem + at, n);
    /* encode the varint in place */
    uint64_t v = n;
    for (int i = 0; i < k; i++) {
        w->mem[at + i] = (uint8_t)((v & 0x7f) | (i + 1 < k ? 0x80 : 0));
        v >>= 7;
    }
    w->len += (size_t)k;
    /* splices added inside the tagged field moved with their bytes */
    for (int i = 0; i < w->nsplices; i++)
        if (w->splices[i].at > at)
            w->splices[i].at += (size_t)k;
}

/* ---------------------------------------------------------------- headers */

int16_t sm_request_header_version(int16_t api_key, int16_t api_version)
{
    const sm_api_desc_t *d = sm_api_desc(api_key);
    if (d && d->flexible_from >= 0 && api_version >= d->flexible_from)
        return 2;
    return 1;
}

int16_t sm_response_header_version(int16_t api_key, int16_t api_version)
{
    /* ApiVersions responses keep header v0 so that a client that does not
     * know the broker's versions can always parse them. */
    if (api_key == 18)
        return 0;
    const sm_api_desc_t *d = sm_api_desc(api_key);
    if (d && d->flexible_from >= 0 && api_version >= d->flexible_from)
        return 1;
    return 0;
}

/* ---------------------------------------------------------------- by key */

static sm_err_t decode_any(sm_proto_kind_t kind, int16_t key, int16_t version, sm_rd_t *r,
                           sm_arena_t *a, void **out)
{
    const sm_proto_msg_t *d = sm_proto_msg(kind, key);
    *out = NULL;
    if (!d || version < d->min_version || version > d->max_version)
        return SM_ERR_UNSUPPORTED;
    void *m = sm_arena_alloc(a, d->size);
    sm_err_t err = d->decode(r, a, version, m);
    if (err == SM_OK)
        *out = m;
    return err;
}

sm_err_t sm_request_decode_any(int16_t key, int16_t version, sm_rd_t *r, sm_arena_t *a, void **out)
{
    return decode_any(SM_PROTO_REQUEST, key, version, r, a, out);
}

sm_err_t sm_response_decode_any(int16_t key, int16_t version, sm_rd_t *r, sm_arena_t *a, void **out)
{
    return decode_any(SM_PROTO_RESPONSE, key, version, r, a, out);
}

void sm_request_encode_any(sm_wbuf_t *w, int16_t key, int16_t version, const void *m)
{
    const sm_proto_msg_t *d = sm_proto_msg(SM_PROTO_REQUEST, key);
    SM_ASSERT(d != NULL);
    d->encode(w, version, m);
}

void sm_response_encode_any(sm_wbuf_t *w, int16_t key, int16_t version, const void *m)
{
    const sm_proto_msg_t *d = sm_proto_msg(SM_PROTO_RESPONSE, key);
    SM_ASSERT(d != NULL);
    d->encode(w, version, m);
}

/* ---------------------------------------------------------------- tests */

bool sm_proto_test_fill_tagged = true;

void sm_proto_test_str(sm_arena_t *a, sm_str_t *s, uint32_t k)
{
    char *p = sm_arena_sprintf(a, "s%u", k);
    *s = sm_str(p);
}

void sm_proto_test_bytes(sm_arena_t *a, sm_bytes_t *b, uint32_t k)
{
    char *p = sm_arena_sprintf(a, "b%u", k);
    b->ptr = (const uint8_t *)p;
    b->len = (int32_t)strlen(p);
}

void sm_proto_test_records(sm_arena_t *a, sm_records_t *rec, uint32_t k)
{
    char *p = sm_arena_sprintf(a, "records-%u", k);
    rec->ptr = (const uint8_t *)p;
    rec->len = (int32_t)strlen(p);
    rec->fd = -1;
    rec->file_off = 0;
    rec->ref = NULL;
}

void sm_proto_test_uuid(sm_uuid_t *u, uint32_t k)
{
    for (int i = 0; i < 16; i++)
        u->b[i] = (uint8_t)(k + (uint32_t)i);
}

bool sm_proto_test_eq_bytes(const void *x, int32_t xlen, const void *y, int32_t ylen)
{
    if (xlen != ylen)
        return false;
    return xlen <= 0 || memcmp(x, y, (size_t)xlen) == 0;
}

bool sm_proto_test_mismatch(const char *what)
{
    fprintf(stderr, "proto mismatch: %s\n", what);
    return false;
}
