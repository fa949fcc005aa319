/*-------------------------------------------------------------------------
 *
 * update.c
 *	  lifecycle_update() and lifecycle_migrate(): change a live subject's
 *	  personal data (in every instance) or its user lifecycle's policy, and move every running user of a policy to
 *	  a newer version.
 *
 * Both re-arm timers and the retention deadline from the user's existing
 * anchors (state_since, state_due_at, last_seen, the reminders fired so
 * far, the hold) with the machine's own machine_next_timer() and
 * machine_deadline(): a deadline that the new version puts in the past
 * falls due at once and fires at the next tick, through the same
 * transitions (and notices) as any late timer.  Migration is one UPDATE;
 * lifecycle._rearm_at() and _rearm_event() are the machine, called per
 * row from it.
 *
 * IDENTIFICATION
 *	  src/update.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "machine.h"
#include "policy.h"
#include "store.h"
#include "store_bulk.h"

PG_FUNCTION_INFO_V1(lifecycle_update);
PG_FUNCTION_INFO_V1(lifecycle_migrate);
PG_FUNCTION_INFO_V1(lifecycle_rearm_at);
PG_FUNCTION_INFO_V1(lifecycle_rearm_event);

/* The policy version a _rearm_*() call site re-arms with. */
typedef struct UpdateRearmCache
{
	LcPolicy   *policy;
} UpdateRearmCache;

static void update_rearm(FunctionCallInfo fcinfo, TimestampTz *at,
						 const char **ev);

/*
 * lifecycle_update(subject, tenant, email, attrs, region, policy) -> state
 *
 * NULL leaves a field unchanged; attrs replaces the document.  The
 * e-mail, attrs and region are the subject's, shared by every live
 * instance: all of them change.  A policy (even the current one, when a
 * newer version exists) moves the user lifecycle to its latest version;
 * for a subject without a user lifecycle it is refused (22023).  History
 * gets one "update" row per instance that changed, naming the fields,
 * never their values; nothing changed, nothing written.  Returns the
 * user lifecycle's state, else the first instance's.
 */
Datum
lifecycle_update(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	char	   *email = args_opt_text_arg(fcinfo, 2, "email", LC_MAX_EMAIL);
	Jsonb	   *attrs = PG_ARGISNULL(3) ? NULL : args_attrs_arg(fcinfo, 3);
	char	   *region = args_opt_text_arg(fcinfo, 4, "region", LC_MAX_REGION);
	char	   *policy_name = args_opt_text_arg(fcinfo, 5, "policy",
												NAMEDATALEN - 1);
	LcUserRow  *rows;
	LcUserRow  *user = NULL;
	LcUpdateSpec spec;
	int64	   *others;
	int			nothers = 0;
	int			n;
	TimestampTz now;

	if (email != NULL)
		args_check_email(email);

	SPI_connect();
	acting_check_tenant(tenant);
	/* An erased subject has no name any more: 42704. */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	/* again, now locked: an instance started meanwhile is updated too */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	others = palloc(sizeof(int64) * n);
	for (int i = 0; i < n; i++)
	{
		if (i == 0 && strcmp(rows[i].workflow, LC_USER_WORKFLOW) == 0 &&
			rows[i].key[0] == '\0')
			user = &rows[i];
		else
			others[nothers++] = rows[i].id;
	}
	if (user == NULL && policy_name != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("policy applies to the user lifecycle, and the subject has none"),
				 errhint("Pass policy => NULL; lifecycle_migrate_workflow() moves other workflows' instances.")));
	now = clock_now();

	if (user != NULL)
	{
		memset(&spec, 0, sizeof(spec));
		spec.id = user->id;
		spec.state = user->user.state;
		spec.email = email;
		spec.attrs = attrs;
		spec.region = region;
		if (policy_name != NULL)
		{
			int			version = policy_latest(policy_name);

			if (strcmp(policy_name, user->policy) != 0 ||
				version != user->policy_version)
			{
				LcPolicy   *policy = policy_get(policy_name, version);
				LcEvent		next;

				api_user_policy(policy);
				spec.policy = policy_name;
				spec.policy_version = version;
				machine_next_timer(policy, &user->user, &spec.next_at, &next);
				spec.next_event = next == LC_EV_NONE ? NULL :
					machine_event_name(policy->graph, next);
				spec.deadline_at = machine_deadline(policy, &user->user,
													&spec.deadline_event);
			}
		}
		store_bulk_update(&spec, now, acting_actor());
	}
	(void) store_bulk_update_shared(others, nothers, email, attrs, region,
									now, acting_actor());
	SPI_finish();
	if (user != NULL)
		PG_RETURN_DATUM(api_state_datum(fcinfo, user->graph, user->user.state));
	PG_RETURN_DATUM(api_state_datum(fcinfo, rows[0].graph, rows[0].user.state));
}

