/*-------------------------------------------------------------------------
 *
 * store_otel.h
 *	  The SQL of the OpenTelemetry exporter: its cursor over history, the
 *	  transitions past it, and the transition each delivered message was
 *	  written by.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/store/store_otel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_OTEL_H
#define LIFECYCLE_STORE_OTEL_H

#include "datatype/timestamp.h"

/* One history row as its span shows it (no personal data). */
typedef struct LcOtelTransition
{
	int64		id;
	char	   *workflow;
	int64		instance_id;
	char	   *tenant;			/* NULL: the instance row is gone */
	char	   *event;
	char	   *from_state;		/* NULL: none */
	char	   *to_state;
	char	   *actor;
	char	   *policy;			/* NULL: the instance row is gone */
	int			policy_version;
	TimestampTz at;
	TimestampTz due_at;			/* 0: NULL (a call, not a timer) */
	char	   *traceparent;	/* NULL: none */
	char	   *trace_id;		/* the instance's; NULL: row gone */
} LcOtelTransition;

/* Where history stands, read in one statement. */
typedef struct LcOtelHorizon
{
	int64		max_id;			/* 0: no history */
	uint64		xmin;			/* of the current snapshot */
	uint64		xmax;
} LcOtelHorizon;

/* The transition that wrote a message: its span's ids. */
typedef struct LcOtelLink
{
	int64		outbox_id;
	int64		history_id;		/* 0: not found */
	char	   *trace_id;
} LcOtelLink;

extern int64 store_otel_cursor(TimestampTz now);
extern void store_otel_set_cursor(int64 history_id, TimestampTz now);
extern void store_otel_horizon(LcOtelHorizon *h);
extern int64 store_otel_count(int64 after, int64 upto);
extern int	store_otel_transitions(int64 after, int limit,
								   LcOtelTransition **rows);
extern void store_otel_links(LcOtelLink *links, int n);

#endif							/* LIFECYCLE_STORE_OTEL_H */
