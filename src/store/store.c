/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Every SQL statement the extension runs on its tables (but the outbox
 *	  delivery queries of store_outbox.c), each a saved plan with
 *	  parameters: no value is ever formatted into SQL text.
 *
 * Advancing users is set-based: store_due_users() locks a batch with FOR
 * UPDATE SKIP LOCKED, and store_apply() writes the whole batch (users
 * UPDATE, history and outbox INSERTs) in one statement from arrays.  The
 * application calls use the same store_apply() with a batch of one, so a
 * transition is written the same way whoever fires it.
 *
 * Callers are connected to SPI.  Results are copied into the caller's
 * memory context (the one current before SPI_connect).
 *
 * IDENTIFICATION
 *	  src/store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "shard.h"
#include "shmem.h"
#include "store.h"
#include "store_outbox.h"
#include "cache.h"
#include "version.h"

typedef enum StorePlan
{
	SP_POLICY_LOAD,
	SP_POLICY_LATEST,
	SP_POLICY_INSERT,
	SP_POLICY_WORKFLOW,
	SP_POLICIES_OF_WORKFLOW,
	SP_POLICY_VERSIONS,
	SP_CHANNEL_EXISTS,
	SP_CLOCK_GET,
	SP_CLOCK_SET,
	SP_USER_LOOKUP,
	SP_USER_LOOKUP_LOCK,
	SP_SUBJECT_LOCK,
	SP_USER_INSERT,
	SP_USER_SHARE,
	SP_USER_REINVITE,
	SP_DUE_USERS,
	SP_APPLY,
	SP_APPLY_ONE,
	SP_ERASE,
	SP_FAILURE,
	SP_NEXT_DUE,
	SP_PRUNE,
	SP_TENANT_GRANTS,
	SP_USERS_PAGE,
	SP_SET_DEADLINES,
	SP_NUM_PLANS
} StorePlan;

typedef struct StoreState
{
	SPIPlanPtr	plans[SP_NUM_PLANS];
} StoreState;

static StoreState store_state;

/* The message payload, shared by invitations and transitions. */
#define STORE_PAYLOAD(u) \
	"pg_catalog.jsonb_build_object('subject', " u ".subject, 'tenant', " u ".tenant, " \
	"'email', " u ".email, 'region', " u ".region, 'policy', " u ".policy, " \
	"'attrs', " u ".attrs"

/*
 * Appended to STORE_PAYLOAD(u)'s object: a message of an instance of any
 * workflow but the user lifecycle names its workflow and key (two
 * requests of one subject are told apart); the user workflow's payloads
 * stay as in 0.2.0.
 */
#define STORE_PAYLOAD_INSTANCE(u) \
	" OPERATOR(pg_catalog.||) CASE WHEN " u ".workflow OPERATOR(pg_catalog.=) '" LC_USER_WORKFLOW "'" \
	" THEN '{}'::pg_catalog.jsonb ELSE pg_catalog.jsonb_build_object('workflow', " \
	u ".workflow, 'key', " u ".key) END"

#define STORE_USER_COLUMNS \
	"id, tenant, subject, policy, policy_version, state, state_since, " \
	"last_seen, step, held, hold_until, next_at, next_event, hold_reason, " \
	"retries, shard, state_due_at, workflow, workflow_version, created_at, key"

static void store_exec(StorePlan which, const char *sql, int nargs,
					   const Oid *argtypes, Datum *values, const char *nulls,
					   bool read_only, long count, int expected);
static void store_exec_plan(StorePlan which, bool generic, const char *sql,
							int nargs, const Oid *argtypes, Datum *values,
							const char *nulls, bool read_only, long count,
							int expected);
static void store_exec_counted(StorePlan which, bool generic, const char *sql,
							   int nargs, const Oid *argtypes, Datum *values,
							   const char *nulls, int expected);
static void store_read_user(HeapTuple tup, TupleDesc desc, LcUserRow *row,
							char **names, MemoryContext cxt);
static void store_resolve_user(LcUserRow *row, char **names,
							   const LcGraph **last);
static int	store_read_users(LcUserRow **rows);

/*
 * The caller's memory context (the one current at SPI_connect), where
 * results that outlive SPI_finish are allocated.
 */
MemoryContext
store_result_cxt(void)
{
	void	   *p = SPI_palloc(1);
	MemoryContext cxt = GetMemoryChunkContext(p);

	pfree(p);
	return cxt;
}

/*
 * Run a saved plan, preparing it into *slot once per backend; check the
 * result code.  Shared by store.c and store_outbox.c.
 */
