/*-------------------------------------------------------------------------
 *
 * machine.c
 *	  The state machine, pure, over a compiled workflow (graph.h).
 *
 * A workflow's graph is data: its edges (from, event, to, message, hook,
 * effect, hint), per state the one timer that takes an instance out of it
 * (event, anchor, duration, deadline label, reminders), its parameters.
 * machine_apply(), machine_next_timer(), machine_deadline(), policy
 * validation (machine_prepare_policy()) and, through machine_edges(),
 * lifecycle.transitions(), lifecycle_graph() and the exhaustive machine
 * test all read the graph; nothing here knows any workflow's names.
 *
 * The reserved events hold, release, hold_lapse and erase work the same
 * in every workflow: when a graph has no edge of its own for them, the
 * machine's own apply (every live state).
 *
 * Nothing here touches SPI, the clock or the network.
 *
 * IDENTIFICATION
 *	  src/core/machine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "machine.h"

#define HINT_RELEASE "Use lifecycle_release() to end the legal hold first."
#define HINT_HOLD "Use lifecycle_hold() to place one."

static const char *const machine_anchor_names[LC_NUM_ANCHORS] = {
	[LC_ANCHOR_ENTERED] = "state_since",
	[LC_ANCHOR_DUE] = "state_due_at",
	[LC_ANCHOR_LAST_SEEN] = "last_seen",
	[LC_ANCHOR_STARTED] = "started_at",
};

static const char *const machine_effect_names[] = {
	"transition", "reminder", "touch", "hold", "release", "noop", "refused"
};

/*
 * The reserved events' edges, for graphs that do not spell them out:
 * from every live state (the from-set is checked in machine_find_edge()).
 * The erase edge's hook is the graph's hook named like the event.
 */
static const LcGraphEdge machine_reserved_edges[] = {
	{{0, 0}, LC_EV_ERASE, 0, LC_FX_MOVE, LC_HOLD_STOPS, -1, -1, true, NULL},
	{{0, 0}, LC_EV_HOLD, LC_STATE_SAME, LC_FX_HOLD, LC_HOLD_ANY, -1, -1, false, NULL},
	{{0, 0}, LC_EV_RELEASE, LC_STATE_SAME, LC_FX_RELEASE, LC_HOLD_NEEDS, -1, -1, false, NULL},
	{{0, 0}, LC_EV_HOLD_LAPSE, LC_STATE_SAME, LC_FX_RELEASE, LC_HOLD_NEEDS, -1, -1, false, NULL},
};

static bool machine_graph_has_edges_for(const LcGraph *g, LcEvent event);
static const LcGraphEdge *machine_find_edge(const LcGraph *g, LcState state,
											LcEvent event, LcGraphEdge *scratch);
static const LcGraphTimer *machine_find_timer(const LcGraph *g, LcState state);
static TimestampTz machine_anchor(const LcGraphTimer *t, const LcUser *user);
static void machine_timer_of(const LcPolicy *policy, const LcUser *user,
							 TimestampTz *next_at, LcEvent *next_event);
static const Interval *machine_reminders(const LcPolicy *policy,
										 const LcGraphTimer *t, int *n);
static void machine_check_reminders(const LcPolicy *policy,
									const LcGraphTimer *t);
static const char *machine_state_hint(const LcGraph *g, LcState state);

/*
 * State id from its name; elog on anything else (cannot happen: the value
 * comes from a column the engine wrote).
 */
LcState
machine_state_from_name(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_states; i++)
		if (strcmp(g->states[i].name, name) == 0)
			return i;
	elog(ERROR, "unknown state \"%s\" of workflow \"%s\"", name, g->name);
	return LC_STATE_NONE;		/* keep compiler quiet */
}

/*
 * Event id from its name; LC_EV_NONE for anything else.
 */
LcEvent
machine_event_from_name(const LcGraph *g, const char *name)
{
	for (int i = 0; i < g->n_events; i++)
		if (strcmp(g->events[i].name, name) == 0)
			return i;
	return LC_EV_NONE;
}

