/*
 * batch_ref.h - reference record batch validator for differential tests: the
 * straightforward sm_rd_t decoder that sm_batch_validate() used before its
 * record walk was rewritten for speed (src/proto/batch.c, records_walk).
 * The fast walk must return the same error and the same reason as this on
 * every input; test_batch.c and the batch fuzz target check that.
 *
 * Kept deliberately plain: one record at a time through sm_rd_t, every field
 * decoded. Do not "optimise" it: its worth is being obviously right.
 * Header-only, static functions, for tests.
 */
#ifndef SM_BATCH_REF_H
#define SM_BATCH_REF_H

#include "batch.h"
#include "crc32c.h"

static sm_err_t ref_fail(const char **why, const char *msg, sm_err_t err)
{
    if (why)
        *why = msg;
    return err;
}

/* Skip a varint-length-prefixed byte string; -1 means null when allowed. */
static bool ref_skip_bytes(sm_rd_t *r, bool nullable)
{
    int32_t n = sm_rd_varint(r);
    if (r->err)
        return false;
    if (n == -1 && nullable)
        return true;
    if (n < 0) {
        r->err = SM_ERR_PARSE;
        return false;
    }
    return sm_rd_take(r, (size_t)n) != NULL;
}

/* One record from r (the rest of the batch); sets *offset_delta. */
static sm_err_t ref_record(sm_rd_t *r, int32_t *offset_delta, const char **why)
{
    int32_t len = sm_rd_varint(r);
    if (r->err)
        return ref_fail(why, "bad record length varint", SM_ERR_PARSE);
    if (len < 0 || (size_t)len > sm_rd_remaining(r))
        return ref_fail(why, "record length beyond batch end", SM_ERR_PARSE);
    sm_rd_t b;
    sm_rd_init(&b, r->p, (size_t)len);
    r->p += len;
    (void)sm_rd_i8(&b);
    (void)sm_rd_varlong(&b);
    *offset_delta = sm_rd_varint(&b);
    if (b.err)
        return ref_fail(why, "truncated record header", SM_ERR_PARSE);
    if (!ref_skip_bytes(&b, true))
        return ref_fail(why, "bad record key", SM_ERR_PARSE);
    if (!ref_skip_bytes(&b, true))
        return ref_fail(why, "bad record value", SM_ERR_PARSE);
    int32_t headers = sm_rd_varint(&b);
    if (b.err || headers < 0)
        return ref_fail(why, "bad record header count", SM_ERR_PARSE);
    for (int32_t i = 0; i < headers; i++) {
        if (!ref_skip_bytes(&b, false) || !ref_skip_bytes(&b, true))
            return ref_fail(why, "bad record header", SM_ERR_PARSE);
    }
    if (sm_rd_remaining(&b) != 0)
        return ref_fail(why, "record length does not match its fields", SM_ERR_PARSE);
    return SM_OK;
}

/* sm_batch_validate() as it was, header checks included. */
static sm_err_t ref_batch_validate(const uint8_t *p, size_t len, sm_batch_info_t *b,
                                   const char **why)
{
    sm_err_t err = sm_batch_header_parse(p, len, b);
    if (err == SM_ERR_UNSUPPORTED) {
        if (b->magic == 0 || b->magic == 1)
            return ref_fail(why, "old message format (magic 0/1) not supported", err);
        return ref_fail(why, "unknown magic byte", SM_ERR_INVALID);
    }
    if (err)
        return ref_fail(why, "truncated batch header", SM_ERR_PARSE);
    if (b->batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD)
        return ref_fail(why, "batch length smaller than the header", SM_ERR_PARSE);
    int64_t total = sm_batch_total_size(b);
    if ((uint64_t)total > len)
        return ref_fail(why, "batch extends past the end of the data", SM_ERR_PARSE);
    uint32_t crc = sm_crc32c(0, p + SM_BATCH_OFF_ATTRIBUTES,
                             (size_t)total - SM_BATCH_OFF_ATTRIBUTES);
    if (crc != b->crc)
        return ref_fail(why, "CRC32C mismatch", SM_ERR_CORRUPT);
    int codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    if (codec > SM_COMPRESSION_ZSTD)
        return ref_fail(why, "unknown compression codec", SM_ERR_INVALID);
    if (b->last_offset_delta < 0)
        return ref_fail(why, "negative lastOffsetDelta", SM_ERR_INVALID);
    if (b->record_count <= 0)
        return ref_fail(why, "batch has no records", SM_ERR_INVALID);
    if ((int64_t)b->record_count != (int64_t)b->last_offset_delta + 1)
        return ref_fail(why, "record count does not match lastOffsetDelta", SM_ERR_INVALID);
    if (codec != SM_COMPRESSION_NONE)
        return SM_OK;
    sm_rd_t r;
    sm_rd_init(&r, p + SM_BATCH_HEADER_SIZE, (size_t)total - SM_BATCH_HEADER_SIZE);
    for (int32_t i = 0; i < b->record_count; i++) {
        int32_t od;
        err = ref_record(&r, &od, why);
        if (err)
            return err;
        if (od != i)
            return ref_fail(why, "record offsetDelta out of sequence", SM_ERR_INVALID);
    }
    if (sm_rd_remaining(&r) != 0)
        return ref_fail(why, "bytes left after the last record", SM_ERR_PARSE);
    return SM_OK;
}

#endif
