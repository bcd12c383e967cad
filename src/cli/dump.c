/*
 * dump.c - `samsa dump-log FILE...`: decode log segments (.log), offset
 * indexes (.index) and time indexes (.timeindex) offline, in the spirit of
 * kafka-dump-log.
 *
 * .log: every batch header (offsets, count, position, timestamps, producer
 * fields, codec, size) with "crcValid" from our own CRC-32C over bytes
 * [21, end) and a full validation verdict (sm_batch_validate); with --deep
 * or --print-data every record too (compressed batches are decompressed
 * with sm_decompress; control records show their marker; records of the
 * cluster metadata log show their record type). Bad bytes never stop the
 * tool with a crash: a torn tail or a bad length is reported with its
 * position and the dump of that file ends there, since batch framing cannot
 * be resynchronised.
 * .txnindex / .snapshot: aborted transactions and producer state snapshots
 * (dump_txn.c).
 * .index / .timeindex: every entry, checked against the segment's .log
 * next to it when it exists (the entry must point at a batch holding that
 * offset; time entries must match that batch's max timestamp), and for
 * increasing keys. Mismatches are listed and make the exit status 1.
 *
 * Files are read with pread in bounded pieces (a batch is read whole, up to
 * --max-batch-bytes), so multi-gigabyte segments dump in constant memory.
 * Main thread only.
 */
#include "batch.h"
#include "cli.h"
#include "compress.h"
#include "crc32c.h"
#include "dump_decode.h"
#include "out.h"
#include "proto.h"
#include "sm_proto_gen.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void dump_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa dump-log FILE... [options]\n"
            "  Decodes .log segments, .index, .timeindex, .txnindex and producer\n"
            "  .snapshot files (offline). Transaction markers (COMMIT/ABORT with the\n"
            "  coordinator epoch) show with --deep or --print-data.\n"
            "  -d, --print-data        print every record with its key, value and headers\n"
            "      --deep              print every record's metadata (no data)\n"
            "      --offsets-decoder   decode records as __consumer_offsets ones (offset\n"
            "                          commits, group metadata); implies --deep\n"
            "      --cluster-metadata-decoder\n"
            "                          decode records as metadata-log ones (TopicRecord,\n"
            "                          PartitionRecord, ...); implies --deep\n"
            "                          (both are on by themselves for files under a\n"
            "                          __consumer_offsets-N or __cluster_metadata-0 dir)\n"
            "      --max-batch-bytes N largest batch read whole (default 256MB)\n"
            "      --format json       machine-readable output\n");
}

typedef struct dump_opts {
    bool print_data, deep;
    bool offsets_decoder, metadata_decoder;
    int64_t max_batch;
} dump_opts_t;

typedef struct dump_ctx {
    const dump_opts_t *o;
    cli_json_t j;
    bool json;
    int problems; /* corrupt data, mismatches, over all files */
    bool metadata_log;
    bool offsets_log;   /* decode as __consumer_offsets */
    bool metadata_auto; /* a __cluster_metadata file: decode its records */
    /* JSON mode: this file's problems, emitted after its entries (a
     * problem may be found in the middle of an object) */
    char **plist;
    int64_t *ppos;
    int np, pcap;
    const char *file; /* the file being dumped */
} dump_ctx_t;

static bool pread_full(int fd, void *buf, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + (int64_t)got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        got += (size_t)k;
    }
    return true;
}

/* Base offset from "<20 digits>.<suffix>"; -1 if the name is not one. */
static int64_t base_from_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    int64_t v = 0;
    int i = 0;
    for (; name[i] && name[i] != '.'; i++) {
        if (!isdigit((unsigned char)name[i]) || i >= 20)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return i == 20 ? v : -1;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Print bytes for a human: printable ASCII/UTF-8 as is, the rest \xNN. */
static void put_bytes(FILE *f, const uint8_t *p, int32_t n)
{
    if (!p || n < 0) {
        fputs("null", f);
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] != 0x7F && p[i] != '\\')
            fputc(p[i], f);
        else if (p[i] == '\\')
            fputs("\\\\", f);
        else
            fprintf(f, "\\x%02x", p[i]);
    }
}