void
store_run(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes,
		  Datum *values, const char *nulls, bool read_only, long count,
		  int expected)
{
	int			rc;

	/* Never run a statement written for another version's schema. */
	version_require();
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for lifecycle statement \"%.40s...\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	rc = SPI_execute_plan(*slot, values, nulls, read_only, count);
	if (rc != expected)
		elog(ERROR, "lifecycle statement \"%.40s...\" failed: %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * Run one of store.c's statements.
 */
static void
store_exec(StorePlan which, const char *sql, int nargs, const Oid *argtypes,
		   Datum *values, const char *nulls, bool read_only, long count,
		   int expected)
{
	store_run(&store_state.plans[which], sql, nargs, argtypes, values, nulls,
			  read_only, count, expected);
}

/*
 * store_exec(), with generic true for a statement whose generic plan is
 * right whatever its parameters (rows addressed by key).  Without
 * that the plan cache plans such a statement anew on every call: the
 * generic plan's estimate for unnest() of the parameter arrays (100 rows)
 * never beats a custom plan's for a single row, so it keeps choosing
 * custom plans, and planning store_apply()'s statement took more than half
 * of every application call that writes (touch, register, complete,
 * restore, erase).
 */
static void
store_exec_plan(StorePlan which, bool generic, const char *sql, int nargs,
				const Oid *argtypes, Datum *values, const char *nulls,
				bool read_only, long count, int expected)
{
	SPIPlanPtr *slot = &store_state.plans[which];

	if (*slot == NULL && generic)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for lifecycle statement \"%.40s...\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	store_run(slot, sql, nargs, argtypes, values, nulls, read_only, count,
			  expected);
}

/*
 * store_exec_plan() of a statement that writes its own count deltas
 * (src/store/counts.c): the count triggers skip its rows.
 */
static void
store_exec_counted(StorePlan which, bool generic, const char *sql, int nargs,
				   const Oid *argtypes, Datum *values, const char *nulls,
				   int expected)
{
	store_counts_self(true);
	PG_TRY();
	{
		store_exec_plan(which, generic, sql, nargs, argtypes, values, nulls,
						false, 0, expected);
	}
	PG_FINALLY();
	{
		store_counts_self(false);
	}
	PG_END_TRY();
}

/*
 * A text parameter of a saved plan from a C string: NULL becomes SQL NULL
 * (the nulls entry 'n'), anything else text.
 */
void
store_text_param(const char *s, Datum *val, char *null)
{
	if (s != NULL)
	{
		*val = CStringGetTextDatum(s);
		*null = ' ';
	}
	else
	{
		*val = (Datum) 0;
		*null = 'n';
	}
}

/*
 * A one-dimensional array of n elements; nulls may be NULL.
 */
Datum
store_array(Datum *vals, bool *nulls, int n, Oid elemtype)
{
	int			dims[1];
	int			lbs[1];
	int16		typlen;
	bool		typbyval;
	char		typalign;

	dims[0] = n;
	lbs[0] = 1;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	if (n == 0)
		return PointerGetDatum(construct_empty_array(elemtype));
	return PointerGetDatum(construct_md_array(vals, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval,
											  typalign));
}

/*
 * Column as a C string copied into cxt, or NULL.
 */
char *
store_getstr(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	if (isnull)
		return NULL;
	return MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

/*
 * Decode STORE_USER_COLUMNS.  The state and timer event are names of the
 * row's own workflow version: they are kept in names[0..1] (in the
 * current context) until store_resolve_user() turns them into the ids of
 * its graph, which may have to be loaded (SPI) once the result is read.
 */
static void
store_read_user(HeapTuple tup, TupleDesc desc, LcUserRow *row, char **names,
				MemoryContext cxt)
{
	bool		isnull;
	Datum		d;

	row->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	row->tenant = store_getstr(tup, desc, 2, cxt);
	row->subject = store_getstr(tup, desc, 3, cxt);
	row->policy = store_getstr(tup, desc, 4, cxt);
	row->policy_version = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	names[0] = store_getstr(tup, desc, 6, CurrentMemoryContext);
	row->user.state_since = DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull));
	d = SPI_getbinval(tup, desc, 8, &isnull);
	row->user.last_seen = isnull ? 0 : DatumGetTimestampTz(d);
	row->user.step = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
	row->user.held = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));
	d = SPI_getbinval(tup, desc, 11, &isnull);
	row->user.hold_until = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, 12, &isnull);
	row->next_at = isnull ? 0 : DatumGetTimestampTz(d);
	names[1] = store_getstr(tup, desc, 13, CurrentMemoryContext);
	row->hold_reason = store_getstr(tup, desc, 14, cxt);
	row->retries = DatumGetInt32(SPI_getbinval(tup, desc, 15, &isnull));
	row->shard = DatumGetInt16(SPI_getbinval(tup, desc, 16, &isnull));
	d = SPI_getbinval(tup, desc, 17, &isnull);
	row->user.state_due_at = isnull ? 0 : DatumGetTimestampTz(d);
	row->workflow = store_getstr(tup, desc, 18, cxt);
	row->workflow_version = DatumGetInt32(SPI_getbinval(tup, desc, 19, &isnull));
	row->user.started = DatumGetTimestampTz(SPI_getbinval(tup, desc, 20, &isnull));
	row->key = store_getstr(tup, desc, 21, cxt);
}

/*
 * The graph of a decoded row's workflow version, and its state and timer
 * event as ids of that graph.  A batch is mostly of one workflow version:
 * *last (NULL at first) keeps the graph of the previous row (graphs stay
 * valid until the end of the transaction).
 */
static void
store_resolve_user(LcUserRow *row, char **names, const LcGraph **last)
{
	const LcGraph *g = *last;

	if (g == NULL || g->version != row->workflow_version ||
		strcmp(g->name, row->workflow) != 0)
		g = *last = cache_graph(row->workflow, row->workflow_version);
	row->graph = g;
	row->user.state = machine_state_from_name(g, names[0]);
	row->next_event = names[1] ? machine_event_from_name(g, names[1]) : LC_EV_NONE;
}

/*
 * Decode every row of the last result as STORE_USER_COLUMNS into an array
 * in the caller's context; returns how many.
 */
static int
store_read_users(LcUserRow **rows)
{
	MemoryContext cxt = store_result_cxt();
	SPITupleTable *tt = SPI_tuptable;
	int			n = (int) SPI_processed;
	LcUserRow  *out = (LcUserRow *) MemoryContextAlloc(cxt, sizeof(LcUserRow) * Max(n, 1));
	char	  **names = palloc(sizeof(char *) * 2 * Max(n, 1));
	const LcGraph *last = NULL;

	for (int i = 0; i < n; i++)
		store_read_user(tt->vals[i], tt->tupdesc, &out[i], &names[2 * i], cxt);
	for (int i = 0; i < n; i++)
		store_resolve_user(&out[i], &names[2 * i], &last);
	pfree(names);
	*rows = out;
	return n;
}

/*
 * OID of lifecycle.policies, or InvalidOid when the extension is not
 * installed in this database.
 */
Oid
store_policies_relid(void)
{
	Oid			nsp = get_namespace_oid("lifecycle", true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("policies", nsp);
}

/*
 * A stored policy version: its definition, its workflow and the functions
 * its hooks are bound to, by hook key.  False when there is none.
 */
bool
store_policy_load(const char *name, int version, LcPolicyRow *row)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2];
	bool		isnull;
	Datum		d;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum	   *keys;
	Datum	   *fns;
	int			nkeys;
	int			nfns;

	vals[0] = CStringGetTextDatum(name);
	vals[1] = Int32GetDatum(version);
	store_exec(SP_POLICY_LOAD,
			   "SELECT definition, workflow, workflow_version, hook_keys, "
			   "hook_functions::pg_catalog.oid[] "
			   "FROM lifecycle.policies "
			   "WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
			   2, types, vals, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	row->def = (Jsonb *) SPI_datumTransfer(d, false, -1);
	row->workflow = store_getstr(tup, desc, 2, CurrentMemoryContext);
	row->workflow_version = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)),
					  TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &nkeys);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)),
					  OIDOID, sizeof(Oid), true, TYPALIGN_INT, &fns, NULL, &nfns);
	row->n_hooks = Min(nkeys, nfns);
	row->hook_keys = palloc(sizeof(char *) * Max(row->n_hooks, 1));
	row->hook_oids = palloc(sizeof(Oid) * Max(row->n_hooks, 1));
	for (int i = 0; i < row->n_hooks; i++)
	{
		row->hook_keys[i] = TextDatumGetCString(keys[i]);
		row->hook_oids[i] = DatumGetObjectId(fns[i]);
	}
	return true;
}

