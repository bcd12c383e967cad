/*
 * kafka_offline.c - kafka-dump-log.sh and kafka-storage.sh (see kafka.h):
 * the two scripts that work on files, without a broker.
 *
 * kafka-dump-log translates Kafka's flags (--files a,b --print-data-log
 * --deep-iteration) to `samsa dump-log`, which already prints Kafka's
 * "baseOffset: ... | offset: ..." lines; nothing is decoded here.
 *
 * kafka-storage format / info / random-uuid use the broker's own config
 * loader and meta.properties code (src/conf, src/meta), like
 * `samsa storage`, with Kafka's flags (-t/--cluster-id, -c/--config,
 * -g/--ignore-formatted) and Kafka's messages ("Formatting <dir> ...",
 * "Found log directory:", "All of the log directories are already
 * formatted."). Main thread only.
 */
#include "config.h"
#include "kafka.h"
#include "meta_props.h"
#include "uuid.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ kafka-dump-log */

enum {
    D_FILES = KO_FIRST_FREE, D_PRINT_DATA, D_DEEP, D_SKIP_META, D_VERIFY_INDEX, D_SANITY,
    D_MAX_BYTES, D_DECODER, D_OFFSETS_DECODER, D_TXN_DECODER, D_METADATA_DECODER,
    D_REMOTE_DECODER, D_SHARE_DECODER
};

int kafka_dump_log_main(int argc, char **argv)
{
    static const cli_opt_t opts[] = {{"files", 1, D_FILES},
                                     {"print-data-log", 0, D_PRINT_DATA},
                                     {"deep-iteration", 0, D_DEEP},
                                     {"skip-record-metadata", 0, D_SKIP_META},
                                     {"verify-index-only", 0, D_VERIFY_INDEX},
                                     {"index-sanity-check", 0, D_SANITY},
                                     {"max-bytes", 1, D_MAX_BYTES},
                                     {"key-decoder-class", 1, D_DECODER},
                                     {"value-decoder-class", 1, D_DECODER},
                                     {"offsets-decoder", 0, D_OFFSETS_DECODER},
                                     {"transaction-log-decoder", 0, D_TXN_DECODER},
                                     {"cluster-metadata-decoder", 0, D_METADATA_DECODER},
                                     {"remote-log-metadata-decoder", 0, D_REMOTE_DECODER},
                                     {"share-group-state-decoder", 0, D_SHARE_DECODER},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, "kafka-dump-log.sh", argc, argv);
    /* the translated argv: every file, -d, --deep (at most 2 + files) */
    char **out = sm_xcalloc((size_t)argc * 2 + 4, sizeof *out);
    char **owned = sm_xcalloc((size_t)argc + 1, sizeof *owned);
    int n = 0, nowned = 0, c, rc = -1;
    bool data = false, deep = false;
    while (rc < 0 && (c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case D_FILES: {
            char *list = owned[nowned++] = sm_xstrdup(a.arg);
            for (char *s = strtok(list, ","); s; s = strtok(NULL, ","))
                out[n++] = s;
            break;
        }
        case D_PRINT_DATA: data = true; break;
        case D_DEEP: deep = true; break;
        case D_SKIP_META: case D_SANITY: case D_VERIFY_INDEX: case D_METADATA_DECODER:
            /* index entries are always checked against the .log; metadata
             * records are always decoded */
            break;
        case D_MAX_BYTES: break;
        case D_DECODER:
            cli_warn("%s ignored: keys and values are printed as text", a.argv[a.i - 2]);
            break;
        case D_OFFSETS_DECODER: case D_TXN_DECODER: case D_REMOTE_DECODER:
        case D_SHARE_DECODER:
            rc = kafka_unsupported("kafka-dump-log.sh", "%s (records are printed raw)",
                                   a.argv[a.i - 1]);
            break;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); break;
        case 'h':
            printf("usage: kafka-dump-log.sh --files FILE[,FILE] [--print-data-log] "
                   "[--deep-iteration]\n");
            rc = CLI_EXIT_OK;
            break;
        default: rc = CLI_EXIT_USAGE; break;
        }
    }
    if (rc < 0 && n == 0) {
        fprintf(stderr, "kafka-dump-log.sh: Missing required argument \"[files]\"\n");
        rc = CLI_EXIT_FAIL;
    }
    if (rc < 0) {
        if (data)
            out[n++] = "--print-data";
        if (deep || data)
            out[n++] = "--deep";
        rc = cli_cmd_dump_log(n, out);
    }
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(out);
    return rc;
}

/* ------------------------------------------------------------ kafka-storage */

#define KS_SCRIPT "kafka-storage.sh"

enum {
    S_CONFIG = KO_FIRST_FREE, S_CLUSTER_ID, S_IGNORE, S_RELEASE, S_SCRAM, S_STANDALONE,
    S_INITIAL_CONTROLLERS, S_NO_INITIAL_CONTROLLERS, S_FEATURE
};

static void storage_usage(FILE *f)
{
    fprintf(f, "usage: kafka-storage.sh format -t CLUSTER_ID -c server.properties "
               "[--ignore-formatted]\n"
               "       kafka-storage.sh info -c server.properties\n"
               "       kafka-storage.sh random-uuid\n");
}

