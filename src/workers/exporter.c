/*-------------------------------------------------------------------------
 *
 * exporter.c
 *	  The OpenTelemetry exporter background worker: sends the spans of
 *	  transitions, delivery attempts and scheduler batches to an OTLP/HTTP
 *	  collector (JSON encoding, POST <lifecycle.otel_endpoint>/v1/traces).
 *
 * A worker of its own, on the shared skeleton (worker.c), so that a slow,
 * hanging or failing collector never delays a transition or a delivery:
 * the scheduler and the sender only append fixed-size records to a
 * bounded ring in shared memory (spans.c), and transitions are read from
 * history after commit.
 *
 * A batch: in a short read transaction, take up to EXPORTER_BATCH_SPANS
 * spans: the ring's records (deliveries, ticks) and the history rows past
 * the durable cursor (lifecycle.otel_cursor); then, outside any
 * transaction, POST them through http.c (the webhook rules: schemes,
 * private addresses, TLS verification, a total timeout of
 * lifecycle.http_timeout); then, in another short transaction, move the
 * cursor.  429, 502, 503, 504 and network failures are retried with
 * exponential backoff (1 s doubling to 30 s, jittered), or after the
 * collector's Retry-After (at most 60 s), up to EXPORTER_MAX_ATTEMPTS
 * attempts; any other answer drops the batch.  Dropped spans, and failed
 * requests, are counted (lifecycle.worker_stats, lifecycle.metrics).
 * The buffer is bounded: one batch in memory, the ring, and at most
 * EXPORTER_BACKLOG history rows behind the end of history (older ones are
 * skipped, and counted as dropped).
 *
 * History ids come from a sequence, so a transaction still running may
 * commit a row with an id below one already visible.  The exporter stops
 * at such a gap until every transaction that was running when it saw the
 * gap has ended (the snapshot's xmin passes the xmax it noted): then the
 * gap is a rollback, or a pruned row, and is passed.  A transition
 * writes its history row after its users row, so its transaction holds
 * an xid before the row's id is drawn.
 *
 * IDENTIFICATION
 *	  src/workers/exporter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "pgstat.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "clock.h"
#include "exporter.h"
#include "guc.h"
#include "http.h"
#include "otlp.h"
#include "spans.h"
#include "stats.h"
#include "store_otel.h"
#include "worker.h"

/* Spans in one request (at most). */
#define EXPORTER_BATCH_SPANS	512
/* Ring records taken into one batch (the rest are history rows). */
#define EXPORTER_RING_SPANS		256
/* History rows the cursor may lag behind the end of history. */
#define EXPORTER_BACKLOG		100000
/* Attempts of one batch before it is dropped. */
#define EXPORTER_MAX_ATTEMPTS	5
#define EXPORTER_BACKOFF_MS		1000
#define EXPORTER_BACKOFF_MAX_MS 30000
#define EXPORTER_RETRY_AFTER_MAX_S 60
/* How often new history and ring records are looked for. */
#define EXPORTER_INTERVAL_MS	1000

/* Microseconds from the Unix epoch to the PostgreSQL epoch. */
#define EXPORTER_EPOCH_US \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

/* The batch in memory: sent, retried, or dropped. */
typedef struct ExporterBatch
{
	bool		pending;
	StringInfoData body;
	int			spans;
	int64		cursor;			/* history id to move the cursor to */
	bool		full;			/* more may be waiting */
	int			attempts;
	TimestampTz retry_at;		/* real time */
} ExporterBatch;

typedef struct ExporterState
{
	HttpClient *client;
	MemoryContext cxt;			/* the batch's body */
	int64		cursor;			/* -1: not read yet */
	int64		gap_id;			/* first missing id seen, 0: none */
	uint64		gap_horizon;	/* snapshot xmax when it was seen */
	ExporterBatch batch;
} ExporterState;

static ExporterState exp_state = {.cursor = -1};

static void exporter_start(void);
static void exporter_batch(WorkerPass *pass);
static TimestampTz exporter_next_due(void);
static void exporter_done(WorkerPass *pass);
static void exporter_error(void);
static bool exporter_collect(void);
static void exporter_send(WorkerPass *pass);
static void exporter_finish(bool exported, int64 rejected);
static void exporter_drop(const char *why);

static const WorkerOps exporter_ops = {
	.kind = LC_WORKER_EXPORTER,
	.name = "lifecycle exporter",
	.start = exporter_start,
	.batch = exporter_batch,
	.next_due = exporter_next_due,
	.done = exporter_done,
	.error = exporter_error,
};

