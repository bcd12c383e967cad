/*
 * raft_wire.h - the quorum's election messages on Kafka's wire: Vote (52,
 * v0-2 with KIP-996 PreVote), BeginQuorumEpoch (53) and EndQuorumEpoch (54),
 * mapped between sm_raft_msg_t (raft.h) and the generated codecs.
 *
 * Every message names exactly one partition, __cluster_metadata-0; a request
 * naming anything else, or another cluster id, is refused with a Kafka error
 * (never an assert: a peer may be hostile). The sender's id travels in the
 * body (ReplicaId / LeaderId); the receiver's in VoterId from v1. Responses
 * carry no ids of the request, so decoding one takes the request it answers.
 * Fetch (v12-17: LastFetchedEpoch, DivergingEpoch, CurrentLeader, SnapshotId)
 * of the metadata partition is mapped too; its records are a borrowed view
 * (into the sender's buffer when encoding, into the received body when
 * decoding). The metadata topic has Kafka's fixed topic id
 * AAAAAAAAAAAAAAAAAAAAAQ (Uuid 0/1). FetchSnapshot comes with snapshots on
 * disk.
 *
 * Pure functions: no I/O; any thread.
 */
#ifndef SM_RAFT_WIRE_H
#define SM_RAFT_WIRE_H

#include "arena.h"
#include "buf.h"
#include "raft.h"

#define SM_RAFT_TOPIC "__cluster_metadata"
#define SM_RAFT_FETCH_MAX_WAIT_MS 500 /* MaxWaitMs of a quorum fetch */

/* Encode request m (VOTE, BEGIN_EPOCH, END_EPOCH or FETCH) at version into w;
 * *api_key gets its key. SM_ERR_UNSUPPORTED when the version cannot carry
 * it (a pre-vote below Vote v2), SM_ERR_INVALID for another kind. */
sm_err_t sm_raft_wire_encode_request(const sm_raft_msg_t *m, const char *cluster_id,
                                     int16_t version, int16_t *api_key, sm_wbuf_t *w) SM_MUST_CHECK;

/* Decode a request body of api_key/version sent to self_id into *out.
 * SM_ERR_PARSE for bytes that do not decode; SM_ERR_INVALID (and *kerr, the
 * Kafka code to answer with) for a request Samsa's quorum cannot take. */
sm_err_t sm_raft_wire_decode_request(int16_t api_key, int16_t version, sm_rd_t *body,
                                     sm_arena_t *a, int32_t self_id, const char *cluster_id,
                                     sm_raft_msg_t *out, int16_t *kerr) SM_MUST_CHECK;

/* Encode response m (VOTE_RESP, BEGIN_EPOCH_RESP or END_EPOCH_RESP). */
sm_err_t sm_raft_wire_encode_response(const sm_raft_msg_t *m, int16_t version,
                                      sm_wbuf_t *w) SM_MUST_CHECK;
/* Decode the response to request `req` (as sent) into *out. */
sm_err_t sm_raft_wire_decode_response(const sm_raft_msg_t *req, int16_t version, sm_rd_t *body,
                                      sm_arena_t *a, sm_raft_msg_t *out) SM_MUST_CHECK;

#endif
