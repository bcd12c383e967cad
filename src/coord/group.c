/*
 * group.c - the classic consumer-group state machine (see group.h).
 *
 *                      first join (waits group.initial.rebalance.delay.ms)
 *      +-------+          prepare_rebalance()            +--------------------+
 *      | Empty |---------------------------------------->| PreparingRebalance |<---+
 *      +-------+                                          +--------------------+    |
 *        |   ^                                            |                     |
 *        |   +--------------------------------------------+ complete_join():    |
 *        |     complete_join(): nobody left               | all rejoined, or    |
 *        |     (init_next_generation)                     | join deadline       |
 *        | empty, no offsets                              v                     |
 *        v (coordinator)                       +---------------------+         |
 *      +------+                                    | CompletingRebalance |---------+
 *      | Dead |<-- sm_group_unload()               +---------------------+  member |
 *      +------+    (DeleteGroups, shutdown)                   |             joins,  |
 *                                          leader's SyncGroup |             leaves, |
 *                                          (complete_sync)    v             expires |
 *                                                       +--------+          (maybe_ |
 *                                                       | Stable |---------> prepare|
 *                                                       +--------+          _rebalance)
 *
 * Transitions and the function that makes each:
 *   Empty -> PreparingRebalance          prepare_rebalance() (first join; the
 *        join phase is the initial delay, extended while members keep arriving)
 *   Stable|CompletingRebalance -> PreparingRebalance   maybe_prepare_rebalance()
 *        (CompletingRebalance first fails parked SyncGroups with REBALANCE_IN_PROGRESS)
 *   PreparingRebalance -> CompletingRebalance  complete_join() -> init_next_generation()
 *        when every member has rejoined and no KIP-394 pending member is left, or
 *        at the join deadline (dynamic members that did not rejoin are removed)
 *   PreparingRebalance -> Empty         complete_join() when no member is left
 *   CompletingRebalance -> Stable        complete_sync() on the leader's SyncGroup
 *        (assignments stored through env->store, then handed to every member)
 *   any -> Dead                          sm_group_unload()
 *
 * Generation fencing: every SyncGroup/Heartbeat/OffsetCommit names a member
 * and a generation; unknown members get UNKNOWN_MEMBER_ID, other generations
 * ILLEGAL_GENERATION, a static member whose instance id now belongs to a newer
 * member id gets FENCED_INSTANCE_ID.
 *
 * Liveness: a member is alive while a JoinGroup or SyncGroup of it is parked
 * (a new member's parked join only for new_member_join_timeout_ms) or while
 * its last heartbeat is younger than its session timeout; sm_group_tick()
 * removes the others, exactly as a LeaveGroup would.
 *
 * Members are kept in an array and looked up linearly: groups are small
 * (tens of members), and group.max.size bounds them.
 */
#include "group.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_names[] = {
    [SM_GROUP_EMPTY] = "Empty",
    [SM_GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
    [SM_GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
    [SM_GROUP_STABLE] = "Stable",
    [SM_GROUP_DEAD] = "Dead",
};

const char *sm_group_state_name(sm_group_state_t s)
{
    return (unsigned)s < SM_ARRAY_LEN(state_names) ? state_names[s] : "Unknown";
}

int sm_group_state_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(state_names); i++)
        if (strlen(state_names[i]) == len && strncasecmp(state_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static char *dup_or_null(const char *s) { return s ? sm_xstrdup(s) : NULL; }

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = dup_or_null(s);
}

void sm_group_member_set_client_id(sm_group_member_t *m, const char *id, size_t len)
{
    free(m->client_id);
    m->client_id = sm_xmalloc(len + 1);
    memcpy(m->client_id, id, len);
    m->client_id[len] = '\0';
    m->client_id_len = len;
}

static void set_state(sm_group_t *g, sm_group_state_t s, sm_group_time_t now)
{
    if (g->state != s)
        SM_DEBUG("group", "group %s: %s -> %s (generation %d)", g->id,
                 sm_group_state_name(g->state), sm_group_state_name(s), g->generation);
    g->state = s;
    g->state_wall_ms = now.wall_ms;
}

/* ------------------------------------------------------------ members */

static void protocols_free(sm_group_protocol_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].meta);
    }
    free(p);
}

static sm_group_protocol_t *protocols_copy(const sm_group_protocol_t *p, int32_t n)
{
    sm_group_protocol_t *c = sm_xcalloc((size_t)(n ? n : 1), sizeof *c);
    for (int32_t i = 0; i < n; i++) {
        c[i].name = sm_xstrdup(p[i].name);
        c[i].meta_len = p[i].meta_len > 0 ? p[i].meta_len : 0;
        c[i].meta = sm_xmalloc((size_t)c[i].meta_len + 1);
        if (c[i].meta_len)
            memcpy(c[i].meta, p[i].meta, (size_t)c[i].meta_len);
    }
    return c;
}

static void member_free(sm_group_member_t *m)
{
    SM_ASSERT(!m->join_waiter && !m->sync_waiter);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    protocols_free(m->protocols, m->nprotocols);
    free(m->assignment);
    free(m);
}

static void member_set_protocols(sm_group_member_t *m, const sm_group_protocol_t *p, int32_t n)
{
    protocols_free(m->protocols, m->nprotocols);
    m->protocols = protocols_copy(p, n);
    m->nprotocols = n;
}

