/*-------------------------------------------------------------------------
 *
 * store_outbox.c
 *	  The SQL of message delivery: the sender's claim and record
 *	  statements, channels, dead letters.  Saved plans with parameters, as
 *	  in store.c.
 *
 * A claim is one statement: due pending messages of enabled channels,
 * oldest first, locked with FOR UPDATE SKIP LOCKED (of a channel with a
 * "rate_per_second", at most one second's worth per batch: the sender
 * paces their starts), are marked in flight
 * (claimed_at, attempts + 1, next_attempt_at pushed out by a lease) and
 * returned with their channel and the webhook body.  Messages for a region
 * the channel does not serve become 'blocked' in the same statement.  The
 * results of a batch are written by one statement from arrays; a message
 * that is no longer pending (cancelled by an erasure while in flight)
 * keeps its status, but gets its sent_at if it was delivered: the record
 * says it reached the receiver.
 *
 * Callers are connected to SPI.  Results are copied into the caller's
 * memory context (the one current before SPI_connect).
 *
 * IDENTIFICATION
 *	  src/store_outbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "store.h"
#include "store_outbox.h"

typedef enum OutboxPlan
{
	OP_RECLAIM,
	OP_CLAIM,
	OP_RECORD,
	OP_DISABLE,
	OP_NEXT_DUE,
	OP_UPSERT_CHANNEL,
	OP_RETRY_DEAD,
	OP_DEAD_HIDDEN,
	OP_PRUNE_EXISTS,
	OP_PRUNE,
	OP_APP_CLAIM,
	OP_APP_ACK,
	OP_NUM_PLANS
} OutboxPlan;

typedef struct OutboxState
{
	SPIPlanPtr	plans[OP_NUM_PLANS];
} OutboxState;

static OutboxState outbox_state;

static Jsonb *outbox_jsonb(HeapTuple tup, TupleDesc desc, int col,
						   MemoryContext cxt);
static int	outbox_run_lease(int op, const char *sql, int expected,
							 TimestampTz now, TimestampTz lease_until,
							 int limit);
static void outbox_app_message(HeapTuple tup, TupleDesc desc,
							   MemoryContext cxt, LcAppMessage *m);


/*
 * The calling transaction has written an unrouted message (store.c):
 * NOTIFY lifecycle_messages at its commit (PostgreSQL folds a
 * transaction's duplicates into one; none if it rolls back), so a
 * consumer that LISTENs claims it.  Sent by the statement's caller, not
 * by a trigger on lifecycle.outbox: on Citus the outbox is a shard, and
 * a shard's transaction commits in two phases, which refuse NOTIFY.
 */
void
store_outbox_notify(void)
{
	Async_Notify(LC_NOTIFY_CHANNEL, "");
}
/*
 * A jsonb column, detoasted and copied into cxt; NULL for SQL NULL.
 */
static Jsonb *
outbox_jsonb(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	MemoryContext old;
	Jsonb	   *j;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	j = DatumGetJsonbPCopy(d);
	MemoryContextSwitchTo(old);
	return j;
}

/*
 * A sender starts: messages a previous sender claimed but never recorded
 * (it crashed, or the server did) become due at once; they will be sent
 * again with the same id.  Unrouted messages the application leased
 * (lifecycle_claim_messages()) keep their lease.  Returns how many.
 */
int
store_outbox_reclaim(TimestampTz now)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		vals[1];

	vals[0] = TimestampTzGetDatum(now);
	store_run(&outbox_state.plans[OP_RECLAIM],
				"UPDATE lifecycle.outbox SET claimed_at = NULL,"
				" next_attempt_at = CASE WHEN status = 'pending'"
				"  THEN LEAST(next_attempt_at, $1) ELSE next_attempt_at END"
				" WHERE claimed_at IS NOT NULL AND status <> 'unrouted'",
				1, types, vals, NULL, false, 0, SPI_OK_UPDATE);
	return (int) SPI_processed;
}

/*
 * Run one of the two claims (the sender's, the application's): both take
 * now ($1), the end of the lease ($2) and the limit ($3).  Returns the
 * number of rows claimed (SPI_tuptable holds them).
 */
