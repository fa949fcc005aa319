/*-------------------------------------------------------------------------
 *
 * http.c
 *	  Deliveries over the network with libcurl's multi interface: webhooks
 *	  signed per Standard Webhooks, and e-mail over SMTP.
 *
 * The sender calls http_perform() between the transaction that claims a
 * batch and the one that records the results: no SPI, no transaction, no
 * catalog access here.  Up to max_in_flight requests run at once on one
 * multi handle that lives as long as the sender, so connections to a
 * webhook receiver are kept alive across batches (e-mail gets a fresh
 * connection per message, so that one channel's TLS and login settings
 * never ride on another's connection).  The loop waits in
 * curl_multi_poll() for at most HTTP_POLL_MS at a time, checks for
 * interrupts and exits if the postmaster died.
 *
 * The exporter (exporter.c) sends its OTLP/HTTP JSON requests through the
 * same loop (HTTP_OTLP), under the same rules.
 *
 * Safety: TLS certificates and host names are verified; redirects are not
 * followed; only http/https (webhooks) or smtp/smtps (e-mail) may be
 * spoken; proxies from the environment are ignored; every connection goes
 * through http_open_socket(), which refuses loopback, private, shared,
 * link-local, multicast, reserved and unspecified addresses (IPv4, IPv6,
 * and IPv4 inside IPv6) unless lifecycle.allow_private_targets, so neither
 * a DNS answer nor a redirect can reach an internal service.  Signals are
 * not used by libcurl (CURLOPT_NOSIGNAL); every request has a timeout.
 *
 * IDENTIFICATION
 *	  src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "common/base64.h"
#include "common/hmac.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "http.h"
#include "version.h"

/* Longest wait in curl_multi_poll() before checking for interrupts. */
#define HTTP_POLL_MS		100

/* OTLP: how much of a response body is kept (for partialSuccess). */
#define HTTP_RESPONSE_KEEP	1024

/* Standard Webhooks: "whsec_" + base64 of 24 to 64 key bytes. */
#define HTTP_SECRET_PREFIX	"whsec_"
#define HTTP_KEY_MIN		24
#define HTTP_KEY_MAX		64
#define HTTP_SIG_LEN		64	/* base64 of 32 bytes + NUL, with room */

#define HTTP_USER_AGENT		LIFECYCLE_NAME "/" LIFECYCLE_VERSION " (PostgreSQL extension)"

struct HttpClient
{
	CURLM	   *multi;
	ResourceOwner owner;		/* for pg_hmac outside transactions */
	bool		allow_private;	/* the setting its connections were made with */
};

/* One request in flight. */
typedef struct HttpSlot
{
	HttpRequest *req;
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *rcpts;
	size_t		read_pos;		/* SMTP upload position */
	bool		allow_private;
	int			timeout_ms;
	bool		refused;		/* a destination address was refused */
	char		refused_addr[INET6_ADDRSTRLEN];
	const char *refused_kind;
	char		errbuf[CURL_ERROR_SIZE];
	char		response[HTTP_RESPONSE_KEEP];	/* otlp: start of the body */
	size_t		response_len;
} HttpSlot;

static void http_run(HttpClient *client, HttpSlot *slots, HttpRequest *reqs,
					 int n, int max_in_flight, int timeout_ms,
					 bool allow_private);
static bool http_start(HttpClient *client, HttpSlot *slot, HttpRequest *req,
					   int timeout_ms, bool allow_private);
static void http_finish(HttpSlot *slot, CURLcode rc);
static void http_release(HttpClient *client, HttpSlot *slot);
static void http_common_options(HttpSlot *slot, CURL *easy);
static bool http_setup_webhook(HttpClient *client, HttpSlot *slot,
							   CURL *easy);
static bool http_setup_smtp(HttpSlot *slot, CURL *easy);
static bool http_setup_otlp(HttpSlot *slot, CURL *easy);
static size_t http_keep(char *ptr, size_t size, size_t nmemb,
						void *userdata);
