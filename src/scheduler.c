/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler background worker: sleeps on its latch until the
 *	  earliest timer (capped by lifecycle.max_sleep), then advances due
 *	  users in batches of lifecycle.batch_size, one short transaction per
 *	  batch, with the same code as lifecycle_tick().
 *
 * A commit that creates an earlier timer sets the latch (shmem.c), so new
 * timers never wait for a poll.  A crash loses nothing and fires nothing
 * twice: each batch's state change, history and messages commit together,
 * and rows are locked with SKIP LOCKED.  Registered with
 * BgWorkerStart_RecoveryFinished, it waits on a standby and starts after
 * promotion; overdue timers then fire at once, oldest first.  An error in a
 * batch is logged, counted, and retried after a backoff; a failing hook
 * only holds back its own user (engine.c).
 *
 * IDENTIFICATION
 *	  src/scheduler.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "engine.h"
#include "guc.h"
#include "scheduler.h"
#include "shmem.h"
#include "stats.h"
#include "worker.h"
#include "store.h"

/* What one pass did. */
typedef struct SchedulerPass
{
	int			batches;
	int			transitions;
	int			errors;
	bool		more;			/* a full batch: go again at once */
	bool		installed;		/* the extension exists in the database */
	long		sleep_ms;		/* until the next timer */
	TimestampTz next_due;		/* lifecycle clock, 0: none */
	int64		lag_us;
	TimestampTz batch_now;		/* lifecycle clock of the last batch */
} SchedulerPass;

static void scheduler_batch(MemoryContext cxt, SchedulerPass *pass);
static void scheduler_prune(TimestampTz *last_prune);
static void scheduler_plan(SchedulerPass *pass);
static void scheduler_summary(const SchedulerPass *pass);
static long scheduler_summary_sleep(long sleep_ms);

/*
 * Work not yet reported in the log: at most one summary line a busy
 * minute, never one per user or per batch.
 */
#define LC_SUMMARY_MS 60000
typedef struct SchedulerSummary
{
	TimestampTz start;			/* first pass counted */
	int64		transitions;
	int64		batches;
	int64		errors;
} SchedulerSummary;

static SchedulerSummary summary;

/*
 * Register the worker (when preloaded).
 */
void
scheduler_register(void)
{
	worker_register("lifecycle_scheduler_main", "lifecycle scheduler");
}

/*
 * One batch in its own transaction.
 */
static void
scheduler_batch(MemoryContext cxt, SchedulerPass *pass)
{
	LcTickResult r;
	TimestampTz now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!worker_schema_ready("lifecycle scheduler"))
	{
		/*
		 * Not installed (yet) in this database, or at another version
		 * (until ALTER EXTENSION UPDATE): wait.
		 */
		CommitTransactionCommand();
		pass->more = false;
		pass->installed = false;
		return;
	}
	pass->installed = true;
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "lifecycle: advancing due users");

	now = clock_now();
	pass->batch_now = now;
	engine_tick_batch(now, lc_batch_size, LC_WORKER_ACTOR, &r);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (r.selected > 0)
	{
		pass->batches++;
		pass->transitions += r.transitions;
		pass->errors += r.errors;
		stats_count(LC_WORKER_SCHEDULER, 1, r.transitions, 0, r.errors,
					r.last_error, -1);
	}
	pass->more = (r.selected >= lc_batch_size && r.selected > r.errors);
}

/*
 * When is the next timer?  Sets sleep_ms (capped by max_sleep), next_due
 * and the lag of users due but not fired (they wait for a retry).
 */
static void
scheduler_plan(SchedulerPass *pass)
{
	TimestampTz next;
	TimestampTz now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	now = clock_now();
	next = store_next_due();
	pass->next_due = next;
	pass->sleep_ms = lc_max_sleep;
	pass->lag_us = 0;
	if (next != 0)
	{
		/* Lifecycle time to wait, measured from the real clock now. */
		int64		wait_us = (next - now) -
			(GetCurrentTimestamp() - GetCurrentTransactionStartTimestamp());

		if (wait_us <= 0)
		{
			pass->lag_us = now - next;
			pass->sleep_ms = 0;
		}
		else
			pass->sleep_ms = Min((long) ((wait_us + 999) / 1000), (long) lc_max_sleep);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Once an hour of the lifecycle clock, delete the history of erased
 * subjects past their policy's history_retention, in its own transaction,
 * a batch at a time (a full batch prunes again on the next pass).
 */
static void
scheduler_prune(TimestampTz *last_prune)
{
	TimestampTz now;
	int64		pruned = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	now = clock_now();
	if (*last_prune == 0 || now - *last_prune >= USECS_PER_HOUR || now < *last_prune)
	{
		pgstat_report_activity(STATE_RUNNING, "lifecycle: pruning history");
		pruned = store_prune_history(lc_batch_size);
		/* A full batch: more is due, prune again on the next pass. */
		if (pruned < lc_batch_size)
			*last_prune = now;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (pruned > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler pruned " INT64_FORMAT " history rows of erased subjects",
						pruned)));
}

/*
 * Count a pass into the summary, and log the summary once a minute has
 * passed since the first pass it counts.
 */
static void
scheduler_summary(const SchedulerPass *pass)
{
	TimestampTz now = GetCurrentTimestamp();

	if (pass->transitions > 0 || pass->errors > 0)
	{
		if (summary.transitions == 0 && summary.errors == 0)
			summary.start = now;
		summary.transitions += pass->transitions;
		summary.batches += pass->batches;
		summary.errors += pass->errors;
	}
	if ((summary.transitions == 0 && summary.errors == 0) ||
		!TimestampDifferenceExceeds(summary.start, now, LC_SUMMARY_MS))
		return;

	if (summary.errors > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler advanced " INT64_FORMAT " users in " INT64_FORMAT " batches since %s; " INT64_FORMAT " transitions failed and will be retried",
						summary.transitions, summary.batches,
						timestamptz_to_str(summary.start), summary.errors),
				 errhint("lifecycle.overdue shows the users and their last error.")));
	else
		ereport(LOG,
				(errmsg("lifecycle scheduler advanced " INT64_FORMAT " users in " INT64_FORMAT " batches since %s",
						summary.transitions, summary.batches,
						timestamptz_to_str(summary.start))));
	summary.transitions = 0;
	summary.batches = 0;
	summary.errors = 0;
}

