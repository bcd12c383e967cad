/*
 * dump_decode.c - record decoders of `samsa dump-log --offsets-decoder` and
 * `--cluster-metadata-decoder` (see dump_decode.h).
 *
 * __consumer_offsets: the key starts with an int16 schema version (0 and 1:
 * OffsetCommitKey, 2: GroupMetadataKey), the value with its own int16
 * version (OffsetCommitValue v0-4, GroupMetadataValue v0-4); a null value is
 * a tombstone (offset or group deleted). Metadata log: the value is an
 * unsigned varint frame version, record type and record version, then the
 * record (flexible encoding). Everything is decoded with the generated
 * codecs into a per-record arena; text views borrow the record's bytes.
 * A small field emitter writes either " name: {a: 1, b: x}" text or JSON
 * members, so each record type is described once.
 */
#include "dump_decode.h"

#include "arena.h"
#include "cli.h"
#include "proto.h"
#include "sm_proto_gen.h"
#include "uuid.h"

#include <string.h>

/* ------------------------------------------------------------ emitter */

typedef struct fe {
    cli_json_t *j;      /* NULL: text to stdout */
    int depth;
    bool first[8];
} fe_t;

static void fe_sep(fe_t *e)
{
    if (!e->j && e->depth > 0 && !e->first[e->depth])
        fputs(", ", stdout);
    e->first[e->depth] = false;
}

static void fe_key(fe_t *e, const char *k)
{
    fe_sep(e);
    if (e->j)
        cli_json_key(e->j, k);
    else if (e->depth == 0)
        printf(" %s: ", k);
    else
        printf("%s: ", k);
}

static void fe_obj(fe_t *e, const char *k)
{
    if (k)
        fe_key(e, k);
    else
        fe_sep(e);
    if (e->j)
        cli_json_obj_begin(e->j);
    else
        putchar('{');
    e->first[++e->depth] = true;
}

static void fe_obj_end(fe_t *e)
{
    e->depth--;
    if (e->j)
        cli_json_obj_end(e->j);
    else
        putchar('}');
}

static void fe_arr(fe_t *e, const char *k)
{
    fe_key(e, k);
    if (e->j)
        cli_json_arr_begin(e->j);
    else
        putchar('[');
    e->first[++e->depth] = true;
}

static void fe_arr_end(fe_t *e)
{
    e->depth--;
    if (e->j)
        cli_json_arr_end(e->j);
    else
        putchar(']');
}

static void fe_int(fe_t *e, const char *k, int64_t v)
{
    fe_key(e, k);
    if (e->j)
        cli_json_int(e->j, v);
    else
        printf("%lld", (long long)v);
}

static void fe_bool(fe_t *e, const char *k, bool v)
{
    fe_key(e, k);
    if (e->j)
        cli_json_bool(e->j, v);
    else
        fputs(v ? "true" : "false", stdout);
}

static void fe_null(fe_t *e, const char *k)
{
    fe_key(e, k);
    if (e->j)
        cli_json_null(e->j);
    else
        fputs("null", stdout);
}

static void fe_str(fe_t *e, const char *k, sm_str_t s)
{
    if (s.len < 0) {
        fe_null(e, k);
        return;
    }
    fe_key(e, k);
    if (e->j)
        cli_json_strn(e->j, s.ptr, (size_t)s.len);
    else
        printf("%.*s", (int)s.len, s.ptr);
}

static void fe_cstr(fe_t *e, const char *k, const char *s)
{
    fe_str(e, k, sm_str(s));
}

static void fe_uuid(fe_t *e, const char *k, const sm_uuid_t *u)
{
    char buf[SM_UUID_STR_LEN + 1];
    fe_cstr(e, k, sm_uuid_to_str(u, buf));
}

