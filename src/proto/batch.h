/*
 * batch.h - Kafka record batches (magic 2): header parsing, full validation,
 * the in-place patches the log applies on append, a record iterator for
 * uncompressed batches, and a small encoder (tests, tools, control batches).
 *
 * Layout of one batch (all integers big-endian; byte offsets on the left):
 *    0 baseOffset int64         the broker assigns it on append
 *    8 batchLength int32        bytes after this field (total = batchLength + 12)
 *   12 partitionLeaderEpoch int32   broker-assigned
 *   16 magic int8 (= 2)
 *   17 crc uint32               CRC-32C of bytes [21, end)
 *   21 attributes int16         bits 0-2 compression, 3 timestamp type
 *                               (1 = LogAppendTime), 4 transactional, 5 control
 *   23 lastOffsetDelta int32
 *   27 baseTimestamp int64
 *   35 maxTimestamp int64
 *   43 producerId int64
 *   51 producerEpoch int16
 *   53 baseSequence int32
 *   57 recordCount int32
 *   61 records: varint length, int8 attributes, varlong timestampDelta,
 *      varint offsetDelta, varint keyLen + key, varint valueLen + value,
 *      varint headerCount, headers (varint keyLen, key, varint valueLen, value)
 * baseOffset and partitionLeaderEpoch lie outside the CRC so the broker can
 * fill them without recomputing it.
 *
 * Validation never trusts a length: every read is bounds-checked and bad
 * bytes return an error with a static reason, never a crash. Pure functions
 * on caller memory: any thread.
 */
#ifndef SM_BATCH_H
#define SM_BATCH_H

#include "buf.h"
#include "sm_common.h"

#define SM_BATCH_HEADER_SIZE 61
#define SM_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define SM_BATCH_MAGIC 2

/* Field positions inside a batch (see the table above). */
#define SM_BATCH_OFF_BASE_OFFSET 0
#define SM_BATCH_OFF_LENGTH 8
#define SM_BATCH_OFF_LEADER_EPOCH 12
#define SM_BATCH_OFF_MAGIC 16
#define SM_BATCH_OFF_CRC 17
#define SM_BATCH_OFF_ATTRIBUTES 21
#define SM_BATCH_OFF_LAST_OFFSET_DELTA 23
#define SM_BATCH_OFF_BASE_TIMESTAMP 27
#define SM_BATCH_OFF_MAX_TIMESTAMP 35
#define SM_BATCH_OFF_RECORD_COUNT 57

/* Attribute bits. */
#define SM_BATCH_ATTR_COMPRESSION_MASK 0x07
#define SM_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define SM_BATCH_ATTR_TRANSACTIONAL 0x10
#define SM_BATCH_ATTR_CONTROL 0x20
/* KIP-534: baseTimestamp holds the delete horizon (set by the log cleaner;
 * record timestamp deltas stay relative to baseTimestamp). */
#define SM_BATCH_ATTR_DELETE_HORIZON 0x40

enum sm_compression {
    SM_COMPRESSION_NONE = 0,
    SM_COMPRESSION_GZIP = 1,
    SM_COMPRESSION_SNAPPY = 2,
    SM_COMPRESSION_LZ4 = 3,
    SM_COMPRESSION_ZSTD = 4,
};

typedef struct sm_batch_info {
    int64_t base_offset;
    int32_t batch_length; /* total bytes = batch_length + 12 */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} sm_batch_info_t;

/* Total size in bytes of the batch described by info. */
static inline int64_t sm_batch_total_size(const sm_batch_info_t *b)
{
    return (int64_t)b->batch_length + SM_BATCH_LOG_OVERHEAD;
}
static inline int64_t sm_batch_last_offset(const sm_batch_info_t *b)
{
    return b->base_offset + b->last_offset_delta;
}

/* Parse the fixed header at p (len bytes readable). Checks only bounds and
 * the magic: SM_ERR_PARSE if len < 61 (or < 17 to see the magic),
 * SM_ERR_UNSUPPORTED if magic is not 2 (base_offset, batch_length and magic
 * are still filled in then, they sit at the same place in magic 0/1). The
 * lengths are not checked against len. */
SM_MUST_CHECK sm_err_t sm_batch_header_parse(const uint8_t *p, size_t len, sm_batch_info_t *out);

