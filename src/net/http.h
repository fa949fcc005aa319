/*-------------------------------------------------------------------------
 *
 * http.h
 *	  Deliveries over the network with libcurl's multi interface: signed
 *	  webhooks and e-mail over SMTP.  No SPI, no transaction.
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_HTTP_H
#define LIFECYCLE_HTTP_H

#include "datatype/timestamp.h"

#define HTTP_ERROR_LEN 256

typedef enum HttpKind
{
	HTTP_WEBHOOK = 0,
	HTTP_SMTP,
	HTTP_OTLP					/* OTLP/HTTP JSON export (exporter.c) */
} HttpKind;

/*
 * How an SMTP delivery uses TLS on an smtp:// target.  There is no
 * "when offered": a downgrade would be up to whoever sits on the network.
 */
typedef enum HttpTls
{
	HTTP_TLS_REQUIRED = 0,		/* STARTTLS or fail */
	HTTP_TLS_NONE				/* plain text, asked for */
} HttpTls;

typedef enum HttpResult
{
	HTTP_SENT = 0,				/* 2xx, or the mail server took the message */
	HTTP_RETRY,					/* transient failure: try again later */
	HTTP_GONE,					/* HTTP 410: the receiver wants no more */
	HTTP_REFUSED				/* never deliverable as configured */
} HttpResult;

/* One delivery: filled in by the caller, results by http_perform(). */
typedef struct HttpRequest
{
	HttpKind	kind;
	const char *url;
	/* webhook */
	const char *id;				/* webhook-id */
	const char *secret;			/* whsec_<base64 key>; NULL: unsigned */
	const char *body;
	size_t		body_len;
	const char *traceparent;	/* W3C traceparent header; NULL: none */
	/* otlp: headers "k=v,k=v" (lifecycle.otel_headers); NULL: none */
	const char *headers;
	/* smtp: body is the whole message (headers and text) */
	const char *mail_from;
	const char *rcpt;
	const char *username;		/* NULL: no authentication */
	const char *password;
	HttpTls		tls;
	/* pacing (channel "rate_per_second"); rate_next NULL: none */
	int64		rate_interval_us;	/* at least this between two starts */
	TimestampTz *rate_next;		/* real time the channel's next may start,
								 * shared by its requests, kept across
								 * batches by the caller */
	TimestampTz started_at;		/* set by http_perform() */
	TimestampTz finished_at;	/* set by http_perform() */
	/* results */
	HttpResult	result;
	long		status;			/* HTTP status or SMTP reply code, 0: none */
	int			retry_after;	/* seconds the receiver asked for, 0: none */
	int64		rejected;		/* otlp: partialSuccess.rejectedSpans */
	char		error[HTTP_ERROR_LEN];
} HttpRequest;

typedef struct HttpClient HttpClient;

extern HttpClient *http_client_create(void);
extern void http_perform(HttpClient *client, HttpRequest *reqs, int n,
						 int max_in_flight, int timeout_ms,
						 bool allow_private);
extern const char *http_check_target(HttpKind kind, const char *url);
extern const char *http_check_secret(const char *secret);
extern bool http_sign(const char *secret, const char *id, long timestamp,
					  const char *body, size_t body_len, char *out,
					  size_t outlen);

#endif							/* LIFECYCLE_HTTP_H */
