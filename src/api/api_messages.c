/*-------------------------------------------------------------------------
 *
 * api_messages.c
 *	  Messages for the application: lifecycle_claim_messages(),
 *	  lifecycle_ack_messages(), and the NOTIFY that tells a consumer there
 *	  is something to claim.
 *
 * Without a channel a message is 'unrouted': the application delivers it
 * itself (pg_cron mode, or an application that sends its own mail).  A
 * consumer LISTENs on lifecycle_messages, claims a batch (FOR UPDATE SKIP
 * LOCKED, oldest first, hidden from other claimers for the lease, attempts
 * + 1), delivers it and acknowledges it ('sent').  A claim that is not
 * acknowledged comes back after its lease, on the lifecycle clock, so a
 * consumer that dies mid-batch loses nothing: delivery is at least once.
 * Both functions see only the tenants the acting role may see (acting.c,
 * through lifecycle._tenant_visible()).
 *
 * The NOTIFY comes from the statements that write unrouted messages
 * (src/store/store.c, store_outbox_notify()): whatever path writes the
 * message (a call, a tick, the worker), its transaction notifies once at
 * commit (PostgreSQL folds duplicate notifications of a transaction into
 * one) and not at all if it rolls back.  Until 0.3.0 a BEFORE INSERT
 * trigger on lifecycle.outbox sent it; a trigger on a Citus shard cannot
 * (docs/CITUS.md), and lifecycle_outbox_notify() stays only for 0.2.0's
 * install script, which names it.
 *
 * IDENTIFICATION
 *	  src/api_messages.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "store_outbox.h"

/* Bounds of lifecycle_claim_messages()'s arguments. */
#define LC_CLAIM_MAX		10000
#define LC_LEASE_MAX_DAYS	7

PG_FUNCTION_INFO_V1(lifecycle_claim_messages);
PG_FUNCTION_INFO_V1(lifecycle_ack_messages);
PG_FUNCTION_INFO_V1(lifecycle_outbox_notify);

/*
 * lifecycle_claim_messages(max int, lease interval)
 *	   -> table(id bigint, message text, payload jsonb, attempts int)
 */
Datum
lifecycle_claim_messages(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			max;
	Interval   *lease;
	Interval	zero;
	Interval	longest;
	TimestampTz now;
	TimestampTz until;
	LcAppMessage *rows;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("lease must not be null")));
	max = PG_GETARG_INT32(0);
	lease = PG_GETARG_INTERVAL_P(1);
	if (max <= 0 || max > LC_CLAIM_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", LC_CLAIM_MAX)));
	memset(&zero, 0, sizeof(zero));
	memset(&longest, 0, sizeof(longest));
	longest.day = LC_LEASE_MAX_DAYS;
	if (DatumGetBool(DirectFunctionCall2(interval_le, IntervalPGetDatum(lease),
										 IntervalPGetDatum(&zero))) ||
		DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(lease),
										 IntervalPGetDatum(&longest))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be positive and at most %d days",
						LC_LEASE_MAX_DAYS),
				 errhint("The lease is how long claimed messages stay hidden from other consumers before they are handed out again.")));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	now = clock_now();
	until = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(now),
													IntervalPGetDatum(lease)));
	n = store_outbox_app_claim(now, until, max, &rows);
	SPI_finish();

	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int64GetDatum(rows[i].id);
		values[1] = CStringGetTextDatum(rows[i].message);
		if (rows[i].payload != NULL)
			values[2] = JsonbPGetDatum(rows[i].payload);
		else
			nulls[2] = true;
		values[3] = Int32GetDatum(rows[i].attempts);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * lifecycle_ack_messages(ids bigint[]) -> how many were marked sent
 */
Datum
lifecycle_ack_messages(PG_FUNCTION_ARGS)
{
	ArrayType  *ids;
	TimestampTz now;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ids must not be null")));
	ids = PG_GETARG_ARRAYTYPE_P(0);
	if (array_contains_nulls(ids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("ids must not contain nulls")));

	SPI_connect();
	now = clock_now();
	n = store_outbox_app_ack(PointerGetDatum(ids), now);
	SPI_finish();
	PG_RETURN_INT32(n);
}

/*
 * 0.2.0's BEFORE INSERT trigger on lifecycle.outbox (WHEN status =
 * 'unrouted'): NOTIFY lifecycle_messages at commit.  0.3.0 has no such
 * trigger (store_outbox_notify() instead); the function stays so that the
 * 0.1.0 and 0.2.0 scripts, and their upgrade, load.
 */
Datum
lifecycle_outbox_notify(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "lifecycle_outbox_notify must be a BEFORE ... FOR EACH ROW trigger");
	Async_Notify(LC_NOTIFY_CHANNEL, "");
	return PointerGetDatum(trigdata->tg_trigtuple);
}
