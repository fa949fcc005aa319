/*-------------------------------------------------------------------------
 *
 * counts.c
 *	  Exact counts kept as they change (issue 20): lifecycle.metrics and
 *	  lifecycle.retention_report read them instead of scanning every
 *	  instance.
 *
 * Statement-level AFTER triggers with transition tables on users, history
 * and outbox (67_counts.sql) append one row per changed group to
 * lifecycle.count_deltas, in the transaction (and subtransaction) that
 * changes the rows: a rollback takes the deltas with it, a crash loses
 * neither.  Appending instead of updating one counter row per group keeps
 * the application's writes from queueing on a hot row.  The rows are
 * written with heap inserts (the table has no index, no trigger, no
 * constraint but NOT NULL), not SQL: an application call pays for its
 * three trigger calls, not for three statements.  The families:
 *
 *	 users		tenant, policy, state: instances, of which held (the flag)
 *	 events		tenant (of the user), event: history rows
 *	 messages	tenant (of the user), channel ('' for none), status: outbox rows
 *
 * The tenant of a history or outbox row is its user's: one probe of the
 * users' primary key (any version of the row: the tenant never changes).
 * A group key includes the policy, so a dimension derived from it (the
 * workflow) is a join away.  The scheduler, every pass, and
 * lifecycle_tick() fold the deltas into lifecycle.counts
 * (store_counts_fold()); readers add what is not folded yet, so a count
 * is exact whenever it is read.
 *
 * An UPDATE that moves no row to another group (a touch, a claim, a
 * retry) is recognised here, row pair by row pair, and writes nothing.
 *
 * IDENTIFICATION
 *	  src/store/counts.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_count_trigger);

typedef enum CountFamily
{
	CF_USERS,					/* tenant, policy, state, held */
	CF_EVENTS,					/* user_id, event */
	CF_MESSAGES,				/* user_id, channel, status */
} CountFamily;

#define COUNT_MAX_KEYS 4
/* Distinct groups kept in memory before they are written. */
#define COUNT_GROUPS 64

typedef struct CountGroup
{
	const char *family;			/* family_name[] or "lateness" */
	char	   *tenant;
	char	   *k1;
	char	   *k2;
	int64		n;
	int64		held;
} CountGroup;

/* The deltas of one statement, before they are written. */
typedef struct CountBatch
{
	CountFamily family;
	int			nkeys;			/* key columns read from a row */
	AttrNumber	attnum[COUNT_MAX_KEYS];
	MemoryContext cxt;			/* the groups' strings, reset after a write */
	Relation	deltas;			/* lifecycle.count_deltas */
	int			ngroups;
	CountGroup	groups[COUNT_GROUPS];
	/* events, messages: the tenant of a user id, by its primary key */
	Relation	users;
	Relation	users_pkey;
	IndexScanDesc scan;
	TupleTableSlot *uslot;
	AttrNumber	users_tenant;
	int64		last_uid;
	char	   *last_tenant;
} CountBatch;

static const char *const family_name[] = {"users", "events", "messages"};

/*
 * The key columns of a family, looked up by name (the physical table may
 * gain columns).
 */
static void
count_columns(CountBatch *b, TupleDesc desc)
{
	static const char *const cols[3][COUNT_MAX_KEYS] = {
		{"tenant", "policy", "state", "held"},
		{"user_id", "event", "at", "due_at"},
		{"user_id", "channel", "status", NULL},
	};

	b->nkeys = 0;
	for (int i = 0; i < COUNT_MAX_KEYS && cols[b->family][i] != NULL; i++)
	{
		int			att = SPI_fnumber(desc, cols[b->family][i]);

		if (att <= 0)
			elog(ERROR, "lifecycle count trigger: column \"%s\" not found",
				 cols[b->family][i]);
		b->attnum[b->nkeys++] = att;
	}
}

/*
 * Are the key columns of two rows equal (so the row stays in its group)?
 */
static bool
count_same_group(CountBatch *b, TupleTableSlot *a, TupleTableSlot *c)
{
	TupleDesc	desc = a->tts_tupleDescriptor;

	for (int i = 0; i < b->nkeys; i++)
	{
		AttrNumber	att = b->attnum[i];
		Form_pg_attribute attr = TupleDescAttr(desc, att - 1);
		bool		n1,
					n2;
		Datum		d1 = slot_getattr(a, att, &n1);
		Datum		d2 = slot_getattr(c, att, &n2);

		if (n1 != n2)
			return false;
		if (!n1 && !datumIsEqual(d1, d2, attr->attbyval, attr->attlen))
			return false;
	}
	return true;
}

