/*-------------------------------------------------------------------------
 *
 * machine.h
 *	  The pure lifecycle state machine: DESIGN.md's transition table as
 *	  data.  No SPI, no I/O: (state, event, policy, times, held) in,
 *	  (new state, effects, next timer) out.
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
	LC_NONE = LC_NUM_STATES		/* no row yet */
} LcState;

typedef enum LcEvent
{
	/* calls */
	LC_EV_INVITE = 0,
	LC_EV_REGISTER,
	LC_EV_TOUCH,
	LC_EV_COMPLETE,
	LC_EV_ARCHIVE,
	LC_EV_RESTORE,
	LC_EV_ERASE,
	/* timers */
	LC_EV_INVITE_REMINDER,
	LC_EV_EXPIRE,
	LC_EV_DORMANT,
	LC_EV_ARCHIVE_REMINDER,
	LC_EV_ARCHIVE_DUE,
	LC_EV_ERASE_DUE,
	LC_EV_HOLD_LAPSE,
	LC_NUM_EVENTS,
	LC_EV_NONE = LC_NUM_EVENTS
} LcEvent;

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

/* What the machine needs to know of one user. */
typedef struct LcUser
{
	LcState		state;
	TimestampTz state_since;
	TimestampTz last_seen;		/* 0 when never seen */
	int			step;			/* reminders fired in this state */
	bool		held;
	TimestampTz hold_until;		/* 0 when the hold has no end */
} LcUser;

/* What applying one event does. */
typedef struct LcOutcome
{
	bool		allowed;		/* false: 55000, see hint */
	bool		noop;			/* allowed, but nothing to write */
	bool		transition;		/* writes a history row */
	LcState		to;
	LcMessage	message;
	LcHook		hook;
	bool		erase;			/* remove personal data */
	bool		release;		/* the hold ends */
	TimestampTz state_since;
	TimestampTz last_seen;
	int			step;
	TimestampTz next_at;		/* 0: no timer */
	LcEvent		next_event;
	TimestampTz archive_at;		/* for archive notices; 0 otherwise */
	const char *hint;			/* when !allowed: the call that would work */
} LcOutcome;

extern const char *machine_state_name(LcState state);
extern LcState machine_state_from_name(const char *name);
extern const char *machine_event_name(LcEvent event);
extern LcEvent machine_event_from_name(const char *name);
extern const char *machine_message_name(LcMessage msg);
extern bool machine_is_timer(LcEvent event);

extern void machine_apply(const LcPolicy *policy, const LcUser *user,
						  LcEvent event, TimestampTz now, LcOutcome *out);
extern void machine_next_timer(const LcPolicy *policy, LcState state,
							   TimestampTz since, TimestampTz last_seen,
							   int step, bool held, TimestampTz hold_until,
							   TimestampTz *next_at, LcEvent *next_event);
extern TimestampTz machine_add(TimestampTz ts, const Interval *iv);
extern TimestampTz machine_sub(TimestampTz ts, const Interval *iv);

#endif							/* LIFECYCLE_MACHINE_H */