/* An int32 array; count < 0 (or v NULL with count < 0) is null. */
static void fe_i32s(fe_t *e, const char *k, const int32_t *v, int32_t n)
{
    if (n < 0) {
        fe_null(e, k);
        return;
    }
    fe_arr(e, k);
    for (int32_t i = 0; i < n; i++) {
        fe_sep(e);
        if (e->j)
            cli_json_int(e->j, v[i]);
        else
            printf("%d", v[i]);
    }
    fe_arr_end(e);
}

static void fe_uuids(fe_t *e, const char *k, const sm_uuid_t *v, int32_t n)
{
    if (n < 0) {
        fe_null(e, k);
        return;
    }
    fe_arr(e, k);
    for (int32_t i = 0; i < n; i++) {
        char buf[SM_UUID_STR_LEN + 1];
        fe_sep(e);
        sm_uuid_to_str(&v[i], buf);
        if (e->j)
            cli_json_str(e->j, buf);
        else
            fputs(buf, stdout);
    }
    fe_arr_end(e);
}

/* ------------------------------------------------------------ __consumer_offsets */

bool cli_decode_offsets_record(cli_json_t *j, const uint8_t *key, int32_t klen,
                               const uint8_t *val, int32_t vlen)
{
    fe_t e = {.j = j};
    sm_arena_t a;
    sm_arena_init(&a);
    bool ok = false;
    sm_rd_t kr, vr;
    sm_rd_init(&kr, key, key && klen > 0 ? (size_t)klen : 0);
    int16_t kver = sm_rd_i16(&kr);
    sm_rd_init(&vr, val, val && vlen > 0 ? (size_t)vlen : 0);
    int16_t vver = val ? sm_rd_i16(&vr) : -1;
    if (!key || kr.err) {
        fe_cstr(&e, "decode_error", "key too short for a schema version");
        goto out;
    }
    if (kver == 0 || kver == 1) {
        sm_offset_commit_key_t k;
        sm_offset_commit_key_init(&k);
        if (sm_offset_commit_key_decode(&kr, &a, kver, &k) != SM_OK) {
            fe_cstr(&e, "decode_error", "bad OffsetCommitKey");
            goto out;
        }
        fe_obj(&e, "offset_commit");
        fe_str(&e, "group", k.group);
        fe_str(&e, "topic", k.topic);
        fe_int(&e, "partition", k.partition);
        fe_obj_end(&e);
        if (!val) {
            fe_null(&e, "value"); /* offset deleted */
            ok = true;
            goto out;
        }
        sm_offset_commit_value_t v;
        sm_offset_commit_value_init(&v);
        if (vr.err || vver < 0 || vver > 4 ||
            sm_offset_commit_value_decode(&vr, &a, vver, &v) != SM_OK) {
            fe_cstr(&e, "decode_error", "bad OffsetCommitValue");
            goto out;
        }
        fe_obj(&e, "value");
        fe_int(&e, "version", vver);
        fe_int(&e, "offset", v.offset);
        fe_int(&e, "leader_epoch", v.leader_epoch);
        fe_str(&e, "metadata", v.metadata);
        fe_int(&e, "commit_timestamp", v.commit_timestamp);
        if (vver == 1)
            fe_int(&e, "expire_timestamp", v.expire_timestamp);
        fe_obj_end(&e);
        ok = true;
    } else if (kver == 2) {
        sm_group_metadata_key_t k;
        sm_group_metadata_key_init(&k);
        if (sm_group_metadata_key_decode(&kr, &a, kver, &k) != SM_OK) {
            fe_cstr(&e, "decode_error", "bad GroupMetadataKey");
            goto out;
        }
        fe_obj(&e, "group_metadata");
        fe_str(&e, "group", k.group);
        fe_obj_end(&e);
        if (!val) {
            fe_null(&e, "value"); /* group deleted */
            ok = true;
            goto out;
        }
        sm_group_metadata_value_t v;
        sm_group_metadata_value_init(&v);
        if (vr.err || vver < 0 || vver > 4 ||
            sm_group_metadata_value_decode(&vr, &a, vver, &v) != SM_OK) {
            fe_cstr(&e, "decode_error", "bad GroupMetadataValue");
            goto out;
        }
        fe_obj(&e, "value");
        fe_int(&e, "version", vver);
        fe_str(&e, "protocol_type", v.protocol_type);
        fe_int(&e, "generation", v.generation);
        fe_str(&e, "protocol", v.protocol);
        fe_str(&e, "leader", v.leader);
        fe_int(&e, "current_state_timestamp", v.current_state_timestamp);
        fe_arr(&e, "members");
        for (int32_t i = 0; i < v.members_count; i++) {
            const sm_group_metadata_value_member_metadata_t *m = &v.members[i];
            fe_obj(&e, NULL);
            fe_str(&e, "member_id", m->member_id);
            fe_str(&e, "group_instance_id", m->group_instance_id);
            fe_str(&e, "client_id", m->client_id);
            fe_str(&e, "client_host", m->client_host);
            fe_int(&e, "rebalance_timeout", m->rebalance_timeout);
            fe_int(&e, "session_timeout", m->session_timeout);
            fe_int(&e, "subscription_size", m->subscription.len);
            fe_int(&e, "assignment_size", m->assignment.len);
            fe_obj_end(&e);
        }
        fe_arr_end(&e);
        fe_obj_end(&e);
        ok = true;
    } else {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown key schema version %d", kver);
        fe_cstr(&e, "decode_error", msg);
    }
out:
    sm_arena_free(&a);
    return ok;
}

