/*-------------------------------------------------------------------------
 *
 * forecast.c
 *	  lifecycle_forecast(): per day over a horizon, how many users each
 *	  timer event will fire for if nobody acts.
 *
 * The forecast runs the machine forward: for every user it starts from
 * the stored timer (next_at, next_event), fires it at the time the worker
 * would (a late timer at once, at "now"), applies it with machine_apply()
 * and continues with the outcome's next timer until the horizon.  No copy
 * of the graph lives here or in SQL.
 *
 * With a definition, the running users of the policy are simulated as if
 * lifecycle_migrate() had moved them to it: the definition is validated
 * as lifecycle_define_policy() does (nothing is written) and their first
 * timer is re-armed from their anchors with it, as the migration would.
 *
 * 0.3.0: every workflow's instances are forecast, each with its own
 * workflow version's graph, and the rows name the workflow; "workflow"
 * limits the forecast to one workflow.  With a workflow_definition, the
 * running instances of that workflow are simulated as if
 * lifecycle_migrate_workflow() had moved them to it (states by name: a
 * state the definition lacks and state_map does not map is refused with
 * 22023, as the migration refuses it); their policies as the migration
 * would define them for it (migrate_policy_for()).
 *
 * Only the instances whose next timer falls inside the horizon are read
 * (the partial index on next_at), over a read-only cursor in batches; the
 * counts live in an array of days by events per graph forecast, merged by
 * workflow and event name at the end.
 *
 * IDENTIFICATION
 *	  src/forecast.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
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
#include "store_migrate.h"

PG_FUNCTION_INFO_V1(lifecycle_forecast_internal);

#define FORECAST_BATCH			10000
#define FORECAST_MAX_STEPS		64	/* per user: far more than any horizon needs */
#define FORECAST_MAX_DAYS		3700	/* a horizon of at most ten years */
#define FORECAST_QUARTER		(15 * 60 * USECS_PER_SEC)

/* The counts of one graph (a workflow version, or a proposed one). */
typedef struct ForecastSlot
{
	const LcGraph *graph;
	int64	   *counts;			/* ndays * graph->n_events */
} ForecastSlot;

/* A proposed policy version of one policy name (workflow_definition). */
typedef struct ForecastPolicy
{
	char	   *name;
	LcPolicy   *policy;
} ForecastPolicy;

/* One output row before merging. */
typedef struct ForecastOut
{
	int			day;
	const char *workflow;
	const char *event;
	int64		n;
} ForecastOut;

typedef struct ForecastState
{
	TimestampTz now;
	TimestampTz end;
	DateADT		first_day;
	int			ndays;
	MemoryContext cxt;			/* outlives SPI_finish() */
	ForecastSlot *slots;
	int			nslots;
	int			maxslots;
	const LcGraph *proposed;	/* workflow_definition, compiled; or NULL */
	Jsonb	   *state_map;		/* every running state -> its state in it */
	ForecastPolicy *policies;	/* proposed policy versions, by name */
	int			npolicies;
	LcPolicy   *hypothetical;	/* NULL: each user's own version */
	const char *tenant_seen;	/* the last tenant checked for visibility */
	bool		tenant_ok;
	bool		limited;		/* the acting role sees only some tenants */
	TimestampTz quarter0;		/* the quarter hour "now" falls in */
	int64		nquarters;
	int32	   *quarter_day;	/* day index + 1 per quarter; 0: unknown */
} ForecastState;

static DateADT forecast_date(TimestampTz ts);
static int	forecast_day(ForecastState *fs, TimestampTz ts);
static void forecast_user(ForecastState *fs, const LcPolicy *policy,
						  LcUser *user, TimestampTz at, LcEvent ev);
static ForecastSlot *forecast_slot(ForecastState *fs, const LcGraph *g);
static const LcPolicy *forecast_proposed_policy(ForecastState *fs,
												const char *name);