static int
outbox_run_lease(int op, const char *sql, int expected, TimestampTz now,
				 TimestampTz lease_until, int limit)
{
	Oid			types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID};
	Datum		vals[3];

	vals[0] = TimestampTzGetDatum(now);
	vals[1] = TimestampTzGetDatum(lease_until);
	vals[2] = Int32GetDatum(limit);
	store_run(&outbox_state.plans[op], sql, 3, types, vals, NULL, false, 0,
			  expected);
	return (int) SPI_processed;
}

/*
 * Claim up to limit due messages of enabled channels, oldest first, and
 * mark them in flight until lease_until.  Messages for a region their
 * channel does not serve become 'blocked' and come back with blocked set.
 * Rows are allocated in the caller's context.
 */
int
store_outbox_claim(TimestampTz now, TimestampTz lease_until, int limit,
				   LcOutboxRow **rows)
{
	MemoryContext cxt = store_result_cxt();
	LcOutboxRow *out;
	int			n;

	n = outbox_run_lease(OP_CLAIM,
				"WITH f AS ("
				" SELECT o.id, o.next_attempt_at AS due, ch.kind, ch.target,"
				"  ch.secret, ch.options,"
				"  (ch.options ? 'regions' AND NOT coalesce("
				"   (ch.options -> 'regions') ? (o.payload ->> 'region'), false))"
				"   AS blocked"
				" FROM lifecycle.outbox o"
				" JOIN lifecycle.channels ch ON ch.name = o.channel"
				" WHERE o.status = 'pending' AND o.next_attempt_at <= $1"
				"  AND ch.enabled AND NOT ch.options ? 'rate_per_second'"
				" ORDER BY o.next_attempt_at"
				" LIMIT $3"
				" FOR UPDATE OF o SKIP LOCKED),"
				/* rate-limited channels: one second's worth each */
				" r AS ("
				" SELECT o.id, o.due, ch.kind, ch.target, ch.secret, ch.options,"
				"  (ch.options ? 'regions' AND NOT coalesce("
				"   (ch.options -> 'regions') ? (o.payload ->> 'region'), false))"
				"   AS blocked"
				" FROM lifecycle.channels ch"
				" CROSS JOIN LATERAL ("
				"  SELECT o.id, o.next_attempt_at AS due, o.payload"
				"  FROM lifecycle.outbox o"
				"  WHERE o.channel = ch.name AND o.status = 'pending'"
				"   AND o.next_attempt_at <= $1"
				"  ORDER BY o.next_attempt_at"
				"  LIMIT LEAST(pg_catalog.ceil((ch.options ->> 'rate_per_second')::numeric), $3)"
				"  FOR UPDATE OF o SKIP LOCKED) o"
				" WHERE ch.enabled AND ch.options ? 'rate_per_second'),"
				" c AS (SELECT * FROM f UNION ALL SELECT * FROM r)"
				" UPDATE lifecycle.outbox o SET"
				"  status = CASE WHEN c.blocked THEN 'blocked' ELSE 'pending' END,"
				"  attempts = o.attempts + CASE WHEN c.blocked THEN 0 ELSE 1 END,"
				"  next_attempt_at = CASE WHEN c.blocked THEN NULL ELSE $2 END,"
				"  claimed_at = CASE WHEN c.blocked THEN NULL ELSE $1 END,"
				"  last_attempt_at = CASE WHEN c.blocked THEN $1"
				"   ELSE o.last_attempt_at END,"
				"  last_error = CASE WHEN NOT c.blocked THEN o.last_error"
				"   WHEN o.payload ->> 'region' IS NULL THEN pg_catalog.format("
				"    'the user has no region; channel \"%s\" serves only regions %s',"
				"    o.channel, c.options -> 'regions')"
				"   ELSE pg_catalog.format("
				"    'region \"%s\" is not served by channel \"%s\" (regions %s)',"
				"    o.payload ->> 'region', o.channel, c.options -> 'regions') END"
				" FROM c WHERE o.id = c.id"
				" RETURNING o.id, o.channel, c.kind, c.target, c.secret, c.options,"
				"  o.message, o.payload,"
				"  pg_catalog.jsonb_build_object('type', o.message, 'id', o.id::text,"
				"   'timestamp', o.created_at, 'data', o.payload)::text,"
				"  o.attempts, c.blocked, c.due,"
				"  (SELECT pg_catalog.replace(u.trace_id::text, '-', '')"
				"   FROM lifecycle.users u WHERE u.id OPERATOR(pg_catalog.=) o.user_id),"
				/* an e-mail's workflow version: its templates (sender.c) */
				"  CASE WHEN c.kind OPERATOR(pg_catalog.=) 'smtp' AND NOT c.blocked THEN"
				"   (SELECT u.workflow FROM lifecycle.users u"
				"    WHERE u.id OPERATOR(pg_catalog.=) o.user_id) END,"
				"  CASE WHEN c.kind OPERATOR(pg_catalog.=) 'smtp' AND NOT c.blocked THEN"
				"   (SELECT u.workflow_version FROM lifecycle.users u"
				"    WHERE u.id OPERATOR(pg_catalog.=) o.user_id) END",
				SPI_OK_UPDATE_RETURNING, now, lease_until, limit);
	out = (LcOutboxRow *) MemoryContextAllocZero(cxt, sizeof(LcOutboxRow) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		out[i].id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		out[i].channel = store_getstr(tup, desc, 2, cxt);
		out[i].kind = store_getstr(tup, desc, 3, cxt);
		out[i].target = store_getstr(tup, desc, 4, cxt);
		out[i].secret = store_getstr(tup, desc, 5, cxt);
		out[i].options = outbox_jsonb(tup, desc, 6, cxt);
		out[i].message = store_getstr(tup, desc, 7, cxt);
		out[i].payload = outbox_jsonb(tup, desc, 8, cxt);
		out[i].body = store_getstr(tup, desc, 9, cxt);
		out[i].attempts = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
		out[i].blocked = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));
		out[i].due = DatumGetTimestampTz(SPI_getbinval(tup, desc, 12, &isnull));
		out[i].trace_id = store_getstr(tup, desc, 13, cxt);
		out[i].workflow = store_getstr(tup, desc, 14, cxt);
		out[i].workflow_version = DatumGetInt32(SPI_getbinval(tup, desc, 15, &isnull));
	}
	*rows = out;
	return n;
}

