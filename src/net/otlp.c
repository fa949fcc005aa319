/*-------------------------------------------------------------------------
 *
 * otlp.c
 *	  OpenTelemetry on the wire: W3C trace context (traceparent), the
 *	  syntax of lifecycle.otel_headers, random trace and span ids, and the
 *	  part of a delivery's URL a span may show (no credentials, no query).
 *
 * No SPI, no transaction; the requests themselves go through http.c
 * (HTTP_OTLP), under the webhook rules.
 *
 * IDENTIFICATION
 *	  src/net/otlp.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "otlp.h"

static bool otlp_hex(const char *p, int n, bool *all_zero);

/*
 * Are the n characters at p lowercase hex digits?  all_zero: are they
 * all "0"?
 */
static bool
otlp_hex(const char *p, int n, bool *all_zero)
{
	*all_zero = true;
	for (int i = 0; i < n; i++)
	{
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
		if (p[i] != '0')
			*all_zero = false;
	}
	return true;
}

/*
 * Parse a W3C traceparent (version 00: "00-<trace id>-<parent id>-<flags>",
 * lowercase hex, ids not all zero; a later version may append fields).
 * trace_id and span_id (if not NULL) get the ids, NUL-terminated.
 */
bool
otlp_parse_traceparent(const char *v, char *trace_id, char *span_id)
{
	bool		zero;
	size_t		len = strlen(v);

	if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!otlp_hex(v, 2, &zero) || strncmp(v, "ff", 2) == 0)
		return false;
	if (strncmp(v, "00", 2) == 0 ? len != 55 : (len > 55 && v[55] != '-'))
		return false;
	if (!otlp_hex(v + 3, 32, &zero) || zero)
		return false;
	if (!otlp_hex(v + 36, 16, &zero) || zero)
		return false;
	if (!otlp_hex(v + 53, 2, &zero))
		return false;
	if (trace_id != NULL)
		strlcpy(trace_id, v + 3, OTLP_TRACE_ID_LEN + 1);
	if (span_id != NULL)
		strlcpy(span_id, v + 36, OTLP_SPAN_ID_LEN + 1);
	return true;
}

/*
 * Is value a valid W3C traceparent?
 */
bool
otlp_check_traceparent(const char *value)
{
	return otlp_parse_traceparent(value, NULL, NULL);
}

/*
 * Is value "name=value[,name=value...]" with names of letters, digits,
 * '-', '_', '.' and values without control characters or commas?
 */
bool
otlp_check_headers(const char *value)
{
	const char *p = value;

	while (*p != '\0')
	{
		const char *name = p;

		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')
			p++;
		if (p == name || *p != '=')
			return false;
		p++;
		while (*p != '\0' && *p != ',')
		{
			if ((unsigned char) *p < 0x20 || *p == 0x7F)
				return false;
			p++;
		}
		if (*p == ',')
		{
			p++;
			if (*p == '\0')
				return false;
		}
	}
	return true;
}

/*
 * A random id of hex_digits lowercase hex digits (32: a trace id, 16: a
 * span id), never all zero, NUL-terminated.
 */
void
otlp_random_id(char *out, int hex_digits)
{
	uint8		bytes[16];
	bool		zero = true;

	Assert(hex_digits == 16 || hex_digits == 32);
	while (zero)
	{
		if (!pg_strong_random(bytes, hex_digits / 2))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random trace id")));
		for (int i = 0; i < hex_digits / 2; i++)
			if (bytes[i] != 0)
				zero = false;
	}
	for (int i = 0; i < hex_digits / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", bytes[i]);
	out[hex_digits] = '\0';
}

/*
 * What a span shows of a delivery's URL: scheme, host, port and path, no
 * credentials, query or fragment (url.full), into out (OTLP_URL_LEN);
 * the host (OTLP_HOST_LEN) and port.  An URL libcurl cannot parse shows
 * as empty.
 */
void
otlp_span_url(const char *url, char *out, char *host, int *port)
{
	CURLU	   *u = curl_url();
	char	   *s = NULL;

	out[0] = '\0';
	host[0] = '\0';
	*port = 0;
	if (u == NULL)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
	{
		curl_url_set(u, CURLUPART_USER, NULL, 0);
		curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
		curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
		curl_url_set(u, CURLUPART_QUERY, NULL, 0);
		curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
		if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		{
			strlcpy(out, s, OTLP_URL_LEN);
			curl_free(s);
		}
		if (curl_url_get(u, CURLUPART_HOST, &s, 0) == CURLUE_OK)
		{
			strlcpy(host, s, OTLP_HOST_LEN);
			curl_free(s);
		}
		if (curl_url_get(u, CURLUPART_PORT, &s, CURLU_DEFAULT_PORT) == CURLUE_OK)
		{
			*port = atoi(s);
			curl_free(s);
		}
	}
	curl_url_cleanup(u);
}
