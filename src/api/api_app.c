/*-------------------------------------------------------------------------
 *
 * api_app.c
 *	  The application API: invite, register, touch, complete, restore,
 *	  erase, and the event flow the admin API shares.
 *
 * Each function checks its arguments (args.c), the acting role's tenant
 * (acting.c), finds the subject (unknown: 42704), asks the machine (not
 * allowed: 55000 with a HINT naming the call that would work) and writes
 * the outcome with store_apply(), the same code the worker uses.
 *
 * IDENTIFICATION
 *	  src/api_app.c
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

PG_FUNCTION_INFO_V1(lifecycle_invite);
PG_FUNCTION_INFO_V1(lifecycle_register);
PG_FUNCTION_INFO_V1(lifecycle_touch);
PG_FUNCTION_INFO_V1(lifecycle_complete);
PG_FUNCTION_INFO_V1(lifecycle_restore);
PG_FUNCTION_INFO_V1(lifecycle_erase);
PG_FUNCTION_INFO_V1(lifecycle_now);

/*
 * Find a subject or raise 42704.  The subject is personal data: the
 * message names the argument, never its value.
 */
void
api_find(const char *tenant, const char *subject, bool for_update,
		 LcUserRow *row)
{
	if (!store_user_lookup(tenant, subject, for_update, row))
		api_not_found(tenant);
}

/*
 * The 0.2.0 functions run the user workflow: a policy of another workflow
 * is refused (22023).
 */
void
api_user_policy(const LcPolicy *policy)
{
	if (strcmp(policy->graph->name, LC_USER_WORKFLOW) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy \"%s\" belongs to workflow \"%s\", not to the user lifecycle",
						policy->name, policy->graph->name),
				 errhint("Name a policy of the user workflow.")));
}

/*
 * Raise 42704 for a subject that does not exist (or was erased).
 */
void
api_not_found(const char *tenant)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("subject does not exist"),
			 errdetail("Tenant \"%s\" has no live subject of that name.", tenant),
			 errhint("Use lifecycle_invite() to start a lifecycle.")));
}

/*
 * Raise 55000 for an event the graph does not allow.  The message names
 * the state, not the subject (personal data).
 */
void
api_refuse(const LcUserRow *row, LcEvent event, const LcOutcome *o)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s subject: it is %s",
					machine_event_name(row->graph, event),
					machine_state_name(row->graph, row->user.state)),
			 row->user.held ?
			 errdetail("The subject is on legal hold.") : 0,
			 errhint("%s", o->hint)));
}

/*
 * A lifecycle.state value (a domain over text) for the function's result.
 */
Datum
api_state_datum(FunctionCallInfo fcinfo, const LcGraph *g, LcState state)
{
	return CStringGetTextDatum(machine_state_name(g, state));
}

/*
 * Apply an application or admin event to (subject, tenant) given as
 * arguments 0 and 1: an event of the subject's user lifecycle.  Returns
 * the new state; *evidence gets the erasure evidence id.
 */
LcState
api_event(FunctionCallInfo fcinfo, const char *event_name, const char *reason,
		  int64 *evidence, const LcGraph **graph)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);

	return api_instance_event(tenant, subject, LC_USER_WORKFLOW, "",
							  event_name, reason, false, evidence, graph);
}

/*
 * The event of a lifecycle_signal() call, or the user lifecycle's named
 * event, in the graph of the instance's workflow version.  A signal may
 * name the calls of the definition only: not the timers and records, nor
 * the reserved events that have functions of their own (hold, release,
 * erase, export, update, migrate, adopt); an event for admins needs
 * lifecycle_admin.
 */
