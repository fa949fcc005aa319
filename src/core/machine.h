/*-------------------------------------------------------------------------
 *
 * machine.h
 *	  The pure lifecycle state machine: the transition table (README.md,
 *	  "The lifecycle") as data, in one place (machine.c).  No SPI, no I/O:
 *	  (state, event, policy, times, hold) in, (new state, effects, next
 *	  timer, deadline) out.
 *
 * IDENTIFICATION
 *	  src/machine.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_MACHINE_H
#define LIFECYCLE_MACHINE_H

#include "datatype/timestamp.h"

#include "policy.h"

/* Same order as the SQL enum lifecycle.state. */
typedef enum LcState
{
	LC_INVITED = 0,
	LC_ACTIVE,
	LC_DORMANT,
	LC_COMPLETED,
	LC_ARCHIVED,
	LC_EXPIRED,
	LC_ERASED,
	LC_NUM_STATES,
	LC_NONE = LC_NUM_STATES,	/* no row yet */
	LC_SAME						/* in an edge: stays in its state */
} LcState;

/*
 * Every event of the machine.  Calls and timers never share a name
 * (machine_event_name()); the names are what history.event and
 * users.next_event hold.
 */
typedef enum LcEvent
{
	/* calls of the application and the admin */
	LC_EV_INVITE = 0,
	LC_EV_REGISTER,
	LC_EV_TOUCH,
	LC_EV_COMPLETE,
	LC_EV_ARCHIVE,
	LC_EV_RESTORE,
	LC_EV_ERASE,
	LC_EV_HOLD,
	LC_EV_RELEASE,
	/* timers */
	LC_EV_INVITE_REMINDER,
	LC_EV_EXPIRE,
	LC_EV_DORMANT,
	LC_EV_ARCHIVE_REMINDER,
	LC_EV_ARCHIVE_DUE,
	LC_EV_ERASE_DUE,
	LC_EV_HOLD_LAPSE,
	/* written to history only: a reminder reached after its deadline */
	LC_EV_REMINDER_SKIPPED,
	LC_NUM_EVENTS,
	LC_EV_NONE = LC_NUM_EVENTS
} LcEvent;

typedef enum LcEventKind
{
	LC_KIND_CALL,
	LC_KIND_TIMER,
	LC_KIND_RECORD				/* never applied, only written */
} LcEventKind;

typedef enum LcMessage
{
	LC_MSG_NONE = 0,
	LC_MSG_INVITE,
	LC_MSG_INVITE_REMINDER,
	LC_MSG_ARCHIVE_NOTICE,
	LC_MSG_ARCHIVE_REMINDER,
	LC_MSG_ARCHIVED,
	LC_MSG_RESTORED,
	LC_NUM_MESSAGES
} LcMessage;

/* What a timer counts from. */
typedef enum LcAnchor
{
	LC_ANCHOR_SINCE = 0,		/* state_since: entering the state */
	LC_ANCHOR_LAST_SEEN,		/* last_seen (state_since if never seen) */
	LC_ANCHOR_DUE,				/* state_due_at: when entering it was due */
	LC_NUM_ANCHORS
} LcAnchor;

/* What the machine needs to know of one user. */
typedef struct LcUser
{
	LcState		state;
	TimestampTz state_since;	/* when the state was entered */
	TimestampTz state_due_at;	/* when entering it was due; 0: state_since */
	TimestampTz last_seen;		/* 0 when never seen */
	int			step;			/* reminders fired in this state */
	bool		held;
	TimestampTz hold_until;		/* 0 when the hold has no end; for
								 * LC_EV_HOLD the until requested */
} LcUser;

/* What applying one event does. */
typedef struct LcOutcome
{
	bool		allowed;		/* false: 55000, see hint */
	bool		noop;			/* allowed, but nothing to write */
	bool		transition;		/* writes a history row */
	LcEvent		history_event;	/* the row's event (reminder_skipped) */
	LcState		to;
	LcMessage	message;
	LcHook		hook;
	bool		erase;			/* remove personal data */
	bool		held;			/* the hold after the event */
	bool		release;		/* the hold ends */
	TimestampTz hold_until;
	TimestampTz state_since;
	TimestampTz state_due_at;
	TimestampTz last_seen;
	int			step;
	TimestampTz next_at;		/* 0: no timer */
	LcEvent		next_event;
	TimestampTz deadline_at;	/* 0: none (erased) */
	const char *deadline_event; /* expire, dormant, archive, erase; NULL */
	TimestampTz archive_at;		/* for archive notices; 0 otherwise */
	const char *hint;			/* when !allowed: the call that would work */
} LcOutcome;

/* One row of lifecycle.transitions(): an edge as DBAs see it. */
typedef struct LcEdgeInfo
{
	LcState		from;
	LcEvent		event;
	LcState		to;				/* == from for noops and self-loops */
	const char *effect;			/* transition, reminder, touch, hold,
								 * release, noop, refused */
	LcMessage	message;
	LcHook		hook;
	bool		erase;
	bool		stopped_by_hold;
	const char *hint;			/* refused: the call that would work */
	/* timers only */
	LcAnchor	anchor;
	LcIntervalKey interval;		/* LC_IV_NONE: reminders */
	LcReminderKey reminders;	/* LC_RM_NONE: a deadline */
	bool		before;			/* reminders are offsets before the deadline */
	const char *deadline_event;
} LcEdgeInfo;

extern const char *machine_state_name(LcState state);
extern LcState machine_state_from_name(const char *name);
extern const char *machine_event_name(LcEvent event);
extern LcEvent machine_event_from_name(const char *name);
extern LcEvent machine_timer_from_name(const char *name);
extern LcEventKind machine_event_kind(LcEvent event);
extern const char *machine_event_role(LcEvent event);
extern const char *machine_message_name(LcMessage msg);
extern const char *machine_anchor_name(LcAnchor anchor);
extern bool machine_is_timer(LcEvent event);

extern void machine_apply(const LcPolicy *policy, const LcUser *user,
						  LcEvent event, TimestampTz now, LcOutcome *out);
extern void machine_next_timer(const LcPolicy *policy, const LcUser *user,
							   TimestampTz *next_at, LcEvent *next_event);
extern TimestampTz machine_deadline(const LcPolicy *policy,
									const LcUser *user,
									const char **deadline_event);
extern void machine_prepare_policy(LcPolicy *policy);
extern int	machine_edges(LcEdgeInfo **edges);
extern TimestampTz machine_add(TimestampTz ts, const Interval *iv);
extern TimestampTz machine_sub(TimestampTz ts, const Interval *iv);

#endif							/* LIFECYCLE_MACHINE_H */
