/*-------------------------------------------------------------------------
 *
 * store_workflow.c
 *	  The SQL of lifecycle.workflows (docs/WORKFLOWS.md): read a version of
 *	  a definition, write the next one.  Saved plans, run inside the
 *	  caller's SPI connection.
 *
 * IDENTIFICATION
 *	  src/store/store_workflow.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "store.h"
#include "store_workflow.h"

static SPIPlanPtr store_workflow_plans[4];

/*
 * A version of a workflow (0: the latest) with its version and whether it
 * is built in; NULL when there is none.  Allocated in the caller's
 * context.
 */
Jsonb *
store_workflow_get(const char *name, int version, int *version_out,
				   bool *built_in)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		vals[2];
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		d;

	vals[0] = CStringGetTextDatum(name);
	vals[1] = Int32GetDatum(version);
	if (version == 0)
		store_run(&store_workflow_plans[0],
				  "SELECT version, definition, built_in FROM lifecycle.workflows "
				  "WHERE name OPERATOR(pg_catalog.=) $1 ORDER BY version DESC LIMIT 1",
				  1, types, vals, NULL, true, 1, SPI_OK_SELECT);
	else
		store_run(&store_workflow_plans[1],
				  "SELECT version, definition, built_in FROM lifecycle.workflows "
				  "WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
				  2, types, vals, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (version_out)
		*version_out = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	if (built_in)
		*built_in = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	return (Jsonb *) SPI_datumTransfer(d, false, -1);
}

/*
 * Insert the next version of a workflow; returns it.  Concurrent
 * definitions of one name meet at the primary key.
 */
int
store_workflow_insert(const char *name, Jsonb *def, TimestampTz now,
					  bool built_in)
{
	Oid			types[4] = {TEXTOID, JSONBOID, TIMESTAMPTZOID, BOOLOID};
	Datum		vals[4];
	bool		isnull;

	vals[0] = CStringGetTextDatum(name);
	vals[1] = JsonbPGetDatum(def);
	vals[2] = TimestampTzGetDatum(now);
	vals[3] = BoolGetDatum(built_in);
	store_run(&store_workflow_plans[2],
			  "INSERT INTO lifecycle.workflows (name, version, definition, created_at, built_in) "
			  "SELECT $1, COALESCE(pg_catalog.max(version), 0) OPERATOR(pg_catalog.+) 1, $2, $3, $4 "
			  "FROM lifecycle.workflows WHERE name OPERATOR(pg_catalog.=) $1 RETURNING version",
			  4, types, vals, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Does some version of some workflow declare the message (a key of its
 * "messages")?  A channel's templates may name only such messages.
 */
bool
store_workflow_message_declared(const char *message)
{
	Oid			types[1] = {TEXTOID};
	Datum		vals[1];

	vals[0] = CStringGetTextDatum(message);
	store_run(&store_workflow_plans[3],
			  "SELECT 1 FROM lifecycle.workflows "
			  "WHERE (definition OPERATOR(pg_catalog.->) 'messages') OPERATOR(pg_catalog.?) $1 "
			  "LIMIT 1",
			  1, types, vals, NULL, true, 1, SPI_OK_SELECT);
	return SPI_processed > 0;
}
