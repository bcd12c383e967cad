/*
 * batch_rewrite.h - looking inside and re-framing a record batch on the
 * broker: the records section (decompressed when needed), the first record
 * without a key (compacted topics refuse those), and the same records under
 * another codec (a topic's compression.type).
 *
 * The records of a magic-2 batch are the same bytes whatever the codec:
 * only the section after the 61-byte header is compressed. Recompressing
 * therefore keeps every record, offset delta, timestamp and header exactly,
 * and the batch header too (producer id, epoch, sequence, timestamps,
 * transactional bit), except its length, codec bits and CRC.
 *
 * Pure functions over caller memory: any thread.
 */
#ifndef SM_BATCH_REWRITE_H
#define SM_BATCH_REWRITE_H

#include "batch.h"
#include "buf.h"
#include "compress.h"

/* The records section of the (validated) batch at p: *sec points into the
 * batch when it is uncompressed (*owned NULL), else to a malloc'ed
 * decompressed copy (*owned, to free). max_out bounds the decompressed size
 * (SM_ERR_TOO_LARGE). */
SM_MUST_CHECK sm_err_t sm_batch_section(const uint8_t *p, const sm_batch_info_t *b, size_t max_out,
                                        const uint8_t **sec, size_t *sec_len, uint8_t **owned);

/* Walk the records of a section: it->left records expected. */
void sm_record_iter_section(sm_record_iter_t *it, const uint8_t *sec, size_t len, int32_t count);

/* Check every record of the batch parses (count, offset deltas in order, the
 * section ends exactly after the last) and find the first record with a
 * null key: *keyless its index, or -1. SM_ERR_PARSE / SM_ERR_CORRUPT /
 * SM_ERR_TOO_LARGE when the records cannot be read. */
SM_MUST_CHECK sm_err_t sm_batch_scan(const uint8_t *p, const sm_batch_info_t *b, size_t max_out,
                                     int32_t *keyless);

/* Append to w the batch at p re-framed with codec at level (see
 * sm_compress_level), every record validated on the way (as sm_batch_scan).
 * The new batch's CRC is computed; its base offset and leader epoch are the
 * old ones (the log sets them). */
SM_MUST_CHECK sm_err_t sm_batch_recompress(const uint8_t *p, const sm_batch_info_t *b,
                                           sm_codec_t codec, int level, size_t max_out,
                                           sm_wbuf_t *w);

/* A batch whose header's max timestamp is below its base timestamp (sarama
 * 1.22 writes -1 there) gets the real one, the largest record timestamp,
 * written into the header in place with the CRC recomputed, as Kafka's
 * validator rewrites it. SM_OK also when nothing needed fixing. */
SM_MUST_CHECK sm_err_t sm_batch_fix_max_timestamp(uint8_t *p, const sm_batch_info_t *b,
                                                  size_t max_out);

#endif
