/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The skeleton of the lifecycle background workers: registration,
 *	  start-up, the loop, reload, error recovery and backoff, sleeping until
 *	  the next due time, and the workers' transactions.  The scheduler
 *	  (scheduler.c) and the sender (sender.c) supply only their pass
 *	  (WorkerOps, worker.h).
 *
 * A pass: check that the extension is installed in lifecycle.database at
 * the library's version (otherwise idle, saying so once: version.c); run
 * batches while a batch says there is more; the worker's "after" step;
 * then plan: sleep on the latch until the next due time (the worker's
 * next_due, on the lifecycle clock), capped by lifecycle.max_sleep.  A
 * commit that creates earlier work sets the latch (shmem.c).  An error
 * anywhere in a pass is logged, counted in lifecycle.worker_stats, rolled
 * back, and the next pass waits an exponential backoff (1 s doubling to
 * 1 min, reset by a pass without error).
 *
 * Every transaction of a worker starts with worker_begin(), which pins
 * search_path to pg_catalog, pg_temp again, so that a saved plan is never
 * re-planned under a search_path someone else set.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "clock.h"
#include "guc.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

/* Backoff after a failed pass: 1 s doubling to 1 min. */
#define WORKER_ERROR_BACKOFF_MS		1000
#define WORKER_ERROR_BACKOFF_MAX_MS 60000

/*
 * Due work that no batch could take is locked by another transaction
 * (SKIP LOCKED): look again after this long instead of spinning; the
 * holder's commit does not wake us, since its work is not earlier.
 */
#define WORKER_LOCKED_NAP_MS		100

/* The worker process's own state (one worker per process). */
typedef struct WorkerState
{
	bool		idle_logged;	/* said that the schema is of another version */
	MemoryContext pass_cxt;		/* reset after every pass */
	MemoryContext batch_cxt;	/* reset after every batch */
	MemoryContext xact_caller_cxt;	/* current at worker_begin() */
} WorkerState;

static WorkerState worker_state;

static void worker_start(const WorkerOps *ops);
static void worker_pin_search_path(void);
static bool worker_ready(const char *name);
static void worker_pass(const WorkerOps *ops, WorkerPass *pass);
static void worker_plan(const WorkerOps *ops, WorkerPass *pass);

/*
 * Register a worker of this library: connected to a database, started
 * when recovery has finished (never on a standby: after promotion),
 * restarted 5 s after a crash.
 */
void
worker_register(const char *function_name, const char *name)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "%s", LIFECYCLE_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function_name);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

/*
 * Pin search_path for what the worker runs next (a plain SET, at session
 * level, so that it also ends whatever a function may have left).
 */
static void
worker_pin_search_path(void)
{
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
}

/*
 * Start-up: stock signal handlers, connect to lifecycle.database, claim
 * the worker's slot in shared memory (exit if another process holds it),
 * pin search_path, create the loop's memory contexts.
 */
static void
worker_start(const WorkerOps *ops)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(lc_database,
										 (lc_role && lc_role[0]) ? lc_role : NULL,
										 0);
	pgstat_report_appname(ops->name);

	if (!stats_register(ops->kind))
	{
		ereport(LOG,
				(errmsg("%s already running, exiting", ops->name)));
		proc_exit(0);
	}

	worker_pin_search_path();
	worker_state.pass_cxt = AllocSetContextCreate(TopMemoryContext,
												  "lifecycle worker pass",
												  ALLOCSET_DEFAULT_SIZES);
	worker_state.batch_cxt = AllocSetContextCreate(TopMemoryContext,
												   "lifecycle worker batch",
												   ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("%s started in database \"%s\"", ops->name, lc_database)));
}

/*
 * Start one of the worker's transactions, with search_path pinned, SPI
 * connected and a snapshot; "activity" (if not NULL) shows in
 * pg_stat_activity.  The caller's memory context stays current (and is
 * SPI's caller context: results outlive the transaction).
 */
void
worker_begin(const char *activity)
{
	worker_state.xact_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	worker_pin_search_path();
	MemoryContextSwitchTo(worker_state.xact_caller_cxt);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity != NULL)
		pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * Commit the transaction worker_begin() started; back in the caller's
 * memory context.
 */