static int	forecast_out_cmp(const void *a, const void *b);
static LcPolicy *forecast_definition(const char *name, Jsonb *def,
									 ArrayType *schemas);

/*
 * The calendar day of a time, in the session's time zone (as ::date).
 */
static DateADT
forecast_date(TimestampTz ts)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date,
											   TimestampTzGetDatum(ts)));
}

/*
 * The day index (0: the first day) of a time inside the horizon.  Every
 * time zone's offsets and changes fall on quarter hours, so a quarter of
 * an hour (counted from a quarter-hour boundary) lies within one local
 * day: the date is computed once per quarter and remembered.
 */
static int
forecast_day(ForecastState *fs, TimestampTz ts)
{
	int64		q = (ts - fs->quarter0) / FORECAST_QUARTER;

	if (q < 0 || q >= fs->nquarters)
		return forecast_date(ts) - fs->first_day;
	if (fs->quarter_day[q] == 0)
		fs->quarter_day[q] = forecast_date(ts) - fs->first_day + 1;
	return fs->quarter_day[q] - 1;
}

/*
 * Run one user forward from its timer (at, ev) to the horizon, counting
 * every event that fires.
 */
static void
forecast_user(ForecastState *fs, const LcPolicy *policy, LcUser *user,
			  TimestampTz at, LcEvent ev)
{
	TimestampTz clock = fs->now;
	ForecastSlot *slot = forecast_slot(fs, policy->graph);

	for (int step = 0; step < FORECAST_MAX_STEPS; step++)
	{
		TimestampTz fire;
		LcOutcome	o;
		int			day;

		if (ev == LC_EV_NONE || at == 0)
			return;

		/*
		 * A late timer fires at the next tick: now, or right after the
		 * event before it (a hold that lapses lets an overdue timer fire).
		 */
		fire = Max(at, clock);
		clock = fire;
		if (fire > fs->end)
			return;
		machine_apply(policy, user, ev, fire, &o);
		if (!o.allowed)
			return;				/* a stale timer: the worker re-arms it */
		day = forecast_day(fs, fire);
		/* As history records it: a reminder past its deadline is skipped. */
		if (day >= 0 && day < fs->ndays)
			slot->counts[day * slot->graph->n_events + o.history_event]++;
		user->state = o.to;
		user->state_since = o.state_since;
		user->state_due_at = o.state_due_at;
		user->last_seen = o.last_seen;
		user->step = o.step;
		user->held = o.held;
		user->hold_until = o.hold_until;
		if (o.to == policy->graph->erased)
			return;
		at = o.next_at;
		ev = o.next_event;
	}
}

/*
 * The counts of graph g (created at its first use).
 */
static ForecastSlot *
forecast_slot(ForecastState *fs, const LcGraph *g)
{
	ForecastSlot *slot;

	for (int i = 0; i < fs->nslots; i++)
		if (fs->slots[i].graph == g)
			return &fs->slots[i];
	if (fs->nslots == fs->maxslots)
	{
		fs->maxslots = Max(8, fs->maxslots * 2);
		fs->slots = fs->slots == NULL ?
			MemoryContextAlloc(fs->cxt, sizeof(ForecastSlot) * fs->maxslots) :
			repalloc(fs->slots, sizeof(ForecastSlot) * fs->maxslots);
	}
	slot = &fs->slots[fs->nslots++];
	slot->graph = g;
	slot->counts = MemoryContextAllocZero(fs->cxt, sizeof(int64) * fs->ndays *
										  g->n_events);
	return slot;
}

/*
 * The policy "name" as the migration to the proposed workflow definition
 * would define it (parsed once per name).
 */
