/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  Entry point of the lifecycle extension: _PG_init only.
 *
 * IDENTIFICATION
 *	  src/lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "exporter.h"
#include "guc.h"
#include "scheduler.h"
#include "sender.h"
#include "shmem.h"
#include "version.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

/*
 * Settings always (the SQL API works unpreloaded); shared memory and the
 * workers only when preloaded.
 */
void
_PG_init(void)
{
	guc_init();
	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	shmem_init();
	version_init();
	scheduler_register();
	sender_register();
	exporter_register();
}
