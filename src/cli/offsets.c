/*
 * offsets.c - `samsa offsets TOPIC... [--time earliest|latest|TIME] [-p N]...`:
 * the offsets of each partition (kafka-get-offsets / GetOffsetShell).
 *
 * Per partition: the earliest offset (log start) and the latest (log end,
 * the high watermark), both from ListOffsets through librdkafka's
 * rd_kafka_query_watermark_offsets; with --time also the offset ListOffsets
 * answers for that time through rd_kafka_offsets_for_times: the first
 * offset whose timestamp is at or after TIME, or -1 (JSON null, table "-")
 * when no message is that new. --time earliest / latest ask ListOffsets for
 * its special timestamps -2 / -1. Table, or JSON with --format json.
 * Main thread only.
 */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

static void offsets_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa offsets TOPIC... [--time earliest|latest|TIME] [-p N]...\n"
            "  Earliest (log start) and latest (log end) offset of every partition.\n"
            "  -t, --time T        also the offset for T: earliest, latest, ms since the\n"
            "                      epoch or 2024-01-31T12:00:00Z (the first message at or\n"
            "                      after T; -1 when there is none)\n"
            "  -p, --partition N   only partition N (repeatable)\n");
}

int cli_cmd_offsets(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"time", 1, 't'}, {"partition", 1, 'p'}, {0}};
    cli_args_t a;
    cli_args_init(&a, "offsets", argc, argv);
    const char **topics = calloc((size_t)argc + 1, sizeof *topics);
    int32_t *only = calloc((size_t)argc + 1, sizeof *only);
    int ntopics = 0, nonly = 0, c, rc = CLI_EXIT_OK;
    int64_t ts = 0;
    const char *time_arg = NULL;
    cli_rk_t k = {0};
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 0: topics[ntopics++] = a.arg; break;
        case 't':
            time_arg = a.arg;
            if (strcmp(a.arg, "earliest") == 0 || strcmp(a.arg, "beginning") == 0)
                ts = RD_KAFKA_OFFSET_BEGINNING; /* ListOffsets timestamp -2 */
            else if (strcmp(a.arg, "latest") == 0 || strcmp(a.arg, "end") == 0)
                ts = RD_KAFKA_OFFSET_END;       /* -1 */
            else if (!cli_parse_datetime_ms(a.arg, &ts) || ts < 0) {
                rc = cli_usage_fail(a.cmd, "bad --time '%s' (earliest, latest, ms or "
                                           "2024-01-31T12:00:00Z)", a.arg);
                goto out;
            }
            break;
        case 'p':
            if (!cli_parse_i32(a.arg, 0, INT32_MAX, &only[nonly])) {
                rc = cli_usage_fail(a.cmd, "bad partition '%s'", a.arg);
                goto out;
            }
            nonly++;
            break;
        case 'h': offsets_usage(stdout); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!ntopics) {
        rc = cli_usage_fail(a.cmd, "at least one topic required");
        goto out;
    }
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL) || !cli_rk_metadata(&k, NULL, &md)) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < ntopics; i++) {
        const rd_kafka_metadata_topic_t *t = cli_md_topic(md, topics[i]);
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            rc = cli_fail("topic '%s' does not exist", topics[i]);
            continue;
        }
        for (int p = 0; p < t->partition_cnt; p++) {
            bool want = !nonly;
            for (int q = 0; q < nonly; q++)
                want = want || only[q] == t->partitions[p].id;
            if (want)
                rd_kafka_topic_partition_list_add(list, topics[i], t->partitions[p].id)->offset =
                    ts;
        }
        for (int q = 0; q < nonly; q++)
            if (only[q] >= t->partition_cnt)
                rc = cli_fail("topic '%s' has %d partitions, no partition %d", topics[i],
                              t->partition_cnt, only[q]);
    }
    if (rc)
        goto out;
    rd_kafka_topic_partition_list_sort(list, NULL, NULL);
    if (time_arg) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k.rk, list, cli_g.timeout_ms);
        if (err) {
            rc = cli_fail("offsets for time '%s': %s", time_arg, rd_kafka_err2str(err));
            goto out;
        }
    }
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_table_t t;
    cli_table_init(&t, time_arg ? 5 : 4);
    cli_table_cell(&t, "TOPIC");
    cli_table_cell(&t, "PARTITION");
    cli_table_cell(&t, "EARLIEST");
    cli_table_cell(&t, "LATEST");
    if (time_arg)
        cli_table_cell(&t, "OFFSET@%s", time_arg);
    if (cli_g.format == CLI_FMT_JSON)
        cli_json_arr_begin(&j);
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *p = &list->elems[i];
        int64_t lo, hi;
        if (!cli_rk_watermarks(&k, p->topic, p->partition, &lo, &hi))
            rc = cli_fail("%s [%d]: cannot list offsets", p->topic, p->partition);
        if (time_arg && p->err)
            rc = cli_fail("%s [%d]: offset for time: %s", p->topic, p->partition,
                          rd_kafka_err2str(p->err));
        /* No message at/after the time: librdkafka gives -1 (END). */
        int64_t at = time_arg && !p->err && p->offset >= 0 ? p->offset : -1;
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "topic", p->topic);
            cli_json_kint(&j, "partition", p->partition);
            cli_json_kint(&j, "earliest", lo);
            cli_json_kint(&j, "latest", hi);
            if (time_arg) {
                cli_json_kstr(&j, "time", time_arg);
                cli_json_key(&j, "offset");
                if (at >= 0)
                    cli_json_int(&j, at);
                else
                    cli_json_null(&j);
            }
            cli_json_obj_end(&j);
        } else {
            cli_table_cell(&t, "%s", p->topic);
            cli_table_cell(&t, "%d", p->partition);
            cli_table_cell(&t, "%lld", (long long)lo);
            cli_table_cell(&t, "%lld", (long long)hi);
            if (time_arg) {
                if (at >= 0)
                    cli_table_cell(&t, "%lld", (long long)at);
                else
                    cli_table_cell(&t, "-");
            }
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_done(&j);
    } else {
        cli_table_print(&t, stdout);
    }
    cli_table_free(&t);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(list);
    cli_rk_destroy(&k);
    free(topics);
    free(only);
    return rc;
}