static LcEvent
api_instance_event_id(const LcGraph *g, const char *event_name, bool signal)
{
	LcEvent		event = machine_event_from_name(g, event_name);

	if (!signal)
	{
		if (event == LC_EV_NONE)
			elog(ERROR, "workflow \"%s\" has no event \"%s\"", g->name,
				 event_name);
		return event;
	}
	if (event == LC_EV_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("workflow \"%s\" version %d has no event \"%s\"",
						g->name, g->version, event_name),
				 errhint("lifecycle_workflow('%s') lists its events.", g->name)));
	if (event < LC_NUM_RESERVED_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event \"%s\" cannot be signalled", event_name),
				 errdetail("It is one of the events every workflow has."),
				 errhint("Call lifecycle_%s() instead.",
						 event == LC_EV_HOLD_LAPSE || event == LC_EV_REMINDER_SKIPPED ?
						 "tick" : event_name)));
	if (g->events[event].kind != LC_KIND_CALL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event \"%s\" of workflow \"%s\" cannot be signalled", event_name,
						g->name),
				 errdetail("It is fired by the lifecycle clock, not called.")));
	if (g->events[event].role != NULL && strcmp(g->events[event].role, "admin") == 0)
	{
		Oid			actor = get_role_oid(acting_actor(), false);
		Oid			admin = get_role_oid("lifecycle_admin", false);

		if (!has_privs_of_role(actor, admin))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("event \"%s\" of workflow \"%s\" is for administrators",
							event_name, g->name),
					 errhint("Signal it as a member of lifecycle_admin.")));
	}
	return event;
}

/*
 * Raise 42704 for an instance that does not exist (or was erased).  The
 * subject and key are the caller's data: named, never echoed.
 */
void
api_instance_not_found(const char *tenant, const char *workflow)
{
	if (strcmp(workflow, LC_USER_WORKFLOW) == 0)
		api_not_found(tenant);
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("instance does not exist"),
			 errdetail("Tenant \"%s\" has no live instance of workflow \"%s\" with that subject and key.",
					   tenant, workflow),
			 errhint("Use lifecycle_start() to start one.")));
}

/*
 * Does a call on this instance first fire its due timers?  A signal does
 * (lifecycle_signal(), of any workflow): the event applies to the state
 * the instance is in on the lifecycle clock, not to the one a late worker
 * left it in (so an overdue request cannot be extended while the worker
 * is late: lateness never extends a deadline).  The user lifecycle's
 * named functions (lifecycle_touch() and the others) keep 0.2.0's rule:
 * they act on the state as stored, and the worker catches up after.
 */
static bool
api_fires_due(const LcUserRow *row, bool signal, TimestampTz now)
{
	return signal && row->next_at != 0 && row->next_at <= now;
}

/*
 * Apply an event to the live instance (tenant, subject, workflow, key):
 * the machine decides in the graph of the instance's own workflow
 * version, store_apply() writes it.  A signal first fires the instance's
 * due timers (api_fires_due()).  signal: a lifecycle_signal() call
 * (api_instance_event_id() checks the event and the role).  Returns the
 * new state; *evidence gets the erasure evidence id; *graph the graph the
 * state is of.
 */
LcState
api_instance_event(const char *tenant, const char *subject,
				   const char *workflow, const char *key,
				   const char *event_name, const char *reason, bool signal,
				   int64 *evidence, const LcGraph **graph)
{
	const char *actor;
	LcUserRow	row;
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	change;
	LcEvent		event = LC_EV_NONE;
	TimestampTz now;
	bool		user = strcmp(workflow, LC_USER_WORKFLOW) == 0;

	SPI_connect();
	acting_check_tenant(tenant);
	now = clock_now();

	/*
	 * Touch first looks without a lock (one indexed read; clock and grants
	 * come from cache.c): most touches change nothing.  A signal looks
	 * first anyway, for the graph its event is checked against.
	 */
	if (user)
	{
		*graph = cache_graph(LC_USER_WORKFLOW, 1);
		event = api_instance_event_id(*graph, event_name, signal);
	}
	if (!user || machine_event_may_touch(*graph, event))
	{
		if (!store_instance_lookup(tenant, subject, workflow, key, false, &row))
			api_instance_not_found(tenant, workflow);
		*graph = row.graph;
		event = api_instance_event_id(row.graph, event_name, signal);
		if (machine_event_may_touch(row.graph, event))
		{
			policy = policy_get(row.policy, row.policy_version);
			machine_apply(policy, &row.user, event, now, &o);
			if (o.allowed && o.noop && !api_fires_due(&row, signal, now))
			{
				SPI_finish();
				return row.user.state;
			}
		}
	}

	actor = acting_actor();
	if (!store_instance_lookup(tenant, subject, workflow, key, true, &row))
		api_instance_not_found(tenant, workflow);
	now = clock_now_precise();	/* the row is locked: when it takes effect */
	if (api_fires_due(&row, signal, now) && !engine_fire_due(&row, now))
		api_instance_not_found(tenant, workflow);
	if (row.graph != *graph)
		event = api_instance_event_id(row.graph, event_name, signal);
	*graph = row.graph;
	policy = policy_get(row.policy, row.policy_version);
	machine_apply(policy, &row.user, event, now, &o);
	if (!o.allowed)
		api_refuse(&row, event, &o);
	if (o.noop)
	{
		SPI_finish();
		return row.user.state;
	}

	engine_change(&change, &row, policy, event, &o, 0);
	if (reason != NULL)
	{
		StringInfoData detail;

		initStringInfo(&detail);
		appendStringInfoString(&detail, "{\"reason\": ");
		escape_json(&detail, reason);
		appendStringInfoChar(&detail, '}');
		change.detail = detail.data;
	}
	store_apply(&change, 1, now, actor);
	*evidence = engine_effects(&row, policy, &o, reason, actor, now);
	SPI_finish();
	return o.to;
}

