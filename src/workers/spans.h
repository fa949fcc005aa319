/*-------------------------------------------------------------------------
 *
 * spans.h
 *	  A bounded ring of span records in shared memory: the sender writes
 *	  one per delivery attempt and the scheduler one per batch; the
 *	  exporter drains it.  And the exporter's counters.
 *
 * IDENTIFICATION
 *	  src/workers/spans.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SPANS_H
#define LIFECYCLE_SPANS_H

#include "datatype/timestamp.h"

#include "otlp.h"

/* Records the ring holds; one more is dropped and counted. */
#define SPANS_RING_SIZE		4096

typedef enum SpanKind
{
	SPAN_WEBHOOK = 0,			/* one delivery attempt of a webhook */
	SPAN_SMTP,					/* one delivery attempt of an e-mail */
	SPAN_TICK					/* one scheduler batch */
} SpanKind;

/*
 * One span as the sender or the scheduler saw it.  No text from a
 * payload, a hook or a user: the URL without credentials or query, an
 * error type, numbers and ids.
 */
typedef struct SpanRecord
{
	SpanKind	kind;
	TimestampTz start;			/* lifecycle clock (real time + offset) */
	TimestampTz end;
	int64		outbox_id;		/* deliveries */
	int64		count;			/* tick: transitions of the batch */
	int			attempts;		/* deliveries: including this one */
	int			status;			/* HTTP status or SMTP reply, 0: none */
	bool		failed;
	char		trace_id[OTLP_TRACE_ID_LEN + 1];	/* "": a trace of its own */
	char		span_id[OTLP_SPAN_ID_LEN + 1];
	char		url[OTLP_URL_LEN];
	char		host[OTLP_HOST_LEN];
	int			port;
	char		error_type[32];	/* "": none */
} SpanRecord;

extern Size spans_shmem_size(void);
extern void spans_shmem_request(void);
extern void spans_shmem_startup(void);
extern bool spans_enabled(void);
extern void spans_add(const SpanRecord *recs, int n);
extern int	spans_take(SpanRecord *out, int max);
extern void spans_count(int64 exported, int64 dropped, int64 failed_requests);
extern void spans_counters(int64 *exported, int64 *dropped,
						   int64 *failed_requests);

#endif							/* LIFECYCLE_SPANS_H */
