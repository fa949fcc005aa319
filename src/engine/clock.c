/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  The lifecycle clock: now() (the transaction's start) plus the offset
 *	  that lifecycle_travel() stores in lifecycle.clock.
 *
 * Every time the extension compares or stores goes through clock_now(), so
 * one offset moves timers, holds, history and metrics together, for every
 * session and the workers.  The offset is read once per transaction.
 * Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/clock.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "access/xact.h"
#include "common/int.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "clock.h"
#include "guc.h"
#include "machine.h"
#include "shmem.h"
#include "store.h"

/*
 * lifecycle_travel() keeps the clock within 1970-01-01 .. 9999-12-31 (in
 * days from the PostgreSQL epoch, 2000-01-01).
 */
#define CLOCK_MIN_DAYS	(-10957)
#define CLOCK_MAX_DAYS	2921940

/*
 * The travel offset (cached by cache.c until lifecycle.clock changes).
 */
static const Interval *
clock_offset(void)
{
	return cache_clock_offset();
}

/*
 * Now on the lifecycle clock.
 */
TimestampTz
clock_now(void)
{
	return machine_add(GetCurrentTransactionStartTimestamp(), clock_offset());
}

/*
 * Now on the lifecycle clock at this very instant (not the transaction's
 * start): when a change takes effect.  Callers take it after they hold the
 * row lock, so history.at agrees with the order of the row locks even
 * when a long transaction began before a change it then follows.
 */
TimestampTz
clock_now_precise(void)
{
	TimestampTz start = clock_now();
	TimestampTz t = machine_add(GetCurrentTimestamp(), clock_offset());

	/* Never before the transaction's own now: the clock only moves on. */
	return Max(t, start);
}

/*
 * Move the lifecycle clock forward (or back) by "by"; returns the new now.
 * Refused unless lifecycle.allow_time_travel.
 */
TimestampTz
clock_travel(Interval *by)
{
	Interval   *sum;

	if (!lc_allow_time_travel)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("time travel is disabled"),
				 errdetail("lifecycle_travel() moves the clock of every session and of the workers."),
				 errhint("Set lifecycle.allow_time_travel = on in postgresql.conf (or ALTER SYSTEM) and reload; never in production.")));

	/*
	 * Keep the clock where every timer (now plus a policy interval under
	 * 200 years) can still be computed: an out-of-range clock would make
	 * every later call fail with "timestamp out of range".
	 */
	{
		const Interval *cur = clock_offset();
		Interval	tmp;
		double		at;

		if (pg_add_s32_overflow(cur->month, by->month, &tmp.month) ||
			pg_add_s32_overflow(cur->day, by->day, &tmp.day) ||
			pg_add_s64_overflow(cur->time, by->time, &tmp.time))
			at = -DBL_MAX;
		else
			at = (double) GetCurrentTransactionStartTimestamp() +
				((double) tmp.month * DAYS_PER_YEAR / MONTHS_PER_YEAR + tmp.day) * USECS_PER_DAY +
				(double) tmp.time;
		if (at < CLOCK_MIN_DAYS * (double) USECS_PER_DAY ||
			at >= CLOCK_MAX_DAYS * (double) USECS_PER_DAY)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lifecycle_travel() would move the lifecycle clock out of range"),
					 errdetail("The lifecycle clock must stay between the years 1970 and 9999.")));
	}

	sum = DatumGetIntervalP(DirectFunctionCall2(interval_pl,
												IntervalPGetDatum(clock_offset()),
												IntervalPGetDatum(by)));
	store_clock_set(sum);

	/*
	 * This statement's snapshot cannot see the new row: keep the value.
	 * The trigger's invalidation marks it stale at the next command (then
	 * re-read, our own write visible) or at abort (the old value back).
	 */
	cache_clock_set(sum);
	/* Timers and message retries may have fallen due: wake both workers. */
	shmem_note_timer(DT_NOBEGIN + 1);
	shmem_note_message();
	return clock_now();
}