/* ------------------------------------------------------------ metadata log */

static void put_register_broker(fe_t *e, const sm_register_broker_record_t *r)
{
    fe_int(e, "BrokerId", r->broker_id);
    fe_uuid(e, "IncarnationId", &r->incarnation_id);
    fe_int(e, "BrokerEpoch", r->broker_epoch);
    fe_arr(e, "EndPoints");
    for (int32_t i = 0; i < r->end_points_count; i++) {
        fe_obj(e, NULL);
        fe_str(e, "Name", r->end_points[i].name);
        fe_str(e, "Host", r->end_points[i].host);
        fe_int(e, "Port", r->end_points[i].port);
        fe_int(e, "SecurityProtocol", r->end_points[i].security_protocol);
        fe_obj_end(e);
    }
    fe_arr_end(e);
    fe_arr(e, "Features");
    for (int32_t i = 0; i < r->features_count; i++) {
        fe_obj(e, NULL);
        fe_str(e, "Name", r->features[i].name);
        fe_int(e, "MinSupportedVersion", r->features[i].min_supported_version);
        fe_int(e, "MaxSupportedVersion", r->features[i].max_supported_version);
        fe_obj_end(e);
    }
    fe_arr_end(e);
    fe_str(e, "Rack", r->rack);
    fe_bool(e, "Fenced", r->fenced);
    fe_bool(e, "InControlledShutdown", r->in_controlled_shutdown);
    fe_uuids(e, "LogDirs", r->log_dirs, r->log_dirs_count);
}

static void put_partition(fe_t *e, const sm_partition_record_t *r)
{
    fe_int(e, "PartitionId", r->partition_id);
    fe_uuid(e, "TopicId", &r->topic_id);
    fe_i32s(e, "Replicas", r->replicas, r->replicas_count);
    fe_i32s(e, "Isr", r->isr, r->isr_count);
    fe_i32s(e, "RemovingReplicas", r->removing_replicas, r->removing_replicas_count);
    fe_i32s(e, "AddingReplicas", r->adding_replicas, r->adding_replicas_count);
    fe_int(e, "Leader", r->leader);
    fe_int(e, "LeaderRecoveryState", r->leader_recovery_state);
    fe_int(e, "LeaderEpoch", r->leader_epoch);
    fe_int(e, "PartitionEpoch", r->partition_epoch);
    fe_uuids(e, "Directories", r->directories, r->directories_count);
}

