/*-------------------------------------------------------------------------
 *
 * distribute.c
 *	  lifecycle on Citus (docs/CITUS.md): lifecycle._shard(), the bucket
 *	  every row of a subject carries and the column the tables are
 *	  distributed by.
 *
 * IDENTIFICATION
 *	  src/api/distribute.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "shard.h"

PG_FUNCTION_INFO_V1(lifecycle_shard);

/*
 * lifecycle._shard(tenant text, subject text) -> smallint (STRICT)
 */
Datum
lifecycle_shard(PG_FUNCTION_ARGS)
{
	char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_INT16(shard_of(tenant, subject));
}
