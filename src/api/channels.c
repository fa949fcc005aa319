/*-------------------------------------------------------------------------
 *
 * channels.c
 *	  SQL-callable functions of message delivery: lifecycle_add_channel(),
 *	  lifecycle_retry_dead(), and the signature probe for tests.
 *
 * A channel is validated here, in C, before it is stored: its kind
 * (webhook or smtp), its target (http/https or smtp/smtps URL with a
 * host), its secret (webhooks: "whsec_" + base64 of 24 to 64 bytes, as
 * Standard Webhooks writes them) and every option key.  NULL where a value
 * is required raises 22004; anything malformed 22023; nothing is stored.
 *
 * IDENTIFICATION
 *	  src/channels.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "clock.h"
#include "acting.h"
#include "args.h"
#include "http.h"
#include "render.h"
#include "store_workflow.h"
#include "shmem.h"
#include "store.h"
#include "store_outbox.h"

#define CH_MAX_NAME		63
#define CH_MAX_TARGET	2048
#define CH_MAX_SECRET	1024
#define CH_MAX_OPTIONS	65536
#define CH_MAX_REGION	63

PG_FUNCTION_INFO_V1(lifecycle_add_channel);
PG_FUNCTION_INFO_V1(lifecycle_retry_dead);
PG_FUNCTION_INFO_V1(lifecycle_webhook_signature);

static char *ch_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
						 int maxlen);
/* Highest "rate_per_second" (deliveries started per second). */
#define CH_MAX_RATE 100000

static void ch_invalid(const char *what, const char *problem, const char *hint);
static void ch_check_options(HttpKind kind, Jsonb *options, const char *secret);
static void ch_check_option(HttpKind kind, const char *key, JsonbValue *v);
static void ch_check_regions(JsonbValue *v);

/*
 * A required text argument (args_text_arg()'s checks) without control
 * characters: channel names, kinds, targets and secrets end up in URLs
 * and protocol headers.
 */
static char *
ch_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, int maxlen)
{
	char	   *s = args_text_arg(fcinfo, argno, name, maxlen);

	for (const char *p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7F)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", name)));
	return s;
}

/*
 * Raise 22023 for an invalid part of a channel.
 */
static void
ch_invalid(const char *what, const char *problem, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid channel %s: %s", what, problem),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * options.regions: a non-empty array of region names.
 */
static void
ch_check_regions(JsonbValue *v)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			count = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ch_invalid("option \"regions\"", "expected an array of region names",
				   "For example {\"regions\": [\"eu\", \"ch\"]}.");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type != jbvString || e.val.string.len == 0 ||
			e.val.string.len > CH_MAX_REGION)
			ch_invalid("option \"regions\"",
					   "each region must be a non-empty string of at most 63 bytes",
					   NULL);
		count++;
	}
	if (count == 0)
		ch_invalid("option \"regions\"", "the list of regions is empty",
				   "Leave the option out to serve every region.");
}

/*
 * One option of a channel of this kind.
 */