static void member_set_assignment(sm_group_member_t *m, const uint8_t *b, int32_t len)
{
    free(m->assignment);
    m->assignment = NULL;
    m->assignment_len = 0;
    if (b && len > 0) {
        m->assignment = sm_xmalloc((size_t)len);
        memcpy(m->assignment, b, (size_t)len);
        m->assignment_len = len;
    }
}

/* Same protocols, same order, same metadata bytes (Kafka's "matches"). */
static bool member_matches(const sm_group_member_t *m, const sm_group_protocol_t *p, int32_t n)
{
    if (m->nprotocols != n)
        return false;
    for (int32_t i = 0; i < n; i++) {
        int32_t len = p[i].meta_len > 0 ? p[i].meta_len : 0;
        if (strcmp(m->protocols[i].name, p[i].name) != 0 || m->protocols[i].meta_len != len ||
            (len && memcmp(m->protocols[i].meta, p[i].meta, (size_t)len) != 0))
            return false;
    }
    return true;
}

static bool member_supports(const sm_group_member_t *m, const char *name)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0)
            return true;
    return false;
}

const uint8_t *sm_group_member_meta(const sm_group_member_t *m, const char *name, int32_t *len)
{
    for (int32_t i = 0; name && i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0) {
            *len = m->protocols[i].meta_len;
            return m->protocols[i].meta;
        }
    *len = 0;
    return NULL;
}

sm_group_member_t *sm_group_find_member(const sm_group_t *g, const char *member_id)
{
    for (int32_t i = 0; member_id && i < g->nmembers; i++)
        if (strcmp(g->members[i]->id, member_id) == 0)
            return g->members[i];
    return NULL;
}

sm_group_member_t *sm_group_find_static(const sm_group_t *g, const char *instance_id)
{
    for (int32_t i = 0; instance_id && i < g->nmembers; i++)
        if (g->members[i]->instance_id && strcmp(g->members[i]->instance_id, instance_id) == 0)
            return g->members[i];
    return NULL;
}

static bool is_leader(const sm_group_t *g, const sm_group_member_t *m)
{
    return g->leader_id && strcmp(g->leader_id, m->id) == 0;
}

/* The instance id is registered to another member id: the caller is an
 * older incarnation of a static member. */
static bool static_fenced(const sm_group_t *g, const char *instance_id, const char *member_id)
{
    if (!instance_id)
        return false;
    sm_group_member_t *s = sm_group_find_static(g, instance_id);
    return s && !str_eq(s->id, member_id);
}

static void add_member(sm_group_t *g, sm_group_member_t *m)
{
    if (g->nmembers == g->members_cap) {
        g->members_cap = g->members_cap ? g->members_cap * 2 : 4;
        g->members = sm_xrealloc(g->members, sizeof *g->members * (size_t)g->members_cap);
    }
    g->members[g->nmembers++] = m;
    if (!g->leader_id)
        g->leader_id = sm_xstrdup(m->id);
}

/* Unlink m (waiters must have been answered) and re-pick the leader. */
static void remove_member(sm_group_t *g, sm_group_member_t *m)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i] == m) {
            memmove(&g->members[i], &g->members[i + 1],
                    sizeof *g->members * (size_t)(g->nmembers - i - 1));
            g->nmembers--;
            break;
        }
    if (is_leader(g, m))
        set_str(&g->leader_id, g->nmembers ? g->members[0]->id : NULL);
    member_free(m);
}

int32_t sm_group_rebalance_timeout_ms(const sm_group_t *g)
{
    int32_t t = 0;
    for (int32_t i = 0; i < g->nmembers; i++)
        t = SM_MAX(t, g->members[i]->rebalance_timeout_ms);
    return t;
}

/* ------------------------------------------------------------ pending (KIP-394) */

static int32_t pending_find(const sm_group_t *g, const char *id)
{
    for (int32_t i = 0; id && i < g->npending; i++)
        if (strcmp(g->pending_ids[i], id) == 0)
            return i;
    return -1;
}

static void pending_add(sm_group_t *g, const char *id, int64_t deadline_ms)
{
    if (g->npending == g->pending_cap) {
        g->pending_cap = g->pending_cap ? g->pending_cap * 2 : 4;
        g->pending_ids = sm_xrealloc(g->pending_ids, sizeof(char *) * (size_t)g->pending_cap);
        g->pending_deadline_ms =
            sm_xrealloc(g->pending_deadline_ms, sizeof(int64_t) * (size_t)g->pending_cap);
    }
    g->pending_ids[g->npending] = sm_xstrdup(id);
    g->pending_deadline_ms[g->npending] = deadline_ms;
    g->npending++;
}

static void pending_remove_at(sm_group_t *g, int32_t i)
{
    free(g->pending_ids[i]);
    g->npending--;
    g->pending_ids[i] = g->pending_ids[g->npending];
    g->pending_deadline_ms[i] = g->pending_deadline_ms[g->npending];
}

/* ------------------------------------------------------------ answering */

static void answer_join_error(sm_group_waiter_t *w, const sm_group_t *g, const char *member_id,
                              int16_t err)
{
    sm_group_join_result_t r = {.error = err, .generation = -1, .member_id = member_id};
    w->on_join(w, g, &r);
}

static void answer_sync(sm_group_waiter_t *w, const sm_group_t *g, int16_t err,
                        const uint8_t *b, int32_t len)
{
    w->on_sync(w, g, err, b, len);
}

/* Answer m's parked join with the current generation (leader: the member
 * list too). */