static const LcPolicy *
forecast_proposed_policy(ForecastState *fs, const char *name)
{
	MemoryContext old;
	ForecastPolicy *fp;

	for (int i = 0; i < fs->npolicies; i++)
		if (strcmp(fs->policies[i].name, name) == 0)
			return fs->policies[i].policy;
	old = MemoryContextSwitchTo(fs->cxt);
	fs->policies = fs->policies == NULL ?
		palloc(sizeof(ForecastPolicy)) :
		repalloc(fs->policies, sizeof(ForecastPolicy) * (fs->npolicies + 1));
	fp = &fs->policies[fs->npolicies++];
	fp->name = pstrdup(name);
	fp->policy = migrate_policy_for(fs->proposed, name, NULL);
	MemoryContextSwitchTo(old);
	return fp->policy;
}

/*
 * Output rows by day, then workflow, then event name.
 */
static int
forecast_out_cmp(const void *a, const void *b)
{
	const ForecastOut *x = (const ForecastOut *) a;
	const ForecastOut *y = (const ForecastOut *) b;
	int			c;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	c = strcmp(x->workflow, y->workflow);
	if (c != 0)
		return c;
	return strcmp(x->event, y->event);
}

/*
 * Validate a proposed definition of policy name as
 * lifecycle_define_policy() does (keys left out from "default"), without
 * storing it.
 */
static LcPolicy *
forecast_definition(const char *name, Jsonb *def, ArrayType *schemas_arr)
{
	Jsonb	   *base = NULL;
	Jsonb	   *normalized;
	List	   *schemas = NIL;
	LcPolicy   *p;
	const LcGraph *g = cache_graph(LC_USER_WORKFLOW, 1);

	if (!JB_ROOT_IS_OBJECT(def) || JB_ROOT_IS_SCALAR(def))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid policy: the definition must be a JSON object")));
	if (schemas_arr != NULL)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(schemas_arr, NAMEOID, NAMEDATALEN, false,
						  TYPALIGN_CHAR, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				schemas = lappend(schemas,
								  pstrdup(NameStr(*DatumGetName(elems[i]))));
	}
	if (store_policy_latest("default", &base) == 0)
		base = policy_defaults(g);
	p = policy_parse(g, name, 0, policy_merge(base, def), schemas, &normalized);
	if (p->channel != NULL && !store_channel_exists(p->channel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", p->channel),
				 errhint("Add it with lifecycle_add_channel().")));
	return p;
}

/*
 * lifecycle._forecast(horizon, policy, tenant, definition, search_schemas,
 *					   workflow, workflow_definition, state_map)
 *	   -> table(day date, event text, users bigint, workflow text)
 */
