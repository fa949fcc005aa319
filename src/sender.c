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
 * the latch (shmem.c).  Times stored are on the lifecycle clock.
 *
 * IDENTIFICATION
 *	  src/sender.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "guc.h"
#include "http.h"
#include "render.h"
#include "sender.h"
#include "shmem.h"
#include "stats.h"
#include "worker.h"
#include "store_outbox.h"

/* Retry backoff: 10 s doubling per attempt, capped at 1 hour, jittered. */
#define SENDER_BACKOFF_BASE_MS	10000
#define SENDER_BACKOFF_MAX_MS	3600000
#define SENDER_RETRY_AFTER_MAX_MS	86400000

/* What one pass did. */
typedef struct SenderPass
{
	int			batches;
	int			sent;
	int			failed;
	int			blocked;
	bool		more;			/* a full batch: go again at once */
	bool		installed;		/* the extension exists in the database */
	long		sleep_ms;
	TimestampTz next_due;		/* lifecycle clock, 0: none */
	int64		lag_us;
	char		last_error[LC_ERROR_LEN];	/* last failed delivery */
} SenderPass;

/* What lives as long as the worker. */
typedef struct SenderState
{
	HttpClient *client;
	bool		reclaimed;		/* claims of a previous run taken back */
	MemoryContext batch_cxt;
} SenderState;

static void sender_batch(SenderState *st, SenderPass *pass);
static int	sender_claim(SenderState *st, SenderPass *pass, LcOutboxRow **rows);
static void sender_prepare(LcOutboxRow *row, HttpRequest *req);
static void sender_record(LcOutboxRow *rows, HttpRequest *reqs, int n,
						  SenderPass *pass);
static void sender_plan(SenderPass *pass);
static TimestampTz sender_backoff(TimestampTz now, int attempts,
								  int retry_after);
static char *sender_option(Jsonb *options, const char *key);
static int	sender_batch_limit(void);

/*
 * Register the worker (when preloaded).
 */
void
sender_register(void)
{
	worker_register("lifecycle_sender_main", "lifecycle sender");
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
 * When to try again after a failed attempt (the attempts-th): 10 s doubling
 * up to 1 h, a random 50-100 % of that, or later if the receiver asked
 * for it (Retry-After).
 */
static TimestampTz
sender_backoff(TimestampTz now, int attempts, int retry_after)
{
	int64		delay_ms = SENDER_BACKOFF_BASE_MS;

	for (int i = 1; i < attempts && delay_ms < SENDER_BACKOFF_MAX_MS; i++)
		delay_ms *= 2;
	delay_ms = Min(delay_ms, SENDER_BACKOFF_MAX_MS);
	delay_ms = delay_ms / 2 + (int64) (pg_prng_double(&pg_global_prng_state) * (delay_ms / 2));
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
sender_claim(SenderState *st, SenderPass *pass, LcOutboxRow **rows)
{
	TimestampTz now;
	int			limit = sender_batch_limit();
	int64		lease_ms;
	int			n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!worker_schema_ready("lifecycle sender"))
	{
		/*
		 * Not installed (yet) in this database, or at another version
		 * (until ALTER EXTENSION UPDATE): wait.
		 */
		CommitTransactionCommand();
		pass->installed = false;
		return 0;
	}
	pass->installed = true;
	MemoryContextSwitchTo(st->batch_cxt);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "lifecycle: claiming messages");

	now = clock_now();
	if (!st->reclaimed)
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
		pass->lag_us = Max(now - (*rows)[0].due, 0);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(st->batch_cxt);
	st->reclaimed = true;
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	pass->more = (n >= limit);
	return n;
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
		/* starttls: true required, false never, absent opportunistic */
		if (getKeyJsonValueFromContainer(&row->options->root, "starttls", 8, &v) != NULL &&
			v.type == jbvBool)
			req->tls = v.val.boolean ? HTTP_TLS_REQUIRED : HTTP_TLS_NONE;
		else
			req->tls = req->username != NULL ? HTTP_TLS_REQUIRED : HTTP_TLS_TRY;
		if (req->mail_from == NULL)
			req->mail_from = "lifecycle@localhost";
		if (req->rcpt != NULL && render_check_address(req->rcpt) != NULL)
			req->rcpt = NULL;	/* refused in http.c: no address */
		req->body = render_mail(row->message, row->id, row->payload,
								row->options, req->mail_from, &req->body_len);
	}
	else
	{
		req->kind = HTTP_WEBHOOK;
		req->secret = row->secret;
		req->body = row->body;
		req->body_len = strlen(row->body);
	}
}

/*
 * Step 3: record the results in a short transaction.
 */
static void
sender_record(LcOutboxRow *rows, HttpRequest *reqs, int n, SenderPass *pass)
{
	LcOutboxResult *res = palloc0(sizeof(LcOutboxResult) * n);
	int			m = 0;
	TimestampTz now;
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "lifecycle: recording deliveries");
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
				pass->sent++;
				break;
			case HTTP_GONE:
				/* Keep the message for when the channel is added again. */
				r->status = "pending";
				r->next_attempt_at = now;
				r->error = req->error;
				r->uncount = true;
				pass->failed++;
				if (store_outbox_disable_channel(rows[i].channel,
												 psprintf("the receiver answered HTTP 410 Gone to message " INT64_FORMAT "; add the channel again to enable it",
														  rows[i].id)))
					ereport(LOG,
							(errmsg("lifecycle sender: channel \"%s\" disabled: its receiver answered HTTP 410 Gone",
									rows[i].channel)));
				break;
			case HTTP_REFUSED:
				r->status = "dead";
				r->error = req->error;
				pass->failed++;
				break;
			case HTTP_RETRY:
				r->error = req->error;
				pass->failed++;
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
			snprintf(pass->last_error, LC_ERROR_LEN, "message " INT64_FORMAT ": %s",
					 rows[i].id, req->error);
	}
	store_outbox_record(res, m, now);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * One batch: claim, deliver outside any transaction, record.
 */
