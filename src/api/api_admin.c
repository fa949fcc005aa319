/*-------------------------------------------------------------------------
 *
 * api_admin.c
 *	  The admin API: archive, legal holds, policy definition, lifecycle_tick()
 *	  and the test clock.
 *
 * IDENTIFICATION
 *	  src/api_admin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "engine.h"
#include "guc.h"
#include "machine.h"
#include "policy.h"
#include "store.h"
#include "store_outbox.h"

PG_FUNCTION_INFO_V1(lifecycle_archive);
PG_FUNCTION_INFO_V1(lifecycle_hold);
PG_FUNCTION_INFO_V1(lifecycle_release);
PG_FUNCTION_INFO_V1(lifecycle_define_policy_internal);
PG_FUNCTION_INFO_V1(lifecycle_tick);
PG_FUNCTION_INFO_V1(lifecycle_travel);

static void admin_check_hook_owner(LcPolicy *p);
static char *admin_hold_detail(const char *reason, TimestampTz until);

/* lifecycle_archive(subject, tenant) -> state */
Datum
lifecycle_archive(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, "archive");
}


/*
 * lifecycle_hold(subject, tenant, reason, until): place a legal hold on
 * the subject, that is on every live instance of every workflow of
 * theirs (one history row each).  No timer fires while it lasts; at
 * "until" (lifecycle clock) it lapses.
 */
Datum
lifecycle_hold(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	char	   *reason = args_text_arg(fcinfo, 2, "reason", LC_MAX_REASON);
	TimestampTz until = PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3);
	const char *actor = acting_actor();
	LcUserRow  *rows;
	LcChange   *changes;
	TimestampTz now;
	char	   *detail;
	int			n;

	if (!PG_ARGISNULL(3) && TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be a finite time"),
				 errhint("Pass NULL for a hold without end.")));

	SPI_connect();
	acting_check_tenant(tenant);
	now = clock_now();
	if (until != 0 && until <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must lie in the future of the lifecycle clock"),
				 errdetail("lifecycle_now() is %s.", timestamptz_to_str(now))));
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	/* again, now locked: an instance started meanwhile is seen */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	detail = admin_hold_detail(reason, until);

	/* A hold is an event of the machine; hold_until carries the request. */
	now = clock_now_precise();	/* locked */
	changes = palloc(sizeof(LcChange) * n);
	for (int i = 0; i < n; i++)
	{
		LcPolicy   *policy = policy_get(rows[i].policy, rows[i].policy_version);
		LcUser		user = rows[i].user;
		LcOutcome	o;

		user.hold_until = until;
		machine_apply(policy, &user, LC_EV_HOLD, now, &o);
		if (!o.allowed)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot hold subject: it is %s",
							machine_state_name(rows[i].graph, rows[i].user.state)),
					 errhint("%s", o.hint)));
		engine_change(&changes[i], &rows[i], policy, LC_EV_HOLD, &o, 0);
		changes[i].hold_reason = reason;
		changes[i].detail = detail;
	}
	store_apply(changes, n, now, actor);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * The detail of a hold's history row: its reason and end.
 */
static char *
admin_hold_detail(const char *reason, TimestampTz until)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"reason\": ");
	escape_json(&detail, reason);
	if (until != 0)
	{
		appendStringInfoString(&detail, ", \"until\": ");
		escape_json(&detail, timestamptz_to_str(until));
	}
	appendStringInfoChar(&detail, '}');
	return detail.data;
}

/*
 * A new instance of a held subject starts held (DESIGN: a hold stops every
 * timer of every instance of the subject).  Instance id, just inserted by
 * this transaction (lifecycle_start(), or lifecycle_invite(), of a subject
 * with other instances), takes the subject's hold as lifecycle_hold()
 * places it on each instance: the hold event of the machine with the same
 * reason and end (from the first held instance in lock order whose hold
 * has not lapsed), one history row, its counts.  Nothing when no other
 * instance is held.  The subject's instances are locked first: a hold or
 * release in flight is waited for (and lifecycle_hold() and
 * lifecycle_release() look again once they hold the locks, so they see an
 * instance started while they waited).  The caller is connected to SPI.
 */
