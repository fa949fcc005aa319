/*-------------------------------------------------------------------------
 *
 * graph.h
 *	  A compiled workflow: what a definition (README.md, "Workflows")
 *	  becomes once parsed, validated and proved, and what the machine
 *	  (machine.c) runs.  Pure data: no SPI, no I/O.
 *
 * States, events, messages, hooks and parameters are small integers
 * indexing the graph's own name tables, so the machine compares integers
 * and the names of one workflow appear only in its JSON document.  Every
 * graph has the reserved state "none" (before the start: LC_STATE_NONE)
 * and "erased" (the end: graph->erased), and the reserved events
 * (hold, release, hold_lapse, erase, export, update, migrate, adopt,
 * reminder_skipped) at the ids of LcReservedEvent.
 *
 * A compiled graph lives in one memory context of its own (graph->cxt);
 * freeing that context frees the graph.
 *
 * IDENTIFICATION
 *	  src/core/graph.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_GRAPH_H
#define LIFECYCLE_GRAPH_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#define LC_MAX_STATES		66	/* 64 of the definition's, none, erased */
#define LC_MAX_TERMS		8	/* terms of one "after" sum */
#define LC_NAME_MAX			63	/* bytes of a state, event, param name */

/* State ids: a bit each in an edge's from-set (uint64 + the two reserved). */
#define LC_STATE_NONE		0	/* before the start event */
#define LC_STATE_SAME		(-1)	/* in an edge: stays in its state */
typedef uint64 LcStateSet[2];	/* bit i of word i / 64 */

/* The reserved events: every graph has them, at these ids. */
typedef enum LcReservedEvent
{
	LC_EV_HOLD = 0,
	LC_EV_RELEASE,
	LC_EV_HOLD_LAPSE,
	LC_EV_ERASE,
	LC_EV_EXPORT,
	LC_EV_UPDATE,
	LC_EV_MIGRATE,
	LC_EV_ADOPT,
	LC_EV_REMINDER_SKIPPED,
	LC_NUM_RESERVED_EVENTS
} LcReservedEvent;

#define LC_EV_NONE			(-1)

typedef enum LcEventKind
{
	LC_KIND_CALL,				/* the application's or an admin's */
	LC_KIND_TIMER,				/* fired by the clock */
	LC_KIND_RECORD				/* written to history only */
} LcEventKind;

/* What a timer counts from. */
typedef enum LcAnchor
{
	LC_ANCHOR_ENTERED = 0,		/* when the state was entered */
	LC_ANCHOR_DUE,				/* when entering it was due */
	LC_ANCHOR_LAST_SEEN,		/* last touch (entered if never) */
	LC_ANCHOR_STARTED,			/* when the instance started */
	LC_NUM_ANCHORS
} LcAnchor;

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
	LC_HOLD_STOPS,				/* refused while held (every timer) */
	LC_HOLD_NEEDS				/* refused unless held */
} LcHoldRule;

/*
 * A duration: a sum of terms, each an interval literal or a parameter
 * (param >= 0), added in order with the timers' calendar arithmetic.
 */
typedef struct LcDuration
{
	int			n_terms;
	struct
	{
		int			param;		/* -1: the literal */
		Interval	literal;
	}			terms[LC_MAX_TERMS];
} LcDuration;

/* A list of reminder offsets: a parameter (a list) or literals. */
typedef struct LcReminderSpec
{
	int			param;			/* -1: the literals */
	int			n_literals;
	Interval   *literals;
	bool		before;			/* offsets before the timer, not after the
								 * anchor */
	int			event;			/* the reminder's event id */
	int			message;		/* -1: none */
} LcReminderSpec;

/* The one timer that takes an instance out of a state. */
typedef struct LcGraphTimer
{
	bool		present;		/* false for erased (and none) */
	int			event;
	LcDuration	after;
	LcAnchor	anchor;
	int			to;
	int			message;		/* -1: none */
	int			hook;			/* -1: none */
	const char *deadline;		/* deadline_event label */
	bool		has_reminders;
	LcReminderSpec reminders;
} LcGraphTimer;

/* One edge of an event; timer edges are generated from the timers. */
typedef struct LcGraphEdge
{
	LcStateSet	from;
	int			event;
	int			to;				/* LC_STATE_SAME: stays */
	LcEffect	effect;
	LcHoldRule	hold;
	int			message;		/* -1: none */
	int			hook;			/* -1: none */
	bool		erase;			/* remove personal data */
	const char *hint;			/* LC_FX_REFUSE only */
} LcGraphEdge;