static int storage_cmd(int argc, char **argv, bool info)
{
    static const cli_opt_t opts[] = {{"config", 1, 'c'},
                                     {"cluster-id", 1, 't'},
                                     {"ignore-formatted", 0, 'g'},
                                     {"release-version", 1, 'r'},
                                     {"add-scram", 1, 'S'},
                                     {"standalone", 0, 's'},
                                     {"initial-controllers", 1, 'I'},
                                     {"no-initial-controllers", 0, 'N'},
                                     {"feature", 1, 'f'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, info ? "kafka-storage.sh info" : "kafka-storage.sh format", argc, argv);
    const char *path = NULL, *cid = NULL;
    bool ignore = false, loaded = false;
    int c, rc = CLI_EXIT_OK;
    sm_config_t cfg;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 'c': path = a.arg; break;
        case 't': cid = a.arg; break;
        case 'g': ignore = true; break;
        case 'r': case 'f':
            cli_warn("%s ignored: Samsa's broker decides its own metadata.version",
                     a.argv[a.i - 2]);
            break;
        case 's': case 'N': break; /* a single node is its own quorum */
        case 'S':
            return kafka_unsupported(KS_SCRIPT, "--add-scram (SCRAM credentials)");
        case 'I':
            return kafka_unsupported(KS_SCRIPT, "--initial-controllers (dynamic KRaft quorums)");
        case 0: return cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg);
        case 'h': storage_usage(stdout); return CLI_EXIT_OK;
        default: return CLI_EXIT_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "%s: Missing required argument \"[config]\"\n", KS_SCRIPT);
        return CLI_EXIT_FAIL;
    }
    if (!info && !cid) {
        fprintf(stderr, "%s: Missing required argument \"[cluster-id]\"\n", KS_SCRIPT);
        return CLI_EXIT_FAIL;
    }
    sm_uuid_t u;
    if (cid && sm_uuid_parse(cid, strlen(cid), &u) != SM_OK)
        return cli_fail("Cluster ID string %s does not appear to be a valid UUID", cid);
    char err[1024];
    if (sm_config_load(path, NULL, 0, &cfg, err, sizeof err) != SM_OK)
        return cli_fail("%s", err);
    loaded = true;
    const char *dirs[64];
    int ndirs = sm_config_dirs(&cfg, dirs, (int)SM_ARRAY_LEN(dirs));
    sm_meta_props_t props[64];
    bool formatted[64] = {0};
    int nformatted = 0;
    for (int i = 0; i < ndirs; i++) {
        sm_err_t e = sm_meta_props_read(dirs[i], &props[i], err, sizeof err);
        if (e == SM_OK) {
            formatted[i] = true;
            nformatted++;
        } else if (e != SM_ERR_NOT_FOUND) {
            rc = cli_fail("%s", err);
            goto out;
        }
    }
    if (info) {
        for (int i = 0; i < ndirs; i++) {
            if (formatted[i])
                printf("Found log directory:\n  %s\n\nFound metadata: {cluster.id=%s, "
                       "directory.id=%s, node.id=%d, version=%d}\n\n",
                       dirs[i], props[i].cluster_id,
                       props[i].directory_id[0] ? props[i].directory_id : "null",
                       props[i].node_id, props[i].version);
            else
                printf("Found problem:\n  %s is not formatted.\n\n", dirs[i]);
        }
        rc = nformatted == ndirs ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < ndirs; i++)
        if (formatted[i] && !ignore) {
            rc = cli_fail("Log directory %s is already formatted. Use --ignore-formatted to "
                          "ignore this directory and format the others.",
                          dirs[i]);
            goto out;
        }
    if (nformatted == ndirs) {
        printf("All of the log directories are already formatted.\n");
        goto out;
    }
    for (int i = 0; i < ndirs; i++) {
        if (formatted[i])
            continue;
        if (sm_meta_props_write(dirs[i], cfg.node_id, cid, err, sizeof err) != SM_OK) {
            rc = cli_fail("%s", err);
            goto out;
        }
        printf("Formatting %s with cluster.id %s and node.id %d.\n", dirs[i], cid, cfg.node_id);
    }
out:
    if (loaded)
        sm_config_free(&cfg);
    return rc;
}

int kafka_storage_main(int argc, char **argv)
{
    if (argc < 1 || cli_is_help(argv[0])) {
        storage_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "format") == 0)
        return storage_cmd(argc - 1, argv + 1, false);
    if (strcmp(argv[0], "info") == 0)
        return storage_cmd(argc - 1, argv + 1, true);
    if (strcmp(argv[0], "random-uuid") == 0) {
        sm_uuid_t u;
        char s[SM_UUID_STR_LEN + 1];
        sm_uuid_random(&u);
        printf("%s\n", sm_uuid_to_str(&u, s));
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "version") == 0 || strcmp(argv[0], "feature") == 0 ||
        strcmp(argv[0], "version-mapping") == 0 || strcmp(argv[0], "feature-dependencies") == 0)
        return kafka_unsupported(KS_SCRIPT, "'%s' (metadata.version and feature levels are "
                                            "the broker's own)",
                                 argv[0]);
    storage_usage(stderr);
    return cli_usage_fail(KS_SCRIPT, "unknown command '%s'", argv[0]);
}
