/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Registration of the lifecycle background workers (scheduler, sender),
 *	  which share their start and restart rules.
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_WORKER_H
#define LIFECYCLE_WORKER_H

#include "postmaster/bgworker.h"

/*
 * Register a worker of this library: connected to a database, started
 * when recovery has finished (never on a standby: after promotion),
 * restarted 5 s after a crash.
 */
static inline void
worker_register(const char *function_name, const char *name)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "lifecycle");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function_name);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

#endif							/* LIFECYCLE_WORKER_H */
