/*-------------------------------------------------------------------------
 *
 * backoff.h
 *	  Exponential backoff, for everything in lifecycle that retries.
 *
 * IDENTIFICATION
 *	  src/backoff.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_BACKOFF_H
#define LIFECYCLE_BACKOFF_H

extern int64 backoff_ms(int64 base_ms, int64 max_ms, int steps);
extern int64 backoff_jitter(int64 ms);

#endif							/* LIFECYCLE_BACKOFF_H */