/*
 * Name of an anchor: the column a timer counts from.
 */
const char *
machine_anchor_name(LcAnchor anchor)
{
	Assert(anchor >= 0 && anchor < LC_NUM_ANCHORS);
	return machine_anchor_names[anchor];
}

/*
 * Can the event be a touch somewhere (most calls of it change nothing, so
 * the caller may look before locking)?
 */
bool
machine_event_may_touch(const LcGraph *g, LcEvent event)
{
	for (int i = 0; i < g->n_edges; i++)
		if (g->edges[i].event == event && g->edges[i].effect == LC_FX_TOUCH)
			return true;
	return false;
}

/*
 * A duration as text: its terms (parameter names or literals) joined by
 * " + ".
 */
char *
machine_duration_text(const LcGraph *g, const LcDuration *d)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < d->n_terms; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, " + ");
		if (d->terms[i].param >= 0)
			appendStringInfoString(&buf, g->params[d->terms[i].param].name);
		else
			appendStringInfoString(&buf,
								   DatumGetCString(DirectFunctionCall1(interval_out,
																	   IntervalPGetDatum(&d->terms[i].literal))));
	}
	return buf.data;
}

/*
 * ts + iv, with calendar arithmetic (months, days) done in UTC: a timer
 * falls due at the same instant whatever the TimeZone of the session or
 * worker that computes it (timestamp arithmetic on the UTC value).
 */
TimestampTz
machine_add(TimestampTz ts, const Interval *iv)
{
	TimestampTz result;
	int64		days;

	/*
	 * Without months, a UTC day is exactly 24 hours: the same sum as
	 * timestamp_pl_interval() computes (days first, then the time, each
	 * step in range), without its calendar conversions (the forecast adds
	 * millions of intervals).  Anything unusual (infinite, out of range)
	 * takes the general path and its errors.
	 */
	if (iv->month == 0 && !TIMESTAMP_NOT_FINITE(ts) &&
		!pg_mul_s64_overflow(iv->day, USECS_PER_DAY, &days) &&
		!pg_add_s64_overflow(ts, days, &result) &&
		IS_VALID_TIMESTAMP(result) &&
		!pg_add_s64_overflow(result, iv->time, &result) &&
		IS_VALID_TIMESTAMP(result))
		return result;
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_pl_interval,
												   TimestampTzGetDatum(ts),
												   PointerGetDatum(iv)));
}

/*
 * ts - iv, in UTC like machine_add(): ts plus the negated interval, which
 * is what timestamp_mi_interval() computes (a component that cannot be
 * negated takes that general path and its errors).
 */
TimestampTz
machine_sub(TimestampTz ts, const Interval *iv)
{
	Interval	neg;

	if (iv->month == PG_INT32_MIN || iv->day == PG_INT32_MIN ||
		iv->time == PG_INT64_MIN)
		return DatumGetTimestampTz(DirectFunctionCall2(timestamp_mi_interval,
													   TimestampTzGetDatum(ts),
													   PointerGetDatum(iv)));
	neg.month = -iv->month;
	neg.day = -iv->day;
	neg.time = -iv->time;
	return machine_add(ts, &neg);
}

/*
 * Does the graph spell out edges of this event?
 */
static bool
machine_graph_has_edges_for(const LcGraph *g, LcEvent event)
{
	for (int i = 0; i < g->n_edges; i++)
		if (g->edges[i].event == event)
			return true;
	return false;
}

/*
 * The edge for (state, event), or NULL when the graph has none.  A
 * reserved event the graph does not spell out takes the machine's own
 * edge (copied into *scratch to carry the graph's target and hook).
 */
