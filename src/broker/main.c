/*
 * main.c - samsa-broker entry point.
 *
 *   samsa-broker [server.properties] [--override key=value]...
 *
 * Loads the config as Kafka's kafka-server-start.sh does, then runs the
 * server until SIGTERM/SIGINT. Exit status: 0 after a graceful shutdown,
 * 1 if start-up failed (the reason is logged), 2 on bad usage.
 */
#include "config.h"
#include "log.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: samsa-broker [server.properties] [--override key=value]...\n"
               "       samsa-broker --version\n"
               "Starts a Samsa broker. Reads Kafka's server.properties keys; see docs/CONFIGURATION.md.\n"
               "Environment: SAMSA_LOG_LEVEL=trace|debug|info|warn|error\n");
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    char **overrides = calloc((size_t)argc, sizeof *overrides);
    int noverrides = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--override") == 0 && i + 1 < argc) {
            overrides[noverrides++] = argv[++i];
        } else if (strncmp(argv[i], "--override=", 11) == 0) {
            overrides[noverrides++] = argv[i] + 11;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            free(overrides);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("samsa-broker %s\n", SM_VERSION);
            free(overrides);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "samsa-broker: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(overrides);
            return 2;
        } else if (path) {
            fprintf(stderr, "samsa-broker: one config file only ('%s' and '%s')\n", path, argv[i]);
            usage(stderr);
            free(overrides);
            return 2;
        } else {
            path = argv[i];
        }
    }
    const char *lvl = getenv("SAMSA_LOG_LEVEL");
    if (lvl && *lvl) {
        if (sm_log_level_parse(lvl) >= 0)
            sm_log_set_level((sm_log_level_t)sm_log_level_parse(lvl));
        else
            SM_WARN("server", "SAMSA_LOG_LEVEL=%s is not a level (trace, debug, info, warn, "
                              "error); logging at info", lvl);
    }
    SM_INFO("server", "Samsa %s starting%s%s", SM_VERSION, path ? " with " : "", path ? path : "");

    int64_t t0 = sm_now_mono_us();
    sm_config_t cfg;
    char err[512];
    if (sm_config_load(path, overrides, noverrides, &cfg, err, sizeof err) != SM_OK) {
        SM_ERROR("config", "%s", err);
        free(overrides);
        return 1;
    }
    free(overrides);
    sm_server_t *srv = NULL;
    if (sm_server_open(&cfg, &srv) != SM_OK) {
        sm_config_free(&cfg);
        return 1;
    }
    SM_INFO("server", "started in %.1f ms", (double)(sm_now_mono_us() - t0) / 1000.0);
    sm_server_run(srv);
    sm_server_close(srv);
    sm_config_free(&cfg);
    SM_INFO("server", "shut down cleanly");
    return 0;
}