static void problem(dump_ctx_t *c, const char *file, int64_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(dump_ctx_t *c, const char *file, int64_t pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->json) {
        if (c->np == c->pcap) {
            c->pcap = c->pcap ? c->pcap * 2 : 8;
            c->plist = sm_xrealloc(c->plist, sizeof(char *) * (size_t)c->pcap);
            c->ppos = sm_xrealloc(c->ppos, sizeof(int64_t) * (size_t)c->pcap);
        }
        c->plist[c->np] = sm_xstrdup(msg);
        c->ppos[c->np++] = pos;
    } else {
        printf("!! %s at position %lld: %s\n", file, (long long)pos, msg);
    }
}

/* dump_txn.c's problem callback. */
static void txn_problem(void *arg, int64_t pos, const char *msg)
{
    dump_ctx_t *c = arg;
    problem(c, c->file, pos, "%s", msg);
}

/* Control record: key = int16 version, int16 type. Transaction markers
 * (ABORT 0, COMMIT 1) carry a coordinator epoch; the KRaft ones name
 * themselves, and LeaderChange (2) is decoded (leader and voters). */
static void put_control(dump_ctx_t *c, const sm_record_t *r)
{
    sm_rd_t rd;
    sm_rd_init(&rd, r->key, r->key ? (size_t)r->key_len : 0);
    sm_rd_i16(&rd);
    int16_t type = sm_rd_i16(&rd);
    static const char *const names[] = {"ABORT", "COMMIT", "LeaderChange", "SnapshotHeader",
                                        "SnapshotFooter", "KRaftVersion", "KRaftVoters"};
    const char *name = rd.err ? "malformed"
                       : type >= 0 && type < (int16_t)SM_ARRAY_LEN(names) ? names[type]
                                                                           : "UNKNOWN";
    if (!rd.err && type == SM_CONTROL_LEADER_CHANGE && r->value) {
        sm_rd_t v;
        sm_rd_init(&v, r->value, (size_t)r->value_len);
        sm_arena_t a;
        sm_arena_init(&a);
        sm_leader_change_message_t m;
        sm_leader_change_message_init(&m);
        bool ok = sm_leader_change_message_decode(&v, &a, 0, &m) == SM_OK && !v.err;
        if (c->json) {
            cli_json_kstr(&c->j, "control", name);
            cli_json_kint(&c->j, "leader_id", ok ? m.leader_id : -1);
            cli_json_key(&c->j, "voters");
            cli_json_arr_begin(&c->j);
            for (int32_t i = 0; ok && i < m.voters_count; i++)
                cli_json_int(&c->j, m.voters[i].voter_id);
            cli_json_arr_end(&c->j);
        } else if (ok) {
            printf(" LeaderChange: {leaderId: %d, voters: [", m.leader_id);
            for (int32_t i = 0; i < m.voters_count; i++)
                printf("%s%d", i ? ", " : "", m.voters[i].voter_id);
            printf("]}");
        } else {
            printf(" LeaderChange: malformed");
        }
        sm_arena_free(&a);
        return;
    }
    int32_t coord_epoch = -1;
    if (type <= 1 && r->value && r->value_len >= 6) {
        sm_rd_t v;
        sm_rd_init(&v, r->value, (size_t)r->value_len);
        sm_rd_i16(&v);
        coord_epoch = sm_rd_i32(&v);
    }
    if (c->json) {
        cli_json_kstr(&c->j, "control", name);
        if (type <= 1)
            cli_json_kint(&c->j, "coordinator_epoch", coord_epoch);
    } else if (type <= 1) {
        printf(" endTxnMarker: %s coordinatorEpoch: %d", name, coord_epoch);
    } else {
        printf(" control: %s", name);
    }
}