static const LcGraphEdge *
machine_find_edge(const LcGraph *g, LcState state, LcEvent event,
				  LcGraphEdge *scratch)
{
	for (int i = 0; i < g->n_edges; i++)
		if (g->edges[i].event == event && lc_set_has(g->edges[i].from, state))
			return &g->edges[i];
	if (event < LC_NUM_RESERVED_EVENTS && state != LC_STATE_NONE &&
		state != g->erased && !machine_graph_has_edges_for(g, event))
	{
		for (int i = 0; i < lengthof(machine_reserved_edges); i++)
			if (machine_reserved_edges[i].event == event)
			{
				*scratch = machine_reserved_edges[i];
				if (event == LC_EV_ERASE)
				{
					scratch->to = g->erased;
					for (int h = 0; h < g->n_hooks; h++)
						if (strcmp(g->hooks[h], g->events[LC_EV_ERASE].name) == 0)
							scratch->hook = h;
				}
				for (int s = 1; s < g->n_states; s++)
					if (s != g->erased)
						lc_set_add(scratch->from, s);
				return scratch;
			}
	}
	return NULL;
}

/*
 * The timer of a state, or NULL (erased, none).
 */
static const LcGraphTimer *
machine_find_timer(const LcGraph *g, LcState state)
{
	if (state < 0 || state >= g->n_states || !g->states[state].timer.present)
		return NULL;
	return &g->states[state].timer;
}

/*
 * The time a timer counts from, for this instance.
 */
static TimestampTz
machine_anchor(const LcGraphTimer *t, const LcUser *user)
{
	switch (t->anchor)
	{
		case LC_ANCHOR_LAST_SEEN:
			return user->last_seen != 0 ? user->last_seen : user->state_since;
		case LC_ANCHOR_DUE:
			return user->state_due_at != 0 ? user->state_due_at : user->state_since;
		case LC_ANCHOR_STARTED:
			return user->started != 0 ? user->started : user->state_since;
		default:
			return user->state_since;
	}
}

/*
 * ts + a duration at the policy's values, term after term, with the
 * timers' calendar arithmetic.
 */
TimestampTz
machine_duration_add(const LcPolicy *policy, const LcDuration *d,
					 TimestampTz ts)
{
	for (int i = 0; i < d->n_terms; i++)
	{
		int			p = d->terms[i].param;

		ts = machine_add(ts, p >= 0 ? &policy->params.v[p].value :
						 &d->terms[i].literal);
	}
	return ts;
}

/*
 * A timer's reminder offsets, in firing order, at the policy's values.
 */
static const Interval *
machine_reminders(const LcPolicy *policy, const LcGraphTimer *t, int *n)
{
	if (!t->has_reminders)
	{
		*n = 0;
		return NULL;
	}
	if (t->reminders.param >= 0)
	{
		*n = policy->params.v[t->reminders.param].n_list;
		return policy->params.v[t->reminders.param].list;
	}
	*n = t->reminders.n_literals;
	return t->reminders.literals;
}

/*
 * The retention deadline of an instance (docs/COMPLIANCE.md, "Retention
 * deadlines"): the time by which the policy's next state-changing step
 * must have happened, from the state's anchor and the policy version,
 * whatever reminder is pending and whether or not a hold is in force.
 * Returns 0 (and NULL as the label) for a state without one.
 */
TimestampTz
machine_deadline(const LcPolicy *policy, const LcUser *user,
				 const char **deadline_event)
{
	const LcGraphTimer *t = machine_find_timer(policy->graph, user->state);

	if (deadline_event)
		*deadline_event = t ? t->deadline : NULL;
	if (t == NULL)
		return 0;
	return machine_duration_add(policy, &t->after, machine_anchor(t, user));
}

/*
 * The state's next timer ignoring any hold: the earlier of the next
 * reminder and the deadline.  A reminder is never armed at or after the
 * deadline it announces.
 */
