/*
 * proto.h - runtime types and helpers of the generated Kafka protocol codecs.
 *
 * tools/protogen.py turns the .def files of src/proto/defs into sm_proto_gen.[ch]; the
 * generated code reads with sm_rd_t and writes into sm_wbuf_t (core/buf.h)
 * through the small helpers declared here. Include "sm_proto_gen.h" to use the
 * codecs; it includes this file.
 *
 * Wire encodings (Kafka protocol guide): classic versions use int16-length
 * strings, int32-length bytes/records and int32 array counts, with -1 meaning
 * null; flexible versions use "compact" forms whose length is an unsigned
 * varint holding length+1 (0 = null), and end every struct with a tagged-field
 * section: uvarint count, then per field uvarint tag, uvarint size, data.
 *
 * Ownership: decoded sm_str_t / sm_bytes_t / sm_records_t are views into the
 * reader's buffer (borrowed; the buffer must outlive them); decoded arrays live
 * in the caller's arena. Nothing here allocates with malloc. Decoders never
 * trust a length: every count and length is checked against the bytes that
 * remain, so a small frame cannot make the decoder allocate a lot of memory.
 *
 * Thread safety: every function here is pure and may run on any thread.
 */
#ifndef SM_PROTO_H
#define SM_PROTO_H

#include "arena.h"
#include "buf.h"
#include "ref.h"
#include "sm_common.h"

#include <string.h>

/* A string: len -1 = null. NOT NUL-terminated; a borrowed view. */
typedef struct {
    const char *ptr;
    int32_t len;
} sm_str_t;

/* Opaque bytes: len -1 = null; a borrowed view. */
typedef struct {
    const uint8_t *ptr;
    int32_t len;
} sm_bytes_t;

typedef struct {
    uint8_t b[16];
} sm_uuid_t;

/*
 * Record batches. len -1 = null. Decoding gives a view of the input (fd -1).
 * Encoding writes the length prefix and then, if fd >= 0, splices len bytes of
 * fd at file_off into the writer (sent later with sendfile; the splice keeps a
 * reference on ref), else copies ptr/len.
 */
typedef struct {
    const uint8_t *ptr;
    int32_t len;
    int fd;
    int64_t file_off;
    sm_ref_t *ref;
} sm_records_t;

/* View of a C string (NULL -> null string). */
static inline sm_str_t sm_str(const char *cstr)
{
    sm_str_t s = {cstr, cstr ? (int32_t)strlen(cstr) : -1};
    return s;
}
/* View of n bytes (not copied). */
static inline sm_str_t sm_str_n(const char *p, int32_t n)
{
    sm_str_t s = {p, n};
    return s;
}
/* True if s equals the C string (a null s equals only NULL). */
bool sm_str_eq(sm_str_t s, const char *cstr);
/* True if both are null or both have the same bytes. */
bool sm_str_equal(sm_str_t x, sm_str_t y);
/* NUL-terminated copy in the arena; NULL if s is null. */
char *sm_str_dup(sm_arena_t *a, sm_str_t s);

static inline bool sm_uuid_is_zero(sm_uuid_t u)
{
    static const uint8_t zero[16];
    return memcmp(u.b, zero, 16) == 0;
}

/* ---------------------------------------------------------------- tables */

typedef struct sm_api_desc {
    int16_t key;
    const char *name;
    int16_t min_version, max_version;
    int16_t flexible_from; /* -1 if never flexible */
    /* Listeners Kafka serves the API on (SM_API_LISTENER_*), from the .def's listeners=;
     * 0 when the .def does not say (the client APIs defined before the cluster ones). */
    uint8_t listeners;
} sm_api_desc_t;

enum { SM_API_LISTENER_BROKER = 1, SM_API_LISTENER_CONTROLLER = 2 };

typedef enum sm_proto_kind {
    SM_PROTO_REQUEST,
    SM_PROTO_RESPONSE,
    SM_PROTO_HEADER,
    SM_PROTO_RECORD, /* KRaft metadata record; key = record type */
    SM_PROTO_DATA,   /* other versioned data (coordinator records, consumer protocol) */
    SM_PROTO_CONTROL, /* value of a Raft control record; key = control record type */
} sm_proto_kind_t;