/*
 * The latest version of a policy (0 when none) and its definition.
 */
int
store_policy_latest(const char *name, Jsonb **def)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	bool		isnull;
	Datum		d;

	vals[0] = CStringGetTextDatum(name);
	store_exec(SP_POLICY_LATEST,
			   "SELECT version, definition FROM lifecycle.policies WHERE name = $1 "
			   "ORDER BY version DESC LIMIT 1",
			   1, types, vals, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		if (def)
			*def = NULL;
		return 0;
	}
	if (def)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		*def = (Jsonb *) SPI_datumTransfer(d, false, -1);
	}
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The workflow of a policy's latest version, or NULL when there is none.
 */
char *
store_policy_workflow(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];

	vals[0] = CStringGetTextDatum(name);
	store_exec(SP_POLICY_WORKFLOW,
			   "SELECT workflow FROM lifecycle.policies "
			   "WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY version DESC LIMIT 1",
			   1, types, vals, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	return store_getstr(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						CurrentMemoryContext);
}

/*
 * The latest version of every policy of a workflow: names and
 * definitions, allocated in the caller's context; returns how many.
 */
int
store_policies_of_workflow(const char *workflow, char ***names, Jsonb ***defs)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];
	int			n;

	vals[0] = CStringGetTextDatum(workflow);
	store_exec(SP_POLICIES_OF_WORKFLOW,
			   "SELECT name, definition FROM ("
			   " SELECT DISTINCT ON (name) name, definition, workflow"
			   " FROM lifecycle.policies ORDER BY name, version DESC) p "
			   "WHERE workflow OPERATOR(pg_catalog.=) $1 ORDER BY name",
			   1, types, vals, NULL, true, 0, SPI_OK_SELECT);
	n = 0;
	*names = palloc(sizeof(char *) * Max(SPI_processed, 1));
	*defs = palloc(sizeof(Jsonb *) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		(*names)[n] = store_getstr(tup, desc, 1, CurrentMemoryContext);
		(*defs)[n] = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		n++;
	}
	return n;
}

/*
 * Every policy version with its workflow version, in (name, version)
 * order, allocated in the caller's context; returns how many.
 */
int
store_policy_versions(char ***names, int **versions)
{
	store_exec(SP_POLICY_VERSIONS,
			   "SELECT name, version FROM lifecycle.policies ORDER BY name, version",
			   0, NULL, NULL, NULL, true, 0, SPI_OK_SELECT);
	*names = palloc(sizeof(char *) * Max(SPI_processed, 1));
	*versions = palloc(sizeof(int) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*names)[i] = store_getstr(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								   1, CurrentMemoryContext);
		(*versions)[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 2,
													 &isnull));
	}
	return (int) SPI_processed;
}

/*
 * Insert the next version of a policy of a workflow version, bound to the
 * hook functions the parsed policy holds; returns the version.  The row
 * lock on the latest version serialises concurrent definitions of one
 * name, and the primary key catches the rest.
 */