/*
 * Wake no later than when the pending summary is due, so the last busy
 * minute before a long sleep is reported on time.
 */
static long
scheduler_summary_sleep(long sleep_ms)
{
	long		secs;
	int			usecs;
	long		due_ms;

	if (summary.transitions == 0 && summary.errors == 0)
		return sleep_ms;
	TimestampDifference(GetCurrentTimestamp(),
						TimestampTzPlusMilliseconds(summary.start, LC_SUMMARY_MS),
						&secs, &usecs);
	due_ms = secs * 1000 + usecs / 1000 + 1;
	return sleep_ms <= 0 ? sleep_ms : Min(sleep_ms, due_ms);
}

/*
 * Main loop.
 */
void
lifecycle_scheduler_main(Datum arg)
{
	MemoryContext loop_cxt;
	volatile long error_backoff_ms = 0;
	volatile TimestampTz last_prune = 0;
	volatile bool first_pass = true;

	worker_start(LC_WORKER_SCHEDULER, "lifecycle scheduler");

	ereport(LOG,
			(errmsg("lifecycle scheduler started in database \"%s\"", lc_database)));

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "lifecycle scheduler loop",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		SchedulerPass pass;
		int			rc;

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
			MemoryContext oldcxt = MemoryContextSwitchTo(loop_cxt);

			PG_TRY();
			{
				do
				{
					CHECK_FOR_INTERRUPTS();
					/* Back-to-back batches never wait: notice a dead postmaster. */
					if (!PostmasterIsAlive())
						proc_exit(1);
					scheduler_batch(loop_cxt, &pass);
					MemoryContextReset(loop_cxt);
				} while (pass.more && !ConfigReloadPending);
				if (pass.installed)
				{
					TimestampTz lp = last_prune;

					scheduler_prune(&lp);
					last_prune = lp;
					scheduler_plan(&pass);
				}
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				/* Log it, count it, roll back, and retry after a backoff. */
				MemoryContextSwitchTo(loop_cxt);
				edata = CopyErrorData();
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				stats_count(LC_WORKER_SCHEDULER, 0, 0, 0, 1, edata->message, -1);
				MemoryContextSwitchTo(TopMemoryContext);
				MemoryContextReset(loop_cxt);
				error_backoff_ms = error_backoff_ms == 0 ? 1000 :
					Min(error_backoff_ms * 2, 60000);
				pass.sleep_ms = error_backoff_ms;
				pass.next_due = 0;
				pass.more = false;
			}
			PG_END_TRY();
			MemoryContextSwitchTo(oldcxt);
			if (pass.next_due != 0 || pass.batches > 0)
				error_backoff_ms = 0;

			if (pass.batches > 0)
				stats_count(LC_WORKER_SCHEDULER, 0, 0, 0, 0, NULL, pass.lag_us);
			if (first_pass && pass.transitions > 0)
				ereport(LOG,
						(errmsg("lifecycle scheduler caught up on %d overdue transitions at start",
								pass.transitions)));
			first_pass = false;
			scheduler_summary(&pass);
			pass.sleep_ms = scheduler_summary_sleep(pass.sleep_ms);
		}

		stats_wake(LC_WORKER_SCHEDULER, pass.next_due);
		/*
		 * A user was due when this pass's batch ran, yet it took none:
		 * another transaction holds it (SKIP LOCKED).  Nap briefly instead
		 * of spinning; the holder's commit does not wake us, since its
		 * timer is not earlier than ours.
		 */
		if (pass.sleep_ms <= 0 && pass.batches == 0 && lc_enabled &&
			pass.next_due != 0 && pass.next_due <= pass.batch_now)
			pass.sleep_ms = 100;
		if (pass.sleep_ms <= 0)
			continue;

		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   pass.sleep_ms,
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		(void) rc;
	}
}
