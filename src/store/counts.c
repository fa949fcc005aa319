/*-------------------------------------------------------------------------
 *
 * counts.c
 *	  Exact counts kept as they change (issue 20): lifecycle.metrics and
 *	  lifecycle.retention_report read them instead of scanning every
 *	  instance.
 *
 * Row-level AFTER triggers on users, history and outbox (67_counts.sql)
 * add each row's delta to its group in memory; a statement-level AFTER
 * trigger (its events fire after the statement's row events) appends one
 * row per changed group to lifecycle.count_deltas, in the transaction
 * (and subtransaction) that changes the rows: a rollback takes the deltas
 * with it, a crash loses neither.  Appending instead of updating one
 * counter row per group keeps the application's writes from queueing on
 * a hot row.  The rows are written with heap inserts (the table has no
 * index, no trigger, no constraint but NOT NULL), not SQL.  The families:
 *
 *	 users		tenant, policy, state: instances, of which held (the flag)
 *	 events		tenant (of the user), event, workflow (of the user): history rows
 *	 messages	tenant (of the user), channel ('' for none), status: outbox rows
 *
 * The tenant of a history or outbox row is its user's (and a history
 * row's workflow): one probe of the users' primary key (any version of
 * the row: neither ever changes).
 * A group key includes the policy, so a dimension derived from it (the
 * workflow) is a join away.  The scheduler, every pass, and
 * lifecycle_tick() fold the deltas into lifecycle.counts
 * (store_counts_fold()); readers add what is not folded yet, so a count
 * is exact whenever it is read.
 *
 * An UPDATE that moves no row to another group (a touch, a claim, a
 * retry) is skipped by the row trigger's WHEN and writes nothing.
 *
 * The hot statements of the store (a batch of transitions, an invitation,
 * an adoption: store_apply(), store_user_insert(), store_bulk.c) write
 * their own deltas in the same statement, from its RETURNING rows, and
 * run under store_counts_self(): the triggers' WHEN (lifecycle._counting())
 * is false for their rows, so they cost no trigger call and no copy of
 * the rows (0.3.0 "no regression": statement triggers with transition
 * tables copied every row written and probed the users' key per history
 * and outbox row, a fifth of the worker's time).
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
#include "access/xact.h"
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

#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_count_trigger);
PG_FUNCTION_INFO_V1(lifecycle_counting);

typedef enum CountFamily
{
	CF_USERS,					/* tenant, policy, state, held */
	CF_EVENTS,					/* user_id, event, at, due_at */
	CF_MESSAGES,				/* user_id, channel, status */
} CountFamily;

#define COUNT_MAX_KEYS 4
/* Distinct pending groups kept in memory before they are written. */
#define COUNT_GROUPS 256

/* One group's pending delta, in the (sub)transaction that made it. */
typedef struct CountGroup
{
	SubTransactionId subid;
	const char *family;			/* family_name[] or "lateness" */
	char	   *tenant;
	char	   *k1;
	char	   *k2;
	int64		n;
	int64		held;
} CountGroup;

/* The key columns of one table (attribute numbers), by relation. */
typedef struct CountColumns
{
	Oid			relid;
	CountFamily family;
	int			nkeys;
	AttrNumber	attnum[COUNT_MAX_KEYS];
} CountColumns;

/*
 * The deltas counted by the row triggers and not written yet (the
 * statement trigger writes them), in a context of the transaction.
 * Everything here is forgotten at transaction end.
 */
static struct
{
	MemoryContext cxt;			/* child of TopTransactionContext, or NULL */
	int			ngroups;
	CountGroup	groups[COUNT_GROUPS];
	CountColumns cols[3];		/* relid 0: not looked up yet */
	/* the tenant and workflow of the last user id looked up */
	int64		last_uid;
	char	   *last_tenant;
	char	   *last_workflow;
} pending;

/*
 * The statements of the store that write their own deltas (store_apply(),
 * store_user_insert(), adoption) set this while they run: the row and
 * statement triggers' WHEN (lifecycle._counting()) is false for them.
 */
static bool counts_self = false;
static bool counts_callbacks = false;

static const char *const family_name[] = {"users", "events", "messages"};

static void count_xact_callback(XactEvent event, void *arg);
static void count_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);
static void count_write(bool all);

/* The callbacks that forget or keep pending deltas, registered once. */
static void
count_register(void)
{
	if (counts_callbacks)
		return;
	RegisterXactCallback(count_xact_callback, NULL);
	RegisterSubXactCallback(count_subxact_callback, NULL);
	counts_callbacks = true;
}