static void
ch_check_option(HttpKind kind, const char *key, JsonbValue *v)
{
	const char *problem;

	if (strcmp(key, "regions") == 0)
	{
		ch_check_regions(v);
		return;
	}
	if (strcmp(key, "rate_per_second") == 0)
	{
		double		rate = 0;

		if (v->type == jbvNumeric)
			rate = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
													  NumericGetDatum(v->val.numeric)));
		if (v->type != jbvNumeric || !(rate > 0) || rate > CH_MAX_RATE)
			ch_invalid("option \"rate_per_second\"",
					   psprintf("expected a positive number of at most %d", CH_MAX_RATE),
					   "The sender starts at most that many deliveries per second on the channel; the others wait, pending.");
		return;
	}
	if (kind != HTTP_SMTP)
		ch_invalid("option",
				   psprintf("unknown option \"%s\" for a webhook channel", key),
				   "A webhook channel takes the options \"regions\" and \"rate_per_second\".");

	if (strcmp(key, "from") == 0 || strcmp(key, "username") == 0 ||
		strcmp(key, "link_base") == 0)
	{
		char	   *s;

		if (v->type != jbvString || v->val.string.len == 0)
			ch_invalid(psprintf("option \"%s\"", key), "expected a non-empty string",
					   NULL);
		if (v->val.string.len > CH_MAX_TARGET)
			ch_invalid(psprintf("option \"%s\"", key), "too long", NULL);
		s = pnstrdup(v->val.string.val, v->val.string.len);
		for (const char *p = s; *p; p++)
			if ((unsigned char) *p < 0x20 || *p == 0x7F)
				ch_invalid(psprintf("option \"%s\"", key),
						   "must not contain control characters", NULL);
		if (strcmp(key, "from") == 0 && (problem = render_check_address(s)) != NULL)
			ch_invalid("option \"from\"", problem, NULL);
	}
	else if (strcmp(key, "starttls") == 0)
	{
		if (v->type != jbvBool)
			ch_invalid("option \"starttls\"", "expected true or false",
					   "false: plain text (smtp:// only); true or left out: STARTTLS required.");
	}
	else if (strcmp(key, "templates") == 0 || strcmp(key, "policy_templates") == 0)
	{
		Jsonb	   *t = JsonbValueToJsonb(v);

		problem = render_check_templates(t, strcmp(key, "policy_templates") == 0,
										 store_workflow_message_declared);
		if (problem != NULL)
			ch_invalid(psprintf("option \"%s\"", key), problem,
					   "Templates look like {\"MESSAGE\": {\"subject\": \"...\", \"body\": \"...\"}}, MESSAGE a message a workflow declares.");
	}
	else
		ch_invalid("option",
				   psprintf("unknown option \"%s\" for an smtp channel", key),
				   "An smtp channel takes the options from, username, starttls, link_base, templates, policy_templates, regions and rate_per_second.");
}

/*
 * Every option of a channel; an smtp channel needs "from", and a password
 * (the secret) only with a "username".
 */
static void
ch_check_options(HttpKind kind, Jsonb *options, const char *secret)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		has_from = false;
	bool		has_username = false;

	if (!JB_ROOT_IS_OBJECT(options) || JB_ROOT_IS_SCALAR(options))
		ch_invalid("options", "expected a JSON object", NULL);
	if (VARSIZE(options) > CH_MAX_OPTIONS)
		ch_invalid("options", "larger than 64 kB", NULL);

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		ch_check_option(kind, key, &v);
		if (strcmp(key, "from") == 0)
			has_from = true;
		if (strcmp(key, "username") == 0)
			has_username = true;
	}
	if (kind == HTTP_SMTP && !has_from)
		ch_invalid("options", "an smtp channel needs the option \"from\"",
				   "For example {\"from\": \"no-reply@example.com\"}.");
	if (kind == HTTP_SMTP && secret != NULL && !has_username)
		ch_invalid("secret", "an smtp channel's secret is the password of the option \"username\"",
				   "Set options.username, or leave the secret out.");
}

/*
 * lifecycle_add_channel(name, kind, target, secret, options): add a
 * channel, or replace the one of that name (which enables it again).
 */
