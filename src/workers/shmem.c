/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The workers' shared memory, and waking them at commit.
 *
 * A transaction that creates a timer earlier than the scheduler's planned
 * wake-up, or a message to deliver, or that creates or updates the
 * extension (version.c: idle workers resume), notes it here; a
 * transaction callback sets the worker's latch once the transaction has
 * committed, so a worker never wakes to find uncommitted work, and never
 * polls.
 *
 * Without shared_preload_libraries the pointer stays NULL and everything
 * here is a no-op: the SQL API works, lifecycle_tick() advances timers.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "spans.h"

LcShared   *lc_shared = NULL;

/* What this backend's transaction will wake at commit. */
typedef struct ShmemPending
{
	bool		callback_registered;
	TimestampTz earliest_timer;
	bool		message;
	bool		schema;			/* the extension is created or updated */
} ShmemPending;

static ShmemPending shmem_pending;

static shmem_request_hook_type shmem_prev_request_hook = NULL;
static shmem_startup_hook_type shmem_prev_startup_hook = NULL;

static void shmem_request(void);
static void shmem_startup(void);
static void shmem_xact_callback(XactEvent event, void *arg);
static void shmem_register_callback(void);
static void shmem_wake(LcWorkerKind kind);

/*
 * Install the hooks; only when preloading.
 */
void
shmem_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	shmem_prev_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	shmem_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

/*
 * Ask for our share of shared memory.
 */
static void
shmem_request(void)
{
	if (shmem_prev_request_hook)
		shmem_prev_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(LcShared)));
	spans_shmem_request();
}

/*
 * Create or attach to the shared struct.
 */
static void
shmem_startup(void)
{
	bool		found;

	if (shmem_prev_startup_hook)
		shmem_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	lc_shared = ShmemInitStruct("lifecycle", sizeof(LcShared), &found);
	if (!found)
	{
		memset(lc_shared, 0, sizeof(LcShared));
		SpinLockInit(&lc_shared->mutex);
	}
	spans_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Register the transaction callback once per backend.
 */
static void
shmem_register_callback(void)
{
	if (!shmem_pending.callback_registered)
	{
		RegisterXactCallback(shmem_xact_callback, NULL);
		shmem_pending.callback_registered = true;
	}
}

/*
 * This transaction creates a timer due at "at".
 */
void
shmem_note_timer(TimestampTz at)
{
	if (lc_shared == NULL || MyDatabaseId != lc_shared->database)
		return;
	shmem_register_callback();
	if (shmem_pending.earliest_timer == 0 || at < shmem_pending.earliest_timer)
		shmem_pending.earliest_timer = at;
}

/*
 * This transaction writes a message to deliver.
 */
void
shmem_note_message(void)
{
	if (lc_shared == NULL || MyDatabaseId != lc_shared->database)
		return;
	shmem_register_callback();
	shmem_pending.message = true;
}

/*
 * This transaction creates or updates the extension: wake both workers,
 * which idle until the schema matches the library (worker.c).
 */
void
shmem_note_schema_change(void)
{
	if (lc_shared == NULL || MyDatabaseId != lc_shared->database)
		return;
	shmem_register_callback();
	shmem_pending.schema = true;
}

/*
 * Set a worker's latch (if it runs).
 */
static void
shmem_wake(LcWorkerKind kind)
{
	Latch	   *latch;

	if (lc_shared == NULL)
		return;
	SpinLockAcquire(&lc_shared->mutex);
	latch = lc_shared->workers[kind].latch;
	SpinLockRelease(&lc_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * At commit, wake the scheduler if a new timer is earlier than its planned
 * wake-up, and the sender if there are messages.  At abort, forget.
 */
static void
shmem_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (shmem_pending.schema)
				shmem_wake(LC_WORKER_SCHEDULER);
			else if (shmem_pending.earliest_timer != 0)
			{
				bool		wake;

				SpinLockAcquire(&lc_shared->mutex);
				wake = lc_shared->workers[LC_WORKER_SCHEDULER].next_wake == 0 ||
					shmem_pending.earliest_timer <
					lc_shared->workers[LC_WORKER_SCHEDULER].next_wake;
				SpinLockRelease(&lc_shared->mutex);
				if (wake)
					shmem_wake(LC_WORKER_SCHEDULER);
			}
			if (shmem_pending.message || shmem_pending.schema)
				shmem_wake(LC_WORKER_SENDER);
			shmem_pending.earliest_timer = 0;
			shmem_pending.message = false;
			shmem_pending.schema = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			shmem_pending.earliest_timer = 0;
			shmem_pending.message = false;
			shmem_pending.schema = false;
			break;
		default:
			break;
	}
}