int
store_policy_insert(const char *name, Jsonb *def, TimestampTz now,
					const LcPolicy *p)
{
	/* 0.2.0's hook columns, "<key>_hook", filled for the user workflow. */
	static const char *const legacy[] = {"archive_hook", "restore_hook", "erase_hook"};
	Oid			types[10] = {TEXTOID, JSONBOID, TIMESTAMPTZOID, TEXTOID, INT4OID,
	TEXTARRAYOID, OIDARRAYOID, REGPROCEDUREOID, REGPROCEDUREOID, REGPROCEDUREOID};
	Datum		vals[10];
	char		nulls[10] = "          ";
	Datum	   *keys = palloc(sizeof(Datum) * Max(p->graph->n_hooks, 1));
	Datum	   *fns = palloc(sizeof(Datum) * Max(p->graph->n_hooks, 1));
	bool		user = strcmp(p->graph->name, LC_USER_WORKFLOW) == 0;
	int			n = 0;
	bool		isnull;

	for (int k = 0; k < lengthof(legacy); k++)
	{
		vals[7 + k] = (Datum) 0;
		nulls[7 + k] = 'n';
	}
	for (int i = 0; i < p->graph->n_hooks; i++)
		if (OidIsValid(p->hook_oids[i]))
		{
			keys[n] = CStringGetTextDatum(p->graph->hooks[i]);
			fns[n] = ObjectIdGetDatum(p->hook_oids[i]);
			n++;
			for (int k = 0; user && k < lengthof(legacy); k++)
				if (strlen(legacy[k]) == strlen(p->graph->hooks[i]) + 5 &&
					strncmp(legacy[k], p->graph->hooks[i],
							strlen(p->graph->hooks[i])) == 0)
				{
					vals[7 + k] = ObjectIdGetDatum(p->hook_oids[i]);
					nulls[7 + k] = ' ';
				}
		}
	vals[0] = CStringGetTextDatum(name);
	vals[1] = JsonbPGetDatum(def);
	vals[2] = TimestampTzGetDatum(now);
	vals[3] = CStringGetTextDatum(p->graph->name);
	vals[4] = Int32GetDatum(p->graph->version);
	vals[5] = store_array(keys, NULL, n, TEXTOID);
	vals[6] = store_array(fns, NULL, n, OIDOID);
	store_exec(SP_POLICY_INSERT,
			   "INSERT INTO lifecycle.policies (name, version, definition, created_at, "
			   "workflow, workflow_version, hook_keys, hook_functions, "
			   "archive_hook, restore_hook, erase_hook) "
			   "SELECT $1, COALESCE(pg_catalog.max(version), 0) OPERATOR(pg_catalog.+) 1, $2, $3, "
			   "$4, $5, $6, $7::pg_catalog.regprocedure[], $8, $9, $10 "
			   "FROM lifecycle.policies WHERE name OPERATOR(pg_catalog.=) $1 RETURNING version",
			   10, types, vals, nulls, false, 0, SPI_OK_INSERT_RETURNING);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Does a channel of this name exist?
 */
bool
store_channel_exists(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];

	vals[0] = CStringGetTextDatum(name);
	store_exec(SP_CHANNEL_EXISTS,
			   "SELECT 1 FROM lifecycle.channels WHERE name = $1",
			   1, types, vals, NULL, true, 1, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * The travel offset of the lifecycle clock (zero when never travelled).
 */
Interval *
store_clock_offset(void)
{
	Interval   *iv = MemoryContextAllocZero(store_result_cxt(), sizeof(Interval));
	bool		isnull;
	Datum		d;

	store_exec(SP_CLOCK_GET, "SELECT offset_by FROM lifecycle.clock",
			   0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return iv;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*iv = *DatumGetIntervalP(d);
	return iv;
}

/*
 * Store a new travel offset.
 */
void
store_clock_set(Interval *offset)
{
	Oid			types[1] = {INTERVALOID};
	Datum		vals[1];

	vals[0] = IntervalPGetDatum(offset);
	store_exec(SP_CLOCK_SET,
			   "INSERT INTO lifecycle.clock (one, offset_by) VALUES (true, $1) "
			   "ON CONFLICT (one) DO UPDATE SET offset_by = EXCLUDED.offset_by",
			   1, types, vals, NULL, false, 0, SPI_OK_INSERT);
}

/*
 * Find a subject's user lifecycle (the built-in workflow, key ''),
 * optionally locking its row.  False when unknown.
 */
bool
store_user_lookup(const char *tenant, const char *subject, bool for_update,
				  LcUserRow *row)
{
	return store_instance_lookup(tenant, subject, LC_USER_WORKFLOW, "",
								 for_update, row);
}

/*
 * Find the live instance (tenant, subject, workflow, key), optionally
 * locking its row.  False when there is none.
 */
bool
store_instance_lookup(const char *tenant, const char *subject,
					  const char *workflow, const char *key, bool for_update,
					  LcUserRow *row)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	LcUserRow  *rows;

	vals[0] = CStringGetTextDatum(tenant);
	vals[1] = CStringGetTextDatum(subject);
	vals[2] = CStringGetTextDatum(workflow);
	vals[3] = CStringGetTextDatum(key);
	if (for_update)
		store_exec(SP_USER_LOOKUP_LOCK,
				   "SELECT " STORE_USER_COLUMNS " FROM lifecycle.users "
				   "WHERE tenant = $1 AND subject = $2 AND workflow = $3 AND key = $4 "
				   "FOR UPDATE",
				   4, types, vals, NULL, false, 1, SPI_OK_SELECT);
	else
		store_exec(SP_USER_LOOKUP,
				   "SELECT " STORE_USER_COLUMNS " FROM lifecycle.users "
				   "WHERE tenant = $1 AND subject = $2 AND workflow = $3 AND key = $4",
				   4, types, vals, NULL, true, 1, SPI_OK_SELECT);
	if (store_read_users(&rows) == 0)
		return false;
	*row = rows[0];
	return true;
}

/*
 * Lock every live instance of the subject (tenant, subject), the user
 * lifecycle's first, then the others by id (one order for every caller,
 * so two subject-wide calls cannot deadlock).  Rows are allocated in the
 * caller's context; returns how many (0: the subject is unknown).
 */
int
store_subject_instances(const char *tenant, const char *subject,
						LcUserRow **rows)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		vals[2];

	vals[0] = CStringGetTextDatum(tenant);
	vals[1] = CStringGetTextDatum(subject);
	store_exec_plan(SP_SUBJECT_LOCK, true,
					"SELECT " STORE_USER_COLUMNS " FROM lifecycle.users "
					"WHERE tenant = $1 AND subject = $2 "
					"ORDER BY (workflow = '" LC_USER_WORKFLOW "' AND key = '') DESC, id "
					"FOR UPDATE",
					2, types, vals, NULL, false, 0, SPI_OK_SELECT);
	return store_read_users(rows);
}

/*
 * Insert a new instance (an invitation, or lifecycle_start()), its history
 * row and its start message in one statement.  The subject's personal
 * data is shared by its live instances: what the caller leaves NULL
 * (email, region, attrs) comes from another live instance of the subject,
 * and what it gives becomes theirs too.  Returns the new id, or 0 when
 * the instance exists (a concurrent start won: the caller looks it up).
 * *subject_others (may be NULL) tells whether the subject has other live
 * instances: if one is on a legal hold, the new one must start held too
 * (the caller's api_hold_new_instance()).
 */
int64
store_user_insert(const LcInvite *inv, TimestampTz now, const char *actor,
				  bool *subject_others)
{
	Oid			types[23] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID,
		TEXTOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
	TEXTOID, JSONBOID, TIMESTAMPTZOID, INT2OID};
	Datum		vals[23];
	char		nulls[23];
	bool		isnull;
	bool		held;
	bool		others;
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	vals[0] = CStringGetTextDatum(inv->tenant);
	vals[1] = CStringGetTextDatum(inv->subject);
	store_text_param(inv->email, &vals[2], &nulls[2]);
	if (inv->attrs)
		vals[3] = JsonbPGetDatum(inv->attrs);
	else
		nulls[3] = 'n';
	store_text_param(inv->region, &vals[4], &nulls[4]);
	vals[5] = CStringGetTextDatum(inv->policy);
	vals[6] = Int32GetDatum(inv->policy_version);
	vals[7] = TimestampTzGetDatum(now);
	if (inv->next_at != 0)
		vals[8] = TimestampTzGetDatum(inv->next_at);
	else
		nulls[8] = 'n';
	store_text_param(inv->next_event, &vals[9], &nulls[9]);
	vals[10] = CStringGetTextDatum(actor);
	store_text_param(inv->channel, &vals[11], &nulls[11]);
	if (inv->deadline_at != 0)
		vals[12] = TimestampTzGetDatum(inv->deadline_at);
	else
		nulls[12] = 'n';
	store_text_param(inv->deadline_event, &vals[13], &nulls[13]);
	vals[14] = CStringGetTextDatum(inv->state);
	vals[15] = CStringGetTextDatum(inv->event);
	store_text_param(inv->message, &vals[16], &nulls[16]);
	vals[17] = CStringGetTextDatum(inv->workflow ? inv->workflow : LC_USER_WORKFLOW);
	vals[18] = Int32GetDatum(inv->workflow_version > 0 ? inv->workflow_version : 1);
	vals[19] = CStringGetTextDatum(inv->key ? inv->key : "");
	if (inv->data)
		vals[20] = JsonbPGetDatum(inv->data);
	else
		nulls[20] = 'n';
	if (inv->archive_at != 0)
		vals[21] = TimestampTzGetDatum(inv->archive_at);
	else
		nulls[21] = 'n';
	vals[22] = Int16GetDatum(shard_of(inv->tenant, inv->subject));

	/*
	 * The start message carries the deadline it announces as archive_at,
	 * as a transition's message does (store_apply()); without one the
	 * payload has no archive_at key (0.2.0's invite).
	 *
	 * One statement writes the instance, its history row and its message
	 * and probes the subject's other live instances (s) for the shared
	 * personal data it leaves NULL.  Only when there are others does a
	 * second statement copy the instance's shared data to them, and the
	 * count deltas are heap inserts (store_counts_add()): a new subject,
	 * the usual invitation, opens no UPDATE and no INSERT of the deltas
	 * in its plan (0.3.0 "no regression": each ModifyTable node opens and
	 * locks every index of its table on every call).
	 */
	store_exec_counted(SP_USER_INSERT, false,
			   "WITH s AS ("
			   " SELECT o.email, o.region, o.attrs FROM lifecycle.users o"
			   " WHERE o.tenant = $1 AND o.subject = $2 LIMIT 1),"
			   " u AS ("
			   " INSERT INTO lifecycle.users (tenant, subject, email, attrs, region,"
			   "  policy, policy_version, state, state_since, step, next_at, next_event,"
			   "  created_at, deadline_at, deadline_event, state_due_at, workflow,"
			   "  workflow_version, key, data, shard)"
			   " VALUES ($1, $2, COALESCE($3, (SELECT email FROM s)),"
			   "  COALESCE($4, (SELECT attrs FROM s), '{}'),"
			   "  COALESCE($5, (SELECT region FROM s)), $6, $7, $15, $8, 0, $9, $10, $8,"
			   "  $13, $14, $8, $18, $19, $20, COALESCE($21, '{}'), $23)"
			   " ON CONFLICT (tenant, subject, workflow, key, shard) WHERE subject IS NOT NULL"
			   " DO NOTHING RETURNING *),"
			   " h AS ("
			   " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event, actor,"
			   "  shard)"
			   " SELECT id, $8, NULL, $15, $16, $11, shard FROM u),"
			   " o AS ("
			   " INSERT INTO lifecycle.outbox (user_id, channel, message, payload, status,"
			   "  next_attempt_at, created_at, shard)"
			   " SELECT id, $12, $17, " STORE_PAYLOAD("u") ", 'state', $15)"
			   STORE_PAYLOAD_INSTANCE("u")
			   "  OPERATOR(pg_catalog.||) CASE WHEN $22 IS NULL THEN '{}'::pg_catalog.jsonb"
			   "  ELSE pg_catalog.jsonb_build_object('archive_at', $22) END,"
			   "  CASE WHEN $12 IS NULL THEN 'unrouted' ELSE 'pending' END,"
			   "  CASE WHEN $12 IS NULL THEN NULL ELSE $8 END, $8, shard FROM u"
			   "  WHERE $17 IS NOT NULL)"
			   " SELECT u.id, u.held, EXISTS (SELECT FROM s), u.email, u.attrs, u.region"
			   " FROM u",
			   23, types, vals, nulls, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									 SPI_tuptable->tupdesc, 1, &isnull));
	held = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 2, &isnull));
	others = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 3, &isnull));
	if (subject_others != NULL)
		*subject_others = others;
	if (others)
	{
		Oid			stypes[6] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, JSONBOID, TEXTOID};
		Datum		svals[6];
		char		snulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		svals[0] = vals[0];
		svals[1] = vals[1];
		svals[2] = Int64GetDatum(id);
		for (int k = 0; k < 3; k++)
		{
			svals[3 + k] = SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 4 + k, &isnull);
			if (isnull)
				snulls[3 + k] = 'n';
		}

		/*
		 * The subject's shared personal data as this instance has it, in
		 * their other live instances (a group never changes: no count).
		 */
		store_exec(SP_USER_SHARE,
				   "UPDATE lifecycle.users AS o SET email = $4, attrs = $5, region = $6"
				   " WHERE o.tenant = $1 AND o.subject = $2 AND o.id <> $3"
				   "  AND (o.email IS DISTINCT FROM $4 OR o.attrs IS DISTINCT FROM $5"
				   "   OR o.region IS DISTINCT FROM $6)",
				   6, stypes, svals, snulls, false, 0, SPI_OK_UPDATE);
	}
	store_counts_add("users", inv->tenant, inv->policy, inv->state, 1, held ? 1 : 0);
	/* the events family names the instance's workflow */
	store_counts_add("events", inv->tenant, inv->event,
					 inv->workflow ? inv->workflow : LC_USER_WORKFLOW, 1, 0);
	if (inv->message != NULL)
		store_counts_add("messages", inv->tenant, inv->channel ? inv->channel : "",
						 inv->channel ? "pending" : "unrouted", 1, 0);
	if (inv->next_at != 0)
		shmem_note_timer(inv->next_at);
	if (inv->channel && inv->message)
		shmem_note_message();
	if (!inv->channel && inv->message)
		store_outbox_notify();	/* an unrouted message (store_outbox.c) */
	return id;
}

