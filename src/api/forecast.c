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
 * Only the users whose next timer falls inside the horizon are read (the
 * partial index on next_at), over a read-only cursor in batches; the
 * counts live in an array of days by events.
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
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "machine.h"
#include "policy.h"
#include "store.h"
#include "store_bulk.h"

PG_FUNCTION_INFO_V1(lifecycle_forecast_internal);

#define FORECAST_BATCH			10000
#define FORECAST_MAX_STEPS		64	/* per user: far more than any horizon needs */
#define FORECAST_MAX_DAYS		3700	/* a horizon of at most ten years */
#define FORECAST_QUARTER		(15 * 60 * USECS_PER_SEC)

typedef struct ForecastState
{
	TimestampTz now;
	TimestampTz end;
	DateADT		first_day;
	int			ndays;
	const LcGraph *graph;		/* the workflow forecast */
	int64	   *counts;			/* ndays * graph->n_events */
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
			fs->counts[day * fs->graph->n_events + o.history_event]++;
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
 * lifecycle._forecast(horizon, policy, tenant, definition, search_schemas)
 *	   -> table(day date, event text, users bigint)
 */
Datum
lifecycle_forecast_internal(PG_FUNCTION_ARGS)
{
	char	   *policy_name = args_opt_text_arg(fcinfo, 1, "policy",
												NAMEDATALEN - 1);
	char	   *tenant = args_opt_text_arg(fcinfo, 2, "tenant", LC_MAX_TENANT);
	Jsonb	   *def = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *horizon;
	Interval	zero;
	ForecastState fs;
	LcForecastRow *rows;
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	MemoryContext callercxt;
	Portal		portal;
	const LcPolicy *policy = NULL;
	char	   *cached_name = NULL;
	int			cached_version = 0;
	int		   *order;
	int			nevents = 0;
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

	memset(&fs, 0, sizeof(fs));
	callercxt = CurrentMemoryContext;
	SPI_connect();
	if (tenant != NULL)
		acting_check_tenant(tenant);
	fs.limited = acting_is_limited();
	if (policy_name != NULL && cache_policy_latest(policy_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", policy_name)));
	if (def != NULL)
		fs.hypothetical = forecast_definition(policy_name, def,
											  PG_ARGISNULL(4) ? NULL :
											  PG_GETARG_ARRAYTYPE_P(4));

	fs.graph = cache_graph(LC_USER_WORKFLOW, 1);
	order = MemoryContextAlloc(callercxt, sizeof(int) * fs.graph->n_events);
	fs.now = clock_now();
	fs.end = machine_add(fs.now, horizon);
	fs.first_day = forecast_date(fs.now);
	fs.ndays = forecast_date(fs.end) - fs.first_day + 1;
	if (fs.ndays > FORECAST_MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be at most ten years")));
	/* The counts outlive SPI_finish(). */
	fs.counts = MemoryContextAllocZero(callercxt,
									   sizeof(int64) * fs.ndays * fs.graph->n_events);
	fs.quarter0 = fs.now - (fs.now % FORECAST_QUARTER +
							(fs.now % FORECAST_QUARTER < 0 ? FORECAST_QUARTER : 0));
	fs.nquarters = (fs.end - fs.quarter0) / FORECAST_QUARTER + 1;
	fs.quarter_day = palloc0(sizeof(int32) * fs.nquarters);

	rows = palloc(sizeof(LcForecastRow) * FORECAST_BATCH);
	batchcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "lifecycle forecast batch",
									 ALLOCSET_DEFAULT_SIZES);
	portal = store_bulk_forecast_open(fs.end, policy_name, tenant,
									  def != NULL);
	for (;;)
	{
		MemoryContextReset(batchcxt);
		fs.tenant_seen = NULL;
		n = store_bulk_forecast_fetch(portal, FORECAST_BATCH, rows, batchcxt,
									  fs.graph);
		if (n == 0)
			break;
		oldcxt = MemoryContextSwitchTo(batchcxt);
		for (int i = 0; i < n; i++)
		{
			LcForecastRow *r = &rows[i];
			TimestampTz at = r->next_at;
			LcEvent		ev = r->next_event;

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

	/* Rows by day, then by event name. */
	for (int e = 0; e < fs.graph->n_events; e++)
		if (fs.graph->events[e].kind != LC_KIND_CALL)
			order[nevents++] = e;
	for (int i = 1; i < nevents; i++)
		for (int j = i; j > 0 &&
			 strcmp(machine_event_name(fs.graph, order[j - 1]),
					machine_event_name(fs.graph, order[j])) > 0; j--)
		{
			int			t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}

	InitMaterializedSRF(fcinfo, 0);
	for (int d = 0; d < fs.ndays; d++)
		for (int k = 0; k < nevents; k++)
		{
			int64		c = fs.counts[d * fs.graph->n_events + order[k]];
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			if (c == 0)
				continue;
			values[0] = DateADTGetDatum(fs.first_day + d);
			values[1] = CStringGetTextDatum(machine_event_name(fs.graph, order[k]));
			values[2] = Int64GetDatum(c);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
								 values, nulls);
		}
	return (Datum) 0;
}
