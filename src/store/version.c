/*-------------------------------------------------------------------------
 *
 * version.c
 *	  Does the extension's schema in this database match the library?
 *
 * Upgrading is: install the new package, restart, ALTER EXTENSION
 * lifecycle UPDATE.  Between the restart and the update the new library
 * meets the old schema, whose SQL functions still call it.  Every
 * statement the library runs goes through store_run(), which calls
 * version_require(): while the installed version (pg_extension.extversion)
 * is not the library's, it fails with an error naming the update instead
 * of running a statement written for another schema.  The workers ask
 * version_schema() each pass and idle meanwhile (worker.c).
 *
 * The answer "current" is cached per backend; a change to any function
 * (PROCOID syscache callback: installing, updating or dropping the
 * extension creates, replaces or drops functions) only marks the cache, so
 * the next call reads pg_extension again.  Any other answer is not cached.
 *
 * When preloaded, a utility hook notes CREATE and ALTER EXTENSION
 * lifecycle, so that their commit wakes the idle workers (shmem.c).
 *
 * IDENTIFICATION
 *	  src/version.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "shmem.h"
#include "version.h"

typedef struct VersionState
{
	bool		callback_registered;
	bool		current;		/* extversion matched at the last look */
} VersionState;

static VersionState version_state;

static ProcessUtility_hook_type version_prev_utility_hook = NULL;

static char *version_installed(void);
static void version_syscache_callback(Datum arg, int cacheid, uint32 hashvalue);
static void version_utility_hook(PlannedStmt *pstmt, const char *queryString,
								 bool readOnlyTree, ProcessUtilityContext context,
								 ParamListInfo params, QueryEnvironment *queryEnv,
								 DestReceiver *dest, QueryCompletion *qc);

/*
 * Install the utility hook; only when preloading (the workers exist).
 */
void
version_init(void)
{
	version_prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = version_utility_hook;
}

/*
 * CREATE EXTENSION lifecycle or ALTER EXTENSION lifecycle UPDATE: wake
 * the workers at commit, so they resume at once instead of at their next
 * wake-up.  Everything else passes through untouched.
 */
static void
version_utility_hook(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if ((IsA(stmt, AlterExtensionStmt) &&
		 strcmp(((AlterExtensionStmt *) stmt)->extname, LIFECYCLE_NAME) == 0) ||
		(IsA(stmt, CreateExtensionStmt) &&
		 strcmp(((CreateExtensionStmt *) stmt)->extname, LIFECYCLE_NAME) == 0))
		shmem_note_schema_change();

	if (version_prev_utility_hook)
		version_prev_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * Any function changed: look at pg_extension again next time.
 */
static void
version_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	version_state.current = false;
}

/*
 * The installed version of the extension in this database (palloc'd), or
 * NULL if it is not installed.  Needs a transaction.
 */
static char *
version_installed(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *result = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(LIFECYCLE_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			result = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * Is the extension installed in this database, and at the library's
 * version?  *installed (if not NULL) receives the installed version, or
 * NULL.  Needs a transaction.
 */
LcSchema
version_schema(char **installed)
{
	char	   *v;

	if (!version_state.callback_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, version_syscache_callback, (Datum) 0);
		version_state.callback_registered = true;
	}
	if (version_state.current && installed == NULL)
		return LC_SCHEMA_CURRENT;

	v = version_installed();
	if (installed != NULL)
		*installed = v;
	if (v == NULL)
	{
		version_state.current = false;
		return LC_SCHEMA_MISSING;
	}
	version_state.current = (strcmp(v, LIFECYCLE_VERSION) == 0);
	return version_state.current ? LC_SCHEMA_CURRENT : LC_SCHEMA_OTHER;
}

/*
 * Refuse to run a statement of this library against a schema of another
 * version (55000, naming the update).  The extension's own install or
 * update script runs against the schema it is building: allowed.
 */
void
version_require(void)
{
	char	   *installed;

	if (version_state.current)
		return;
	if (creating_extension &&
		CurrentExtensionObject == get_extension_oid(LIFECYCLE_NAME, true))
		return;
	if (version_schema(&installed) != LC_SCHEMA_OTHER)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"%s\" must be updated: its schema in this database is version %s, the installed library is version %s",
					LIFECYCLE_NAME, installed, LIFECYCLE_VERSION),
			 errdetail("The package was upgraded, but not the extension in this database."),
			 errhint("Run ALTER EXTENSION %s UPDATE.", LIFECYCLE_NAME)));
}
