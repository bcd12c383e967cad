/*
 * meta_delta.h - building metadata images from metadata records (internal
 * to src/meta).
 *
 * A delta starts from an image (or from nothing), takes records one at a time
 * in log order (sm_meta_delta_replay, the one function both log replay and
 * the live controller use), and is frozen into a new immutable image. Topics
 * the records do not touch are shared with the base image by reference; a
 * touched topic is copied once, on its first change (copy on write).
 *
 * Record value framing (Kafka's metadata record serde):
 *   uvarint frame version (= 1) | uvarint type | uvarint version | body
 * Bad bytes give SM_ERR_PARSE / SM_ERR_CORRUPT with a reason; records that
 * contradict the state (a partition of an unknown topic, a duplicate topic
 * name) are SM_ERR_CORRUPT, since the log must be self-consistent.
 * Record types Samsa does not model (ACLs, quotas, SCRAM, ...) are skipped.
 * Owned by one thread (the controller, under its lock).
 */
#ifndef SM_META_DELTA_H
#define SM_META_DELTA_H

#include "meta.h"

#define SM_META_FRAME_VERSION 1

typedef struct sm_meta_delta sm_meta_delta_t;

/* base may be NULL (empty). cluster_id and controller_id label the image. */
sm_meta_delta_t *sm_meta_delta_new(const sm_meta_image_t *base, const char *cluster_id,
                                   int32_t controller_id, int32_t epoch);
/* Apply one record value found at offset. On error nothing is half-applied
 * to shared state (only the delta's private copies may have changed; the
 * caller discards the delta). why gets a static reason. */
SM_MUST_CHECK sm_err_t sm_meta_delta_replay(sm_meta_delta_t *d, int64_t offset,
                                            const uint8_t *value, size_t len, const char **why);
/* Freeze into a new image (refcount 1) and free the delta. */
sm_meta_image_t *sm_meta_delta_freeze(sm_meta_delta_t *d);
/* Free without building an image. */
void sm_meta_delta_free(sm_meta_delta_t *d);

#endif
