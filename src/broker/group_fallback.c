/* TEMPORARY: weak stand-ins until handle_group.c lands. */
#include "handlers.h"
#define STUB(n) __attribute__((weak)) void n(sm_req_t *req) { sm_req_fail(req, "groups not implemented"); }
STUB(sm_handle_find_coordinator)
STUB(sm_handle_join_group)
STUB(sm_handle_sync_group)
STUB(sm_handle_heartbeat)
STUB(sm_handle_leave_group)
STUB(sm_handle_offset_commit)
STUB(sm_handle_offset_fetch)
STUB(sm_handle_describe_groups)
STUB(sm_handle_list_groups)
STUB(sm_handle_delete_groups)
STUB(sm_handle_offset_delete)
