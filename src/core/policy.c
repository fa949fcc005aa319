/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  Parse and validate policies: a workflow's parameter values and the
 *	  generic keys, against the workflow's compiled graph.
 *
 * A policy is a JSON document (README.md, "Policies").  Every error a user
 * can cause is SQLSTATE 22023 with the offending key in the message.
 * Versions are immutable once committed, so parsed policies are cached per
 * backend by (name, version), in cache.c with the other caches.
 *
 * IDENTIFICATION
 *	  src/core/policy.c
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

/* The generic interval keys every policy has, whatever its workflow. */
static const char *const policy_interval_keys[] = {
	"touch_granularity", "history_retention", "outbox_retention"
};

static void policy_parse_interval(const char *key, JsonbValue *v, Interval *out);
static int	policy_parse_reminders(const char *key, JsonbValue *v,
								   Interval *out);
static char *policy_resolve_hook(const char *key, const char *fname,
								 List *search_schemas, bool stored, Oid *oid);
static int	policy_interval_cmp(const Interval *a, const Interval *b);
static Interval *policy_try_interval(const char *str);
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
 * A workflow's default policy: its parameters' defaults (as its stored
 * definition writes them) and the generic keys' built-in values
 * (README.md, "Policies").  Used for the first version of a workflow's
 * policy and for keys a definition leaves out.
 */
Jsonb *
policy_defaults(const LcGraph *g)
{
	StringInfoData buf;
	JsonbValue *params = NULL;

	if (g->definition != NULL)
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = "params";
		k.val.string.len = 6;
		params = findJsonbValueFromContainer(&g->definition->root,
											 JB_FOBJECT, &k);
	}
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < g->n_params; i++)
	{
		const LcGraphParam *p = &g->params[i];
		JsonbValue *v = NULL;

		escape_json(&buf, p->name);
		appendStringInfoString(&buf, ": ");
		if (params != NULL && params->type == jbvBinary)
		{
			JsonbValue	k;

			k.type = jbvString;
			k.val.string.val = (char *) p->name;
			k.val.string.len = strlen(p->name);
			v = findJsonbValueFromContainer(params->val.binary.data,
											JB_FOBJECT, &k);
		}
		if (v != NULL)
			appendStringInfoString(&buf,
								   JsonbToCString(NULL,
												  v->type == jbvBinary ? v->val.binary.data :
												  &JsonbValueToJsonb(v)->root,
												  -1));
		else if (p->kind == LC_PARAM_INTERVAL)
			escape_json(&buf, DatumGetCString(DirectFunctionCall1(interval_out,
																  IntervalPGetDatum(&p->value))));
		else
		{
			appendStringInfoChar(&buf, '[');
			for (int j = 0; j < p->n_list; j++)
			{
				if (j > 0)
					appendStringInfoString(&buf, ", ");
				escape_json(&buf, DatumGetCString(DirectFunctionCall1(interval_out,
																	  IntervalPGetDatum(&p->list[j]))));
			}
			appendStringInfoChar(&buf, ']');
		}
		appendStringInfoString(&buf, ", ");
	}
	appendStringInfoString(&buf,
						   "\"touch_granularity\": \"1 hour\","
						   " \"history_retention\": \"3 years\","
						   " \"outbox_retention\": \"30 days\","
						   " \"channel\": null, \"hooks\": {}}");
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(buf.data)));
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
 * "archive, restore or erase": the hook keys a graph names, for messages.
 */
static char *
policy_hook_list(const LcGraph *g, const char *sep, const char *last)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < g->n_hooks; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, i == g->n_hooks - 1 ? last : sep);
		appendStringInfoString(&buf, g->hooks[i]);
	}
	return buf.data;
}

/*
 * Parse and validate a complete definition against the workflow's graph:
 * its parameters, the generic keys, "workflow" (which must name it).
 * Hooks are resolved; when "normalized" is given it receives the
 * definition with hooks written as qualified names, which is what gets
 * stored.  Without it, a stored version is being loaded, and a hook
 * function dropped since is left unresolved.
 */