void
worker_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(worker_state.xact_caller_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Is there work for the worker in this database: the extension installed,
 * at the library's version?  Between a package upgrade and ALTER
 * EXTENSION UPDATE the schema is older than the library: the worker
 * idles, and says so once (and once again when it resumes), naming the
 * update.
 */
static bool
worker_ready(const char *name)
{
	char	   *installed = NULL;
	LcSchema	schema;

	worker_begin(NULL);
	schema = version_schema(&installed);
	worker_commit();

	if (schema == LC_SCHEMA_OTHER && !worker_state.idle_logged)
	{
		ereport(LOG,
				(errmsg("%s idle: extension \"%s\" in database \"%s\" is at version %s, the library at version %s; run ALTER EXTENSION %s UPDATE",
						name, LIFECYCLE_NAME, lc_database, installed,
						LIFECYCLE_VERSION, LIFECYCLE_NAME)));
		worker_state.idle_logged = true;
	}
	else if (schema == LC_SCHEMA_CURRENT && worker_state.idle_logged)
	{
		ereport(LOG,
				(errmsg("%s resumes: extension \"%s\" in database \"%s\" is at version %s",
						name, LIFECYCLE_NAME, lc_database, LIFECYCLE_VERSION)));
		worker_state.idle_logged = false;
	}
	return schema == LC_SCHEMA_CURRENT;
}

/*
 * When is the next work due?  Sets next_due, sleep_ms (capped by
 * max_sleep) and the lag of work due but not done (it waits for a retry,
 * or is locked by another transaction).
 */
static void
worker_plan(const WorkerOps *ops, WorkerPass *pass)
{
	TimestampTz now;
	TimestampTz next;
	int64		wait_us = 0;

	worker_begin(NULL);
	now = clock_now();
	next = ops->next_due();
	/* Lifecycle time to wait, measured from the real clock now. */
	if (next != 0)
		wait_us = (next - now) -
			(GetCurrentTimestamp() - GetCurrentTransactionStartTimestamp());
	worker_commit();

	pass->next_due = next;
	pass->sleep_ms = lc_max_sleep;
	pass->lag_us = 0;
	if (next != 0 && wait_us <= 0)
	{
		pass->lag_us = now - next;
		pass->sleep_ms = pass->batches == 0 ? WORKER_LOCKED_NAP_MS : 0;
	}
	else if (next != 0)
		pass->sleep_ms = Min((long) ((wait_us + 999) / 1000), (long) lc_max_sleep);
}

/*
 * One pass: batches while there is more, the worker's "after" step, the
 * plan.  An error is logged, counted, rolled back; the pass is marked
 * failed.
 */
static void
worker_pass(const WorkerOps *ops, WorkerPass *pass)
{
	MemoryContextSwitchTo(worker_state.pass_cxt);
	PG_TRY();
	{
		pass->ready = worker_ready(ops->name);
		if (pass->ready)
		{
			do
			{
				CHECK_FOR_INTERRUPTS();
				/* Back-to-back batches never wait: notice a dead postmaster. */
				if (!PostmasterIsAlive())
					proc_exit(1);
				pass->more = false;
				MemoryContextSwitchTo(worker_state.batch_cxt);
				ops->batch(pass);
				MemoryContextSwitchTo(worker_state.pass_cxt);
				MemoryContextReset(worker_state.batch_cxt);
			} while (pass->more && !ConfigReloadPending);
			if (ops->after != NULL)
				ops->after(pass);
			worker_plan(ops, pass);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(worker_state.pass_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		stats_count(ops->kind, 0, 0, 0, 1, edata->message, -1);
		MemoryContextReset(worker_state.batch_cxt);
		if (ops->error != NULL)
			ops->error();
		pass->failed = true;
		pass->more = false;
	}
	PG_END_TRY();
}

/*
 * The loop of a worker's main function.
 */
void
worker_main(const WorkerOps *ops)
{
	int			failed_passes = 0;

	worker_start(ops);
	if (ops->start != NULL)
		ops->start();

	for (;;)
	{
		WorkerPass	pass;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		memset(&pass, 0, sizeof(pass));
		pass.sleep_ms = lc_max_sleep;
		if (lc_enabled)
		{
			worker_pass(ops, &pass);
			if (pass.failed)
			{
				pass.sleep_ms = backoff_ms(WORKER_ERROR_BACKOFF_MS,
										   WORKER_ERROR_BACKOFF_MAX_MS,
										   failed_passes++);
				pass.next_due = 0;
			}
			else
				failed_passes = 0;
			if (ops->done != NULL)
				ops->done(&pass);
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(worker_state.pass_cxt);
		}

		stats_wake(ops->kind, pass.next_due);
		if (pass.sleep_ms <= 0)
			continue;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pass.sleep_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
