/*
 * batch_find.h - looking at the individual records of ONE record batch,
 * compressed or not: the exact record for a timestamp lookup, the record
 * with the largest timestamp, and a record iterator for tools.
 *
 * Why: Kafka answers ListOffsets(timestamp) with the offset of the first
 * record whose timestamp >= target, not the base offset of the batch that
 * holds it, and ListOffsets(MAX_TIMESTAMP = -3) with the offset of the
 * record carrying the largest timestamp (the first such record on ties).
 * Records inside a batch may be out of timestamp order, so the whole batch
 * is scanned.
 *
 * Timestamps: a record's timestamp is baseTimestamp + its timestampDelta,
 * except in LogAppendTime batches (attributes bit 3), where every record's
 * timestamp is the batch's maxTimestamp (the broker overwrote it; the
 * deltas are the producer's stale values). Offsets are baseOffset +
 * offsetDelta.
 *
 * Input is one whole batch as read from a segment (len may extend beyond
 * it): the header is parsed with sm_batch_header_parse, a compressed
 * records section is inflated once into a private buffer bounded by
 * max_out, and bad bytes give an error (never a crash). The CRC is not
 * checked here (sm_batch_validate does that).
 *
 * Pure functions on caller memory: any thread; an sm_batch_records_t
 * belongs to the thread using it.
 */
#ifndef SM_BATCH_FIND_H
#define SM_BATCH_FIND_H

#include "batch.h"
#include "sm_common.h"

/* Decompression limit used by the two lookups below: a records section
 * that inflates past this is refused with SM_ERR_TOO_LARGE. Kafka's
 * largest batch (message.max.bytes) is ~1 MiB compressed; 64 MiB leaves
 * room for highly compressible data without letting a bomb through. */
#define SM_BATCH_FIND_MAX_OUT ((size_t)64 << 20)

/* First record (in batch order) with timestamp >= ts: its absolute offset
 * and timestamp. SM_ERR_NOT_FOUND if no record of this batch qualifies.
 * Errors: SM_ERR_PARSE (short or malformed batch or records),
 * SM_ERR_UNSUPPORTED (magic != 2, unknown codec), SM_ERR_CORRUPT (bad
 * compressed data), SM_ERR_TOO_LARGE (over SM_BATCH_FIND_MAX_OUT). Control
 * batches are searched like any other (Kafka does the same).
 * Cost: a CreateTime batch is always decompressed and scanned, so a caller
 * walking several batches should first skip those whose header
 * maxTimestamp < ts, as Kafka does (this function stays exact even if a
 * producer wrote a wrong maxTimestamp). The caller also applies the log
 * start offset: a hit below it is not an answer. */
SM_MUST_CHECK sm_err_t sm_batch_find_timestamp(const uint8_t *batch, size_t len, int64_t ts,
                                               int64_t *offset, int64_t *timestamp);

/* The record with the largest timestamp (the first one on ties): its
 * absolute offset and timestamp. SM_ERR_NOT_FOUND for a batch with no
 * records. Errors as sm_batch_find_timestamp. */
SM_MUST_CHECK sm_err_t sm_batch_find_max_timestamp(const uint8_t *batch, size_t len,
                                                   int64_t *offset, int64_t *timestamp);

/* Iterator over the records of one possibly compressed batch. Records
 * returned by _next borrow either the caller's batch bytes (uncompressed)
 * or the iterator's private buffer (compressed): valid until _close. */
typedef struct sm_batch_records {
    sm_batch_info_t info; /* the parsed header, for the caller's use */
    uint8_t *owned;       /* header + inflated records, or NULL */
    sm_record_iter_t it;
} sm_batch_records_t;

/* Parse the header and, if compressed, inflate the records (at most
 * max_out bytes). On error nothing needs closing (closing is harmless).
 * Errors as sm_batch_find_timestamp, with max_out as the limit. */
SM_MUST_CHECK sm_err_t sm_batch_records_open(sm_batch_records_t *br, const uint8_t *batch,
                                             size_t len, size_t max_out);
/* Next record: SM_OK, SM_ERR_NOT_FOUND after the last one (recordCount
 * records), SM_ERR_PARSE on malformed record bytes. */
SM_MUST_CHECK sm_err_t sm_batch_records_next(sm_batch_records_t *br, sm_record_t *rec);
/* Absolute timestamp and offset of a record from this batch (LogAppendTime
 * aware, see above). */
int64_t sm_batch_records_timestamp(const sm_batch_records_t *br, const sm_record_t *rec);
int64_t sm_batch_records_offset(const sm_batch_records_t *br, const sm_record_t *rec);
/* Free the private buffer; the iterator may be opened again afterwards. */
void sm_batch_records_close(sm_batch_records_t *br);

#endif
