/*
 * batch.c - record batch (magic 2) parsing, validation, patches, record
 * iteration and encoding; see batch.h for the layout.
 *
 * Validation order matters for the error returned: framing first (is the
 * batch fully there?), then magic, then the CRC (so flipped bits are
 * reported as corruption), then values, then the records themselves.
 *
 * Records are checked twice over in this file, on purpose: record_decode()
 * fills an sm_record_t for the iterator, and records_walk() only checks the
 * framing for sm_batch_validate(), which runs on every produced batch and is
 * the broker's hottest loop on small messages. The walk keeps its cursor in
 * raw pointers and reads varints with a one-byte-first inline decoder, so a
 * record of small fields costs a few dozen instructions; it must accept and
 * reject exactly what record_decode() does, with the same reasons
 * (tests/unit/test_batch.c checks it against the old decoder, kept in
 * tests/unit/batch_ref.h).
 * Pure functions on caller memory: any thread.
 */
#include "batch.h"

#include "crc32c.h"

static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static sm_err_t fail(const char **why, const char *msg, sm_err_t err)
{
    if (why)
        *why = msg;
    return err;
}

sm_err_t sm_batch_header_parse(const uint8_t *p, size_t len, sm_batch_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (len < SM_BATCH_OFF_MAGIC + 1)
        return SM_ERR_PARSE;
    sm_rd_t r;
    sm_rd_init(&r, p, len);
    out->base_offset = sm_rd_i64(&r);
    out->batch_length = sm_rd_i32(&r);
    out->leader_epoch = sm_rd_i32(&r);
    out->magic = sm_rd_i8(&r);
    if (out->magic != SM_BATCH_MAGIC)
        return SM_ERR_UNSUPPORTED;
    if (len < SM_BATCH_HEADER_SIZE)
        return SM_ERR_PARSE;
    out->crc = sm_rd_u32(&r);
    out->attributes = sm_rd_i16(&r);
    out->last_offset_delta = sm_rd_i32(&r);
    out->base_timestamp = sm_rd_i64(&r);
    out->max_timestamp = sm_rd_i64(&r);
    out->producer_id = sm_rd_i64(&r);
    out->producer_epoch = sm_rd_i16(&r);
    out->base_sequence = sm_rd_i32(&r);
    out->record_count = sm_rd_i32(&r);
    return r.err ? SM_ERR_PARSE : SM_OK;
}

/* Skip a varint-length-prefixed byte string; -1 means null when allowed. */
static bool skip_bytes(sm_rd_t *r, bool nullable, const uint8_t **data, int32_t *len)
{
    int32_t n = sm_rd_varint(r);
    if (r->err)
        return false;
    *len = n;
    *data = NULL;
    if (n == -1 && nullable)
        return true;
    if (n < 0) {
        r->err = SM_ERR_PARSE;
        return false;
    }
    *data = sm_rd_take(r, (size_t)n);
    return *data != NULL;
}

sm_err_t sm_record_header_next(sm_rd_t *rd, sm_record_header_t *h)
{
    if (sm_rd_remaining(rd) == 0 && !rd->err)
        return SM_ERR_NOT_FOUND;
    if (!skip_bytes(rd, false, &h->key, &h->key_len) ||
        !skip_bytes(rd, true, &h->value, &h->value_len))
        return SM_ERR_PARSE;
    return SM_OK;
}

/* Decode one record from r (which spans the rest of the batch). The record
 * must consume exactly its declared length. */
static sm_err_t record_decode(sm_rd_t *r, sm_record_t *rec, const char **why)
{
    int32_t len = sm_rd_varint(r);
    if (r->err)
        return fail(why, "bad record length varint", SM_ERR_PARSE);
    if (len < 0 || (size_t)len > sm_rd_remaining(r))
        return fail(why, "record length beyond batch end", SM_ERR_PARSE);
    sm_rd_t b; /* the record body, so nothing can read past its length */
    sm_rd_init(&b, r->p, (size_t)len);
    r->p += len;
    rec->attributes = sm_rd_i8(&b);
    rec->timestamp_delta = sm_rd_varlong(&b);
    rec->offset_delta = sm_rd_varint(&b);
    if (b.err)
        return fail(why, "truncated record header", SM_ERR_PARSE);
    if (!skip_bytes(&b, true, &rec->key, &rec->key_len))
        return fail(why, "bad record key", SM_ERR_PARSE);
    if (!skip_bytes(&b, true, &rec->value, &rec->value_len))
        return fail(why, "bad record value", SM_ERR_PARSE);
    rec->header_count = sm_rd_varint(&b);
    if (b.err || rec->header_count < 0)
        return fail(why, "bad record header count", SM_ERR_PARSE);
    rec->headers = b.p;
    for (int32_t i = 0; i < rec->header_count; i++) {
        sm_record_header_t h;
        if (!skip_bytes(&b, false, &h.key, &h.key_len) ||
            !skip_bytes(&b, true, &h.value, &h.value_len))
            return fail(why, "bad record header", SM_ERR_PARSE);
    }
    rec->headers_len = (size_t)(b.p - rec->headers);
    if (sm_rd_remaining(&b) != 0)
        return fail(why, "record length does not match its fields", SM_ERR_PARSE);
    return SM_OK;
}

