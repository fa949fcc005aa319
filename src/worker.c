/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Registration and start-up shared by the scheduler and the sender.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "guc.h"
#include "stats.h"
#include "version.h"
#include "worker.h"

/* The worker process's own state (one worker per process). */
typedef struct WorkerState
{
	bool		idle_logged;	/* said that the schema is of another version */
} WorkerState;

static WorkerState worker_state;

/*
 * Register a worker of this library: connected to a database, started
 * when recovery has finished (never on a standby: after promotion),
 * restarted 5 s after a crash.
 */
void
worker_register(const char *function_name, const char *name)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "%s", LIFECYCLE_NAME);
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function_name);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

/*
 * Start-up of a worker's main function: stock signal handlers, connect to
 * lifecycle.database, claim the worker's slot in shared memory (exit if
 * another process holds it), pin search_path so that nothing the worker
 * runs can be redirected by objects in public.
 */
void
worker_start(LcWorkerKind kind, const char *name)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(lc_database,
										 (lc_role && lc_role[0]) ? lc_role : NULL,
										 0);
	pgstat_report_appname(name);

	if (!stats_register(kind))
	{
		ereport(LOG,
				(errmsg("%s already running, exiting", name)));
		proc_exit(0);
	}

	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Is there work for a worker in this database: the extension installed,
 * at the library's version?  Called in a transaction at the start of
 * every pass.  Between a package upgrade and ALTER EXTENSION UPDATE the
 * schema is older than the library: the worker idles, and says so once
 * (and once again when it resumes), naming the update.
 */
bool
worker_schema_ready(const char *name)
{
	char	   *installed = NULL;
	LcSchema	schema = version_schema(&installed);

	if (schema == LC_SCHEMA_OTHER && !worker_state.idle_logged)
	{
		ereport(LOG,
				(errmsg("%s idle: extension \"%s\" in database \"%s\" is at version %s, the library at version %s; run ALTER EXTENSION %s UPDATE",
						name, LIFECYCLE_NAME, lc_database, installed,
						LIFECYCLE_VERSION, LIFECYCLE_NAME)));
		worker_state.idle_logged = true;
	}
	else if (schema == LC_SCHEMA_CURRENT && worker_state.idle_logged)
	{
		ereport(LOG,
				(errmsg("%s resumes: extension \"%s\" in database \"%s\" is at version %s",
						name, LIFECYCLE_NAME, lc_database, LIFECYCLE_VERSION)));
		worker_state.idle_logged = false;
	}
	return schema == LC_SCHEMA_CURRENT;
}
