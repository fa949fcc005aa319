/*-------------------------------------------------------------------------
 *
 * machine.c
 *	  The lifecycle state machine, pure: DESIGN.md's transition table as a
 *	  constant array, and two functions over it.
 *
 * machine_apply() maps (policy, user, event, now) to an outcome: the new
 * state, the message and hook to run, whether personal data is erased, and
 * the next timer.  machine_next_timer() computes when a user in a state
 * falls due next.  Nothing here touches SPI, the clock or the network, so
 * every (state, event) pair is tested from SQL through
 * lifecycle._machine_step() and the whole table can be fuzzed.
 *
 * IDENTIFICATION
 *	  src/machine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "machine.h"

/* One row of DESIGN.md's transition table. */
typedef struct LcRule
{
	LcState		from;
	LcEvent		event;
	LcState		to;
	LcMessage	message;
	LcHook		hook;
	bool		erase;
} LcRule;

#define RULE(f, e, t, m, h, x) {LC_##f, LC_EV_##e, LC_##t, LC_MSG_##m, LC_HOOK_##h, x}

static const LcRule machine_rules[] = {
	RULE(NONE, INVITE, INVITED, INVITE, NONE, false),
	RULE(EXPIRED, INVITE, INVITED, INVITE, NONE, false),
	RULE(INVITED, INVITE_REMINDER, INVITED, INVITE_REMINDER, NONE, false),
	RULE(INVITED, EXPIRE, EXPIRED, NONE, NONE, false),
	RULE(INVITED, REGISTER, ACTIVE, NONE, NONE, false),
	RULE(ACTIVE, TOUCH, ACTIVE, NONE, NONE, false),
	RULE(ACTIVE, DORMANT, DORMANT, ARCHIVE_NOTICE, NONE, false),
	RULE(ACTIVE, COMPLETE, COMPLETED, ARCHIVE_NOTICE, NONE, false),
	RULE(DORMANT, COMPLETE, COMPLETED, ARCHIVE_NOTICE, NONE, false),
	RULE(DORMANT, TOUCH, ACTIVE, NONE, NONE, false),
	RULE(COMPLETED, TOUCH, ACTIVE, NONE, NONE, false),
	RULE(DORMANT, ARCHIVE_REMINDER, DORMANT, ARCHIVE_REMINDER, NONE, false),
	RULE(COMPLETED, ARCHIVE_REMINDER, COMPLETED, ARCHIVE_REMINDER, NONE, false),
	RULE(DORMANT, ARCHIVE_DUE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(COMPLETED, ARCHIVE_DUE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(ACTIVE, ARCHIVE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(DORMANT, ARCHIVE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(COMPLETED, ARCHIVE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(INVITED, ARCHIVE, ARCHIVED, ARCHIVED, ARCHIVE, false),
	RULE(ARCHIVED, RESTORE, ACTIVE, RESTORED, RESTORE, false),
	RULE(DORMANT, RESTORE, ACTIVE, RESTORED, RESTORE, false),
	RULE(COMPLETED, RESTORE, ACTIVE, RESTORED, RESTORE, false),
	RULE(ARCHIVED, ERASE_DUE, ERASED, NONE, ERASE, true),
	RULE(EXPIRED, ERASE_DUE, ERASED, NONE, ERASE, true),
	RULE(INVITED, ERASE, ERASED, NONE, ERASE, true),
	RULE(ACTIVE, ERASE, ERASED, NONE, ERASE, true),
	RULE(DORMANT, ERASE, ERASED, NONE, ERASE, true),
	RULE(COMPLETED, ERASE, ERASED, NONE, ERASE, true),
	RULE(ARCHIVED, ERASE, ERASED, NONE, ERASE, true),
	RULE(EXPIRED, ERASE, ERASED, NONE, ERASE, true),
};

/*
 * Calls that ask for the state the subject is already in: idempotent,
 * they return the current state and write nothing.
 */
typedef struct LcNoop
{
	LcState		state;
	LcEvent		event;
} LcNoop;

static const LcNoop machine_noops[] = {
	{LC_INVITED, LC_EV_INVITE},
	{LC_ACTIVE, LC_EV_INVITE},
	{LC_DORMANT, LC_EV_INVITE},
	{LC_COMPLETED, LC_EV_INVITE},
	{LC_ACTIVE, LC_EV_REGISTER},
	{LC_COMPLETED, LC_EV_COMPLETE},
	{LC_ARCHIVED, LC_EV_ARCHIVE},
	{LC_ACTIVE, LC_EV_RESTORE},
};

static const char *const machine_state_names[] = {
	"invited", "active", "dormant", "completed", "archived", "expired", "erased"
};

static const char *const machine_event_names[] = {
	"invite", "register", "touch", "complete", "archive", "restore", "erase",
	"invite_reminder", "expire", "dormant", "archive_reminder", "archive",
	"erase", "hold_lapse"
};

static const char *const machine_message_names[] = {
	NULL, "invite", "invite_reminder", "archive_notice", "archive_reminder",
	"archived", "restored"
};

static const char *machine_hint(LcState state, LcEvent event);

/*
 * Name of a state as in the SQL enum.
 */
const char *
machine_state_name(LcState state)
{
	Assert(state >= 0 && state < LC_NUM_STATES);
	return machine_state_names[state];
}

/*
 * State from its SQL enum label; elog on anything else (cannot happen: the
 * value comes from an enum column).
 */
LcState
machine_state_from_name(const char *name)
{
	for (int i = 0; i < LC_NUM_STATES; i++)
		if (strcmp(machine_state_names[i], name) == 0)
			return (LcState) i;
	elog(ERROR, "unknown lifecycle state \"%s\"", name);
	return LC_NONE;				/* keep compiler quiet */
}

/*
 * Name of an event as written to history.event and users.next_event.
 * Timer archive and erase share their names with the calls: the actor
 * tells them apart.
 */
const char *
machine_event_name(LcEvent event)
{
	Assert(event >= 0 && event < LC_NUM_EVENTS);
	return machine_event_names[event];
}

/*
 * Timer event from users.next_event.  Returns LC_EV_NONE for anything
 * that is not a timer.
 */
LcEvent
machine_event_from_name(const char *name)
{
	if (strcmp(name, "invite_reminder") == 0)
		return LC_EV_INVITE_REMINDER;
	if (strcmp(name, "expire") == 0)
		return LC_EV_EXPIRE;
	if (strcmp(name, "dormant") == 0)
		return LC_EV_DORMANT;
	if (strcmp(name, "archive_reminder") == 0)
		return LC_EV_ARCHIVE_REMINDER;
	if (strcmp(name, "archive") == 0)
		return LC_EV_ARCHIVE_DUE;
	if (strcmp(name, "erase") == 0)
		return LC_EV_ERASE_DUE;
	if (strcmp(name, "hold_lapse") == 0)
		return LC_EV_HOLD_LAPSE;
	return LC_EV_NONE;
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
 * True for events fired by the clock rather than by a call.
 */
bool
machine_is_timer(LcEvent event)
{
	return event >= LC_EV_INVITE_REMINDER && event < LC_NUM_EVENTS;
}

/*
 * ts + iv, with calendar arithmetic (months, days) done in UTC: a timer
 * falls due at the same instant whatever the TimeZone of the session or
 * worker that computes it (timestamp arithmetic on the UTC value).
 */
TimestampTz
machine_add(TimestampTz ts, const Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_pl_interval,
												   TimestampTzGetDatum(ts),
												   PointerGetDatum(iv)));
}

/*
 * ts - iv, in UTC like machine_add().
 */
TimestampTz
machine_sub(TimestampTz ts, const Interval *iv)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_mi_interval,
												   TimestampTzGetDatum(ts),
												   PointerGetDatum(iv)));
}

/*
 * The HINT for an event the graph does not allow in a state: the call
 * that would work instead.
 */
static const char *
machine_hint(LcState state, LcEvent event)
{
	switch (state)
	{
		case LC_INVITED:
			return "Use lifecycle_register() first.";
		case LC_ARCHIVED:
			return "Use lifecycle_restore() to bring the account back.";
		case LC_EXPIRED:
			if (event == LC_EV_ARCHIVE)
				return "Use lifecycle_erase() to remove an expired invitation.";
			return "Use lifecycle_invite() to invite the subject again.";
		case LC_DORMANT:
		case LC_COMPLETED:
			return "Use lifecycle_touch() to reactivate the account.";
		case LC_ACTIVE:
			return "Use lifecycle_complete() or lifecycle_archive().";
		default:
			return "Use lifecycle_status() to see the subject's state.";
	}
}

/*
 * When does a user in this state fall due next, and for what?
 *
 * Invite reminders and expiry count from the invitation (since), dormancy
 * from last_seen, archiving from entering dormant/completed with reminders
 * before it, erasure from entering archived or expired.  A held user has no
 * timer but the lapse of the hold.
 */
void
machine_next_timer(const LcPolicy *policy, LcState state,
				   TimestampTz since, TimestampTz last_seen, int step,
				   bool held, TimestampTz hold_until,
				   TimestampTz *next_at, LcEvent *next_event)
{
	TimestampTz archive_at;

	*next_at = 0;
	*next_event = LC_EV_NONE;

	if (held)
	{
		if (hold_until != 0)
		{
			*next_at = hold_until;
			*next_event = LC_EV_HOLD_LAPSE;
		}
		return;
	}

	switch (state)
	{
		case LC_INVITED:
			if (step < policy->n_invite_reminders)
			{
				*next_at = machine_add(since, &policy->invite_reminders[step]);
				*next_event = LC_EV_INVITE_REMINDER;
			}
			else
			{
				*next_at = machine_add(since, &policy->invite_expires_after);
				*next_event = LC_EV_EXPIRE;
			}
			break;
		case LC_ACTIVE:
			*next_at = machine_add(last_seen != 0 ? last_seen : since,
								   &policy->dormant_after);
			*next_event = LC_EV_DORMANT;
			break;
		case LC_DORMANT:
		case LC_COMPLETED:
			archive_at = machine_add(since, &policy->archive_after);
			if (step < policy->n_archive_reminders)
			{
				*next_at = machine_sub(archive_at,
									   &policy->archive_reminders[step]);
				*next_event = LC_EV_ARCHIVE_REMINDER;
			}
			else
			{
				*next_at = archive_at;
				*next_event = LC_EV_ARCHIVE_DUE;
			}
			break;
		case LC_ARCHIVED:
			*next_at = machine_add(since, &policy->erase_after);
			*next_event = LC_EV_ERASE_DUE;
			break;
		case LC_EXPIRED:
			*next_at = machine_add(since, &policy->expired_erase_after);
			*next_event = LC_EV_ERASE_DUE;
			break;
		default:
			break;
	}
}

/*
 * Apply one event to one user.
 *
 * A state-changing transition takes "now" (the time it actually fires) as
 * its state_since, so late timers still leave the full grace period; a
 * reminder keeps state_since and counts one more step.
 */
void
machine_apply(const LcPolicy *policy, const LcUser *user, LcEvent event,
			  TimestampTz now, LcOutcome *out)
{
	const LcRule *rule = NULL;

	memset(out, 0, sizeof(*out));
	out->to = user->state;
	out->hook = LC_HOOK_NONE;
	out->state_since = user->state_since;
	out->last_seen = user->last_seen;
	out->step = user->step;
	out->next_event = LC_EV_NONE;

	/* The lapse of a hold is orthogonal to state. */
	if (event == LC_EV_HOLD_LAPSE)
	{
		if (!user->held || user->state == LC_NONE ||
			user->state == LC_ERASED)
		{
			out->allowed = false;
			out->hint = machine_hint(user->state, event);
			return;
		}
		out->allowed = true;
		out->transition = true;
		out->release = true;
		machine_next_timer(policy, user->state, user->state_since,
						   user->last_seen, user->step, false, 0,
						   &out->next_at, &out->next_event);
		return;
	}

	for (int i = 0; i < lengthof(machine_noops); i++)
	{
		if (machine_noops[i].state == user->state &&
			machine_noops[i].event == event)
		{
			out->allowed = true;
			out->noop = true;
			return;
		}
	}

	for (int i = 0; i < lengthof(machine_rules); i++)
	{
		if (machine_rules[i].from == user->state &&
			machine_rules[i].event == event)
		{
			rule = &machine_rules[i];
			break;
		}
	}

	if (rule == NULL)
	{
		out->allowed = false;
		out->hint = machine_hint(user->state, event);
		return;
	}

	/*
	 * While held no timer fires, and erasure is refused (checked after the
	 * graph, so that the HINT names lifecycle_release() only when releasing
	 * would make the event possible).
	 */
	if (user->held && (machine_is_timer(event) || event == LC_EV_ERASE))
	{
		out->allowed = false;
		out->hint = "Use lifecycle_release() to end the legal hold first.";
		return;
	}

	out->allowed = true;
	out->to = rule->to;
	out->message = rule->message;
	out->hook = rule->hook;
	out->erase = rule->erase;
	out->transition = true;

	if (event == LC_EV_TOUCH && user->state == LC_ACTIVE)
	{
		/* Touch writes at most once per touch_granularity, never history. */
		out->transition = false;
		if (user->last_seen != 0 &&
			now < machine_add(user->last_seen, &policy->touch_granularity))
		{
			out->noop = true;
			return;
		}
		out->last_seen = now;
	}
	else if (event == LC_EV_INVITE_REMINDER || event == LC_EV_ARCHIVE_REMINDER)
	{
		out->step = user->step + 1;
	}
	else
	{
		out->state_since = now;
		out->step = 0;
		if (rule->to == LC_ACTIVE)
			out->last_seen = now;
	}

	if (out->to == LC_DORMANT || out->to == LC_COMPLETED)
		out->archive_at = machine_add(out->state_since, &policy->archive_after);

	machine_next_timer(policy, out->to, out->state_since, out->last_seen,
					   out->step, user->held, user->hold_until,
					   &out->next_at, &out->next_event);
}