static void
machine_timer_of(const LcPolicy *policy, const LcUser *user,
				 TimestampTz *next_at, LcEvent *next_event)
{
	const LcGraphTimer *t = machine_find_timer(policy->graph, user->state);
	TimestampTz deadline;
	const Interval *list;
	int			n;

	*next_at = 0;
	*next_event = LC_EV_NONE;
	if (t == NULL)
		return;
	deadline = machine_deadline(policy, user, NULL);
	list = machine_reminders(policy, t, &n);
	if (user->step < n)
	{
		const Interval *r = &list[user->step];
		TimestampTz at = t->reminders.before ? machine_sub(deadline, r) :
			machine_add(machine_anchor(t, user), r);

		if (at < deadline)
		{
			*next_at = at;
			*next_event = t->reminders.event;
			return;
		}
	}
	*next_at = deadline;
	*next_event = t->event;
}

/*
 * When does an instance fall due next, and for what?  A held one has no
 * timer but the lapse of the hold.
 */
void
machine_next_timer(const LcPolicy *policy, const LcUser *user,
				   TimestampTz *next_at, LcEvent *next_event)
{
	if (user->held)
	{
		*next_at = user->hold_until;
		*next_event = user->hold_until != 0 ? LC_EV_HOLD_LAPSE : LC_EV_NONE;
		return;
	}
	machine_timer_of(policy, user, next_at, next_event);
}

/*
 * The HINT of 55000 for an event a state does not allow: the state's own,
 * or the events it allows.
 */
static const char *
machine_state_hint(const LcGraph *g, LcState state)
{
	StringInfoData buf;
	int			n = 0;

	if (g->states[state].hint != NULL)
		return g->states[state].hint;

	/*
	 * The reserved states carry no hint in a definition.  Only the
	 * built-in user workflow has functions named after its events.
	 */
	if (state == LC_STATE_NONE)
		return strcmp(g->name, "user") == 0 ?
			psprintf("Use lifecycle_%s() to start a lifecycle.",
					 g->events[g->start_event].name) :
			"Use lifecycle_start() to start an instance.";
	if (state == g->erased)
		return "Use lifecycle_status() to see the subject's state.";
	initStringInfo(&buf);
	for (int e = 0; e < g->n_events; e++)
	{
		LcGraphEdge scratch;
		const LcGraphEdge *edge;

		if (g->events[e].kind != LC_KIND_CALL)
			continue;
		edge = machine_find_edge(g, state, e, &scratch);
		if (edge == NULL || edge->effect == LC_FX_REFUSE)
			continue;
		appendStringInfoString(&buf, n++ == 0 ? "Allowed in this state: " : ", ");
		appendStringInfoString(&buf, g->events[e].name);
	}
	if (n == 0)
		return "No event is allowed in this state.";
	appendStringInfoChar(&buf, '.');
	return buf.data;
}

/*
 * Apply one event to one instance at "now".
 *
 * A transition into a state takes "now" (the time it fires) as its
 * state_since, so a late notice still leaves the full grace after it; it
 * records as state_due_at when it was due (the timer's due time, or now
 * for a call), from which timers anchored at "due" count, so lateness
 * never extends retention.  Entering a state whose timer counts from
 * last_seen starts last_seen anew.  A reminder counts one step more;
 * reached at or after its deadline it is skipped (history
 * reminder_skipped, no message).
 */