sm_err_t sm_record_iter_init(sm_record_iter_t *it, const uint8_t *p, size_t len)
{
    sm_batch_info_t b;
    sm_err_t err = sm_batch_header_parse(p, len, &b);
    if (err)
        return err;
    if (b.batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD ||
        (uint64_t)sm_batch_total_size(&b) > len || b.record_count < 0)
        return SM_ERR_PARSE;
    if (b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK)
        return SM_ERR_UNSUPPORTED;
    sm_rd_init(&it->rd, p + SM_BATCH_HEADER_SIZE,
               (size_t)sm_batch_total_size(&b) - SM_BATCH_HEADER_SIZE);
    it->left = b.record_count;
    it->index = 0;
    return SM_OK;
}

sm_err_t sm_record_iter_next(sm_record_iter_t *it, sm_record_t *rec)
{
    if (it->left == 0)
        return SM_ERR_NOT_FOUND;
    sm_err_t err = record_decode(&it->rd, rec, NULL);
    if (err)
        return err;
    it->left--;
    it->index++;
    return SM_OK;
}

/* ------------------------------------------------ the validation walk */

/*
 * records_walk() checks a record in one of two ways:
 *
 *  fast      record_fast() decides only "good or not". It runs when the
 *            batch holds WALK_SLOP readable bytes past the record end
 *            (rend), and uses that slack: varints are decoded without a
 *            bounds test per byte, and fields that need no length check
 *            (attributes, timestampDelta, offsetDelta, null key or value,
 *            header count) are not checked against rend one by one. The
 *            cursor only moves forward, so ending exactly at rend proves
 *            that every field ended by rend; a non-null length is checked
 *            against rend before it is skipped, which keeps the cursor
 *            within reach of the slack.
 *  careful   record_check() reads every byte against rend first, exactly as
 *            record_decode() does on its sm_rd_t, and says why a record is
 *            bad. It checks the last records of a batch (less than
 *            WALK_SLOP bytes after them) and explains any record that
 *            record_fast() refused.
 *
 * Both read the same bytes in the same order while a record is good, so
 * they agree on every input (tests/unit/test_batch.c checks that against a
 * copy of the old decoder). How far record_fast() can read past rend, at
 * most: attributes 1 + timestampDelta 10 + offsetDelta 5 + null key length
 * 5 + null value length 5 + header count 5 + a first header key length 5 =
 * 36 bytes, then a key length check brings the cursor back to rend or
 * stops; hence WALK_SLOP. The next record's length (5 bytes at rend) fits
 * in it too.
 */
#define WALK_SLOP 40
#define WALK_INLINE static inline __attribute__((always_inline))

/* A varint read by the walk: the byte after it and its raw (still zigzag)
 * value; next is NULL when the varint is truncated or malformed. Returned by
 * value so the cursor and the value stay in registers. */
typedef struct walk_uv {
    const uint8_t *next;
    uint32_t raw;
} walk_uv_t;

/* Any unsigned varint at p, reading no byte at or past limit, with the
 * rules of sm_rd_uvarint_slow() in buf.c: at most 5 bytes, the fifth
 * carrying only the top 4 bits of 32. Out of line: rare. */
static __attribute__((noinline)) walk_uv_t walk_uvarint_slow(const uint8_t *p,
                                                              const uint8_t *limit)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35 && p < limit; shift += 7) {
        uint32_t b = *p++;
        if (shift == 28 && (b & 0xf0))
            break;
        v |= (b & 0x7f) << shift;
        if (!(b & 0x80))
            return (walk_uv_t){p, v};
    }
    return (walk_uv_t){NULL, 0};
}

