/*-------------------------------------------------------------------------
 *
 * sender.c
 *	  The sender background worker: delivers the outbox (webhooks and
 *	  e-mail), apart from the scheduler so that a slow receiver never
 *	  delays a transition.
 *
 * Each batch is three steps.  A short transaction claims due messages
 * (store_outbox_claim: FOR UPDATE SKIP LOCKED, marked in flight with
 * attempts + 1 and a lease) and commits.  Outside any transaction,
 * http_perform() delivers them with up to lifecycle.max_concurrent_requests
 * in flight.  Another short transaction records the results: 2xx sent;
 * 410 disables the channel (its messages stay pending, that attempt not
 * counted, until the channel is added again); anything else is retried
 * with exponential backoff and jitter, and is dead after
 * lifecycle.max_attempts; a refused destination is dead at once.
 *
 * Nothing is lost: a crash between claim and record leaves the claims in
 * place, and the next sender to start (or this one, after an error)
 * delivers them again with the same id (webhook-id), so receivers can drop
 * duplicates.  The worker sleeps on its latch until the next retry falls
 * due (capped by lifecycle.max_sleep); a commit that writes a message sets
 * the latch (shmem.c).  Times stored are on the lifecycle clock.  The
 * loop, the sleep, error recovery and backoff are the worker skeleton's
 * (worker.c); this file supplies the sender's pass.
 *
 * IDENTIFICATION
 *	  src/sender.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "cache.h"
#include "graph.h"
#include "clock.h"
#include "guc.h"
#include "http.h"
#include "otlp.h"
#include "render.h"
#include "sender.h"
#include "spans.h"
#include "stats.h"
#include "store_outbox.h"
#include "worker.h"

/* Retry backoff: 10 s doubling per attempt, capped at 1 hour, jittered. */
#define SENDER_BACKOFF_BASE_MS	10000
#define SENDER_BACKOFF_MAX_MS	3600000
#define SENDER_RETRY_AFTER_MAX_MS	86400000

/* What one batch did. */
typedef struct SenderBatch
{
	int			sent;
	int			failed;
	int			blocked;
	int64		lag_us;			/* how late the oldest claimed message is */
	char		last_error[LC_ERROR_LEN];	/* last failed delivery */
} SenderBatch;

/* The pace of a channel with "rate_per_second". */
typedef struct SenderPace
{
	char	   *channel;
	TimestampTz next_start;		/* real time its next delivery may start */
} SenderPace;

/* What lives as long as the worker. */
typedef struct SenderState
{
	HttpClient *client;
	bool		reclaimed;		/* claims of a previous run taken back */
	List	   *paces;			/* of SenderPace, in TopMemoryContext */
	int64		clock_offset;	/* lifecycle clock - real time, at the claim */
} SenderState;

static SenderState sender_state;

static void sender_start(void);
static void sender_batch(WorkerPass *pass);
static void sender_done(WorkerPass *pass);
static void sender_error(void);
static int	sender_claim(SenderBatch *b, LcOutboxRow **rows, bool *more);
static void sender_templates(LcOutboxRow *rows, int n);
static void sender_prepare(LcOutboxRow *row, HttpRequest *req);
static void sender_record(LcOutboxRow *rows, HttpRequest *reqs, int n,
						  SenderBatch *b);
static TimestampTz sender_backoff(TimestampTz now, int attempts,
								  int retry_after);
static char *sender_option(Jsonb *options, const char *key);
static void sender_pace(LcOutboxRow *row, HttpRequest *req);
static void sender_spans(LcOutboxRow *rows, HttpRequest *reqs, char **span_ids,
						 int n);
static int	sender_batch_limit(void);

static const WorkerOps sender_ops = {
	.kind = LC_WORKER_SENDER,
	.name = "lifecycle sender",
	.start = sender_start,
	.batch = sender_batch,
	.next_due = store_outbox_next_due,
	.done = sender_done,
	.error = sender_error,
};

/*
 * Register the worker (when preloaded).
 */
void
sender_register(void)
{
	worker_register("lifecycle_sender_main", sender_ops.name);
}

/*
 * Messages claimed per batch: enough to keep every request slot busy for
 * several rounds, and never fewer than 256 so a one-at-a-time sender does
 * not pay two transactions per message.
 */
static int
sender_batch_limit(void)
{
	return Min(lc_batch_size, Max(256, lc_max_concurrent_requests * 8));
}

/*
 * A string option of a channel, or NULL.
 */