static void put_partition_change(fe_t *e, const sm_partition_change_record_t *r)
{
    fe_int(e, "PartitionId", r->partition_id);
    fe_uuid(e, "TopicId", &r->topic_id);
    fe_i32s(e, "Isr", r->isr, r->isr ? r->isr_count : -1);
    fe_int(e, "Leader", r->leader);
    fe_i32s(e, "Replicas", r->replicas, r->replicas ? r->replicas_count : -1);
    fe_i32s(e, "RemovingReplicas", r->removing_replicas,
            r->removing_replicas ? r->removing_replicas_count : -1);
    fe_i32s(e, "AddingReplicas", r->adding_replicas,
            r->adding_replicas ? r->adding_replicas_count : -1);
    fe_int(e, "LeaderRecoveryState", r->leader_recovery_state);
}

bool cli_decode_metadata_record(cli_json_t *j, const uint8_t *val, int32_t vlen)
{
    fe_t e = {.j = j};
    sm_rd_t rd;
    sm_rd_init(&rd, val, val && vlen > 0 ? (size_t)vlen : 0);
    uint32_t frame = sm_rd_uvarint(&rd), type = sm_rd_uvarint(&rd), ver = sm_rd_uvarint(&rd);
    const sm_proto_msg_t *m =
        rd.err || type > INT16_MAX ? NULL : sm_proto_msg(SM_PROTO_RECORD, (int16_t)type);
    if (!m) {
        char msg[96];
        snprintf(msg, sizeof msg, rd.err ? "malformed record header"
                                         : "unknown metadata record type %u", type);
        fe_cstr(&e, "decode_error", msg);
        return false;
    }
    if ((int32_t)ver < m->min_version || (int32_t)ver > m->max_version) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s version %u not supported", m->name, ver);
        fe_cstr(&e, "decode_error", msg);
        return false;
    }
    sm_arena_t a;
    sm_arena_init(&a);
    void *msg = sm_arena_alloc(&a, m->size);
    m->init(msg);
    bool ok = m->decode(&rd, &a, (int16_t)ver, msg) == SM_OK;
    if (!ok) {
        fe_cstr(&e, "decode_error", "record body does not decode");
        goto out;
    }
    fe_obj(&e, "record");
    fe_cstr(&e, "type", m->name);
    fe_int(&e, "version", ver);
    fe_int(&e, "frame_version", frame);
    fe_obj(&e, "data");
    switch (type) {
    case 0: put_register_broker(&e, msg); break;
    case 2: {
        const sm_topic_record_t *r = msg;
        fe_str(&e, "Name", r->name);
        fe_uuid(&e, "TopicId", &r->topic_id);
        break;
    }
    case 3: put_partition(&e, msg); break;
    case 4: {
        const sm_config_record_t *r = msg;
        fe_int(&e, "ResourceType", r->resource_type);
        fe_str(&e, "ResourceName", r->resource_name);
        fe_str(&e, "Name", r->name);
        fe_str(&e, "Value", r->value);
        break;
    }
    case 5: put_partition_change(&e, msg); break;
    case 9: fe_uuid(&e, "TopicId", &((const sm_remove_topic_record_t *)msg)->topic_id); break;
    case 12: {
        const sm_feature_level_record_t *r = msg;
        fe_str(&e, "Name", r->name);
        fe_int(&e, "FeatureLevel", r->feature_level);
        break;
    }
    case 15: {
        const sm_producer_ids_record_t *r = msg;
        fe_int(&e, "BrokerId", r->broker_id);
        fe_int(&e, "BrokerEpoch", r->broker_epoch);
        fe_int(&e, "NextProducerId", r->next_producer_id);
        break;
    }
    default: break; /* NoOpRecord and types without fields we show */
    }
    fe_obj_end(&e);
    fe_obj_end(&e);
out:
    sm_arena_free(&a);
    return ok;
}
