/*-------------------------------------------------------------------------
 *
 * machine.c
 *	  The lifecycle state machine, pure: the transition table (README.md,
 *	  "The lifecycle") as constant arrays, and the functions over them.
 *
 * The graph lives here and nowhere else.  machine_edges[] holds every
 * edge (from, event, to, message, hook, effect, hint), including the
 * idempotent calls and the refusals with a hint of their own;
 * machine_timers[] holds, per state, the timer that takes the user out of
 * it (its event, anchor and interval key, the deadline it enforces) and
 * the reminders before it.  machine_apply(), machine_next_timer(),
 * machine_deadline(), policy validation (machine_prepare_policy()), and
 * through machine_edges() lifecycle.transitions(), lifecycle_graph() and
 * the exhaustive machine test all read these arrays: adding an edge is
 * one line of machine_edges[].
 *
 * Nothing here touches SPI, the clock or the network.
 *
 * IDENTIFICATION
 *	  src/machine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "machine.h"

/* What an edge does besides moving the state. */
typedef enum LcEffect
{
	LC_FX_MOVE = 0,				/* a transition: the state is entered anew */
	LC_FX_REMINDER,				/* one reminder more; skipped past deadline */
	LC_FX_TOUCH,				/* last_seen moves, no history */
	LC_FX_HOLD,					/* a legal hold is placed */
	LC_FX_RELEASE,				/* the legal hold ends */
	LC_FX_NOOP,					/* idempotent: nothing written */
	LC_FX_REFUSE				/* 55000 with the edge's hint */
} LcEffect;

/* How an edge meets a legal hold. */
typedef enum LcHoldRule
{
	LC_HOLD_ANY = 0,			/* works held or not */
	LC_HOLD_STOPS,				/* refused while held */
	LC_HOLD_NEEDS				/* refused unless held */
} LcHoldRule;

/* One line of the transition table; "from" is a set of states. */
typedef struct LcEdge
{
	uint32		from;
	LcEvent		event;
	LcState		to;
	LcMessage	message;
	LcHook		hook;
	LcEffect	effect;
	LcHoldRule	hold;
	bool		erase;
	const char *hint;			/* LC_FX_REFUSE only */
} LcEdge;

