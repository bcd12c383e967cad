/*
 * batch_find.c - record-level lookups inside one batch (see batch_find.h).
 *
 * A compressed batch is turned into an equivalent uncompressed one in a
 * private buffer: the original 61-byte header with the codec bits cleared
 * and batchLength set to the inflated size, followed by the inflated
 * records. batch.h's record iterator then reads it like any uncompressed
 * batch, so record parsing lives in one place. The private copy is never
 * written anywhere (its CRC is stale on purpose).
 *
 * Arithmetic on values from the batch (baseTimestamp + delta, baseOffset +
 * delta) is done in unsigned 64-bit so hostile values wrap instead of
 * overflowing a signed integer.
 */
#include "batch_find.h"
#include "compress.h"

#include <stdlib.h>
#include <string.h>

static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

sm_err_t sm_batch_records_open(sm_batch_records_t *br, const uint8_t *batch, size_t len,
                               size_t max_out)
{
    memset(br, 0, sizeof *br);
    sm_err_t err = sm_batch_header_parse(batch, len, &br->info);
    if (err)
        return err;
    const sm_batch_info_t *b = &br->info;
    if (b->batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD ||
        (uint64_t)sm_batch_total_size(b) > len || b->record_count < 0)
        return SM_ERR_PARSE;
    size_t total = (size_t)sm_batch_total_size(b);
    int codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    if (codec == SM_CODEC_NONE)
        return sm_record_iter_init(&br->it, batch, total);

    /* Inflate straight behind room for the header: no second copy. */
    size_t rawlen;
    err = sm_decompress_headroom((sm_codec_t)codec, batch + SM_BATCH_HEADER_SIZE,
                                 total - SM_BATCH_HEADER_SIZE, max_out, SM_BATCH_HEADER_SIZE,
                                 &br->owned, &rawlen);
    if (err)
        return err;
    /* The rebuilt batch must still describe its length in an int32. */
    if (rawlen > (size_t)INT32_MAX - (SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD)) {
        sm_batch_records_close(br);
        return SM_ERR_TOO_LARGE;
    }
    memcpy(br->owned, batch, SM_BATCH_HEADER_SIZE);
    uint32_t blen = (uint32_t)(rawlen + SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD);
    br->owned[SM_BATCH_OFF_LENGTH] = (uint8_t)(blen >> 24);
    br->owned[SM_BATCH_OFF_LENGTH + 1] = (uint8_t)(blen >> 16);
    br->owned[SM_BATCH_OFF_LENGTH + 2] = (uint8_t)(blen >> 8);
    br->owned[SM_BATCH_OFF_LENGTH + 3] = (uint8_t)blen;
    /* attributes is a big-endian int16: the codec bits are in its low byte. */
    br->owned[SM_BATCH_OFF_ATTRIBUTES + 1] &= (uint8_t)~SM_BATCH_ATTR_COMPRESSION_MASK;
    err = sm_record_iter_init(&br->it, br->owned, SM_BATCH_HEADER_SIZE + rawlen);
    if (err)
        sm_batch_records_close(br);
    return err;
}

sm_err_t sm_batch_records_next(sm_batch_records_t *br, sm_record_t *rec)
{
    return sm_record_iter_next(&br->it, rec);
}

int64_t sm_batch_records_timestamp(const sm_batch_records_t *br, const sm_record_t *rec)
{
    if (br->info.attributes & SM_BATCH_ATTR_LOG_APPEND_TIME)
        return br->info.max_timestamp;
    return add_wrap(br->info.base_timestamp, rec->timestamp_delta);
}

int64_t sm_batch_records_offset(const sm_batch_records_t *br, const sm_record_t *rec)
{
    return add_wrap(br->info.base_offset, rec->offset_delta);
}

void sm_batch_records_close(sm_batch_records_t *br)
{
    free(br->owned);
    br->owned = NULL;
}

sm_err_t sm_batch_find_timestamp(const uint8_t *batch, size_t len, int64_t ts, int64_t *offset,
                                 int64_t *timestamp)
{
    /* LogAppendTime: every record carries maxTimestamp, so a batch below
     * the target needs no decompression at all. */
    sm_batch_info_t hdr;
    sm_err_t err = sm_batch_header_parse(batch, len, &hdr);
    if (err)
        return err;
    if ((hdr.attributes & SM_BATCH_ATTR_LOG_APPEND_TIME) && hdr.max_timestamp < ts)
        return SM_ERR_NOT_FOUND;

    sm_batch_records_t br;
    if ((err = sm_batch_records_open(&br, batch, len, SM_BATCH_FIND_MAX_OUT)) != SM_OK)
        return err;
    sm_record_t rec;
    while ((err = sm_batch_records_next(&br, &rec)) == SM_OK) {
        int64_t t = sm_batch_records_timestamp(&br, &rec);
        if (t >= ts) {
            *offset = sm_batch_records_offset(&br, &rec);
            *timestamp = t;
            break;
        }
    }
    sm_batch_records_close(&br);
    return err; /* SM_OK on a hit, SM_ERR_NOT_FOUND at the end, or a parse error */
}

sm_err_t sm_batch_find_max_timestamp(const uint8_t *batch, size_t len, int64_t *offset,
                                     int64_t *timestamp)
{
    sm_batch_records_t br;
    sm_err_t err = sm_batch_records_open(&br, batch, len, SM_BATCH_FIND_MAX_OUT);
    if (err)
        return err;
    bool found = false;
    int64_t best_ts = 0, best_off = 0;
    sm_record_t rec;
    while ((err = sm_batch_records_next(&br, &rec)) == SM_OK) {
        int64_t t = sm_batch_records_timestamp(&br, &rec);
        if (!found || t > best_ts) { /* strict: the first record wins ties */
            found = true;
            best_ts = t;
            best_off = sm_batch_records_offset(&br, &rec);
        }
    }
    sm_batch_records_close(&br);
    if (err != SM_ERR_NOT_FOUND)
        return err;
    if (!found)
        return SM_ERR_NOT_FOUND;
    *offset = best_off;
    *timestamp = best_ts;
    return SM_OK;
}