/*
 * The common shape of register, touch, complete, restore, archive.
 */
Datum
api_simple_event(FunctionCallInfo fcinfo, const char *event)
{
	int64		evidence = 0;
	const LcGraph *g;
	LcState		st = api_event(fcinfo, event, NULL, &evidence, &g);

	PG_RETURN_DATUM(api_state_datum(fcinfo, g, st));
}

/*
 * lifecycle_invite(subject, email, tenant, policy, region, attrs) -> id
 */
Datum
lifecycle_invite(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *email = args_text_arg(fcinfo, 1, "email", LC_MAX_EMAIL);
	char	   *tenant = args_text_arg(fcinfo, 2, "tenant", LC_MAX_TENANT);
	char	   *policy_name = args_text_arg(fcinfo, 3, "policy", NAMEDATALEN - 1);
	char	   *region = args_opt_text_arg(fcinfo, 4, "region", LC_MAX_REGION);
	Jsonb	   *attrs;
	const char *actor = acting_actor();
	LcInvite	inv;
	LcPolicy   *policy;
	LcUserRow	row;
	LcOutcome	o;
	TimestampTz now;
	int			version;
	int64		id;
	LcEvent		invite;
	bool		others = false;

	attrs = args_attrs_arg(fcinfo, 5);
	args_check_email(email);

	SPI_connect();
	acting_check_tenant(tenant);
	now = clock_now_precise();

	version = policy_latest(policy_name);
	policy = policy_get(policy_name, version);
	api_user_policy(policy);

	memset(&inv, 0, sizeof(inv));
	inv.tenant = tenant;
	inv.subject = subject;
	inv.email = email;
	inv.attrs = attrs;
	inv.region = region;
	inv.policy = policy_name;
	inv.policy_version = version;
	inv.channel = policy->channel;
	invite = machine_event_from_name(policy->graph, "invite");
	{
		LcUser		none = {.state = LC_STATE_NONE};

		machine_apply(policy, &none, invite, now, &o);
		inv.next_at = o.next_at;
		inv.next_event = machine_event_name(policy->graph, o.next_event);
		inv.state = machine_state_name(policy->graph, o.to);
		inv.event = machine_event_name(policy->graph, invite);
		inv.message = machine_message_name(policy->graph, o.message);
		inv.deadline_at = o.deadline_at;
		inv.deadline_event = o.deadline_event;
	}

	/*
	 * Insert first: a new subject costs one statement.  On conflict the
	 * subject exists; lock it and let the machine decide (an erasure
	 * between the two frees the name: insert again).
	 */
	for (int attempt = 0; attempt < 2; attempt++)
	{
		id = store_user_insert(&inv, now, actor, &others);
		if (id != 0)
		{
			/* the user lifecycle of a held subject starts held */
			if (others)
				api_hold_new_instance(tenant, subject, id, actor);
			SPI_finish();
			PG_RETURN_INT64(id);
		}
		if (!store_user_lookup(tenant, subject, true, &row))
			continue;
		now = clock_now_precise();	/* locked */

		{
			LcPolicy   *cur = policy_get(row.policy, row.policy_version);
			LcChange	change;

			machine_apply(cur, &row.user, invite, now, &o);
			if (!o.allowed)
				api_refuse(&row, invite, &o);
			if (o.noop)
			{
				SPI_finish();
				PG_RETURN_INT64(row.id);
			}
			/* Expired: invited again with the policy and address given. */
			store_user_reinvite(&row, &inv);
			machine_apply(policy, &row.user, invite, now, &o);
			engine_change(&change, &row, policy, invite, &o, 0);
			store_apply(&change, 1, now, actor);
			SPI_finish();
			PG_RETURN_INT64(row.id);
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("subject was invited and erased concurrently"),
			 errhint("Retry the call.")));
	PG_RETURN_NULL();
}

