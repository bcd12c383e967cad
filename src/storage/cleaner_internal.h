/*
 * cleaner_internal.h - what the two halves of the log cleaner share:
 * cleaner.c (the pass: window, offset map, transactions, reading) and
 * cleaner_group.c (one group of segments: the rewrite and the swap). See
 * cleaner.c for the algorithm. Not for use outside src/storage.
 */
#ifndef SM_STORAGE_CLEANER_INTERNAL_H
#define SM_STORAGE_CLEANER_INTERNAL_H

#include "cleaner.h"
#include "log_internal.h"

#define READ_CHUNK (1 << 20)
#define WRITE_CHUNK (1 << 20)

enum { F_LOG, F_INDEX, F_TIMEINDEX, F_TXNINDEX, F_COUNT };

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

typedef struct throttle {
    int64_t rate, bytes, start_us;
    const int *stop;
} throttle_t;

/* Sequential reader of whole batches of one .log through a window buffer. */
typedef struct reader {
    int fd;
    int64_t pos, size;
    uint8_t *buf;
    size_t cap, len;
    int64_t buf_pos;
    throttle_t *th;
    int64_t *bytes_read;
} reader_t;

/* Kafka's CleanedTransactionMetadata: which batches belong to aborted
 * transactions, and whether a marker may go. One per pass (map building
 * has its own), fed every batch in offset order. */
typedef struct ongoing {
    sm_log_aborted_t a;
    bool observed; /* a batch of it was seen in this pass */
} ongoing_t;

typedef struct txn_state {
    sm_log_aborted_t *aborted; /* sorted by first offset */
    int naborted, next;
    ongoing_t *ab;
    int nab, ab_cap;
    int64_t *committed; /* producers with data seen and no marker yet */
    int ncommitted, committed_cap;
    sm_log_aborted_t *kept; /* entries for the cleaned .txnindex */
    int nkept, kept_cap;
} txn_state_t;

typedef struct snap_seg {
    sm_segment_t *seg;
    int64_t base, size;
} snap_seg_t;

typedef struct cleaning {
    sm_log_t *log;
    const sm_clean_params_t *p;
    sm_clean_result_t *r;
    sm_offset_map_t *map;
    snap_seg_t *segs; /* base < first uncleanable, from the log start */
    int nsegs;
    int64_t next_base; /* base of the segment after the snapshot */
    int64_t end;       /* records at or past it are kept as they are */
    int32_t index_interval;
    throttle_t th;
    reader_t rd;
    sm_log_aborted_t *aborted;
    int naborted;
} cleaning_t;

/* Sleep so that the bytes moved stay under the rate (Kafka's Throttler). */
void sm_cleaner_throttle(throttle_t *t, int64_t n);
/* Start reading a pinned .log fd of size bytes with c's reader. */
void sm_cleaner_reader_start(cleaning_t *c, int fd, int64_t size);
/* Next whole batch: SM_OK with *p (valid until the next call), SM_ERR_NOT_FOUND at the end. */
SM_MUST_CHECK sm_err_t sm_cleaner_reader_next(reader_t *r, sm_batch_info_t *b, const uint8_t **p);
/* The batch with its records in clear (*owned: a decompressed copy to free, or NULL). */
SM_MUST_CHECK sm_err_t sm_cleaner_batch_plain(const uint8_t *p, const sm_batch_info_t *b,
                                              uint8_t **owned, const uint8_t **view,
                                              size_t *view_len);
/* Control record type of a control batch (0 abort, 1 commit, -1 unknown). */
int sm_cleaner_control_type(const uint8_t *view, size_t len);
/* A data batch: true when it belongs to an aborted transaction. */
bool sm_cleaner_txn_on_batch(txn_state_t *t, const sm_batch_info_t *b);
/* A control batch: true when no batch of its transaction is left. */
bool sm_cleaner_txn_on_control(txn_state_t *t, const sm_batch_info_t *b, int type);
bool sm_cleaner_stopping(const cleaning_t *c);
/* Pin the files of a snapshot segment if it is still in the log (else SM_ERR_AGAIN). */
SM_MUST_CHECK sm_err_t sm_cleaner_pin_member(sm_log_t *log, sm_segment_t *seg, sm_segfiles_t **f);
/* Rewrite snapshot segments [from, to) into one cleaned segment and swap it in. */
SM_MUST_CHECK sm_err_t sm_cleaner_clean_group(cleaning_t *c, txn_state_t *t, int from, int to);

#endif
