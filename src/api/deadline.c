/*-------------------------------------------------------------------------
 *
 * deadline.c
 *	  lifecycle._refresh_deadlines(): recompute every user's retention
 *	  deadline (users.deadline_at, deadline_event) from machine.c, for the
 *	  upgrade from 0.1.0 and for repairs.  Transitions keep the columns
 *	  current themselves (store_apply()).
 *
 * IDENTIFICATION
 *	  src/deadline.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "machine.h"
#include "policy.h"
#include "store.h"
#include "version.h"

PG_FUNCTION_INFO_V1(lifecycle_refresh_deadlines);

#define DEADLINE_PAGE 10000

/*
 * lifecycle._refresh_deadlines() -> users written.  Pages through the
 * users in id order, a bounded memory context per page.
 */
Datum
lifecycle_refresh_deadlines(PG_FUNCTION_ARGS)
{
	MemoryContext page_cxt = AllocSetContextCreate(CurrentMemoryContext,
												   "lifecycle deadlines page",
												   ALLOCSET_DEFAULT_SIZES);
	int64		after = 0;
	int64		total = 0;
	char	   *installed;

	/*
	 * An update script before the last of a chain (0.1.0 -> 0.2.0 on the
	 * way to 0.3.0) runs with the newest library against an older schema:
	 * the last script refreshes the deadlines instead.
	 */
	if (creating_extension && version_schema(&installed) != LC_SCHEMA_CURRENT)
	{
		MemoryContextDelete(page_cxt);
		PG_RETURN_INT64(0);
	}

	SPI_connect();
	for (;;)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(page_cxt);
		LcUserRow  *rows;
		int64	   *ids;
		TimestampTz *at;
		const char **ev;
		int			n;

		CHECK_FOR_INTERRUPTS();
		n = store_users_page(after, DEADLINE_PAGE, &rows);
		if (n == 0)
		{
			MemoryContextSwitchTo(oldcxt);
			break;
		}
		ids = palloc(sizeof(int64) * n);
		at = palloc(sizeof(TimestampTz) * n);
		ev = palloc(sizeof(char *) * n);
		for (int i = 0; i < n; i++)
		{
			LcPolicy   *policy = policy_get(rows[i].policy, rows[i].policy_version);

			ids[i] = rows[i].id;
			at[i] = machine_deadline(policy, &rows[i].user, &ev[i]);
		}
		store_set_deadlines(ids, at, ev, n);
		after = rows[n - 1].id;
		total += n;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(page_cxt);
	}
	SPI_finish();
	MemoryContextDelete(page_cxt);
	PG_RETURN_INT64(total);
}