void
api_hold_new_instance(const char *tenant, const char *subject, int64 id,
					  const char *actor)
{
	LcUserRow  *rows;
	const LcUserRow *self = NULL;
	const LcUserRow *from = NULL;
	LcPolicy   *policy;
	LcUser		user;
	LcOutcome	o;
	LcChange	change;
	TimestampTz now;
	int			n;

	n = store_subject_instances(tenant, subject, &rows);
	now = clock_now_precise();	/* locked */
	for (int i = 0; i < n; i++)
	{
		if (rows[i].id == id)
			self = &rows[i];
		else if (from == NULL && rows[i].user.held &&
				 (rows[i].user.hold_until == 0 || rows[i].user.hold_until > now))
			from = &rows[i];
	}
	if (self == NULL || from == NULL || self->user.held)
		return;
	policy = policy_get(self->policy, self->policy_version);
	user = self->user;
	user.hold_until = from->user.hold_until;
	machine_apply(policy, &user, LC_EV_HOLD, now, &o);
	if (!o.allowed)
		elog(ERROR, "lifecycle instance " INT64_FORMAT " refuses the subject's hold in state %s",
			 id, machine_state_name(self->graph, self->user.state));
	engine_change(&change, self, policy, LC_EV_HOLD, &o, 0);
	change.hold_reason = from->hold_reason;
	change.detail = admin_hold_detail(from->hold_reason != NULL ?
									  from->hold_reason : "",
									  from->user.hold_until);
	store_apply(&change, 1, now, actor);
}

/*
 * lifecycle_release(subject, tenant): end the subject's legal hold on
 * every instance that has one; overdue timers fire at once.  55000 when
 * none has.
 */
Datum
lifecycle_release(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	const char *actor = acting_actor();
	LcUserRow  *rows;
	LcChange   *changes;
	LcOutcome	first = {0};
	TimestampTz now;
	int			n;
	int			nheld = 0;

	SPI_connect();
	acting_check_tenant(tenant);
	now = clock_now();
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	/* again, now locked: an instance started held meanwhile is seen */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	now = clock_now_precise();	/* locked */
	changes = palloc(sizeof(LcChange) * n);
	for (int i = 0; i < n; i++)
	{
		LcPolicy   *policy = policy_get(rows[i].policy, rows[i].policy_version);
		LcOutcome	o;

		machine_apply(policy, &rows[i].user, LC_EV_RELEASE, now, &o);
		if (i == 0)
			first = o;
		if (o.allowed)
			engine_change(&changes[nheld++], &rows[i], policy, LC_EV_RELEASE,
						  &o, 0);
	}
	if (nheld == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("subject is not on legal hold"),
				 errhint("%s", first.hint)));
	store_apply(changes, nheld, now, actor);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Hooks run as the owner of their function (engine_call_hook()): only a
 * role with the privileges of that owner may name it, else any admin could
 * run a superuser's function, or its own as the extension's owner.
 */
static void
admin_check_hook_owner(LcPolicy *p)
{
	const char *actor = acting_actor();
	Oid			roleid = get_role_oid(actor, false);

	for (int i = 0; i < p->graph->n_hooks; i++)
	{
		Oid			fn = policy_hook_oid(p, i);
		HeapTuple	tup;
		Oid			owner;

		if (!OidIsValid(fn))
			continue;
		tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
		if (!HeapTupleIsValid(tup))
			continue;
		owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
		ReleaseSysCache(tup);
		if (!has_privs_of_role(roleid, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("invalid policy key \"hooks.%s\": role \"%s\" does not have the privileges of the owner of function %s",
							p->graph->hooks[i], actor, p->hooks[i]),
					 errdetail("A hook runs with the privileges of its function's owner."),
					 errhint("Create the hook function as this role, or define the policy as its owner.")));
	}
}

/*
 * lifecycle._define_policy(name, definition, search_schemas) -> version
 *
 * Keys left out are taken from the latest "default"; the merged document
 * is validated in C and stored with hooks resolved to qualified names.
 */
Datum
lifecycle_define_policy_internal(PG_FUNCTION_ARGS)
{
	char	   *name = args_text_arg(fcinfo, 0, "name", NAMEDATALEN - 1);
	Jsonb	   *def;
	List	   *schemas = NIL;
	int			version;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("definition must not be null")));
	def = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(def) || JB_ROOT_IS_SCALAR(def))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid policy: the definition must be a JSON object")));

	if (!PG_ARGISNULL(2))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				schemas = lappend(schemas,
								  pstrdup(NameStr(*DatumGetName(elems[i]))));
	}

	SPI_connect();

	/*
	 * Policies are shared by every tenant: a role limited to some tenants
	 * may not change them (42501).
	 */
	acting_require_unlimited("define policies");
	version = admin_define_policy(name, def, schemas);
	SPI_finish();
	PG_RETURN_INT32(version);
}

/*
 * Define the next version of policy "name" (the caller is connected to
 * SPI and checked).  The workflow is the definition's "workflow", else
 * the policy's own, else "user", at its latest version.  Keys left out
 * are taken from the workflow's same-named policy (the user workflow's is
 * "default", as in 0.2.0) or from the workflow's defaults; the merged
 * document is validated in C and stored with hooks resolved to qualified
 * names.  A max_retention the bounds exceed refuses it.
 */