/* Unsigned varint at p. bounded: reads stop at limit; otherwise the caller
 * guarantees 5 readable bytes at p. One byte first: in records of small
 * messages almost every delta, key length and count is below 64 (zigzagged
 * below 128); two and three bytes (record and value lengths, offsetDeltas
 * up to a million) stay inline too. */
WALK_INLINE walk_uv_t walk_uvarint(const uint8_t *p, const uint8_t *limit, bool bounded)
{
    if (SM_LIKELY(!bounded || p < limit)) {
        uint32_t b0 = p[0];
        if (SM_LIKELY(b0 < 0x80))
            return (walk_uv_t){p + 1, b0};
        if (!bounded || limit - p >= 3) {
            uint32_t b1 = p[1];
            if (b1 < 0x80) /* b0 - 0x80 drops its continuation bit */
                return (walk_uv_t){p + 2, b0 - 0x80 + (b1 << 7)};
            uint32_t b2 = p[2];
            if (b2 < 0x80)
                return (walk_uv_t){p + 3, b0 - 0x80 + ((b1 - 0x80) << 7) + (b2 << 14)};
        }
    }
    return walk_uvarint_slow(p, bounded ? limit : p + 5);
}

/* Skip a varlong, reading no byte at or past limit (its value is never
 * needed to validate): at most 10 bytes, the tenth carrying only bit 63, as
 * sm_rd_uvarlong_slow(). */
static __attribute__((noinline)) const uint8_t *walk_varlong_skip_slow(const uint8_t *p,
                                                                        const uint8_t *limit)
{
    for (int i = 0; i < 10 && p < limit; i++) {
        uint8_t b = *p++;
        if (i == 9 && (b & 0xfe))
            return NULL;
        if (!(b & 0x80))
            return p;
    }
    return NULL;
}

/* Skip a varlong at p; bounded as walk_uvarint() (unbounded: 10 readable
 * bytes at p). */
WALK_INLINE const uint8_t *walk_varlong_skip(const uint8_t *p, const uint8_t *limit,
                                             bool bounded)
{
    if (SM_LIKELY(!bounded || p < limit)) {
        if (SM_LIKELY(p[0] < 0x80))
            return p + 1;
        if ((!bounded || limit - p >= 2) && p[1] < 0x80) /* deltas up to 8 s */
            return p + 2;
    }
    return walk_varlong_skip_slow(p, bounded ? limit : p + 10);
}

/* Skip a varint-length-prefixed byte string as skip_bytes() would; a
 * non-null one must end by rend. Returns the byte after it or NULL. In
 * zigzag, odd raw values are the negative lengths and raw 1 is -1 (null),
 * so neither needs decoding. Unbounded, the length varint itself may end
 * past rend (the caller finds out later); the signed comparison refuses
 * any length then. */
WALK_INLINE const uint8_t *walk_bytes(const uint8_t *p, const uint8_t *rend, bool nullable,
                                      bool bounded)
{
    walk_uv_t f = walk_uvarint(p, rend, bounded);
    if (SM_UNLIKELY(!f.next))
        return NULL;
    if (f.raw & 1)
        return nullable && f.raw == 1 ? f.next : NULL;
    if (SM_UNLIKELY((ptrdiff_t)(f.raw >> 1) > rend - f.next))
        return NULL;
    return f.next + (f.raw >> 1);
}

/* Record i, from after its length varint (p) to rend, read carefully: the
 * checks and reasons of record_decode(), then offsetDelta == i (so a
 * record's own framing is reported before its offsetDelta). */