/* Cluster metadata record value: uvarint frame, type, version, message. */
static void put_metadata(dump_ctx_t *c, const sm_record_t *r)
{
    sm_rd_t rd;
    sm_rd_init(&rd, r->value, r->value ? (size_t)r->value_len : 0);
    uint32_t frame = sm_rd_uvarint(&rd), type = sm_rd_uvarint(&rd), ver = sm_rd_uvarint(&rd);
    const sm_proto_msg_t *m = rd.err ? NULL : sm_proto_msg(SM_PROTO_RECORD, (int16_t)type);
    if (c->json) {
        cli_json_kstr(&c->j, "metadata_record", m ? m->name : NULL);
        cli_json_kint(&c->j, "metadata_type", rd.err ? -1 : (int64_t)type);
        cli_json_kint(&c->j, "metadata_version", rd.err ? -1 : (int64_t)ver);
    } else if (rd.err) {
        printf(" metadata: malformed");
    } else {
        printf(" metadata: %s(type %u, v%u, frame %u)", m ? m->name : "unknown", type, ver, frame);
    }
    if (c->o->metadata_decoder || c->metadata_auto) {
        if (!cli_decode_metadata_record(c->json ? &c->j : NULL, r->value, r->value_len))
            c->problems++;
    }
}

/* __consumer_offsets key/value, decoded (a record that does not decode is
 * a problem of the file). */
static void decode_offsets(dump_ctx_t *c, const sm_record_t *r)
{
    if (!cli_decode_offsets_record(c->json ? &c->j : NULL, r->key, r->key_len, r->value,
                                   r->value_len))
        c->problems++;
}

static void put_record(dump_ctx_t *c, const sm_batch_info_t *b, const sm_record_t *r)
{
    int64_t off = b->base_offset + r->offset_delta;
    bool lat = b->attributes & SM_BATCH_ATTR_LOG_APPEND_TIME;
    int64_t ts = lat ? b->max_timestamp : b->base_timestamp + r->timestamp_delta;
    int32_t seq = b->base_sequence >= 0 ? b->base_sequence + r->offset_delta : -1;
    sm_rd_t hr;
    sm_rd_init(&hr, r->headers, r->headers_len);
    if (c->json) {
        cli_json_obj_begin(&c->j);
        cli_json_kint(&c->j, "offset", off);
        cli_json_kint(&c->j, "timestamp", ts);
        cli_json_kint(&c->j, "key_size", r->key_len);
        cli_json_kint(&c->j, "value_size", r->value_len);
        cli_json_kint(&c->j, "sequence", seq);
        cli_json_key(&c->j, "headers");
        cli_json_arr_begin(&c->j);
        sm_record_header_t h;
        while (sm_record_header_next(&hr, &h) == SM_OK) {
            cli_json_obj_begin(&c->j);
            cli_json_key(&c->j, "key");
            cli_json_strn(&c->j, h.key, (size_t)h.key_len);
            if (c->o->print_data) {
                cli_json_key(&c->j, "value");
                cli_json_strn(&c->j, h.value, h.value_len < 0 ? 0 : (size_t)h.value_len);
            }
            cli_json_obj_end(&c->j);
        }
        cli_json_arr_end(&c->j);
        if (b->attributes & SM_BATCH_ATTR_CONTROL)
            put_control(c, r);
        else if (c->metadata_log)
            put_metadata(c, r);
        else if (c->offsets_log)
            decode_offsets(c, r);
        if (c->o->print_data) {
            cli_json_key(&c->j, "key");
            cli_json_strn(&c->j, r->key, r->key_len < 0 ? 0 : (size_t)r->key_len);
            cli_json_key(&c->j, "payload");
            cli_json_strn(&c->j, r->value, r->value_len < 0 ? 0 : (size_t)r->value_len);
        }
        cli_json_obj_end(&c->j);
        return;
    }
    printf("| offset: %lld %s: %lld keySize: %d valueSize: %d sequence: %d headerKeys: [",
           (long long)off, lat ? "LogAppendTime" : "CreateTime", (long long)ts, r->key_len,
           r->value_len, seq);
    sm_record_header_t h;
    int i = 0;
    while (sm_record_header_next(&hr, &h) == SM_OK) {
        fputs(i++ ? "," : "", stdout);
        put_bytes(stdout, h.key, h.key_len);
    }
    putchar(']');
    if (b->attributes & SM_BATCH_ATTR_CONTROL)
        put_control(c, r);
    else if (c->metadata_log)
        put_metadata(c, r);
    else if (c->offsets_log)
        decode_offsets(c, r);
    if (c->o->print_data) {
        if (r->header_count > 0) {
            fputs(" headers: ", stdout);
            sm_rd_init(&hr, r->headers, r->headers_len);
            i = 0;
            while (sm_record_header_next(&hr, &h) == SM_OK) {
                fputs(i++ ? "," : "", stdout);
                put_bytes(stdout, h.key, h.key_len);
                putchar('=');
                put_bytes(stdout, h.value, h.value_len);
            }
        }
        fputs(" key: ", stdout);
        put_bytes(stdout, r->key, r->key_len);
        fputs(" payload: ", stdout);
        put_bytes(stdout, r->value, r->value_len);
    }
    putchar('\n');
}