#define S(x)	(1u << LC_##x)
#define LIVE	(S(INVITED) | S(ACTIVE) | S(DORMANT) | S(COMPLETED) | S(ARCHIVED) | S(EXPIRED))
#define EDGE(from, ev, to, msg, hook, fx, hold, erase, hint) \
	{from, LC_EV_##ev, LC_##to, LC_MSG_##msg, LC_HOOK_##hook, LC_FX_##fx, LC_HOLD_##hold, erase, hint}

static const LcEdge machine_edges_table[] = {
	/* from                           event     to   message hook  effect  hold  erase */
	EDGE(S(NONE) | S(EXPIRED), INVITE, INVITED, INVITE, NONE, MOVE, ANY, false, NULL),
	EDGE(S(INVITED) | S(ACTIVE) | S(DORMANT) | S(COMPLETED), INVITE, SAME, NONE, NONE, NOOP, ANY, false, NULL),
	EDGE(S(INVITED), INVITE_REMINDER, SAME, INVITE_REMINDER, NONE, REMINDER, STOPS, false, NULL),
	EDGE(S(INVITED), EXPIRE, EXPIRED, NONE, NONE, MOVE, STOPS, false, NULL),
	EDGE(S(INVITED), REGISTER, ACTIVE, NONE, NONE, MOVE, ANY, false, NULL),
	EDGE(S(ACTIVE), REGISTER, SAME, NONE, NONE, NOOP, ANY, false, NULL),
	EDGE(S(ACTIVE), TOUCH, SAME, NONE, NONE, TOUCH, ANY, false, NULL),
	EDGE(S(ACTIVE), DORMANT, DORMANT, ARCHIVE_NOTICE, NONE, MOVE, STOPS, false, NULL),
	EDGE(S(ACTIVE) | S(DORMANT), COMPLETE, COMPLETED, ARCHIVE_NOTICE, NONE, MOVE, ANY, false, NULL),
	EDGE(S(COMPLETED), COMPLETE, SAME, NONE, NONE, NOOP, ANY, false, NULL),
	EDGE(S(DORMANT) | S(COMPLETED), TOUCH, ACTIVE, NONE, NONE, MOVE, ANY, false, NULL),
	EDGE(S(DORMANT) | S(COMPLETED), ARCHIVE_REMINDER, SAME, ARCHIVE_REMINDER, NONE, REMINDER, STOPS, false, NULL),
	EDGE(S(DORMANT) | S(COMPLETED), ARCHIVE_DUE, ARCHIVED, ARCHIVED, ARCHIVE, MOVE, STOPS, false, NULL),
	EDGE(S(ACTIVE) | S(DORMANT) | S(COMPLETED) | S(INVITED), ARCHIVE, ARCHIVED, ARCHIVED, ARCHIVE, MOVE, ANY, false, NULL),
	EDGE(S(ARCHIVED), ARCHIVE, SAME, NONE, NONE, NOOP, ANY, false, NULL),
	EDGE(S(EXPIRED), ARCHIVE, SAME, NONE, NONE, REFUSE, ANY, false, "Use lifecycle_erase() to remove an expired invitation."),
	EDGE(S(ARCHIVED) | S(DORMANT) | S(COMPLETED), RESTORE, ACTIVE, RESTORED, RESTORE, MOVE, ANY, false, NULL),
	EDGE(S(ACTIVE), RESTORE, SAME, NONE, NONE, NOOP, ANY, false, NULL),
	EDGE(S(ARCHIVED) | S(EXPIRED), ERASE_DUE, ERASED, NONE, ERASE, MOVE, STOPS, true, NULL),
	EDGE(LIVE, ERASE, ERASED, NONE, ERASE, MOVE, STOPS, true, NULL),
	EDGE(LIVE, HOLD, SAME, NONE, NONE, HOLD, ANY, false, NULL),
	EDGE(LIVE, RELEASE, SAME, NONE, NONE, RELEASE, NEEDS, false, NULL),
	EDGE(LIVE, HOLD_LAPSE, SAME, NONE, NONE, RELEASE, NEEDS, false, NULL),
};

/*
 * The timer that takes a user out of each state: its event, what it
 * counts from and with which of the policy's intervals, the retention
 * deadline it enforces (docs/COMPLIANCE.md, "Retention deadlines"), and the
 * reminders that announce it (offsets after the anchor, or before the
 * deadline).
 */
typedef struct LcTimer
{
	uint32		states;
	LcEvent		event;
	LcAnchor	anchor;
	LcIntervalKey interval;
	const char *deadline_event;
	LcReminderKey reminders;
	LcEvent		reminder_event;
	bool		before;
} LcTimer;

#define TIMER(states, ev, anchor, iv, deadline, rm, rmev, before) \
	{states, LC_EV_##ev, LC_ANCHOR_##anchor, LC_IV_##iv, deadline, LC_RM_##rm, LC_EV_##rmev, before}

static const LcTimer machine_timers[] = {
	TIMER(S(INVITED), EXPIRE, SINCE, INVITE_EXPIRES_AFTER, "expire", INVITE, INVITE_REMINDER, false),
	TIMER(S(ACTIVE), DORMANT, LAST_SEEN, DORMANT_AFTER, "dormant", NONE, NONE, false),
	TIMER(S(DORMANT) | S(COMPLETED), ARCHIVE_DUE, SINCE, ARCHIVE_AFTER, "archive", ARCHIVE, ARCHIVE_REMINDER, true),
	TIMER(S(ARCHIVED), ERASE_DUE, DUE, ERASE_AFTER, "erase", NONE, NONE, false),
	TIMER(S(EXPIRED), ERASE_DUE, DUE, EXPIRED_ERASE_AFTER, "erase", NONE, NONE, false),
};

/* Per state: its SQL name and the call that works from it. */
typedef struct LcStateInfo
{
	const char *name;
	const char *hint;
} LcStateInfo;

static const LcStateInfo machine_states[] = {
	[LC_INVITED] = {"invited", "Use lifecycle_register() first."},
	[LC_ACTIVE] = {"active", "Use lifecycle_complete() or lifecycle_archive()."},
	[LC_DORMANT] = {"dormant", "Use lifecycle_touch() to reactivate the account."},
	[LC_COMPLETED] = {"completed", "Use lifecycle_touch() to reactivate the account."},
	[LC_ARCHIVED] = {"archived", "Use lifecycle_restore() to bring the account back."},
	[LC_EXPIRED] = {"expired", "Use lifecycle_invite() to invite the subject again."},
	[LC_ERASED] = {"erased", "Use lifecycle_status() to see the subject's state."},
	[LC_NONE] = {"none", "Use lifecycle_invite() to start a lifecycle."},
};

#define HINT_RELEASE "Use lifecycle_release() to end the legal hold first."
#define HINT_HOLD "Use lifecycle_hold() to place one."

/* Per event: its name (unique), kind, and who may cause it. */
typedef struct LcEventInfo
{
	const char *name;
	LcEventKind kind;
	const char *role;
} LcEventInfo;

static const LcEventInfo machine_events[] = {
	[LC_EV_INVITE] = {"invite", LC_KIND_CALL, "app"},
	[LC_EV_REGISTER] = {"register", LC_KIND_CALL, "app"},
	[LC_EV_TOUCH] = {"touch", LC_KIND_CALL, "app"},
	[LC_EV_COMPLETE] = {"complete", LC_KIND_CALL, "app"},
	[LC_EV_ARCHIVE] = {"archive", LC_KIND_CALL, "admin"},
	[LC_EV_RESTORE] = {"restore", LC_KIND_CALL, "app"},
	[LC_EV_ERASE] = {"erase", LC_KIND_CALL, "app"},
	[LC_EV_HOLD] = {"hold", LC_KIND_CALL, "admin"},
	[LC_EV_RELEASE] = {"release", LC_KIND_CALL, "admin"},
	[LC_EV_INVITE_REMINDER] = {"invite_reminder", LC_KIND_TIMER, "worker"},
	[LC_EV_EXPIRE] = {"expire", LC_KIND_TIMER, "worker"},
	[LC_EV_DORMANT] = {"dormant", LC_KIND_TIMER, "worker"},
	[LC_EV_ARCHIVE_REMINDER] = {"archive_reminder", LC_KIND_TIMER, "worker"},
	[LC_EV_ARCHIVE_DUE] = {"archive_due", LC_KIND_TIMER, "worker"},
	[LC_EV_ERASE_DUE] = {"erase_due", LC_KIND_TIMER, "worker"},
	[LC_EV_HOLD_LAPSE] = {"hold_lapse", LC_KIND_TIMER, "worker"},
	[LC_EV_REMINDER_SKIPPED] = {"reminder_skipped", LC_KIND_RECORD, "worker"},
};

static const char *const machine_message_names[] = {
	NULL, "invite", "invite_reminder", "archive_notice", "archive_reminder",
	"archived", "restored"
};

static const char *const machine_anchor_names[] = {
	"state_since", "last_seen", "state_due_at"
};

static const char *const machine_effect_names[] = {
	"transition", "reminder", "touch", "hold", "release", "noop", "refused"
};

StaticAssertDecl(lengthof(machine_events) == LC_NUM_EVENTS,
				 "every event has a name");
StaticAssertDecl(lengthof(machine_states) == LC_NUM_STATES + 1,
				 "every state has a name");

static const LcEdge *machine_find_edge(LcState state, LcEvent event);
static const LcTimer *machine_find_timer(LcState state);
static TimestampTz machine_anchor(const LcTimer *t, const LcUser *user);
static void machine_timer_of(const LcPolicy *policy, const LcUser *user,
							 TimestampTz *next_at, LcEvent *next_event);
static void machine_check_reminders(const LcPolicy *policy,
									const LcTimer *t);

/*
 * Name of a state as in the SQL enum ("none" for no row).
 */
const char *
machine_state_name(LcState state)
{
	Assert(state >= 0 && state <= LC_NONE);
	return machine_states[state].name;
}

/*
 * State from its SQL enum label; elog on anything else (cannot happen: the
 * value comes from an enum column).
 */
LcState
machine_state_from_name(const char *name)
{
	for (int i = 0; i < LC_NUM_STATES; i++)
		if (strcmp(machine_states[i].name, name) == 0)
			return (LcState) i;
	elog(ERROR, "unknown lifecycle state \"%s\"", name);
	return LC_NONE;				/* keep compiler quiet */
}

/*
 * Name of an event as written to history.event and users.next_event.
 */
const char *
machine_event_name(LcEvent event)
{
	Assert(event >= 0 && event < LC_NUM_EVENTS);
	return machine_events[event].name;
}

/*
 * Event from its name; LC_EV_NONE for anything else.
 */
LcEvent
machine_event_from_name(const char *name)
{
	for (int i = 0; i < LC_NUM_EVENTS; i++)
		if (strcmp(machine_events[i].name, name) == 0)
			return (LcEvent) i;
	return LC_EV_NONE;
}

/*
 * Timer from users.next_event; LC_EV_NONE for anything else.  0.1.0 named
 * the archive and erase timers like the calls: "archive" and "erase" there
 * are the timers (rows the upgrade script has not converted yet).
 */
LcEvent
machine_timer_from_name(const char *name)
{
	LcEvent		ev = machine_event_from_name(name);

	if (ev == LC_EV_ARCHIVE)
		return LC_EV_ARCHIVE_DUE;
	if (ev == LC_EV_ERASE)
		return LC_EV_ERASE_DUE;
	return machine_is_timer(ev) ? ev : LC_EV_NONE;
}

/*
 * Call, timer or history-only record.
 */
LcEventKind
machine_event_kind(LcEvent event)
{
	Assert(event >= 0 && event < LC_NUM_EVENTS);
	return machine_events[event].kind;
}

/*
 * Who causes an event: "app", "admin" or "worker".
 */
const char *
machine_event_role(LcEvent event)
{
	Assert(event >= 0 && event < LC_NUM_EVENTS);
	return machine_events[event].role;
}

/*
 * True for events fired by the clock rather than by a call.
 */
bool
machine_is_timer(LcEvent event)
{
	return event >= 0 && event < LC_NUM_EVENTS &&
		machine_events[event].kind == LC_KIND_TIMER;
}

/*
 * Name of a message kind as in outbox.message; NULL for none.
 */
const char *
machine_message_name(LcMessage msg)
{
	Assert(msg >= 0 && msg < LC_NUM_MESSAGES);
	return machine_message_names[msg];
}

/*
 * Name of an anchor: the users column a timer counts from.
 */
const char *
machine_anchor_name(LcAnchor anchor)
{
	Assert(anchor >= 0 && anchor < LC_NUM_ANCHORS);
	return machine_anchor_names[anchor];
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
 * The edge for (state, event), or NULL when the graph has none.
 */
static const LcEdge *
machine_find_edge(LcState state, LcEvent event)
{
	for (int i = 0; i < lengthof(machine_edges_table); i++)
		if ((machine_edges_table[i].from & (1u << state)) != 0 &&
			machine_edges_table[i].event == event)
			return &machine_edges_table[i];
	return NULL;
}

/*
 * The timer of a state, or NULL (erased, none).
 */
static const LcTimer *
machine_find_timer(LcState state)
{
	if (state >= LC_NUM_STATES)
		return NULL;
	for (int i = 0; i < lengthof(machine_timers); i++)
		if ((machine_timers[i].states & (1u << state)) != 0)
			return &machine_timers[i];
	return NULL;
}

/*
 * The time a timer counts from, for this user.
 */
static TimestampTz
machine_anchor(const LcTimer *t, const LcUser *user)
{
	switch (t->anchor)
	{
		case LC_ANCHOR_LAST_SEEN:
			return user->last_seen != 0 ? user->last_seen : user->state_since;
		case LC_ANCHOR_DUE:
			return user->state_due_at != 0 ? user->state_due_at : user->state_since;
		default:
			return user->state_since;
	}
}

/*
 * The retention deadline of a user (docs/COMPLIANCE.md, "Retention deadlines"): the
 * time by which the policy's next state-changing step must have happened,
 * from the state's anchor and the policy version, whatever reminder is
 * pending and whether or not a hold is in force.  Returns 0 (and NULL as
 * the event) for a state without one.
 */
TimestampTz
machine_deadline(const LcPolicy *policy, const LcUser *user,
				 const char **deadline_event)
{
	const LcTimer *t = machine_find_timer(user->state);

	if (deadline_event)
		*deadline_event = t ? t->deadline_event : NULL;
	if (t == NULL)
		return 0;
	return machine_add(machine_anchor(t, user), &policy->intervals[t->interval]);
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
	const LcTimer *t = machine_find_timer(user->state);
	TimestampTz deadline;

	*next_at = 0;
	*next_event = LC_EV_NONE;
	if (t == NULL)
		return;
	deadline = machine_deadline(policy, user, NULL);
	if (t->reminders != LC_RM_NONE &&
		user->step < policy->n_reminders[t->reminders])
	{
		const Interval *r = &policy->reminders[t->reminders][user->step];
		TimestampTz at = t->before ? machine_sub(deadline, r) :
			machine_add(machine_anchor(t, user), r);

		if (at < deadline)
		{
			*next_at = at;
			*next_event = t->reminder_event;
			return;
		}
	}
	*next_at = deadline;
	*next_event = t->event;
}

/*
 * When does a user fall due next, and for what?  A held user has no timer
 * but the lapse of the hold.
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
 * Apply one event to one user at "now".
 *
 * A transition into a state takes "now" (the time it fires) as its
 * state_since, so a late dormancy or completion still leaves the full
 * grace after its notice; it records as state_due_at when it was due (the
 * timer's due time, or now for a call), from which retention deadlines
 * count (archived, expired), so lateness never extends retention.  A
 * reminder counts one step more; reached at or after its deadline it is
 * skipped (history reminder_skipped, no message).
 */
void
machine_apply(const LcPolicy *policy, const LcUser *user, LcEvent event,
			  TimestampTz now, LcOutcome *out)
{
	const LcEdge *edge;
	LcUser		after;

	memset(out, 0, sizeof(*out));
	out->to = user->state;
	out->hook = LC_HOOK_NONE;
	out->history_event = event;
	out->next_event = LC_EV_NONE;
	after = *user;

	edge = machine_find_edge(user->state, event);
	if (edge == NULL || edge->effect == LC_FX_REFUSE)
	{
		out->allowed = false;
		out->hint = edge ? edge->hint : machine_states[user->state].hint;
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
	out->to = edge->to == LC_SAME ? user->state : edge->to;
	out->message = edge->message;
	out->hook = edge->hook;
	out->erase = edge->erase;

	switch (edge->effect)
	{
		case LC_FX_TOUCH:
			/* At most once per touch_granularity, never history. */
			out->transition = false;
			if (user->last_seen != 0 &&
				now < machine_add(user->last_seen,
								  &policy->intervals[LC_IV_TOUCH_GRANULARITY]))
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

				if (machine_is_timer(event))
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
				if (out->to == LC_ACTIVE)
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
	if (out->message != LC_MSG_NONE && out->deadline_event != NULL &&
		machine_find_timer(after.state)->event == LC_EV_ARCHIVE_DUE)
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
machine_check_reminders(const LcPolicy *policy, const LcTimer *t)
{
	const Interval *window = &policy->intervals[t->interval];
	int			n = policy->n_reminders[t->reminders];
	const char *key = policy_reminder_name(t->reminders);
	TimestampTz start = (TimestampTz) (95 * 365 + 24) * USECS_PER_DAY;	/* 2095-01-01 */

	for (int d = 0; d < 6 * 366; d++)
	{
		TimestampTz s = start + (TimestampTz) d * USECS_PER_DAY;
		TimestampTz deadline = machine_add(s, window);
		TimestampTz prev = s;

		if (deadline <= s)
			policy_invalid(policy_interval_name(t->interval),
						   "interval must be positive");
		for (int i = 0; i < n; i++)
		{
			const Interval *r = &policy->reminders[t->reminders][i];
			TimestampTz at = t->before ? machine_sub(deadline, r) : machine_add(s, r);

			if (at >= deadline || at <= s)
				policy_invalid(key,
							   "each reminder must fall inside %s for every start date (calendar months count: \"1 mon\" is 28 days in February)",
							   policy_interval_name(t->interval));
			if (at < prev)
				policy_invalid(key,
							   "reminders must fall in the same order for every start date (calendar months count: \"1 mon\" is 28 days in February)");
			prev = at;
		}
	}
}

/*
 * Put each list of reminders in firing order (after the anchor:
 * ascending; before the deadline: descending) and validate the policy's
 * timers with their own arithmetic (22023).
 */
void
machine_prepare_policy(LcPolicy *policy)
{
	for (int k = 0; k < lengthof(machine_timers); k++)
	{
		const LcTimer *t = &machine_timers[k];
		Interval   *r;
		int			n;

		if (t->reminders == LC_RM_NONE)
			continue;
		r = policy->reminders[t->reminders];
		n = policy->n_reminders[t->reminders];
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0; j--)
			{
				int			c = DatumGetInt32(DirectFunctionCall2(interval_cmp,
																  IntervalPGetDatum(&r[j - 1]),
																  IntervalPGetDatum(&r[j])));
				Interval	tmp;

				if (t->before ? c >= 0 : c <= 0)
					break;
				tmp = r[j];
				r[j] = r[j - 1];
				r[j - 1] = tmp;
			}
		machine_check_reminders(policy, t);
	}
}

/*
 * The table for lifecycle.transitions(): one row per (state, event) edge,
 * with its timer when the event is one.  Allocated in the current context.
 */
int
machine_edges(LcEdgeInfo **edges)
{
	LcEdgeInfo *out = palloc0(sizeof(LcEdgeInfo) * lengthof(machine_edges_table) * (LC_NUM_STATES + 1));
	int			n = 0;

	for (int i = 0; i < lengthof(machine_edges_table); i++)
	{
		const LcEdge *e = &machine_edges_table[i];

		for (int s = 0; s <= LC_NONE; s++)
		{
			LcEdgeInfo *x;
			const LcTimer *t;

			if ((e->from & (1u << s)) == 0)
				continue;
			x = &out[n++];
			x->from = (LcState) s;
			x->event = e->event;
			x->to = e->to == LC_SAME ? (LcState) s : e->to;
			x->effect = machine_effect_names[e->effect];
			x->message = e->message;
			x->hook = e->hook;
			x->erase = e->erase;
			x->stopped_by_hold = e->hold == LC_HOLD_STOPS;
			x->hint = e->hint;
			x->interval = LC_IV_NONE;
			x->reminders = LC_RM_NONE;
			t = machine_find_timer((LcState) s);
			if (t != NULL && t->event == e->event)
			{
				x->anchor = t->anchor;
				x->interval = t->interval;
				x->deadline_event = t->deadline_event;
			}
			else if (t != NULL && t->reminder_event == e->event)
			{
				x->anchor = t->anchor;
				x->reminders = t->reminders;
				x->before = t->before;
			}
		}
	}
	*edges = out;
	return n;
}