static sm_err_t record_check(const uint8_t *p, const uint8_t *rend, int32_t i,
                             const char **why)
{
    if (p == rend)
        return fail(why, "truncated record header", SM_ERR_PARSE);
    p++; /* attributes: any value */
    p = walk_varlong_skip(p, rend, true); /* timestampDelta: any value */
    if (!p)
        return fail(why, "truncated record header", SM_ERR_PARSE);
    walk_uv_t f = walk_uvarint(p, rend, true);
    if (!f.next)
        return fail(why, "truncated record header", SM_ERR_PARSE);
    bool in_sequence = f.raw == (uint32_t)i << 1; /* zigzag(i) is 2i for i >= 0 */
    p = walk_bytes(f.next, rend, true, true);
    if (!p)
        return fail(why, "bad record key", SM_ERR_PARSE);
    p = walk_bytes(p, rend, true, true);
    if (!p)
        return fail(why, "bad record value", SM_ERR_PARSE);
    f = walk_uvarint(p, rend, true);
    if (!f.next || (f.raw & 1))
        return fail(why, "bad record header count", SM_ERR_PARSE);
    p = f.next;
    /* Each header takes 2 bytes or more, so a huge count fails fast. */
    for (uint32_t h = f.raw >> 1; h > 0; h--) {
        p = walk_bytes(p, rend, false, true);
        if (p)
            p = walk_bytes(p, rend, true, true);
        if (!p)
            return fail(why, "bad record header", SM_ERR_PARSE);
    }
    if (p != rend)
        return fail(why, "record length does not match its fields", SM_ERR_PARSE);
    if (!in_sequence)
        return fail(why, "record offsetDelta out of sequence", SM_ERR_INVALID);
    return SM_OK;
}

/* Record i, from after its length varint (p) to rend, with WALK_SLOP
 * readable bytes past rend: true when record_check() would return SM_OK
 * (see the top of this section). */
WALK_INLINE bool record_fast(const uint8_t *p, const uint8_t *rend, int32_t i)
{
    p = walk_varlong_skip(p + 1, NULL, false); /* after the attributes */
    if (SM_UNLIKELY(!p))
        return false;
    walk_uv_t f = walk_uvarint(p, NULL, false);
    if (SM_UNLIKELY(!f.next || f.raw != (uint32_t)i << 1))
        return false;
    p = walk_bytes(f.next, rend, true, false);
    if (SM_UNLIKELY(!p))
        return false;
    p = walk_bytes(p, rend, true, false);
    if (SM_UNLIKELY(!p))
        return false;
    f = walk_uvarint(p, NULL, false);
    if (SM_UNLIKELY(!f.next || (f.raw & 1)))
        return false;
    p = f.next;
    for (uint32_t h = f.raw >> 1; h > 0; h--) {
        p = walk_bytes(p, rend, false, false);
        if (SM_UNLIKELY(!p))
            return false;
        p = walk_bytes(p, rend, true, false);
        if (SM_UNLIKELY(!p))
            return false;
    }
    return p == rend;
}

/* Check that count records fill [p, end) exactly. */
static sm_err_t records_walk(const uint8_t *p, const uint8_t *end, int32_t count,
                             const char **why)
{
    int32_t i = 0;
    /* Fast while the record ends by fast_end, WALK_SLOP bytes before the
     * batch end. A record length that is bad or ends past fast_end goes to
     * the careful loop, which reads it again and gives the reason. */
    if (end - p >= WALK_SLOP) {
        const uint8_t *fast_end = end - WALK_SLOP;
        for (; i < count; i++) {
            walk_uv_t f = walk_uvarint(p, NULL, false);
            if (SM_UNLIKELY(!f.next || (f.raw & 1) ||
                            (ptrdiff_t)(f.raw >> 1) > fast_end - f.next))
                break;
            const uint8_t *rend = f.next + (f.raw >> 1);
            if (SM_UNLIKELY(!record_fast(f.next, rend, i))) {
                sm_err_t err = record_check(f.next, rend, i, why);
                if (err)
                    return err;
            }
            p = rend;
        }
    }
    for (; i < count; i++) {
        walk_uv_t f = walk_uvarint(p, end, true);
        if (!f.next)
            return fail(why, "bad record length varint", SM_ERR_PARSE);
        if ((f.raw & 1) || (size_t)(f.raw >> 1) > (size_t)(end - f.next))
            return fail(why, "record length beyond batch end", SM_ERR_PARSE);
        const uint8_t *rend = f.next + (f.raw >> 1);
        sm_err_t err = record_check(f.next, rend, i, why);
        if (err)
            return err;
        p = rend;
    }
    if (p != end)
        return fail(why, "bytes left after the last record", SM_ERR_PARSE);
    return SM_OK;
}

/* The checks every stored or received batch passes whatever its records:
 * length within the data, CRC32C, a known codec. Sets *total and *codec. */
