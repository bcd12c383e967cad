/*
 * meta_snapshot.h - snapshots of the metadata image (KIP-630), internal to
 * src/meta.
 *
 * A snapshot is the whole image as metadata records - what a fresh node
 * would need to replay to reach the same image - in Kafka's checkpoint file
 * format, in the metadata log's directory:
 *
 *   <end offset, 20 digits>-<epoch, 10 digits>.checkpoint
 *     control batch: SnapshotHeader (control type 3: version, last
 *                    contained record's timestamp)
 *     data batches:  FeatureLevel, ProducerIds, RegisterBroker (with its
 *                    fenced / controlled-shutdown state and epoch), broker
 *                    ConfigRecords, then per topic TopicRecord, its
 *                    ConfigRecords and one PartitionRecord per partition
 *     control batch: SnapshotFooter (control type 4)
 *
 * end offset is one past the image's last record, epoch the leader epoch of
 * that record's batch (snapshot_name.h). It is written as
 * <name>-<random>.checkpoint.part, fsynced, renamed, and the directory
 * fsynced; partial files are removed at start. A node starts from its newest
 * snapshot and replays only the log after it, so start-up no longer grows
 * with the log's history.
 */
#ifndef SM_META_SNAPSHOT_H
#define SM_META_SNAPSHOT_H

#include "meta.h"
#include "meta_internal.h"
#include "snapshot_name.h"

/* The records that rebuild img from an empty image, in an order that
 * replays (topics before their partitions). */
void sm_meta_image_records(const sm_meta_image_t *img, recs_t *r);

/* Write a snapshot of img (img->offset >= 0) whose last record has epoch,
 * into dir; *bytes gets the file's size. Any thread (img is immutable). */
SM_MUST_CHECK sm_err_t sm_meta_snapshot_write(const char *dir, const sm_meta_image_t *img,
                                              int32_t epoch, int64_t *bytes, char *err,
                                              size_t errlen);

/* The newest complete snapshot in dir, loaded into a new image labelled
 * cluster_id (*out, refcount 1) and its id. SM_ERR_NOT_FOUND if there is
 * none; SM_ERR_CORRUPT (with a reason) if it does not parse or replay. */
SM_MUST_CHECK sm_err_t sm_meta_snapshot_load(const char *dir, const char *cluster_id,
                                             sm_meta_image_t **out, sm_snapshot_id_t *id,
                                             char *err, size_t errlen);

/* The newest complete snapshot in dir; false if there is none. */
bool sm_meta_snapshot_newest(const char *dir, sm_snapshot_id_t *id);

/* bytes are a whole snapshot file: header, well-formed batches of records,
 * footer (a fetched snapshot is checked before it replaces the log). */
bool sm_meta_snapshot_valid(const uint8_t *bytes, size_t len, const char **why);

/* Remove partial snapshot files, and complete ones older than keep except
 * one ending at keep_end (the one the log starts at: followers behind the
 * log start fetch it). Returns how many files were removed. */
int sm_meta_snapshot_clean(const char *dir, sm_snapshot_id_t keep, int64_t keep_end);

#endif