/*
 * An expired subject is invited again: take the new address, attributes
 * and policy (the transition itself goes through store_apply()).
 */
void
store_user_reinvite(LcUserRow *row, const LcInvite *inv)
{
	Oid			types[7] = {INT8OID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID,
	INT2OID};
	Datum		vals[7];
	char		nulls[7];

	memset(nulls, ' ', sizeof(nulls));
	vals[0] = Int64GetDatum(row->id);
	vals[1] = CStringGetTextDatum(inv->email);
	vals[2] = JsonbPGetDatum(inv->attrs);
	if (inv->region)
		vals[3] = CStringGetTextDatum(inv->region);
	else
		nulls[3] = 'n';
	vals[4] = CStringGetTextDatum(inv->policy);
	vals[5] = Int32GetDatum(inv->policy_version);
	vals[6] = Int16GetDatum(row->shard);
	store_exec(SP_USER_REINVITE,
			   "UPDATE lifecycle.users SET email = $2, attrs = $3, region = $4,"
			   " policy = $5, policy_version = $6 WHERE id = $1 AND shard = $7",
			   7, types, vals, nulls, false, 0, SPI_OK_UPDATE);
}

/*
 * Lock up to limit users due at now, oldest first, skipping rows another
 * transaction holds.  Rows are allocated in the caller's context.
 */
