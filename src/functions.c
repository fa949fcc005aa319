/*-------------------------------------------------------------------------
 *
 * functions.c
 *	  The SQL-callable functions: argument checks, then the machine, then
 *	  store.c and engine.c.
 *
 * Each function checks its arguments (NULL: 22004; empty or malformed:
 * 22023), finds the subject (unknown: 42704), asks the machine (not
 * allowed: 55000 with a HINT naming the call that would work) and writes
 * the outcome with store_apply(), the same code the worker uses.
 *
 * IDENTIFICATION
 *	  src/functions.c
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
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "clock.h"
#include "engine.h"
#include "functions.h"
#include "guc.h"
#include "machine.h"
#include "policy.h"
#include "store.h"

/* Limits on what a caller may store. */
#define LC_MAX_SUBJECT	256
#define LC_MAX_TENANT	63
#define LC_MAX_REGION	63
#define LC_MAX_EMAIL	254
#define LC_MAX_REASON	1000
#define LC_MAX_ATTRS	8192

PG_FUNCTION_INFO_V1(lifecycle_invite);
PG_FUNCTION_INFO_V1(lifecycle_register);
PG_FUNCTION_INFO_V1(lifecycle_touch);
PG_FUNCTION_INFO_V1(lifecycle_complete);
PG_FUNCTION_INFO_V1(lifecycle_restore);
PG_FUNCTION_INFO_V1(lifecycle_archive);
PG_FUNCTION_INFO_V1(lifecycle_erase);
PG_FUNCTION_INFO_V1(lifecycle_hold);
PG_FUNCTION_INFO_V1(lifecycle_release);
PG_FUNCTION_INFO_V1(lifecycle_define_policy_internal);
PG_FUNCTION_INFO_V1(lifecycle_tick);
PG_FUNCTION_INFO_V1(lifecycle_travel);
PG_FUNCTION_INFO_V1(lifecycle_now);
PG_FUNCTION_INFO_V1(lifecycle_check_tenant);
PG_FUNCTION_INFO_V1(lifecycle_tenant_visible);
PG_FUNCTION_INFO_V1(lifecycle_machine_step);

/* lifecycle._tenant_visible()'s answers within one statement. */
typedef struct FnVisibleCache
{
	char		actor[NAMEDATALEN];
	bool		superuser;
	int			n;
	char	   *tenants[64];
	bool		visible[64];
} FnVisibleCache;

static char *fn_opt_text_arg(FunctionCallInfo fcinfo, int argno,
							 const char *name, int maxlen);
static void fn_check_email(const char *email);
static const char *fn_actor(void);
static void fn_check_tenant(const char *actor, const char *tenant);
static void fn_find(const char *tenant, const char *subject, bool for_update,
					LcUserRow *row);
static void fn_refuse(const LcUserRow *row, LcEvent event,
					  const LcOutcome *o);
static Datum fn_state_datum(FunctionCallInfo fcinfo, LcState state);
static LcState fn_event(FunctionCallInfo fcinfo, LcEvent event,
						const char *reason, int64 *evidence);
static Datum fn_simple_event(FunctionCallInfo fcinfo, LcEvent event);
static void fn_check_hook_owner(LcPolicy *p);

/*
 * A required text argument: not NULL (22004), not empty or blank, not
 * longer than maxlen bytes (22023).
 */
char *
fn_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, int maxlen)
{
	char	   *s;
	bool		blank = true;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (const char *p = s; *p; p++)
		if (!isspace((unsigned char) *p))
			blank = false;
	if (blank)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name)));
	if (strlen(s) > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", name),
				 errdetail("The limit is %d bytes; this one has %zu.",
						   maxlen, strlen(s))));
	return s;
}

/*
 * An optional text argument: NULL stays NULL, otherwise as fn_text_arg.
 */
static char *
fn_opt_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				int maxlen)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return fn_text_arg(fcinfo, argno, name, maxlen);
}

/*
 * A deliberately plain check of an e-mail address: local@domain.tld,
 * printable, no spaces, at most 254 bytes.
 */
