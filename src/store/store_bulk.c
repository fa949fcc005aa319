/*-------------------------------------------------------------------------
 *
 * store_bulk.c
 *	  The SQL of lifecycle_adopt(), lifecycle_update(), lifecycle_migrate(),
 *	  lifecycle_export() and lifecycle_forecast(): set-based statements with
 *	  parameters; no value is ever formatted into SQL text.
 *
 * Adoption reads a relation the caller names, so its statement cannot be
 * one fixed text: the relation's schema-qualified, quoted name (from its
 * OID, under a lock) and the presence of the optional columns shape it.
 * That statement runs as the caller, under SECURITY_RESTRICTED_OPERATION:
 * the caller's privileges, row-level security and functions (casts, views)
 * apply to everything it reads, exactly as if the caller had run the
 * SELECT.  Only the range-table entries of the extension's own tables
 * that the statement writes (users, history) are checked as the extension
 * owner (checkAsUser, as PostgreSQL does for a view's owner); they are
 * marked after parse analysis and rewriting, before planning, so no name
 * the caller controls can be marked.  If the plan were ever re-analysed,
 * the marks would be lost and the statement would fail with 42501: the
 * failure is safe.
 *
 * Every other statement is a saved plan with a fixed text.
 *
 * IDENTIFICATION
 *	  src/store_bulk.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "store.h"
#include "store_bulk.h"
#include "version.h"

typedef enum BulkPlan
{
	BP_UPDATE,
	BP_MIGRATE,
	BP_EXPORT_RECORD,
	BP_EXPORT,
	BP_UPDATE_SHARED,
	BP_EXPORT_RECORD_MANY,
	BP_EXPORT_INSTANCES,
	BP_FORECAST_DUE,
	BP_FORECAST_POLICY,
	BP_FORECAST_WORKFLOW,
	BP_NUM_PLANS
} BulkPlan;

typedef struct BulkState
{
	SPIPlanPtr	plans[BP_NUM_PLANS];
} BulkState;

static BulkState bulk_state;

/*
 * UTC calendar arithmetic, as machine_add(): ts + iv as timestamps
 * without time zone, whatever the session's TimeZone.
 */
#define BULK_UTC_ADD(ts, iv) \
	"pg_catalog.timezone('UTC', pg_catalog.timezone('UTC', " ts ") + " iv ")"

/* The anchors lifecycle._rearm_at() and _rearm_event() take, of a row. */
#define BULK_REARM_ARGS(u) \
	u ".state::pg_catalog.text, " u ".state_since, " u ".state_due_at, " \
	u ".last_seen, " u ".step, " u ".held, " u ".hold_until"

static int	bulk_mark_targets(Query *query, Oid owner, Oid users,
							  Oid history);
static char *bulk_adopt_source(const LcAdoptSpec *spec);
static char *bulk_adopt_sql(const LcAdoptSpec *spec, bool calendar_dormancy,
							bool calendar_spread);
static char *bulk_adopt_diagnosis_sql(const LcAdoptSpec *spec);
static Interval *bulk_duration(const Interval *iv);
static void bulk_adopt_run(const LcAdoptSpec *spec, const char *sql,
						   int nargs, Oid *types, Datum *vals,
						   const char *nulls, int expect_marked,
						   bool counted);

/*
 * In the adoption statement, mark the target of each INSERT in its WITH
 * clause (lifecycle.users, lifecycle.history) to be checked as the owner.
 * Nothing else is marked: not the caller's relation, and not what its
 * views expand to, even if that is one of our tables.  Returns how many
 * targets were marked.
 */
static int
bulk_mark_targets(Query *query, Oid owner, Oid users, Oid history)
{
	ListCell   *lc;
	int			marked = 0;

	foreach(lc, query->cteList)
	{
		CommonTableExpr *cte = (CommonTableExpr *) lfirst(lc);
		Query	   *cq = (Query *) cte->ctequery;
		RangeTblEntry *rte;

		if (!IsA(cq, Query) || cq->commandType != CMD_INSERT)
			continue;
		rte = rt_fetch(cq->resultRelation, cq->rtable);
		if (rte->rtekind == RTE_RELATION &&
			(rte->relid == users || rte->relid == history))
		{
			rte->checkAsUser = owner;
			marked++;
		}
	}
	return marked;
}

/*
 * The rows of the accounts relation, cast to what lifecycle.users stores
 * ($4: the call's time; a future last_seen counts as the call).
 */
static char *
bulk_adopt_source(const LcAdoptSpec *spec)
{
	return psprintf("SELECT r.subject::pg_catalog.text AS subject,"
					" r.email::pg_catalog.text AS email,"
					" CASE WHEN r.last_seen IS NOT NULL"
					"  THEN LEAST(r.last_seen::pg_catalog.timestamptz, $4) END AS last_seen,"
					" %s AS region, %s AS attrs, %s AS registered FROM %s AS r",
					spec->has_region ? "r.region::pg_catalog.text" : "NULL::pg_catalog.text",
					spec->has_attrs ? "r.attrs::pg_catalog.jsonb" : "NULL::pg_catalog.jsonb",
					spec->has_registered ?
					"COALESCE(r.registered::pg_catalog.bool, true)" : "true",
					quote_qualified_identifier(get_namespace_name(get_rel_namespace(spec->relid)),
											   get_rel_name(spec->relid)));
}