static char *
sender_option(Jsonb *options, const char *key)
{
	JsonbValue	v;

	if (options == NULL ||
		getKeyJsonValueFromContainer(&options->root, key, strlen(key), &v) == NULL ||
		v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * A channel's "rate_per_second": its requests start at least 1/N s apart
 * (http_perform() waits for the channel's next start), counted across
 * batches; so no second ever sees more than N starts on that channel.
 * The claim takes at most one second's worth per batch; the others wait,
 * pending.
 */
static void
sender_pace(LcOutboxRow *row, HttpRequest *req)
{
	JsonbValue	v;
	double		rate;
	ListCell   *lc;
	SenderPace *pace = NULL;
	MemoryContext old;

	if (row->options == NULL ||
		getKeyJsonValueFromContainer(&row->options->root, "rate_per_second", 15, &v) == NULL ||
		v.type != jbvNumeric)
		return;
	rate = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v.val.numeric)));
	if (!(rate > 0))
		return;

	foreach(lc, sender_state.paces)
	{
		SenderPace *p = (SenderPace *) lfirst(lc);

		if (strcmp(p->channel, row->channel) == 0)
			pace = p;
	}
	if (pace == NULL)
	{
		old = MemoryContextSwitchTo(TopMemoryContext);
		pace = palloc0(sizeof(SenderPace));
		pace->channel = pstrdup(row->channel);
		sender_state.paces = lappend(sender_state.paces, pace);
		MemoryContextSwitchTo(old);
	}
	/* Rounded up: never a hair faster than the limit. */
	req->rate_interval_us = (int64) ceil(1000000.0 / rate);
	req->rate_next = &pace->next_start;
}

/*
 * When to try again after a failed attempt (the attempts-th): 10 s doubling
 * up to 1 h, a random 50-100 % of that, or later if the receiver asked
 * for it (Retry-After).
 */
static TimestampTz
sender_backoff(TimestampTz now, int attempts, int retry_after)
{
	int64		delay_ms = backoff_jitter(backoff_ms(SENDER_BACKOFF_BASE_MS,
													 SENDER_BACKOFF_MAX_MS,
													 attempts - 1));

	if (retry_after > 0)
		delay_ms = Max(delay_ms, Min((int64) retry_after * 1000,
									 SENDER_RETRY_AFTER_MAX_MS));
	return now + delay_ms * 1000;
}

/*
 * Step 1: claim a batch in a short transaction.  Rows are allocated in
 * the batch context.
 */
static int
sender_claim(SenderBatch *b, LcOutboxRow **rows, bool *more)
{
	TimestampTz now;
	int			limit = sender_batch_limit();
	int64		lease_ms;
	int			n;

	worker_begin("lifecycle: claiming messages");
	now = clock_now();
	/* Spans are on the lifecycle clock, like history (spans.c). */
	if (spans_enabled())
		sender_state.clock_offset = clock_now_precise() - GetCurrentTimestamp();
	if (!sender_state.reclaimed)
	{
		int			back = store_outbox_reclaim(now);

		if (back > 0)
			ereport(LOG,
					(errmsg("lifecycle sender: %d messages left in flight will be delivered again",
							back)));
	}

	/*
	 * The lease only matters if this worker dies without recording: it
	 * covers the worst case of every request in the batch timing out.
	 */
	lease_ms = (int64) (limit / Max(lc_max_concurrent_requests, 1) + 2) * lc_http_timeout;
	n = store_outbox_claim(now, now + lease_ms * 1000, limit, rows);
	if (n > 0)
		b->lag_us = Max(now - (*rows)[0].due, 0);
	sender_templates(*rows, n);
	worker_commit();

	sender_state.reclaimed = true;
	*more = (n >= limit);
	return n;
}

/*
 * The template of each claimed e-mail, from its workflow's compiled graph
 * (cache.c, inside the claim's transaction), copied next to the rows:
 * rendering happens after the commit, where the graph may be gone.
 */
static void
sender_templates(LcOutboxRow *rows, int n)
{
	MemoryContext cxt = GetMemoryChunkContext(rows);

	for (int i = 0; i < n; i++)
	{
		const LcGraph *g;
		int			m;

		if (rows[i].workflow == NULL)
			continue;
		g = cache_graph(rows[i].workflow, rows[i].workflow_version);
		m = graph_message_id(g, rows[i].message);
		if (m < 0 || g->messages[m].subject == NULL)
			continue;
		rows[i].tpl_subject = MemoryContextStrdup(cxt, g->messages[m].subject);
		rows[i].tpl_text = MemoryContextStrdup(cxt, g->messages[m].text);
	}
}

/*
 * Build the request of one claimed message (outside any transaction).
 */