void
machine_apply(const LcPolicy *policy, const LcUser *user, LcEvent event,
			  TimestampTz now, LcOutcome *out)
{
	const LcGraph *g = policy->graph;
	const LcGraphEdge *edge;
	const LcGraphTimer *t;
	LcGraphEdge scratch;
	LcUser		after;

	memset(out, 0, sizeof(*out));
	out->to = user->state;
	out->hook = LC_HOOK_NONE;
	out->message = LC_MSG_NONE;
	out->history_event = event;
	out->next_event = LC_EV_NONE;
	after = *user;

	edge = event >= 0 && event < g->n_events ?
		machine_find_edge(g, user->state, event, &scratch) : NULL;
	if (edge == NULL || edge->effect == LC_FX_REFUSE)
	{
		out->allowed = false;
		out->hint = edge ? edge->hint : machine_state_hint(g, user->state);
		return;
	}
	if (edge->effect == LC_FX_NOOP)
	{
		out->allowed = true;
		out->noop = true;
		return;
	}
	if ((edge->hold == LC_HOLD_STOPS && user->held) ||
		(edge->hold == LC_HOLD_NEEDS && !user->held))
	{
		out->allowed = false;
		out->hint = user->held ? HINT_RELEASE : HINT_HOLD;
		return;
	}

	out->allowed = true;
	out->transition = true;
	out->to = edge->to == LC_STATE_SAME ? user->state : edge->to;
	out->message = edge->message;
	out->hook = edge->hook;
	out->erase = edge->erase;

	switch (edge->effect)
	{
		case LC_FX_TOUCH:
			/* At most once per touch_granularity, never history. */
			out->transition = false;
			if (user->last_seen != 0 &&
				now < machine_add(user->last_seen, &policy->touch_granularity))
			{
				out->noop = true;
				return;
			}
			after.last_seen = now;
			break;
		case LC_FX_REMINDER:
			after.step = user->step + 1;
			if (now >= machine_deadline(policy, user, NULL))
			{
				out->message = LC_MSG_NONE;
				out->history_event = LC_EV_REMINDER_SKIPPED;
			}
			break;
		case LC_FX_HOLD:
			after.held = true;
			after.hold_until = user->hold_until;
			break;
		case LC_FX_RELEASE:
			after.held = false;
			after.hold_until = 0;
			out->release = true;
			break;
		default:
			{
				TimestampTz due = now;

				if (machine_is_timer(g, event))
				{
					TimestampTz at;
					LcEvent		ev;

					machine_timer_of(policy, user, &at, &ev);
					if (ev == event && at != 0 && at < now)
						due = at;
				}
				after.state = out->to;
				after.state_since = now;
				after.state_due_at = due;
				after.step = 0;
				if (user->state == LC_STATE_NONE)
					after.started = now;
				t = machine_find_timer(g, out->to);
				if (t != NULL && t->anchor == LC_ANCHOR_LAST_SEEN)
					after.last_seen = now;
			}
			break;
	}

	out->held = after.held;
	out->hold_until = after.hold_until;
	out->state_since = after.state_since;
	out->state_due_at = after.state_due_at;
	out->last_seen = after.last_seen;
	out->step = after.step;
	out->deadline_at = machine_deadline(policy, &after, &out->deadline_event);

	/*
	 * A message in a state whose deadline is announced by reminders before
	 * it (a notice) carries that deadline.
	 */
	t = machine_find_timer(g, after.state);
	if (out->message != LC_MSG_NONE && t != NULL && t->has_reminders &&
		t->reminders.before)
		out->archive_at = out->deadline_at;
	machine_next_timer(policy, &after, &out->next_at, &out->next_event);
}

/*
 * Check that no reminder of a timer can fall at or after its deadline (or
 * at or before its anchor), nor change places with another, for any start
 * date: with the timers' own calendar arithmetic, every day of six years
 * (two leap years and the non-leap 2100) is tried, so "1 mon" is 28 days
 * in February.  Raises 22023 naming the reminders' key.
 */
