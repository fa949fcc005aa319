/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  Parse and validate retention policies.
 *
 * A policy is a JSON document (README.md, "Policies").  Every error a user
 * can cause is SQLSTATE 22023 with the offending key in the message.
 * Versions are immutable once committed, so parsed policies are cached per
 * backend by (name, version), in cache.c with the other caches.
 *
 * IDENTIFICATION
 *	  src/policy.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/regproc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "machine.h"
#include "policy.h"

static const char *const policy_hook_names[LC_NUM_HOOKS] = {
	"archive", "restore", "erase"
};

/* Indexed by LcIntervalKey and LcReminderKey: the keys machine.c names. */
static const char *const policy_interval_names[LC_NUM_INTERVALS] = {
	[LC_IV_INVITE_EXPIRES_AFTER] = "invite_expires_after",
	[LC_IV_DORMANT_AFTER] = "dormant_after",
	[LC_IV_ARCHIVE_AFTER] = "archive_after",
	[LC_IV_ERASE_AFTER] = "erase_after",
	[LC_IV_EXPIRED_ERASE_AFTER] = "expired_erase_after",
	[LC_IV_TOUCH_GRANULARITY] = "touch_granularity",
	[LC_IV_HISTORY_RETENTION] = "history_retention",
	[LC_IV_OUTBOX_RETENTION] = "outbox_retention",
};

static const char *const policy_reminder_names[LC_NUM_REMINDER_KEYS] = {
	[LC_RM_INVITE] = "invite_reminders",
	[LC_RM_ARCHIVE] = "archive_reminders",
};

/* The keys that are neither intervals nor reminders. */
static const char *const policy_other_keys[] = {"channel", "hooks"};

#define POLICY_NUM_KEYS (LC_NUM_INTERVALS + LC_NUM_REMINDER_KEYS + lengthof(policy_other_keys))

static void policy_parse_interval(const char *key, JsonbValue *v, Interval *out);
static int	policy_parse_reminders(const char *key, JsonbValue *v,
								   Interval *out);
static char *policy_resolve_hook(const char *key, const char *fname,
								 List *search_schemas, bool stored, Oid *oid);
static int	policy_interval_cmp(const Interval *a, const Interval *b);
static Interval *policy_try_interval(const char *str);
static const char *policy_key_name(int i);
static List *policy_try_names(const char *str);

/*
 * interval_in, or NULL when the text is not an interval.  interval_in is
 * pure, so its error can be caught and dropped without a subtransaction.
 */
static Interval *
policy_try_interval(const char *str)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Interval   *volatile iv = NULL;

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(str),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		iv = NULL;
	}
	PG_END_TRY();
	return iv;
}

/*
 * A possibly qualified name split into its parts, or NIL when malformed.
 */
static List *
policy_try_names(const char *str)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *volatile names = NIL;

	PG_TRY();
	{
		names = stringToQualifiedNameList(str);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		names = NIL;
	}
	PG_END_TRY();
	return names;
}

/*
 * Name of a hook as in the policy's "hooks" object.
 */
const char *
policy_hook_name(LcHook hook)
{
	Assert(hook >= 0 && hook < LC_NUM_HOOKS);
	return policy_hook_names[hook];
}

/*
 * The i-th key of a policy document: intervals, reminders, the others.
 */
static const char *
policy_key_name(int i)
{
	if (i < LC_NUM_INTERVALS)
		return policy_interval_names[i];
	i -= LC_NUM_INTERVALS;
	if (i < LC_NUM_REMINDER_KEYS)
		return policy_reminder_names[i];
	return policy_other_keys[i - LC_NUM_REMINDER_KEYS];
}

/*
 * Name of an interval key as in the policy document.
 */
const char *
policy_interval_name(LcIntervalKey key)
{
	Assert(key >= 0 && key < LC_NUM_INTERVALS);
	return policy_interval_names[key];
}

/*
 * Name of a reminders key as in the policy document.
 */
