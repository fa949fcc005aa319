/*-------------------------------------------------------------------------
 *
 * adopt.c
 *	  lifecycle_adopt(): bring an application's existing accounts under a
 *	  policy in one statement.
 *
 * The accounts relation is named by OID (regclass), locked, and checked
 * here: its kind, its columns (subject, email, last_seen required; region,
 * attrs, registered optional: 42703) and the caller's SELECT privilege
 * (42501).  store_bulk_adopt() then reads it as the caller, validates
 * every row and inserts the users and their history rows with one
 * INSERT ... SELECT; lifecycle._adopt_problem() is the per-row check it
 * calls.
 *
 * Registered accounts become active with last_seen as given (a future
 * last_seen counts as the call time); never-registered ones become
 * expired as of the call.  A dormancy already past is armed at the call
 * time, or spread evenly over "spread", so the first tick sends the
 * archive notice and the user gets the full grace after it.
 *
 * IDENTIFICATION
 *	  src/adopt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "machine.h"
#include "policy.h"
#include "store_bulk.h"

PG_FUNCTION_INFO_V1(lifecycle_adopt);
PG_FUNCTION_INFO_V1(lifecycle_adopt_problem);

static const char *adopt_problem_text(int problem);
static AttrNumber adopt_column(Oid relid, const char *relname,
							   const char *column, bool required);
static bool adopt_blank(const char *s);

/*
 * The reason a bad row is refused, for the error message (never the
 * row's values).
 */
static const char *
adopt_problem_text(int problem)
{
	switch (problem)
	{
		case LC_ADOPT_SUBJECT_NULL:
			return "subject is null";
		case LC_ADOPT_SUBJECT_EMPTY:
			return "subject is empty";
		case LC_ADOPT_SUBJECT_LONG:
			return "subject is too long";
		case LC_ADOPT_EMAIL_NULL:
			return "email is null";
		case LC_ADOPT_EMAIL_BAD:
			return "malformed e-mail address";
		case LC_ADOPT_REGION_BAD:
			return "region is empty or too long";
		case LC_ADOPT_ATTRS_BAD:
			return "attrs is not a JSON object";
		case LC_ADOPT_ATTRS_LARGE:
			return "attrs is too large";
		case LC_ADOPT_LAST_SEEN_BAD:
			return "last_seen is not a finite time";
		case LC_ADOPT_DUPLICATE:
			return "its subject repeats the subject of an earlier row";
		default:
			return "it is malformed";
	}
}

/*
 * True when s is empty or only white space.
 */
static bool
adopt_blank(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!isspace((unsigned char) *p))
			return false;
	return true;
}

/*
 * The attribute number of a column of the accounts relation; a missing
 * required column is 42703, a missing optional one InvalidAttrNumber.
 */
static AttrNumber
adopt_column(Oid relid, const char *relname, const char *column,
			 bool required)
{
	AttrNumber	att = get_attnum(relid, column);

	if (att == InvalidAttrNumber && required)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %s does not exist",
						column, relname),
				 errhint("The accounts relation needs the columns subject, email and last_seen; region, attrs and registered are optional.")));
	return att;
}

/*
 * lifecycle_adopt(accounts, tenant, policy, spread)
 *	   -> table(adopted bigint, skipped bigint)
 */