/* Full validation of ONE batch at p (len may extend beyond it): sizes,
 * magic == 2, compression codec known, CRC32C, recordCount ==
 * lastOffsetDelta + 1 (> 0), and for uncompressed batches every record
 * parses exactly to the batch end with offsetDelta == its index. Returns
 * SM_OK and fills *out; otherwise SM_ERR_CORRUPT (CRC mismatch),
 * SM_ERR_PARSE (truncated / malformed framing), SM_ERR_INVALID (bad value)
 * or SM_ERR_UNSUPPORTED (magic 0/1), and *why (if why is not NULL) points
 * to a static message. */
SM_MUST_CHECK sm_err_t sm_batch_validate(const uint8_t *p, size_t len, sm_batch_info_t *out,
                                         const char **why);

/* Validation of a batch as a log may hold it after compaction (replication
 * from a cleaned leader, recovery, tools): as sm_batch_validate, except that
 * records may have been removed by the log cleaner, so recordCount may be
 * below lastOffsetDelta + 1 (down to 0: an empty batch kept for a
 * producer's state) and the offsetDeltas of uncompressed records only have
 * to increase and stay <= lastOffsetDelta. Batches that were not cleaned
 * get exactly the checks of sm_batch_validate. */
SM_MUST_CHECK sm_err_t sm_batch_validate_stored(const uint8_t *p, size_t len,
                                                sm_batch_info_t *out, const char **why);

/* Validate a whole records blob (batches back to back, as in a Produce
 * request; the blob must end exactly at a batch end). Outputs the number of
 * batches and the total record count. Errors as sm_batch_validate(); an
 * empty blob is SM_ERR_INVALID. */
SM_MUST_CHECK sm_err_t sm_batches_validate(const uint8_t *p, size_t len, int *nbatches,
                                           int32_t *nrecords, const char **why);

/* In-place patches used by the log on append (p is the start of a batch of
 * at least SM_BATCH_HEADER_SIZE bytes, already validated). Base offset and
 * leader epoch are outside the CRC; LogAppendTime sets maxTimestamp and the
 * timestamp-type attribute bit and recomputes the CRC over the batch. */
void sm_batch_set_base_offset(uint8_t *p, int64_t base_offset);
void sm_batch_set_leader_epoch(uint8_t *p, int32_t epoch);
void sm_batch_set_log_append_time(uint8_t *p, int64_t ts_ms);

/* ------------------------------------------------ records (uncompressed) */

typedef struct sm_record_header {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len == -1 */
    int32_t value_len;
} sm_record_header_t;

/* One record as decoded from a batch; pointers borrow the batch bytes. */
typedef struct sm_record {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    const uint8_t *key; /* NULL when key_len == -1 */
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len == -1 */
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* raw header bytes; walk with sm_record_header_next */
    size_t headers_len;
} sm_record_t;

/* Cursor over the records of an uncompressed batch (validated or not: it
 * stops with an error on malformed bytes). */
typedef struct sm_record_iter {
    sm_rd_t rd;
    int32_t left;
    int32_t index;
} sm_record_iter_t;

/* Start iterating the batch at p (whole batch readable, total bytes). Fails
 * with SM_ERR_UNSUPPORTED for compressed batches, SM_ERR_PARSE if short. */
SM_MUST_CHECK sm_err_t sm_record_iter_init(sm_record_iter_t *it, const uint8_t *p, size_t len);
/* Next record: SM_OK, SM_ERR_NOT_FOUND at the end, SM_ERR_PARSE if bad. */
SM_MUST_CHECK sm_err_t sm_record_iter_next(sm_record_iter_t *it, sm_record_t *rec);
/* Walk raw header bytes from an sm_record_t: SM_OK, SM_ERR_NOT_FOUND at the
 * end, SM_ERR_PARSE if malformed. */
SM_MUST_CHECK sm_err_t sm_record_header_next(sm_rd_t *rd, sm_record_header_t *h);

/* -------------------------------------------------------------- encoder */

/* Input for the encoder: one record; key/value NULL with len -1 for null. */
typedef struct sm_record_in {
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
    int64_t timestamp; /* absolute, ms */
    int nheaders;
    const sm_record_header_t *headers;
} sm_record_in_t;

typedef struct sm_batch_params {
    int64_t base_offset;
    int32_t leader_epoch; /* -1 from producers */
    int16_t attributes;   /* compression must be NONE */
    int64_t producer_id;  /* -1 if none */
    int16_t producer_epoch;
    int32_t base_sequence;
} sm_batch_params_t;

/* Append one uncompressed magic-2 batch of n (> 0) records to w, with the
 * CRC computed. For tests, tools and broker-made batches (control records). */
void sm_batch_encode(sm_wbuf_t *w, const sm_batch_params_t *bp, const sm_record_in_t *recs,
                     int n);

#endif
