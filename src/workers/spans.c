/*-------------------------------------------------------------------------
 *
 * spans.c
 *	  The span ring: delivery attempts (sender) and scheduler batches
 *	  (scheduler) as span records in shared memory, drained by the
 *	  exporter (exporter.c); and the exporter's counters (spans exported,
 *	  dropped, failed requests), read by lifecycle.worker_stats and
 *	  lifecycle.metrics.
 *
 * The ring is bounded (SPANS_RING_SIZE records): when the exporter falls
 * behind (the collector is down or slow), new records are dropped and
 * counted; the sender and the scheduler never wait for it.  Records are
 * only written while lifecycle.otel_endpoint is set.  They are lost in a
 * crash or a restart (the spans of transitions are not: they are made
 * from history).
 *
 * IDENTIFICATION
 *	  src/workers/spans.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "guc.h"
#include "spans.h"

typedef struct SpansShared
{
	LWLock	   *lock;
	uint64		head;			/* records ever added */
	uint64		tail;			/* records ever taken */
	int64		exported;
	int64		dropped;
	int64		failed_requests;
	SpanRecord	ring[SPANS_RING_SIZE];
} SpansShared;

static SpansShared *spans_shared = NULL;

PG_FUNCTION_INFO_V1(lifecycle_otel_stats);

Size
spans_shmem_size(void)
{
	return MAXALIGN(sizeof(SpansShared));
}

/*
 * From the shmem request hook: our space and lock.
 */
void
spans_shmem_request(void)
{
	RequestAddinShmemSpace(spans_shmem_size());
	RequestNamedLWLockTranche("lifecycle spans", 1);
}

/*
 * From the shmem startup hook (AddinShmemInitLock held).
 */
void
spans_shmem_startup(void)
{
	bool		found;

	spans_shared = ShmemInitStruct("lifecycle spans", spans_shmem_size(), &found);
	if (!found)
	{
		memset(spans_shared, 0, offsetof(SpansShared, ring));
		spans_shared->lock = &(GetNamedLWLockTranche("lifecycle spans"))->lock;
	}
}

/*
 * Is export on (in this process's view of the settings)?
 */
bool
spans_enabled(void)
{
	return spans_shared != NULL && lc_otel_endpoint != NULL &&
		lc_otel_endpoint[0] != '\0';
}

/*
 * Add n records; those that find the ring full are dropped and counted.
 */
void
spans_add(const SpanRecord *recs, int n)
{
	if (spans_shared == NULL || n <= 0)
		return;
	LWLockAcquire(spans_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		if (spans_shared->head - spans_shared->tail >= SPANS_RING_SIZE)
		{
			spans_shared->dropped += n - i;
			break;
		}
		spans_shared->ring[spans_shared->head % SPANS_RING_SIZE] = recs[i];
		spans_shared->head++;
	}
	LWLockRelease(spans_shared->lock);
}

/*
 * Take up to max records, oldest first.
 */
int
spans_take(SpanRecord *out, int max)
{
	int			n = 0;

	if (spans_shared == NULL)
		return 0;
	LWLockAcquire(spans_shared->lock, LW_EXCLUSIVE);
	while (n < max && spans_shared->tail < spans_shared->head)
	{
		out[n++] = spans_shared->ring[spans_shared->tail % SPANS_RING_SIZE];
		spans_shared->tail++;
	}
	LWLockRelease(spans_shared->lock);
	return n;
}

/*
 * Add to the exporter's counters.
 */
void
spans_count(int64 exported, int64 dropped, int64 failed_requests)
{
	if (spans_shared == NULL)
		return;
	LWLockAcquire(spans_shared->lock, LW_EXCLUSIVE);
	spans_shared->exported += exported;
	spans_shared->dropped += dropped;
	spans_shared->failed_requests += failed_requests;
	LWLockRelease(spans_shared->lock);
}

/*
 * Read the exporter's counters (zero without preloading).
 */
void
spans_counters(int64 *exported, int64 *dropped, int64 *failed_requests)
{
	*exported = *dropped = *failed_requests = 0;
	if (spans_shared == NULL)
		return;
	LWLockAcquire(spans_shared->lock, LW_SHARED);
	*exported = spans_shared->exported;
	*dropped = spans_shared->dropped;
	*failed_requests = spans_shared->failed_requests;
	LWLockRelease(spans_shared->lock);
}

/*
 * lifecycle._otel_stats(): the exporter's counters, one row.
 */
Datum
lifecycle_otel_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {0};
	int64		e,
				d,
				f;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	spans_counters(&e, &d, &f);
	values[0] = Int64GetDatum(e);
	values[1] = Int64GetDatum(d);
	values[2] = Int64GetDatum(f);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  values, nulls)));
}