static void
sender_prepare(LcOutboxRow *row, HttpRequest *req)
{
	memset(req, 0, sizeof(HttpRequest));
	req->url = row->target;
	req->id = psprintf(INT64_FORMAT, row->id);
	if (strcmp(row->kind, "smtp") == 0)
	{
		JsonbValue	v;

		req->kind = HTTP_SMTP;
		req->mail_from = sender_option(row->options, "from");
		req->username = sender_option(row->options, "username");
		req->password = row->secret;
		req->rcpt = NULL;
		if (getKeyJsonValueFromContainer(&row->payload->root, "email", 5, &v) != NULL &&
			v.type == jbvString)
			req->rcpt = pnstrdup(v.val.string.val, v.val.string.len);
		/*
		 * TLS must be declined explicitly ("starttls": false); otherwise
		 * STARTTLS is required, with or without credentials, so that a
		 * network attacker cannot strip it (smtps:// is TLS from the
		 * start either way).
		 */
		if (getKeyJsonValueFromContainer(&row->options->root, "starttls", 8, &v) != NULL &&
			v.type == jbvBool && !v.val.boolean)
			req->tls = HTTP_TLS_NONE;
		else
			req->tls = HTTP_TLS_REQUIRED;
		if (req->mail_from == NULL)
			req->mail_from = "lifecycle@localhost";
		if (req->rcpt != NULL && render_check_address(req->rcpt) != NULL)
			req->rcpt = NULL;	/* refused in http.c: no address */
		req->body = render_mail(row->message, row->id, row->payload,
								row->options, row->tpl_subject, row->tpl_text,
								req->mail_from, &req->body_len);
	}
	else
	{
		req->kind = HTTP_WEBHOOK;
		req->secret = row->secret;
		req->body = row->body;
		req->body_len = strlen(row->body);
	}
	sender_pace(row, req);
}

/*
 * With export on: one span record per delivery attempt into the ring
 * (spans.c), from the request and its result; no payload, no address of
 * a person, the URL without credentials or query.
 */
static void
sender_spans(LcOutboxRow *rows, HttpRequest *reqs, char **span_ids, int n)
{
	SpanRecord *recs = palloc0(sizeof(SpanRecord) * n);
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		HttpRequest *req = &reqs[i];
		SpanRecord *r = &recs[m];

		if (rows[i].blocked || span_ids[i] == NULL)
			continue;
		m++;
		r->kind = req->kind == HTTP_SMTP ? SPAN_SMTP : SPAN_WEBHOOK;
		r->start = req->started_at + sender_state.clock_offset;
		r->end = (req->finished_at != 0 ? req->finished_at : GetCurrentTimestamp()) +
			sender_state.clock_offset;
		r->outbox_id = rows[i].id;
		r->attempts = rows[i].attempts;
		r->status = (int) req->status;
		r->failed = (req->result != HTTP_SENT);
		if (rows[i].trace_id != NULL)
			strlcpy(r->trace_id, rows[i].trace_id, sizeof(r->trace_id));
		strlcpy(r->span_id, span_ids[i], sizeof(r->span_id));
		otlp_span_url(rows[i].target, r->url, r->host, &r->port);
		if (!r->failed)
			r->error_type[0] = '\0';
		else if (req->kind != HTTP_SMTP && req->status >= 400)
			snprintf(r->error_type, sizeof(r->error_type), "%ld", req->status);
		else if (req->result == HTTP_REFUSED)
			strlcpy(r->error_type, "refused", sizeof(r->error_type));
		else if (strncmp(req->error, "timed out", 9) == 0)
			strlcpy(r->error_type, "timeout", sizeof(r->error_type));
		else if (req->kind == HTTP_SMTP && req->status > 0)
			snprintf(r->error_type, sizeof(r->error_type), "smtp_%ld", req->status);
		else
			strlcpy(r->error_type, "_OTHER", sizeof(r->error_type));
	}
	spans_add(recs, m);
}

/*
 * Step 3: record the results in a short transaction.
 */