static curl_socket_t http_open_socket(void *clientp, curlsocktype purpose,
									  struct curl_sockaddr *address);
static size_t http_discard(char *ptr, size_t size, size_t nmemb,
						   void *userdata);
static size_t http_read(char *buffer, size_t size, size_t nitems,
						void *userdata);
static const char *http_forbidden_v4(const uint8 *a);
static const char *http_forbidden_address(const struct sockaddr *sa,
										  char *text, size_t textlen);
static int	http_decode_secret(const char *secret, uint8 *key);

/*
 * Create the client: libcurl's global state (once per process) and one
 * multi handle, kept for the life of the sender.
 */
HttpClient *
http_client_create(void)
{
	HttpClient *client;
	CURLcode	rc;

	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl: %s",
						curl_easy_strerror(rc))));
	client = MemoryContextAllocZero(TopMemoryContext, sizeof(HttpClient));
	client->multi = curl_multi_init();
	if (client->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	client->owner = ResourceOwnerCreate(NULL, "lifecycle http");
	return client;
}

/*
 * Perform n requests with at most max_in_flight at once; each request's
 * result, status and error are filled in.  Returns when all are done;
 * interrupts are checked at least every HTTP_POLL_MS.  On an error (an
 * interrupt), every handle still in flight is released.
 */
void
http_perform(HttpClient *client, HttpRequest *reqs, int n, int max_in_flight,
			 int timeout_ms, bool allow_private)
{
	HttpSlot   *slots;

	if (n <= 0)
		return;

	/*
	 * Connections kept alive from when private targets were allowed must
	 * not carry requests once they are not: start a new connection cache.
	 */
	if (client->allow_private && !allow_private)
	{
		curl_multi_cleanup(client->multi);
		client->multi = curl_multi_init();
		if (client->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
	}
	client->allow_private = allow_private;

	slots = palloc0(sizeof(HttpSlot) * n);

	PG_TRY();
	{
		http_run(client, slots, reqs, n, Max(max_in_flight, 1), timeout_ms,
				 allow_private);
	}
	PG_FINALLY();
	{
		for (int i = 0; i < n; i++)
			http_release(client, &slots[i]);
	}
	PG_END_TRY();
	pfree(slots);
}

/*
 * The loop of http_perform(): keep max_in_flight requests running, collect
 * the finished ones, wait for the network in bounded polls.
 */
static void
http_run(HttpClient *client, HttpSlot *slots, HttpRequest *reqs, int n,
		 int max_in_flight, int timeout_ms, bool allow_private)
{
	int			first = 0;		/* requests before it have all started */
	int			started = 0;
	int			running = 0;
	int			done = 0;
	bool	   *is_started = palloc0(sizeof(bool) * n);

	while (done < n)
	{
		int			still;
		int			left;
		CURLMsg    *msg;
		long		wait_ms = HTTP_POLL_MS;
		bool		paced = false;	/* a request waits for its pace */
		TimestampTz now = GetCurrentTimestamp();

		/*
		 * Fill the free places, in order, except requests of a paced
		 * channel whose next start is not due yet: they wait (and the
		 * poll below wakes in time for them) while others go ahead.
		 */
		for (int i = first; i < n && running < max_in_flight; i++)
		{
			HttpRequest *req = &reqs[i];

			if (is_started[i])
				continue;
			if (req->rate_next != NULL)
			{
				if (*req->rate_next > now)
				{
					paced = true;
					wait_ms = Min(wait_ms,
								  (long) ((*req->rate_next - now + 999) / 1000));
					continue;
				}
				now = GetCurrentTimestamp();
				*req->rate_next = now + req->rate_interval_us;
			}
			req->started_at = now;
			is_started[i] = true;
			started++;
			if (http_start(client, &slots[i], req, timeout_ms, allow_private))
				running++;
			else
			{
				req->finished_at = GetCurrentTimestamp();
				done++;			/* could not even start: result is set */
			}
		}
		while (first < n && is_started[first])
			first++;
		if (done >= n)
			break;

		curl_multi_perform(client->multi, &still);
		while ((msg = curl_multi_info_read(client->multi, &left)) != NULL)
		{
			HttpSlot   *slot = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &slot);
			http_finish(slot, msg->data.result);
			http_release(client, slot);
			running--;
			done++;
		}
		if (done >= n)
			break;

		/*
		 * Nothing (more) to start now: wait for network activity, or until
		 * a paced request may start, bounded.
		 */
		if (running >= max_in_flight || started >= n || paced)
			curl_multi_poll(client->multi, NULL, 0, (int) Max(wait_ms, 1), NULL);

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
	}
	pfree(is_started);
}

