/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  lifecycle.transitions(): a workflow's compiled graph as rows, with
 *	  the intervals of one policy version, for DBAs and for every SQL part
 *	  that needs the graph (lifecycle_graph() through
 *	  lifecycle._policy_transitions(), the tests).
 *
 * IDENTIFICATION
 *	  src/api/graph.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cache.h"
#include "machine.h"
#include "policy.h"
#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_transitions);
PG_FUNCTION_INFO_V1(lifecycle_policy_transitions);
PG_FUNCTION_INFO_V1(lifecycle_retention_bounds);

#define GRAPH_COLUMNS 17

static Datum graph_text(const char *s, bool *isnull);
static Datum graph_interval(const Interval *iv);
static LcPolicy *graph_workflow_policy(const LcGraph *g);
static LcPolicy *graph_policy(const char *name, bool version_null, int version);
static void graph_emit(FunctionCallInfo fcinfo, const LcPolicy *policy);

/*
 * A text datum, or NULL.
 */
static Datum
graph_text(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * A palloc'd copy of an interval as a datum.
 */
static Datum
graph_interval(const Interval *iv)
{
	Interval   *copy = palloc(sizeof(Interval));

	*copy = *iv;
	return IntervalPGetDatum(copy);
}

/*
 * The policy whose numbers lifecycle.transitions() shows for workflow
 * version g: the workflow's own policy (the one lifecycle_start() takes
 * when none is given: the same-named one, "default" for the user
 * workflow) when it belongs to the workflow, its values over the
 * version's defaults; else the version's defaults.  Connected to SPI.
 */
static LcPolicy *
graph_workflow_policy(const LcGraph *g)
{
	const char *own = strcmp(g->name, LC_USER_WORKFLOW) == 0 ? "default" : g->name;
	char	   *wf = store_policy_workflow(own);
	Jsonb	   *def = NULL;
	Jsonb	   *values = policy_defaults(g);
	int			version;

	if (wf != NULL && strcmp(wf, g->name) == 0 &&
		(version = store_policy_latest(own, &def)) != 0)
	{
		LcPolicy   *p = policy_get(own, version);

		/* the version it runs: the policy as the engine has it */
		if (p->graph->version == g->version)
			return p;
		values = policy_merge(values, policy_known_keys(g, def));
	}
	return policy_parse(g, own, 0, values, NIL, NULL);
}

/*
 * A policy version (the latest when version is NULL), 42704 if none.
 * Connected to SPI.
 */
static LcPolicy *
graph_policy(const char *name, bool version_null, int version)
{
	if (version_null)
		version = store_policy_latest(name, NULL);
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", name),
				 errhint("Define it with lifecycle_define_policy().")));
	return policy_get(name, version);
}

/*
 * lifecycle.transitions(workflow, version) -> the graph of a workflow
 * version (the latest when version is NULL) with the numbers of its own
 * policy (graph_workflow_policy()).  The 0.2.0 form, a policy's name
 * (and version), still works: a name that is not a workflow's is taken as
 * a policy's (graph_emit()).
 */
Datum
lifecycle_transitions(PG_FUNCTION_ARGS)
{
	char	   *name;
	int			latest;
	LcPolicy   *policy;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("workflow must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	latest = cache_workflow_latest(name);
	if (latest == 0 && store_policy_latest(name, NULL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", name),
				 errhint("Name a workflow of lifecycle.workflows (or, as in 0.2.0, a policy).")));
	if (latest == 0)
		policy = graph_policy(name, PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1));
	else
	{
		int			version = PG_ARGISNULL(1) ? latest : PG_GETARG_INT32(1);

		if (version <= 0 || version > latest)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("workflow \"%s\" version %d does not exist", name, version),
					 errhint("Its latest version is %d.", latest)));
		policy = graph_workflow_policy(cache_graph(name, version));
	}
	/* a policy parsed here lives in SPI's context: rows first */
	graph_emit(fcinfo, policy);
	SPI_finish();
	return (Datum) 0;
}

/*
 * lifecycle._policy_transitions(policy, version) -> the graph a policy
 * version (the latest when version is NULL) runs, with its numbers: what
 * lifecycle_graph() draws.
 */
Datum
lifecycle_policy_transitions(PG_FUNCTION_ARGS)
{
	char	   *name;
	LcPolicy   *policy;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	policy = graph_policy(name, PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1));
	/* a policy parsed here lives in SPI's context: rows first */
	graph_emit(fcinfo, policy);
	SPI_finish();
	return (Datum) 0;
}

/*
 * One row per (state, event) of the policy's graph into the function's
 * materialized result: from_state, event, kind (call, timer), role (app,
 * admin, worker), to_state, effect (transition, reminder, touch, hold,
 * release, noop, refused), message, hook, erases, stopped_by_hold; for
 * timers their anchor, interval_key and the policy's interval, or the
 * reminders and whether they count back from the deadline; the
 * deadline_event a timer enforces; the hint of a refusal.
 */