/*
 * The adoption statement for one relation.
 *
 * chk reads the relation once: are all rows good (lifecycle._adopt_problem())
 * and all subjects distinct?  Its result is an InitPlan that gates the
 * insert, so a bad row means nothing is inserted at all (the caller then
 * finds which row with bulk_adopt_diagnosis_sql()).  ins reads the relation
 * again (same snapshot) and inserts every row whose subject the tenant
 * does not know yet; h writes one history row each.
 *
 * Dormancy falls due at last_seen + dormant_after ($6).  An interval
 * without months is passed as a plain duration (bulk_duration()), so the
 * addition is exact whatever the session's TimeZone; one with months uses
 * UTC calendar arithmetic, as machine_add() does.
 */
static char *
bulk_adopt_sql(const LcAdoptSpec *spec, bool calendar_dormancy,
			   bool calendar_spread)
{
	StringInfoData sql;
	const char *dormant_at;
	const char *armed;

	dormant_at = calendar_dormancy ?
		BULK_UTC_ADD("COALESCE(s.last_seen, $4)", "$6") :
		"COALESCE(s.last_seen, $4) + $6";

	/*
	 * Timers already due fire at the next tick (now), or, with a spread,
	 * evenly over it in the order they fell due.
	 */
	if (spec->spread == NULL)
		armed = "$4";
	else if (calendar_spread)
		armed = BULK_UTC_ADD("$4", "$10 * ((c.k - 1)::pg_catalog.float8 / c.nd)");
	else
		armed = "$4 + $10 * ((c.k - 1)::pg_catalog.float8 / c.nd)";

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "WITH chk AS ("
					 " SELECT pg_catalog.count(*) AS n,"
					 "  COALESCE(NOT pg_catalog.bool_or(a.problem <> 0), true)"
					 "  AND pg_catalog.count(DISTINCT a.subject COLLATE pg_catalog.\"C\")"
					 "   = pg_catalog.count(*) AS ok"
					 " FROM (SELECT s.subject,"
					 "   lifecycle._adopt_problem(s.subject, s.email, s.region, s.attrs, s.last_seen) AS problem"
					 "  FROM (%s) AS s) AS a),",
					 bulk_adopt_source(spec));
	appendStringInfo(&sql,
					 " ins AS ("
					 " INSERT INTO lifecycle.users (tenant, subject, email, attrs, region,"
					 "  policy, policy_version, state, state_since, last_seen, step, next_at,"
					 "  next_event, created_at, state_due_at, deadline_at, deadline_event, shard)"
					 " SELECT $1, x.subject, x.email, x.attrs, x.region, $2, $3, x.state,"
					 "  $4, x.last_seen, 0, x.next_at, x.next_event, $4, $4, x.next_at,"
					 "  x.deadline_event, lifecycle._shard($1, x.subject)"
					 " FROM (SELECT c.subject, c.email, COALESCE(c.attrs, '{}') AS attrs,"
					 "  c.region, c.last_seen,"
					 "  CASE WHEN c.registered THEN $13 ELSE $14 END AS state,"
					 "  CASE WHEN NOT c.registered THEN $8 WHEN NOT c.due THEN c.dormant_at ELSE %s END"
					 "   AS next_at,"
					 "  CASE WHEN c.registered THEN $7 ELSE $9 END AS next_event,"
					 "  CASE WHEN c.registered THEN $11 ELSE $12 END AS deadline_event"
					 " FROM (SELECT e.*%s FROM (SELECT d.*, d.registered AND d.dormant_at <= $4 AS due"
					 "   FROM (SELECT s.*, %s AS dormant_at FROM (%s) AS s) AS d) AS e%s) AS c) AS x"
					 " WHERE (SELECT chk.ok FROM chk)"
					 " ON CONFLICT (tenant, subject, workflow, key, shard) WHERE subject IS NOT NULL"
					 " DO NOTHING"
					 " RETURNING id, state, next_at, shard),"
					 " h AS ("
					 " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event, actor,"
					 "  shard)"
					 " SELECT ins.id, $4, NULL, ins.state, 'adopt', $5, ins.shard FROM ins)"
					 " SELECT chk.n, chk.ok, (SELECT pg_catalog.count(*) FROM ins),"
					 "  (SELECT pg_catalog.min(ins.next_at) FROM ins),"
					 "  (SELECT pg_catalog.count(*) FROM ins"
					 "   WHERE ins.state OPERATOR(pg_catalog.=) $13::lifecycle.state) FROM chk",
					 armed,
					 spec->spread != NULL ?
					 ", pg_catalog.row_number() OVER w AS k,"
					 " pg_catalog.count(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING"
					 " AND UNBOUNDED FOLLOWING) AS nd" : "",
					 dormant_at, bulk_adopt_source(spec),
					 spec->spread != NULL ?
					 " WINDOW w AS (PARTITION BY e.due ORDER BY e.dormant_at)" : "");
	return sql.data;
}