/*
 * Set up one request and add it to the multi handle.  False when it could
 * not be started (the request's result says why).
 */
static bool
http_start(HttpClient *client, HttpSlot *slot, HttpRequest *req,
		   int timeout_ms, bool allow_private)
{
	CURL	   *easy;
	bool		ok;

	slot->req = req;
	slot->allow_private = allow_private;
	slot->timeout_ms = timeout_ms;
	req->status = 0;
	req->retry_after = 0;
	req->rejected = 0;
	req->error[0] = '\0';

	easy = curl_easy_init();
	if (easy == NULL)
	{
		req->result = HTTP_RETRY;
		strlcpy(req->error, "could not create a libcurl handle", HTTP_ERROR_LEN);
		return false;
	}
	slot->easy = easy;
	http_common_options(slot, easy);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);

	if (req->kind == HTTP_WEBHOOK)
		ok = http_setup_webhook(client, slot, easy);
	else if (req->kind == HTTP_OTLP)
		ok = http_setup_otlp(slot, easy);
	else
		ok = http_setup_smtp(slot, easy);
	if (ok && curl_multi_add_handle(client->multi, easy) != CURLM_OK)
	{
		req->result = HTTP_RETRY;
		strlcpy(req->error, "could not add a request to libcurl", HTTP_ERROR_LEN);
		ok = false;
	}
	if (!ok)
	{
		curl_easy_cleanup(easy);
		slot->easy = NULL;
		curl_slist_free_all(slot->headers);
		slot->headers = NULL;
		curl_slist_free_all(slot->rcpts);
		slot->rcpts = NULL;
	}
	return ok;
}

/*
 * Options every request gets: the safety rules of the file header.
 */
static void
http_common_options(HttpSlot *slot, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *) slot);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, slot->errbuf);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_NETRC, (long) CURL_NETRC_IGNORED);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, http_open_socket);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, slot);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_discard);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, slot);
}

/*
 * A webhook: POST the JSON body with the Standard Webhooks headers.  The
 * timestamp is the real time of sending; the signature covers
 * "id.timestamp.body".
 */
static bool
http_setup_webhook(HttpClient *client, HttpSlot *slot, CURL *easy)
{
	HttpRequest *req = slot->req;
	long		now = (long) timestamptz_to_time_t(req->started_at);
	char		line[256];
	struct curl_slist *h = NULL;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	snprintf(line, sizeof(line), "webhook-id: %s", req->id);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof(line), "webhook-timestamp: %ld", now);
	h = curl_slist_append(h, line);
	if (req->traceparent != NULL)
	{
		snprintf(line, sizeof(line), "traceparent: %s", req->traceparent);
		h = curl_slist_append(h, line);
	}
	if (req->secret != NULL)
	{
		char		sig[HTTP_SIG_LEN];
		ResourceOwner saved = CurrentResourceOwner;
		bool		ok;

		/* pg_hmac remembers its OpenSSL context in a resource owner. */
		if (CurrentResourceOwner == NULL)
			CurrentResourceOwner = client->owner;
		ok = http_sign(req->secret, req->id, now, req->body, req->body_len,
					   sig, sizeof(sig));
		CurrentResourceOwner = saved;
		if (!ok)
		{
			curl_slist_free_all(h);
			req->result = HTTP_REFUSED;
			strlcpy(req->error, "the channel's secret is not a valid whsec_ secret",
					HTTP_ERROR_LEN);
			return false;
		}
		snprintf(line, sizeof(line), "webhook-signature: v1,%s", sig);
		h = curl_slist_append(h, line);
	}
	if (h == NULL)
	{
		req->result = HTTP_RETRY;
		strlcpy(req->error, "out of memory for request headers", HTTP_ERROR_LEN);
		return false;
	}
	slot->headers = h;
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	return true;
}