/*
 * Run the store's own counting statement: the triggers skip the rows it
 * writes (it writes their deltas itself, in the same statement).
 */
void
store_counts_self(bool on)
{
	count_register();
	counts_self = on;
}

/*
 * Append one delta for a group (a statement of the store that counted
 * its own rows: adoption).  Written at once, as the owner (a heap insert).
 */
void
store_counts_add(const char *family, const char *tenant, const char *k1,
				 const char *k2, int64 n, int64 held)
{
	Oid			relid;
	Relation	deltas;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	HeapTuple	tup;

	if (n == 0 && held == 0)
		return;
	relid = get_relname_relid("count_deltas", get_namespace_oid("lifecycle", false));
	if (!OidIsValid(relid))
		elog(ERROR, "lifecycle counts: lifecycle.count_deltas is missing");
	deltas = table_open(relid, RowExclusiveLock);
	values[0] = CStringGetTextDatum(family);
	values[1] = CStringGetTextDatum(tenant);
	values[2] = CStringGetTextDatum(k1);
	values[3] = CStringGetTextDatum(k2);
	values[4] = Int64GetDatum(n);
	values[5] = Int64GetDatum(held);
	tup = heap_form_tuple(RelationGetDescr(deltas), values, nulls);
	simple_heap_insert(deltas, tup);
	heap_freetuple(tup);
	table_close(deltas, RowExclusiveLock);
}

/*
 * lifecycle._counting(): do the count triggers count this statement's
 * rows?  False while a statement of the store that writes its own deltas
 * runs.
 */
Datum
lifecycle_counting(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!counts_self);
}

/*
 * At transaction end nothing is pending any more: written at pre-commit
 * (a statement trigger normally wrote it already), forgotten at abort
 * (the context goes with the transaction).
 */
static void
count_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (pending.ngroups > 0)
				count_write(true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			pending.cxt = NULL;
			pending.ngroups = 0;
			pending.last_tenant = NULL;
			for (int i = 0; i < lengthof(pending.cols); i++)
				pending.cols[i].relid = InvalidOid;
			counts_self = false;
			break;
	}
}

/*
 * A subtransaction that aborts takes its pending deltas with it; one that
 * commits hands them to its parent.
 */
static void
count_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			k = 0;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		for (int i = 0; i < pending.ngroups; i++)
			if (pending.groups[i].subid != mySubid)
				pending.groups[k++] = pending.groups[i];
		pending.ngroups = k;
		pending.last_tenant = NULL;
		counts_self = false;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < pending.ngroups; i++)
			if (pending.groups[i].subid == mySubid)
				pending.groups[i].subid = parentSubid;
	}
}

/*
 * The key columns of a family's table, looked up by name once per
 * transaction (the physical table may gain columns).
 */
static CountColumns *
count_columns(CountFamily family, Relation rel)
{
	static const char *const cols[3][COUNT_MAX_KEYS] = {
		{"tenant", "policy", "state", "held"},
		{"user_id", "event", "at", "due_at"},
		{"user_id", "channel", "status", NULL},
	};
	CountColumns *c = &pending.cols[family];
	TupleDesc	desc = RelationGetDescr(rel);

	if (c->relid == RelationGetRelid(rel))
		return c;
	c->family = family;
	c->nkeys = 0;
	for (int i = 0; i < COUNT_MAX_KEYS && cols[family][i] != NULL; i++)
	{
		int			att = SPI_fnumber(desc, cols[family][i]);

		if (att <= 0)
			elog(ERROR, "lifecycle count trigger: column \"%s\" not found",
				 cols[family][i]);
		c->attnum[c->nkeys++] = att;
	}
	c->relid = RelationGetRelid(rel);
	return c;
}

/*
 * Are the key columns of two rows equal (so the row stays in its group)?
 */
static bool
count_same_group(CountColumns *c, TupleTableSlot *a, TupleTableSlot *b)
{
	TupleDesc	desc = a->tts_tupleDescriptor;

	for (int i = 0; i < c->nkeys; i++)
	{
		AttrNumber	att = c->attnum[i];
		Form_pg_attribute attr = TupleDescAttr(desc, att - 1);
		bool		n1,
					n2;
		Datum		d1 = slot_getattr(a, att, &n1);
		Datum		d2 = slot_getattr(b, att, &n2);

		if (n1 != n2)
			return false;
		if (!n1 && !datumIsEqual(d1, d2, attr->attbyval, attr->attlen))
			return false;
	}
	return true;
}