/* Records of one whole batch at p (total bytes). Compressed batches are
 * decompressed into a copy with an uncompressed header so the shared
 * record iterator can walk them. */
static void dump_records(dump_ctx_t *c, const char *file, int64_t pos, const uint8_t *p,
                         size_t total, const sm_batch_info_t *b)
{
    uint8_t *plain = NULL;
    const uint8_t *bp = p;
    size_t blen = total;
    int codec = b->attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
    if (codec) {
        uint8_t *out = NULL;
        size_t outlen = 0;
        sm_err_t err = sm_decompress((sm_codec_t)codec, p + SM_BATCH_HEADER_SIZE,
                                     total - SM_BATCH_HEADER_SIZE, (size_t)c->o->max_batch, &out,
                                     &outlen);
        if (err) {
            problem(c, file, pos, "cannot decompress %s records: %s", sm_codec_name(codec),
                    sm_err_str(err));
            return;
        }
        blen = SM_BATCH_HEADER_SIZE + outlen;
        plain = sm_xmalloc(blen);
        memcpy(plain, p, SM_BATCH_HEADER_SIZE);
        memcpy(plain + SM_BATCH_HEADER_SIZE, out, outlen);
        free(out);
        int16_t attrs = (int16_t)(b->attributes & ~SM_BATCH_ATTR_COMPRESSION_MASK);
        plain[SM_BATCH_OFF_ATTRIBUTES] = (uint8_t)(attrs >> 8);
        plain[SM_BATCH_OFF_ATTRIBUTES + 1] = (uint8_t)attrs;
        int32_t bl = (int32_t)(blen - SM_BATCH_LOG_OVERHEAD);
        plain[SM_BATCH_OFF_LENGTH] = (uint8_t)(bl >> 24);
        plain[SM_BATCH_OFF_LENGTH + 1] = (uint8_t)(bl >> 16);
        plain[SM_BATCH_OFF_LENGTH + 2] = (uint8_t)(bl >> 8);
        plain[SM_BATCH_OFF_LENGTH + 3] = (uint8_t)bl;
        bp = plain;
    }
    sm_record_iter_t it;
    sm_err_t err = sm_record_iter_init(&it, bp, blen);
    if (err) {
        problem(c, file, pos, "cannot iterate records: %s", sm_err_str(err));
        free(plain);
        return;
    }
    if (c->json) {
        cli_json_key(&c->j, "records");
        cli_json_arr_begin(&c->j);
    }
    sm_record_t r;
    int n = 0;
    while ((err = sm_record_iter_next(&it, &r)) == SM_OK) {
        put_record(c, b, &r);
        n++;
    }
    if (c->json)
        cli_json_arr_end(&c->j);
    if (err != SM_ERR_NOT_FOUND)
        problem(c, file, pos, "record %d of the batch is malformed", n);
    else if (n != b->record_count)
        problem(c, file, pos, "batch says %d records, found %d", b->record_count, n);
    free(plain);
}