/*
 * An OTLP export: POST the JSON body with the configured headers
 * (lifecycle.otel_headers, "k=v,k=v"); the start of the answer is kept
 * for its partialSuccess.
 */
static bool
http_setup_otlp(HttpSlot *slot, CURL *easy)
{
	HttpRequest *req = slot->req;
	struct curl_slist *h = NULL;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_keep);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, slot);

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	if (req->headers != NULL)
	{
		const char *p = req->headers;

		while (*p != '\0' && h != NULL)
		{
			const char *end = strchr(p, ',');
			const char *eq;
			size_t		len = end ? (size_t) (end - p) : strlen(p);
			char	   *line;

			eq = memchr(p, '=', len);
			if (eq != NULL)
			{
				line = psprintf("%.*s: %.*s", (int) (eq - p), p,
								(int) (len - (eq - p) - 1), eq + 1);
				h = curl_slist_append(h, line);
				explicit_bzero(line, strlen(line));
				pfree(line);
			}
			p += len;
			if (*p == ',')
				p++;
		}
	}
	if (h == NULL)
	{
		req->result = HTTP_RETRY;
		strlcpy(req->error, "out of memory for request headers", HTTP_ERROR_LEN);
		return false;
	}
	slot->headers = h;
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	return true;
}

/*
 * An e-mail: the envelope from the channel and the user, the message as
 * the upload, STARTTLS and authentication as the channel asks.
 */
static bool
http_setup_smtp(HttpSlot *slot, CURL *easy)
{
	HttpRequest *req = slot->req;
	char		rcpt[512];

	if (req->rcpt == NULL || req->rcpt[0] == '\0')
	{
		req->result = HTTP_REFUSED;
		strlcpy(req->error, "the message has no e-mail address", HTTP_ERROR_LEN);
		return false;
	}
	snprintf(rcpt, sizeof(rcpt), "<%s>", req->rcpt);
	slot->rcpts = curl_slist_append(NULL, rcpt);
	if (slot->rcpts == NULL)
	{
		req->result = HTTP_RETRY;
		strlcpy(req->error, "out of memory for recipients", HTTP_ERROR_LEN);
		return false;
	}

	/*
	 * A connection per mail: a kept-alive one may lack the TLS or the
	 * login another channel to the same server requires.
	 */
	curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(easy, CURLOPT_MAIL_FROM, req->mail_from);
	curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, slot->rcpts);
	curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, http_read);
	curl_easy_setopt(easy, CURLOPT_READDATA, slot);
	curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->body_len);
	switch (req->tls)
	{
		case HTTP_TLS_REQUIRED:
			curl_easy_setopt(easy, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
			break;
		case HTTP_TLS_NONE:
			curl_easy_setopt(easy, CURLOPT_USE_SSL, (long) CURLUSESSL_NONE);
			break;
	}
	if (req->username != NULL)
	{
		curl_easy_setopt(easy, CURLOPT_USERNAME, req->username);
		curl_easy_setopt(easy, CURLOPT_PASSWORD,
						 req->password ? req->password : "");
	}
	return true;
}

/*
 * Classify a finished request.
 */
