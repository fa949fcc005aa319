/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  lifecycle_migrate_workflow(): move the running instances of a
 *	  workflow's older versions to a newer one, states mapped by name or
 *	  by a state_map.
 *
 * The move is checked before anything is written: every state a running
 * instance of an older version is in must map (by the same name, or as
 * state_map says) to a state of the target version, else 22023 names the
 * first such state and how many instances are in it, and nothing moves.
 *
 * Policies.  A policy version names the workflow version it parameterises
 * (lifecycle.policies.workflow_version); defining a new workflow version
 * leaves every policy on the version it names (admin_workflow_policies()
 * only checks their max_retention), so the instances they start keep
 * running the old version.  Migrating moves each instance's policy to the
 * latest version of the same policy that names the target workflow
 * version; when there is none, the migration defines one: the policy's
 * latest definition, keys the target version does not know dropped, its
 * new params at their defaults (as admin_workflow_policies() checks it).
 * From then on that policy starts instances on the target version too.
 *
 * Then one set-based statement per policy (store_migrate.c) moves the
 * instances, re-arms their timers and deadlines from their anchors with
 * the machine (lifecycle._rearm_at/_event, as lifecycle_migrate() does)
 * and writes one history row "migrate" each.  A running instance that
 * reached an unmapped state meanwhile (a concurrent transition) is found
 * by the same check after the move, and the whole migration fails.
 *
 * IDENTIFICATION
 *	  src/api/migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "graph.h"
#include "machine.h"
#include "policy.h"
#include "store.h"
#include "store_migrate.h"

PG_FUNCTION_INFO_V1(lifecycle_migrate_workflow);

/*
 * The state of graph g named name that an instance may be moved to: a
 * state of the definition (not none, not erased); -1 for anything else.
 */
int
migrate_target_state(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_states; i++)
		if (i != LC_STATE_NONE && i != g->erased &&
			strcmp(g->states[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * state_map's string for state, or NULL.
 */
const char *
migrate_map_get(Jsonb *map, const char *state)
{
	JsonbValue	k;
	JsonbValue *v;

	if (map == NULL)
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) state;
	k.val.string.len = strlen(state);
	v = findJsonbValueFromContainer(&map->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Check a state_map (NULL: none): an object whose values are states of g
 * an instance may be in (22023 otherwise).
 */
void
migrate_check_map(const LcGraph *g, Jsonb *map)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		key = true;

	if (map == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(map) || JB_ROOT_IS_SCALAR(map))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("state_map must be a JSON object"),
				 errhint("Map old state names to new ones: {\"old\": \"new\"}.")));
	it = JsonbIteratorInit(&map->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = false;
			continue;
		}
		if (tok != WJB_VALUE || key)
			continue;
		key = true;
		if (v.type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("state_map values must be state names (strings)")));
		if (migrate_target_state(g, pnstrdup(v.val.string.val,
											 v.val.string.len)) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("state_map maps to \"%.*s\", which is not a state of workflow \"%s\" version %d",
							v.val.string.len, v.val.string.val,
							g->name, g->version),
					 errhint("Map to a state of the definition (not none or erased).")));
	}
}

/*
 * Every group of running instances must have a state in g (by its own
 * name or as map says): else 22023 naming the first unmapped state and
 * how many instances are in it (of every policy).  what: the operation,
 * for the message.  Returns the complete map {state: target} of the
 * groups' states.
 */
