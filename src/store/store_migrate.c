/*-------------------------------------------------------------------------
 *
 * store_migrate.c
 *	  The SQL of lifecycle_migrate_workflow() (src/api/migrate.c): the
 *	  running instances of a workflow's older versions by policy and
 *	  state, the policy version that names a workflow version, and the
 *	  set-based move of one policy's instances.  Saved plans with
 *	  parameters; no value is formatted into SQL text.
 *
 * IDENTIFICATION
 *	  src/store/store_migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "store.h"
#include "store_migrate.h"

typedef enum MigratePlan
{
	MP_GROUPS,
	MP_POLICY_VERSION,
	MP_MOVE,
	MP_NUM_PLANS
} MigratePlan;

static SPIPlanPtr migrate_plans[MP_NUM_PLANS];

/*
 * The running (not erased) instances of workflow on a version below
 * below_version, counted by state and policy (ordered so).  Returns how
 * many groups; strings in the caller's context.  Not read-only: the
 * statement takes a new snapshot, so that it sees what the migration has
 * just written.
 */
int
store_migrate_groups(const char *workflow, int below_version,
					 LcWorkflowGroup **groups)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2];
	MemoryContext cxt = CurrentMemoryContext;
	LcWorkflowGroup *g;
	int			n;

	vals[0] = CStringGetTextDatum(workflow);
	vals[1] = Int32GetDatum(below_version);
	store_run(&migrate_plans[MP_GROUPS],
			  "SELECT u.state::pg_catalog.text, u.policy, pg_catalog.count(*)"
			  " FROM lifecycle.users AS u"
			  " WHERE u.workflow = $1 AND u.workflow_version < $2"
			  "  AND u.state <> 'erased'"
			  " GROUP BY 1, 2 ORDER BY 1, 2",
			  2, types, vals, NULL, false, 0, SPI_OK_SELECT);
	n = (int) SPI_processed;
	g = MemoryContextAllocZero(cxt, sizeof(LcWorkflowGroup) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		g[i].state = store_getstr(tup, desc, 1, cxt);
		g[i].policy = store_getstr(tup, desc, 2, cxt);
		g[i].n = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	*groups = g;
	return n;
}

/*
 * The latest version of policy that names workflow's version
 * workflow_version; 0 when none does.
 */
int
store_migrate_policy_version(const char *policy, const char *workflow,
							 int workflow_version)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		vals[3];
	bool		isnull;
	Datum		d;

	vals[0] = CStringGetTextDatum(policy);
	vals[1] = CStringGetTextDatum(workflow);
	vals[2] = Int32GetDatum(workflow_version);
	store_run(&migrate_plans[MP_POLICY_VERSION],
			  "SELECT pg_catalog.max(p.version) FROM lifecycle.policies AS p"
			  " WHERE p.name = $1 AND p.workflow = $2 AND p.workflow_version = $3",
			  3, types, vals, NULL, true, 0, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * Move the running instances of policy on versions of workflow older than
 * to_version to it, in one statement: their state as state_map says (an
 * object naming every state they may be in), their policy version to
 * policy_version (which names to_version), timers and deadline re-armed
 * by the machine (lifecycle._rearm_at/_event, from the row's anchors, in
 * its new state); one history row "migrate" each.  Returns how many moved.
 */
int64
store_migrate_instances(const char *workflow, int to_version,
						const char *policy, int policy_version,
						Jsonb *state_map, TimestampTz now, const char *actor)
{
	Oid			types[7] = {TEXTOID, INT4OID, TEXTOID, INT4OID, JSONBOID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		vals[7];
	bool		isnull;
	Datum		d;

	vals[0] = CStringGetTextDatum(workflow);
	vals[1] = Int32GetDatum(to_version);
	vals[2] = CStringGetTextDatum(policy);
	vals[3] = Int32GetDatum(policy_version);
	vals[4] = PointerGetDatum(state_map);
	vals[5] = TimestampTzGetDatum(now);
	vals[6] = CStringGetTextDatum(actor);
#define MIGRATE_REARM_ARGS \
	"s.to_state::pg_catalog.text, u.state_since, u.state_due_at, u.last_seen," \
	" u.step, u.held, u.hold_until"
	store_run(&migrate_plans[MP_MOVE],
			  "WITH s AS ("
			  " SELECT k.key::lifecycle.state AS from_state,"
			  "  k.value::lifecycle.state AS to_state"
			  " FROM pg_catalog.jsonb_each_text($5) AS k),"
			  " m AS ("
			  " UPDATE lifecycle.users AS u SET workflow_version = $2,"
			  "  policy_version = $4, state = s.to_state,"
			  "  next_at = lifecycle._rearm_at(0, $3, $4, " MIGRATE_REARM_ARGS "),"
			  "  next_event = lifecycle._rearm_event(0, $3, $4, " MIGRATE_REARM_ARGS "),"
			  "  deadline_at = lifecycle._rearm_at(1, $3, $4, " MIGRATE_REARM_ARGS "),"
			  "  deadline_event = lifecycle._rearm_event(1, $3, $4, " MIGRATE_REARM_ARGS ")"
			  " FROM lifecycle.users AS o, s"
			  " WHERE o.id = u.id AND o.workflow = $1 AND o.policy = $3"
			  "  AND o.workflow_version < $2 AND o.state <> 'erased'"
			  "  AND s.from_state = o.state"
			  "  AND u.workflow = $1 AND u.policy = $3"
			  "  AND u.workflow_version < $2 AND u.state <> 'erased'"
			  " RETURNING u.id, o.state AS from_state, u.state AS to_state,"
			  "  o.workflow_version AS from_version,"
			  "  o.policy_version AS from_policy_version, u.next_at, u.shard),"
			  " h AS ("
			  " INSERT INTO lifecycle.history (user_id, at, from_state, to_state, event,"
			  "  actor, detail, shard)"
			  " SELECT m.id, $6, m.from_state, m.to_state, 'migrate', $7,"
			  "  pg_catalog.jsonb_build_object('workflow', $1, 'from', m.from_version,"
			  "   'to', $2, 'policy_from', m.from_policy_version, 'policy_to', $4),"
			  "  m.shard FROM m)"
			  " SELECT pg_catalog.count(*), pg_catalog.min(m.next_at) FROM m",
			  7, types, vals, NULL, false, 0, SPI_OK_SELECT);
#undef MIGRATE_REARM_ARGS
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!isnull)
		shmem_note_timer(DatumGetTimestampTz(d));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}
