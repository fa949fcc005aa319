/*-------------------------------------------------------------------------
 *
 * store_otel.c
 *	  The SQL of the OpenTelemetry exporter (exporter.c), as saved plans:
 *	  its durable cursor (lifecycle.otel_cursor), the transitions past it
 *	  (lifecycle._otel_transitions, which names the workflow), the
 *	  snapshot horizon that tells a gap of a rolled-back transaction from
 *	  one of a transaction still running, and the transition that wrote
 *	  each delivered message (for the delivery span's link).
 *
 * IDENTIFICATION
 *	  src/store/store_otel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "store.h"
#include "store_otel.h"

typedef enum OtelPlan
{
	OP_CURSOR,
	OP_CURSOR_INIT,
	OP_SET_CURSOR,
	OP_HORIZON,
	OP_COUNT,
	OP_TRANSITIONS,
	OP_LINKS,
	OP_NUM_PLANS
} OtelPlan;

static SPIPlanPtr otel_plans[OP_NUM_PLANS];

/*
 * The exporter's cursor: the last history id it is done with.  The first
 * time (no row), the end of history: turning export on does not send the
 * past.
 */
int64
store_otel_cursor(TimestampTz now)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		vals[1];
	bool		isnull;

	store_run(&otel_plans[OP_CURSOR],
			  "SELECT history_id FROM lifecycle.otel_cursor",
			  0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 1)
		return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	vals[0] = TimestampTzGetDatum(now);
	store_run(&otel_plans[OP_CURSOR_INIT],
			  "INSERT INTO lifecycle.otel_cursor (history_id, updated_at)"
			  " SELECT coalesce(max(h.id), 0), $1 FROM lifecycle.history h"
			  " ON CONFLICT (one) DO UPDATE SET one = EXCLUDED.one"
			  " RETURNING history_id",
			  1, types, vals, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Move the cursor (never back).
 */
void
store_otel_set_cursor(int64 history_id, TimestampTz now)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		vals[2];

	vals[0] = Int64GetDatum(history_id);
	vals[1] = TimestampTzGetDatum(now);
	store_run(&otel_plans[OP_SET_CURSOR],
			  "UPDATE lifecycle.otel_cursor SET history_id = $1, updated_at = $2"
			  " WHERE history_id OPERATOR(pg_catalog.<) $1",
			  2, types, vals, NULL, false, 0, SPI_OK_UPDATE);
}

/*
 * The last history id, and the current snapshot's xmin and xmax: every
 * transaction below xmin has ended, every one from xmax on had not begun
 * (had no id yet).
 */
void
store_otel_horizon(LcOtelHorizon *h)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	store_run(&otel_plans[OP_HORIZON],
			  "SELECT (SELECT max(h.id) FROM lifecycle.history h),"
			  " pg_catalog.pg_snapshot_xmin(s)::text::int8,"
			  " pg_catalog.pg_snapshot_xmax(s)::text::int8"
			  " FROM pg_catalog.pg_current_snapshot() s",
			  0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	h->max_id = isnull ? 0 : DatumGetInt64(d);
	h->xmin = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	h->xmax = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
}

/*
 * History rows with after < id <= upto (those the exporter skips).
 */
int64
store_otel_count(int64 after, int64 upto)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		vals[2];
	bool		isnull;

	vals[0] = Int64GetDatum(after);
	vals[1] = Int64GetDatum(upto);
	store_run(&otel_plans[OP_COUNT],
			  "SELECT count(*) FROM lifecycle.history h"
			  " WHERE h.id OPERATOR(pg_catalog.>) $1"
			  " AND h.id OPERATOR(pg_catalog.<=) $2",
			  2, types, vals, NULL, true, 1, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Up to limit transitions with id > after, in id order; allocated in the
 * caller's context.
 */
int
store_otel_transitions(int64 after, int limit, LcOtelTransition **rows)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		vals[2];
	MemoryContext cxt = store_result_cxt();
	LcOtelTransition *out;
	int			n;

	vals[0] = Int64GetDatum(after);
	vals[1] = Int32GetDatum(limit);
	store_run(&otel_plans[OP_TRANSITIONS],
			  "SELECT t.id, t.workflow, t.instance_id, t.tenant, t.event,"
			  " t.from_state, t.to_state, t.actor, t.policy, t.policy_version,"
			  " t.at, t.due_at, t.traceparent, t.trace_id"
			  " FROM lifecycle._otel_transitions t"
			  " WHERE t.id OPERATOR(pg_catalog.>) $1"
			  " ORDER BY t.id LIMIT $2",
			  2, types, vals, NULL, true, 0, SPI_OK_SELECT);
	n = (int) SPI_processed;
	out = MemoryContextAllocZero(cxt, sizeof(LcOtelTransition) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		out[i].id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		out[i].workflow = store_getstr(tup, desc, 2, cxt);
		out[i].instance_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		out[i].tenant = store_getstr(tup, desc, 4, cxt);
		out[i].event = store_getstr(tup, desc, 5, cxt);
		out[i].from_state = store_getstr(tup, desc, 6, cxt);
		out[i].to_state = store_getstr(tup, desc, 7, cxt);
		out[i].actor = store_getstr(tup, desc, 8, cxt);
		out[i].policy = store_getstr(tup, desc, 9, cxt);
		d = SPI_getbinval(tup, desc, 10, &isnull);
		out[i].policy_version = isnull ? 0 : DatumGetInt32(d);
		out[i].at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 11, &isnull));
		d = SPI_getbinval(tup, desc, 12, &isnull);
		out[i].due_at = isnull ? 0 : DatumGetTimestampTz(d);
		out[i].traceparent = store_getstr(tup, desc, 13, cxt);
		out[i].trace_id = store_getstr(tup, desc, 14, cxt);
	}
	*rows = out;
	return n;
}

/*
 * For each message (links[i].outbox_id), the transition that wrote it:
 * the instance's last history row at or before the message's creation
 * (written in the same transaction, at the same time), and the trace its
 * span is in (the application's, if it set lifecycle.traceparent, else
 * the instance's).  Ids are filled in place; allocated in the caller's
 * context.
 */
void
store_otel_links(LcOtelLink *links, int n)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		vals[1];
	Datum	   *ids;
	MemoryContext cxt = store_result_cxt();

	if (n == 0)
		return;
	ids = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		ids[i] = Int64GetDatum(links[i].outbox_id);
	vals[0] = store_array(ids, NULL, n, INT8OID);
	store_run(&otel_plans[OP_LINKS],
			  "SELECT o.id, h.id,"
			  " coalesce(pg_catalog.substr(h.traceparent, 4, 32),"
			  "  pg_catalog.replace(u.trace_id::text, '-', ''))"
			  " FROM lifecycle.outbox o"
			  " LEFT JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) o.user_id"
			  " CROSS JOIN LATERAL ("
			  "  SELECT h.id, h.traceparent FROM lifecycle.history h"
			  "  WHERE h.user_id OPERATOR(pg_catalog.=) o.user_id"
			  "   AND h.at OPERATOR(pg_catalog.<=) o.created_at"
			  "  ORDER BY h.at DESC, h.id DESC LIMIT 1) h"
			  " WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)",
			  1, types, vals, NULL, true, 0, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));

		for (int i = 0; i < n; i++)
			if (links[i].outbox_id == id)
			{
				links[i].history_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
				links[i].trace_id = store_getstr(tup, desc, 3, cxt);
			}
	}
}
