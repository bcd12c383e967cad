/*
 * forward.h - requests for the controller carried out by the active one
 * when this node is not it (forward.c).
 */
#ifndef SM_FORWARD_H
#define SM_FORWARD_H

#include "handler_util.h"
#include "server.h"

/* If req (raw: its body bytes as received) should go to the active
 * controller, send it there and return true: the response comes back to
 * the client, or, when no controller answers, run(req, msg) answers here.
 * False: carry it out here. Loop thread. */
bool sm_req_forward(sm_req_t *req, const uint8_t *raw, size_t len, void *msg, sm_ctl_fn run);

/* Topics this node creates for itself go through the active controller
 * too (sm_meta_set_forwarder). After the controller channel exists. */
void sm_forward_install(sm_server_t *srv);

#endif