/* The text of a key column, in the batch's context; "" for NULL. */
static char *
count_text(CountBatch *b, TupleTableSlot *s, AttrNumber att)
{
	bool		isnull;
	Datum		d = slot_getattr(s, att, &isnull);
	Oid			typid = TupleDescAttr(s->tts_tupleDescriptor, att - 1)->atttypid;
	Oid			out;
	bool		varlena;
	MemoryContext old;
	char	   *r;

	if (isnull)
		return "";
	old = MemoryContextSwitchTo(b->cxt);
	if (typid == TEXTOID)
		r = TextDatumGetCString(d);
	else
	{
		getTypeOutputInfo(typid, &out, &varlena);
		r = OidOutputFunctionCall(out, d);
	}
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * The tenant of a user ('' if there is no such row, as while a dump is
 * restored): one probe of the primary key.  Any version of the row will
 * do (a user's tenant never changes), including one the current command
 * wrote.
 */
static char *
count_tenant(CountBatch *b, int64 uid)
{
	ScanKeyData key;
	char	   *tenant = "";

	if (b->last_tenant != NULL && b->last_uid == uid)
		return b->last_tenant;
	if (b->users == NULL)
	{
		Oid			relid = get_relname_relid("users",
											  get_namespace_oid("lifecycle", false));
		Oid			pkey;

		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
			elog(ERROR, "lifecycle count trigger: lifecycle.users is not a table");
		b->users = table_open(relid, AccessShareLock);
		pkey = RelationGetPrimaryKeyIndex(b->users);
		if (!OidIsValid(pkey))
			elog(ERROR, "lifecycle count trigger: lifecycle.users has no primary key");
		b->users_pkey = index_open(pkey, AccessShareLock);
		b->users_tenant = SPI_fnumber(RelationGetDescr(b->users), "tenant");
		if (b->users_tenant <= 0)
			elog(ERROR, "lifecycle count trigger: column \"tenant\" not found");
		b->uslot = table_slot_create(b->users, NULL);
		b->scan = index_beginscan(b->users, b->users_pkey, SnapshotAny, 1, 0);
	}
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(uid));
	index_rescan(b->scan, &key, 1, NULL, 0);
	if (index_getnext_slot(b->scan, ForwardScanDirection, b->uslot))
		tenant = count_text(b, b->uslot, b->users_tenant);
	ExecClearTuple(b->uslot);
	b->last_uid = uid;
	b->last_tenant = tenant;
	return tenant;
}

/*
 * Append the groups' deltas to lifecycle.count_deltas (no index, no
 * trigger, no constraint but NOT NULL: a heap insert each).
 */
static void
count_write(CountBatch *b)
{
	TupleDesc	desc = RelationGetDescr(b->deltas);
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	for (int i = 0; i < b->ngroups; i++)
	{
		CountGroup *g = &b->groups[i];
		HeapTuple	tup;

		if (g->n == 0 && g->held == 0)
			continue;
		values[0] = CStringGetTextDatum(g->family);
		values[1] = CStringGetTextDatum(g->tenant);
		values[2] = CStringGetTextDatum(g->k1);
		values[3] = CStringGetTextDatum(g->k2);
		values[4] = Int64GetDatum(g->n);
		values[5] = Int64GetDatum(g->held);
		tup = heap_form_tuple(desc, values, nulls);
		simple_heap_insert(b->deltas, tup);
		heap_freetuple(tup);
	}
	b->ngroups = 0;
	b->last_tenant = NULL;
	MemoryContextReset(b->cxt);
}

/*
 * Add n (and held) to a group of the batch.
 */
static void
count_group_add(CountBatch *b, const char *family, char *tenant, char *k1,
				char *k2, int64 n, int64 held)
{
	CountGroup *g = NULL;

	for (int i = b->ngroups - 1; i >= 0; i--)
	{
		CountGroup *c = &b->groups[i];

		if (c->family == family && strcmp(c->tenant, tenant) == 0 &&
			strcmp(c->k1, k1) == 0 && strcmp(c->k2, k2) == 0)
		{
			g = c;
			break;
		}
	}
	if (g == NULL)
	{
		/* count_add() made room for a row's two groups */
		Assert(b->ngroups < COUNT_GROUPS);
		g = &b->groups[b->ngroups++];
		g->family = family;
		g->tenant = tenant;		/* in b->cxt, or constants */
		g->k1 = k1;
		g->k2 = k2;
		g->n = 0;
		g->held = 0;
	}
	g->n += n;
	g->held += held;
}

/*
 * The bucket of a timer's lateness (at - due_at) in the histogram
 * lifecycle_timer_lateness_seconds: the least upper bound that holds it.
 */
static char *
count_lateness_bucket(int64 us)
{
	static const struct
	{
		int64		le;
		const char *name;
	}			buckets[] = {
		{USECS_PER_SEC, "1"}, {10 * USECS_PER_SEC, "10"},
		{USECS_PER_MINUTE, "60"}, {5 * USECS_PER_MINUTE, "300"},
		{USECS_PER_HOUR, "3600"}, {USECS_PER_DAY, "86400"},
	};

	for (int i = 0; i < lengthof(buckets); i++)
		if (us <= buckets[i].le)
			return (char *) buckets[i].name;
	return "+Inf";
}

/*
 * Add a row's group with delta sign (+1 or -1).  A history row of a timer
 * (due_at set) also counts into the lateness histogram: family
 * "lateness", key1 its bucket, held the lateness in microseconds.
 */
static void
count_add(CountBatch *b, TupleTableSlot *s, int sign)
{
	char	   *tenant;
	char	   *k1;
	char	   *k2;
	int64		held = 0;
	bool		isnull;

	/*
	 * Room for this row's groups (its event and its lateness), written
	 * before its strings are made: count_write() frees them.
	 */
	if (b->ngroups >= COUNT_GROUPS - 1)
		count_write(b);

	if (b->family == CF_USERS)
	{
		tenant = count_text(b, s, b->attnum[0]);
		k1 = count_text(b, s, b->attnum[1]);
		k2 = count_text(b, s, b->attnum[2]);
		held = DatumGetBool(slot_getattr(s, b->attnum[3], &isnull)) && !isnull ? 1 : 0;
	}
	else
	{
		Datum		uid = slot_getattr(s, b->attnum[0], &isnull);

		tenant = isnull ? "" : count_tenant(b, DatumGetInt64(uid));
		k1 = count_text(b, s, b->attnum[1]);
		k2 = b->family == CF_MESSAGES ? count_text(b, s, b->attnum[2]) : "";
	}
	count_group_add(b, family_name[b->family], tenant, k1, k2, sign,
					sign * held);

	if (b->family == CF_EVENTS)
	{
		bool		n1,
					n2;
		Datum		at = slot_getattr(s, b->attnum[2], &n1);
		Datum		due = slot_getattr(s, b->attnum[3], &n2);

		if (!n1 && !n2)
		{
			int64		late = DatumGetTimestampTz(at) - DatumGetTimestampTz(due);

			count_group_add(b, "lateness", tenant, count_lateness_bucket(late),
							"", sign, sign * late);
		}
	}
}

/* A slot positioned on the start of a transition table. */
static TupleTableSlot *
count_open(Tuplestorestate *ts, TupleDesc desc, int *ptr)
{
	/* A pointer of our own, at the start (where pointer 0 stays). */
	*ptr = tuplestore_alloc_read_pointer(ts, 0);
	return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
}

static bool
count_next(Tuplestorestate *ts, int ptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(ts, ptr);
	return tuplestore_gettupleslot(ts, true, false, slot);
}

/*
 * The table of a family was truncated: its counts are zero.
 */
static void
count_forget(const char *family)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	int			rc;

	vals[0] = CStringGetTextDatum(family);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("WITH d AS (DELETE FROM lifecycle.count_deltas"
							   " WHERE family = $1)"
							   " DELETE FROM lifecycle.counts WHERE family = $1",
							   1, types, vals, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "lifecycle count statement failed: %s",
			 SPI_result_code_string(rc));
	SPI_finish();
}