static void
sender_record(LcOutboxRow *rows, HttpRequest *reqs, int n, SenderBatch *b)
{
	LcOutboxResult *res = palloc0(sizeof(LcOutboxResult) * n);
	int			m = 0;
	TimestampTz now;

	worker_begin("lifecycle: recording deliveries");
	now = clock_now();

	for (int i = 0; i < n; i++)
	{
		HttpRequest *req = &reqs[i];
		LcOutboxResult *r = &res[m];

		if (rows[i].blocked)
			continue;
		m++;
		r->id = rows[i].id;
		switch (req->result)
		{
			case HTTP_SENT:
				r->status = "sent";
				b->sent++;
				break;
			case HTTP_GONE:
				/* Keep the message for when the channel is added again. */
				r->status = "pending";
				r->next_attempt_at = now;
				r->error = req->error;
				r->uncount = true;
				b->failed++;

				/*
				 * Only if the target that answered is still the channel's:
				 * an admin may have re-pointed it while the request was in
				 * flight, and the old receiver's 410 says nothing about the
				 * new one.  The message then goes to the new target.
				 */
				if (store_outbox_disable_channel(rows[i].channel, rows[i].target,
												 psprintf("the receiver answered HTTP 410 Gone to message " INT64_FORMAT "; add the channel again to enable it",
														  rows[i].id)))
					ereport(LOG,
							(errmsg("lifecycle sender: channel \"%s\" disabled: its receiver answered HTTP 410 Gone",
									rows[i].channel)));
				break;
			case HTTP_REFUSED:
				r->status = "dead";
				r->error = req->error;
				b->failed++;
				break;
			case HTTP_RETRY:
				r->error = req->error;
				b->failed++;
				if (rows[i].attempts >= lc_max_attempts)
					r->status = "dead";
				else
				{
					r->status = "pending";
					r->next_attempt_at = sender_backoff(now, rows[i].attempts,
														req->retry_after);
				}
				break;
		}
		if (req->result != HTTP_SENT)
			snprintf(b->last_error, LC_ERROR_LEN, "message " INT64_FORMAT ": %s",
					 rows[i].id, req->error);
	}
	store_outbox_record(res, m, now);
	worker_commit();
}

/*
 * One batch: claim, deliver outside any transaction, record.
 */
static void
sender_batch(WorkerPass *pass)
{
	SenderBatch b;
	LcOutboxRow *rows = NULL;
	HttpRequest *reqs;
	HttpRequest *todo;
	int			n;
	int			m = 0;
	int			k = 0;
	bool		tracing = spans_enabled();
	char	  **span_ids;

	memset(&b, 0, sizeof(b));
	n = sender_claim(&b, &rows, &pass->more);
	if (n == 0)
		return;
	span_ids = palloc0(sizeof(char *) * n);

	/* Step 2: deliver, outside any transaction. */
	reqs = palloc0(sizeof(HttpRequest) * n);
	todo = palloc0(sizeof(HttpRequest) * n);
	for (int i = 0; i < n; i++)
	{
		if (rows[i].blocked)
		{
			b.blocked++;
			continue;
		}
		sender_prepare(&rows[i], &todo[m]);
		if (tracing)
		{
			/* The delivery span's id; webhooks name it in traceparent. */
			span_ids[i] = palloc(OTLP_SPAN_ID_LEN + 1);
			otlp_random_id(span_ids[i], OTLP_SPAN_ID_LEN);
			if (todo[m].kind == HTTP_WEBHOOK && rows[i].trace_id != NULL)
				todo[m].traceparent = psprintf("00-%s-%s-01", rows[i].trace_id,
											   span_ids[i]);
		}
		m++;
	}
	pgstat_report_activity(STATE_RUNNING, "lifecycle: delivering messages");
	http_perform(sender_state.client, todo, m, lc_max_concurrent_requests,
				 lc_http_timeout, lc_allow_private_targets);
	pgstat_report_activity(STATE_IDLE, NULL);
	for (int i = 0; i < n; i++)
		if (!rows[i].blocked)
			reqs[i] = todo[k++];
	if (tracing)
		sender_spans(rows, reqs, span_ids, n);

	sender_record(rows, reqs, n, &b);
	pass->batches++;
	pass->done += b.sent;
	pass->errors += b.failed;
	stats_count(LC_WORKER_SENDER, 1, b.sent, b.failed, 0,
				b.last_error[0] ? b.last_error : NULL, b.lag_us);
	ereport(DEBUG1,
			(errmsg("lifecycle sender: %d delivered, %d failed, %d blocked",
					b.sent, b.failed, b.blocked)));
}

/*
 * Once, after start-up: the HTTP client.
 */
static void
sender_start(void)
{
	sender_state.client = http_client_create();
}

/*
 * A pass that found nothing to deliver: no lag.
 */
static void
sender_done(WorkerPass *pass)
{
	if (pass->ready && !pass->failed && pass->batches == 0)
		stats_count(LC_WORKER_SENDER, 0, 0, 0, 0, NULL, 0);
}

/*
 * After an error: messages of the batch may have been delivered without
 * being recorded; take the claims back so they are sent again (same id)
 * instead of waiting for the lease.
 */
static void
sender_error(void)
{
	sender_state.reclaimed = false;
}

/*
 * Main function of the worker.
 */
void
lifecycle_sender_main(Datum arg)
{
	worker_main(&sender_ops);
}