static void
http_finish(HttpSlot *slot, CURLcode rc)
{
	HttpRequest *req = slot->req;
	long		code = 0;

	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &code);
	req->status = code;
	req->finished_at = GetCurrentTimestamp();

	if (slot->refused && rc != CURLE_OK)
	{
		req->result = HTTP_REFUSED;
		snprintf(req->error, HTTP_ERROR_LEN,
				 "destination %s refused: %s address (lifecycle.allow_private_targets is off)",
				 slot->refused_addr, slot->refused_kind);
		return;
	}

	if (rc == CURLE_OK && req->kind == HTTP_SMTP)
	{
		req->result = HTTP_SENT;
		return;
	}
	if (rc == CURLE_OK)
	{
		if (code >= 200 && code < 300)
		{
			req->result = HTTP_SENT;
			if (req->kind == HTTP_OTLP)
			{
				const char *r;

				slot->response[Min(slot->response_len, HTTP_RESPONSE_KEEP - 1)] = '\0';
				r = strstr(slot->response, "\"rejectedSpans\"");
				if (r != NULL && (r = strchr(r, ':')) != NULL)
				{
					r++;
					while (*r == ' ' || *r == '"')
						r++;
					req->rejected = strtoll(r, NULL, 10);
				}
			}
		}
		else if (code == 410)
		{
			req->result = HTTP_GONE;
			strlcpy(req->error, "HTTP 410 Gone: the receiver disabled this channel",
					HTTP_ERROR_LEN);
		}
		else if (code >= 300 && code < 400)
		{
			req->result = HTTP_RETRY;
			snprintf(req->error, HTTP_ERROR_LEN,
					 "HTTP %ld: redirects are not followed", code);
		}
		else
		{
			curl_off_t	after = 0;

			req->result = HTTP_RETRY;
			snprintf(req->error, HTTP_ERROR_LEN, "HTTP %ld", code);
			if ((code == 429 || code == 503 ||
				 (req->kind == HTTP_OTLP && (code == 502 || code == 504))) &&
				curl_easy_getinfo(slot->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK &&
				after > 0)
				req->retry_after = (int) Min(after, (curl_off_t) 86400);
		}
		return;
	}

	if (rc == CURLE_UNSUPPORTED_PROTOCOL)
	{
		req->result = HTTP_REFUSED;
		snprintf(req->error, HTTP_ERROR_LEN, "protocol not allowed: %s",
				 slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(rc));
		return;
	}
	req->result = HTTP_RETRY;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(req->error, HTTP_ERROR_LEN, "timed out after %d ms",
				 slot->timeout_ms);
	else if (req->kind == HTTP_SMTP && code != 0)
		snprintf(req->error, HTTP_ERROR_LEN, "SMTP %ld: %s", code,
				 slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(rc));
	else
		snprintf(req->error, HTTP_ERROR_LEN, "%s",
				 slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(rc));
}

/*
 * Take a request off the multi handle and free what libcurl allocated.
 */
static void
http_release(HttpClient *client, HttpSlot *slot)
{
	if (slot->easy != NULL)
	{
		curl_multi_remove_handle(client->multi, slot->easy);
		curl_easy_cleanup(slot->easy);
		slot->easy = NULL;
	}
	if (slot->headers != NULL)
	{
		curl_slist_free_all(slot->headers);
		slot->headers = NULL;
	}
	if (slot->rcpts != NULL)
	{
		curl_slist_free_all(slot->rcpts);
		slot->rcpts = NULL;
	}
}

/*
 * Every connection libcurl opens comes here with the resolved address:
 * refuse internal destinations unless allowed.
 */
static curl_socket_t
http_open_socket(void *clientp, curlsocktype purpose,
				 struct curl_sockaddr *address)
{
	HttpSlot   *slot = (HttpSlot *) clientp;

	if (!slot->allow_private)
	{
		char		text[INET6_ADDRSTRLEN];
		const char *kind = http_forbidden_address(&address->addr, text,
												  sizeof(text));

		if (kind != NULL)
		{
			slot->refused = true;
			slot->refused_kind = kind;
			strlcpy(slot->refused_addr, text, sizeof(slot->refused_addr));
			return CURL_SOCKET_BAD;
		}
	}
	return socket(address->family, address->socktype, address->protocol);
}