/*
 * lifecycle._count_trigger(): AFTER INSERT, UPDATE or DELETE ... FOR EACH
 * STATEMENT with the transition tables the event has; argument: the
 * family (users, events, messages).
 */
Datum
lifecycle_count_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	CountBatch	b;
	const char *fam;
	TupleTableSlot *os = NULL;
	TupleTableSlot *ns = NULL;
	int			optr = 0,
				nptr = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		elog(ERROR, "lifecycle._count_trigger must be an AFTER ... FOR EACH STATEMENT trigger with one argument");

	memset(&b, 0, sizeof(b));
	fam = td->tg_trigger->tgargs[0];
	if (strcmp(fam, "users") == 0)
		b.family = CF_USERS;
	else if (strcmp(fam, "events") == 0)
		b.family = CF_EVENTS;
	else if (strcmp(fam, "messages") == 0)
		b.family = CF_MESSAGES;
	else
		elog(ERROR, "lifecycle._count_trigger: unknown family \"%s\"", fam);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		count_forget(family_name[b.family]);
		return PointerGetDatum(NULL);
	}

	desc = RelationGetDescr(td->tg_relation);
	count_columns(&b, desc);
	b.cxt = AllocSetContextCreate(CurrentMemoryContext, "lifecycle counts",
								  ALLOCSET_DEFAULT_SIZES);
	{
		Oid			relid = get_relname_relid("count_deltas",
											  get_namespace_oid("lifecycle", false));

		if (!OidIsValid(relid))
			elog(ERROR, "lifecycle count trigger: lifecycle.count_deltas is missing");
		b.deltas = table_open(relid, RowExclusiveLock);
	}

	if (td->tg_oldtable != NULL)
		os = count_open(td->tg_oldtable, desc, &optr);
	if (td->tg_newtable != NULL)
		ns = count_open(td->tg_newtable, desc, &nptr);

	if (os != NULL && ns != NULL)
	{
		/* UPDATE: the two tables hold the rows pair by pair. */
		for (;;)
		{
			bool		o = count_next(td->tg_oldtable, optr, os);
			bool		n = count_next(td->tg_newtable, nptr, ns);

			if (o != n)
				elog(ERROR, "lifecycle count trigger: transition tables of different sizes");
			if (!o)
				break;
			if (count_same_group(&b, os, ns))
				continue;
			count_add(&b, os, -1);
			count_add(&b, ns, +1);
		}
	}
	else if (os != NULL)
	{
		while (count_next(td->tg_oldtable, optr, os))
			count_add(&b, os, -1);
	}
	else if (ns != NULL)
	{
		while (count_next(td->tg_newtable, nptr, ns))
			count_add(&b, ns, +1);
	}

	if (os != NULL)
		ExecDropSingleTupleTableSlot(os);
	if (ns != NULL)
		ExecDropSingleTupleTableSlot(ns);

	if (b.ngroups > 0)
		count_write(&b);
	if (b.users != NULL)
	{
		index_endscan(b.scan);
		ExecDropSingleTupleTableSlot(b.uslot);
		index_close(b.users_pkey, AccessShareLock);
		table_close(b.users, AccessShareLock);
	}
	table_close(b.deltas, RowExclusiveLock);
	MemoryContextDelete(b.cxt);
	return PointerGetDatum(NULL);
}