int
store_due_users(TimestampTz now, int limit, LcUserRow **rows)
{
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		vals[2];

	vals[0] = TimestampTzGetDatum(now);
	vals[1] = Int32GetDatum(limit);
	store_exec(SP_DUE_USERS,
			   "SELECT " STORE_USER_COLUMNS " FROM lifecycle.users "
			   "WHERE next_at <= $1 AND (retry_at IS NULL OR retry_at <= $1) "
			   "ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED",
			   2, types, vals, NULL, false, 0, SPI_OK_SELECT);
	return store_read_users(rows);
}

/*
 * Write a batch of changes: the users UPDATE, one history row per change
 * that has an event, one outbox row per message, all in one statement.
 */
void
store_apply(const LcChange *c, int n, TimestampTz now, const char *actor)
{
	Oid			types[23] = {
		INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID, INT4ARRAYOID, BOOLARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		TEXTARRAYOID, TIMESTAMPTZOID, TEXTOID, INT2ARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID
	};
	Oid			elemtypes[20] = {
		INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID,
		BOOLOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID
	};
	Datum		vals[23];
	Datum	   *shards;
	bool		isnull;
	Datum	   *d[20];
	bool	   *nl[20];
	bool		messages = false;
	bool		unrouted = false;
	TimestampTz earliest = 0;

	if (n == 0)
		return;

	for (int k = 0; k < 20; k++)
	{
		d[k] = palloc(sizeof(Datum) * n);
		nl[k] = palloc0(sizeof(bool) * n);
	}
	shards = palloc(sizeof(Datum) * n);

#define SET_TS(k, v) do { if ((v) == 0) nl[k][i] = true; else d[k][i] = TimestampTzGetDatum(v); } while (0)
#define SET_STR(k, v) do { if ((v) == NULL) nl[k][i] = true; else d[k][i] = CStringGetTextDatum(v); } while (0)

	for (int i = 0; i < n; i++)
	{
		d[0][i] = Int64GetDatum(c[i].id);
		shards[i] = Int16GetDatum(c[i].shard);
		SET_STR(1, c[i].from == LC_STATE_NONE ? NULL : machine_state_name(c[i].graph, c[i].from));
		SET_STR(2, machine_state_name(c[i].graph, c[i].to));
		SET_TS(3, c[i].state_since);
		SET_TS(4, c[i].last_seen);
		d[5][i] = Int32GetDatum(c[i].step);
		d[6][i] = BoolGetDatum(c[i].held);
		SET_STR(7, c[i].hold_reason);
		SET_TS(8, c[i].hold_until);
		SET_TS(9, c[i].next_at);
		SET_STR(10, c[i].next_event == LC_EV_NONE ? NULL : machine_event_name(c[i].graph, c[i].next_event));
		SET_STR(11, c[i].event);
		SET_TS(12, c[i].due_at);
		SET_STR(13, machine_message_name(c[i].graph, c[i].message));
		SET_STR(14, c[i].message == LC_MSG_NONE ? NULL : c[i].channel);
		SET_TS(15, c[i].archive_at);
		SET_STR(16, c[i].detail);
		SET_TS(17, c[i].state_due_at);
		SET_TS(18, c[i].deadline_at);
		SET_STR(19, c[i].deadline_event);

		if (c[i].message != LC_MSG_NONE && c[i].channel != NULL)
			messages = true;
		if (c[i].message != LC_MSG_NONE && c[i].channel == NULL)
			unrouted = true;
		if (c[i].next_at != 0 && (earliest == 0 || c[i].next_at < earliest))
			earliest = c[i].next_at;
	}
#undef SET_TS
#undef SET_STR

	for (int k = 0; k < 17; k++)
		vals[k] = store_array(d[k], nl[k], n, elemtypes[k]);
	vals[17] = TimestampTzGetDatum(now);
	vals[18] = CStringGetTextDatum(actor);
	vals[19] = store_array(shards, NULL, n, INT2OID);
	for (int k = 17; k < 20; k++)
		vals[k + 3] = store_array(d[k], nl[k], n, elemtypes[k]);

	/*
	 * A batch of one (an application call) runs the generic plan; the
	 * worker's batches keep custom plans, which see the array sizes.
	 *
	 * The statement writes its own count deltas (src/store/counts.c): the
	 * users' groups before (b: the locked rows as they were, every part
	 * of one statement seeing the same snapshot; a key that is not one of
	 * the batch's rows would make the count below short) and after, and
	 * the history and outbox rows it inserts, from the RETURNING rows; the
	 * count triggers skip its rows (store_counts_self()).  A short count below
	 * rolls the whole statement back, deltas included.
	 *
	 * The rows are found by id alone (ids are unique in the table; shard
	 * only completes the join to v): "shard = ANY ($20)" beside
	 * "id = ANY ($1)" made the index scan try every pair of the two
	 * arrays, and its tiny estimate made the planner rescan v for every
	 * row, a batch of 10,000 of subjects in many shards taking minutes.
	 */
	store_exec_counted(n == 1 ? SP_APPLY_ONE : SP_APPLY, n == 1,
				   "WITH v AS ("
				   " SELECT * FROM unnest($1, $2, $3,"
				   "  $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
				   "  $21, $22, $23, $20)"
				   " AS v(id, from_state, to_state, since, last_seen, step, held,"
				   "  hold_reason, hold_until, next_at, next_event, event, due_at,"
				   "  message, channel, archive_at, detail, state_due_at, deadline_at,"
				   "  deadline_event, shard)),"
				   " b AS ("
				   " SELECT b.tenant, b.policy, b.state, b.held FROM lifecycle.users AS b"
				   " WHERE b.id = ANY ($1)),"
				   " u AS ("
				   " UPDATE lifecycle.users AS u SET state = v.to_state,"
				   "  state_since = v.since, last_seen = v.last_seen, step = v.step,"
				   "  held = v.held, hold_reason = v.hold_reason, hold_until = v.hold_until,"
				   "  next_at = v.next_at, next_event = v.next_event,"
				   "  state_due_at = v.state_due_at, deadline_at = v.deadline_at,"
				   "  deadline_event = v.deadline_event,"
				   "  retry_at = NULL, retries = 0, last_error = NULL"
				   " FROM v WHERE u.id = ANY ($1)"
				   "  AND u.id = v.id AND u.shard = v.shard"
				   " RETURNING u.id, u.tenant, u.subject, u.email, u.region, u.attrs,"
				   "  u.policy, u.held, v.from_state, v.to_state, v.event, v.due_at, v.message,"
				   "  v.channel, v.archive_at, v.detail, u.workflow, u.key, u.shard),"
				   " h AS ("
				   " INSERT INTO lifecycle.history (user_id, at, due_at, from_state,"
				   "  to_state, event, actor, detail, shard)"
				   " SELECT id, $18, due_at, from_state, to_state, event, $19,"
				   "  detail::jsonb, shard FROM u WHERE event IS NOT NULL),"
				   " o AS ("
				   " INSERT INTO lifecycle.outbox (user_id, channel, message, payload,"
				   "  status, next_attempt_at, created_at, shard)"
				   " SELECT id, channel, message, " STORE_PAYLOAD("u")
				   ", 'state', to_state, 'archive_at', archive_at)"
				   STORE_PAYLOAD_INSTANCE("u") ","
				   "  CASE WHEN channel IS NULL THEN 'unrouted' ELSE 'pending' END,"
				   "  CASE WHEN channel IS NULL THEN NULL ELSE $18 END, $18, shard"
				   " FROM u WHERE message IS NOT NULL),"
				   " d AS ("
				   " INSERT INTO lifecycle.count_deltas (family, tenant, key1, key2, n, held)"
				   " SELECT 'users', g.tenant, g.policy, g.state::text, sum(g.n), sum(g.held)"
				   " FROM (SELECT b.tenant, b.policy, b.state, -1 AS n, -b.held::int AS held"
				   "  FROM b UNION ALL"
				   "  SELECT u.tenant, u.policy, u.to_state, 1, u.held::int FROM u) AS g"
				   " GROUP BY g.tenant, g.policy, g.state"
				   " HAVING sum(g.n) <> 0 OR sum(g.held) <> 0"
				   " UNION ALL"
				   " SELECT 'events', u.tenant, u.event, u.workflow, count(*), 0 FROM u"
				   " WHERE u.event IS NOT NULL GROUP BY u.tenant, u.event, u.workflow"
				   " UNION ALL"
				   " SELECT 'lateness', l.tenant, l.le, '', count(*), sum(l.us)"
				   " FROM (SELECT u.tenant,"
				   "  CASE WHEN $18 - u.due_at <= interval '1 second' THEN '1'"
				   "   WHEN $18 - u.due_at <= interval '10 seconds' THEN '10'"
				   "   WHEN $18 - u.due_at <= interval '1 minute' THEN '60'"
				   "   WHEN $18 - u.due_at <= interval '5 minutes' THEN '300'"
				   "   WHEN $18 - u.due_at <= interval '1 hour' THEN '3600'"
				   "   WHEN $18 - u.due_at <= interval '1 day' THEN '86400'"
				   "   ELSE '+Inf' END AS le,"
				   "  (extract(epoch FROM $18 - u.due_at) * 1000000)::bigint AS us"
				   "  FROM u WHERE u.event IS NOT NULL AND u.due_at IS NOT NULL) AS l"
				   " GROUP BY l.tenant, l.le"
				   " UNION ALL"
				   " SELECT 'messages', u.tenant, COALESCE(u.channel, ''),"
				   "  CASE WHEN u.channel IS NULL THEN 'unrouted' ELSE 'pending' END,"
				   "  count(*), 0 FROM u WHERE u.message IS NOT NULL"
				   " GROUP BY u.tenant, u.channel)"
				   " SELECT count(*) FROM u",
				   23, types, vals, NULL, SPI_OK_SELECT);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)) != n)
		elog(ERROR, "lifecycle: %d locked users changed under the lock", n);

	if (earliest != 0)
		shmem_note_timer(earliest);
	if (messages)
		shmem_note_message();
	if (unrouted)
		store_outbox_notify();	/* an unrouted message (store_outbox.c) */
}