static void
fn_check_email(const char *email)
{
	const char *at = strchr(email, '@');
	const char *dot;
	bool		ok = true;

	for (const char *p = email; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == '<' || *p == '>' ||
			*p == ',' || *p == ';' || *p == '"' || *p == '\\' || *p == 0x7f)
			ok = false;
	if (at == NULL || at == email || strchr(at + 1, '@') != NULL)
		ok = false;
	else
	{
		dot = strrchr(at + 1, '.');
		if (dot == NULL || dot == at + 1 || dot[1] == '\0' ||
			strstr(at + 1, "..") != NULL)
			ok = false;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("malformed e-mail address \"%s\"", email),
				 errhint("Expected an address such as name@example.com.")));
}

/*
 * Who is acting: the role set with SET ROLE, else the session user (the
 * functions are SECURITY DEFINER, so current_user is the owner).
 */
static const char *
fn_actor(void)
{
	const char *role = GetConfigOption("role", false, false);

	if (role != NULL && strcmp(role, "none") != 0 && role[0] != '\0')
		return role;
	return GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * Refuse (42501) when the acting role (NULL: find it) is limited to other
 * tenants.
 */
static void
fn_check_tenant(const char *actor, const char *tenant)
{
	Oid			roleid;

	/* No grant at all (the common case): nobody is limited. */
	if (!cache_tenant_grants_exist())
		return;
	if (actor == NULL)
		actor = fn_actor();
	roleid = get_role_oid(actor, true);
	if (OidIsValid(roleid) && superuser_arg(roleid))
		return;
	if (!cache_tenant_allowed(roleid, tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not act on tenant \"%s\"", actor, tenant),
				 errhint("See lifecycle.tenant_grants.")));
}

/*
 * Find a subject or raise 42704.
 */
static void
fn_find(const char *tenant, const char *subject, bool for_update,
		LcUserRow *row)
{
	if (!store_user_lookup(tenant, subject, for_update, row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("subject \"%s\" of tenant \"%s\" does not exist",
						subject, tenant),
				 errhint("Use lifecycle_invite() to start a lifecycle.")));
}

/*
 * Raise 55000 for an event the graph does not allow.
 */
static void
fn_refuse(const LcUserRow *row, LcEvent event, const LcOutcome *o)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s subject \"%s\": it is %s%s",
					machine_event_name(event), row->subject,
					machine_state_name(row->user.state),
					row->user.held ? " and on legal hold" : ""),
			 errhint("%s", o->hint)));
}

/*
 * A lifecycle.state value for the function's declared result type.
 */
static Datum
fn_state_datum(FunctionCallInfo fcinfo, LcState state)
{
	Oid			typoid = get_fn_expr_rettype(fcinfo->flinfo);

	return DirectFunctionCall2(enum_in,
							   CStringGetDatum(machine_state_name(state)),
							   ObjectIdGetDatum(typoid));
}

/*
 * Apply an application or admin event to (subject, tenant) given as
 * arguments 0 and 1.  Returns the new state; *evidence gets the erasure
 * evidence id.
 */