static void dump_log(dump_ctx_t *c, const char *file, int fd, int64_t size)
{
    int64_t base = base_from_name(file);
    /* The decoders are on for the internal topics' own directories, or
     * wherever the flags say. */
    c->metadata_auto = strstr(file, "__cluster_metadata") != NULL;
    c->metadata_log = c->metadata_auto || c->o->metadata_decoder;
    c->offsets_log = !c->metadata_log &&
                     (c->o->offsets_decoder || strstr(file, "__consumer_offsets-") != NULL);
    if (c->json) {
        cli_json_kint(&c->j, "base_offset", base);
        cli_json_key(&c->j, "batches");
        cli_json_arr_begin(&c->j);
    } else {
        printf("Log starting offset: %lld\n", (long long)base);
    }
    uint8_t hdr[SM_BATCH_HEADER_SIZE];
    uint8_t *buf = NULL;
    size_t cap = 0;
    int64_t pos = 0, expect = base >= 0 ? base : -1;
    while (pos < size) {
        int64_t left = size - pos;
        if (left < SM_BATCH_LOG_OVERHEAD + 5) {
            problem(c, file, pos, "%lld trailing bytes, too short for a batch header",
                    (long long)left);
            break;
        }
        size_t hn = (size_t)SM_MIN(left, (int64_t)SM_BATCH_HEADER_SIZE);
        if (!pread_full(fd, hdr, hn, pos)) {
            problem(c, file, pos, "read failed: %s", strerror(errno));
            break;
        }
        sm_batch_info_t b;
        sm_err_t err = sm_batch_header_parse(hdr, hn, &b);
        if (err == SM_ERR_UNSUPPORTED) {
            problem(c, file, pos, "magic %d batch (only magic 2 is decoded)", b.magic);
            if (b.batch_length <= 0 || (int64_t)b.batch_length + 12 > left)
                break;
            pos += (int64_t)b.batch_length + SM_BATCH_LOG_OVERHEAD;
            continue;
        }
        if (err) {
            problem(c, file, pos, "truncated batch header (%lld bytes left)", (long long)left);
            break;
        }
        int64_t total = sm_batch_total_size(&b);
        if (b.batch_length < SM_BATCH_HEADER_SIZE - SM_BATCH_LOG_OVERHEAD) {
            problem(c, file, pos, "bad batch length %d", b.batch_length);
            break;
        }
        if (total > left) {
            problem(c, file, pos, "batch of %lld bytes but only %lld bytes left (torn write?)",
                    (long long)total, (long long)left);
            break;
        }
        bool crc_ok = false, have_body = total <= c->o->max_batch;
        const char *why = NULL;
        if (have_body) {
            if ((size_t)total > cap) {
                cap = (size_t)total;
                buf = sm_xrealloc(buf, cap);
            }
            if (!pread_full(fd, buf, (size_t)total, pos)) {
                problem(c, file, pos, "read failed: %s", strerror(errno));
                break;
            }
            crc_ok = sm_crc32c(0, buf + SM_BATCH_OFF_ATTRIBUTES,
                               (size_t)total - SM_BATCH_OFF_ATTRIBUTES) == b.crc;
            sm_batch_info_t vb;
            if (sm_batch_validate_stored(buf, (size_t)total, &vb, &why) == SM_OK)
                why = NULL;
        }
        int codec = b.attributes & SM_BATCH_ATTR_COMPRESSION_MASK;
        bool txn = b.attributes & SM_BATCH_ATTR_TRANSACTIONAL;
        bool ctl = b.attributes & SM_BATCH_ATTR_CONTROL;
        bool lat = b.attributes & SM_BATCH_ATTR_LOG_APPEND_TIME;
        int32_t last_seq = b.base_sequence >= 0 ? b.base_sequence + b.last_offset_delta : -1;
        if (c->json) {
            cli_json_obj_begin(&c->j);
            cli_json_kint(&c->j, "base_offset", b.base_offset);
            cli_json_kint(&c->j, "last_offset", sm_batch_last_offset(&b));
            cli_json_kint(&c->j, "count", b.record_count);
            cli_json_kint(&c->j, "position", pos);
            cli_json_kint(&c->j, "size", total);
            cli_json_kint(&c->j, "magic", b.magic);
            cli_json_kint(&c->j, "partition_leader_epoch", b.leader_epoch);
            cli_json_kint(&c->j, "base_sequence", b.base_sequence);
            cli_json_kint(&c->j, "last_sequence", last_seq);
            cli_json_kint(&c->j, "producer_id", b.producer_id);
            cli_json_kint(&c->j, "producer_epoch", b.producer_epoch);
            cli_json_kbool(&c->j, "is_transactional", txn);
            cli_json_kbool(&c->j, "is_control", ctl);
            cli_json_kstr(&c->j, "timestamp_type", lat ? "LogAppendTime" : "CreateTime");
            cli_json_kint(&c->j, "base_timestamp", b.base_timestamp);
            cli_json_kint(&c->j, "max_timestamp", b.max_timestamp);
            cli_json_kstr(&c->j, "compression", sm_codec_name(codec));
            cli_json_kint(&c->j, "crc", b.crc);
            if (have_body)
                cli_json_kbool(&c->j, "crc_valid", crc_ok);
            else
                cli_json_kstr(&c->j, "crc_valid", NULL);
            cli_json_kstr(&c->j, "invalid_reason", why);
        } else {
            printf("baseOffset: %lld lastOffset: %lld count: %d baseSequence: %d lastSequence: %d "
                   "producerId: %lld producerEpoch: %d partitionLeaderEpoch: %d "
                   "isTransactional: %s isControl: %s position: %lld %s: %lld size: %lld "
                   "magic: %d compresscodec: %s crc: %u crcValid: %s%s%s\n",
                   (long long)b.base_offset, (long long)sm_batch_last_offset(&b), b.record_count,
                   b.base_sequence, last_seq, (long long)b.producer_id, b.producer_epoch,
                   b.leader_epoch, txn ? "true" : "false", ctl ? "true" : "false",
                   (long long)pos, lat ? "LogAppendTime" : "CreateTime",
                   (long long)b.max_timestamp, (long long)total, b.magic, sm_codec_name(codec),
                   b.crc, have_body ? (crc_ok ? "true" : "false") : "unchecked",
                   why ? " invalid: " : "", why ? why : "");
        }
        if (have_body && !crc_ok)
            c->problems++;
        else if (why)
            c->problems++;
        if (expect >= 0 && b.base_offset < expect)
            problem(c, file, pos, "base offset %lld goes back (expected >= %lld)",
                    (long long)b.base_offset, (long long)expect);
        expect = sm_batch_last_offset(&b) + 1;
        if (have_body && (c->o->print_data || c->o->deep || c->offsets_log || c->metadata_auto ||
                          c->o->metadata_decoder))
            dump_records(c, file, pos, buf, (size_t)total, &b);
        if (c->json)
            cli_json_obj_end(&c->j);
        pos += total;
    }
    free(buf);
    if (c->json)
        cli_json_arr_end(&c->j);
}

