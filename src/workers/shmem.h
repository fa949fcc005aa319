/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared memory of the lifecycle workers: who they are, their latches,
 *	  when the scheduler wakes next, and their counters.
 *
 * IDENTIFICATION
 *	  src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SHMEM_H
#define LIFECYCLE_SHMEM_H

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"

#define LC_ERROR_LEN 256

/* One worker's identity and counters. */
typedef struct LcWorkerStats
{
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;
	TimestampTz started;
	TimestampTz last_wake;
	int64		batches;
	int64		done;			/* transitions (scheduler), deliveries (sender) */
	int64		failed;			/* failed deliveries (sender) */
	int64		errors;
	char		last_error[LC_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz next_wake;		/* when it plans to wake (0: max_sleep) */
	int64		lag_us;			/* oldest due but not fired, at last pass */
} LcWorkerStats;

typedef enum LcWorkerKind
{
	LC_WORKER_SCHEDULER = 0,
	LC_WORKER_SENDER,
	LC_WORKER_EXPORTER,
	LC_NUM_WORKERS
} LcWorkerKind;

typedef struct LcShared
{
	slock_t		mutex;
	Oid			database;		/* database the workers serve */
	LcWorkerStats workers[LC_NUM_WORKERS];
} LcShared;

extern LcShared *lc_shared;

extern void shmem_init(void);
extern void shmem_note_timer(TimestampTz at);
extern void shmem_note_message(void);
extern void shmem_note_schema_change(void);

#endif							/* LIFECYCLE_SHMEM_H */