/*
 * Register the worker (when preloaded).
 */
void
exporter_register(void)
{
	worker_register("lifecycle_exporter_main", exporter_ops.name);
}

/* ---- JSON ---- */

static void
json_key(StringInfo s, bool *first, const char *key)
{
	if (!*first)
		appendStringInfoChar(s, ',');
	*first = false;
	escape_json(s, key);
	appendStringInfoChar(s, ':');
}

static void
attr_str(StringInfo s, bool *first, const char *key, const char *value)
{
	if (value == NULL)
		return;
	if (!*first)
		appendStringInfoChar(s, ',');
	*first = false;
	appendStringInfoString(s, "{\"key\":");
	escape_json(s, key);
	appendStringInfoString(s, ",\"value\":{\"stringValue\":");
	escape_json(s, value);
	appendStringInfoString(s, "}}");
}

static void
attr_int(StringInfo s, bool *first, const char *key, int64 value)
{
	if (!*first)
		appendStringInfoChar(s, ',');
	*first = false;
	appendStringInfoString(s, "{\"key\":");
	escape_json(s, key);
	appendStringInfo(s, ",\"value\":{\"intValue\":\"" INT64_FORMAT "\"}}", value);
}

/* A timestamp as OTLP's decimal string of Unix nanoseconds. */
static void
json_time(StringInfo s, bool *first, const char *key, TimestampTz t)
{
	json_key(s, first, key);
	appendStringInfo(s, "\"" INT64_FORMAT "000\"", t + EXPORTER_EPOCH_US);
}

/*
 * The head of a span: ids, parent, name, kind, times.  Leaves the object
 * open, with the attributes' list open.
 */
static void
span_head(StringInfo s, const char *trace_id, const char *span_id,
		  const char *parent, const char *name, int kind, TimestampTz start,
		  TimestampTz end)
{
	bool		first = true;

	if (s->len > 0 && s->data[s->len - 1] == '}')
		appendStringInfoChar(s, ',');
	appendStringInfoChar(s, '{');
	json_key(s, &first, "traceId");
	escape_json(s, trace_id);
	json_key(s, &first, "spanId");
	escape_json(s, span_id);
	if (parent != NULL)
	{
		json_key(s, &first, "parentSpanId");
		escape_json(s, parent);
	}
	json_key(s, &first, "name");
	escape_json(s, name);
	json_key(s, &first, "kind");
	appendStringInfo(s, "%d", kind);
	json_time(s, &first, "startTimeUnixNano", Min(start, end));
	json_time(s, &first, "endTimeUnixNano", end);
	appendStringInfoString(s, ",\"attributes\":[");
}

/*
 * Close the attributes; a link (if any); the status; close the span.
 */
static void
span_tail(StringInfo s, const char *link_trace, const char *link_span,
		  bool error)
{
	appendStringInfoChar(s, ']');
	if (link_trace != NULL && link_span != NULL)
		appendStringInfo(s, ",\"links\":[{\"traceId\":\"%s\",\"spanId\":\"%s\"}]",
						 link_trace, link_span);
	if (error)
		appendStringInfoString(s, ",\"status\":{\"code\":2}");
	appendStringInfoChar(s, '}');
}

/* The span id of a history row's span: its id, in hex. */
static void
history_span_id(int64 id, char *out)
{
	snprintf(out, OTLP_SPAN_ID_LEN + 1, "%016" INT64_MODIFIER "x", id);
}

/*
 * The span of one history row.  With the application's traceparent it is
 * a child of the application's span, linked to the instance's trace.
 */
