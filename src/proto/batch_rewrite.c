/*
 * batch_rewrite.c - see batch_rewrite.h.
 */
#include "batch_rewrite.h"
#include "crc32c.h"

#include <stdlib.h>
#include <string.h>

sm_err_t sm_batch_section(const uint8_t *p, const sm_batch_info_t *b, size_t max_out,
                          const uint8_t **sec, size_t *sec_len, uint8_t **owned)
{
    *owned = NULL;
    int64_t total = sm_batch_total_size(b);
    if (total < SM_BATCH_HEADER_SIZE)
        return SM_ERR_PARSE;
    const uint8_t *raw = p + SM_BATCH_HEADER_SIZE;
    size_t raw_len = (size_t)total - SM_BATCH_HEADER_SIZE;
    sm_codec_t codec = (sm_codec_t)(b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK);
    if (codec == SM_CODEC_NONE) {
        *sec = raw;
        *sec_len = raw_len;
        return SM_OK;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    sm_err_t err = sm_decompress(codec, raw, raw_len, max_out, &out, &out_len);
    if (err != SM_OK)
        return err;
    *owned = out;
    *sec = out;
    *sec_len = out_len;
    return SM_OK;
}

void sm_record_iter_section(sm_record_iter_t *it, const uint8_t *sec, size_t len, int32_t count)
{
    sm_rd_init(&it->rd, sec, len);
    it->left = count;
    it->index = 0;
}

/* Every record of a section in order; *keyless the first without a key. */
static sm_err_t scan_section(const uint8_t *sec, size_t len, int32_t count, int32_t *keyless)
{
    *keyless = -1;
    sm_record_iter_t it;
    sm_record_iter_section(&it, sec, len, count);
    for (int32_t i = 0; i < count; i++) {
        sm_record_t r;
        sm_err_t err = sm_record_iter_next(&it, &r);
        if (err != SM_OK)
            return SM_ERR_PARSE;
        if (r.offset_delta != i)
            return SM_ERR_PARSE;
        if (!r.key && *keyless < 0)
            *keyless = i;
    }
    return it.rd.p == it.rd.end && !it.rd.err ? SM_OK : SM_ERR_PARSE;
}

sm_err_t sm_batch_scan(const uint8_t *p, const sm_batch_info_t *b, size_t max_out,
                       int32_t *keyless)
{
    *keyless = -1;
    const uint8_t *sec;
    size_t len;
    uint8_t *owned;
    sm_err_t err = sm_batch_section(p, b, max_out, &sec, &len, &owned);
    if (err != SM_OK)
        return err;
    err = scan_section(sec, len, b->record_count, keyless);
    free(owned);
    return err;
}

static void put_be32(uint8_t *q, uint32_t v)
{
    q[0] = (uint8_t)(v >> 24);
    q[1] = (uint8_t)(v >> 16);
    q[2] = (uint8_t)(v >> 8);
    q[3] = (uint8_t)v;
}

sm_err_t sm_batch_fix_max_timestamp(uint8_t *p, const sm_batch_info_t *b, size_t max_out)
{
    if (b->max_timestamp >= b->base_timestamp || (b->attributes & SM_BATCH_ATTR_LOG_APPEND_TIME))
        return SM_OK;
    const uint8_t *sec;
    size_t len;
    uint8_t *owned;
    sm_err_t err = sm_batch_section(p, b, max_out, &sec, &len, &owned);
    if (err != SM_OK)
        return err;
    int64_t max = b->base_timestamp;
    sm_record_iter_t it;
    sm_record_iter_section(&it, sec, len, b->record_count);
    for (int32_t i = 0; i < b->record_count && err == SM_OK; i++) {
        sm_record_t r;
        err = sm_record_iter_next(&it, &r) == SM_OK ? SM_OK : SM_ERR_PARSE;
        if (err == SM_OK && b->base_timestamp + r.timestamp_delta > max)
            max = b->base_timestamp + r.timestamp_delta;
    }
    free(owned);
    if (err != SM_OK)
        return err;
    for (int i = 0; i < 8; i++)
        p[SM_BATCH_OFF_MAX_TIMESTAMP + i] = (uint8_t)((uint64_t)max >> (56 - 8 * i));
    size_t total = (size_t)sm_batch_total_size(b);
    put_be32(p + SM_BATCH_OFF_CRC,
             sm_crc32c(0, p + SM_BATCH_OFF_ATTRIBUTES, total - SM_BATCH_OFF_ATTRIBUTES));
    return SM_OK;
}

sm_err_t sm_batch_recompress(const uint8_t *p, const sm_batch_info_t *b, sm_codec_t codec,
                             int level, size_t max_out, sm_wbuf_t *w)
{
    const uint8_t *sec;
    size_t len;
    uint8_t *owned;
    sm_err_t err = sm_batch_section(p, b, max_out, &sec, &len, &owned);
    if (err != SM_OK)
        return err;
    int32_t keyless;
    err = scan_section(sec, len, b->record_count, &keyless);
    uint8_t *z = NULL;
    size_t zlen = 0;
    if (err == SM_OK)
        err = sm_compress_level(codec, level, sec, len, &z, &zlen);
    free(owned);
    if (err != SM_OK)
        return err;
    size_t total = SM_BATCH_HEADER_SIZE + zlen;
    if (total - SM_BATCH_LOG_OVERHEAD > INT32_MAX) {
        free(z);
        return SM_ERR_TOO_LARGE;
    }
    uint8_t *q = sm_wbuf_space(w, total);
    memcpy(q, p, SM_BATCH_HEADER_SIZE);
    memcpy(q + SM_BATCH_HEADER_SIZE, z, zlen);
    free(z);
    put_be32(q + SM_BATCH_OFF_LENGTH, (uint32_t)(total - SM_BATCH_LOG_OVERHEAD));
    uint16_t attrs = (uint16_t)((q[SM_BATCH_OFF_ATTRIBUTES] << 8) | q[SM_BATCH_OFF_ATTRIBUTES + 1]);
    attrs = (uint16_t)((attrs & ~SM_BATCH_ATTR_COMPRESSION_MASK) | (uint16_t)codec);
    q[SM_BATCH_OFF_ATTRIBUTES] = (uint8_t)(attrs >> 8);
    q[SM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)attrs;
    put_be32(q + SM_BATCH_OFF_CRC,
             sm_crc32c(0, q + SM_BATCH_OFF_ATTRIBUTES, total - SM_BATCH_OFF_ATTRIBUTES));
    w->len += total;
    return SM_OK;
}