static void
graph_emit(FunctionCallInfo fcinfo, const LcPolicy *policy)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const LcGraph *g = policy->graph;
	LcEdgeInfo *edges;
	int			n;

	n = machine_edges(g, &edges);
	for (int i = 0; i < n; i++)
	{
		const LcEdgeInfo *e = &edges[i];
		const LcGraphTimer *t = e->timer;
		Datum		v[GRAPH_COLUMNS];
		bool		nl[GRAPH_COLUMNS];
		bool		timer = machine_is_timer(g, e->event);

		memset(nl, 0, sizeof(nl));
		v[0] = graph_text(machine_state_name(g, e->from), &nl[0]);
		v[1] = graph_text(machine_event_name(g, e->event), &nl[1]);
		v[2] = graph_text(timer ? "timer" : "call", &nl[2]);
		v[3] = graph_text(g->events[e->event].role, &nl[3]);
		v[4] = graph_text(machine_state_name(g, e->to), &nl[4]);
		v[5] = graph_text(e->effect, &nl[5]);
		v[6] = graph_text(machine_message_name(g, e->message), &nl[6]);
		v[7] = graph_text(machine_hook_name(g, e->hook), &nl[7]);
		v[8] = BoolGetDatum(e->erase);
		v[9] = BoolGetDatum(e->stopped_by_hold);
		nl[10] = nl[11] = nl[12] = nl[13] = nl[14] = nl[15] = true;
		if (t != NULL)
			v[10] = graph_text(machine_anchor_name(t->anchor), &nl[10]);
		if (t != NULL && !e->reminder)
		{
			Interval	sum;

			memset(&sum, 0, sizeof(sum));
			for (int k = 0; k < t->after.n_terms; k++)
			{
				int			p = t->after.terms[k].param;

				sum = *DatumGetIntervalP(DirectFunctionCall2(interval_pl,
															 IntervalPGetDatum(&sum),
															 IntervalPGetDatum(p >= 0 ?
																			   &policy->params.v[p].value :
																			   &t->after.terms[k].literal)));
			}
			v[11] = graph_text(machine_duration_text(g, &t->after), &nl[11]);
			v[12] = graph_interval(&sum);
			nl[12] = false;
			v[15] = graph_text(t->deadline, &nl[15]);
		}
		if (t != NULL && e->reminder)
		{
			int			p = t->reminders.param;
			int			k = p >= 0 ? policy->params.v[p].n_list : t->reminders.n_literals;
			const Interval *list = p >= 0 ? policy->params.v[p].list : t->reminders.literals;
			Datum	   *r = palloc(sizeof(Datum) * Max(k, 1));

			if (p >= 0)
				v[11] = graph_text(g->params[p].name, &nl[11]);
			for (int j = 0; j < k; j++)
				r[j] = graph_interval(&list[j]);
			v[13] = PointerGetDatum(construct_array(r, k, INTERVALOID,
													sizeof(Interval), false,
													TYPALIGN_DOUBLE));
			nl[13] = false;
			v[14] = BoolGetDatum(t->reminders.before);
			nl[14] = false;
		}
		v[16] = graph_text(e->hint, &nl[16]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
}

/*
 * lifecycle._retention_bounds() -> (workflow, workflow_version, policy,
 * policy_version, state, bound, path): every policy version's retention
 * bound of each state of its workflow version (lifecycle.retention_bounds).
 */
Datum
lifecycle_retention_bounds(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	  **names;
	int		   *versions;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	n = store_policy_versions(&names, &versions);
	for (int i = 0; i < n; i++)
	{
		LcPolicy   *p = policy_get(names[i], versions[i]);
		LcBound    *bounds;
		int			nb = workflow_bounds(p->graph, &p->params, &bounds);

		for (int j = 0; j < nb; j++)
		{
			Datum		v[7];
			bool		nl[7] = {0};
			Datum	   *path = palloc(sizeof(Datum) * Max(bounds[j].n_path, 1));

			for (int k = 0; k < bounds[j].n_path; k++)
				path[k] = CStringGetTextDatum(bounds[j].path[k]);
			v[0] = CStringGetTextDatum(p->graph->name);
			v[1] = Int32GetDatum(p->graph->version);
			v[2] = CStringGetTextDatum(p->name);
			v[3] = Int32GetDatum(p->version);
			v[4] = CStringGetTextDatum(machine_state_name(p->graph, bounds[j].state));
			v[5] = graph_interval(&bounds[j].bound);
			v[6] = PointerGetDatum(construct_array(path, bounds[j].n_path,
												   TEXTOID, -1, false,
												   TYPALIGN_INT));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
		}
	}
	SPI_finish();
	return (Datum) 0;
}
