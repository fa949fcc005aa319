/*-------------------------------------------------------------------------
 *
 * machine.h
 *	  The pure state machine over a compiled workflow (graph.h): (state,
 *	  event, policy, times, hold) in, (new state, effects, next timer,
 *	  deadline) out.  No SPI, no I/O.  States, events, messages and hooks
 *	  are the graph's ids; their names live in the workflow's definition.
 *
 * IDENTIFICATION
 *	  src/core/machine.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_MACHINE_H
#define LIFECYCLE_MACHINE_H

#include "datatype/timestamp.h"

#include "graph.h"
#include "policy.h"

/* Ids of the graph (graph.h); -1 (LC_EV_NONE, LC_MSG_NONE...) for none. */
typedef int LcState;
typedef int LcEvent;
typedef int LcMessage;
typedef int LcHook;

#define LC_MSG_NONE		(-1)
#define LC_HOOK_NONE	(-1)

/* What the machine needs to know of one instance. */
typedef struct LcUser
{
	LcState		state;
	TimestampTz state_since;	/* when the state was entered */
	TimestampTz state_due_at;	/* when entering it was due; 0: state_since */
	TimestampTz last_seen;		/* 0 when never seen */
	TimestampTz started;		/* when the instance started; 0: state_since */
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
	const char *deadline_event; /* the timer's deadline label; NULL */
	TimestampTz archive_at;		/* a notice's deadline; 0 otherwise */
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
	const LcGraphTimer *timer;	/* NULL: not a timer of its state */
	bool		reminder;		/* the timer's reminders, not its deadline */
} LcEdgeInfo;

static inline const char *
machine_state_name(const LcGraph *g, LcState s)
{
	return g->states[s].name;
}

static inline const char *
machine_event_name(const LcGraph *g, LcEvent e)
{
	return g->events[e].name;
}

static inline const char *
machine_message_name(const LcGraph *g, LcMessage m)
{
	return m < 0 ? NULL : g->messages[m].name;
}

static inline const char *
machine_hook_name(const LcGraph *g, LcHook h)
{
	return h < 0 ? NULL : g->hooks[h];
}

static inline bool
machine_is_timer(const LcGraph *g, LcEvent e)
{
	return e >= 0 && e < g->n_events && g->events[e].kind == LC_KIND_TIMER;
}

extern LcState machine_state_from_name(const LcGraph *g, const char *name);
extern LcEvent machine_event_from_name(const LcGraph *g, const char *name);
extern const char *machine_anchor_name(LcAnchor anchor);
extern bool machine_event_may_touch(const LcGraph *g, LcEvent event);
extern char *machine_duration_text(const LcGraph *g, const LcDuration *d);

extern void machine_apply(const LcPolicy *policy, const LcUser *user,
						  LcEvent event, TimestampTz now, LcOutcome *out);
extern void machine_next_timer(const LcPolicy *policy, const LcUser *user,
							   TimestampTz *next_at, LcEvent *next_event);
extern TimestampTz machine_deadline(const LcPolicy *policy,
									const LcUser *user,
									const char **deadline_event);
extern TimestampTz machine_duration_add(const LcPolicy *policy,
										const LcDuration *d, TimestampTz ts);
extern void machine_prepare_policy(LcPolicy *policy);
extern int	machine_edges(const LcGraph *g, LcEdgeInfo **edges);
extern TimestampTz machine_add(TimestampTz ts, const Interval *iv);
extern TimestampTz machine_sub(TimestampTz ts, const Interval *iv);

#endif							/* LIFECYCLE_MACHINE_H */