/*
 * Remove the personal data of a user who has just been erased: subject,
 * e-mail and attrs from users, payloads from outbox (undelivered messages
 * are cancelled); write the evidence row.  Returns the evidence id.  An
 * unrouted message the application has leased loses its lease with its
 * cancellation (it can no longer be acknowledged), so it is final and
 * pruned like any other; a message the sender has in flight keeps its
 * claim until the sender records the attempt.
 */
int64
store_erase(int64 id, const char *before, const char *reason, const char *actor,
			TimestampTz now)
{
	return store_erase_batch(&id, &before, 1, reason, actor, now);
}

/*
 * store_erase() for n users at once, in one statement: ids[i] was in
 * state before[i].  Returns the evidence id of ids[0] (the only one for a
 * single user); 0 when n is 0.  Outbox rows already scrubbed and final
 * are not rewritten.
 */
int64
store_erase_batch(const int64 *ids, const char *const *before, int n,
				  const char *reason, const char *actor, TimestampTz now)
{
	Oid			types[5] = {INT8ARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID};
	Datum		vals[5];
	Datum	   *idd;
	Datum	   *bd;
	bool		isnull;

	if (n == 0)
		return 0;
	idd = palloc(sizeof(Datum) * n);
	bd = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		idd[i] = Int64GetDatum(ids[i]);
		bd[i] = CStringGetTextDatum(before[i]);
	}
	vals[0] = store_array(idd, NULL, n, INT8OID);
	vals[1] = store_array(bd, NULL, n, TEXTOID);
	vals[2] = CStringGetTextDatum(reason);
	vals[3] = CStringGetTextDatum(actor);
	vals[4] = TimestampTzGetDatum(now);
	store_exec_plan(SP_ERASE, true,
			   "WITH v AS ("
			   " SELECT * FROM unnest($1, $2) AS v(id, before)),"
			   " u AS ("
			   " UPDATE lifecycle.users AS u SET subject = NULL, email = NULL,"
			   "  attrs = '{}', data = '{}', hold_reason = NULL, last_error = NULL"
			   " FROM v WHERE u.id = ANY ($1) AND u.id = v.id"
			   " RETURNING u.id, u.tenant, u.policy, v.before, u.shard),"
			   " o AS ("
			   " UPDATE lifecycle.outbox SET payload = '{}', last_error = NULL,"
			   "  status = CASE WHEN status IN ('pending', 'unrouted', 'blocked')"
			   "   THEN 'cancelled' ELSE status END,"
			   "  claimed_at = CASE WHEN status = 'unrouted' THEN NULL"
			   "   ELSE claimed_at END"
			   " WHERE user_id = ANY ($1) AND (payload <> '{}' OR last_error IS NOT NULL"
			   "  OR status IN ('pending', 'unrouted', 'blocked')))"
			   " INSERT INTO lifecycle.erasures (user_id, tenant, policy, reason,"
			   "  state_before, requested_by, erased_at, shard)"
			   " SELECT u.id, u.tenant, u.policy, $3, u.before, $4, $5, u.shard"
			   " FROM u RETURNING id, user_id",
			   5, types, vals, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	if (SPI_processed != (uint64) n)
		elog(ERROR, "erasure of %d lifecycle users wrote " UINT64_FORMAT " evidence rows",
			 n, SPI_processed);
	/* RETURNING follows no order: find the first user's row. */
	for (uint64 r = 0; r < SPI_processed; r++)
		if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
										SPI_tuptable->tupdesc, 2, &isnull)) == ids[0])
			return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
											   SPI_tuptable->tupdesc, 1, &isnull));
	elog(ERROR, "erasure of lifecycle user " INT64_FORMAT " wrote no evidence", ids[0]);
	return 0;
}

