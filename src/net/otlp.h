/*-------------------------------------------------------------------------
 *
 * otlp.h
 *	  OpenTelemetry on the wire: W3C trace context, the OTLP settings'
 *	  syntax, and what of a delivery's URL a span may show.
 *
 * IDENTIFICATION
 *	  src/net/otlp.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_OTLP_H
#define LIFECYCLE_OTLP_H

#define OTLP_TRACE_ID_LEN	32	/* hex digits */
#define OTLP_SPAN_ID_LEN	16
#define OTLP_URL_LEN		256
#define OTLP_HOST_LEN		128

extern bool otlp_check_traceparent(const char *value);
extern bool otlp_parse_traceparent(const char *value, char *trace_id,
								   char *span_id);
extern bool otlp_check_headers(const char *value);
extern void otlp_random_id(char *out, int hex_digits);
extern void otlp_span_url(const char *url, char *out, char *host, int *port);

#endif							/* LIFECYCLE_OTLP_H */