Datum
lifecycle_adopt(PG_FUNCTION_ARGS)
{
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	char	   *policy_name = args_text_arg(fcinfo, 2, "policy", NAMEDATALEN - 1);
	Interval   *spread = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	static const char *const columns[] = {"subject", "email", "last_seen",
	"region", "attrs", "registered"};
	AttrNumber	atts[lengthof(columns)];
	Oid			relid;
	char	   *relname;
	HeapTuple	reltup;
	char		relkind;
	Oid			caller;
	LcAdoptSpec spec;
	LcAdoptResult res;
	LcPolicy   *policy;
	LcUser		user;
	TimestampTz at;
	LcEvent		ev;
	const LcGraph *g;
	const LcGraphTimer *timer;
	int			version;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("accounts must not be null")));
	relid = PG_GETARG_OID(0);
	if (spread != NULL)
	{
		Interval	zero;

		memset(&zero, 0, sizeof(zero));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  IntervalPGetDatum(spread),
											  IntervalPGetDatum(&zero))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("spread must be a positive interval"),
					 errhint("Pass NULL to arm every due timer at once.")));
	}

	/*
	 * Lock the relation before looking at it, so that it cannot change or
	 * go away between these checks and the statement.
	 */
	LockRelationOid(relid, AccessShareLock);
	reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(reltup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	relkind = ((Form_pg_class) GETSTRUCT(reltup))->relkind;
	ReleaseSysCache(reltup);
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
		relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("accounts must be a table or a view: %s is not", relname)));

	for (int i = 0; i < lengthof(columns); i++)
		atts[i] = adopt_column(relid, relname, columns[i], i < 3);

	/*
	 * The caller must be able to read what adoption reads (the statement
	 * runs as the caller, so the executor would refuse too; this names the
	 * relation and the call).
	 */
	caller = get_role_oid(acting_actor(), false);
	if (pg_class_aclcheck(relid, caller, ACL_SELECT) != ACLCHECK_OK)
	{
		for (int i = 0; i < lengthof(columns); i++)
			if (atts[i] != InvalidAttrNumber &&
				pg_attribute_aclcheck(relid, atts[i], caller,
									  ACL_SELECT) != ACLCHECK_OK)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied for relation %s", relname),
						 errdetail("Role \"%s\" may not read column \"%s\".",
								   acting_actor(), columns[i]),
						 errhint("lifecycle_adopt() reads the accounts with the caller's privileges: GRANT SELECT on it.")));
	}

	SPI_connect();
	acting_check_tenant(tenant);
	version = policy_latest(policy_name);
	policy = policy_get(policy_name, version);
	api_user_policy(policy);

	memset(&spec, 0, sizeof(spec));
	spec.relid = relid;
	spec.has_region = atts[3] != InvalidAttrNumber;
	spec.has_attrs = atts[4] != InvalidAttrNumber;
	spec.has_registered = atts[5] != InvalidAttrNumber;
	spec.caller = caller;
	spec.tenant = tenant;
	spec.policy = policy_name;
	spec.policy_version = version;
	spec.now = clock_now();
	spec.actor = acting_actor();
	spec.spread = spread;

	/*
	 * The machine names the timers and deadlines; an active user's falls
	 * due at last_seen + dormant_after, which the statement computes per
	 * row.  An adopted user's first deadline is the timer adoption arms.
	 */
	memset(&user, 0, sizeof(user));
	g = policy->graph;
	user.state = machine_state_from_name(g, "active");
	user.state_since = user.state_due_at = user.last_seen = spec.now;
	machine_next_timer(policy, &user, &at, &ev);
	spec.active_state = machine_state_name(g, user.state);
	spec.active_event = machine_event_name(g, ev);
	(void) machine_deadline(policy, &user, &spec.active_deadline_event);
	timer = &g->states[user.state].timer;
	Assert(timer->present && timer->anchor == LC_ANCHOR_LAST_SEEN &&
		   timer->after.n_terms == 1);
	spec.dormant_after = timer->after.terms[0].param >= 0 ?
		&policy->params.v[timer->after.terms[0].param].value :
		&timer->after.terms[0].literal;
	user.state = machine_state_from_name(g, "expired");
	user.last_seen = 0;
	machine_next_timer(policy, &user, &spec.expired_next_at, &ev);
	spec.expired_state = machine_state_name(g, user.state);
	spec.expired_event = machine_event_name(g, ev);
	(void) machine_deadline(policy, &user, &spec.expired_deadline_event);

	store_bulk_adopt(&spec, &res);
	if (res.first_bad != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row " INT64_FORMAT " of %s cannot be adopted: %s",
						res.first_bad, relname, adopt_problem_text(res.problem)),
				 errdetail("Rows are counted from 1 in the order the relation is read. Nothing was adopted."),
				 errhint("Correct or exclude the row (a view over the table can filter it), then call lifecycle_adopt() again.")));
	SPI_finish();

	InitMaterializedSRF(fcinfo, 0);
	values[0] = Int64GetDatum(res.adopted);
	values[1] = Int64GetDatum(res.rows - res.adopted);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * lifecycle._adopt_problem(subject, email, region, attrs, last_seen)
 *	   -> 0, or the LcAdoptProblem of the row
 *
 * The per-row check of the adoption statement: the same limits as
 * lifecycle_invite()'s arguments, without raising, so that the statement
 * can name the first bad row.
 */
Datum
lifecycle_adopt_problem(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_INT32(LC_ADOPT_SUBJECT_NULL);
	{
		text	   *t = PG_GETARG_TEXT_PP(0);
		char	   *s;

		if (VARSIZE_ANY_EXHDR(t) > LC_MAX_SUBJECT)
			PG_RETURN_INT32(LC_ADOPT_SUBJECT_LONG);
		s = text_to_cstring(t);
		if (adopt_blank(s))
			PG_RETURN_INT32(LC_ADOPT_SUBJECT_EMPTY);
	}
	if (PG_ARGISNULL(1))
		PG_RETURN_INT32(LC_ADOPT_EMAIL_NULL);
	{
		text	   *t = PG_GETARG_TEXT_PP(1);

		if (VARSIZE_ANY_EXHDR(t) > LC_MAX_EMAIL ||
			!args_email_valid(text_to_cstring(t)))
			PG_RETURN_INT32(LC_ADOPT_EMAIL_BAD);
	}
	if (!PG_ARGISNULL(2))
	{
		text	   *t = PG_GETARG_TEXT_PP(2);

		if (VARSIZE_ANY_EXHDR(t) > LC_MAX_REGION ||
			adopt_blank(text_to_cstring(t)))
			PG_RETURN_INT32(LC_ADOPT_REGION_BAD);
	}
	if (!PG_ARGISNULL(3))
	{
		Jsonb	   *attrs = PG_GETARG_JSONB_P(3);

		if (!JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
			PG_RETURN_INT32(LC_ADOPT_ATTRS_BAD);
		if (VARSIZE(attrs) > LC_MAX_ATTRS)
			PG_RETURN_INT32(LC_ADOPT_ATTRS_LARGE);
	}
	if (!PG_ARGISNULL(4) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(4)))
		PG_RETURN_INT32(LC_ADOPT_LAST_SEEN_BAD);
	PG_RETURN_INT32(LC_ADOPT_OK);
}