/*
 * Fold the deltas into lifecycle.counts (the scheduler's every pass,
 * lifecycle_tick()).  Returns how many delta rows were folded.  The
 * caller is connected to SPI.
 */
int64
store_counts_fold(void)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;

	static SPIPlanPtr zero = NULL;
	int64		folded;
	Oid			relid;

	/*
	 * One fold at a time (two would upsert the same groups in different
	 * orders), and never a wait: while another transaction folds (a
	 * lifecycle_tick() in an open transaction, the scheduler), this one
	 * leaves the deltas to it or to the next pass.  Readers are not
	 * blocked.
	 */
	relid = get_relname_relid("counts", get_namespace_oid("lifecycle", false));
	if (!OidIsValid(relid) ||
		!ConditionalLockRelationOid(relid, ShareRowExclusiveLock))
		return 0;
	store_run(&plan,
			  "WITH d AS (DELETE FROM lifecycle.count_deltas"
			  "  RETURNING family, tenant, key1, key2, n, held),"
			  " s AS (SELECT family, tenant, key1, key2, sum(n) AS n,"
			  "  sum(held) AS held, count(*) AS rows FROM d"
			  "  GROUP BY family, tenant, key1, key2),"
			  " i AS (INSERT INTO lifecycle.counts AS c"
			  "  (family, tenant, key1, key2, n, held)"
			  "  SELECT family, tenant, key1, key2, n, held FROM s"
			  "  ON CONFLICT (family, tenant, key1, key2) DO UPDATE"
			  "  SET n = c.n + excluded.n, held = c.held + excluded.held)"
			  " SELECT COALESCE(sum(rows), 0)::bigint FROM s",
			  0, NULL, NULL, NULL, false, 0, SPI_OK_SELECT);
	folded = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	/* Groups that emptied go (a count of zero is no row, as in a GROUP BY). */
	if (folded > 0)
		store_run(&zero,
				  "DELETE FROM lifecycle.counts WHERE n = 0 AND held = 0",
				  0, NULL, NULL, NULL, false, 0, SPI_OK_DELETE);
	return folded;
}