/* Batch header at pos of the .log (for index checks). */
static bool log_batch_at(int fd, int64_t size, int64_t pos, sm_batch_info_t *b)
{
    uint8_t hdr[SM_BATCH_HEADER_SIZE];
    if (pos < 0 || pos + SM_BATCH_HEADER_SIZE > size || !pread_full(fd, hdr, sizeof hdr, pos))
        return false;
    return sm_batch_header_parse(hdr, sizeof hdr, b) == SM_OK;
}

/* Batch containing offset, by scanning headers from *cursor (a batch
 * start; 0 at first). Time index offsets never decrease, so the cursor is
 * left at the found batch and the whole check is one pass over the log;
 * an offset behind the cursor restarts from 0. */
static bool log_find_offset(int fd, int64_t size, int64_t offset, int64_t *cursor,
                            sm_batch_info_t *b)
{
    if (*cursor > 0 && (!log_batch_at(fd, size, *cursor, b) || b->base_offset > offset))
        *cursor = 0;
    for (int64_t pos = *cursor; pos < size;) {
        if (!log_batch_at(fd, size, pos, b) || b->batch_length <= 0)
            return false;
        if (sm_batch_last_offset(b) >= offset) {
            *cursor = pos;
            return b->base_offset <= offset;
        }
        pos += sm_batch_total_size(b);
    }
    return false;
}

