/*-------------------------------------------------------------------------
 *
 * shard.c
 *	  The shard of a subject (docs/CITUS.md): a bucket in a fixed range
 *	  from (tenant, subject), the same on every machine and in every
 *	  version.
 *
 * 32-bit FNV-1a of the tenant's bytes, a zero byte and the subject's
 * bytes, modulo LC_SHARD_BUCKETS: byte order and PostgreSQL's own hash
 * functions (which may change between major versions) play no part, so a
 * row's bucket computed by the upgrade script, by the application and by
 * a worker is the same.  Pure: no SPI, no I/O.
 *
 * IDENTIFICATION
 *	  src/shard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "shard.h"

#define FNV_OFFSET	2166136261u
#define FNV_PRIME	16777619u

static uint32
fnv1a(uint32 h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		h ^= *p;
		h *= FNV_PRIME;
	}
	return h;
}

/*
 * The bucket of (tenant, subject).  A subject that is not known (NULL:
 * erased) falls in bucket 0: callers give the bucket of the rows that
 * already exist instead.
 */
int16
shard_of(const char *tenant, const char *subject)
{
	uint32		h = FNV_OFFSET;

	if (tenant == NULL || subject == NULL)
		return 0;
	h = fnv1a(h, tenant);
	h ^= 0;
	h *= FNV_PRIME;				/* the zero byte between the two */
	h = fnv1a(h, subject);
	return (int16) (h % LC_SHARD_BUCKETS);
}
