/*
 * storage.c - `samsa storage format|info|random-uuid`, offline log-directory
 * preparation in the manner of Kafka's kafka-storage tool.
 *
 * format reads the broker's server.properties (with the broker's own loader,
 * so the same keys, defaults and checks apply), then writes meta.properties
 * (cluster.id, a fresh directory.id, node.id, version=1) into every log dir
 * and the metadata log dir. A directory that already has meta.properties is
 * an error unless --ignore-formatted, because re-formatting would change the
 * identity of data that is already there. Writes are atomic (temp file,
 * fsync, rename). Runs without a broker; main thread only.
 */
#include "cli.h"
#include "config.h"
#include "meta_props.h"
#include "out.h"
#include "uuid.h"

#include <stdlib.h>
#include <string.h>

static void storage_usage(FILE *f)
{
    fprintf(f,
            "usage: samsa storage <verb> [args]\n"
            "  format -c CONFIG [--cluster-id ID] [--ignore-formatted] [--override key=value]...\n"
            "         write meta.properties into every log.dirs entry and metadata.log.dir\n"
            "         (a new random cluster id if none is given)\n"
            "  info -c CONFIG        show what each directory holds\n"
            "  random-uuid           print a new cluster id\n");
}

static int storage_format(int argc, char **argv, bool info)
{
    static const cli_opt_t opts[] = {{"config", 1, 'c'},
                                     {"cluster-id", 1, 't'},
                                     {"ignore-formatted", 0, 'g'},
                                     {"override", 1, 'o'},
                                     {0}};
    cli_args_t a;
    cli_args_init(&a, info ? "storage info" : "storage format", argc, argv);
    const char *path = NULL, *cluster_id = NULL;
    bool ignore = false;
    char **ovr = calloc((size_t)argc + 1, sizeof *ovr);
    int novr = 0, c, rc = CLI_EXIT_OK;
    sm_config_t cfg;
    bool loaded = false;
    while ((c = cli_getopt(&a, opts)) != -1) {
        switch (c) {
        case 'c': path = a.arg; break;
        case 't':
            if (info) {
                rc = cli_usage_fail(a.cmd, "--cluster-id is for format");
                goto out;
            }
            cluster_id = a.arg;
            break;
        case 'g': ignore = true; break;
        case 'o': ovr[novr++] = (char *)a.arg; break;
        case 0: rc = cli_usage_fail(a.cmd, "unexpected argument '%s'", a.arg); goto out;
        case 'h': cli_verb_help(stdout, storage_usage, a.cmd); goto out;
        default: rc = CLI_EXIT_USAGE; goto out;
        }
    }
    if (!path) {
        rc = cli_usage_fail(a.cmd, "-c CONFIG (the broker's server.properties) is required");
        goto out;
    }
    char cid[SM_CLUSTER_ID_SIZE];
    if (cluster_id) {
        sm_uuid_t u;
        if (sm_uuid_parse(cluster_id, strlen(cluster_id), &u) != SM_OK) {
            rc = cli_fail("cluster id '%s' is not a valid Kafka Uuid (22 base64url characters; "
                          "'samsa storage random-uuid' makes one)", cluster_id);
            goto out;
        }
        snprintf(cid, sizeof cid, "%s", cluster_id);
    } else {
        sm_uuid_t u;
        sm_uuid_random(&u);
        sm_uuid_to_str(&u, cid);
    }
    char err[1024];
    if (sm_config_load(path, ovr, novr, &cfg, err, sizeof err) != SM_OK) {
        rc = cli_fail("%s", err);
        goto out;
    }
    loaded = true;
    const char *dirs[64];
    int ndirs = sm_config_dirs(&cfg, dirs, (int)SM_ARRAY_LEN(dirs));
    cli_json_t j;
    cli_json_init(&j, stdout);
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_obj_begin(&j);
        if (!info)
            cli_json_kstr(&j, "cluster_id", cid);
        cli_json_kint(&j, "node_id", cfg.node_id);
        cli_json_key(&j, "directories");
        cli_json_arr_begin(&j);
    }
    /* Check every directory before writing any, so a refused format
     * leaves nothing half done. */
    sm_meta_props_t *props = calloc((size_t)ndirs + 1, sizeof *props);
    bool *formatted = calloc((size_t)ndirs + 1, sizeof *formatted);
    for (int i = 0; i < ndirs; i++) {
        sm_err_t e = sm_meta_props_read(dirs[i], &props[i], err, sizeof err);
        if (e == SM_OK) {
            formatted[i] = true;
        } else if (e != SM_ERR_NOT_FOUND) {
            rc = cli_fail("%s", err);
        }
        if (!info && formatted[i] && !ignore)
            rc = cli_fail("log directory %s is already formatted (cluster.id=%s node.id=%d); "
                          "use --ignore-formatted to skip it",
                          dirs[i], props[i].cluster_id, props[i].node_id);
    }
    for (int i = 0; rc == CLI_EXIT_OK && i < ndirs; i++) {
        const char *status;
        if (info) {
            status = formatted[i] ? "formatted" : "not formatted";
        } else if (formatted[i]) {
            status = "already formatted, skipped";
        } else if (sm_meta_props_write(dirs[i], cfg.node_id, cid, err, sizeof err) != SM_OK) {
            rc = cli_fail("%s", err);
            break;
        } else {
            status = "formatted";
            if (sm_meta_props_read(dirs[i], &props[i], err, sizeof err) != SM_OK)
                cli_warn("%s", err); /* written but not readable back: say so */
        }
        if (cli_g.format == CLI_FMT_JSON) {
            cli_json_obj_begin(&j);
            cli_json_kstr(&j, "path", dirs[i]);
            cli_json_kstr(&j, "status", status);
            if (formatted[i] || !info) {
                cli_json_kstr(&j, "cluster_id", props[i].cluster_id[0] ? props[i].cluster_id : NULL);
                cli_json_kint(&j, "node_id", props[i].node_id);
                cli_json_kstr(&j, "directory_id",
                              props[i].directory_id[0] ? props[i].directory_id : NULL);
            }
            cli_json_obj_end(&j);
        } else if (info && formatted[i]) {
            printf("%s: cluster.id=%s node.id=%d directory.id=%s version=%d\n", dirs[i],
                   props[i].cluster_id, props[i].node_id,
                   props[i].directory_id[0] ? props[i].directory_id : "-", props[i].version);
        } else {
            printf("%s: %s\n", dirs[i], status);
        }
    }
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_arr_end(&j);
        cli_json_obj_end(&j);
        if (rc == CLI_EXIT_OK)
            cli_json_done(&j);
    } else if (!info && rc == CLI_EXIT_OK) {
        printf("cluster.id=%s node.id=%d\n", cid, cfg.node_id);
    }
    free(props);
    free(formatted);
out:
    if (loaded)
        sm_config_free(&cfg);
    free(ovr);
    return rc;
}

int cli_cmd_storage(int argc, char **argv)
{
    int rc0 = cli_noun_start("storage", storage_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    const char *verb = argv[0];
    if (strcmp(verb, "format") == 0)
        return storage_format(argc - 1, argv + 1, false);
    if (strcmp(verb, "info") == 0)
        return storage_format(argc - 1, argv + 1, true);
    if (strcmp(verb, "random-uuid") == 0) {
        if (argc > 1 && cli_is_help(argv[1])) {
            cli_verb_help(stdout, storage_usage, "storage random-uuid");
            return 0;
        }
        sm_uuid_t u;
        char s[SM_CLUSTER_ID_SIZE];
        sm_uuid_random(&u);
        printf("%s\n", sm_uuid_to_str(&u, s));
        return 0;
    }
    return cli_usage_fail("storage", "unknown verb '%s'", verb);
}
