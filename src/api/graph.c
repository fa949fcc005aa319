/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  lifecycle.transitions(): machine.c's transition table as rows, with
 *	  the intervals of one policy version, for DBAs and for every SQL part
 *	  that needs the graph (lifecycle_graph(), the tests).
 *
 * IDENTIFICATION
 *	  src/graph.c
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

#include "machine.h"
#include "policy.h"
#include "store.h"

PG_FUNCTION_INFO_V1(lifecycle_transitions);

#define GRAPH_COLUMNS 17

static Datum graph_text(const char *s, bool *isnull);
static Datum graph_interval(const Interval *iv);

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
 * lifecycle.transitions(policy, version) -> one row per (state, event):
 * from_state, event, kind (call, timer), role (app, admin, worker),
 * to_state, effect (transition, reminder, touch, hold, release, noop,
 * refused), message, hook, erases, stopped_by_hold; for timers their
 * anchor, interval_key and the policy's interval, or the reminders and
 * whether they count back from the deadline; the deadline_event a timer
 * enforces; the hint of a refusal.  version NULL: the latest.
 */
Datum
lifecycle_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	int			version;
	LcPolicy   *policy;
	LcEdgeInfo *edges;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	version = PG_ARGISNULL(1) ? store_policy_latest(name, NULL) : PG_GETARG_INT32(1);
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("policy \"%s\" does not exist", name),
				 errhint("Define it with lifecycle_define_policy().")));
	policy = policy_get(name, version);
	SPI_finish();

	n = machine_edges(&edges);
	for (int i = 0; i < n; i++)
	{
		const LcEdgeInfo *e = &edges[i];
		Datum		v[GRAPH_COLUMNS];
		bool		nl[GRAPH_COLUMNS];
		bool		timer = machine_is_timer(e->event);

		memset(nl, 0, sizeof(nl));
		v[0] = graph_text(machine_state_name(e->from), &nl[0]);
		v[1] = graph_text(machine_event_name(e->event), &nl[1]);
		v[2] = graph_text(timer ? "timer" : "call", &nl[2]);
		v[3] = graph_text(machine_event_role(e->event), &nl[3]);
		v[4] = graph_text(machine_state_name(e->to), &nl[4]);
		v[5] = graph_text(e->effect, &nl[5]);
		v[6] = graph_text(machine_message_name(e->message), &nl[6]);
		v[7] = graph_text(e->hook == LC_HOOK_NONE ? NULL : policy_hook_name(e->hook), &nl[7]);
		v[8] = BoolGetDatum(e->erase);
		v[9] = BoolGetDatum(e->stopped_by_hold);
		nl[10] = nl[11] = nl[12] = nl[13] = nl[14] = true;
		if (e->interval != LC_IV_NONE || e->reminders != LC_RM_NONE)
			v[10] = graph_text(machine_anchor_name(e->anchor), &nl[10]);
		if (e->interval != LC_IV_NONE)
		{
			v[11] = graph_text(policy_interval_name(e->interval), &nl[11]);
			v[12] = graph_interval(&policy->intervals[e->interval]);
			nl[12] = false;
		}
		if (e->reminders != LC_RM_NONE)
		{
			int			k = policy->n_reminders[e->reminders];
			Datum	   *r = palloc(sizeof(Datum) * Max(k, 1));

			v[11] = graph_text(policy_reminder_name(e->reminders), &nl[11]);
			for (int j = 0; j < k; j++)
				r[j] = graph_interval(&policy->reminders[e->reminders][j]);
			v[13] = PointerGetDatum(construct_array(r, k, INTERVALOID,
													sizeof(Interval), false,
													TYPALIGN_DOUBLE));
			nl[13] = false;
			v[14] = BoolGetDatum(e->before);
			nl[14] = false;
		}
		v[15] = graph_text(e->deadline_event, &nl[15]);
		v[16] = graph_text(e->hint, &nl[16]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nl);
	}
	return (Datum) 0;
}
