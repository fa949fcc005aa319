/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  What the lifecycle background workers (scheduler, sender) share:
 *	  registration and start-up.
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_WORKER_H
#define LIFECYCLE_WORKER_H

#include "shmem.h"

extern void worker_register(const char *function_name, const char *name);
extern void worker_start(LcWorkerKind kind, const char *name);
extern bool worker_schema_ready(const char *name);

#endif							/* LIFECYCLE_WORKER_H */
