/*-------------------------------------------------------------------------
 *
 * store_outbox.h
 *	  The SQL of message delivery: claiming due messages, recording
 *	  results, channels.  Callers are connected to SPI.
 *
 * IDENTIFICATION
 *	  src/store_outbox.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_OUTBOX_H
#define LIFECYCLE_STORE_OUTBOX_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* A claimed message with its channel. */
typedef struct LcOutboxRow
{
	int64		id;
	char	   *channel;
	char	   *kind;			/* webhook | smtp */
	char	   *target;
	char	   *secret;			/* NULL: none */
	Jsonb	   *options;
	char	   *message;
	Jsonb	   *payload;
	char	   *body;			/* webhook JSON {type, id, timestamp, data} */
	int			attempts;		/* including this one */
	bool		blocked;		/* region not served: not to be sent */
	TimestampTz due;			/* when it fell due */
	char	   *trace_id;		/* the instance's trace (32 hex digits) */
	char	   *workflow;		/* smtp: the instance's workflow; else NULL */
	int			workflow_version;
	const char *tpl_subject;	/* smtp: the workflow's template (sender.c) */
	const char *tpl_text;
} LcOutboxRow;

/* The result of one delivery. */
typedef struct LcOutboxResult
{
	int64		id;
	const char *status;			/* sent | pending | dead */
	TimestampTz next_attempt_at;	/* pending: when to try again */
	const char *error;			/* NULL: none */
	bool		uncount;		/* do not count this attempt (410) */
} LcOutboxResult;

/* A message leased to the application (lifecycle_claim_messages()). */
typedef struct LcAppMessage
{
	int64		id;
	char	   *message;
	Jsonb	   *payload;
	int			attempts;		/* including this lease */
} LcAppMessage;

/* The channel application consumers LISTEN on (lifecycle_claim_messages()). */
#define LC_NOTIFY_CHANNEL	"lifecycle_messages"

extern void store_outbox_notify(void);
extern int	store_outbox_reclaim(TimestampTz now);
extern int	store_outbox_claim(TimestampTz now, TimestampTz lease_until,
							   int limit, LcOutboxRow **rows);
extern void store_outbox_record(const LcOutboxResult *results, int n,
								TimestampTz now);
extern bool store_outbox_disable_channel(const char *name, const char *target,
										 const char *reason);
extern TimestampTz store_outbox_next_due(void);
extern bool store_outbox_upsert_channel(const char *name, const char *kind,
										const char *target, const char *secret,
										Jsonb *options);
extern int	store_outbox_retry_dead(const char *channel, TimestampTz now);
extern int64 store_outbox_dead_hidden(const char *channel);
extern int64 store_outbox_prune(int max_rows);
extern int	store_outbox_app_claim(TimestampTz now, TimestampTz lease_until,
								   int limit, LcAppMessage **rows);
extern int	store_outbox_app_ack(Datum ids, TimestampTz now);

#endif							/* LIFECYCLE_STORE_OUTBOX_H */