/*
 * Write the results of a batch in one statement.
 */
void
store_outbox_record(const LcOutboxResult *r, int n, TimestampTz now)
{
	Oid			types[6] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID, BOOLARRAYOID, TIMESTAMPTZOID};
	Datum		vals[6];
	Datum	   *d[5];
	bool	   *nl[5];

	if (n == 0)
		return;
	for (int k = 0; k < 5; k++)
	{
		d[k] = palloc(sizeof(Datum) * n);
		nl[k] = palloc0(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		d[0][i] = Int64GetDatum(r[i].id);
		d[1][i] = CStringGetTextDatum(r[i].status);
		if (r[i].next_attempt_at == 0)
			nl[2][i] = true;
		else
			d[2][i] = TimestampTzGetDatum(r[i].next_attempt_at);
		if (r[i].error == NULL)
			nl[3][i] = true;
		else
			d[3][i] = CStringGetTextDatum(r[i].error);
		d[4][i] = BoolGetDatum(r[i].uncount);
	}
	vals[0] = store_array(d[0], nl[0], n, INT8OID);
	vals[1] = store_array(d[1], nl[1], n, TEXTOID);
	vals[2] = store_array(d[2], nl[2], n, TIMESTAMPTZOID);
	vals[3] = store_array(d[3], nl[3], n, TEXTOID);
	vals[4] = store_array(d[4], nl[4], n, BOOLOID);
	vals[5] = TimestampTzGetDatum(now);

	store_run(&outbox_state.plans[OP_RECORD],
				"WITH r AS ("
				" SELECT * FROM unnest($1, $2, $3, $4, $5)"
				"  AS r(id, status, next_at, error, uncount))"
				" UPDATE lifecycle.outbox o SET"
				"  status = CASE WHEN o.status = 'pending' THEN r.status"
				"   ELSE o.status END,"
				"  next_attempt_at = CASE WHEN o.status <> 'pending' THEN o.next_attempt_at"
				"   WHEN r.status = 'pending' THEN r.next_at END,"
				"  last_error = CASE WHEN o.status = 'pending' THEN r.error"
				"   ELSE o.last_error END,"
				"  sent_at = CASE WHEN r.status = 'sent' THEN $6 ELSE o.sent_at END,"
				"  attempts = o.attempts - CASE WHEN r.uncount THEN 1 ELSE 0 END,"
				"  claimed_at = NULL,"
				"  last_attempt_at = $6"
				" FROM r WHERE o.id = r.id",
				6, types, vals, NULL, false, 0, SPI_OK_UPDATE);
}