static void member_complete_join(sm_group_t *g, sm_group_member_t *m, bool skip_assignment,
                                 sm_group_time_t now)
{
    sm_group_waiter_t *w = m->join_waiter;
    if (!w)
        return;
    m->join_waiter = NULL;
    m->last_seen_ms = now.mono_ms;
    sm_group_join_result_t r = {
        .error = SM_KERR_NONE,
        .generation = g->generation,
        .member_id = m->id,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol_name,
        .leader_id = g->leader_id,
        .skip_assignment = skip_assignment,
        .with_members = is_leader(g, m),
    };
    w->on_join(w, g, &r);
}

/* Fail every parked request of m with err (it is leaving or fenced). */
static void member_fail_waiters(sm_group_t *g, sm_group_member_t *m, int16_t err)
{
    if (m->join_waiter) {
        sm_group_waiter_t *w = m->join_waiter;
        m->join_waiter = NULL;
        answer_join_error(w, g, m->id, err);
    }
    if (m->sync_waiter) {
        sm_group_waiter_t *w = m->sync_waiter;
        m->sync_waiter = NULL;
        answer_sync(w, g, err, NULL, 0);
    }
}

/* Hand every member waiting in SyncGroup its assignment (or err). */
static void propagate_assignment(sm_group_t *g, int16_t err, sm_group_time_t now)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        sm_group_member_t *m = g->members[i];
        if (!m->sync_waiter)
            continue;
        sm_group_waiter_t *w = m->sync_waiter;
        m->sync_waiter = NULL;
        m->last_seen_ms = now.mono_ms;
        if (err == SM_KERR_NONE)
            answer_sync(w, g, err, m->assignment, m->assignment_len);
        else
            answer_sync(w, g, err, NULL, 0);
    }
}

/* ------------------------------------------------------------ protocol */

/* Kafka's supportsProtocols: an Empty group takes any non-empty type and
 * list; otherwise the type must match and one protocol must be supported by
 * every current member. */
static bool supports_protocols(const sm_group_t *g, const sm_group_join_args_t *a)
{
    if (g->nmembers == 0)
        return a->protocol_type && a->protocol_type[0] && a->nprotocols > 0;
    if (!str_eq(g->protocol_type, a->protocol_type))
        return false;
    for (int32_t i = 0; i < a->nprotocols; i++) {
        int32_t n = 0;
        for (int32_t k = 0; k < g->nmembers; k++)
            n += member_supports(g->members[k], a->protocols[i].name);
        if (n == g->nmembers)
            return true;
    }
    return false;
}

/* Candidates are the protocols every member supports; each member votes for
 * the first candidate in its own preference order; most votes wins (ties go
 * to the candidate the first member prefers). */
