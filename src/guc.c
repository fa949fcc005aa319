/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Defines every lifecycle.* setting and reserves the prefix.
 *
 * All settings are SIGHUP (or POSTMASTER) so that the worker and every
 * session agree on them; none can be changed per session.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guc.h"

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

	MarkGUCPrefixReserved("lifecycle");
}
