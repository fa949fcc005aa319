/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  Carry out transitions: the machine's outcome written through store.c,
 *	  hooks called, personal data erased.  Shared by the SQL API, by
 *	  lifecycle_tick() and by the scheduler worker.
 *
 * IDENTIFICATION
 *	  src/engine.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_ENGINE_H
#define LIFECYCLE_ENGINE_H

#include "machine.h"
#include "store.h"

#define LC_WORKER_ACTOR "lifecycle worker"

typedef struct LcTickResult
{
	int			selected;		/* due users locked */
	int			transitions;	/* history rows written */
	int			errors;			/* users whose transition failed */
	char	   *last_error;
} LcTickResult;

extern void engine_change(LcChange *c, const LcUserRow *row,
						  const LcPolicy *policy, LcEvent event,
						  const LcOutcome *o, TimestampTz due_at);
extern int64 engine_effects(const LcUserRow *row, LcPolicy *policy,
							const LcOutcome *o, const char *reason,
							const char *actor, TimestampTz now);
extern int64 engine_erase_effects(const LcUserRow *rows, LcPolicy **policies,
								  const LcOutcome *o, int n,
								  const char *reason, const char *actor,
								  TimestampTz now);
extern bool engine_fire_due(LcUserRow *row, TimestampTz now);
extern bool engine_fire_lapse(const LcUserRow *row, TimestampTz now);
extern void engine_tick_batch(TimestampTz due_by, int limit, const char *actor,
							  LcTickResult *result);

#endif							/* LIFECYCLE_ENGINE_H */