const char *
policy_reminder_name(LcReminderKey key)
{
	Assert(key >= 0 && key < LC_NUM_REMINDER_KEYS);
	return policy_reminder_names[key];
}

/*
 * Raise 22023 for an invalid policy, naming the key.
 */
void
policy_invalid(const char *key, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid policy key \"%s\": %s", key, buf.data),
			 errhint("See the \"Policies\" section of the lifecycle README.")));
}

/*
 * interval_cmp without fmgr noise.
 */
static int
policy_interval_cmp(const Interval *a, const Interval *b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp,
											 IntervalPGetDatum(a),
											 IntervalPGetDatum(b)));
}

/*
 * Parse one interval value: a string, positive, under 200 years (so that
 * timestamps computed from it stay in range).
 */
static void
policy_parse_interval(const char *key, JsonbValue *v, Interval *out)
{
	Interval   *iv;
	Interval	zero;
	Interval   *limit;
	char	   *str;

	if (v->type != jbvString)
		policy_invalid(key, "expected an interval string such as \"30 days\"");

	str = pnstrdup(v->val.string.val, v->val.string.len);

	iv = policy_try_interval(str);
	if (iv == NULL)
		policy_invalid(key, "\"%s\" is not an interval", str);

	memset(&zero, 0, sizeof(zero));
	if (policy_interval_cmp(iv, &zero) <= 0 ||
		iv->month < 0 || iv->day < 0 || iv->time < 0)
		policy_invalid(key, "interval \"%s\" must be positive", str);

	limit = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												  CStringGetDatum("200 years"),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	if (policy_interval_cmp(iv, limit) >= 0)
		policy_invalid(key, "interval \"%s\" must be less than 200 years", str);

	*out = *iv;
}

/*
 * Parse an array of reminder intervals; returns how many.
 */
static int
policy_parse_reminders(const char *key, JsonbValue *v, Interval *out)
{
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary ||
		!JsonContainerIsArray(v->val.binary.data) ||
		JsonContainerIsScalar(v->val.binary.data))
		policy_invalid(key, "expected an array of interval strings");

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n >= LC_MAX_REMINDERS)
			policy_invalid(key, "at most %d reminders are allowed",
						   LC_MAX_REMINDERS);
		policy_parse_interval(key, &elem, &out[n]);
		for (int i = 0; i < n; i++)
			if (policy_interval_cmp(&out[i], &out[n]) == 0)
				policy_invalid(key, "reminders must be distinct");
		n++;
	}
	return n;
}

/*
 * Resolve a hook to a function taking (text, text): schema-qualified names
 * directly, unqualified ones in the caller's search_path schemas.  Returns
 * the quoted qualified name that is stored in the definition; *oid gets
 * the function, which the policy version is bound to (lifecycle.policies'
 * hook columns).  Functions in a temporary schema are refused: they belong
 * to one session and another session's function could take their name.
 *
 * A stored version ("stored") is not resolved again: its hooks are the
 * functions it was bound to (cache.c reads the OIDs); the name is kept for
 * messages only.
 */