static LcState
fn_event(FunctionCallInfo fcinfo, LcEvent event, const char *reason,
		 int64 *evidence)
{
	char	   *subject = fn_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = fn_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	const char *actor;
	LcUserRow	row;
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	change;
	TimestampTz now;

	SPI_connect();
	fn_check_tenant(NULL, tenant);
	now = clock_now();

	/*
	 * Touch first looks without a lock (one indexed read; clock and grants
	 * come from cache.c): most touches change nothing.
	 */
	if (event == LC_EV_TOUCH)
	{
		if (!store_user_lookup(tenant, subject, false, &row))
			fn_find(tenant, subject, false, &row);	/* 42704 */
		policy = policy_get(row.policy, row.policy_version);
		machine_apply(policy, &row.user, event, now, &o);
		if (o.allowed && o.noop)
		{
			SPI_finish();
			return row.user.state;
		}
	}

	actor = fn_actor();
	fn_find(tenant, subject, true, &row);
	policy = policy_get(row.policy, row.policy_version);
	machine_apply(policy, &row.user, event, now, &o);
	if (!o.allowed)
		fn_refuse(&row, event, &o);
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
static Datum
fn_simple_event(FunctionCallInfo fcinfo, LcEvent event)
{
	int64		evidence = 0;
	LcState		st = fn_event(fcinfo, event, NULL, &evidence);

	PG_RETURN_DATUM(fn_state_datum(fcinfo, st));
}

/*
 * lifecycle_invite(subject, email, tenant, policy, region, attrs) -> id
 */
Datum
lifecycle_invite(PG_FUNCTION_ARGS)
{
	char	   *subject = fn_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *email = fn_text_arg(fcinfo, 1, "email", LC_MAX_EMAIL);
	char	   *tenant = fn_text_arg(fcinfo, 2, "tenant", LC_MAX_TENANT);
	char	   *policy_name = fn_text_arg(fcinfo, 3, "policy", NAMEDATALEN - 1);
	char	   *region = fn_opt_text_arg(fcinfo, 4, "region", LC_MAX_REGION);
	Jsonb	   *attrs;
	const char *actor = fn_actor();
	LcInvite	inv;
	LcPolicy   *policy;
	LcUserRow	row;
	LcOutcome	o;
	TimestampTz now;
	int			version;
	int64		id;

	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("attrs must not be null"),
				 errhint("Pass '{}' for no attributes.")));
	attrs = PG_GETARG_JSONB_P(5);
	if (!JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attrs must be a JSON object")));
	if (VARSIZE(attrs) > LC_MAX_ATTRS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attrs is too large"),
				 errdetail("The limit is %d bytes; this one has %zu.",
						   LC_MAX_ATTRS, (size_t) VARSIZE(attrs))));
	fn_check_email(email);

	SPI_connect();
	fn_check_tenant(actor, tenant);
	now = clock_now();

	version = cache_policy_latest(policy_name);
	if (version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", policy_name),
				 errhint("Define it with lifecycle_define_policy().")));
	policy = policy_get(policy_name, version);

	memset(&inv, 0, sizeof(inv));
	inv.tenant = tenant;
	inv.subject = subject;
	inv.email = email;
	inv.attrs = attrs;
	inv.region = region;
	inv.policy = policy_name;
	inv.policy_version = version;
	inv.channel = policy->channel;
	machine_next_timer(policy, LC_INVITED, now, 0, 0, false, 0,
					   &inv.next_at, &inv.next_event);

	/*
	 * Insert first: a new subject costs one statement.  On conflict the
	 * subject exists; lock it and let the machine decide (an erasure
	 * between the two frees the name: insert again).
	 */
	for (int attempt = 0; attempt < 2; attempt++)
	{
		id = store_user_insert(&inv, now, actor);
		if (id != 0)
		{
			SPI_finish();
			PG_RETURN_INT64(id);
		}
		if (!store_user_lookup(tenant, subject, true, &row))
			continue;

		{
			LcPolicy   *cur = policy_get(row.policy, row.policy_version);
			LcChange	change;

			machine_apply(cur, &row.user, LC_EV_INVITE, now, &o);
			if (!o.allowed)
				fn_refuse(&row, LC_EV_INVITE, &o);
			if (o.noop)
			{
				SPI_finish();
				PG_RETURN_INT64(row.id);
			}
			/* Expired: invited again with the policy and address given. */
			store_user_reinvite(&row, &inv);
			machine_apply(policy, &row.user, LC_EV_INVITE, now, &o);
			engine_change(&change, &row, policy, LC_EV_INVITE, &o, 0);
			store_apply(&change, 1, now, actor);
			SPI_finish();
			PG_RETURN_INT64(row.id);
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("subject \"%s\" was invited and erased concurrently", subject),
			 errhint("Retry the call.")));
	PG_RETURN_NULL();
}

/* lifecycle_register(subject, tenant) -> state */
Datum
lifecycle_register(PG_FUNCTION_ARGS)
{
	return fn_simple_event(fcinfo, LC_EV_REGISTER);
}

/* lifecycle_touch(subject, tenant) -> state */
Datum
lifecycle_touch(PG_FUNCTION_ARGS)
{
	return fn_simple_event(fcinfo, LC_EV_TOUCH);
}

/* lifecycle_complete(subject, tenant) -> state */
Datum
lifecycle_complete(PG_FUNCTION_ARGS)
{
	return fn_simple_event(fcinfo, LC_EV_COMPLETE);
}

/* lifecycle_restore(subject, tenant) -> state */
Datum
lifecycle_restore(PG_FUNCTION_ARGS)
{
	return fn_simple_event(fcinfo, LC_EV_RESTORE);
}

/* lifecycle_archive(subject, tenant) -> state */
Datum
lifecycle_archive(PG_FUNCTION_ARGS)
{
	return fn_simple_event(fcinfo, LC_EV_ARCHIVE);
}

/*
 * lifecycle_erase(subject, tenant, reason) -> evidence id
 */
