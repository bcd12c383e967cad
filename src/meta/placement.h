/*
 * placement.h - where the replicas of new partitions go.
 *
 * The active controller places each new partition's replicas on unfenced
 * brokers, as Kafka's replica placer does in spirit: leaders (first
 * replicas) stripe across the brokers so leadership spreads evenly; the
 * followers of a partition sit on brokers of other racks than the leader's
 * and each other's while racks remain; the follower offset shifts every
 * full round of brokers, so the pairs of brokers sharing partitions vary
 * and a lost broker's followers are spread over many others. The starting
 * broker and shift come from the caller (the controller's randomness), so
 * placement is deterministic in tests and the simulator.
 *
 * Pure functions: no I/O, no locks, any thread.
 */
#ifndef SM_META_PLACEMENT_H
#define SM_META_PLACEMENT_H

#include "sm_common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sm_place_broker {
    int32_t id;
    const char *rack; /* NULL or "" = no rack */
    bool fenced;      /* fenced brokers get no new replicas */
} sm_place_broker_t;

/* Replicas for partitions [first_partition, first_partition + count) of a
 * topic: out[i * rf .. i * rf + rf) for the i-th, leader first. start and
 * shift pick the rotation (any values; e.g. random). SM_ERR_INVALID when rf
 * < 1 or more than the unfenced brokers (Kafka's INVALID_REPLICATION_FACTOR),
 * with a message in err. */
sm_err_t sm_place_replicas(const sm_place_broker_t *brokers, int nbrokers, int32_t first_partition,
                           int32_t count, int rf, uint32_t start, uint32_t shift, int32_t *out,
                           char *err, size_t errlen) SM_MUST_CHECK;

#endif
