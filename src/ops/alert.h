/* The wiring's side of alerts (souk/recovery.h has the sinks). */
#ifndef SOUK_OPS_ALERT_H
#define SOUK_OPS_ALERT_H

/** Turn alerts on: every recorded error of at least a sink's minimum
 * severity becomes, at most once per type per ops.alerts.cooldown, one
 * line handed to that sink.  The ALERT strategy is in the recovery system
 * only while some sink is added.  Call after souk__recovery_init().  0 or
 * SOUK_E*. */
int souk__alerts_start(void);
/** Turn alerts off and forget every sink. */
void souk__alerts_stop(void);

#endif