int
admin_define_policy(const char *name, Jsonb *def, List *schemas)
{
	char	   *workflow = policy_workflow_key(def);
	const LcGraph *graph;
	Jsonb	   *base = NULL;
	Jsonb	   *merged;
	Jsonb	   *normalized;
	LcPolicy   *p;
	int			wversion;
	int			version;
	char	   *own = store_policy_workflow(name);

	if (workflow != NULL && own != NULL && strcmp(workflow, own) != 0)
		policy_invalid("workflow",
					   "policy \"%s\" belongs to workflow \"%s\" (define a policy under another name)",
					   name, own);
	if (workflow == NULL)
		workflow = own;
	if (workflow == NULL)
		workflow = LC_USER_WORKFLOW;
	wversion = cache_workflow_latest(workflow);
	if (wversion == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", workflow),
				 errhint("Define it with lifecycle_define_workflow().")));
	graph = cache_graph(workflow, wversion);
	if (strcmp(workflow, LC_USER_WORKFLOW) == 0)
	{
		/* 0.2.0: every key comes from the latest "default". */
		if (store_policy_latest("default", &base) == 0)
			base = policy_defaults(graph);
	}
	else
	{
		Jsonb	   *same = NULL;
		char	   *same_wf = store_policy_workflow(workflow);

		base = policy_defaults(graph);
		if (same_wf != NULL && strcmp(same_wf, workflow) == 0 &&
			store_policy_latest(workflow, &same) != 0)
			base = policy_merge(base, policy_known_keys(graph, same));
	}
	merged = policy_merge(base, def);
	p = policy_parse(graph, name, 0, merged, schemas, &normalized);
	admin_check_hook_owner(p);
	if (p->channel != NULL && !store_channel_exists(p->channel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", p->channel),
				 errhint("Add it with lifecycle_add_channel().")));
	policy_check_max_retention(p, psprintf("the policy (workflow \"%s\" version %d)",
										   graph->name, graph->version));
	version = store_policy_insert(name, normalized, clock_now(), p);
	/* This version may roll back: do not let the cache outlive it. */
	cache_policy_forget();
	return version;
}

/*
 * A workflow version was just defined: create its same-named policy with
 * the defaults if there is none, and refuse the version (22023) if the
 * instances of a policy of the workflow that declares max_retention would
 * be kept longer under it than that promise allows.
 */
void
admin_workflow_policies(const char *workflow, int version)
{
	const LcGraph *g;
	char	  **names;
	Jsonb	  **defs;
	int			n;

	/*
	 * The reads below are read-only statements, which see the caller's
	 * snapshot: let them see the version just written.
	 */
	CommandCounterIncrement();
	PushCopiedSnapshot(GetActiveSnapshot());
	UpdateActiveSnapshotCommandId();

	g = cache_graph(workflow, version);
	n = store_policies_of_workflow(workflow, &names, &defs);
	for (int i = 0; i < n; i++)
	{
		LcPolicy   *p;

		p = policy_parse(g, names[i], 0,
						 policy_merge(policy_defaults(g),
									  policy_known_keys(g, defs[i])),
						 NIL, NULL);
		policy_check_max_retention(p, psprintf("workflow \"%s\" version %d (policy \"%s\")",
											   workflow, version, names[i]));
	}
	if (store_policy_latest(workflow, NULL) == 0)
	{
		JsonbParseState *state = NULL;
		JsonbValue	k;
		JsonbValue	v;

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "workflow";
		k.val.string.len = 8;
		v.type = jbvString;
		v.val.string.val = (char *) workflow;
		v.val.string.len = strlen(workflow);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
		(void) admin_define_policy(workflow,
								   JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)),
								   NIL);
	}
	PopActiveSnapshot();
}

/*
 * lifecycle_tick(max_transitions) -> transitions
 *
 * Advance every due user now, batch after batch, inside the caller's
 * transaction (pg_cron mode, tests).
 */
Datum
lifecycle_tick(PG_FUNCTION_ARGS)
{
	int			max = PG_ARGISNULL(0) ? INT_MAX : PG_GETARG_INT32(0);
	int			total = 0;
	TimestampTz now;

	if (max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_transitions must not be negative")));

	SPI_connect();
	now = clock_now();
	while (total < max)
	{
		LcTickResult r;

		CHECK_FOR_INTERRUPTS();
		engine_tick_batch(now, Min(lc_batch_size, max - total),
						  LC_WORKER_ACTOR, &r);
		total += r.transitions;
		if (r.selected == 0 || r.selected == r.errors)
			break;
	}
	/* pg_cron mode: a bounded batch of outbox retention per tick. */
	store_outbox_prune(lc_batch_size);
	/* The counts' deltas, folded (the scheduler does it every pass). */
	store_counts_fold();
	SPI_finish();
	PG_RETURN_INT32(total);
}

/*
 * lifecycle_travel(by) -> the new lifecycle now
 */
Datum
lifecycle_travel(PG_FUNCTION_ARGS)
{
	Interval   *by;
	TimestampTz now;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("by must not be null")));
	by = PG_GETARG_INTERVAL_P(0);
	SPI_connect();
	acting_require_unlimited("move the lifecycle clock");
	now = clock_travel(by);
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(now);
}