/*
 * Which row is the first bad one: a row lifecycle._adopt_problem()
 * refuses, or the second occurrence of a subject, by position in the
 * order the relation is read (row_number() OVER ()).  Encoded as
 * position * 16 + problem.  Run only when the adoption found one.
 */
static char *
bulk_adopt_diagnosis_sql(const LcAdoptSpec *spec)
{
	return psprintf("SELECT pg_catalog.min(a.pos * 16 + CASE WHEN a.problem <> 0"
					"  THEN a.problem ELSE %d END)"
					" FILTER (WHERE a.problem <> 0 OR a.dup > 1)"
					" FROM (SELECT b.pos, b.problem, pg_catalog.row_number() OVER"
					"   (PARTITION BY b.subject COLLATE pg_catalog.\"C\" ORDER BY b.pos) AS dup"
					"  FROM (SELECT pg_catalog.row_number() OVER () AS pos, s.subject,"
					"    lifecycle._adopt_problem(s.subject, s.email, s.region, s.attrs,"
					"     s.last_seen) AS problem"
					"   FROM (%s) AS s) AS b) AS a",
					LC_ADOPT_DUPLICATE, bulk_adopt_source(spec));
}

/*
 * A plain duration for an interval without months: days of exactly 24
 * hours, as in UTC (machine_add()), so that timestamptz + it is the same
 * whatever the session's TimeZone.  NULL when the interval has months
 * (or is too large to be one number of microseconds).
 */
static Interval *
bulk_duration(const Interval *iv)
{
	Interval   *d;
	int64		days;
	int64		time;

	if (iv->month != 0 ||
		pg_mul_s64_overflow(iv->day, USECS_PER_DAY, &days) ||
		pg_add_s64_overflow(days, iv->time, &time))
		return NULL;
	d = palloc0(sizeof(Interval));
	d->time = time;
	return d;
}

/*
 * Prepare and run one adoption statement as spec->caller, the targets of
 * its INSERTs (expect_marked of them) checked as the owner.  Returns with
 * the result in SPI_tuptable.  counted: the count triggers skip its rows
 * (an error resets that at (sub)transaction abort, as it does the user
 * id).
 */
static void
bulk_adopt_run(const LcAdoptSpec *spec, const char *sql, int nargs,
			   Oid *types, Datum *vals, const char *nulls, int expect_marked,
			   bool counted)
{
	Oid			nsp = get_namespace_oid("lifecycle", false);
	Oid			save_userid;
	int			save_sec_context;
	SPIPlanPtr	plan;
	int			marked = 0;
	int			gucnest;
	ListCell   *lc;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);

	/*
	 * Parse, rewrite (row-level security of the source), plan and run as
	 * the caller.  An error restores the user id at (sub)transaction
	 * abort.
	 */
	SetUserIdAndSecContext(spec->caller,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for the adoption statement: %s",
			 SPI_result_code_string(SPI_result));
	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = (CachedPlanSource *) lfirst(lc);
		ListCell   *lq;

		foreach(lq, ps->query_list)
			marked += bulk_mark_targets((Query *) lfirst(lq), save_userid,
										get_relname_relid("users", nsp),
										get_relname_relid("history", nsp));
	}
	if (marked != expect_marked)
		elog(ERROR, "lifecycle: unexpected query tree for the adoption statement");

	/*
	 * Rows are counted in the order the relation is read: no synchronized
	 * scan, which would start mid-table.  Like a function's SET clause,
	 * the setting ends with the call (or with its abort).
	 */
	gucnest = NewGUCNestLevel();
	(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* counted: the caller writes the deltas (src/store/counts.c) */
	store_counts_self(counted);
	rc = SPI_execute_plan(plan, vals, nulls, false, 0);
	store_counts_self(false);
	AtEOXact_GUC(true, gucnest);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "lifecycle adoption statement failed: %s",
			 SPI_result_code_string(rc));
	SPI_freeplan(plan);
}

/*
 * Adopt every row of spec->relid in one statement, read as spec->caller.
 * On a bad row nothing is inserted and res->first_bad names it.
 */
