/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters the workers keep in shared memory, read by
 *	  lifecycle.worker_stats and lifecycle.metrics.
 *
 * IDENTIFICATION
 *	  src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "stats.h"

PG_FUNCTION_INFO_V1(lifecycle_worker_stats);

static const char *const stats_worker_names[LC_NUM_WORKERS] = {
	"scheduler", "sender", "exporter"
};

static void stats_unregister(int code, Datum arg);

/*
 * At exit, clear this worker's pid and latch.
 */
static void
stats_unregister(int code, Datum arg)
{
	LcWorkerKind kind = (LcWorkerKind) DatumGetInt32(arg);

	SpinLockAcquire(&lc_shared->mutex);
	if (lc_shared->workers[kind].pid == MyProcPid)
	{
		lc_shared->workers[kind].pid = 0;
		lc_shared->workers[kind].latch = NULL;
	}
	SpinLockRelease(&lc_shared->mutex);
}

/*
 * Claim the slot of a worker kind for this process.  False when another
 * live process holds it.
 */
bool
stats_register(LcWorkerKind kind)
{
	LcWorkerStats *w = &lc_shared->workers[kind];

	SpinLockAcquire(&lc_shared->mutex);
	if (w->pid != 0 && w->pid != MyProcPid && kill(w->pid, 0) == 0)
	{
		SpinLockRelease(&lc_shared->mutex);
		return false;
	}
	w->pid = MyProcPid;
	w->latch = MyLatch;
	w->started = GetCurrentTimestamp();
	w->next_wake = 0;
	lc_shared->database = MyDatabaseId;
	SpinLockRelease(&lc_shared->mutex);
	before_shmem_exit(stats_unregister, Int32GetDatum((int) kind));
	return true;
}

/*
 * The worker woke; it plans to wake next at next_wake (lifecycle clock,
 * 0: after lifecycle.max_sleep).
 */
void
stats_wake(LcWorkerKind kind, TimestampTz next_wake)
{
	SpinLockAcquire(&lc_shared->mutex);
	lc_shared->workers[kind].last_wake = GetCurrentTimestamp();
	lc_shared->workers[kind].next_wake = next_wake;
	SpinLockRelease(&lc_shared->mutex);
}

/*
 * Add to a worker's counters; last_error (if any) replaces the previous;
 * lag_us >= 0 replaces the lag.
 */
void
stats_count(LcWorkerKind kind, int64 batches, int64 done, int64 failed,
			int64 errors, const char *last_error, int64 lag_us)
{
	LcWorkerStats *w = &lc_shared->workers[kind];

	SpinLockAcquire(&lc_shared->mutex);
	w->batches += batches;
	w->done += done;
	w->failed += failed;
	w->errors += errors;
	if (last_error != NULL)
	{
		strlcpy(w->last_error, last_error, LC_ERROR_LEN);
		w->last_error_at = GetCurrentTimestamp();
	}
	if (lag_us >= 0)
		w->lag_us = lag_us;
	SpinLockRelease(&lc_shared->mutex);
}

/*
 * lifecycle._worker_stats(): one row per worker kind, from shared memory.
 * Without preloading the rows show no pid and zero counters.
 */
Datum
lifecycle_worker_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);

	for (int k = 0; k < LC_NUM_WORKERS; k++)
	{
		Datum		values[11];
		bool		nulls[11] = {0};
		LcWorkerStats w;

		if (lc_shared != NULL)
		{
			SpinLockAcquire(&lc_shared->mutex);
			w = lc_shared->workers[k];
			SpinLockRelease(&lc_shared->mutex);
		}
		else
			memset(&w, 0, sizeof(w));

		values[0] = CStringGetTextDatum(stats_worker_names[k]);
		values[1] = Int32GetDatum(w.pid);
		nulls[1] = (w.pid == 0);
		values[2] = TimestampTzGetDatum(w.started);
		nulls[2] = (w.started == 0);
		values[3] = TimestampTzGetDatum(w.last_wake);
		nulls[3] = (w.last_wake == 0);
		values[4] = Int64GetDatum(w.batches);
		values[5] = Int64GetDatum(w.done);
		values[6] = Int64GetDatum(w.failed);
		values[7] = Int64GetDatum(w.errors);
		values[8] = CStringGetTextDatum(w.last_error);
		nulls[8] = (w.last_error[0] == '\0');
		values[9] = TimestampTzGetDatum(w.last_error_at);
		nulls[9] = (w.last_error_at == 0);
		{
			Interval   *lag = palloc0(sizeof(Interval));

			lag->time = w.lag_us;
			values[10] = IntervalPGetDatum(lag);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