/*
 * lifecycle_migrate(policy, to_version) -> users moved
 *
 * Admin only, and not for a role limited to some tenants (a policy is
 * shared by every tenant): 42501.
 */
Datum
lifecycle_migrate(PG_FUNCTION_ARGS)
{
	char	   *policy_name = args_text_arg(fcinfo, 0, "policy", NAMEDATALEN - 1);
	int			to_version;
	int			latest;
	TimestampTz earliest;
	int64		moved;

	SPI_connect();
	acting_require_unlimited("migrate policies");
	latest = policy_latest(policy_name);
	if (PG_ARGISNULL(1))
		to_version = latest;
	else
	{
		to_version = PG_GETARG_INT32(1);
		if (to_version < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("to_version must be positive")));
		if (to_version > latest)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("version %d of policy \"%s\" does not exist",
							to_version, policy_name),
					 errhint("The latest version is %d.", latest)));
	}
	/* Parsed once here; the statement's calls find it cached. */
	(void) policy_get(policy_name, to_version);
	moved = store_bulk_migrate(policy_name, to_version, clock_now(),
							   acting_actor(), &earliest);
	SPI_finish();
	PG_RETURN_INT64(moved);
}

/*
 * The timer (what 0) or the deadline (what 1) of one row of
 * lifecycle_migrate()'s UPDATE: arguments (what, policy, version, state,
 * state_since, state_due_at, last_seen, step, held, hold_until), the
 * policy version parsed once per call site.
 */
static void
update_rearm(FunctionCallInfo fcinfo, TimestampTz *at, const char **ev)
{
	UpdateRearmCache *cache = (UpdateRearmCache *) fcinfo->flinfo->fn_extra;
	LcUser		user;
	char	   *state;

	for (int i = 0; i < 10; i++)
		if (PG_ARGISNULL(i) && i != 5 && i != 6 && i != 9)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of the re-arm helper must not be null",
							i + 1)));
	if (cache == NULL)
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));

		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   sizeof(UpdateRearmCache));
		SPI_connect();
		/* Valid to the end of the transaction (cache.c retires, never frees). */
		cache->policy = policy_get(name, PG_GETARG_INT32(2));
		SPI_finish();
		fcinfo->flinfo->fn_extra = cache;
	}
	memset(&user, 0, sizeof(user));
	state = text_to_cstring(PG_GETARG_TEXT_PP(3));
	user.state = machine_state_from_name(cache->policy->graph, state);
	user.state_since = PG_GETARG_TIMESTAMPTZ(4);
	user.state_due_at = PG_ARGISNULL(5) ? 0 : PG_GETARG_TIMESTAMPTZ(5);
	user.last_seen = PG_ARGISNULL(6) ? 0 : PG_GETARG_TIMESTAMPTZ(6);
	user.step = PG_GETARG_INT32(7);
	user.held = PG_GETARG_BOOL(8);
	user.hold_until = PG_ARGISNULL(9) ? 0 : PG_GETARG_TIMESTAMPTZ(9);
	if (PG_GETARG_INT32(0) == 0)
	{
		LcEvent		next;

		machine_next_timer(cache->policy, &user, at, &next);
		*ev = next == LC_EV_NONE ? NULL : machine_event_name(cache->policy->graph, next);
	}
	else
		*at = machine_deadline(cache->policy, &user, ev);
}

/*
 * lifecycle._rearm_at(what, ...) -> the next timer's (0) or the
 * deadline's (1) time, or NULL
 */
Datum
lifecycle_rearm_at(PG_FUNCTION_ARGS)
{
	TimestampTz at;
	const char *ev;

	update_rearm(fcinfo, &at, &ev);
	if (ev == NULL || at == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(at);
}

/*
 * lifecycle._rearm_event(what, ...) -> the next timer's (0) or the
 * deadline's (1) event, or NULL
 */
Datum
lifecycle_rearm_event(PG_FUNCTION_ARGS)
{
	TimestampTz at;
	const char *ev;

	update_rearm(fcinfo, &at, &ev);
	if (ev == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(ev));
}