Datum
lifecycle_erase(PG_FUNCTION_ARGS)
{
	char	   *reason = fn_text_arg(fcinfo, 2, "reason", LC_MAX_REASON);
	int64		evidence = 0;

	(void) fn_event(fcinfo, LC_EV_ERASE, reason, &evidence);
	PG_RETURN_INT64(evidence);
}

/*
 * lifecycle_hold(subject, tenant, reason, until): place a legal hold.  No
 * timer fires while it lasts; at "until" (lifecycle clock) it lapses.
 */
Datum
lifecycle_hold(PG_FUNCTION_ARGS)
{
	char	   *subject = fn_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = fn_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	char	   *reason = fn_text_arg(fcinfo, 2, "reason", LC_MAX_REASON);
	TimestampTz until = PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3);
	const char *actor = fn_actor();
	LcUserRow	row;
	LcPolicy   *policy;
	LcChange	c;
	TimestampTz now;
	StringInfoData detail;

	if (!PG_ARGISNULL(3) && TIMESTAMP_NOT_FINITE(until))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be a finite time"),
				 errhint("Pass NULL for a hold without end.")));

	SPI_connect();
	fn_check_tenant(actor, tenant);
	now = clock_now();
	if (until != 0 && until <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must lie in the future of the lifecycle clock"),
				 errdetail("lifecycle_now() is %s.", timestamptz_to_str(now))));
	fn_find(tenant, subject, true, &row);
	if (row.user.state == LC_ERASED)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("subject \"%s\" of tenant \"%s\" does not exist",
						subject, tenant)));
	policy = policy_get(row.policy, row.policy_version);

	memset(&c, 0, sizeof(c));
	c.id = row.id;
	c.ctid = row.ctid;
	c.from = row.user.state;
	c.to = row.user.state;
	c.state_since = row.user.state_since;
	c.last_seen = row.user.last_seen;
	c.step = row.user.step;
	c.held = true;
	c.hold_reason = reason;
	c.hold_until = until;
	machine_next_timer(policy, row.user.state, row.user.state_since,
					   row.user.last_seen, row.user.step, true, until,
					   &c.next_at, &c.next_event);
	c.event = "hold";
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
	char	   *subject = fn_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = fn_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	const char *actor = fn_actor();
	LcUserRow	row;
	LcPolicy   *policy;
	LcOutcome	o;
	LcChange	c;
	TimestampTz now;

	SPI_connect();
	fn_check_tenant(actor, tenant);
	now = clock_now();
	fn_find(tenant, subject, true, &row);
	if (!row.user.held)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("subject \"%s\" is not on legal hold", subject),
				 errhint("Use lifecycle_hold() to place one.")));
	policy = policy_get(row.policy, row.policy_version);
	machine_apply(policy, &row.user, LC_EV_HOLD_LAPSE, now, &o);
	engine_change(&c, &row, policy, LC_EV_HOLD_LAPSE, &o, 0);
	c.event = "release";
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
fn_check_hook_owner(LcPolicy *p)
{
	const char *actor = fn_actor();
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
					 errmsg("invalid policy: hooks.%s: role \"%s\" does not own function %s",
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
	char	   *name = fn_text_arg(fcinfo, 0, "name", NAMEDATALEN - 1);
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
	 * may not change them (42501, raised by the helper in
	 * sql/src/60_tenants.sql).
	 */
	if (SPI_execute("SELECT lifecycle._check_unlimited('define policies')",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check the tenant limits of the acting role");
	if (store_policy_latest("default", &base) == 0)
		base = policy_builtin_default();
	merged = policy_merge(base, def);
	p = policy_parse(name, 0, merged, schemas, &normalized);
	fn_check_hook_owner(p);
	if (p->channel != NULL && !store_channel_exists(p->channel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", p->channel),
				 errhint("Add it with lifecycle_add_channel().")));
	version = store_policy_insert(name, normalized, clock_now());
	/* This version may roll back: do not let the cache outlive it. */
	policy_cache_reset();
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
	now = clock_travel(by);
	SPI_finish();
	PG_RETURN_TIMESTAMPTZ(now);
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

/*
 * lifecycle._check_tenant(tenant): 42501 unless the acting role may act
 * on the tenant (for the SQL-language functions).
 */
Datum
lifecycle_check_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant = fn_text_arg(fcinfo, 0, "tenant", LC_MAX_TENANT);

	SPI_connect();
	fn_check_tenant(fn_actor(), tenant);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * lifecycle._tenant_visible(tenant) -> may the acting role see rows of
 * this tenant in the views?
 */
Datum
lifecycle_tenant_visible(PG_FUNCTION_ARGS)
{
	FnVisibleCache *cache = (FnVisibleCache *) fcinfo->flinfo->fn_extra;
	const char *actor;
	char	   *tenant;
	Oid			roleid;
	bool		ok;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	actor = fn_actor();
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));

	/*
	 * A view calls this once per row: remember the answers for the rest of
	 * the statement (the FmgrInfo lives as long as the query).
	 */
	if (cache == NULL || strcmp(cache->actor, actor) != 0)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   sizeof(FnVisibleCache));
		strlcpy(cache->actor, actor, NAMEDATALEN);
		roleid = get_role_oid(actor, true);
		cache->superuser = OidIsValid(roleid) && superuser_arg(roleid);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (cache->superuser)
		PG_RETURN_BOOL(true);
	for (int i = 0; i < cache->n; i++)
		if (strcmp(cache->tenants[i], tenant) == 0)
			PG_RETURN_BOOL(cache->visible[i]);

	SPI_connect();
	ok = cache_tenant_allowed(get_role_oid(actor, true), tenant);
	SPI_finish();

	if (cache->n < lengthof(cache->tenants))
	{
		cache->tenants[cache->n] = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, tenant);
		cache->visible[cache->n] = ok;
		cache->n++;
	}
	PG_RETURN_BOOL(ok);
}