static void dump_index(dump_ctx_t *c, const char *file, int fd, int64_t size, bool time)
{
    int64_t base = base_from_name(file);
    if (base < 0) {
        problem(c, file, 0, "file name is not <20-digit base offset>%s; assuming base 0",
                time ? ".timeindex" : ".index");
        base = 0;
    }
    /* The segment's .log next to the index, for cross-checks. */
    size_t plen = strlen(file);
    const char *suffix = time ? ".timeindex" : ".index";
    char *logpath = sm_xasprintf("%.*s.log", (int)(plen - strlen(suffix)), file);
    int lfd = open(logpath, O_RDONLY | O_CLOEXEC);
    struct stat lst;
    int64_t lsize = lfd >= 0 && fstat(lfd, &lst) == 0 ? (int64_t)lst.st_size : -1;
    size_t esz = time ? 12 : 8;
    if (c->json) {
        cli_json_kint(&c->j, "base_offset", base);
        cli_json_kstr(&c->j, "checked_against", lfd >= 0 ? logpath : NULL);
        cli_json_key(&c->j, "entries");
        cli_json_arr_begin(&c->j);
    } else if (lfd < 0) {
        printf("(no %s next to it: entries not cross-checked)\n", logpath);
    }
    int64_t n = size / (int64_t)esz;
    int64_t prev_key = INT64_MIN, prev_val = -1, cursor = 0;
    uint8_t e[12];
    for (int64_t i = 0; i < n; i++) {
        if (!pread_full(fd, e, esz, i * (int64_t)esz)) {
            problem(c, file, i * (int64_t)esz, "read failed: %s", strerror(errno));
            break;
        }
        sm_rd_t rd;
        sm_rd_init(&rd, e, esz);
        int64_t key, val;
        if (time) {
            key = sm_rd_i64(&rd);
            val = base + sm_rd_i32(&rd);
        } else {
            key = base + sm_rd_i32(&rd);
            val = sm_rd_i32(&rd);
        }
        /* A preallocated (Kafka) index ends in zeroes: stop there. */
        if (i > 0 && ((!time && key == base && val == 0) || (time && key == 0 && val == base))) {
            if (!c->json)
                printf("(zero-filled tail from entry %lld)\n", (long long)i);
            break;
        }
        if (c->json) {
            cli_json_obj_begin(&c->j);
            if (time) {
                cli_json_kint(&c->j, "timestamp", key);
                cli_json_kint(&c->j, "offset", val);
            } else {
                cli_json_kint(&c->j, "offset", key);
                cli_json_kint(&c->j, "position", val);
            }
            cli_json_obj_end(&c->j);
        } else if (time) {
            printf("timestamp: %lld offset: %lld\n", (long long)key, (long long)val);
        } else {
            printf("offset: %lld position: %lld\n", (long long)key, (long long)val);
        }
        if (key <= prev_key && !(time && key == prev_key))
            problem(c, file, i * (int64_t)esz, "entry %lld: %s %lld not above the previous %lld",
                    (long long)i, time ? "timestamp" : "offset", (long long)key,
                    (long long)prev_key);
        if (time && val < prev_val)
            problem(c, file, i * (int64_t)esz, "entry %lld: offset %lld below the previous %lld",
                    (long long)i, (long long)val, (long long)prev_val);
        prev_key = key;
        prev_val = val;
        if (lfd < 0)
            continue;
        sm_batch_info_t b;
        if (!time) {
            if (!log_batch_at(lfd, lsize, val, &b))
                problem(c, file, i * 8, "index offset %lld points at position %lld, which is "
                        "not a batch in %s", (long long)key, (long long)val, logpath);
            else if (key < b.base_offset || key > sm_batch_last_offset(&b))
                problem(c, file, i * 8, "index offset %lld, but the batch at position %lld "
                        "holds offsets %lld-%lld", (long long)key, (long long)val,
                        (long long)b.base_offset, (long long)sm_batch_last_offset(&b));
        } else {
            if (!log_find_offset(lfd, lsize, val, &cursor, &b))
                problem(c, file, i * 12, "time index offset %lld is not in %s", (long long)val,
                        logpath);
            else if (b.max_timestamp != key)
                problem(c, file, i * 12, "time index says timestamp %lld at offset %lld, the "
                        "batch's max timestamp is %lld", (long long)key, (long long)val,
                        (long long)b.max_timestamp);
        }
    }
    if (size % (int64_t)esz)
        problem(c, file, n * (int64_t)esz, "%lld trailing bytes (partial entry)",
                (long long)(size % (int64_t)esz));
    if (c->json)
        cli_json_arr_end(&c->j);
    if (lfd >= 0)
        close(lfd);
    free(logpath);
}