static char *
policy_resolve_hook(const char *key, const char *fname, List *search_schemas,
					bool stored, Oid *oid)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	List	   *names;
	Oid			fn = InvalidOid;

	if (stored)
	{
		*oid = InvalidOid;
		return pstrdup(fname);
	}

	if (fname[0] == '\0')
		policy_invalid(key, "expected a function name");

	names = policy_try_names(fname);

	if (names == NIL || list_length(names) > 2)
		policy_invalid(key, "\"%s\" is not a function name", fname);

	if (list_length(names) == 2)
	{
		Oid			nsp = get_namespace_oid(strVal(linitial(names)), true);

		if (strcmp(strVal(linitial(names)), "pg_temp") == 0 ||
			(OidIsValid(nsp) && isAnyTempNamespace(nsp)))
			policy_invalid(key, "a function in a temporary schema cannot be a hook");
		if (OidIsValid(nsp))
			fn = LookupFuncName(names, 2, argtypes, true);
	}
	else
	{
		ListCell   *lc;

		foreach(lc, search_schemas)
		{
			char	   *schema = (char *) lfirst(lc);
			Oid			nsp = get_namespace_oid(schema, true);
			List	   *q;

			if (!OidIsValid(nsp))
				continue;
			q = list_make2(makeString(schema), linitial(names));
			fn = LookupFuncName(q, 2, argtypes, true);
			if (OidIsValid(fn))
			{
				if (isAnyTempNamespace(nsp))
					policy_invalid(key, "a function in a temporary schema cannot be a hook");
				break;
			}
		}
	}

	if (!OidIsValid(fn) || get_func_prokind(fn) != PROKIND_FUNCTION)
		policy_invalid(key, "\"%s\" is not a function with arguments (subject text, tenant text)",
					   fname);
	if (isAnyTempNamespace(get_func_namespace(fn)))
		policy_invalid(key, "a function in a temporary schema cannot be a hook");

	*oid = fn;
	return quote_qualified_identifier(get_namespace_name(get_func_namespace(fn)),
									  get_func_name(fn));
}

/*
 * The built-in defaults (README.md, "Policies"), used for the first
 * version of the "default" policy.
 */
Jsonb *
policy_builtin_default(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(
																		"{\"invite_reminders\": [\"3 days\", \"7 days\"],"
																		" \"invite_expires_after\": \"14 days\","
																		" \"dormant_after\": \"90 days\","
																		" \"archive_after\": \"30 days\","
																		" \"archive_reminders\": [\"7 days\", \"1 day\"],"
																		" \"erase_after\": \"365 days\","
																		" \"expired_erase_after\": \"30 days\","
																		" \"touch_granularity\": \"1 hour\","
																		" \"history_retention\": \"3 years\","
																		" \"outbox_retention\": \"30 days\","
																		" \"channel\": null,"
																		" \"hooks\": {}}")));
}

/*
 * base || overlay at the top level: keys of the overlay win.
 */
Jsonb *
policy_merge(Jsonb *base, Jsonb *overlay)
{
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(base),
											  JsonbPGetDatum(overlay)));
}

/*
 * Parse and validate a complete definition.  Hooks are resolved; when
 * "normalized" is given it receives the definition with hooks written as
 * qualified names, which is what gets stored.  Without it, a stored version
 * is being loaded, and a hook function dropped since is left unresolved.
 */