static const char *select_protocol(const sm_group_t *g)
{
    if (g->nmembers == 0)
        return NULL;
    const sm_group_member_t *first = g->members[0];
    const char *best = NULL;
    int32_t best_votes = -1;
    for (int32_t c = 0; c < first->nprotocols; c++) {
        const char *cand = first->protocols[c].name;
        bool everyone = true;
        for (int32_t k = 1; k < g->nmembers && everyone; k++)
            everyone = member_supports(g->members[k], cand);
        if (!everyone)
            continue;
        int32_t votes = 0;
        for (int32_t k = 0; k < g->nmembers; k++) {
            const sm_group_member_t *m = g->members[k];
            for (int32_t p = 0; p < m->nprotocols; p++) {
                const char *name = m->protocols[p].name;
                bool all = true;
                for (int32_t j = 0; j < g->nmembers && all; j++)
                    all = member_supports(g->members[j], name);
                if (all) {
                    votes += strcmp(name, cand) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

/* ------------------------------------------------------------ transitions */

static void complete_join(sm_group_t *g, sm_group_time_t now);

static void store_group(sm_group_t *g, sm_group_time_t now, int16_t *err)
{
    *err = g->env->store ? g->env->store(g->env->ctx, g, now) : SM_KERR_NONE;
}

/* -> PreparingRebalance. From Empty the join phase is the initial delay;
 * otherwise it lasts the members' largest rebalance timeout. */
static void prepare_rebalance(sm_group_t *g, sm_group_time_t now)
{
    if (g->state == SM_GROUP_COMPLETING_REBALANCE) {
        for (int32_t i = 0; i < g->nmembers; i++)
            member_set_assignment(g->members[i], NULL, 0);
        propagate_assignment(g, SM_KERR_REBALANCE_IN_PROGRESS, now);
    }
    for (int32_t i = 0; i < g->nmembers; i++)
        g->members[i]->pending_sync = false;
    int32_t rebalance_ms = sm_group_rebalance_timeout_ms(g);
    if (g->state == SM_GROUP_EMPTY) {
        int32_t delay = g->env->limits.initial_rebalance_delay_ms;
        g->initial_join = true;
        g->new_member_added = false;
        g->join_deadline_ms = now.mono_ms + delay;
        g->initial_remaining_ms = SM_MAX(rebalance_ms - delay, 0);
    } else {
        g->initial_join = false;
        g->join_deadline_ms = now.mono_ms + rebalance_ms;
    }
    set_state(g, SM_GROUP_PREPARING_REBALANCE, now);
}

static void maybe_prepare_rebalance(sm_group_t *g, sm_group_time_t now)
{
    if (g->state == SM_GROUP_STABLE || g->state == SM_GROUP_COMPLETING_REBALANCE ||
        g->state == SM_GROUP_EMPTY)
        prepare_rebalance(g, now);
}

static bool all_members_joined(const sm_group_t *g)
{
    if (g->npending)
        return false;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!g->members[i]->join_waiter)
            return false;
    return true;
}

/* PreparingRebalance: end the join phase if it is due. */
static void maybe_complete_join(sm_group_t *g, sm_group_time_t now)
{
    if (g->state != SM_GROUP_PREPARING_REBALANCE)
        return;
    if (g->initial_join) {
        if (now.mono_ms < g->join_deadline_ms)
            return;
        if (g->new_member_added && g->initial_remaining_ms > 0) {
            /* Members are still arriving: wait another delay step. */
            int32_t delay = SM_MIN(g->env->limits.initial_rebalance_delay_ms,
                                   g->initial_remaining_ms);
            g->new_member_added = false;
            g->initial_remaining_ms = SM_MAX(g->initial_remaining_ms - delay, 0);
            g->join_deadline_ms = now.mono_ms + delay;
            return;
        }
        complete_join(g, now);
        return;
    }
    if (all_members_joined(g) || now.mono_ms >= g->join_deadline_ms)
        complete_join(g, now);
}

/* Make the leader a member that has rejoined; false if nobody has. */
static bool elect_joined_leader(sm_group_t *g)
{
    sm_group_member_t *l = sm_group_find_member(g, g->leader_id);
    if (l && l->join_waiter)
        return true;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->join_waiter) {
            set_str(&g->leader_id, g->members[i]->id);
            return true;
        }
    return false;
}

static void init_next_generation(sm_group_t *g, sm_group_time_t now)
{
    g->generation++;
    if (g->nmembers > 0) {
        set_str(&g->protocol_name, select_protocol(g));
        for (int32_t i = 0; i < g->nmembers; i++)
            g->members[i]->pending_sync = true;
        g->sync_deadline_ms = now.mono_ms + sm_group_rebalance_timeout_ms(g);
        set_state(g, SM_GROUP_COMPLETING_REBALANCE, now);
    } else {
        set_str(&g->protocol_name, NULL);
        set_state(g, SM_GROUP_EMPTY, now);
    }
}

/* PreparingRebalance -> CompletingRebalance | Empty. */
static void complete_join(sm_group_t *g, sm_group_time_t now)
{
    /* Dynamic members that did not rejoin in time are gone; static ones keep
     * their place (they may come back within their session timeout). */
    for (int32_t i = 0; i < g->nmembers;) {
        sm_group_member_t *m = g->members[i];
        if (!m->join_waiter && !m->instance_id) {
            SM_INFO("group", "group %s: member %s did not rejoin in time, removed", g->id, m->id);
            member_fail_waiters(g, m, SM_KERR_UNKNOWN_MEMBER_ID);
            remove_member(g, m);
            continue;
        }
        i++;
    }
    if (!elect_joined_leader(g) && g->nmembers > 0) {
        /* Only absent static members remain: wait another rebalance timeout
         * for them to come back or expire. */
        g->initial_join = false;
        g->join_deadline_ms = now.mono_ms + sm_group_rebalance_timeout_ms(g);
        return;
    }
    init_next_generation(g, now);
    if (g->state == SM_GROUP_EMPTY) {
        int16_t err;
        store_group(g, now, &err);
        if (err)
            SM_WARN("group", "group %s: storing empty generation %d failed (error %d)", g->id,
                    g->generation, err);
        return;
    }
    SM_INFO("group", "group %s: generation %d with %d members, protocol %s, leader %s", g->id,
            g->generation, g->nmembers, g->protocol_name ? g->protocol_name : "-",
            g->leader_id ? g->leader_id : "-");
    for (int32_t i = 0; i < g->nmembers; i++) {
        sm_group_member_t *m = g->members[i];
        member_complete_join(g, m, false, now);
        m->is_new = false;
    }
}

/* CompletingRebalance -> Stable with the leader's assignments. */
static void complete_sync(sm_group_t *g, const sm_group_sync_args_t *a, sm_group_time_t now)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        sm_group_member_t *m = g->members[i];
        const uint8_t *b = NULL;
        int32_t len = 0;
        for (int32_t k = 0; k < a->nassignments; k++)
            if (str_eq(a->assignments[k].member_id, m->id)) {
                b = a->assignments[k].bytes;
                len = a->assignments[k].len;
            }
        member_set_assignment(m, b, len);
    }
    int16_t err;
    store_group(g, now, &err);
    if (err) {
        for (int32_t i = 0; i < g->nmembers; i++)
            member_set_assignment(g->members[i], NULL, 0);
        propagate_assignment(g, err, now);
        maybe_prepare_rebalance(g, now);
        return;
    }
    propagate_assignment(g, SM_KERR_NONE, now);
    set_state(g, SM_GROUP_STABLE, now);
}

/* Remove a member (leave, expiry) and let the group react. */
static void remove_member_and_update(sm_group_t *g, sm_group_member_t *m, sm_group_time_t now)
{
    member_fail_waiters(g, m, SM_KERR_UNKNOWN_MEMBER_ID);
    remove_member(g, m);
    switch (g->state) {
    case SM_GROUP_STABLE:
    case SM_GROUP_COMPLETING_REBALANCE:
        maybe_prepare_rebalance(g, now);
        maybe_complete_join(g, now);
        break;
    case SM_GROUP_PREPARING_REBALANCE:
        maybe_complete_join(g, now);
        break;
    case SM_GROUP_EMPTY:
    case SM_GROUP_DEAD:
        break;
    }
}

/* ------------------------------------------------------------ join */

static char *new_member_id(sm_group_t *g, const char *prefix)
{
    uint64_t r[2];
    for (int i = 0; i < 2; i++) {
        uint64_t x = g->env->rng ? g->env->rng : 0x9e3779b97f4a7c15ull;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g->env->rng = x;
        r[i] = x;
    }
    /* UUID v4 layout, like Kafka's clientId + "-" + UUID.randomUUID. */
    r[0] = (r[0] & ~0xf000ull) | 0x4000ull;
    r[1] = (r[1] & ~(3ull << 62)) | (2ull << 62);
    return sm_xasprintf("%s-%08x-%04x-%04x-%04x-%012llx", prefix ? prefix : "",
                        (unsigned)(r[0] >> 32), (unsigned)(r[0] >> 16) & 0xffff,
                        (unsigned)r[0] & 0xffff, (unsigned)(r[1] >> 48),
                        (unsigned long long)(r[1] & 0xffffffffffffull));
}

static void member_update(sm_group_member_t *m, const sm_group_join_args_t *a)
{
    member_set_protocols(m, a->protocols, a->nprotocols);
    m->session_timeout_ms = a->session_timeout_ms;
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
    const char *cid = a->client_id ? a->client_id : "";
    sm_group_member_set_client_id(m, cid, a->client_id_len ? a->client_id_len : strlen(cid));
    set_str(&m->client_host, a->client_host ? a->client_host : "");
}

/* Park w as m's join; a join already parked for m is superseded. */
static void member_park_join(sm_group_t *g, sm_group_member_t *m, sm_group_waiter_t *w)
{
    if (m->join_waiter)
        answer_join_error(m->join_waiter, g, m->id, SM_KERR_REBALANCE_IN_PROGRESS);
    m->join_waiter = w;
}

static void add_member_and_rebalance(sm_group_t *g, const sm_group_join_args_t *a,
                                     const char *id, sm_group_time_t now, sm_group_waiter_t *w)
{
    sm_group_member_t *m = sm_xcalloc(1, sizeof *m);
    m->id = sm_xstrdup(id);
    m->instance_id = dup_or_null(a->instance_id);
    member_update(m, a);
    m->join_waiter = w;
    m->is_new = true;
    m->joined_ms = m->last_seen_ms = now.mono_ms;
    if (g->nmembers == 0)
        set_str(&g->protocol_type, a->protocol_type);
    if (g->state == SM_GROUP_PREPARING_REBALANCE && g->initial_join)
        g->new_member_added = true;
    add_member(g, m);
    int32_t p = pending_find(g, id);
    if (p >= 0)
        pending_remove_at(g, p);
    SM_INFO("group", "group %s: member %s joined%s%s", g->id, m->id,
            m->instance_id ? " as static instance " : "", m->instance_id ? m->instance_id : "");
    maybe_prepare_rebalance(g, now);
}

static void update_member_and_rebalance(sm_group_t *g, sm_group_member_t *m,
                                        const sm_group_join_args_t *a, sm_group_time_t now,
                                        sm_group_waiter_t *w)
{
    member_update(m, a);
    member_park_join(g, m, w);
    maybe_prepare_rebalance(g, now);
}

/* A static member comes back with no member id: it takes over the old
 * member's place (fencing the old incarnation) and, if the group is stable
 * and the protocol would not change, gets the current generation back
 * without a rebalance. */
static void update_static_member(sm_group_t *g, sm_group_member_t *m,
                                 const sm_group_join_args_t *a, sm_group_time_t now,
                                 sm_group_waiter_t *w)
{
    char *new_id = new_member_id(g, a->instance_id);
    SM_INFO("group", "group %s: static instance %s replaces member %s with %s", g->id,
            a->instance_id, m->id, new_id);
    member_fail_waiters(g, m, SM_KERR_FENCED_INSTANCE_ID);
    bool leader = is_leader(g, m);
    free(m->id);
    m->id = new_id;
    if (leader)
        set_str(&g->leader_id, new_id);
    member_update(m, a);
    m->join_waiter = w;
    m->last_seen_ms = now.mono_ms;

    switch (g->state) {
    case SM_GROUP_STABLE: {
        const char *sel = select_protocol(g);
        if (str_eq(sel, g->protocol_name)) {
            int16_t err;
            store_group(g, now, &err);
            if (err) {
                m->join_waiter = NULL;
                answer_join_error(w, g, m->id, err);
                return;
            }
            member_complete_join(g, m, leader, now);
        } else {
            maybe_prepare_rebalance(g, now);
        }
        break;
    }
    case SM_GROUP_COMPLETING_REBALANCE:
        /* The leader may already be assigning to the old member id. */
        prepare_rebalance(g, now);
        break;
    case SM_GROUP_PREPARING_REBALANCE:
        break;
    case SM_GROUP_EMPTY:
    case SM_GROUP_DEAD:
        SM_ASSERT(!"static member in an empty group");
    }
}

static void join_new_member(sm_group_t *g, const sm_group_join_args_t *a, sm_group_time_t now,
                            sm_group_waiter_t *w)
{
    sm_group_member_t *existing = sm_group_find_static(g, a->instance_id);
    if (existing) {
        update_static_member(g, existing, a, now, w);
        return;
    }
    if (g->env->limits.max_size > 0 && g->nmembers + g->npending >= g->env->limits.max_size) {
        answer_join_error(w, g, "", SM_KERR_GROUP_MAX_SIZE_REACHED);
        return;
    }
    char *id = new_member_id(g, a->instance_id ? a->instance_id : a->client_id);
    if (!a->instance_id && a->require_known_member_id) {
        /* KIP-394: hand out the id and let the member come back with it, so
         * a member that retries never leaves a ghost behind. */
        pending_add(g, id, now.mono_ms + a->session_timeout_ms);
        answer_join_error(w, g, id, SM_KERR_MEMBER_ID_REQUIRED);
    } else {
        add_member_and_rebalance(g, a, id, now, w);
    }
    free(id);
}

static void join_known_member(sm_group_t *g, const sm_group_join_args_t *a, sm_group_time_t now,
                              sm_group_waiter_t *w)
{
    if (pending_find(g, a->member_id) >= 0) {
        if (g->env->limits.max_size > 0 && g->nmembers >= g->env->limits.max_size) {
            answer_join_error(w, g, a->member_id, SM_KERR_GROUP_MAX_SIZE_REACHED);
            return;
        }
        add_member_and_rebalance(g, a, a->member_id, now, w);
        return;
    }
    if (static_fenced(g, a->instance_id, a->member_id)) {
        answer_join_error(w, g, a->member_id, SM_KERR_FENCED_INSTANCE_ID);
        return;
    }
    sm_group_member_t *m = sm_group_find_member(g, a->member_id);
    if (!m || (a->instance_id && !sm_group_find_static(g, a->instance_id))) {
        answer_join_error(w, g, a->member_id, SM_KERR_UNKNOWN_MEMBER_ID);
        return;
    }
    switch (g->state) {
    case SM_GROUP_PREPARING_REBALANCE:
        update_member_and_rebalance(g, m, a, now, w);
        break;
    case SM_GROUP_COMPLETING_REBALANCE:
        if (member_matches(m, a->protocols, a->nprotocols)) {
            /* A retried join: repeat the answer of this generation. */
            member_park_join(g, m, w);
            member_complete_join(g, m, false, now);
        } else {
            update_member_and_rebalance(g, m, a, now, w);
        }
        break;
    case SM_GROUP_STABLE:
        if (is_leader(g, m) || !member_matches(m, a->protocols, a->nprotocols)) {
            update_member_and_rebalance(g, m, a, now, w);
        } else {
            member_park_join(g, m, w);
            member_complete_join(g, m, false, now);
        }
        break;
    case SM_GROUP_EMPTY:
    case SM_GROUP_DEAD:
        answer_join_error(w, g, a->member_id, SM_KERR_UNKNOWN_MEMBER_ID);
        break;
    }
}

void sm_group_join(sm_group_t *g, const sm_group_join_args_t *a, sm_group_time_t now,
                   sm_group_waiter_t *w)
{
    const char *mid = a->member_id ? a->member_id : "";
    if (g->state == SM_GROUP_DEAD) {
        answer_join_error(w, g, mid, SM_KERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (a->session_timeout_ms < g->env->limits.min_session_timeout_ms ||
        a->session_timeout_ms > g->env->limits.max_session_timeout_ms) {
        answer_join_error(w, g, mid, SM_KERR_INVALID_SESSION_TIMEOUT);
        return;
    }
    if (!supports_protocols(g, a)) {
        answer_join_error(w, g, mid, SM_KERR_INCONSISTENT_GROUP_PROTOCOL);
        return;
    }
    sm_group_join_args_t args = *a;
    if (args.rebalance_timeout_ms < 0)
        args.rebalance_timeout_ms = args.session_timeout_ms; /* JoinGroup v0 */
    if (mid[0] == '\0')
        join_new_member(g, &args, now, w);
    else
        join_known_member(g, &args, now, w);
    maybe_complete_join(g, now);
}

/* ------------------------------------------------------------ sync, heartbeat, leave */

void sm_group_sync(sm_group_t *g, const sm_group_sync_args_t *a, sm_group_time_t now,
                   sm_group_waiter_t *w)
{
    if (g->state == SM_GROUP_DEAD) {
        answer_sync(w, g, SM_KERR_COORDINATOR_NOT_AVAILABLE, NULL, 0);
        return;
    }
    if (static_fenced(g, a->instance_id, a->member_id)) {
        answer_sync(w, g, SM_KERR_FENCED_INSTANCE_ID, NULL, 0);
        return;
    }
    sm_group_member_t *m = sm_group_find_member(g, a->member_id);
    if (!m) {
        answer_sync(w, g, SM_KERR_UNKNOWN_MEMBER_ID, NULL, 0);
        return;
    }
    if (a->generation != g->generation) {
        answer_sync(w, g, SM_KERR_ILLEGAL_GENERATION, NULL, 0);
        return;
    }
    if ((a->protocol_type && !str_eq(a->protocol_type, g->protocol_type)) ||
        (a->protocol_name && !str_eq(a->protocol_name, g->protocol_name))) {
        answer_sync(w, g, SM_KERR_INCONSISTENT_GROUP_PROTOCOL, NULL, 0);
        return;
    }
    switch (g->state) {
    case SM_GROUP_EMPTY:
        answer_sync(w, g, SM_KERR_UNKNOWN_MEMBER_ID, NULL, 0);
        return;
    case SM_GROUP_PREPARING_REBALANCE:
        answer_sync(w, g, SM_KERR_REBALANCE_IN_PROGRESS, NULL, 0);
        return;
    case SM_GROUP_COMPLETING_REBALANCE:
        if (m->sync_waiter)
            answer_sync(m->sync_waiter, g, SM_KERR_REBALANCE_IN_PROGRESS, NULL, 0);
        m->sync_waiter = w;
        m->pending_sync = false;
        m->last_seen_ms = now.mono_ms;
        if (is_leader(g, m))
            complete_sync(g, a, now);
        return;
    case SM_GROUP_STABLE:
        m->pending_sync = false;
        m->last_seen_ms = now.mono_ms;
        answer_sync(w, g, SM_KERR_NONE, m->assignment, m->assignment_len);
        return;
    case SM_GROUP_DEAD:
        break;
    }
}

int16_t sm_group_heartbeat(sm_group_t *g, const char *member_id, const char *instance_id,
                           int32_t generation, sm_group_time_t now)
{
    if (g->state == SM_GROUP_DEAD)
        return SM_KERR_COORDINATOR_NOT_AVAILABLE;
    if (static_fenced(g, instance_id, member_id))
        return SM_KERR_FENCED_INSTANCE_ID;
    sm_group_member_t *m = sm_group_find_member(g, member_id);
    if (!m)
        return SM_KERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation)
        return SM_KERR_ILLEGAL_GENERATION;
    m->last_seen_ms = now.mono_ms;
    switch (g->state) {
    case SM_GROUP_PREPARING_REBALANCE:
        return SM_KERR_REBALANCE_IN_PROGRESS;
    case SM_GROUP_COMPLETING_REBALANCE:
    case SM_GROUP_STABLE:
        return SM_KERR_NONE;
    case SM_GROUP_EMPTY:
    case SM_GROUP_DEAD:
        break;
    }
    return SM_KERR_UNKNOWN_MEMBER_ID;
}

int16_t sm_group_leave(sm_group_t *g, const char *member_id, const char *instance_id,
                       sm_group_time_t now)
{
    if (g->state == SM_GROUP_DEAD)
        return SM_KERR_COORDINATOR_NOT_AVAILABLE;
    sm_group_member_t *m;
    if (!member_id || member_id[0] == '\0') {
        /* Administrative removal by instance id. */
        m = sm_group_find_static(g, instance_id);
        if (!m)
            return SM_KERR_UNKNOWN_MEMBER_ID;
    } else {
        int32_t p = pending_find(g, member_id);
        if (p >= 0) {
            pending_remove_at(g, p);
            maybe_complete_join(g, now);
            return SM_KERR_NONE;
        }
        if (static_fenced(g, instance_id, member_id))
            return SM_KERR_FENCED_INSTANCE_ID;
        m = sm_group_find_member(g, member_id);
        if (!m)
            return SM_KERR_UNKNOWN_MEMBER_ID;
    }
    SM_INFO("group", "group %s: member %s left", g->id, m->id);
    remove_member_and_update(g, m, now);
    return SM_KERR_NONE;
}

/* ------------------------------------------------------------ timers */

static bool member_alive(const sm_group_t *g, const sm_group_member_t *m, int64_t now)
{
    if (m->join_waiter)
        return !m->is_new || now < m->joined_ms + g->env->limits.new_member_join_timeout_ms;
    if (m->sync_waiter)
        return true;
    return now < m->last_seen_ms + m->session_timeout_ms;
}

int64_t sm_group_tick(sm_group_t *g, sm_group_time_t now)
{
    if (g->state == SM_GROUP_DEAD)
        return INT64_MAX;
    for (int32_t i = 0; i < g->npending;) {
        if (now.mono_ms >= g->pending_deadline_ms[i]) {
            pending_remove_at(g, i);
            maybe_complete_join(g, now);
            continue;
        }
        i++;
    }
    for (int32_t i = 0; i < g->nmembers;) {
        sm_group_member_t *m = g->members[i];
        if (!member_alive(g, m, now.mono_ms)) {
            SM_INFO("group", "group %s: member %s session expired (%d ms)", g->id, m->id,
                    m->session_timeout_ms);
            remove_member_and_update(g, m, now);
            i = 0; /* the array may have changed arbitrarily */
            continue;
        }
        i++;
    }
    maybe_complete_join(g, now);
    if ((g->state == SM_GROUP_COMPLETING_REBALANCE || g->state == SM_GROUP_STABLE) &&
        now.mono_ms >= g->sync_deadline_ms) {
        bool removed = false;
        for (int32_t i = 0; i < g->nmembers;) {
            sm_group_member_t *m = g->members[i];
            if (m->pending_sync) {
                SM_INFO("group", "group %s: member %s never synced generation %d, removed",
                        g->id, m->id, g->generation);
                member_fail_waiters(g, m, SM_KERR_UNKNOWN_MEMBER_ID);
                remove_member(g, m);
                removed = true;
                continue;
            }
            i++;
        }
        if (removed) {
            maybe_prepare_rebalance(g, now);
            maybe_complete_join(g, now);
        }
    }

    /* Next deadline. */
    int64_t next = INT64_MAX;
    for (int32_t i = 0; i < g->npending; i++)
        next = SM_MIN(next, g->pending_deadline_ms[i]);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const sm_group_member_t *m = g->members[i];
        if (m->join_waiter) {
            if (m->is_new)
                next = SM_MIN(next, m->joined_ms + g->env->limits.new_member_join_timeout_ms);
        } else if (!m->sync_waiter) {
            next = SM_MIN(next, m->last_seen_ms + m->session_timeout_ms);
        }
        if (m->pending_sync)
            next = SM_MIN(next, g->sync_deadline_ms);
    }
    if (g->state == SM_GROUP_PREPARING_REBALANCE)
        next = SM_MIN(next, g->join_deadline_ms);
    return next;
}

/* ------------------------------------------------------------ commits */

int16_t sm_group_commit_check(const sm_group_t *g, int32_t generation, const char *member_id,
                              const char *instance_id)
{
    if (g->state == SM_GROUP_DEAD)
        return SM_KERR_COORDINATOR_NOT_AVAILABLE;
    if (static_fenced(g, instance_id, member_id))
        return SM_KERR_FENCED_INSTANCE_ID;
    if (generation < 0 && g->state == SM_GROUP_EMPTY)
        return SM_KERR_NONE; /* the group only uses Kafka to store offsets */
    if (g->state == SM_GROUP_COMPLETING_REBALANCE)
        return SM_KERR_REBALANCE_IN_PROGRESS; /* a member that joined but has no assignment yet */
    if (!sm_group_find_member(g, member_id))
        return SM_KERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation)
        return SM_KERR_ILLEGAL_GENERATION;
    return SM_KERR_NONE;
}