static void
span_transition(StringInfo s, const LcOtelTransition *t)
{
	char		span_id[OTLP_SPAN_ID_LEN + 1];
	char		app_trace[OTLP_TRACE_ID_LEN + 1];
	char		app_parent[OTLP_SPAN_ID_LEN + 1];
	char		random_trace[OTLP_TRACE_ID_LEN + 1];
	const char *trace = t->trace_id;
	const char *parent = NULL;
	const char *link = NULL;
	char	   *name = psprintf("%s %s", t->workflow, t->event);
	bool		first = true;

	history_span_id(t->id, span_id);
	if (trace == NULL)
	{
		otlp_random_id(random_trace, OTLP_TRACE_ID_LEN);
		trace = random_trace;
	}
	if (t->traceparent != NULL &&
		otlp_parse_traceparent(t->traceparent, app_trace, app_parent))
	{
		link = trace;
		trace = app_trace;
		parent = app_parent;
	}
	span_head(s, trace, span_id, parent, name, 1,
			  t->due_at != 0 ? t->due_at : t->at, t->at);
	attr_str(s, &first, "lifecycle.workflow", t->workflow);
	attr_int(s, &first, "lifecycle.instance.id", t->instance_id);
	attr_str(s, &first, "lifecycle.tenant", t->tenant);
	attr_str(s, &first, "lifecycle.event", t->event);
	attr_str(s, &first, "lifecycle.from_state", t->from_state);
	attr_str(s, &first, "lifecycle.to_state", t->to_state);
	attr_str(s, &first, "lifecycle.actor", t->actor);
	attr_str(s, &first, "lifecycle.policy", t->policy);
	if (t->policy != NULL)
		attr_int(s, &first, "lifecycle.policy_version", t->policy_version);
	span_tail(s, link, link ? span_id : NULL, false);
	pfree(name);
}

/*
 * The span of one delivery attempt or scheduler batch.
 */
static void
span_record(StringInfo s, const SpanRecord *r, const LcOtelLink *link)
{
	char		trace[OTLP_TRACE_ID_LEN + 1];
	char		link_span[OTLP_SPAN_ID_LEN + 1];
	bool		first = true;
	char		id[32];

	if (r->trace_id[0] != '\0')
		strlcpy(trace, r->trace_id, sizeof(trace));
	else
		otlp_random_id(trace, OTLP_TRACE_ID_LEN);

	if (r->kind == SPAN_TICK)
	{
		span_head(s, trace, r->span_id, NULL, "lifecycle tick", 1,
				  r->start, r->end);
		attr_int(s, &first, "lifecycle.tick.count", r->count);
		span_tail(s, NULL, NULL, r->failed);
		return;
	}

	snprintf(id, sizeof(id), INT64_FORMAT, r->outbox_id);
	if (r->kind == SPAN_WEBHOOK)
	{
		span_head(s, trace, r->span_id, NULL, "POST", 3, r->start, r->end);
		attr_str(s, &first, "http.request.method", "POST");
		attr_str(s, &first, "server.address", r->host);
		attr_int(s, &first, "server.port", r->port);
		attr_str(s, &first, "url.full", r->url);
		if (r->status > 0)
			attr_int(s, &first, "http.response.status_code", r->status);
		if (r->attempts > 1)
			attr_int(s, &first, "http.request.resend_count", r->attempts - 1);
	}
	else
	{
		span_head(s, trace, r->span_id, NULL, "smtp send", 3, r->start, r->end);
		attr_str(s, &first, "network.protocol.name", "smtp");
		attr_str(s, &first, "server.address", r->host);
		attr_int(s, &first, "server.port", r->port);
		attr_str(s, &first, "url.full", r->url);
		if (r->status > 0)
			attr_int(s, &first, "lifecycle.smtp.reply_code", r->status);
		if (r->attempts > 1)
			attr_int(s, &first, "lifecycle.delivery.resend_count", r->attempts - 1);
	}
	attr_str(s, &first, "messaging.message.id", id);
	if (r->error_type[0] != '\0')
		attr_str(s, &first, "error.type", r->error_type);
	if (link != NULL && link->history_id != 0 && link->trace_id != NULL)
	{
		history_span_id(link->history_id, link_span);
		span_tail(s, link->trace_id, link_span, r->failed);
	}
	else
		span_tail(s, NULL, NULL, r->failed);
}

/* ---- the worker ---- */

/*
 * Once, after start-up: the HTTP client and the batch's context.
 */
static void
exporter_start(void)
{
	exp_state.client = http_client_create();
	exp_state.cxt = AllocSetContextCreate(TopMemoryContext,
										  "lifecycle exporter batch",
										  ALLOCSET_DEFAULT_SIZES);
}

/*
 * Read what to send next into the batch (one short read transaction, and
 * a write only the first time, or to skip a backlog).  False: nothing.
 */
