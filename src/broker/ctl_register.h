/*
 * ctl_register.h - ControllerRegistration of this controller with the
 * active one (ctl_register.c). Multi-node quorums only.
 */
#ifndef SM_CTL_REGISTER_H
#define SM_CTL_REGISTER_H

#include "conf/config.h"
#include "ctl_channel.h"
#include "meta.h"
#include "uuid.h"

typedef struct sm_ctl_register sm_ctl_register_t;

/* NULL when this node is not a voter with a controller listener. */
sm_ctl_register_t *sm_ctl_register_start(const sm_config_t *cfg, sm_meta_t *meta,
                                         sm_ctl_channel_t *ch);
/* Stop (before freeing the channel), then free (after). */
void sm_ctl_register_stop(sm_ctl_register_t *r);
void sm_ctl_register_free(sm_ctl_register_t *r);

#endif