static void
sender_batch(SenderState *st, SenderPass *pass)
{
	LcOutboxRow *rows = NULL;
	HttpRequest *reqs;
	HttpRequest *todo;
	int			n;
	int			m = 0;
	int			k = 0;
	int			sent;
	int			failed;

	n = sender_claim(st, pass, &rows);
	if (n == 0)
		return;

	/* Step 2: deliver, outside any transaction. */
	reqs = palloc0(sizeof(HttpRequest) * n);
	todo = palloc0(sizeof(HttpRequest) * n);
	for (int i = 0; i < n; i++)
	{
		if (rows[i].blocked)
		{
			pass->blocked++;
			continue;
		}
		sender_prepare(&rows[i], &todo[m++]);
	}
	pgstat_report_activity(STATE_RUNNING, "lifecycle: delivering messages");
	http_perform(st->client, todo, m, lc_max_concurrent_requests,
				 lc_http_timeout, lc_allow_private_targets);
	pgstat_report_activity(STATE_IDLE, NULL);
	for (int i = 0; i < n; i++)
		if (!rows[i].blocked)
			reqs[i] = todo[k++];

	sent = pass->sent;
	failed = pass->failed;
	pass->last_error[0] = '\0';
	sender_record(rows, reqs, n, pass);
	pass->batches++;
	stats_count(LC_WORKER_SENDER, 1, pass->sent - sent, pass->failed - failed,
				0, pass->last_error[0] ? pass->last_error : NULL, pass->lag_us);
}

/*
 * When does the next message fall due?  Sets sleep_ms (capped by
 * max_sleep) and next_due.
 */
static void
sender_plan(SenderPass *pass)
{
	TimestampTz next;
	TimestampTz now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	now = clock_now();
	next = store_outbox_next_due();
	pass->next_due = next;
	pass->sleep_ms = lc_max_sleep;
	if (next != 0)
	{
		/* Lifecycle time to wait, measured from the real clock now. */
		int64		wait_us = (next - now) -
			(GetCurrentTimestamp() - GetCurrentTransactionStartTimestamp());

		if (wait_us <= 0)
			pass->sleep_ms = 0;
		else
			pass->sleep_ms = Min((long) ((wait_us + 999) / 1000), (long) lc_max_sleep);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Main loop.
 */
void
lifecycle_sender_main(Datum arg)
{
	SenderState st;
	MemoryContext loop_cxt;
	volatile long error_backoff_ms = 0;
	volatile bool failed;

	worker_start(LC_WORKER_SENDER, "lifecycle sender");

	memset(&st, 0, sizeof(st));
	st.client = http_client_create();
	st.batch_cxt = AllocSetContextCreate(TopMemoryContext, "lifecycle sender batch",
										 ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "lifecycle sender loop",
									 ALLOCSET_DEFAULT_SIZES);

	ereport(LOG,
			(errmsg("lifecycle sender started in database \"%s\"", lc_database)));

	for (;;)
	{
		SenderPass	pass;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		memset(&pass, 0, sizeof(pass));
		pass.sleep_ms = lc_max_sleep;

		if (lc_enabled)
		{
			failed = false;
			MemoryContextSwitchTo(loop_cxt);
			PG_TRY();
			{
				do
				{
					CHECK_FOR_INTERRUPTS();
					MemoryContextSwitchTo(st.batch_cxt);
					sender_batch(&st, &pass);
					MemoryContextSwitchTo(loop_cxt);
					MemoryContextReset(st.batch_cxt);
				} while (pass.more && !ConfigReloadPending);
				if (pass.installed)
					sender_plan(&pass);

				/*
				 * Due messages that could not be claimed are locked by
				 * another transaction: do not spin, look again shortly.
				 */
				if (pass.installed && pass.batches == 0 && pass.sleep_ms == 0)
					pass.sleep_ms = 100;
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				/*
				 * Log it, count it, roll back, and retry after a backoff.
				 * Messages of the batch may have been delivered without
				 * being recorded: take the claims back so they are sent
				 * again (same id) instead of waiting for the lease.
				 */
				MemoryContextSwitchTo(loop_cxt);
				edata = CopyErrorData();
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				stats_count(LC_WORKER_SENDER, 0, 0, 0, 1, edata->message, -1);
				MemoryContextSwitchTo(TopMemoryContext);
				MemoryContextReset(st.batch_cxt);
				st.reclaimed = false;
				failed = true;
				error_backoff_ms = error_backoff_ms == 0 ? 1000 :
					Min(error_backoff_ms * 2, 60000);
				pass.sleep_ms = error_backoff_ms;
				pass.next_due = 0;
				pass.more = false;
			}
			PG_END_TRY();
			MemoryContextSwitchTo(TopMemoryContext);

			if (!failed)
				error_backoff_ms = 0;
			if (!failed && pass.installed && pass.batches == 0)
				stats_count(LC_WORKER_SENDER, 0, 0, 0, 0, NULL, 0);
			if (pass.sent > 0 || pass.failed > 0)
				ereport(DEBUG1,
						(errmsg("lifecycle sender: %d delivered, %d failed, %d blocked in %d batches",
								pass.sent, pass.failed, pass.blocked, pass.batches)));
			MemoryContextReset(loop_cxt);
		}

		stats_wake(LC_WORKER_SENDER, pass.next_due);
		if (pass.sleep_ms <= 0)
			continue;

		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   pass.sleep_ms,
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		(void) rc;
	}
}
