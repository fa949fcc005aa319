/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Defines every lifecycle.* setting and reserves the prefix.
 *
 * All settings are SIGHUP (or POSTMASTER) so that the worker and every
 * session agree on them; none can be changed per session but
 * lifecycle.traceparent, which an application sets per transaction.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guc.h"
#include "http.h"
#include "otlp.h"

char	   *lc_database = NULL;
bool		lc_enabled = true;
int			lc_batch_size = 10000;
int			lc_max_sleep = 60000;
int			lc_http_timeout = 10000;
int			lc_max_attempts = 12;
int			lc_max_concurrent_requests = 64;
bool		lc_allow_private_targets = false;
bool		lc_allow_time_travel = false;
char	   *lc_role = NULL;
char	   *lc_otel_endpoint = NULL;
char	   *lc_otel_headers = NULL;
char	   *lc_otel_service_name = NULL;
char	   *lc_traceparent = NULL;

/*
 * lifecycle.otel_endpoint: empty, or an http:// or https:// URL (the
 * webhook rules; addresses are checked at connect time).
 */
static bool
guc_check_otel_endpoint(char **newval, void **extra, GucSource source)
{
	const char *problem;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	problem = http_check_target(HTTP_WEBHOOK, *newval);
	if (problem != NULL)
	{
		GUC_check_errdetail("%s.", problem);
		return false;
	}
	return true;
}

/*
 * lifecycle.otel_headers: empty, or k=v pairs separated by commas; a key
 * is an HTTP token, a value has no control characters.  The value holds
 * credentials: PostgreSQL's message for a refused value would echo it, so
 * a malformed one is not refused but replaced by empty (no header is
 * sent), with a WARNING that does not show it.
 */
static bool
guc_check_otel_headers(char **newval, void **extra, GucSource source)
{
	char	   *empty;

	if (*newval == NULL || (*newval)[0] == '\0' || otlp_check_headers(*newval))
		return true;
	ereport(WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("lifecycle.otel_headers ignored: not a list of name=value pairs"),
			 errhint("Separate the pairs with commas; a name is letters, digits and -_.")));
	empty = malloc(1);
	if (empty == NULL)
		return false;
	empty[0] = '\0';
	free(*newval);
	*newval = empty;
	return true;
}

/*
 * lifecycle.traceparent: empty, or a W3C traceparent.  A malformed value
 * must never fail the application's transaction: it is ignored (the
 * setting becomes empty) with a WARNING that does not echo it.
 */
static bool
guc_check_traceparent(char **newval, void **extra, GucSource source)
{
	char	   *empty;

	if (*newval == NULL || (*newval)[0] == '\0' || otlp_check_traceparent(*newval))
		return true;
	ereport(WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("lifecycle.traceparent ignored: not a W3C traceparent"),
			 errhint("The form is 00-<32 hex digits trace id>-<16 hex digits parent id>-<2 hex digits flags>.")));
	empty = malloc(1);
	if (empty == NULL)
		return false;
	empty[0] = '\0';
	free(*newval);
	*newval = empty;
	return true;
}

/*
 * Define the settings.  Called from _PG_init whether or not the library is
 * preloaded, so the SQL API sees the same values as the worker.
 */
void
guc_init(void)
{
	DefineCustomStringVariable("lifecycle.database",
							   "Database in which the lifecycle workers run (read at worker start).",
							   NULL,
							   &lc_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("lifecycle.role",
							   "Role as which the lifecycle workers connect (default: the bootstrap superuser).",
							   NULL,
							   &lc_role,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("lifecycle.enabled",
							 "Whether the lifecycle workers advance timers and deliver messages.",
							 NULL,
							 &lc_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("lifecycle.batch_size",
							"Users advanced per transaction by the scheduler.",
							NULL,
							&lc_batch_size,
							10000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lifecycle.max_sleep",
							"Longest time the workers sleep without checking for work.",
							NULL,
							&lc_max_sleep,
							60000, 10, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lifecycle.http_timeout",
							"Timeout of one webhook or e-mail delivery.",
							NULL,
							&lc_http_timeout,
							10000, 100, 600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lifecycle.max_attempts",
							"Delivery attempts before a message goes to dead letters.",
							NULL,
							&lc_max_attempts,
							12, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("lifecycle.max_concurrent_requests",
							"Deliveries the sender keeps in flight at once.",
							NULL,
							&lc_max_concurrent_requests,
							64, 1, 1024,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("lifecycle.allow_private_targets",
							 "Allow deliveries to loopback, private and link-local addresses.",
							 NULL,
							 &lc_allow_private_targets,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("lifecycle.allow_time_travel",
							 "Allow lifecycle_travel() to move the lifecycle clock (tests and demos).",
							 NULL,
							 &lc_allow_time_travel,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("lifecycle.otel_endpoint",
							   "OTLP/HTTP endpoint the exporter sends traces to (POST <endpoint>/v1/traces); empty: off.",
							   NULL,
							   &lc_otel_endpoint,
							   "",
							   PGC_SIGHUP,
							   0,
							   guc_check_otel_endpoint, NULL, NULL);

	DefineCustomStringVariable("lifecycle.otel_headers",
							   "Headers of every OTLP request, as k=v,k=v (e.g. an API key).",
							   NULL,
							   &lc_otel_headers,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   guc_check_otel_headers, NULL, NULL);

	DefineCustomStringVariable("lifecycle.otel_service_name",
							   "service.name of the exported traces.",
							   NULL,
							   &lc_otel_service_name,
							   "lifecycle",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("lifecycle.traceparent",
							   "W3C traceparent of the application's trace: the spans of this transaction's calls become its children.",
							   "Set it per transaction with SET LOCAL; a malformed value is ignored with a WARNING.",
							   &lc_traceparent,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   guc_check_traceparent, NULL, NULL);

	MarkGUCPrefixReserved("lifecycle");
}
