/*
 * meta_props.h - the meta.properties file that marks a formatted log
 * directory, as Kafka's `kafka-storage format` writes it:
 *
 *     #
 *     #Written by samsa
 *     cluster.id=<22-char Kafka Uuid>
 *     directory.id=<22-char Kafka Uuid, unique per log dir>
 *     node.id=<int>
 *     version=1
 *
 * A directory with this file belongs to one cluster and one node for good:
 * starting a node with another node.id, or another cluster's directory, is
 * an error, because it would mix two nodes' data. version=0 files (from
 * ZooKeeper-mode Kafka) are read with broker.id standing for node.id.
 */
#ifndef SM_META_PROPS_H
#define SM_META_PROPS_H

#include "sm_common.h"
#include "uuid.h"

#define SM_META_PROPS_FILE "meta.properties"
#define SM_CLUSTER_ID_SIZE (SM_UUID_STR_LEN + 1)

typedef struct sm_meta_props {
    int version;                           /* 0 or 1 */
    int32_t node_id;                       /* -1 if absent */
    char cluster_id[SM_CLUSTER_ID_SIZE];   /* "" if absent */
    char directory_id[SM_CLUSTER_ID_SIZE]; /* "" if absent */
} sm_meta_props_t;

/* Read and parse <log_dir>/meta.properties. SM_ERR_NOT_FOUND if the file
 * does not exist, SM_ERR_IO if unreadable, SM_ERR_PARSE / SM_ERR_INVALID with
 * the path and line in err for a malformed file. Any thread. */
SM_MUST_CHECK sm_err_t sm_meta_props_read(const char *log_dir, sm_meta_props_t *out, char *err,
                                          size_t errlen);

/* Create log_dir if needed and write a new meta.properties atomically
 * (temp file, fsync, rename, fsync dir). cluster_id must be a valid Kafka
 * Uuid string. Any thread (blocking I/O). */
SM_MUST_CHECK sm_err_t sm_meta_props_write(const char *log_dir, int32_t node_id,
                                           const char *cluster_id, char *err, size_t errlen);

/*
 * Make sure log_dir is formatted for this node: if meta.properties is
 * missing, create the directory and format it with cluster_id_or_NULL (NULL =
 * a fresh random cluster id); if present, check that its node.id equals
 * node_id and, when cluster_id_or_NULL is given, that the cluster ids match
 * (errors name both values). The directory's cluster id is copied to
 * cluster_id_out (SM_CLUSTER_ID_SIZE bytes). For several log dirs call it on
 * the first with NULL and on the others with the id it returned. Any thread
 * (blocking I/O; call before the event loops start).
 */
SM_MUST_CHECK sm_err_t sm_meta_props_ensure(const char *log_dir, int32_t node_id,
                                            const char *cluster_id_or_NULL, char *cluster_id_out,
                                            char *err, size_t errlen);

#endif