static sm_err_t check_frame(const uint8_t *p, size_t len, const sm_batch_info_t *b, const char **why,
                            int64_t *total, int *codec)
{
    if (b->batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD)
        return fail(why, "batch length smaller than the header", SM_ERR_PARSE);
    *total = sm_batch_total_size(b);
    if ((uint64_t)*total > len)
        return fail(why, "batch extends past the end of the data", SM_ERR_PARSE);
    uint32_t crc = sm_crc32c(0, p + SM_BATCH_OFF_ATTRIBUTES,
                             (size_t)*total - SM_BATCH_OFF_ATTRIBUTES);
    if (crc != b->crc)
        return fail(why, "CRC32C mismatch", SM_ERR_CORRUPT);
    *codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    if (*codec > SM_COMPRESSION_ZSTD)
        return fail(why, "unknown compression codec", SM_ERR_INVALID);
    return SM_OK;
}

sm_err_t sm_batch_validate(const uint8_t *p, size_t len, sm_batch_info_t *out,
                           const char **why)
{
    sm_batch_info_t tmp;
    sm_batch_info_t *b = out ? out : &tmp;
    sm_err_t err = sm_batch_header_parse(p, len, b);
    if (err == SM_ERR_UNSUPPORTED) {
        if (b->magic == 0 || b->magic == 1)
            return fail(why, "old message format (magic 0/1) not supported", err);
        return fail(why, "unknown magic byte", SM_ERR_INVALID);
    }
    if (err)
        return fail(why, "truncated batch header", SM_ERR_PARSE);
    int64_t total;
    int codec;
    sm_err_t ferr = check_frame(p, len, b, why, &total, &codec);
    if (ferr)
        return ferr;
    if (b->last_offset_delta < 0)
        return fail(why, "negative lastOffsetDelta", SM_ERR_INVALID);
    if (b->record_count <= 0)
        return fail(why, "batch has no records", SM_ERR_INVALID);
    if ((int64_t)b->record_count != (int64_t)b->last_offset_delta + 1)
        return fail(why, "record count does not match lastOffsetDelta", SM_ERR_INVALID);
    if (codec != SM_COMPRESSION_NONE)
        return SM_OK; /* records are opaque until decompressed */

    return records_walk(p + SM_BATCH_HEADER_SIZE, p + total, b->record_count, why);
}

sm_err_t sm_batch_validate_stored(const uint8_t *p, size_t len, sm_batch_info_t *out,
                                  const char **why)
{
    sm_batch_info_t tmp;
    sm_batch_info_t *b = out ? out : &tmp;
    if (sm_batch_header_parse(p, len, b) != SM_OK || b->record_count < 0 ||
        b->last_offset_delta < 0 || (int64_t)b->record_count >= (int64_t)b->last_offset_delta + 1)
        return sm_batch_validate(p, len, out, why); /* not a cleaned batch */
    int64_t total;
    int codec;
    sm_err_t ferr = check_frame(p, len, b, why, &total, &codec);
    if (ferr)
        return ferr;
    if (b->record_count == 0 && total != SM_BATCH_HEADER_SIZE)
        return fail(why, "empty batch with record bytes", SM_ERR_INVALID);
    if (codec != SM_COMPRESSION_NONE || b->record_count == 0)
        return SM_OK;
    sm_rd_t r;
    sm_rd_init(&r, p + SM_BATCH_HEADER_SIZE, (size_t)total - SM_BATCH_HEADER_SIZE);
    int32_t prev = -1;
    for (int32_t i = 0; i < b->record_count; i++) {
        sm_record_t rec;
        sm_err_t err = record_decode(&r, &rec, why);
        if (err)
            return err;
        if (rec.offset_delta <= prev || rec.offset_delta > b->last_offset_delta)
            return fail(why, "record offsetDelta out of sequence", SM_ERR_INVALID);
        prev = rec.offset_delta;
    }
    if (sm_rd_remaining(&r) != 0)
        return fail(why, "bytes after the last record", SM_ERR_PARSE);
    return SM_OK;
}

sm_err_t sm_batches_validate(const uint8_t *p, size_t len, int *nbatches, int32_t *nrecords,
                             const char **why)
{
    int n = 0;
    int64_t records = 0;
    size_t pos = 0;
    *nbatches = 0;
    *nrecords = 0;
    if (len == 0)
        return fail(why, "no record batches", SM_ERR_INVALID);
    while (pos < len) {
        sm_batch_info_t b;
        sm_err_t err = sm_batch_validate(p + pos, len - pos, &b, why);
        if (err)
            return err;
        records += b.record_count;
        if (records > INT32_MAX)
            return fail(why, "too many records", SM_ERR_INVALID);
        pos += (size_t)sm_batch_total_size(&b);
        n++;
    }
    *nbatches = n;
    *nrecords = (int32_t)records;
    return SM_OK;
}

