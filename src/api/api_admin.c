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

/* lifecycle_archive(subject, tenant) -> state */
Datum
lifecycle_archive(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, LC_EV_ARCHIVE);
}


/*
 * lifecycle_hold(subject, tenant, reason, until): place a legal hold.  No
 * timer fires while it lasts; at "until" (lifecycle clock) it lapses.
 */
Datum
lifecycle_hold(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	char	   *reason = args_text_arg(fcinfo, 2, "reason", LC_MAX_REASON);
	TimestampTz until = PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3);
	const char *actor = acting_actor();
	LcUserRow	row;
	LcUser		user;
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	c;
	TimestampTz now;
	StringInfoData detail;

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
	api_find(tenant, subject, true, &row);
	if (row.user.state == LC_ERASED)
		api_not_found(tenant);
	policy = policy_get(row.policy, row.policy_version);

	/* A hold is an event of the machine; hold_until carries the request. */
	now = clock_now_precise();	/* locked */
	user = row.user;
	user.hold_until = until;
	machine_apply(policy, &user, LC_EV_HOLD, now, &o);
	if (!o.allowed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot hold subject: it is %s",
						machine_state_name(row.user.state)),
				 errhint("%s", o.hint)));
	engine_change(&c, &row, policy, LC_EV_HOLD, &o, 0);
	c.hold_reason = reason;
	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"reason\": ");
	escape_json(&detail, reason);
	if (until != 0)
	{
		appendStringInfoString(&detail, ", \"until\": ");
		escape_json(&detail, timestamptz_to_str(until));
	}
	appendStringInfoChar(&detail, '}');
	c.detail = detail.data;
	store_apply(&c, 1, now, actor);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * lifecycle_release(subject, tenant): end a legal hold; overdue timers
 * fire at once.
 */
Datum
lifecycle_release(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	const char *actor = acting_actor();
	LcUserRow	row;
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	c;
	TimestampTz now;

	SPI_connect();
	acting_check_tenant(tenant);
	now = clock_now();
	api_find(tenant, subject, true, &row);
	now = clock_now_precise();	/* locked */
	policy = policy_get(row.policy, row.policy_version);
	machine_apply(policy, &row.user, LC_EV_RELEASE, now, &o);
	if (!o.allowed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("subject is not on legal hold"),
				 errhint("%s", o.hint)));
	engine_change(&c, &row, policy, LC_EV_RELEASE, &o, 0);
	store_apply(&c, 1, now, actor);
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

	for (int i = 0; i < LC_NUM_HOOKS; i++)
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
							policy_hook_name(i), actor, p->hooks[i]),
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
	Jsonb	   *base = NULL;
	Jsonb	   *merged;
	Jsonb	   *normalized;
	List	   *schemas = NIL;
	LcPolicy   *p;
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
	if (store_policy_latest("default", &base) == 0)
		base = policy_builtin_default();
	merged = policy_merge(base, def);
	p = policy_parse(name, 0, merged, schemas, &normalized);
	admin_check_hook_owner(p);
	if (p->channel != NULL && !store_channel_exists(p->channel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", p->channel),
				 errhint("Add it with lifecycle_add_channel().")));
	version = store_policy_insert(name, normalized, clock_now(), p->hook_oids);
	/* This version may roll back: do not let the cache outlive it. */
	cache_policy_forget();
	SPI_finish();
	PG_RETURN_INT32(version);
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