/* Kafka's rule: offsets of an Empty group with a protocol type expire
 * retention after the group became Empty; offsets of a group that only
 * stores offsets expire retention after their commit; an explicit expiry
 * timestamp wins. A group with members keeps its offsets. */
bool sm_group_offset_expired(const sm_group_t *g, const sm_offset_entry_t *e, int64_t retention_ms,
                             int64_t now_wall_ms)
{
    if (e->expire_ms >= 0)
        return now_wall_ms >= e->expire_ms;
    if (g->state != SM_GROUP_EMPTY)
        return false;
    int64_t base = g->protocol_type ? SM_MAX(g->state_wall_ms, 0) : e->commit_ms;
    return now_wall_ms - base >= retention_ms;
}

/* ------------------------------------------------------------ lifecycle */

sm_group_t *sm_group_new(const char *id, sm_group_env_t *env, sm_group_time_t now)
{
    sm_group_t *g = sm_xcalloc(1, sizeof *g);
    g->id = sm_xstrdup(id);
    g->env = env;
    g->state = SM_GROUP_EMPTY;
    g->state_wall_ms = now.wall_ms;
    g->sync_deadline_ms = INT64_MAX;
    sm_offset_table_init(&g->offsets);
    return g;
}

void sm_group_unload(sm_group_t *g, int16_t error)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        member_fail_waiters(g, g->members[i], error);
    g->state = SM_GROUP_DEAD;
}