static bool
exporter_collect(void)
{
	SpanRecord *recs = palloc(sizeof(SpanRecord) * EXPORTER_RING_SPANS);
	LcOtelLink *links;
	LcOtelTransition *rows = NULL;
	LcOtelHorizon hz;
	int			nrecs;
	int			nrows = 0;
	int			taken = 0;
	int64		expected;
	int64		cursor;
	int64		dropped = 0;
	ExporterBatch *b = &exp_state.batch;
	MemoryContext old;

	nrecs = spans_take(recs, EXPORTER_RING_SPANS);
	links = palloc0(sizeof(LcOtelLink) * Max(nrecs, 1));
	for (int i = 0; i < nrecs; i++)
		links[i].outbox_id = recs[i].kind == SPAN_TICK ? 0 : recs[i].outbox_id;

	worker_begin("lifecycle: reading spans");
	if (exp_state.cursor < 0)
		exp_state.cursor = store_otel_cursor(clock_now());
	cursor = exp_state.cursor;
	store_otel_horizon(&hz);
	if (hz.max_id - cursor > EXPORTER_BACKLOG)
	{
		int64		to = hz.max_id - EXPORTER_BACKLOG;

		dropped = store_otel_count(cursor, to);
		store_otel_set_cursor(to, clock_now());
		exp_state.cursor = cursor = to;
		exp_state.gap_id = 0;
	}
	if (hz.max_id > cursor)
		nrows = store_otel_transitions(cursor, EXPORTER_BATCH_SPANS - nrecs,
									   &rows);
	store_otel_links(links, nrecs);
	worker_commit();

	if (dropped > 0)
	{
		spans_count(0, dropped, 0);
		ereport(LOG,
				(errmsg("lifecycle exporter skipped " INT64_FORMAT " transitions: more than %d behind",
						dropped, EXPORTER_BACKLOG)));
	}

	/* The rows up to the first gap that may still fill. */
	expected = cursor + 1;
	for (taken = 0; taken < nrows; taken++)
	{
		if (rows[taken].id != expected)
		{
			if (exp_state.gap_id != expected)
			{
				exp_state.gap_id = expected;
				exp_state.gap_horizon = hz.xmax;
			}
			if (hz.xmin < exp_state.gap_horizon)
				break;
		}
		expected = rows[taken].id + 1;
	}
	if (taken == 0 && nrecs == 0)
		return false;

	old = MemoryContextSwitchTo(exp_state.cxt);
	MemoryContextReset(exp_state.cxt);
	initStringInfo(&b->body);
	MemoryContextSwitchTo(old);
	appendStringInfoString(&b->body, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
	{
		bool		first = true;

		attr_str(&b->body, &first, "service.name", lc_otel_service_name);
		attr_str(&b->body, &first, "service.version", LIFECYCLE_VERSION);
	}
	appendStringInfoString(&b->body, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" LIFECYCLE_NAME "\",\"version\":\"" LIFECYCLE_VERSION "\"},\"spans\":[");
	/* span_head() separates spans by looking for the previous '}'. */
	appendStringInfoChar(&b->body, ' ');
	for (int i = 0; i < taken; i++)
		span_transition(&b->body, &rows[i]);
	for (int i = 0; i < nrecs; i++)
		span_record(&b->body, &recs[i], recs[i].kind == SPAN_TICK ? NULL : &links[i]);
	appendStringInfoString(&b->body, "]}]}]}");

	b->pending = true;
	b->spans = taken + nrecs;
	b->cursor = taken > 0 ? rows[taken - 1].id : cursor;
	b->full = (taken + nrecs >= EXPORTER_BATCH_SPANS) ||
		nrecs >= EXPORTER_RING_SPANS;
	b->attempts = 0;
	b->retry_at = 0;
	return true;
}

/*
 * The batch is done: exported (rejected: spans the collector refused in
 * a partial success) or dropped.  Move the cursor past it.
 */
static void
exporter_finish(bool exported, int64 rejected)
{
	ExporterBatch *b = &exp_state.batch;

	if (exported)
		spans_count(b->spans - rejected, rejected, 0);
	else
		spans_count(0, b->spans, 0);
	if (b->cursor > exp_state.cursor)
	{
		worker_begin(NULL);
		store_otel_set_cursor(b->cursor, clock_now());
		worker_commit();
		exp_state.cursor = b->cursor;
	}
	b->pending = false;
}

/*
 * Drop the batch, saying why (once per batch; the reason never holds a
 * span's content).
 */
static void
exporter_drop(const char *why)
{
	ereport(LOG,
			(errmsg("lifecycle exporter dropped %d spans: %s",
					exp_state.batch.spans, why)));
	stats_count(LC_WORKER_EXPORTER, 0, 0, 0, 0, why, -1);
	exporter_finish(false, 0);
}

/*
 * POST the batch (outside any transaction); retry, drop or finish.
 */
static void
exporter_send(WorkerPass *pass)
{
	ExporterBatch *b = &exp_state.batch;
	HttpRequest req;
	size_t		len = strlen(lc_otel_endpoint);
	bool		retryable;

	memset(&req, 0, sizeof(req));
	req.kind = HTTP_OTLP;
	while (len > 0 && lc_otel_endpoint[len - 1] == '/')
		len--;
	req.url = psprintf("%.*s/v1/traces", (int) len, lc_otel_endpoint);
	req.body = b->body.data;
	req.body_len = b->body.len;
	req.headers = (lc_otel_headers && lc_otel_headers[0]) ? lc_otel_headers : NULL;
	req.id = "otlp";

	pgstat_report_activity(STATE_RUNNING, "lifecycle: exporting spans");
	http_perform(exp_state.client, &req, 1, 1, lc_http_timeout,
				 lc_allow_private_targets);
	pgstat_report_activity(STATE_IDLE, NULL);
	b->attempts++;
	pass->batches++;

	if (req.result == HTTP_SENT)
	{
		int64		rejected = Min(Max(req.rejected, 0), (int64) b->spans);

		stats_count(LC_WORKER_EXPORTER, 1, b->spans - rejected, 0, 0, NULL, 0);
		pass->done += b->spans - rejected;
		exporter_finish(true, rejected);
		pass->more = b->full;
		return;
	}

	spans_count(0, 0, 1);
	stats_count(LC_WORKER_EXPORTER, 1, 0, 1, 0, NULL, -1);
	pass->errors++;
	retryable = (req.result == HTTP_RETRY &&
				 (req.status == 0 || req.status == 429 || req.status == 502 ||
				  req.status == 503 || req.status == 504));
	if (!retryable)
	{
		exporter_drop(psprintf("OTLP export failed: %s", req.error));
		return;
	}
	if (b->attempts >= EXPORTER_MAX_ATTEMPTS)
	{
		exporter_drop(psprintf("OTLP export failed %d times, last: %s",
							   b->attempts, req.error));
		return;
	}
	{
		int64		delay_ms = backoff_jitter(backoff_ms(EXPORTER_BACKOFF_MS,
														 EXPORTER_BACKOFF_MAX_MS,
														 b->attempts - 1));

		if (req.retry_after > 0)
			delay_ms = Max(delay_ms,
						   (int64) Min(req.retry_after, EXPORTER_RETRY_AFTER_MAX_S) * 1000);
		b->retry_at = GetCurrentTimestamp() + delay_ms * 1000;
		ereport(DEBUG1,
				(errmsg("lifecycle exporter: %s; retrying in " INT64_FORMAT " ms",
						req.error, delay_ms)));
	}
}

/*
 * One batch: the pending one when its retry is due, else a new one.
 */
static void
exporter_batch(WorkerPass *pass)
{
	ExporterBatch *b = &exp_state.batch;

	if (lc_otel_endpoint == NULL || lc_otel_endpoint[0] == '\0')
	{
		/* Off: forget the batch; the cursor is read again when on. */
		b->pending = false;
		exp_state.cursor = -1;
		exp_state.gap_id = 0;
		return;
	}
	if (b->pending && GetCurrentTimestamp() < b->retry_at)
		return;
	if (!b->pending && !exporter_collect())
		return;
	exporter_send(pass);
}

/*
 * The exporter has no due times on the lifecycle clock: it polls
 * (exporter_done()).
 */
static TimestampTz
exporter_next_due(void)
{
	return 0;
}

/*
 * Sleep until the pending batch's retry, or the next look for spans.
 */
static void
exporter_done(WorkerPass *pass)
{
	ExporterBatch *b = &exp_state.batch;

	if (lc_otel_endpoint == NULL || lc_otel_endpoint[0] == '\0')
		return;
	if (pass->sleep_ms <= 0)
		return;
	if (b->pending)
	{
		long		secs;
		int			usecs;

		TimestampDifference(GetCurrentTimestamp(), b->retry_at, &secs, &usecs);
		pass->sleep_ms = Min(pass->sleep_ms, secs * 1000 + usecs / 1000 + 1);
	}
	else
		pass->sleep_ms = Min(pass->sleep_ms, EXPORTER_INTERVAL_MS);
}

/*
 * After an error: read the cursor again (the batch, if any, is kept).
 */
static void
exporter_error(void)
{
	exp_state.cursor = -1;
}

/*
 * Main function of the worker.
 */
void
lifecycle_exporter_main(Datum arg)
{
	worker_main(&exporter_ops);
}