/* lifecycle_register(subject, tenant) -> state */
Datum
lifecycle_register(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, "register");
}

/* lifecycle_touch(subject, tenant) -> state */
Datum
lifecycle_touch(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, "touch");
}

/* lifecycle_complete(subject, tenant) -> state */
Datum
lifecycle_complete(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, "complete");
}

/* lifecycle_restore(subject, tenant) -> state */
Datum
lifecycle_restore(PG_FUNCTION_ARGS)
{
	return api_simple_event(fcinfo, "restore");
}

/*
 * lifecycle_erase(subject, tenant, reason) -> evidence id
 *
 * Subject-wide: every live instance of the subject, of every workflow,
 * takes its workflow's reserved erase edge at once (all or none: one
 * instance on legal hold refuses the call with its own 55000; a hold
 * whose end has passed has lapsed: its hold_lapse is written first).
 * The subject's instances are read again once locked, so an instance
 * started while the call waited for their locks is erased too.  The
 * transitions are one statement, each instance's erase hook runs as its
 * policy binds it, then the personal data of all of them goes in one
 * statement that cancels their pending messages and writes one evidence
 * row per instance.  Returns the evidence id of the user lifecycle, or,
 * for a subject without one, of its first instance (lowest id).
 */
Datum
lifecycle_erase(PG_FUNCTION_ARGS)
{
	char	   *reason = args_text_arg(fcinfo, 2, "reason", LC_MAX_REASON);
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	const char *actor;
	LcUserRow  *rows;
	LcPolicy  **policies;
	LcOutcome  *outcomes;
	LcChange   *changes;
	TimestampTz now;
	StringInfoData detail;
	int64		evidence;
	int			n;
	bool		lapsed;

	SPI_connect();
	acting_check_tenant(tenant);
	actor = acting_actor();
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	/* again, now locked: an instance started meanwhile is erased too */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	now = clock_now_precise();	/* locked: when it takes effect */

	/*
	 * A hold whose end has passed has lapsed, written or not: its lapse is
	 * written first, as the worker writes it, then the rows read again.
	 */
	lapsed = false;
	for (int i = 0; i < n; i++)
		if (engine_fire_lapse(&rows[i], now))
			lapsed = true;
	if (lapsed)
		n = store_subject_instances(tenant, subject, &rows);

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"reason\": ");
	escape_json(&detail, reason);
	appendStringInfoChar(&detail, '}');

	policies = palloc(sizeof(LcPolicy *) * n);
	outcomes = palloc(sizeof(LcOutcome) * n);
	changes = palloc(sizeof(LcChange) * n);
	for (int i = 0; i < n; i++)
	{
		policies[i] = policy_get(rows[i].policy, rows[i].policy_version);
		machine_apply(policies[i], &rows[i].user, LC_EV_ERASE, now,
					  &outcomes[i]);
		if (!outcomes[i].allowed)
			api_refuse(&rows[i], LC_EV_ERASE, &outcomes[i]);
		engine_change(&changes[i], &rows[i], policies[i], LC_EV_ERASE,
					  &outcomes[i], 0);
		changes[i].detail = detail.data;
	}
	store_apply(changes, n, now, actor);
	evidence = engine_erase_effects(rows, policies, outcomes, n, reason,
									actor, now);
	SPI_finish();
	PG_RETURN_INT64(evidence);
}

/*
 * lifecycle_now() -> now on the lifecycle clock
 */
Datum
lifecycle_now(PG_FUNCTION_ARGS)
{
	TimestampTz now;

	SPI_connect();
	now = clock_now();
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(now);
}

