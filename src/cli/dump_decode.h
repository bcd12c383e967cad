/*
 * dump_decode.h - decoders of internal-topic records for `samsa dump-log`:
 * __consumer_offsets (offset commits and group metadata) and the KRaft
 * metadata log __cluster_metadata-0 (TopicRecord, PartitionRecord, ...),
 * both through the project's generated codecs (coordinator_records.def,
 * metadata_records.def); and the transaction files .txnindex and .snapshot. Output goes to stdout as " name: {k: v, ...}"
 * text, or as JSON members of the record object being written (j not
 * NULL). Main thread only.
 */
#ifndef SM_CLI_DUMP_DECODE_H
#define SM_CLI_DUMP_DECODE_H

#include "out.h"

#include <stdint.h>

/* Decode one __consumer_offsets record (key and value bytes as stored;
 * value NULL = tombstone). Returns false when the bytes do not decode (a
 * "decode_error" is still printed). */
bool cli_decode_offsets_record(cli_json_t *j, const uint8_t *key, int32_t klen,
                               const uint8_t *val, int32_t vlen);
/* Decode one metadata-log record value (frame version, type, version,
 * message). Returns false when it does not decode. */
bool cli_decode_metadata_record(cli_json_t *j, const uint8_t *val, int32_t vlen);

/* Transaction files (dump_txn.c): report a problem found at a file
 * position. */
typedef void (*cli_dump_problem_fn)(void *arg, int64_t pos, const char *msg);
/* A .txnindex: every aborted transaction (JSON: an "aborted_transactions"
 * member of the file's object). */
void cli_dump_txnindex(cli_json_t *j, int fd, int64_t size, cli_dump_problem_fn problem,
                       void *arg);
/* A producer state .snapshot: header (CRC checked) and every producer
 * (JSON: members of the file's object). */
void cli_dump_snapshot(cli_json_t *j, int fd, int64_t size, cli_dump_problem_fn problem,
                       void *arg);

#endif