Datum
lifecycle_add_channel(PG_FUNCTION_ARGS)
{
	char	   *name = ch_text_arg(fcinfo, 0, "name", CH_MAX_NAME);
	char	   *kind = ch_text_arg(fcinfo, 1, "kind", 16);
	char	   *target = ch_text_arg(fcinfo, 2, "target", CH_MAX_TARGET);
	char	   *secret = NULL;
	Jsonb	   *options;
	HttpKind	k;
	const char *problem;

	if (strcmp(kind, "webhook") == 0)
		k = HTTP_WEBHOOK;
	else if (strcmp(kind, "smtp") == 0)
		k = HTTP_SMTP;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid channel kind \"%s\"", kind),
				 errhint("The kind is webhook or smtp.")));

	problem = http_check_target(k, target);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid channel target \"%s\": %s", target, problem),
				 errhint(k == HTTP_WEBHOOK ?
						 "For example https://hooks.example.com/lifecycle." :
						 "For example smtps://mail.example.com or smtp://mail.example.com:587.")));

	if (!PG_ARGISNULL(3))
		secret = ch_text_arg(fcinfo, 3, "secret", CH_MAX_SECRET);
	if (k == HTTP_WEBHOOK)
	{
		if (secret == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a webhook channel needs a secret"),
					 errdetail("Every webhook is signed (Standard Webhooks) so that the receiver can check it came from this database."),
					 errhint("Pass 'whsec_' followed by the base64 of 24 to 64 random bytes, e.g. 'whsec_' || encode(decode(md5(random()::text) || md5(random()::text), 'hex'), 'base64').")));
		problem = http_check_secret(secret);
		if (problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid channel secret: %s", problem),
					 errhint("Pass 'whsec_' followed by the base64 of 24 to 64 random bytes.")));
	}

	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("options must not be null"),
				 errhint("Pass '{}' for no options.")));
	options = PG_GETARG_JSONB_P(4);
	SPI_connect();
	ch_check_options(k, options, secret);

	/*
	 * A channel carries every tenant's messages: a role limited to some
	 * tenants could otherwise send them all to a target of its choice.
	 */
	acting_require_unlimited("add or replace channels");
	store_outbox_upsert_channel(name, kind, target, secret, options);
	SPI_finish();

	/* A channel enabled again may have a backlog: wake the sender. */
	shmem_note_message();
	PG_RETURN_VOID();
}

/*
 * lifecycle_retry_dead(channel) -> how many dead letters were put back in
 * the queue (of that channel, or all when NULL).
 */
Datum
lifecycle_retry_dead(PG_FUNCTION_ARGS)
{
	char	   *channel = NULL;
	int			n;

	if (!PG_ARGISNULL(0))
		channel = ch_text_arg(fcinfo, 0, "channel", CH_MAX_NAME);

	SPI_connect();
	if (channel != NULL && !store_channel_exists(channel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("channel \"%s\" does not exist", channel),
				 errhint("Pass NULL to retry the dead letters of every channel.")));
	if (acting_is_limited())
	{
		int64		hidden = store_outbox_dead_hidden(channel);

		if (hidden > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("a role limited to some tenants may not requeue the dead letters of other tenants"),
					 errdetail("%lld of the dead letters to requeue belong to tenants this role may not act on.",
							   (long long) hidden),
					 errhint("Ask an admin without tenant limits (no row in lifecycle.tenant_grants).")));
	}
	n = store_outbox_retry_dead(channel, clock_now());
	SPI_finish();

	if (n > 0)
		shmem_note_message();
	PG_RETURN_INT32(n);
}

/*
 * lifecycle._webhook_signature(secret, id, timestamp, body) -> the
 * webhook-signature header value, for tests against Standard Webhooks'
 * own examples.
 */
Datum
lifecycle_webhook_signature(PG_FUNCTION_ARGS)
{
	char	   *secret = ch_text_arg(fcinfo, 0, "secret", CH_MAX_SECRET);
	char	   *id = ch_text_arg(fcinfo, 1, "id", 100);
	int64		ts;
	text	   *body;
	char		sig[64];

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("timestamp and body must not be null")));
	ts = PG_GETARG_INT64(2);
	body = PG_GETARG_TEXT_PP(3);
	if (http_check_secret(secret) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook secret: %s", http_check_secret(secret))));
	if (!http_sign(secret, id, (long) ts, VARDATA_ANY(body),
				   VARSIZE_ANY_EXHDR(body), sig, sizeof(sig)))
		elog(ERROR, "could not compute the webhook signature");
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("v1,%s", sig)));
}
