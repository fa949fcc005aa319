/*-------------------------------------------------------------------------
 *
 * shard.h
 *	  The shard of a subject: the bucket every row of the subject carries,
 *	  the column Citus distributes lifecycle's tables by (docs/CITUS.md).
 *
 * IDENTIFICATION
 *	  src/shard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SHARD_H
#define LIFECYCLE_SHARD_H

/*
 * Buckets 0 .. LC_SHARD_BUCKETS - 1.  Fixed forever: a stored row keeps
 * its bucket, and every call must route to it from its arguments.  Many
 * subjects share a bucket (a million subjects: about a thousand each), so
 * a bucket left on an erased subject's rows identifies no one.
 */
#define LC_SHARD_BUCKETS	1024

extern int16 shard_of(const char *tenant, const char *subject);

#endif							/* LIFECYCLE_SHARD_H */