Datum
lifecycle_forecast_internal(PG_FUNCTION_ARGS)
{
	char	   *policy_name = args_opt_text_arg(fcinfo, 1, "policy",
												NAMEDATALEN - 1);
	char	   *tenant = args_opt_text_arg(fcinfo, 2, "tenant", LC_MAX_TENANT);
	Jsonb	   *def = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	/* 0.2.0's SQL (before ALTER EXTENSION UPDATE) passes five arguments. */
	char	   *workflow = PG_NARGS() < 7 ? NULL :
		args_opt_text_arg(fcinfo, 5, "workflow", NAMEDATALEN - 1);
	Jsonb	   *wdef = PG_NARGS() < 7 || PG_ARGISNULL(6) ? NULL :
		PG_GETARG_JSONB_P(6);
	/* and the first 0.3.0 SQL (without state_map) seven */
	Jsonb	   *map = PG_NARGS() < 8 ? NULL : PG_ARGISNULL(7) ? NULL :
		PG_GETARG_JSONB_P(7);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *horizon;
	Interval	zero;
	ForecastState fs;
	LcForecastRow *rows;
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	MemoryContext callercxt;
	Portal		portal;
	LcForecastScope scope = LC_FORECAST_DUE;
	const LcPolicy *policy = NULL;
	const LcGraph *last_graph = NULL;
	char	   *cached_name = NULL;
	int			cached_version = 0;
	ForecastOut *out;
	int			nout = 0;
	int			maxout = 0;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("horizon must not be null")));
	horizon = PG_GETARG_INTERVAL_P(0);
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(horizon),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be a positive interval")));
	if (def != NULL && policy_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy must not be null when a definition is given"),
				 errhint("Name the policy whose running users the definition would apply to.")));
	if (wdef != NULL && workflow == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("workflow must not be null when a workflow_definition is given"),
				 errhint("Name the workflow whose running instances the definition would apply to.")));
	if (PG_NARGS() >= 8 && PG_ARGISNULL(7))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state_map must not be null"),
				 errhint("Pass '{}' to map every state to the state of the same name.")));
	if (map != NULL && wdef == NULL && JB_ROOT_COUNT(map) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a state_map needs a workflow_definition"),
				 errhint("It maps the states of the running instances to those of the proposed definition.")));
	if (wdef != NULL && def != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a definition and a workflow_definition cannot be forecast together"),
				 errhint("Forecast a proposed policy or a proposed workflow version, one at a time.")));

	memset(&fs, 0, sizeof(fs));
	callercxt = CurrentMemoryContext;
	fs.cxt = callercxt;
	SPI_connect();
	if (tenant != NULL)
		acting_check_tenant(tenant);
	fs.limited = acting_is_limited();
	if (policy_name != NULL && cache_policy_latest(policy_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", policy_name)));
	if (workflow != NULL && cache_workflow_latest(workflow) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", workflow),
				 errhint("Define it with lifecycle_define_workflow().")));
	if (def != NULL)
	{
		char	   *own = store_policy_workflow(policy_name);

		/* A proposed policy is forecast with the user workflow's graph. */
		if (own != NULL && strcmp(own, LC_USER_WORKFLOW) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a proposed policy definition can be forecast only for a policy of the user workflow"),
					 errhint("Forecast the workflow's running instances under a proposed workflow_definition.")));
		fs.hypothetical = forecast_definition(policy_name, def,
											  PG_ARGISNULL(4) ? NULL :
											  PG_GETARG_ARRAYTYPE_P(4));
		scope = LC_FORECAST_POLICY;
	}
	if (wdef != NULL)
	{
		LcWorkflowGroup *groups;
		int			ngroups;

		/* Compiled and proved as lifecycle_define_workflow() would. */
		fs.proposed = workflow_compile(workflow,
									   cache_workflow_latest(workflow) + 1,
									   wdef, callercxt);
		migrate_check_map(fs.proposed, map);
		ngroups = store_migrate_groups(workflow, INT_MAX, &groups);
		fs.state_map = migrate_resolve(fs.proposed, map, groups, ngroups,
									   "migrating them to this definition needs a state_map");
		scope = LC_FORECAST_WORKFLOW;
	}

	fs.now = clock_now();
	fs.end = machine_add(fs.now, horizon);
	fs.first_day = forecast_date(fs.now);
	fs.ndays = forecast_date(fs.end) - fs.first_day + 1;
	if (fs.ndays > FORECAST_MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be at most ten years")));
	fs.quarter0 = fs.now - (fs.now % FORECAST_QUARTER +
							(fs.now % FORECAST_QUARTER < 0 ? FORECAST_QUARTER : 0));
	fs.nquarters = (fs.end - fs.quarter0) / FORECAST_QUARTER + 1;
	fs.quarter_day = palloc0(sizeof(int32) * fs.nquarters);

	rows = palloc(sizeof(LcForecastRow) * FORECAST_BATCH);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "lifecycle forecast batch",
									 ALLOCSET_DEFAULT_SIZES);
	portal = store_bulk_forecast_open(fs.end, policy_name, tenant, workflow,
									  scope);
	for (;;)
	{
		MemoryContextReset(batchcxt);
		fs.tenant_seen = NULL;
		n = store_bulk_forecast_fetch(portal, FORECAST_BATCH, rows, batchcxt);
		if (n == 0)
			break;
		oldcxt = MemoryContextSwitchTo(batchcxt);
		for (int i = 0; i < n; i++)
		{
			LcForecastRow *r = &rows[i];
			TimestampTz at = r->next_at;
			LcEvent		ev;

			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			/* Count only what the acting role may see, as the views do. */
			if (fs.limited)
			{
				if (fs.tenant_seen == NULL ||
					strcmp(fs.tenant_seen, r->tenant) != 0)
				{
					fs.tenant_seen = r->tenant;
					fs.tenant_ok = acting_tenant_visible(r->tenant);
				}
				if (!fs.tenant_ok)
					continue;
			}
			if (fs.proposed != NULL)
			{
				/* As migrated: the state mapped, the timer re-armed. */
				const char *target = migrate_map_get(fs.state_map,
													 r->state_name);

				policy = forecast_proposed_policy(&fs, r->policy);
				r->user.state = migrate_target_state(fs.proposed,
													 target != NULL ? target :
													 r->state_name);
				if (r->user.state < 0)
					continue;	/* reached meanwhile: not migrated */
				machine_next_timer(policy, &r->user, &at, &ev);
				forecast_user(&fs, policy, &r->user, at, ev);
				continue;
			}
			/* The row's own workflow version's graph. */
			if (last_graph == NULL ||
				last_graph->version != r->workflow_version ||
				strcmp(last_graph->name, r->workflow) != 0)
				last_graph = cache_graph(r->workflow, r->workflow_version);
			r->user.state = machine_state_from_name(last_graph, r->state_name);
			ev = r->event_name == NULL ? LC_EV_NONE :
				machine_event_from_name(last_graph, r->event_name);
			if (fs.hypothetical != NULL)
			{
				policy = fs.hypothetical;
				machine_next_timer(policy, &r->user, &at, &ev);
			}
			else if (policy == NULL || cached_version != r->policy_version ||
					 strcmp(cached_name, r->policy) != 0)
			{
				policy = policy_get(r->policy, r->policy_version);
				cached_version = r->policy_version;
				if (cached_name != NULL)
					pfree(cached_name);
				cached_name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt,
												  r->policy);
			}
			forecast_user(&fs, policy, &r->user, at, ev);
		}
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	/*
	 * Rows by day, workflow and event name; versions of one workflow that
	 * share an event name are summed.  Names are the graphs' (cached for
	 * the transaction, or compiled in the caller's context).
	 */
	out = NULL;
	for (int s = 0; s < fs.nslots; s++)
	{
		const LcGraph *g = fs.slots[s].graph;

		for (int d = 0; d < fs.ndays; d++)
			for (int e = 0; e < g->n_events; e++)
			{
				int64		c = fs.slots[s].counts[d * g->n_events + e];

				if (c == 0 || g->events[e].kind == LC_KIND_CALL)
					continue;
				if (nout == maxout)
				{
					maxout = Max(64, maxout * 2);
					out = out == NULL ? palloc(sizeof(ForecastOut) * maxout) :
						repalloc(out, sizeof(ForecastOut) * maxout);
				}
				out[nout].day = d;
				out[nout].workflow = g->name;
				out[nout].event = machine_event_name(g, e);
				out[nout].n = c;
				nout++;
			}
	}
	if (nout > 1)
		qsort(out, nout, sizeof(ForecastOut), forecast_out_cmp);

	InitMaterializedSRF(fcinfo, 0);
	for (int k = 0; k < nout; k++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int64		c = out[k].n;

		while (k + 1 < nout && forecast_out_cmp(&out[k], &out[k + 1]) == 0)
			c += out[++k].n;
		values[0] = DateADTGetDatum(fs.first_day + out[k].day);
		values[1] = CStringGetTextDatum(out[k].event);
		values[2] = Int64GetDatum(c);
		values[3] = CStringGetTextDatum(out[k].workflow);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}
	return (Datum) 0;
}
