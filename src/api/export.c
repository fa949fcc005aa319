/*-------------------------------------------------------------------------
 *
 * export.c
 *	  lifecycle_export(): everything held about a subject as one JSON
 *	  document (GDPR Art. 15 access, Art. 20 portability).
 *
 * The document holds the user row (e-mail, attrs, region, state, dates),
 * its policy version's intervals, its history and its messages with their
 * payloads, and under "instances" every live instance of the subject, of
 * every workflow, with its own history and messages.  The export is itself recorded in history (event "export")
 * before the document is built, so the document shows it too.
 *
 * IDENTIFICATION
 *	  src/export.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "store.h"
#include "store_bulk.h"

PG_FUNCTION_INFO_V1(lifecycle_export);

/*
 * lifecycle_export(subject, tenant) -> jsonb
 *
 * Subject-wide: every live instance of the subject is locked and exported
 * under the key "instances" (each with its history and messages, the
 * export recorded in each).  The user lifecycle's 0.2.0 keys stay at the
 * top level; a subject without one gets its shared personal data there.
 */
Datum
lifecycle_export(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	LcUserRow  *rows;
	Jsonb	   *doc = NULL;
	int64	   *ids;
	int64	   *record;
	const char **states;
	int			nrecord = 0;
	int			n;
	TimestampTz now;
	const char *actor;

	SPI_connect();
	acting_check_tenant(tenant);
	/* Locked, so that an erasure waits for the export (or wins: 42704). */
	n = store_subject_instances(tenant, subject, &rows);
	if (n == 0)
		api_not_found(tenant);
	now = clock_now();
	actor = acting_actor();
	ids = palloc(sizeof(int64) * n);
	record = palloc(sizeof(int64) * n);
	states = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
	{
		const char *state = machine_state_name(rows[i].graph, rows[i].user.state);

		ids[i] = rows[i].id;
		/* The user lifecycle is first (store_subject_instances()). */
		if (i == 0 && strcmp(rows[i].workflow, LC_USER_WORKFLOW) == 0 &&
			rows[i].key[0] == '\0')
			doc = store_bulk_export(rows[i].id, state, now, actor);
		else
		{
			record[nrecord] = rows[i].id;
			states[nrecord++] = state;
		}
	}
	doc = store_bulk_export_instances(ids, n, record, states, nrecord, doc,
									  now, actor);
	SPI_finish();
	PG_RETURN_JSONB_P(doc);
}