/*
 * lifecycle._machine_step(state, event, held, policy) -> the machine's
 * outcome as a record, for tests of the pure state machine.  The times
 * are relative to a fixed epoch so results are stable.
 */
Datum
lifecycle_machine_step(PG_FUNCTION_ARGS)
{
	char	   *state = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *event = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		held = PG_GETARG_BOOL(2);
	char	   *policy_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {0};
	LcUser		user;
	LcOutcome	o;
	LcEvent		ev = LC_EV_NONE;
	LcPolicy   *policy;
	int			version;
	TimestampTz epoch = 0;		/* 2000-01-01 */

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	for (int i = 0; i < LC_NUM_EVENTS; i++)
		if (strcmp(machine_event_name(i), event) == 0 &&
			(strcmp(event, "archive") != 0 || i == LC_EV_ARCHIVE) &&
			(strcmp(event, "erase") != 0 || i == LC_EV_ERASE))
			ev = i;
	if (strcmp(event, "archive_due") == 0)
		ev = LC_EV_ARCHIVE_DUE;
	if (strcmp(event, "erase_due") == 0)
		ev = LC_EV_ERASE_DUE;
	if (ev == LC_EV_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown event \"%s\"", event)));

	if (strcmp(state, "none") != 0)
	{
		bool		known = false;

		for (int i = 0; i < LC_NUM_STATES; i++)
			if (strcmp(machine_state_name(i), state) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown state \"%s\"", state)));
	}

	SPI_connect();
	version = store_policy_latest(policy_name, NULL);
	if (version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", policy_name)));
	policy = policy_get(policy_name, version);

	memset(&user, 0, sizeof(user));
	user.state = strcmp(state, "none") == 0 ? LC_NONE : machine_state_from_name(state);
	user.state_since = epoch;
	user.last_seen = epoch;
	user.held = held;
	machine_apply(policy, &user, ev, epoch + 100 * USECS_PER_DAY, &o);
	SPI_finish();

	values[0] = BoolGetDatum(o.allowed);
	values[1] = BoolGetDatum(o.noop);
	if (o.allowed && !o.noop)
		values[2] = CStringGetTextDatum(machine_state_name(o.to));
	else
		nulls[2] = true;
	if (o.message != LC_MSG_NONE)
		values[3] = CStringGetTextDatum(machine_message_name(o.message));
	else
		nulls[3] = true;
	if (o.hook != LC_HOOK_NONE)
		values[4] = CStringGetTextDatum(policy_hook_name(o.hook));
	else
		nulls[4] = true;
	values[5] = BoolGetDatum(o.erase);
	if (o.next_event != LC_EV_NONE && o.allowed && !o.noop)
		values[6] = CStringGetTextDatum(machine_event_name(o.next_event));
	else
		nulls[6] = true;
	if (o.hint)
		values[7] = CStringGetTextDatum(o.hint);
	else
		nulls[7] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  values, nulls)));
}