LcPolicy *
policy_parse(const char *name, int version, Jsonb *def, List *search_schemas,
			 Jsonb **normalized)
{
	LcPolicy   *p = palloc0(sizeof(LcPolicy));
	bool		seen[POLICY_NUM_KEYS] = {0};
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData hooks_json;
	bool		first_hook = true;

	p->name = pstrdup(name);
	p->version = version;

	if (!JB_ROOT_IS_OBJECT(def) || JB_ROOT_IS_SCALAR(def))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid policy: the definition must be a JSON object")));

	initStringInfo(&hooks_json);
	appendStringInfoChar(&hooks_json, '{');

	it = JsonbIteratorInit(&def->root);
	tok = JsonbIteratorNext(&it, &k, false);	/* WJB_BEGIN_OBJECT */
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		int			ki = -1;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);

		for (int i = 0; i < POLICY_NUM_KEYS; i++)
			if (strcmp(policy_key_name(i), key) == 0)
				ki = i;
		if (ki < 0)
			policy_invalid(key, "unknown key");
		seen[ki] = true;

		if (ki < LC_NUM_INTERVALS)
			policy_parse_interval(key, &v, &p->intervals[ki]);
		else if (ki < LC_NUM_INTERVALS + LC_NUM_REMINDER_KEYS)
			p->n_reminders[ki - LC_NUM_INTERVALS] =
				policy_parse_reminders(key, &v, p->reminders[ki - LC_NUM_INTERVALS]);
		else if (strcmp(key, "channel") == 0)
		{
			if (v.type == jbvNull)
				p->channel = NULL;
			else if (v.type == jbvString && v.val.string.len > 0)
				p->channel = pnstrdup(v.val.string.val, v.val.string.len);
			else
				policy_invalid(key, "expected a channel name or null");
		}
		else if (strcmp(key, "hooks") == 0)
		{
			JsonbIterator *hit;
			JsonbValue	hk;
			JsonbValue	hv;
			JsonbIteratorToken htok;

			if (v.type != jbvBinary ||
				!JsonContainerIsObject(v.val.binary.data))
				policy_invalid(key, "expected an object mapping archive, restore, erase to functions");

			hit = JsonbIteratorInit(v.val.binary.data);
			while ((htok = JsonbIteratorNext(&hit, &hk, true)) != WJB_DONE)
			{
				char	   *hname;
				char	   *fullkey;
				int			hi = -1;

				if (htok != WJB_KEY)
					continue;
				hname = pnstrdup(hk.val.string.val, hk.val.string.len);
				fullkey = psprintf("hooks.%s", hname);
				htok = JsonbIteratorNext(&hit, &hv, true);
				for (int i = 0; i < LC_NUM_HOOKS; i++)
					if (strcmp(policy_hook_names[i], hname) == 0)
						hi = i;
				if (hi < 0)
					policy_invalid(fullkey, "unknown hook (expected archive, restore or erase)");
				if (hv.type == jbvNull)
					continue;
				if (hv.type != jbvString)
					policy_invalid(fullkey, "expected a function name");
				p->hooks[hi] = policy_resolve_hook(fullkey,
												   pnstrdup(hv.val.string.val, hv.val.string.len),
												   search_schemas,
												   normalized == NULL,
												   &p->hook_oids[hi]);
				if (!first_hook)
					appendStringInfoString(&hooks_json, ", ");
				first_hook = false;
				escape_json(&hooks_json, hname);
				appendStringInfoString(&hooks_json, ": ");
				escape_json(&hooks_json, p->hooks[hi]);
			}
		}
	}

	/*
	 * outbox_retention is new in 0.2.0: versions stored by 0.1.0 (and new
	 * ones merged onto such a "default") lack it and keep the built-in 30
	 * days, as lifecycle._prune_outbox() does.
	 */
	if (!seen[LC_IV_OUTBOX_RETENTION])
	{
		seen[LC_IV_OUTBOX_RETENTION] = true;
		memset(&p->intervals[LC_IV_OUTBOX_RETENTION], 0, sizeof(Interval));
		p->intervals[LC_IV_OUTBOX_RETENTION].day = 30;
	}
	for (int i = 0; i < POLICY_NUM_KEYS; i++)
		if (!seen[i])
			policy_invalid(policy_key_name(i), "missing");

	/* Reminders in firing order, checked with the timers' arithmetic. */
	machine_prepare_policy(p);

	if (normalized != NULL)
	{
		Jsonb	   *hooks;

		appendStringInfoString(&hooks_json, "}");
		hooks = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												   CStringGetDatum(psprintf("{\"hooks\": %s}", hooks_json.data))));
		*normalized = policy_merge(def, hooks);
	}
	return p;
}

/*
 * A parsed policy version (cache.c keeps them).  Raises 42704 for an
 * unknown version.  Valid until the end of the current transaction.
 */
LcPolicy *
policy_get(const char *name, int version)
{
	return cache_policy(name, version);
}

/*
 * The latest version of a policy (cached), or 42704 when there is none.
 */
int
policy_latest(const char *name)
{
	int			version = cache_policy_latest(name);

	if (version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", name),
				 errhint("Define it with lifecycle_define_policy().")));
	return version;
}

/*
 * The function OID of a hook, or InvalidOid when the policy has none.
 */
Oid
policy_hook_oid(LcPolicy *policy, LcHook hook)
{
	return policy->hooks[hook] != NULL ? policy->hook_oids[hook] : InvalidOid;
}