void
store_bulk_adopt(const LcAdoptSpec *spec, LcAdoptResult *res)
{
	Oid			types[14] = {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID,
		INTERVALOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, INTERVALOID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[14];
	char		nulls[14];
	Interval   *dormant = bulk_duration(spec->dormant_after);
	Interval   *spread = spec->spread ? bulk_duration(spec->spread) : NULL;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int64		active;

	/* Never run a statement written for another version's schema. */
	version_require();
	memset(nulls, ' ', sizeof(nulls));
	vals[0] = CStringGetTextDatum(spec->tenant);
	vals[1] = CStringGetTextDatum(spec->policy);
	vals[2] = Int32GetDatum(spec->policy_version);
	vals[3] = TimestampTzGetDatum(spec->now);
	vals[4] = CStringGetTextDatum(spec->actor);
	vals[5] = IntervalPGetDatum(dormant ? dormant : spec->dormant_after);
	vals[6] = CStringGetTextDatum(spec->active_event);
	vals[7] = TimestampTzGetDatum(spec->expired_next_at);
	vals[8] = CStringGetTextDatum(spec->expired_event);
	if (spec->spread != NULL)
		vals[9] = IntervalPGetDatum(spread ? spread : spec->spread);
	else
	{
		vals[9] = (Datum) 0;
		nulls[9] = 'n';
	}
	vals[10] = CStringGetTextDatum(spec->active_deadline_event);
	vals[11] = CStringGetTextDatum(spec->expired_deadline_event);
	vals[12] = CStringGetTextDatum(spec->active_state);
	vals[13] = CStringGetTextDatum(spec->expired_state);

	/*
	 * The statement's rows are counted here, not by the count triggers
	 * (src/store/counts.c): the users it inserted per state, and as many
	 * history rows of the event adopt.
	 */
	bulk_adopt_run(spec, bulk_adopt_sql(spec, dormant == NULL,
										spec->spread != NULL && spread == NULL),
				   14, types, vals, nulls, 2, true);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(res, 0, sizeof(*res));
	res->rows = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (!DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)))
	{
		/* Nothing was inserted: find the first bad row for the error. */
		bulk_adopt_run(spec, bulk_adopt_diagnosis_sql(spec), 12, types, vals,
					   nulls, 0, false);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						  &isnull);
		if (isnull)
			elog(ERROR, "lifecycle adoption found a bad row but not where");
		res->first_bad = DatumGetInt64(d) / 16;
		res->problem = (int) (DatumGetInt64(d) % 16);
		return;
	}
	res->adopted = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	if (!isnull)
		shmem_note_timer(DatumGetTimestampTz(d));
	active = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	store_counts_add("users", spec->tenant, spec->policy, spec->active_state,
					 active, 0);
	store_counts_add("users", spec->tenant, spec->policy, spec->expired_state,
					 res->adopted - active, 0);
	store_counts_add("events", spec->tenant, "adopt", "user",
					 res->adopted, 0);
}

/*
 * Change a user's personal data or policy, rewrite the payloads of its
 * messages not yet delivered, and write the history row naming the
 * fields that changed.  Returns how many changed (0: nothing written).
 */