Jsonb *
migrate_resolve(const LcGraph *g, Jsonb *map, const LcWorkflowGroup *groups,
				int n, const char *what)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue	v;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		const char *target = migrate_map_get(map, groups[i].state);

		if (i > 0 && strcmp(groups[i - 1].state, groups[i].state) == 0)
			continue;
		if (target == NULL)
			target = groups[i].state;
		if (migrate_target_state(g, target) < 0)
		{
			int64		count = 0;

			for (int j = i; j < n && strcmp(groups[j].state, groups[i].state) == 0; j++)
				count += groups[j].n;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("state \"%s\" of workflow \"%s\" is not a state of version %d",
							groups[i].state, g->name, g->version),
					 errdetail("%lld running instances are in state \"%s\"; %s.",
							   (long long) count, groups[i].state, what),
					 errhint("Map it to a state of version %d in state_map: {\"%s\": \"...\"}.",
							 g->version, groups[i].state)));
		}
		k.type = jbvString;
		k.val.string.val = groups[i].state;
		k.val.string.len = strlen(groups[i].state);
		v.type = jbvString;
		v.val.string.val = (char *) target;
		v.val.string.len = strlen(target);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/*
 * The policy "name" as it would be for version g of its workflow: its
 * latest definition, keys g does not know dropped, g's new params at
 * their defaults.  *normalized (if not NULL) gets the document to store.
 */
LcPolicy *
migrate_policy_for(const LcGraph *g, const char *name, Jsonb **normalized)
{
	Jsonb	   *def = NULL;

	if (store_policy_latest(name, &def) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", name)));
	return policy_parse(g, name, 0,
						policy_merge(policy_defaults(g),
									 policy_known_keys(g, def)),
						NIL, normalized);
}

/*
 * lifecycle_migrate_workflow(workflow, to_version, state_map) -> moved
 *
 * Admin only, and not for a role limited to some tenants (a workflow is
 * shared by every tenant): 42501.
 */
Datum
lifecycle_migrate_workflow(PG_FUNCTION_ARGS)
{
	char	   *workflow = args_text_arg(fcinfo, 0, "workflow", NAMEDATALEN - 1);
	Jsonb	   *map;
	int			to_version;
	int			latest;
	const LcGraph *g;
	LcWorkflowGroup *groups;
	Jsonb	   *full;
	TimestampTz now;
	int			n;
	int64		moved = 0;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state_map must not be null"),
				 errhint("Pass '{}' to map every state to the state of the same name.")));
	map = PG_GETARG_JSONB_P(2);

	SPI_connect();
	acting_require_unlimited("migrate workflows");
	latest = cache_workflow_latest(workflow);
	if (latest == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", workflow),
				 errhint("Define it with lifecycle_define_workflow().")));
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
					 errmsg("workflow \"%s\" has no version %d", workflow,
							to_version),
					 errhint("The latest version is %d.", latest)));
	}
	g = cache_graph(workflow, to_version);
	migrate_check_map(g, map);

	n = store_migrate_groups(workflow, to_version, &groups);
	full = migrate_resolve(g, map, groups, n, "nothing was migrated");
	now = clock_now();

	/* Per policy (groups are by state, then policy): its target version. */
	for (int i = 0; i < n; i++)
	{
		const char *policy = groups[i].policy;
		bool		done = false;
		int			pv;

		for (int j = 0; j < i && !done; j++)
			done = strcmp(groups[j].policy, policy) == 0;
		if (done)
			continue;
		pv = store_migrate_policy_version(policy, workflow, to_version);
		if (pv == 0)
		{
			Jsonb	   *normalized;
			LcPolicy   *p = migrate_policy_for(g, policy, &normalized);

			policy_check_max_retention(p, psprintf("policy \"%s\" under workflow \"%s\" version %d",
												   policy, workflow, to_version));
			pv = store_policy_insert(policy, normalized, now, p);
			cache_policy_forget();
			CommandCounterIncrement();
		}
		moved += store_migrate_instances(workflow, to_version, policy, pv,
										 full, now, acting_actor());
	}

	/* Nothing of an older version may be left running. */
	n = store_migrate_groups(workflow, to_version, &groups);
	if (n > 0)
	{
		(void) migrate_resolve(g, NULL, groups, n,
							   "they reached it during the migration; nothing was migrated");
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("running instances of workflow \"%s\" changed state during the migration",
						workflow),
				 errdetail("Nothing was migrated."),
				 errhint("Run the migration again.")));
	}
	SPI_finish();
	PG_RETURN_INT64(moved);
}
