/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The skeleton of the lifecycle background workers (scheduler,
 *	  sender): registration, start-up, the loop, and their transactions.
 *	  A worker supplies only its pass (WorkerOps).
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_WORKER_H
#define LIFECYCLE_WORKER_H

#include "datatype/timestamp.h"

#include "shmem.h"

/* What one pass did, filled by the skeleton and the worker's callbacks. */
typedef struct WorkerPass
{
	bool		ready;			/* the schema is there, at the library's version */
	bool		failed;			/* an error ended the pass */
	bool		more;			/* set by a batch: work left, go again at once */
	int			batches;		/* batches that found work */
	int64		done;			/* transitions (scheduler), deliveries (sender) */
	int64		errors;			/* failed transitions or deliveries */
	TimestampTz next_due;		/* lifecycle clock, 0: nothing planned */
	int64		lag_us;			/* how late the oldest due item is */
	long		sleep_ms;		/* until the next pass */
} WorkerPass;

/*
 * A worker: its identity and its pass.  Every callback but start runs in
 * the pass's memory contexts, which the skeleton resets; batch, after and
 * next_due only run while the schema is ready.
 */
typedef struct WorkerOps
{
	LcWorkerKind kind;
	const char *name;			/* "lifecycle scheduler" */
	/* Once, after start-up (outside any transaction). */
	void		(*start) (void);
	/* One batch, in its own transactions (worker_begin/worker_commit). */
	void		(*batch) (WorkerPass *pass);
	/* After the batches (optional). */
	void		(*after) (WorkerPass *pass);
	/* In a transaction: when the next work falls due (lifecycle clock). */
	TimestampTz (*next_due) (void);
	/* After the pass, failed or not, before sleeping (optional). */
	void		(*done) (WorkerPass *pass);
	/* After an error was logged and rolled back (optional). */
	void		(*error) (void);
} WorkerOps;

extern void worker_register(const char *function_name, const char *name);
extern pg_attribute_noreturn() void worker_main(const WorkerOps *ops);
extern void worker_begin(const char *activity);
extern void worker_commit(void);

#endif							/* LIFECYCLE_WORKER_H */