/* The text of a key column, in the pending context; "" for NULL. */
static char *
count_text(TupleTableSlot *s, AttrNumber att)
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
	old = MemoryContextSwitchTo(pending.cxt);
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
 * restored) and its workflow (likewise ''; "user" before the upgrade to
 * 0.3.0 adds the column): one probe of the primary key.  Any version of
 * the row will do (a user's tenant and workflow never change), including
 * one the current command wrote.
 */
static char *
count_tenant(int64 uid, char **workflow)
{
	ScanKeyData key;
	char	   *tenant = "";
	char	   *wf = "";
	Oid			relid;
	Relation	users;
	Relation	pkey;
	Oid			pkeyid;
	AttrNumber	att;
	AttrNumber	watt;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	if (pending.last_tenant != NULL && pending.last_uid == uid)
	{
		*workflow = pending.last_workflow;
		return pending.last_tenant;
	}
	relid = get_relname_relid("users", get_namespace_oid("lifecycle", false));
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
		elog(ERROR, "lifecycle count trigger: lifecycle.users is not a table");
	users = table_open(relid, AccessShareLock);
	pkeyid = RelationGetPrimaryKeyIndex(users);
	if (!OidIsValid(pkeyid))
		elog(ERROR, "lifecycle count trigger: lifecycle.users has no primary key");
	pkey = index_open(pkeyid, AccessShareLock);
	att = SPI_fnumber(RelationGetDescr(users), "tenant");
	if (att <= 0)
		elog(ERROR, "lifecycle count trigger: column \"tenant\" not found");
	watt = SPI_fnumber(RelationGetDescr(users), "workflow");
	slot = table_slot_create(users, NULL);
	scan = index_beginscan(users, pkey, SnapshotAny, 1, 0);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(uid));
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		tenant = count_text(slot, att);
		wf = watt > 0 ? count_text(slot, watt) : "user";
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, AccessShareLock);
	table_close(users, AccessShareLock);
	pending.last_uid = uid;
	pending.last_tenant = tenant;
	pending.last_workflow = wf;
	*workflow = wf;
	return tenant;
}

/*
 * Append the pending deltas to lifecycle.count_deltas (no index, no
 * trigger, no constraint but NOT NULL: a heap insert each): those of the
 * current subtransaction, or all (at pre-commit, when every
 * subtransaction has ended).
 */
static void
count_write(bool all)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	Oid			relid;
	Relation	deltas;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	int			k = 0;

	relid = get_relname_relid("count_deltas", get_namespace_oid("lifecycle", false));
	if (!OidIsValid(relid))
		elog(ERROR, "lifecycle count trigger: lifecycle.count_deltas is missing");
	deltas = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(deltas);
	for (int i = 0; i < pending.ngroups; i++)
	{
		CountGroup *g = &pending.groups[i];
		HeapTuple	tup;

		if (!all && g->subid != subid)
		{
			pending.groups[k++] = *g;
			continue;
		}
		if (g->n == 0 && g->held == 0)
			continue;
		values[0] = CStringGetTextDatum(g->family);
		values[1] = CStringGetTextDatum(g->tenant);
		values[2] = CStringGetTextDatum(g->k1);
		values[3] = CStringGetTextDatum(g->k2);
		values[4] = Int64GetDatum(g->n);
		values[5] = Int64GetDatum(g->held);
		tup = heap_form_tuple(desc, values, nulls);
		simple_heap_insert(deltas, tup);
		heap_freetuple(tup);
	}
	table_close(deltas, RowExclusiveLock);
	pending.ngroups = k;
	/* The strings of groups still pending stay: the context is not reset. */
	if (k == 0 && pending.cxt != NULL)
	{
		MemoryContextReset(pending.cxt);
		pending.last_tenant = NULL;
	}
}

/*
 * Add n (and held) to a pending group of the current subtransaction.
 */
