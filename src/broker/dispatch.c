/*
 * dispatch.c - the ApiKey-indexed table of what this broker serves.
 *
 * The versions here are what Samsa implements and advertises (ApiVersions
 * answers from this table); they are a subset of what the generated codecs
 * know. Produce is advertised from v0 as Kafka 4.0 does (librdkafka checks
 * for it), but batches with magic 0/1 are refused with
 * UNSUPPORTED_FOR_MESSAGE_FORMAT. The scope column is which listeners serve
 * the API (Kafka's "listeners" field of each message definition): the
 * CONTROLLER listener serves ApiVersions and the metadata-changing admin
 * APIs, never Produce, Fetch of topic data, Metadata or group APIs. Fetch is
 * served on both: on a CONTROLLER listener it is the metadata quorum's
 * Fetch of __cluster_metadata-0 (handle_quorum.c). Any thread
 * (read-only).
 */
#include "dispatch.h"
#include "handlers.h"
#include "sm_proto_gen.h"

static const sm_dispatch_t table[] = {
    {SM_API_PRODUCE, 0, 11, sm_handle_produce, SM_SCOPE_BROKER},
    {SM_API_FETCH, 4, 17, sm_handle_fetch, SM_SCOPE_BOTH},
    {SM_API_LIST_OFFSETS, 1, 8, sm_handle_list_offsets, SM_SCOPE_BROKER},
    {SM_API_METADATA, 0, 12, sm_handle_metadata, SM_SCOPE_BROKER},
    {SM_API_OFFSET_COMMIT, 2, 9, sm_handle_offset_commit, SM_SCOPE_BROKER},
    {SM_API_OFFSET_FETCH, 1, 9, sm_handle_offset_fetch, SM_SCOPE_BROKER},
    {SM_API_FIND_COORDINATOR, 0, 6, sm_handle_find_coordinator, SM_SCOPE_BROKER},
    {SM_API_JOIN_GROUP, 0, 9, sm_handle_join_group, SM_SCOPE_BROKER},
    {SM_API_HEARTBEAT, 0, 4, sm_handle_heartbeat, SM_SCOPE_BROKER},
    {SM_API_LEAVE_GROUP, 0, 5, sm_handle_leave_group, SM_SCOPE_BROKER},
    {SM_API_SYNC_GROUP, 0, 5, sm_handle_sync_group, SM_SCOPE_BROKER},
    {SM_API_DESCRIBE_GROUPS, 0, 5, sm_handle_describe_groups, SM_SCOPE_BROKER},
    {SM_API_LIST_GROUPS, 0, 5, sm_handle_list_groups, SM_SCOPE_BROKER},
    {SM_API_API_VERSIONS, 0, 4, sm_handle_api_versions, SM_SCOPE_BOTH},
    {SM_API_CREATE_TOPICS, 2, 7, sm_handle_create_topics, SM_SCOPE_BOTH},
    {SM_API_DELETE_TOPICS, 1, 6, sm_handle_delete_topics, SM_SCOPE_BOTH},
    {SM_API_INIT_PRODUCER_ID, 0, 5, sm_handle_init_producer_id, SM_SCOPE_BROKER},
    {SM_API_ADD_PARTITIONS_TO_TXN, 0, 5, sm_handle_add_partitions_to_txn, SM_SCOPE_BROKER},
    {SM_API_ADD_OFFSETS_TO_TXN, 0, 4, sm_handle_add_offsets_to_txn, SM_SCOPE_BROKER},
    {SM_API_END_TXN, 0, 5, sm_handle_end_txn, SM_SCOPE_BROKER},
    {SM_API_WRITE_TXN_MARKERS, 0, 1, sm_handle_write_txn_markers, SM_SCOPE_BROKER},
    {SM_API_TXN_OFFSET_COMMIT, 0, 4, sm_handle_txn_offset_commit, SM_SCOPE_BROKER},
    {SM_API_OFFSET_FOR_LEADER_EPOCH, 2, 4, sm_handle_offset_for_leader_epoch, SM_SCOPE_BROKER},
    {SM_API_DESCRIBE_CONFIGS, 1, 4, sm_handle_describe_configs, SM_SCOPE_BOTH},
    {SM_API_CREATE_PARTITIONS, 0, 3, sm_handle_create_partitions, SM_SCOPE_BOTH},
    {SM_API_DELETE_GROUPS, 0, 2, sm_handle_delete_groups, SM_SCOPE_BROKER},
    {SM_API_OFFSET_DELETE, 0, 0, sm_handle_offset_delete, SM_SCOPE_BROKER},
    {SM_API_DESCRIBE_CLUSTER, 0, 1, sm_handle_describe_cluster, SM_SCOPE_BOTH},
    {SM_API_DELETE_RECORDS, 0, 2, sm_handle_delete_records, SM_SCOPE_BROKER},
    {SM_API_ALTER_CONFIGS, 0, 2, sm_handle_alter_configs, SM_SCOPE_BOTH},
    {SM_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, sm_handle_incremental_alter_configs, SM_SCOPE_BOTH},
    {SM_API_BROKER_REGISTRATION, 0, 4, sm_handle_broker_registration, SM_SCOPE_CONTROLLER},
    {SM_API_BROKER_HEARTBEAT, 0, 1, sm_handle_broker_heartbeat, SM_SCOPE_CONTROLLER},
    {SM_API_UNREGISTER_BROKER, 0, 0, sm_handle_unregister_broker, SM_SCOPE_BOTH},
    {SM_API_ALTER_PARTITION, 0, 3, sm_handle_alter_partition, SM_SCOPE_CONTROLLER},
    {SM_API_ELECT_LEADERS, 0, 2, sm_handle_elect_leaders, SM_SCOPE_BOTH},
    {SM_API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, sm_handle_alter_reassignments, SM_SCOPE_BOTH},
    {SM_API_LIST_PARTITION_REASSIGNMENTS, 0, 0, sm_handle_list_reassignments, SM_SCOPE_BOTH},
    {SM_API_DESCRIBE_LOG_DIRS, 0, 4, sm_handle_describe_log_dirs, SM_SCOPE_BROKER},
    {SM_API_DESCRIBE_PRODUCERS, 0, 0, sm_handle_describe_producers, SM_SCOPE_BROKER},
    {SM_API_DESCRIBE_TRANSACTIONS, 0, 0, sm_handle_describe_transactions, SM_SCOPE_BROKER},
    {SM_API_LIST_TRANSACTIONS, 0, 1, sm_handle_list_transactions, SM_SCOPE_BROKER},
    {SM_API_ALLOCATE_PRODUCER_IDS, 0, 0, sm_handle_allocate_producer_ids, SM_SCOPE_CONTROLLER},
    {SM_API_CONTROLLER_REGISTRATION, 0, 0, sm_handle_controller_registration, SM_SCOPE_CONTROLLER},
    {SM_API_DESCRIBE_QUORUM, 0, 2, sm_handle_describe_quorum, SM_SCOPE_BOTH},
    {SM_API_VOTE, 0, 2, sm_handle_quorum, SM_SCOPE_CONTROLLER},
    {SM_API_BEGIN_QUORUM_EPOCH, 0, 1, sm_handle_quorum, SM_SCOPE_CONTROLLER},
    {SM_API_END_QUORUM_EPOCH, 0, 1, sm_handle_quorum, SM_SCOPE_CONTROLLER},
    {SM_API_FETCH_SNAPSHOT, 0, 1, sm_handle_quorum, SM_SCOPE_CONTROLLER},
};

const sm_dispatch_t *sm_dispatch_lookup(int16_t api_key)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(table); i++)
        if (table[i].api_key == api_key)
            return &table[i];
    return NULL;
}

const sm_dispatch_t *sm_dispatch_table(int *count)
{
    *count = (int)SM_ARRAY_LEN(table);
    return table;
}