static void
machine_check_reminders(const LcPolicy *policy, const LcGraphTimer *t)
{
	const LcGraph *g = policy->graph;
	char	   *window = machine_duration_text(g, &t->after);
	const char *key = t->reminders.param >= 0 ?
		g->params[t->reminders.param].name : window;
	TimestampTz start = (TimestampTz) (95 * 365 + 24) * USECS_PER_DAY;	/* 2095-01-01 */
	const Interval *list;
	int			n;

	list = machine_reminders(policy, t, &n);
	for (int d = 0; d < 6 * 366; d++)
	{
		TimestampTz s = start + (TimestampTz) d * USECS_PER_DAY;
		TimestampTz deadline = machine_duration_add(policy, &t->after, s);
		TimestampTz prev = s;

		if (deadline <= s)
			policy_invalid(window, "interval must be positive");
		for (int i = 0; i < n; i++)
		{
			const Interval *r = &list[i];
			TimestampTz at = t->reminders.before ? machine_sub(deadline, r) : machine_add(s, r);

			if (at >= deadline || at <= s)
				policy_invalid(key,
							   "each reminder must fall inside %s for every start date (calendar months count: \"1 mon\" is 28 days in February)",
							   window);
			if (at < prev)
				policy_invalid(key,
							   "reminders must fall in the same order for every start date (calendar months count: \"1 mon\" is 28 days in February)");
			prev = at;
		}
	}
}

/*
 * Put each list of reminders in firing order (after the anchor:
 * ascending; before the deadline: descending) and validate every timer
 * with reminders at the policy's values, with their own arithmetic
 * (22023).
 */
void
machine_prepare_policy(LcPolicy *policy)
{
	const LcGraph *g = policy->graph;

	for (int s = 0; s < g->n_states; s++)
	{
		const LcGraphTimer *t = machine_find_timer(g, s);
		Interval   *r;
		int			n;

		if (t == NULL || !t->has_reminders)
			continue;
		if (t->reminders.param >= 0)
		{
			r = policy->params.v[t->reminders.param].list;
			n = policy->params.v[t->reminders.param].n_list;
			for (int i = 1; i < n; i++)
				for (int j = i; j > 0; j--)
				{
					int			c = DatumGetInt32(DirectFunctionCall2(interval_cmp,
																	  IntervalPGetDatum(&r[j - 1]),
																	  IntervalPGetDatum(&r[j])));
					Interval	tmp;

					if (t->reminders.before ? c >= 0 : c <= 0)
						break;
					tmp = r[j];
					r[j] = r[j - 1];
					r[j - 1] = tmp;
				}
		}
		machine_check_reminders(policy, t);
	}
}

/*
 * The table for lifecycle.transitions(): one row per (state, event) edge,
 * with its timer when the event is one; the state before the start comes
 * last in each edge.  Allocated in the current context.
 */
int
machine_edges(const LcGraph *g, LcEdgeInfo **edges)
{
	int			nedges = g->n_edges + lengthof(machine_reserved_edges);
	LcEdgeInfo *out = palloc0(sizeof(LcEdgeInfo) * nedges * g->n_states);
	int			n = 0;

	for (int i = 0; i < nedges; i++)
	{
		LcGraphEdge scratch;
		const LcGraphEdge *e;

		if (i < g->n_edges)
			e = &g->edges[i];
		else
		{
			LcEvent		ev = machine_reserved_edges[i - g->n_edges].event;

			if (machine_graph_has_edges_for(g, ev))
				continue;
			e = machine_find_edge(g, 1, ev, &scratch);
			if (e == NULL)
				continue;
		}

		for (int k = 1; k <= g->n_states; k++)
		{
			int			s = k % g->n_states;	/* none last */
			LcEdgeInfo *x;
			const LcGraphTimer *t;

			if (!lc_set_has(e->from, s))
				continue;
			x = &out[n++];
			x->from = s;
			x->event = e->event;
			x->to = e->to == LC_STATE_SAME ? s : e->to;
			x->effect = machine_effect_names[e->effect];
			x->message = e->message;
			x->hook = e->hook;
			x->erase = e->erase;
			x->stopped_by_hold = e->hold == LC_HOLD_STOPS;
			x->hint = e->hint;
			t = machine_find_timer(g, s);
			if (t != NULL && t->event == e->event)
				x->timer = t;
			else if (t != NULL && t->has_reminders &&
					 t->reminders.event == e->event)
			{
				x->timer = t;
				x->reminder = true;
			}
		}
	}
	*edges = out;
	return n;
}
