/*-------------------------------------------------------------------------
 *
 * export.c
 *	  lifecycle_export(): everything held about a subject as one JSON
 *	  document (GDPR Art. 15 access, Art. 20 portability).
 *
 * The document holds the user row (e-mail, attrs, region, state, dates),
 * its policy version's intervals, its history and its messages with their
 * payloads.  The export is itself recorded in history (event "export")
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
#include "clock.h"
#include "store.h"
#include "store_bulk.h"

PG_FUNCTION_INFO_V1(lifecycle_export);

/*
 * lifecycle_export(subject, tenant) -> jsonb
 */
Datum
lifecycle_export(PG_FUNCTION_ARGS)
{
	char	   *subject = args_text_arg(fcinfo, 0, "subject", LC_MAX_SUBJECT);
	char	   *tenant = args_text_arg(fcinfo, 1, "tenant", LC_MAX_TENANT);
	LcUserRow	row;
	Jsonb	   *doc;

	SPI_connect();
	acting_check_tenant(tenant);
	/* Locked, so that an erasure waits for the export (or wins: 42704). */
	api_find(tenant, subject, true, &row);
	doc = store_bulk_export(row.id, machine_state_name(row.graph, row.user.state), clock_now(),
							acting_actor());
	SPI_finish();
	PG_RETURN_JSONB_P(doc);
}