/* A type-erased view of one generated message, for tests, fuzzers and tools. */
typedef struct sm_proto_msg {
    const char *name;
    sm_proto_kind_t kind;
    int16_t key; /* api key, metadata or control record type, or -1 */
    int16_t min_version, max_version, flexible_from;
    size_t size; /* sizeof the message struct */
    void (*init)(void *m);
    sm_err_t (*decode)(sm_rd_t *r, sm_arena_t *a, int16_t version, void *m);
    void (*encode)(sm_wbuf_t *w, int16_t version, const void *m);
    /* Test support: set every field present in version to a non-default value
     * (strings and arrays from the arena); compare two messages field by field,
     * printing the first differing field to stderr. */
    void (*test_fill)(void *m, sm_arena_t *a, int16_t version);
    bool (*test_equal)(const void *x, const void *y);
} sm_proto_msg_t;

/* Defined in the generated code. */
const sm_api_desc_t *sm_api_desc(int16_t api_key); /* NULL if not defined */
/* Requests, responses, metadata records and control records by key; NULL if not defined. */
const sm_proto_msg_t *sm_proto_msg(sm_proto_kind_t kind, int16_t key);

/* Request header version for an API version: 2 for flexible versions, else 1. */
int16_t sm_request_header_version(int16_t api_key, int16_t api_version);
/* Response header version: 1 for flexible versions, else 0; ApiVersions always 0. */
int16_t sm_response_header_version(int16_t api_key, int16_t api_version);

/* Allocate the request (or response) struct of key from the arena and decode it.
 * SM_ERR_UNSUPPORTED for an unknown key or version, SM_ERR_PARSE for bad bytes. */
SM_MUST_CHECK sm_err_t sm_request_decode_any(int16_t key, int16_t version, sm_rd_t *r,
                                             sm_arena_t *a, void **out);
SM_MUST_CHECK sm_err_t sm_response_decode_any(int16_t key, int16_t version, sm_rd_t *r,
                                              sm_arena_t *a, void **out);
/* Encode a struct decoded (or built) for key; version must be valid. */
void sm_request_encode_any(sm_wbuf_t *w, int16_t key, int16_t version, const void *m);
void sm_response_encode_any(sm_wbuf_t *w, int16_t key, int16_t version, const void *m);

/* ------------------------------------------- helpers for generated code */
/* Readers set r->err (sticky) on malformed input and leave defaults. */

void sm_proto_rd_str(sm_rd_t *r, bool flex, bool nullable, sm_str_t *out);
void sm_proto_rd_bytes(sm_rd_t *r, bool flex, bool nullable, sm_bytes_t *out);
void sm_proto_rd_records(sm_rd_t *r, bool flex, bool nullable, sm_records_t *out);
void sm_proto_rd_uuid(sm_rd_t *r, sm_uuid_t *out);
/* Array count (-1 = null). A count needing more than elem_min bytes per element
 * than remain is an error: the anti-memory-bomb rule. */
int32_t sm_proto_rd_count(sm_rd_t *r, bool flex, bool nullable, size_t elem_min);
/* Skip a whole tagged-field section. */
void sm_proto_rd_skip_tags(sm_rd_t *r);
/* Read one tagged field's tag and size; body views its data, r moves past it. */
bool sm_proto_rd_tag(sm_rd_t *r, uint32_t *tag, sm_rd_t *body);

void sm_proto_wr_str(sm_wbuf_t *w, bool flex, sm_str_t s);
void sm_proto_wr_bytes(sm_wbuf_t *w, bool flex, sm_bytes_t b);
void sm_proto_wr_records(sm_wbuf_t *w, bool flex, sm_records_t rec);
void sm_proto_wr_count(sm_wbuf_t *w, bool flex, int32_t n);
/* Insert the uvarint size of the bytes written since `at` before them. */
void sm_proto_wr_tag_size(sm_wbuf_t *w, size_t at);

/* Test helpers used by the generated fill/equal functions. */
void sm_proto_test_str(sm_arena_t *a, sm_str_t *s, uint32_t k);
void sm_proto_test_bytes(sm_arena_t *a, sm_bytes_t *b, uint32_t k);
void sm_proto_test_records(sm_arena_t *a, sm_records_t *rec, uint32_t k);
void sm_proto_test_uuid(sm_uuid_t *u, uint32_t k);
bool sm_proto_test_eq_bytes(const void *x, int32_t xlen, const void *y, int32_t ylen);
bool sm_proto_test_mismatch(const char *what); /* prints, returns false */
/* Whether test_fill also sets tagged fields (default true). Tests only; not
 * thread-safe: lets cross-checks against clients that skip tags run untagged. */
extern bool sm_proto_test_fill_tagged;

#endif