/*
 * What kind of internal IPv4 address a is (network byte order), or NULL
 * for a public one.
 */
static const char *
http_forbidden_v4(const uint8 *a)
{
	if (a[0] == 0)
		return "unspecified";
	if (a[0] == 127)
		return "loopback";
	if (a[0] == 10 ||
		(a[0] == 172 && (a[1] & 0xF0) == 16) ||
		(a[0] == 192 && a[1] == 168))
		return "private";
	if (a[0] == 100 && (a[1] & 0xC0) == 64)
		return "shared (carrier-grade NAT)";
	if (a[0] == 169 && a[1] == 254)
		return "link-local";
	if (a[0] >= 224 && a[0] <= 239)
		return "multicast";
	if (a[0] >= 240)
		return "reserved";
	if ((a[0] == 192 && a[1] == 0 && a[2] == 0) ||
		(a[0] == 198 && (a[1] & 0xFE) == 18))
		return "reserved";
	return NULL;
}

/*
 * What kind of internal address sa is, or NULL for a public one; its text
 * form goes to text.  IPv6 forms that embed an IPv4 address (mapped,
 * compatible, NAT64, 6to4) are judged by that address.
 */
static const char *
http_forbidden_address(const struct sockaddr *sa, char *text, size_t textlen)
{
	text[0] = '\0';
	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &in->sin_addr, text, textlen);
		return http_forbidden_v4((const uint8 *) &in->sin_addr);
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
		const uint8 *a = in6->sin6_addr.s6_addr;
		static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
		static const uint8 nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
		bool		zero96 = true;

		inet_ntop(AF_INET6, &in6->sin6_addr, text, textlen);
		for (int i = 0; i < 12; i++)
			if (a[i] != 0)
				zero96 = false;
		if (zero96)
		{
			bool		zero_rest = (a[12] == 0 && a[13] == 0 && a[14] == 0);

			if (zero_rest && a[15] == 0)
				return "unspecified";
			if (zero_rest && a[15] == 1)
				return "loopback";
			/* IPv4-compatible (deprecated) */
			return http_forbidden_v4(a + 12) ? http_forbidden_v4(a + 12) : "reserved";
		}
		if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
			return http_forbidden_v4(a + 12);
		if (a[0] == 0x20 && a[1] == 0x02)
			return http_forbidden_v4(a + 2);
		if ((a[0] & 0xFE) == 0xFC)
			return "private (unique local)";
		if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80)
			return "link-local";
		if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0)
			return "private (site-local)";
		if (a[0] == 0xFF)
			return "multicast";
		return NULL;
	}
	strlcpy(text, "(not an IP address)", textlen);
	return "non-IP";
}

/*
 * Response bodies are not kept.
 */
static size_t
http_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/*
 * Keep the start of a response body (OTLP).
 */
static size_t
http_keep(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpSlot   *slot = (HttpSlot *) userdata;
	size_t		n = size * nmemb;
	size_t		room = HTTP_RESPONSE_KEEP - 1 - Min(slot->response_len, HTTP_RESPONSE_KEEP - 1);
	size_t		k = Min(n, room);

	memcpy(slot->response + slot->response_len, ptr, k);
	slot->response_len += k;
	return n;
}

/*
 * Feed an e-mail to libcurl.
 */
static size_t
http_read(char *buffer, size_t size, size_t nitems, void *userdata)
{
	HttpSlot   *slot = (HttpSlot *) userdata;
	size_t		room = size * nitems;
	size_t		left = slot->req->body_len - slot->read_pos;
	size_t		n = Min(room, left);

	memcpy(buffer, slot->req->body + slot->read_pos, n);
	slot->read_pos += n;
	return n;
}

/*
 * Decode a whsec_ secret into key (HTTP_KEY_MAX bytes of room); returns
 * the key length, or -1 when it is not a valid secret.
 */