static void
count_group_add(const char *family, char *tenant, char *k1, char *k2,
				int64 n, int64 held)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	CountGroup *g = NULL;

	for (int i = pending.ngroups - 1; i >= 0; i--)
	{
		CountGroup *c = &pending.groups[i];

		if (c->subid == subid && c->family == family &&
			strcmp(c->tenant, tenant) == 0 &&
			strcmp(c->k1, k1) == 0 && strcmp(c->k2, k2) == 0)
		{
			g = c;
			break;
		}
	}
	if (g == NULL)
	{
		/* count_add() made room for a row's two groups */
		Assert(pending.ngroups < COUNT_GROUPS);
		g = &pending.groups[pending.ngroups++];
		g->subid = subid;
		g->family = family;
		g->tenant = tenant;		/* in pending.cxt, or constants */
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
 * store.c's counting statements compute the same in SQL.
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
count_add(CountColumns *c, TupleTableSlot *s, int sign)
{
	char	   *tenant;
	char	   *k1;
	char	   *k2;
	int64		held = 0;
	bool		isnull;

	/*
	 * Room for this row's groups (its event and its lateness), written
	 * before its strings are made.
	 */
	if (pending.ngroups >= COUNT_GROUPS - 1)
	{
		count_write(false);
		if (pending.ngroups >= COUNT_GROUPS - 1)
			elog(ERROR, "lifecycle count trigger: too many pending groups");
	}

	if (c->family == CF_USERS)
	{
		tenant = count_text(s, c->attnum[0]);
		k1 = count_text(s, c->attnum[1]);
		k2 = count_text(s, c->attnum[2]);
		held = DatumGetBool(slot_getattr(s, c->attnum[3], &isnull)) && !isnull ? 1 : 0;
	}
	else
	{
		Datum		uid = slot_getattr(s, c->attnum[0], &isnull);
		char	   *workflow = "";

		tenant = isnull ? "" : count_tenant(DatumGetInt64(uid), &workflow);
		k1 = count_text(s, c->attnum[1]);
		/* a history row's group names its instance's workflow */
		k2 = c->family == CF_MESSAGES ? count_text(s, c->attnum[2]) : workflow;
	}
	count_group_add(family_name[c->family], tenant, k1, k2, sign, sign * held);

	if (c->family == CF_EVENTS)
	{
		bool		n1,
					n2;
		Datum		at = slot_getattr(s, c->attnum[2], &n1);
		Datum		due = slot_getattr(s, c->attnum[3], &n2);

		if (!n1 && !n2)
		{
			int64		late = DatumGetTimestampTz(at) - DatumGetTimestampTz(due);

			count_group_add("lateness", tenant, count_lateness_bucket(late),
							"", sign, sign * late);
		}
	}
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
	int			k = 0;

	/* Its pending deltas went with its rows. */
	for (int i = 0; i < pending.ngroups; i++)
		if (strcmp(pending.groups[i].family, family) != 0 &&
			!(strcmp(family, "events") == 0 &&
			  strcmp(pending.groups[i].family, "lateness") == 0))
			pending.groups[k++] = pending.groups[i];
	pending.ngroups = k;

	vals[0] = CStringGetTextDatum(family);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_with_args("WITH d AS (DELETE FROM lifecycle.count_deltas"
							   " WHERE family = $1 OR ($1 = 'events' AND family = 'lateness'))"
							   " DELETE FROM lifecycle.counts"
							   " WHERE family = $1 OR ($1 = 'events' AND family = 'lateness')",
							   1, types, vals, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "lifecycle count statement failed: %s",
			 SPI_result_code_string(rc));
	SPI_finish();
}

/*
 * lifecycle._count_trigger(), argument the family (users, events,
 * messages):
 *	 AFTER INSERT, UPDATE or DELETE ... FOR EACH ROW: the row's delta is
 *	 added to the pending groups (an UPDATE that leaves the row in its
 *	 group adds nothing; the trigger's WHEN already skips most);
 *	 AFTER INSERT, UPDATE or DELETE ... FOR EACH STATEMENT: the pending
 *	 deltas are written (the statement's row events fire before it);
 *	 AFTER TRUNCATE: the family's counts are zero.
 */
Datum
lifecycle_count_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *fam;
	CountFamily family;
	CountColumns *c;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		elog(ERROR, "lifecycle._count_trigger must be an AFTER trigger with one argument");

	fam = td->tg_trigger->tgargs[0];
	if (strcmp(fam, "users") == 0)
		family = CF_USERS;
	else if (strcmp(fam, "events") == 0)
		family = CF_EVENTS;
	else if (strcmp(fam, "messages") == 0)
		family = CF_MESSAGES;
	else
		elog(ERROR, "lifecycle._count_trigger: unknown family \"%s\"", fam);

	count_register();
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		count_forget(family_name[family]);
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
	{
		if (pending.ngroups > 0)
			count_write(false);
		return PointerGetDatum(NULL);
	}

	if (pending.cxt == NULL)
	{
		pending.cxt = AllocSetContextCreate(TopTransactionContext,
											"lifecycle counts",
											ALLOCSET_SMALL_SIZES);
		pending.ngroups = 0;
		pending.last_tenant = NULL;
	}
	c = count_columns(family, td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		count_add(c, td->tg_trigslot, +1);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		count_add(c, td->tg_trigslot, -1);
	else if (!count_same_group(c, td->tg_trigslot, td->tg_newslot))
	{
		count_add(c, td->tg_trigslot, -1);
		count_add(c, td->tg_newslot, +1);
	}
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