LcPolicy *
policy_parse(const LcGraph *g, const char *name, int version, Jsonb *def,
			 List *search_schemas, Jsonb **normalized)
{
	LcPolicy   *p = palloc0(sizeof(LcPolicy));
	int			nkeys = g->n_params + lengthof(policy_interval_keys);
	bool	   *seen = palloc0(sizeof(bool) * nkeys);
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	StringInfoData hooks_json;
	bool		first_hook = true;
	Interval   *generic[lengthof(policy_interval_keys)];

	p->name = pstrdup(name);
	p->version = version;
	p->graph = g;
	p->params.n = g->n_params;
	p->params.v = palloc0(sizeof(LcParamValue) * Max(g->n_params, 1));
	p->hooks = palloc0(sizeof(char *) * Max(g->n_hooks, 1));
	p->hook_oids = palloc0(sizeof(Oid) * Max(g->n_hooks, 1));
	generic[0] = &p->touch_granularity;
	generic[1] = &p->history_retention;
	generic[2] = &p->outbox_retention;

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

		ki = policy_param(g, key);
		if (ki < 0)
			for (int i = 0; i < lengthof(policy_interval_keys); i++)
				if (strcmp(policy_interval_keys[i], key) == 0)
					ki = g->n_params + i;
		if (ki >= 0)
		{
			seen[ki] = true;
			if (ki >= g->n_params)
				policy_parse_interval(key, &v, generic[ki - g->n_params]);
			else if (g->params[ki].kind == LC_PARAM_INTERVAL)
				policy_parse_interval(key, &v, &p->params.v[ki].value);
			else
			{
				p->params.v[ki].list = palloc(sizeof(Interval) * LC_MAX_REMINDERS);
				p->params.v[ki].n_list =
					policy_parse_reminders(key, &v, p->params.v[ki].list);
			}
		}
		else if (strcmp(key, "max_retention") == 0)
		{
			policy_parse_interval(key, &v, &p->max_retention);
			p->has_max_retention = true;
		}
		else if (strcmp(key, "workflow") == 0)
		{
			if (v.type != jbvString ||
				strlen(g->name) != v.val.string.len ||
				strncmp(g->name, v.val.string.val, v.val.string.len) != 0)
				policy_invalid(key, "expected the name of the policy's workflow, \"%s\"",
							   g->name);
		}
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
				policy_invalid(key, "expected an object mapping %s to functions",
							   policy_hook_list(g, ", ", ", "));

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
				for (int i = 0; i < g->n_hooks; i++)
					if (strcmp(g->hooks[i], hname) == 0)
						hi = i;
				if (hi < 0)
					policy_invalid(fullkey, "unknown hook (expected %s)",
								   g->n_hooks > 0 ? policy_hook_list(g, ", ", " or ") :
								   "none: the workflow names no hook");
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
		else
			policy_invalid(key, "unknown key");
	}

	/*
	 * outbox_retention is new in 0.2.0: versions stored by 0.1.0 (and new
	 * ones merged onto such a "default") lack it and keep the built-in 30
	 * days, as lifecycle._prune_outbox() does.
	 */
	if (!seen[g->n_params + 2])
	{
		seen[g->n_params + 2] = true;
		memset(&p->outbox_retention, 0, sizeof(Interval));
		p->outbox_retention.day = 30;
	}
	for (int i = 0; i < nkeys; i++)
		if (!seen[i])
			policy_invalid(i < g->n_params ? g->params[i].name :
						   policy_interval_keys[i - g->n_params], "missing");

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
 * The function OID of a hook (graph hook id), or InvalidOid when the
 * policy binds none.
 */
Oid
policy_hook_oid(LcPolicy *policy, int hook)
{
	return hook >= 0 && policy->hooks[hook] != NULL ?
		policy->hook_oids[hook] : InvalidOid;
}

/*
 * A parameter's id in a graph, or -1.
 */
int
policy_param(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_params; i++)
		if (strcmp(g->params[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The "workflow" key of a definition: the workflow's name, or NULL when
 * the key is absent (22023 when it is not a name).
 */
char *
policy_workflow_key(Jsonb *def)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = "workflow";
	k.val.string.len = 8;
	v = findJsonbValueFromContainer(&def->root, JB_FOBJECT, &k);
	if (v == NULL)
		return NULL;
	if (v->type != jbvString || v->val.string.len == 0 ||
		v->val.string.len >= NAMEDATALEN)
		policy_invalid("workflow", "expected the name of a workflow");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * The keys of a definition that a policy of graph g has (its parameters
 * and the generic keys), for a base another version of the workflow
 * wrote.
 */
Jsonb *
policy_known_keys(const LcGraph *g, Jsonb *def)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	it = JsonbIteratorInit(&def->root);
	tok = JsonbIteratorNext(&it, &k, false);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		bool		known;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		known = policy_param(g, key) >= 0 ||
			strcmp(key, "channel") == 0 || strcmp(key, "hooks") == 0 ||
			strcmp(key, "max_retention") == 0;
		for (int i = 0; i < lengthof(policy_interval_keys); i++)
			if (strcmp(key, policy_interval_keys[i]) == 0)
				known = true;
		if (!known)
			continue;
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * The shortest an interval lasts over every start date (the timers'
 * arithmetic: "1 year" is 365 days, "1 mon" 28), in microseconds.
 */
static int64
policy_shortest(const Interval *iv)
{
	TimestampTz start = (TimestampTz) (95 * 365 + 24) * USECS_PER_DAY;	/* 2095-01-01 */
	int64		shortest = PG_INT64_MAX;

	for (int d = 0; d < 6 * 366; d++)
	{
		TimestampTz s = start + (TimestampTz) d * USECS_PER_DAY;

		shortest = Min(shortest, machine_add(s, iv) - s);
	}
	return shortest;
}

/*
 * Refuse (22023, naming the state and the path that attains it) a policy
 * whose retention bound exceeds its max_retention for some state: the
 * bound counts every interval at its longest, max_retention at its
 * shortest, so the promise holds for every start date.  "what" names the
 * key or the workflow version refused.
 */
void
policy_check_max_retention(const LcPolicy *p, const char *what)
{
	LcBound    *bounds;
	int			n;
	int64		max;

	if (!p->has_max_retention)
		return;
	max = policy_shortest(&p->max_retention);
	n = workflow_bounds(p->graph, &p->params, &bounds);
	for (int i = 0; i < n; i++)
	{
		const Interval *b = &bounds[i].bound;
		int64		usecs = ((int64) b->month * 31 + b->day) * USECS_PER_DAY + b->time;
		StringInfoData path;

		if (usecs <= max)
			continue;
		initStringInfo(&path);
		for (int j = 0; j < bounds[i].n_path; j++)
			appendStringInfo(&path, "%s%s", j > 0 ? " -> " : "", bounds[i].path[j]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid policy key \"max_retention\": %s keeps state \"%s\" up to %d days, more than its max_retention allows",
						what, p->graph->states[bounds[i].state].name,
						(int) ((usecs + USECS_PER_DAY - 1) / USECS_PER_DAY)),
				 errdetail("The longest path to erasure from \"%s\": %s.",
						   p->graph->states[bounds[i].state].name, path.data),
				 errhint("Shorten the intervals on that path, or raise max_retention.")));
	}
}
