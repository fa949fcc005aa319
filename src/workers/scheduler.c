/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler background worker's pass: advances due users in
 *	  batches of lifecycle.batch_size, one short transaction per batch, with
 *	  the same code as lifecycle_tick(); prunes the history of erased
 *	  subjects once an hour; logs a summary at most once a busy minute.
 *	  The loop, sleeping until the earliest timer, error recovery and
 *	  backoff are the worker skeleton's (worker.c).
 *
 * A crash loses nothing and fires nothing twice: each batch's state
 * change, history and messages commit together, and rows are locked with
 * SKIP LOCKED.  Registered with BgWorkerStart_RecoveryFinished, it waits
 * on a standby and starts after promotion; overdue timers then fire at
 * once, oldest first.  A failing hook only holds back its own user
 * (engine.c).
 *
 * IDENTIFICATION
 *	  src/scheduler.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pgstat.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "engine.h"
#include "guc.h"
#include "scheduler.h"
#include "spans.h"
#include "stats.h"
#include "store.h"
#include "store_outbox.h"
#include "worker.h"

static void scheduler_batch(WorkerPass *pass);
static void scheduler_prune(WorkerPass *pass);
static void scheduler_done(WorkerPass *pass);
static void scheduler_summary(const WorkerPass *pass);
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

/* What lives as long as the worker. */
typedef struct SchedulerState
{
	SchedulerSummary summary;
	TimestampTz last_prune;		/* lifecycle clock, 0: never */
	bool		first_pass_done;
} SchedulerState;

static SchedulerState sched;

static const WorkerOps scheduler_ops = {
	.kind = LC_WORKER_SCHEDULER,
	.name = "lifecycle scheduler",
	.batch = scheduler_batch,
	.after = scheduler_prune,
	.next_due = store_next_due,
	.done = scheduler_done,
};

/*
 * Register the worker (when preloaded).
 */
void
scheduler_register(void)
{
	worker_register("lifecycle_scheduler_main", scheduler_ops.name);
}

/*
 * One batch in its own transaction.
 */
static void
scheduler_batch(WorkerPass *pass)
{
	LcTickResult r;
	TimestampTz start = GetCurrentTimestamp();
	int64		offset = 0;

	worker_begin("lifecycle: advancing due users");
	/* The tick's span is on the lifecycle clock, like history. */
	if (spans_enabled())
		offset = clock_now_precise() - GetCurrentTimestamp();
	engine_tick_batch(clock_now(), lc_batch_size, LC_WORKER_ACTOR, &r);
	worker_commit();

	if (r.selected > 0)
	{
		pass->batches++;
		pass->done += r.transitions;
		pass->errors += r.errors;
		stats_count(LC_WORKER_SCHEDULER, 1, r.transitions, 0, r.errors,
					r.last_error, -1);
		if (spans_enabled())
		{
			SpanRecord	span;

			/* One span "lifecycle tick" per batch, with its count. */
			memset(&span, 0, sizeof(span));
			span.kind = SPAN_TICK;
			span.start = start + offset;
			span.end = GetCurrentTimestamp() + offset;
			span.count = r.transitions;
			span.failed = r.errors > 0;
			otlp_random_id(span.span_id, OTLP_SPAN_ID_LEN);
			spans_add(&span, 1);
		}
	}
	pass->more = (r.selected >= lc_batch_size && r.selected > r.errors);
}

/*
 * After every pass, fold the counts' deltas.  Once an hour of the
 * lifecycle clock, delete the history of erased
 * subjects past their policy's history_retention, in its own transaction,
 * a batch at a time (a full batch prunes again on the next pass).
 */
static void
scheduler_prune(WorkerPass *pass)
{
	TimestampTz now;
	int64		pruned = 0;
	int64		messages = 0;

	worker_begin(NULL);
	/* Every pass: fold the counts' deltas (src/store/counts.c). */
	pgstat_report_activity(STATE_RUNNING, "lifecycle: folding counts");
	(void) store_counts_fold();
	now = clock_now();
	if (sched.last_prune == 0 || now - sched.last_prune >= USECS_PER_HOUR ||
		now < sched.last_prune)
	{
		pgstat_report_activity(STATE_RUNNING, "lifecycle: pruning history");
		pruned = store_prune_history(lc_batch_size);
		pgstat_report_activity(STATE_RUNNING, "lifecycle: pruning the outbox");
		messages = store_outbox_prune(lc_batch_size);
		/* A full batch: more is due, prune again on the next pass. */
		if (pruned < lc_batch_size && messages < lc_batch_size)
			sched.last_prune = now;
	}
	worker_commit();
	if (pruned > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler pruned " INT64_FORMAT " history rows of erased subjects",
						pruned)));
	if (messages > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler pruned " INT64_FORMAT " messages past their outbox_retention",
						messages)));
}

/*
 * After a pass: the lag, the catch-up line of the first pass, the
 * summary (and a wake-up for it).
 */
static void
scheduler_done(WorkerPass *pass)
{
	if (pass->batches > 0)
		stats_count(LC_WORKER_SCHEDULER, 0, 0, 0, 0, NULL, pass->lag_us);
	if (!sched.first_pass_done && pass->done > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler caught up on " INT64_FORMAT " overdue transitions at start",
						pass->done)));
	sched.first_pass_done = true;
	scheduler_summary(pass);
	pass->sleep_ms = scheduler_summary_sleep(pass->sleep_ms);
}

/*
 * Count a pass into the summary, and log the summary once a minute has
 * passed since the first pass it counts.
 */
static void
scheduler_summary(const WorkerPass *pass)
{
	TimestampTz now = GetCurrentTimestamp();

	if (pass->done > 0 || pass->errors > 0)
	{
		if (sched.summary.transitions == 0 && sched.summary.errors == 0)
			sched.summary.start = now;
		sched.summary.transitions += pass->done;
		sched.summary.batches += pass->batches;
		sched.summary.errors += pass->errors;
	}
	if ((sched.summary.transitions == 0 && sched.summary.errors == 0) ||
		!TimestampDifferenceExceeds(sched.summary.start, now, LC_SUMMARY_MS))
		return;

	if (sched.summary.errors > 0)
		ereport(LOG,
				(errmsg("lifecycle scheduler advanced " INT64_FORMAT " users in " INT64_FORMAT " batches since %s; " INT64_FORMAT " transitions failed and will be retried",
						sched.summary.transitions, sched.summary.batches,
						timestamptz_to_str(sched.summary.start), sched.summary.errors),
				 errhint("lifecycle.overdue shows the users and their last error.")));
	else
		ereport(LOG,
				(errmsg("lifecycle scheduler advanced " INT64_FORMAT " users in " INT64_FORMAT " batches since %s",
						sched.summary.transitions, sched.summary.batches,
						timestamptz_to_str(sched.summary.start))));
	sched.summary.transitions = 0;
	sched.summary.batches = 0;
	sched.summary.errors = 0;
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

	if (sched.summary.transitions == 0 && sched.summary.errors == 0)
		return sleep_ms;
	TimestampDifference(GetCurrentTimestamp(),
						TimestampTzPlusMilliseconds(sched.summary.start, LC_SUMMARY_MS),
						&secs, &usecs);
	due_ms = secs * 1000 + usecs / 1000 + 1;
	return sleep_ms <= 0 ? sleep_ms : Min(sleep_ms, due_ms);
}

/*
 * Main function of the worker.
 */
void
lifecycle_scheduler_main(Datum arg)
{
	worker_main(&scheduler_ops);
}
