/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  Exponential backoff, for everything in lifecycle that retries: a
 *	  failed transition (engine.c), a failed delivery (sender.c, with
 *	  jitter) and a worker's failed pass (worker.c).
 *
 * IDENTIFICATION
 *	  src/backoff.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"

#include "backoff.h"

/*
 * The delay after "steps" doublings of base_ms, capped at max_ms: step 0
 * waits base_ms.
 */
int64
backoff_ms(int64 base_ms, int64 max_ms, int steps)
{
	int64		ms = base_ms;

	for (int i = 0; i < steps && ms < max_ms; i++)
		ms *= 2;
	return Min(ms, max_ms);
}

/*
 * A random 50-100 % of ms, so that many retries of one moment (a receiver
 * back from an outage) do not all come back at the same moment.
 */
int64
backoff_jitter(int64 ms)
{
	return ms / 2 + (int64) (pg_prng_double(&pg_global_prng_state) * (ms / 2));
}