/*
 * The receiver at target answered 410: disable the channel, unless its
 * target has changed since the request was claimed.  True if it was
 * enabled and has that target.
 */
bool
store_outbox_disable_channel(const char *name, const char *target,
							 const char *reason)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[3];

	vals[0] = CStringGetTextDatum(name);
	vals[1] = CStringGetTextDatum(reason);
	vals[2] = CStringGetTextDatum(target);
	store_run(&outbox_state.plans[OP_DISABLE],
				"UPDATE lifecycle.channels SET enabled = false, disabled_reason = $2"
				" WHERE name = $1 AND target = $3 AND enabled",
				3, types, vals, NULL, false, 0, SPI_OK_UPDATE);
	return SPI_processed > 0;
}

/*
 * When the next pending message of an enabled channel falls due (0: none),
 * for the sender's sleep.
 */
TimestampTz
store_outbox_next_due(void)
{
	bool		isnull;
	Datum		d;

	store_run(&outbox_state.plans[OP_NEXT_DUE],
				"SELECT o.next_attempt_at FROM lifecycle.outbox o"
				" WHERE o.status = 'pending' AND o.next_attempt_at IS NOT NULL"
				"  AND EXISTS (SELECT 1 FROM lifecycle.channels c"
				"   WHERE c.name = o.channel AND c.enabled)"
				" ORDER BY o.next_attempt_at LIMIT 1",
				0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Add a channel or replace the one of that name (enabling it again).
 * True if it is new.
 */
bool
store_outbox_upsert_channel(const char *name, const char *kind,
							const char *target, const char *secret,
							Jsonb *options)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		vals[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	vals[0] = CStringGetTextDatum(name);
	vals[1] = CStringGetTextDatum(kind);
	vals[2] = CStringGetTextDatum(target);
	store_text_param(secret, &vals[3], &nulls[3]);
	vals[4] = JsonbPGetDatum(options);
	store_run(&outbox_state.plans[OP_UPSERT_CHANNEL],
				"INSERT INTO lifecycle.channels AS c (name, kind, target, secret,"
				"  options, enabled, disabled_reason)"
				" VALUES ($1, $2, $3, $4, $5, true, NULL)"
				" ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
				"  target = excluded.target, secret = excluded.secret,"
				"  options = excluded.options, enabled = true, disabled_reason = NULL"
				" RETURNING (c.xmax = 0)",
				5, types, vals, nulls, false, 0, SPI_OK_INSERT_RETURNING);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Put dead letters (of channel, or all when NULL) that the acting role may
 * see back in the queue, due now, with a fresh set of attempts.  Messages
 * of erased users stay dead (their payload is gone).  Returns how many.
 */
int
store_outbox_retry_dead(const char *channel, TimestampTz now)
{
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		vals[2];
	char		nulls[2] = {' ', ' '};

	store_text_param(channel, &vals[0], &nulls[0]);
	vals[1] = TimestampTzGetDatum(now);
	store_run(&outbox_state.plans[OP_RETRY_DEAD],
				"UPDATE lifecycle.outbox o SET status = 'pending', attempts = 0,"
				" next_attempt_at = $2, claimed_at = NULL"
				" FROM lifecycle.users u"
				" WHERE o.status = 'dead' AND u.id = o.user_id"
				"  AND u.state <> 'erased'"
				"  AND ($1::text IS NULL OR o.channel = $1)"
				"  AND lifecycle._tenant_visible(u.tenant)",
				2, types, vals, nulls, false, 0, SPI_OK_UPDATE);
	return (int) SPI_processed;
}

/*
 * How many dead letters (of channel, or all when NULL) belong to tenants
 * the acting role may not see: a limited role may not requeue them.
 */
int64
store_outbox_dead_hidden(const char *channel)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	char		nulls[1] = {' '};
	bool		isnull;

	store_text_param(channel, &vals[0], &nulls[0]);
	store_run(&outbox_state.plans[OP_DEAD_HIDDEN],
			  "SELECT pg_catalog.count(*) FROM lifecycle.outbox o"
			  " JOIN lifecycle.users u ON u.id OPERATOR(pg_catalog.=) o.user_id"
			  " WHERE o.status OPERATOR(pg_catalog.=) 'dead'"
			  "  AND u.state OPERATOR(pg_catalog.<>) 'erased'"
			  "  AND ($1::text IS NULL OR o.channel OPERATOR(pg_catalog.=) $1)"
			  "  AND NOT lifecycle._tenant_visible(u.tenant)",
			  1, types, vals, nulls, true, 0, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Delete up to max_rows messages past their policy's outbox_retention
 * (lifecycle._prune_outbox()).  Returns the rows deleted.  Between a
 * package upgrade and ALTER EXTENSION UPDATE the function does not exist
 * yet: nothing is pruned then.
 */
int64
store_outbox_prune(int max_rows)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1];
	bool		isnull;

	store_run(&outbox_state.plans[OP_PRUNE_EXISTS],
			  "SELECT pg_catalog.to_regprocedure('lifecycle._prune_outbox(integer)')"
			  " IS NOT NULL",
			  0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)))
		return 0;
	vals[0] = Int32GetDatum(max_rows);
	store_run(&outbox_state.plans[OP_PRUNE], "SELECT lifecycle._prune_outbox($1)",
			  1, types, vals, NULL, false, 1, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * lifecycle_claim_messages(): lease up to limit unrouted messages of the
 * tenants the acting role may see, oldest first, skipping those another
 * transaction holds: attempts + 1, hidden until lease_until (kept in
 * next_attempt_at; an unrouted message never leased has none).  Rows are
 * allocated in the caller's context, in id order.
 */
int
store_outbox_app_claim(TimestampTz now, TimestampTz lease_until, int limit,
					   LcAppMessage **rows)
{
	MemoryContext cxt = store_result_cxt();
	LcAppMessage *out;
	int			n;

	n = outbox_run_lease(OP_APP_CLAIM,
			  "WITH c AS ("
			  " SELECT o.id FROM lifecycle.outbox o"
			  " JOIN lifecycle.users u ON u.id = o.user_id"
			  " WHERE o.status = 'unrouted'"
			  "  AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= $1)"
			  "  AND lifecycle._tenant_visible(u.tenant)"
			  " ORDER BY o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED),"
			  " l AS ("
			  " UPDATE lifecycle.outbox o SET attempts = o.attempts + 1,"
			  "  claimed_at = $1, next_attempt_at = $2, last_attempt_at = $1"
			  " FROM c WHERE o.id = c.id"
			  " RETURNING o.id, o.message, o.payload, o.attempts)"
			  " SELECT id, message, payload, attempts FROM l ORDER BY id",
			  SPI_OK_SELECT, now, lease_until, limit);
	out = (LcAppMessage *) MemoryContextAllocZero(cxt, sizeof(LcAppMessage) * Max(n, 1));
	for (int i = 0; i < n; i++)
		outbox_app_message(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, cxt,
						   &out[i]);
	*rows = out;
	return n;
}

/*
 * One row of the application's claim (id, message, payload, attempts),
 * copied into cxt.
 */
static void
outbox_app_message(HeapTuple tup, TupleDesc desc, MemoryContext cxt,
				   LcAppMessage *m)
{
	bool		isnull;

	m->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	m->message = store_getstr(tup, desc, 2, cxt);
	m->payload = outbox_jsonb(tup, desc, 3, cxt);
	m->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
}

/*
 * lifecycle_ack_messages(): the application delivered these leased
 * messages: 'sent' at now.  Ids that are not unrouted and leased, or of
 * tenants the acting role may not see, are left alone.  Returns how many
 * were marked.
 */
int
store_outbox_app_ack(Datum ids, TimestampTz now)
{
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		vals[2];

	vals[0] = ids;
	vals[1] = TimestampTzGetDatum(now);
	store_run(&outbox_state.plans[OP_APP_ACK],
			  "UPDATE lifecycle.outbox o SET status = 'sent', sent_at = $2,"
			  " claimed_at = NULL, next_attempt_at = NULL, last_error = NULL"
			  " FROM lifecycle.users u"
			  " WHERE o.id = ANY ($1) AND u.id = o.user_id"
			  "  AND o.status = 'unrouted' AND o.claimed_at IS NOT NULL"
			  "  AND lifecycle._tenant_visible(u.tenant)",
			  2, types, vals, NULL, false, 0, SPI_OK_UPDATE);
	return (int) SPI_processed;
}