static int
http_decode_secret(const char *secret, uint8 *key)
{
	const char *b64;
	int			len;
	char	   *buf;
	int			n;

	if (secret == NULL ||
		strncmp(secret, HTTP_SECRET_PREFIX, strlen(HTTP_SECRET_PREFIX)) != 0)
		return -1;
	b64 = secret + strlen(HTTP_SECRET_PREFIX);
	len = strlen(b64);
	if (len == 0 || len > 1024)
		return -1;
	buf = palloc(pg_b64_dec_len(len) + 1);
	n = pg_b64_decode(b64, len, buf, pg_b64_dec_len(len));
	if (n < HTTP_KEY_MIN || n > HTTP_KEY_MAX)
	{
		pfree(buf);
		return -1;
	}
	memcpy(key, buf, n);
	explicit_bzero(buf, n);
	pfree(buf);
	return n;
}

/*
 * Is secret a valid webhook secret?  NULL if so, else what is wrong.
 */
const char *
http_check_secret(const char *secret)
{
	uint8		key[HTTP_KEY_MAX];

	if (strncmp(secret, HTTP_SECRET_PREFIX, strlen(HTTP_SECRET_PREFIX)) != 0)
		return "a webhook secret starts with \"whsec_\"";
	if (http_decode_secret(secret, key) < 0)
		return "a webhook secret is \"whsec_\" followed by the base64 of 24 to 64 random bytes";
	explicit_bzero(key, sizeof(key));
	return NULL;
}

/*
 * The Standard Webhooks signature of a message: base64 of
 * HMAC-SHA256(key, "id.timestamp.body") into out.  False if the secret is
 * not valid.
 */
bool
http_sign(const char *secret, const char *id, long timestamp,
		  const char *body, size_t body_len, char *out, size_t outlen)
{
	uint8		key[HTTP_KEY_MAX];
	uint8		mac[32];
	int			keylen;
	char		prefix[128];
	pg_hmac_ctx *ctx;
	int			n;
	bool		ok;

	keylen = http_decode_secret(secret, key);
	if (keylen < 0)
		return false;
	snprintf(prefix, sizeof(prefix), "%s.%ld.", id, timestamp);

	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = pg_hmac_init(ctx, key, keylen) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) prefix, strlen(prefix)) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) body, body_len) == 0 &&
		pg_hmac_final(ctx, mac, sizeof(mac)) == 0;
	pg_hmac_free(ctx);
	explicit_bzero(key, sizeof(key));
	if (!ok)
		return false;
	if (outlen < (size_t) pg_b64_enc_len(sizeof(mac)) + 1)
		return false;
	n = pg_b64_encode((const char *) mac, sizeof(mac), out, outlen - 1);
	if (n < 0)
		return false;
	out[n] = '\0';
	return true;
}

/*
 * Is url a target a channel of this kind may have?  NULL if so, else what
 * is wrong.  Only the scheme and host are checked here; addresses are
 * checked at connect time.
 */
const char *
http_check_target(HttpKind kind, const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	const char *problem = NULL;

	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	for (const char *p = url; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7F || *p == ' ')
			problem = "a target must not contain spaces or control characters";
	if (problem == NULL &&
		curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		problem = "the target is not a valid URL";
	if (problem == NULL &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
		problem = "the target has no scheme";
	if (problem == NULL)
	{
		if (kind == HTTP_WEBHOOK &&
			pg_strcasecmp(scheme, "http") != 0 && pg_strcasecmp(scheme, "https") != 0)
			problem = "a webhook target must be an http:// or https:// URL";
		else if (kind == HTTP_SMTP &&
				 pg_strcasecmp(scheme, "smtp") != 0 && pg_strcasecmp(scheme, "smtps") != 0)
			problem = "an smtp target must be an smtp:// or smtps:// URL";
	}
	if (problem == NULL &&
		(curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		 host == NULL || host[0] == '\0'))
		problem = "the target has no host";
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return problem;
}
