/*
 * handlers.h - every API handler the dispatch table (dispatch.c) points at.
 * One file per API family: handle_meta.c (ApiVersions, Metadata,
 * DescribeCluster), handle_produce.c, handle_fetch.c, handle_offsets.c
 * (ListOffsets, OffsetForLeaderEpoch), handle_admin.c (topics, configs),
 * handle_group.c (group coordinator APIs). See request.h for the contract.
 */
#ifndef SM_HANDLERS_H
#define SM_HANDLERS_H

#include "request.h"

void sm_handle_api_versions(sm_req_t *req);
void sm_handle_metadata(sm_req_t *req);
void sm_handle_describe_cluster(sm_req_t *req);
void sm_handle_produce(sm_req_t *req);
void sm_handle_fetch(sm_req_t *req);
void sm_handle_list_offsets(sm_req_t *req);
void sm_handle_offset_for_leader_epoch(sm_req_t *req);
void sm_handle_create_topics(sm_req_t *req);
void sm_handle_delete_topics(sm_req_t *req);
void sm_handle_create_partitions(sm_req_t *req);
void sm_handle_describe_configs(sm_req_t *req);
void sm_handle_init_producer_id(sm_req_t *req);
void sm_handle_allocate_producer_ids(sm_req_t *req);
/* Transactions (handle_txn.c). InitProducerId with a transactional id
 * comes here from sm_handle_init_producer_id (msg decoded in req's arena). */
typedef struct sm_init_producer_id_request sm_init_producer_id_request_t;
void sm_txn_init_producer_id(sm_req_t *req, const sm_init_producer_id_request_t *msg);
void sm_handle_write_txn_markers(sm_req_t *req);
void sm_handle_add_partitions_to_txn(sm_req_t *req);
void sm_handle_add_offsets_to_txn(sm_req_t *req);
void sm_handle_end_txn(sm_req_t *req);
void sm_handle_txn_offset_commit(sm_req_t *req);
/* DeleteRecords (handle_records.c). */
void sm_handle_delete_records(sm_req_t *req);
/* AlterConfigs, IncrementalAlterConfigs (handle_configs.c). */
void sm_handle_alter_configs(sm_req_t *req);
void sm_handle_incremental_alter_configs(sm_req_t *req);
void sm_handle_broker_registration(sm_req_t *req);
void sm_handle_broker_heartbeat(sm_req_t *req);
void sm_handle_unregister_broker(sm_req_t *req);
void sm_handle_alter_partition(sm_req_t *req);
void sm_handle_elect_leaders(sm_req_t *req);
void sm_handle_alter_reassignments(sm_req_t *req);
void sm_handle_list_reassignments(sm_req_t *req);
void sm_handle_describe_log_dirs(sm_req_t *req);
void sm_handle_controller_registration(sm_req_t *req);
void sm_handle_describe_quorum(sm_req_t *req);
/* Vote, BeginQuorumEpoch, EndQuorumEpoch, and Fetch on a CONTROLLER listener. */
void sm_handle_quorum(sm_req_t *req);

/* Group coordinator APIs (handle_group.c). */
void sm_handle_find_coordinator(sm_req_t *req);
void sm_handle_join_group(sm_req_t *req);
void sm_handle_sync_group(sm_req_t *req);
void sm_handle_heartbeat(sm_req_t *req);
void sm_handle_leave_group(sm_req_t *req);
void sm_handle_offset_commit(sm_req_t *req);
void sm_handle_offset_fetch(sm_req_t *req);
void sm_handle_describe_groups(sm_req_t *req);
void sm_handle_list_groups(sm_req_t *req);
void sm_handle_delete_groups(sm_req_t *req);
void sm_handle_offset_delete(sm_req_t *req);

/* Transaction admin APIs (handle_txn_admin.c). */
void sm_handle_describe_producers(sm_req_t *req);
void sm_handle_describe_transactions(sm_req_t *req);
void sm_handle_list_transactions(sm_req_t *req);

#endif