void sm_group_free(sm_group_t *g)
{
    if (!g)
        return;
    sm_group_unload(g, SM_KERR_NOT_COORDINATOR); /* never strand a parked request */
    while (g->nmembers)
        remove_member(g, g->members[g->nmembers - 1]);
    while (g->npending)
        pending_remove_at(g, g->npending - 1);
    free(g->members);
    free(g->pending_ids);
    free(g->pending_deadline_ms);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol_name);
    free(g->leader_id);
    free(g->stored_value);
    sm_offset_table_free(&g->offsets);
    free(g);
}

bool sm_group_is_disposable(const sm_group_t *g)
{
    return g->state == SM_GROUP_EMPTY && g->nmembers == 0 && g->npending == 0 &&
           g->offsets.count == 0;
}

/* ------------------------------------------------------------ loading */

void sm_group_restore_meta(sm_group_t *g, const char *protocol_type, int32_t generation,
                           const char *protocol_name, const char *leader_id, int64_t state_wall_ms)
{
    while (g->nmembers)
        remove_member(g, g->members[g->nmembers - 1]);
    set_str(&g->protocol_type, protocol_type && protocol_type[0] ? protocol_type : NULL);
    set_str(&g->protocol_name, protocol_name);
    set_str(&g->leader_id, leader_id);
    g->generation = generation;
    g->state = SM_GROUP_EMPTY;
    g->state_wall_ms = state_wall_ms;
}