void sm_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    put_be64(p + SM_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void sm_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    put_be32(p + SM_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

void sm_batch_set_log_append_time(uint8_t *p, int64_t ts_ms)
{
    uint32_t total = be32(p + SM_BATCH_OFF_LENGTH) + SM_BATCH_LOG_OVERHEAD;
    uint16_t attrs = (uint16_t)((p[SM_BATCH_OFF_ATTRIBUTES] << 8) | p[SM_BATCH_OFF_ATTRIBUTES + 1]);
    put_be16(p + SM_BATCH_OFF_ATTRIBUTES, attrs | SM_BATCH_ATTR_LOG_APPEND_TIME);
    put_be64(p + SM_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts_ms);
    uint32_t crc = sm_crc32c(0, p + SM_BATCH_OFF_ATTRIBUTES, total - SM_BATCH_OFF_ATTRIBUTES);
    put_be32(p + SM_BATCH_OFF_CRC, crc);
}

static void wbuf_nullable_bytes(sm_wbuf_t *w, const void *data, int32_t len)
{
    if (!data || len < 0) {
        sm_wbuf_varint(w, -1);
        return;
    }
    sm_wbuf_varint(w, len);
    sm_wbuf_bytes(w, data, (size_t)len);
}

void sm_batch_encode(sm_wbuf_t *w, const sm_batch_params_t *bp, const sm_record_in_t *recs,
                     int n)
{
    SM_ASSERT(n > 0);
    SM_ASSERT((bp->attributes & SM_BATCH_ATTR_COMPRESSION_MASK) == 0);
    int64_t base_ts = recs[0].timestamp, max_ts = recs[0].timestamp;
    for (int i = 1; i < n; i++) {
        base_ts = SM_MIN(base_ts, recs[i].timestamp);
        max_ts = SM_MAX(max_ts, recs[i].timestamp);
    }
    size_t start = w->len;
    sm_wbuf_i64(w, bp->base_offset);
    size_t len_at = sm_wbuf_reserve(w, 4);
    sm_wbuf_i32(w, bp->leader_epoch);
    sm_wbuf_i8(w, SM_BATCH_MAGIC);
    size_t crc_at = sm_wbuf_reserve(w, 4);
    sm_wbuf_i16(w, bp->attributes);
    sm_wbuf_i32(w, n - 1);
    sm_wbuf_i64(w, base_ts);
    sm_wbuf_i64(w, max_ts);
    sm_wbuf_i64(w, bp->producer_id);
    sm_wbuf_i16(w, bp->producer_epoch);
    sm_wbuf_i32(w, bp->base_sequence);
    sm_wbuf_i32(w, n);
    sm_wbuf_t body; /* one record at a time, to learn its length first */
    sm_wbuf_init(&body);
    for (int i = 0; i < n; i++) {
        const sm_record_in_t *r = &recs[i];
        sm_wbuf_reset(&body);
        sm_wbuf_i8(&body, 0);
        sm_wbuf_varlong(&body, r->timestamp - base_ts);
        sm_wbuf_varint(&body, i);
        wbuf_nullable_bytes(&body, r->key, r->key_len);
        wbuf_nullable_bytes(&body, r->value, r->value_len);
        sm_wbuf_varint(&body, r->nheaders);
        for (int h = 0; h < r->nheaders; h++) {
            sm_wbuf_varint(&body, r->headers[h].key_len);
            sm_wbuf_bytes(&body, r->headers[h].key, (size_t)r->headers[h].key_len);
            wbuf_nullable_bytes(&body, r->headers[h].value, r->headers[h].value_len);
        }
        sm_wbuf_varint(w, (int32_t)body.len);
        sm_wbuf_bytes(w, body.mem, body.len);
    }
    sm_wbuf_free(&body);
    sm_wbuf_patch_i32(w, len_at, (int32_t)(w->len - start - SM_BATCH_LOG_OVERHEAD));
    uint32_t crc = sm_crc32c(0, w->mem + start + SM_BATCH_OFF_ATTRIBUTES,
                             w->len - start - SM_BATCH_OFF_ATTRIBUTES);
    sm_wbuf_patch_i32(w, crc_at, (int32_t)crc);
}