int cli_cmd_dump_log(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"print-data", 0, 'd'}, {"print-data-log", 0, 'd'},
                                     {"deep", 0, 'D'},       {"deep-iteration", 0, 'D'},
                                     {"files", 1, 'f'},      {"max-batch-bytes", 1, 'm'},
                                     {"offsets-decoder", 0, 'O'},
                                     {"cluster-metadata-decoder", 0, 'M'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "dump-log", argc, argv);
    dump_opts_t o = {.max_batch = 256LL * 1024 * 1024};
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0, c, rc = CLI_EXIT_OK;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0:
        case 'f': files[nfiles++] = a.arg; break;
        case 'd': o.print_data = true; break;
        case 'D': o.deep = true; break;
        case 'O': o.offsets_decoder = true; break;
        case 'M': o.metadata_decoder = true; break;
        case 'm':
            if (!cli_parse_size(a.arg, &o.max_batch) || o.max_batch < SM_BATCH_HEADER_SIZE) {
                rc = cli_usage_fail(a.cmd, "bad --max-batch-bytes '%s'", a.arg);
                goto out;
            }
            break;
        case 'h': dump_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (o.offsets_decoder && o.metadata_decoder) {
        rc = cli_usage_fail(a.cmd, "--offsets-decoder and --cluster-metadata-decoder: one only");
        goto out;
    }
    if (nfiles == 0) {
        rc = cli_usage_fail(a.cmd, "give at least one file");
        goto out;
    }
    dump_ctx_t ctx = {.o = &o, .json = cli_g.format == CLI_FMT_JSON};
    cli_json_init(&ctx.j, stdout);
    if (ctx.json)
        cli_json_arr_begin(&ctx.j);
    for (int i = 0; i < nfiles; i++) {
        const char *f = files[i];
        int kind = ends_with(f, ".log") ? 0 : ends_with(f, ".index") ? 1
                 : ends_with(f, ".timeindex") ? 2 : ends_with(f, ".txnindex") ? 3
                 : ends_with(f, ".snapshot") ? 4 : -1;
        static const char *const kinds[] = {"log", "index", "timeindex", "txnindex", "snapshot"};
        if (kind < 0) {
            rc = cli_fail("%s: not a .log, .index, .timeindex, .txnindex or .snapshot file", f);
            continue;
        }
        int fd = open(f, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            rc = cli_fail("cannot open %s: %s", f, strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (ctx.json) {
            cli_json_obj_begin(&ctx.j);
            cli_json_kstr(&ctx.j, "file", f);
            cli_json_kstr(&ctx.j, "type", kinds[kind]);
        } else {
            printf("%sDumping %s\n", i ? "\n" : "", f);
        }
        ctx.file = f;
        if (kind == 0)
            dump_log(&ctx, f, fd, (int64_t)st.st_size);
        else if (kind == 3)
            cli_dump_txnindex(ctx.json ? &ctx.j : NULL, fd, (int64_t)st.st_size, txn_problem,
                              &ctx);
        else if (kind == 4)
            cli_dump_snapshot(ctx.json ? &ctx.j : NULL, fd, (int64_t)st.st_size, txn_problem,
                              &ctx);
        else
            dump_index(&ctx, f, fd, (int64_t)st.st_size, kind == 2);
        if (ctx.json) {
            cli_json_key(&ctx.j, "problems");
            cli_json_arr_begin(&ctx.j);
            for (int q = 0; q < ctx.np; q++) {
                cli_json_obj_begin(&ctx.j);
                cli_json_kint(&ctx.j, "position", ctx.ppos[q]);
                cli_json_kstr(&ctx.j, "message", ctx.plist[q]);
                cli_json_obj_end(&ctx.j);
                free(ctx.plist[q]);
            }
            ctx.np = 0;
            cli_json_arr_end(&ctx.j);
            cli_json_obj_end(&ctx.j);
        }
        close(fd);
    }
    if (ctx.json) {
        cli_json_arr_end(&ctx.j);
        cli_json_done(&ctx.j);
    }
    free(ctx.plist);
    free(ctx.ppos);
    if (ctx.problems) {
        fflush(stdout);
        rc = cli_fail("%d problem%s found", ctx.problems, ctx.problems == 1 ? "" : "s");
    }
out:
    free(files);
    return rc;
}