sm_group_member_t *sm_group_restore_member(sm_group_t *g, const char *member_id,
                                           const char *instance_id, const char *client_id,
                                           const char *client_host, int32_t session_timeout_ms,
                                           int32_t rebalance_timeout_ms, const char *protocol,
                                           const uint8_t *subscription, int32_t sub_len,
                                           const uint8_t *assignment, int32_t assign_len,
                                           sm_group_time_t now)
{
    sm_group_member_t *m = sm_xcalloc(1, sizeof *m);
    m->id = sm_xstrdup(member_id);
    m->instance_id = dup_or_null(instance_id);
    sm_group_member_set_client_id(m, client_id ? client_id : "", client_id ? strlen(client_id) : 0);
    m->client_host = sm_xstrdup(client_host ? client_host : "");
    m->session_timeout_ms = session_timeout_ms;
    m->rebalance_timeout_ms = rebalance_timeout_ms < 0 ? session_timeout_ms : rebalance_timeout_ms;
    sm_group_protocol_t p = {.name = (char *)(protocol ? protocol : ""),
                             .meta = (uint8_t *)subscription,
                             .meta_len = sub_len};
    member_set_protocols(m, &p, 1);
    member_set_assignment(m, assignment, assign_len);
    m->joined_ms = m->last_seen_ms = now.mono_ms;
    /* The leader id was restored first; add_member must not override it. */
    char *leader = g->leader_id;
    g->leader_id = NULL;
    add_member(g, m);
    free(g->leader_id);
    g->leader_id = leader;
    g->state = SM_GROUP_STABLE;
    return m;
}