typedef struct LcGraphEvent
{
	const char *name;
	LcEventKind kind;
	const char *role;			/* "app", "admin" or "worker" */
} LcGraphEvent;

typedef struct LcGraphState
{
	const char *name;
	const char *hint;			/* 55000's HINT; NULL: list the events */
	LcGraphTimer timer;
} LcGraphState;

typedef enum LcParamKind
{
	LC_PARAM_INTERVAL,
	LC_PARAM_LIST				/* a list of intervals (reminders) */
} LcParamKind;

typedef struct LcGraphParam
{
	const char *name;
	LcParamKind kind;
	/* the definition's default */
	Interval	value;
	int			n_list;
	Interval   *list;
} LcGraphParam;

typedef struct LcGraphMessage
{
	const char *name;
	const char *subject;		/* SMTP template; NULL: none */
	const char *text;
} LcGraphMessage;

typedef struct LcGraph
{
	MemoryContext cxt;			/* everything below lives here */
	const char *name;
	int			version;
	int			n_states;		/* none, the definition's, erased */
	LcGraphState *states;
	int			erased;			/* id of "erased" */
	int			n_events;		/* LC_NUM_RESERVED_EVENTS first */
	LcGraphEvent *events;
	int			start_event;
	int			n_edges;
	LcGraphEdge *edges;			/* calls' edges, then the timers' */
	int			n_messages;
	LcGraphMessage *messages;
	int			n_hooks;
	const char **hooks;			/* hook keys the edges name */
	int			n_params;
	LcGraphParam *params;
	Jsonb	   *definition;		/* as stored: defaults filled in */
} LcGraph;

/*
 * A policy's values of its workflow's parameters, indexed by param id
 * (LcPolicy holds one; a definition's defaults are one too).
 */
typedef struct LcParamValue
{
	Interval	value;			/* LC_PARAM_INTERVAL */
	int			n_list;			/* LC_PARAM_LIST, in firing order */
	Interval   *list;
} LcParamValue;

typedef struct LcParamValues
{
	int			n;
	LcParamValue *v;
} LcParamValues;

/* The retention bound of one state (lifecycle.retention_bounds). */
typedef struct LcBound
{
	int			state;
	Interval	bound;			/* in days: each term at its longest */
	int			n_path;
	const char **path;			/* state, event, state, ..., "erased" */
} LcBound;

/*
 * workflow.c: parse, validate and prove a definition (22023 naming the
 * JSON path on any refusal); the graph is allocated in a new context
 * under "parent".
 */
extern LcGraph *workflow_compile(const char *name, int version, Jsonb *def,
								 MemoryContext parent);
/* the definition's own defaults as parameter values */
extern void workflow_defaults(const LcGraph *g, LcParamValues *out);
/* lists of a policy's values in firing order, for these timers */
extern void workflow_sort_params(const LcGraph *g, LcParamValues *pv);
/*
 * a policy's values (its top-level keys naming params; others ignored, or
 * refused with strict unless a policy's own key) over the defaults,
 * validated, sorted and checked (22023 naming the key, as 0.2.0)
 */
extern void workflow_param_values(const LcGraph *g, Jsonb *values,
								  bool strict, LcParamValues *out);
/* reminder windows at these values, for every start date (22023) */
extern void workflow_check_params(const LcGraph *g, const LcParamValues *pv);
/* one LcBound per state but none and erased; returns how many */
extern int	workflow_bounds(const LcGraph *g, const LcParamValues *pv,
							LcBound **out);
/* a duration at these values added to ts (the timers' arithmetic) */
extern TimestampTz workflow_add(const LcParamValues *pv, const LcDuration *d,
								TimestampTz ts);
/* microseconds an interval lasts at its longest (or shortest) start date */
extern int64 workflow_interval_span(const Interval *iv, bool longest);
extern int	graph_state_id(const LcGraph *g, const char *name);	/* -1 */
extern int	graph_event_id(const LcGraph *g, const char *name);	/* -1 */
extern int	graph_message_id(const LcGraph *g, const char *name);	/* -1 */
extern const char *graph_anchor_name(LcAnchor anchor);	/* "entered", ... */

static inline bool
lc_set_has(const LcStateSet s, int state)
{
	return (s[state / 64] & ((uint64) 1 << (state % 64))) != 0;
}

static inline void
lc_set_add(LcStateSet s, int state)
{
	s[state / 64] |= (uint64) 1 << (state % 64);
}

#endif							/* LIFECYCLE_GRAPH_H */
