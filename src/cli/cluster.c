/*
 * cluster.c - `samsa cluster info`: cluster id, controller, brokers with
 * their advertised listener and rack, and the API version ranges the broker
 * we reached supports.
 *
 * Cluster id, controller and brokers come from librdkafka's Metadata; racks
 * from DescribeCluster and the API table from ApiVersions come over the
 * project's wire client (librdkafka 2.0.2 exposes neither). Main thread only.
 */
#include "admin_wire.h"
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

static void cluster_usage(FILE *f)
{
    fprintf(f, "usage: samsa cluster info\n"
               "  Cluster id, controller, brokers (id, host:port, rack) and the API versions\n"
               "  supported by the broker samsa connected to.\n");
}

static int cmp_broker(const void *x, const void *y)
{
    return ((const rd_kafka_metadata_broker_t *)x)->id -
           ((const rd_kafka_metadata_broker_t *)y)->id;
}

/* Rack of broker id from a DescribeCluster response (NULL if unknown). */
static const char *rack_of(const sm_describe_cluster_response_t *dc, int32_t id, char *buf,
                           size_t len)
{
    for (int i = 0; dc && i < dc->brokers_count; i++)
        if (dc->brokers[i].broker_id == id && dc->brokers[i].rack.len >= 0) {
            snprintf(buf, len, "%.*s", dc->brokers[i].rack.len, dc->brokers[i].rack.ptr);
            return buf;
        }
    return NULL;
}

static int cluster_info(void)
{
    cli_rk_t k;
    if (!cli_rk_new(&k, RD_KAFKA_PRODUCER, NULL, NULL, NULL))
        return CLI_EXIT_FAIL;
    const struct rd_kafka_metadata *md;
    if (!cli_rk_metadata(&k, NULL, &md)) {
        cli_rk_destroy(&k);
        return CLI_EXIT_FAIL;
    }
    char *cluster_id = rd_kafka_clusterid(k.rk, cli_g.timeout_ms);
    int32_t controller = rd_kafka_controllerid(k.rk, cli_g.timeout_ms);

    cli_wire_t w;
    sm_arena_t a;
    sm_arena_init(&a);
    sm_describe_cluster_response_t *dc = NULL;
    bool have_wire = cli_wire_connect(&w, cli_g.brokers);
    if (have_wire && w.max_ver[SM_API_DESCRIBE_CLUSTER] >= 0) {
        int16_t v;
        sm_describe_cluster_request_t req;
        sm_describe_cluster_request_init(&req);
        void *resp;
        if (cli_wire_version(&w, SM_API_DESCRIBE_CLUSTER, 0, 1, &v) &&
            cli_wire_call(&w, SM_API_DESCRIBE_CLUSTER, v, &req, &a, &resp)) {
            dc = resp;
            if (dc->error_code) {
                cli_warn("DescribeCluster: %s", cli_kafka_err_name(dc->error_code));
                dc = NULL;
            }
        }
    }
    rd_kafka_metadata_broker_t *bs = calloc((size_t)md->broker_cnt + 1, sizeof *bs);
    memcpy(bs, md->brokers, sizeof *bs * (size_t)md->broker_cnt);
    qsort(bs, (size_t)md->broker_cnt, sizeof *bs, cmp_broker);
    char rack[256];
    if (cli_g.format == CLI_FMT_JSON) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj_begin(&j);
        cli_json_kstr(&j, "cluster_id", cluster_id);
        cli_json_kint(&j, "controller", controller);
        cli_json_key(&j, "brokers");
        cli_json_arr_begin(&j);
        for (int i = 0; i < md->broker_cnt; i++) {
            cli_json_obj_begin(&j);
            cli_json_kint(&j, "id", bs[i].id);
            cli_json_kstr(&j, "host", bs[i].host);
            cli_json_kint(&j, "port", bs[i].port);
            cli_json_kstr(&j, "rack", rack_of(dc, bs[i].id, rack, sizeof rack));
            cli_json_kbool(&j, "controller", bs[i].id == controller);
            cli_json_obj_end(&j);
        }
        cli_json_arr_end(&j);
        if (have_wire) {
            cli_json_kstr(&j, "api_versions_from", w.peer);
            cli_json_key(&j, "api_versions");
            cli_json_arr_begin(&j);
            for (int i = 0; i < w.versions->api_keys_count; i++) {
                const sm_api_versions_response_api_version_t *v = &w.versions->api_keys[i];
                const sm_api_desc_t *d = sm_api_desc(v->api_key);
                cli_json_obj_begin(&j);
                cli_json_kint(&j, "key", v->api_key);
                cli_json_kstr(&j, "name", d ? d->name : NULL);
                cli_json_kint(&j, "min", v->min_version);
                cli_json_kint(&j, "max", v->max_version);
                cli_json_obj_end(&j);
            }
            cli_json_arr_end(&j);
        }
        cli_json_obj_end(&j);
        cli_json_done(&j);
    } else {
        printf("Cluster ID:  %s\nController:  %d\n\nBROKERS\n", cluster_id ? cluster_id : "-",
               controller);
        cli_table_t t;
        cli_table_init(&t, 4);
        cli_table_cell(&t, "ID");
        cli_table_cell(&t, "HOST");
        cli_table_cell(&t, "PORT");
        cli_table_cell(&t, "RACK");
        for (int i = 0; i < md->broker_cnt; i++) {
            const char *r = rack_of(dc, bs[i].id, rack, sizeof rack);
            cli_table_cell(&t, "%d%s", bs[i].id, bs[i].id == controller ? "*" : "");
            cli_table_cell(&t, "%s", bs[i].host);
            cli_table_cell(&t, "%d", bs[i].port);
            cli_table_cell(&t, "%s", r ? r : "-");
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
        if (have_wire) {
            printf("\nAPI VERSIONS (%s)\n", w.peer);
            cli_table_init(&t, 4);
            cli_table_cell(&t, "KEY");
            cli_table_cell(&t, "NAME");
            cli_table_cell(&t, "MIN");
            cli_table_cell(&t, "MAX");
            for (int i = 0; i < w.versions->api_keys_count; i++) {
                const sm_api_versions_response_api_version_t *v = &w.versions->api_keys[i];
                const sm_api_desc_t *d = sm_api_desc(v->api_key);
                cli_table_cell(&t, "%d", v->api_key);
                cli_table_cell(&t, "%s", d ? d->name : "?");
                cli_table_cell(&t, "%d", v->min_version);
                cli_table_cell(&t, "%d", v->max_version);
            }
            cli_table_print(&t, stdout);
            cli_table_free(&t);
        }
    }
    free(bs);
    if (have_wire)
        cli_wire_close(&w);
    sm_arena_free(&a);
    if (cluster_id)
        rd_kafka_mem_free(k.rk, cluster_id);
    rd_kafka_metadata_destroy(md);
    cli_rk_destroy(&k);
    return CLI_EXIT_OK;
}

int cli_cmd_cluster(int argc, char **argv)
{
    int rc0 = cli_noun_start("cluster", cluster_usage, argc, argv);
    if (rc0 >= 0)
        return rc0;
    if (strcmp(argv[0], "info") == 0 || strcmp(argv[0], "describe") == 0) {
        int rc = cli_verb_no_args("cluster info", cluster_usage, argc, argv);
        return rc >= 0 ? rc : cluster_info();
    }
    return cli_usage_fail("cluster", "unknown verb '%s'", argv[0]);
}
