/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Worker counters in shared memory, and the SQL view of them.
 *
 * IDENTIFICATION
 *	  src/stats.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STATS_H
#define LIFECYCLE_STATS_H

#include "shmem.h"

extern bool stats_register(LcWorkerKind kind);
extern void stats_wake(LcWorkerKind kind, TimestampTz next_wake);
extern void stats_count(LcWorkerKind kind, int64 batches, int64 done,
						int64 failed, int64 errors, const char *last_error,
						int64 lag_us);

#endif							/* LIFECYCLE_STATS_H */