/*
 * A transition failed (its hook raised): leave the user due, retry after
 * retry_at, and keep the error for lifecycle.overdue.
 */
void
store_record_failure(int64 id, TimestampTz retry_at, const char *error)
{
	Oid			types[3] = {INT8OID, TIMESTAMPTZOID, TEXTOID};
	Datum		vals[3];

	vals[0] = Int64GetDatum(id);
	vals[1] = TimestampTzGetDatum(retry_at);
	vals[2] = CStringGetTextDatum(error);
	store_exec(SP_FAILURE,
			   "UPDATE lifecycle.users SET retry_at = $2, retries = retries + 1,"
			   " last_error = $3 WHERE id = $1",
			   3, types, vals, NULL, false, 0, SPI_OK_UPDATE);
}

/*
 * The earliest pending timer (0: none), for the scheduler's sleep.
 */
TimestampTz
store_next_due(void)
{
	bool		isnull;
	Datum		d;

	store_exec(SP_NEXT_DUE,
			   "SELECT min(GREATEST(next_at, retry_at)) FROM ("
			   " SELECT next_at, retry_at FROM lifecycle.users"
			   " WHERE next_at IS NOT NULL ORDER BY next_at LIMIT 100) s",
			   0, NULL, NULL, NULL, true, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Delete up to max_rows history rows of erased subjects past their
 * history_retention (lifecycle._prune_history()).  Returns the rows
 * deleted.
 */
int64
store_prune_history(int max_rows)
{
	Oid			types[1] = {INT4OID};
	Datum		vals[1];
	bool		isnull;

	vals[0] = Int32GetDatum(max_rows);
	store_exec(SP_PRUNE, "SELECT lifecycle._prune_history($1)",
			   1, types, vals, NULL, false, 1, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Every tenant grant whose role exists, allocated in cxt.
 */
int
store_tenant_grants(MemoryContext cxt, LcTenantGrant **grants)
{
	LcTenantGrant *out;
	int			n;

	store_exec(SP_TENANT_GRANTS,
			   "SELECT r.oid, g.tenant FROM lifecycle.tenant_grants g"
			   " JOIN pg_catalog.pg_roles r ON r.rolname = g.role_name",
			   0, NULL, NULL, NULL, true, 0, SPI_OK_SELECT);
	n = (int) SPI_processed;
	out = MemoryContextAlloc(cxt, sizeof(LcTenantGrant) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		out[i].roleid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc,
													   1, &isnull));
		out[i].tenant = store_getstr(SPI_tuptable->vals[i],
									 SPI_tuptable->tupdesc, 2, cxt);
	}
	*grants = out;
	return n;
}


/*
 * Up to limit users that are not erased, with ids above after_id, in id
 * order; rows allocated in the caller's context.  For passes over every
 * user (lifecycle._refresh_deadlines()).
 */
int
store_users_page(int64 after_id, int limit, LcUserRow **rows)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		vals[2];

	vals[0] = Int64GetDatum(after_id);
	vals[1] = Int32GetDatum(limit);
	store_exec(SP_USERS_PAGE,
			   "SELECT " STORE_USER_COLUMNS " FROM lifecycle.users "
			   "WHERE id > $1 AND state <> 'erased' ORDER BY id LIMIT $2",
			   2, types, vals, NULL, true, 0, SPI_OK_SELECT);
	return store_read_users(rows);
}

/*
 * Store the retention deadlines (0: NULL) of n users, one statement.
 */
void
store_set_deadlines(const int64 *ids, const TimestampTz *at,
					const char *const *event, int n)
{
	Oid			types[3] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};
	Datum		vals[3];
	Datum	   *d[3];
	bool	   *nl[3];

	if (n == 0)
		return;
	for (int k = 0; k < 3; k++)
	{
		d[k] = palloc(sizeof(Datum) * n);
		nl[k] = palloc0(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
	{
		d[0][i] = Int64GetDatum(ids[i]);
		nl[1][i] = (at[i] == 0);
		d[1][i] = TimestampTzGetDatum(at[i]);
		nl[2][i] = (event[i] == NULL);
		d[2][i] = event[i] ? CStringGetTextDatum(event[i]) : (Datum) 0;
	}
	vals[0] = store_array(d[0], nl[0], n, INT8OID);
	vals[1] = store_array(d[1], nl[1], n, TIMESTAMPTZOID);
	vals[2] = store_array(d[2], nl[2], n, TEXTOID);
	store_exec(SP_SET_DEADLINES,
			   "UPDATE lifecycle.users AS u SET deadline_at = v.at, deadline_event = v.ev"
			   " FROM unnest($1, $2, $3) AS v(id, at, ev)"
			   " WHERE u.id OPERATOR(pg_catalog.=) v.id",
			   3, types, vals, NULL, false, 0, SPI_OK_UPDATE);
}