int
store_bulk_update(const LcUpdateSpec *spec, TimestampTz now,
				  const char *actor)
{
	Oid			types[12] = {INT8OID, TEXTOID, JSONBOID, TEXTOID, TEXTOID,
		INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		vals[12];
	char		nulls[12];
	bool		isnull;
	int			changed;

	memset(nulls, ' ', sizeof(nulls));
	vals[0] = Int64GetDatum(spec->id);
#define SET_OPT(k, cond, v) \
	do { if (cond) vals[k] = (v); else { vals[k] = (Datum) 0; nulls[k] = 'n'; } } while (0)
	SET_OPT(1, spec->email != NULL, CStringGetTextDatum(spec->email));
	SET_OPT(2, spec->attrs != NULL, JsonbPGetDatum(spec->attrs));
	SET_OPT(3, spec->region != NULL, CStringGetTextDatum(spec->region));
	SET_OPT(4, spec->policy != NULL, CStringGetTextDatum(spec->policy));
	SET_OPT(5, spec->policy != NULL, Int32GetDatum(spec->policy_version));
	SET_OPT(6, spec->policy != NULL && spec->next_at != 0,
			TimestampTzGetDatum(spec->next_at));
	SET_OPT(7, spec->policy != NULL && spec->next_event != NULL,
			CStringGetTextDatum(spec->next_event));
	SET_OPT(10, spec->policy != NULL && spec->deadline_at != 0,
			TimestampTzGetDatum(spec->deadline_at));
	SET_OPT(11, spec->policy != NULL && spec->deadline_event != NULL,
			CStringGetTextDatum(spec->deadline_event));
#undef SET_OPT
	vals[8] = TimestampTzGetDatum(now);
	vals[9] = CStringGetTextDatum(actor);

	store_run(&bulk_state.plans[BP_UPDATE],
			  "WITH old AS ("
			  " SELECT o.email, o.attrs, o.region FROM lifecycle.users AS o WHERE o.id = $1),"
			  " f AS ("
			  " SELECT pg_catalog.array_remove(ARRAY["
			  "  CASE WHEN $2 IS NOT NULL AND $2 IS DISTINCT FROM old.email THEN 'email' END,"
			  "  CASE WHEN $3 IS NOT NULL AND $3 IS DISTINCT FROM old.attrs THEN 'attrs' END,"
			  "  CASE WHEN $4 IS NOT NULL AND $4 IS DISTINCT FROM old.region THEN 'region' END,"
			  "  CASE WHEN $5 IS NOT NULL THEN 'policy' END]::pg_catalog.text[], NULL) AS fields"
			  " FROM old),"
			  " u AS ("
			  " UPDATE lifecycle.users AS u SET email = COALESCE($2, u.email),"
			  "  attrs = COALESCE($3, u.attrs), region = COALESCE($4, u.region),"
			  "  policy = COALESCE($5, u.policy),"
			  "  policy_version = COALESCE($6, u.policy_version),"
			  "  next_at = CASE WHEN $5 IS NULL THEN u.next_at ELSE $7 END,"
			  "  next_event = CASE WHEN $5 IS NULL THEN u.next_event ELSE $8 END,"
			  "  deadline_at = CASE WHEN $5 IS NULL THEN u.deadline_at ELSE $11 END,"
			  "  deadline_event = CASE WHEN $5 IS NULL THEN u.deadline_event ELSE $12 END"
			  " FROM f WHERE u.id = $1 AND pg_catalog.cardinality(f.fields) > 0"
			  " RETURNING u.id, u.email, u.attrs, u.region, u.state, f.fields, u.shard),"
			  " o AS ("
			  " UPDATE lifecycle.outbox AS o SET payload = o.payload"
			  "  OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('email', u.email,"
			  "  'attrs', u.attrs, 'region', u.region)"
			  " FROM u WHERE o.user_id = u.id AND o.status NOT IN ('sent', 'cancelled')),"
			  " h AS ("
			  " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event,"
			  "  actor, detail, shard)"
			  " SELECT u.id, $9, u.state, u.state, 'update', $10,"
			  "  pg_catalog.jsonb_build_object('fields', pg_catalog.to_jsonb(u.fields)),"
			  "  u.shard FROM u)"
			  " SELECT pg_catalog.cardinality(f.fields) FROM f",
			  12, types, vals, nulls, false, 0, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "lifecycle user " INT64_FORMAT " vanished under its lock",
			 spec->id);
	changed = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	if (changed > 0 && spec->policy != NULL && spec->next_at != 0)
		shmem_note_timer(spec->next_at);
	return changed;
}

/*
 * Move every running user of policy on a version older than to_version
 * to it, timers re-armed by the machine (lifecycle._rearm_at/_event) from
 * the row being updated, one history row each.  Returns the users moved;
 * *earliest gets their earliest timer (0: none).
 */
int64
store_bulk_migrate(const char *policy, int to_version, TimestampTz now,
				   const char *actor, TimestampTz *earliest)
{
	Oid			types[4] = {TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID};
	Datum		vals[4];
	bool		isnull;
	Datum		d;

	vals[0] = CStringGetTextDatum(policy);
	vals[1] = Int32GetDatum(to_version);
	vals[2] = TimestampTzGetDatum(now);
	vals[3] = CStringGetTextDatum(actor);
	store_run(&bulk_state.plans[BP_MIGRATE],
			  "WITH m AS ("
			  " UPDATE lifecycle.users AS u SET policy_version = $2,"
			  "  next_at = lifecycle._rearm_at(0, $1, $2, " BULK_REARM_ARGS("u") "),"
			  "  next_event = lifecycle._rearm_event(0, $1, $2, " BULK_REARM_ARGS("u") "),"
			  "  deadline_at = lifecycle._rearm_at(1, $1, $2, " BULK_REARM_ARGS("u") "),"
			  "  deadline_event = lifecycle._rearm_event(1, $1, $2, " BULK_REARM_ARGS("u") ")"
			  " FROM lifecycle.users AS o"
			  " WHERE o.id = u.id AND o.policy = $1 AND o.policy_version < $2"
			  "  AND o.state <> 'erased'"
			  "  AND u.policy = $1 AND u.policy_version < $2 AND u.state <> 'erased'"
			  " RETURNING u.id, u.state, o.policy_version AS from_version, u.next_at,"
			  "  u.shard),"
			  " h AS ("
			  " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event,"
			  "  actor, detail, shard)"
			  " SELECT m.id, $3, m.state, m.state, 'migrate', $4,"
			  "  pg_catalog.jsonb_build_object('from', m.from_version, 'to', $2), m.shard"
			  " FROM m)"
			  " SELECT pg_catalog.count(*), pg_catalog.min(m.next_at) FROM m",
			  4, types, vals, NULL, false, 0, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*earliest = isnull ? 0 : DatumGetTimestampTz(d);
	if (*earliest != 0)
		shmem_note_timer(*earliest);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Record the export in history, then build the document: the user row,
 * its policy version's intervals, its history and its messages.
 */
Jsonb *
store_bulk_export(int64 id, const char *state, TimestampTz now, const char *actor)
{
	Oid			types[4] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	bool		isnull;
	Datum		d;

	vals[0] = Int64GetDatum(id);
	vals[1] = TimestampTzGetDatum(now);
	vals[2] = CStringGetTextDatum(actor);
	vals[3] = CStringGetTextDatum(state);
	store_run(&bulk_state.plans[BP_EXPORT_RECORD],
			  "INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event, actor,"
			  " shard)"
			  " SELECT $1, $2, $4, $4, 'export', $3, u.shard FROM lifecycle.users AS u"
			  " WHERE u.id = $1",
			  4, types, vals, NULL, false, 0, SPI_OK_INSERT);

	store_run(&bulk_state.plans[BP_EXPORT],
			  "SELECT pg_catalog.jsonb_build_object("
			  " 'subject', u.subject, 'tenant', u.tenant, 'email', u.email,"
			  " 'attrs', u.attrs, 'region', u.region, 'state', u.state,"
			  " 'state_since', u.state_since, 'last_seen', u.last_seen,"
			  " 'created_at', u.created_at, 'next_event', u.next_event,"
			  " 'next_at', u.next_at, 'held', u.held, 'hold_until', u.hold_until,"
			  " 'exported_at', $2::pg_catalog.timestamptz,"
			  " 'policy', pg_catalog.jsonb_build_object('name', u.policy,"
			  "  'version', u.policy_version, 'defined_at', p.created_at,"
			  "  'intervals', (SELECT pg_catalog.jsonb_object_agg(k.key, k.value)"
			  "   FROM pg_catalog.jsonb_each(p.definition) AS k"
			  "   WHERE k.key NOT IN ('channel', 'hooks'))),"
			  " 'history', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
			  "   'at', h.at, 'due_at', h.due_at, 'from_state', h.from_state,"
			  "   'to_state', h.to_state, 'event', h.event, 'actor', h.actor,"
			  "   'detail', h.detail) ORDER BY h.at, h.id)"
			  "  FROM lifecycle.history AS h WHERE h.user_id = u.id), '[]'),"
			  " 'messages', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
			  "   'id', o.id, 'message', o.message, 'channel', o.channel,"
			  "   'status', o.status, 'attempts', o.attempts,"
			  "   'created_at', o.created_at, 'sent_at', o.sent_at,"
			  "   'payload', o.payload) ORDER BY o.id)"
			  "  FROM lifecycle.outbox AS o WHERE o.user_id = u.id), '[]'))"
			  " FROM lifecycle.users AS u LEFT JOIN lifecycle.policies AS p"
			  "  ON p.name = u.policy AND p.version = u.policy_version"
			  " WHERE u.id = $1",
			  2, types, vals, NULL, false, 0, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "lifecycle user " INT64_FORMAT " vanished under its lock", id);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return (Jsonb *) SPI_datumTransfer(d, false, -1);
}

/*
 * The subject's personal data (email, attrs, region: NULL leaves one
 * unchanged) given to the live instances ids[0..n-1] of one subject, the
 * pending messages' payloads with it, and one "update" history row per
 * instance that changed, naming the fields, never their values: one
 * statement.  The rows are locked by the caller.  Returns how many
 * instances changed.
 */
int
store_bulk_update_shared(const int64 *ids, int n, const char *email,
						 Jsonb *attrs, const char *region, TimestampTz now,
						 const char *actor)
{
	Oid			types[6] = {INT8ARRAYOID, TEXTOID, JSONBOID, TEXTOID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		vals[6];
	char		nulls[6];
	Datum	   *idd;
	bool		isnull;

	if (n == 0)
		return 0;
	idd = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		idd[i] = Int64GetDatum(ids[i]);
	memset(nulls, ' ', sizeof(nulls));
	vals[0] = store_array(idd, NULL, n, INT8OID);
	store_text_param(email, &vals[1], &nulls[1]);
	if (attrs != NULL)
		vals[2] = JsonbPGetDatum(attrs);
	else
		nulls[2] = 'n';
	store_text_param(region, &vals[3], &nulls[3]);
	vals[4] = TimestampTzGetDatum(now);
	vals[5] = CStringGetTextDatum(actor);

	store_run(&bulk_state.plans[BP_UPDATE_SHARED],
			  "WITH f AS ("
			  " SELECT o.id, pg_catalog.array_remove(ARRAY["
			  "  CASE WHEN $2 IS NOT NULL AND $2 IS DISTINCT FROM o.email THEN 'email' END,"
			  "  CASE WHEN $3 IS NOT NULL AND $3 IS DISTINCT FROM o.attrs THEN 'attrs' END,"
			  "  CASE WHEN $4 IS NOT NULL AND $4 IS DISTINCT FROM o.region THEN 'region' END"
			  "  ]::pg_catalog.text[], NULL) AS fields"
			  " FROM lifecycle.users AS o WHERE o.id = ANY ($1)),"
			  " u AS ("
			  " UPDATE lifecycle.users AS u SET email = COALESCE($2, u.email),"
			  "  attrs = COALESCE($3, u.attrs), region = COALESCE($4, u.region)"
			  " FROM f WHERE u.id = f.id AND pg_catalog.cardinality(f.fields) > 0"
			  " RETURNING u.id, u.email, u.attrs, u.region, u.state, f.fields, u.shard),"
			  " o AS ("
			  " UPDATE lifecycle.outbox AS o SET payload = o.payload"
			  "  OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('email', u.email,"
			  "  'attrs', u.attrs, 'region', u.region)"
			  " FROM u WHERE o.user_id = u.id AND o.status NOT IN ('sent', 'cancelled')),"
			  " h AS ("
			  " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event,"
			  "  actor, detail, shard)"
			  " SELECT u.id, $5, u.state, u.state, 'update', $6,"
			  "  pg_catalog.jsonb_build_object('fields', pg_catalog.to_jsonb(u.fields)),"
			  "  u.shard FROM u)"
			  " SELECT pg_catalog.count(*) FROM u",
			  6, types, vals, nulls, false, 0, SPI_OK_SELECT);
	return (int) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The "instances" of a subject's export: ids[0..n-1] (the caller holds
 * their locks), each with its workflow, key, state, timers, data, policy,
 * history and messages, by id.  The export is first recorded in the
 * history of the instances record[0..nrecord-1] (in states
 * states[0..nrecord-1]); store_bulk_export() has recorded it for the user
 * lifecycle.  user_doc is store_bulk_export()'s document, or NULL for a
 * subject without a user lifecycle: then the document's top level holds
 * the subject's shared data (subject, tenant, email, attrs, region) and
 * exported_at.  Returns the document with the key "instances" added.
 */
Jsonb *
store_bulk_export_instances(const int64 *ids, int n, const int64 *record,
							const char *const *states, int nrecord,
							Jsonb *user_doc, TimestampTz now,
							const char *actor)
{
	Oid			rtypes[4] = {INT8ARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID, TEXTOID};
	Oid			types[3] = {JSONBOID, INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		vals[4];
	char		nulls[3] = {' ', ' ', ' '};
	Datum	   *idd;
	bool		isnull;
	Datum		d;

	if (nrecord > 0)
	{
		Datum	   *rd = palloc(sizeof(Datum) * nrecord);
		Datum	   *sd = palloc(sizeof(Datum) * nrecord);

		for (int i = 0; i < nrecord; i++)
		{
			rd[i] = Int64GetDatum(record[i]);
			sd[i] = CStringGetTextDatum(states[i]);
		}
		vals[0] = store_array(rd, NULL, nrecord, INT8OID);
		vals[1] = store_array(sd, NULL, nrecord, TEXTOID);
		vals[2] = TimestampTzGetDatum(now);
		vals[3] = CStringGetTextDatum(actor);
		store_run(&bulk_state.plans[BP_EXPORT_RECORD_MANY],
				  "INSERT INTO lifecycle.history (user_id, at, from_state, to_state,"
				  " event, actor, shard)"
				  " SELECT r.id, $3, r.state, r.state, 'export', $4, u.shard"
				  " FROM unnest($1, $2) AS r(id, state)"
				  " JOIN lifecycle.users AS u ON u.id = r.id",
				  4, rtypes, vals, NULL, false, 0, SPI_OK_INSERT);
	}

	idd = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		idd[i] = Int64GetDatum(ids[i]);
	if (user_doc != NULL)
		vals[0] = JsonbPGetDatum(user_doc);
	else
		nulls[0] = 'n';
	vals[1] = store_array(idd, NULL, n, INT8OID);
	vals[2] = TimestampTzGetDatum(now);
	store_run(&bulk_state.plans[BP_EXPORT_INSTANCES],
			  "SELECT COALESCE($1, (SELECT pg_catalog.jsonb_build_object("
			  "   'subject', f.subject, 'tenant', f.tenant, 'email', f.email,"
			  "   'attrs', f.attrs, 'region', f.region,"
			  "   'exported_at', $3::pg_catalog.timestamptz)"
			  "  FROM lifecycle.users AS f WHERE f.id = ($2)[1]))"
			  " OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('instances',"
			  " COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
			  "   'id', u.id, 'workflow', u.workflow,"
			  "   'workflow_version', u.workflow_version, 'key', u.key,"
			  "   'state', u.state, 'state_since', u.state_since,"
			  "   'created_at', u.created_at, 'last_seen', u.last_seen,"
			  "   'next_event', u.next_event, 'next_at', u.next_at,"
			  "   'deadline_event', u.deadline_event, 'deadline_at', u.deadline_at,"
			  "   'held', u.held, 'hold_until', u.hold_until, 'data', u.data,"
			  "   'policy', pg_catalog.jsonb_build_object('name', u.policy,"
			  "    'version', u.policy_version),"
			  "   'history', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
			  "     'at', h.at, 'due_at', h.due_at, 'from_state', h.from_state,"
			  "     'to_state', h.to_state, 'event', h.event, 'actor', h.actor,"
			  "     'detail', h.detail) ORDER BY h.at, h.id)"
			  "    FROM lifecycle.history AS h WHERE h.user_id = u.id), '[]'),"
			  "   'messages', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
			  "     'id', o.id, 'message', o.message, 'channel', o.channel,"
			  "     'status', o.status, 'attempts', o.attempts,"
			  "     'created_at', o.created_at, 'sent_at', o.sent_at,"
			  "     'payload', o.payload) ORDER BY o.id)"
			  "    FROM lifecycle.outbox AS o WHERE o.user_id = u.id), '[]'))"
			  "  ORDER BY u.id)"
			  "  FROM lifecycle.users AS u WHERE u.id = ANY ($2)), '[]'))",
			  3, types, vals, nulls, false, 0, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "lifecycle export of %d instances found no document", n);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "lifecycle instance " INT64_FORMAT " vanished under its lock",
			 ids[0]);
	return (Jsonb *) SPI_datumTransfer(d, false, -1);
}

/*
 * A read-only cursor over the instances the forecast simulates: those
 * whose next timer falls before until (LC_FORECAST_DUE), or every running
 * instance of the policy or of the workflow, whatever its timer (their
 * timers are recomputed).  policy, tenant and workflow (NULL: any) filter.
 */
Portal
store_bulk_forecast_open(TimestampTz until, const char *policy,
						 const char *tenant, const char *workflow,
						 LcForecastScope scope)
{
	Oid			types[4] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		vals[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	SPIPlanPtr *slot;
	const char *sql;
	Portal		portal;

	vals[0] = TimestampTzGetDatum(until);
	store_text_param(policy, &vals[1], &nulls[1]);
	store_text_param(tenant, &vals[2], &nulls[2]);
	store_text_param(workflow, &vals[3], &nulls[3]);

#define FORECAST_COLUMNS \
	"SELECT tenant, policy, policy_version, state::pg_catalog.text, state_since," \
	" last_seen, step, held, hold_until, next_at, next_event, state_due_at," \
	" workflow, workflow_version" \
	" FROM lifecycle.users "
#define FORECAST_FILTERS \
	" AND ($2::pg_catalog.text IS NULL OR policy = $2)" \
	" AND ($3::pg_catalog.text IS NULL OR tenant = $3)" \
	" AND ($4::pg_catalog.text IS NULL OR workflow = $4)"
	switch (scope)
	{
		case LC_FORECAST_POLICY:
			slot = &bulk_state.plans[BP_FORECAST_POLICY];
			sql = FORECAST_COLUMNS
				"WHERE policy = $2 AND state <> 'erased'"
				FORECAST_FILTERS
				" AND $1::pg_catalog.timestamptz IS NOT NULL";
			break;
		case LC_FORECAST_WORKFLOW:
			slot = &bulk_state.plans[BP_FORECAST_WORKFLOW];
			sql = FORECAST_COLUMNS
				"WHERE workflow = $4 AND state <> 'erased'"
				FORECAST_FILTERS
				" AND $1::pg_catalog.timestamptz IS NOT NULL";
			break;
		default:
			slot = &bulk_state.plans[BP_FORECAST_DUE];
			sql = FORECAST_COLUMNS
				"WHERE next_at <= $1"
				FORECAST_FILTERS;
			break;
	}
#undef FORECAST_FILTERS
#undef FORECAST_COLUMNS

	version_require();
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, 4, types,
											  CURSOR_OPT_NO_SCROLL);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for the forecast: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	portal = SPI_cursor_open(NULL, *slot, vals, nulls, true);
	if (portal == NULL)
		elog(ERROR, "could not open the forecast cursor");
	return portal;
}

/*
 * Fetch up to max rows of the forecast cursor into rows (strings in cxt;
 * state and event as names, resolved by the caller in the row's graph,
 * which may have to be loaded with SPI).  Returns how many; 0 at the end.
 */
int
store_bulk_forecast_fetch(Portal portal, int max, LcForecastRow *rows,
						  MemoryContext cxt)
{
	Datum		v[14];
	bool		n[14];
	int			count;

	SPI_cursor_fetch(portal, true, max);
	count = (int) SPI_processed;
	for (int i = 0; i < count; i++)
	{
		LcForecastRow *r = &rows[i];

		memset(r, 0, sizeof(*r));
		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, v, n);
		r->tenant = MemoryContextStrdup(cxt, TextDatumGetCString(v[0]));
		r->policy = MemoryContextStrdup(cxt, TextDatumGetCString(v[1]));
		r->policy_version = DatumGetInt32(v[2]);
		r->state_name = MemoryContextStrdup(cxt, TextDatumGetCString(v[3]));
		r->user.state_since = DatumGetTimestampTz(v[4]);
		r->user.last_seen = n[5] ? 0 : DatumGetTimestampTz(v[5]);
		r->user.step = DatumGetInt32(v[6]);
		r->user.held = DatumGetBool(v[7]);
		r->user.hold_until = n[8] ? 0 : DatumGetTimestampTz(v[8]);
		r->next_at = n[9] ? 0 : DatumGetTimestampTz(v[9]);
		r->event_name = n[10] ? NULL :
			MemoryContextStrdup(cxt, TextDatumGetCString(v[10]));
		r->next_event = LC_EV_NONE;
		r->user.state_due_at = n[11] ? 0 : DatumGetTimestampTz(v[11]);
		r->workflow = MemoryContextStrdup(cxt, TextDatumGetCString(v[12]));
		r->workflow_version = DatumGetInt32(v[13]);
	}
	SPI_freetuptable(SPI_tuptable);
	return count;
}
