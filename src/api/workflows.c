/*-------------------------------------------------------------------------
 *
 * workflows.c
 *	  The SQL functions of workflow definitions (docs/WORKFLOWS.md):
 *	  lifecycle_define_workflow(), lifecycle_workflow(), the install
 *	  script's loader of the built-in definitions, and the test-only
 *	  lifecycle._workflow_bounds().
 *
 * IDENTIFICATION
 *	  src/api/workflows.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "acting.h"
#include "api.h"
#include "args.h"
#include "cache.h"
#include "clock.h"
#include "graph.h"
#include "store_workflow.h"

PG_FUNCTION_INFO_V1(lifecycle_define_workflow);
PG_FUNCTION_INFO_V1(lifecycle_install_workflow);
PG_FUNCTION_INFO_V1(lifecycle_workflow);
PG_FUNCTION_INFO_V1(lifecycle_workflow_bounds);

static char *workflows_name_arg(FunctionCallInfo fcinfo);
static Jsonb *workflows_definition_arg(FunctionCallInfo fcinfo, int argno);

/*
 * The workflow's name: [a-z][a-z0-9_]*, at most 63 bytes (it names a
 * policy too).
 */
static char *
workflows_name_arg(FunctionCallInfo fcinfo)
{
	char	   *name = args_text_arg(fcinfo, 0, "name", NAMEDATALEN - 1);
	bool		ok = name[0] >= 'a' && name[0] <= 'z';

	for (const char *c = name; ok && *c; c++)
		ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid workflow name \"%s\"", name),
				 errhint("A workflow name matches [a-z][a-z0-9_]* and has at most 63 bytes.")));
	return name;
}

static Jsonb *
workflows_definition_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("definition must not be null")));
	return PG_GETARG_JSONB_P(argno);
}

/*
 * Compile a definition (22023 on any refusal) in a context of its own and
 * return the definition as it is stored: defaults filled in.
 */
static Jsonb *
workflows_compile(const char *name, int version, Jsonb *def)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "lifecycle workflow check",
											  ALLOCSET_SMALL_SIZES);
	LcGraph    *g = workflow_compile(name, version, def, cxt);
	Jsonb	   *stored;

	stored = palloc(VARSIZE(g->definition));
	memcpy(stored, g->definition, VARSIZE(g->definition));
	MemoryContextDelete(cxt);
	return stored;
}

/*
 * lifecycle_define_workflow(name, definition) -> the new version
 *
 * The definition is validated and proved (workflow.c) and stored with its
 * defaults filled in.  Built-in workflows cannot be redefined (55000):
 * their policies can.
 */
Datum
lifecycle_define_workflow(PG_FUNCTION_ARGS)
{
	char	   *name = workflows_name_arg(fcinfo);
	Jsonb	   *def = workflows_definition_arg(fcinfo, 1);
	Jsonb	   *stored;
	bool		built_in = false;
	int			latest = 0;
	int			version;

	SPI_connect();

	/*
	 * Workflows are shared by every tenant: a role limited to some tenants
	 * may not change them (42501).
	 */
	acting_require_unlimited("define workflows");
	if (store_workflow_get(name, 0, &latest, &built_in) != NULL && built_in)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("workflow \"%s\" is built in", name),
				 errdetail("A built-in workflow cannot be redefined; its policies can."),
				 errhint("Define a workflow under another name.")));
	stored = workflows_compile(name, latest + 1, def);
	version = store_workflow_insert(name, stored, clock_now(), false);
	/* The new version may roll back: no cache may outlive it. */
	cache_policy_forget();
	admin_workflow_policies(name, version);
	SPI_finish();
	PG_RETURN_INT32(version);
}

/*
 * lifecycle._install_workflow(name, definition) -> version
 *
 * The install (and upgrade) script's loader of a built-in definition
 * (sql/workflows/NAME.json): version 1, built in.  Granted to nobody.
 */
Datum
lifecycle_install_workflow(PG_FUNCTION_ARGS)
{
	char	   *name = workflows_name_arg(fcinfo);
	Jsonb	   *def = workflows_definition_arg(fcinfo, 1);
	Jsonb	   *stored;
	int			version;

	SPI_connect();
	if (store_workflow_get(name, 0, NULL, NULL) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("workflow \"%s\" already exists", name)));
	stored = workflows_compile(name, 1, def);
	version = store_workflow_insert(name, stored, clock_now(), true);
	SPI_finish();
	PG_RETURN_INT32(version);
}

/*
 * lifecycle_workflow(name, version = NULL) -> the definition as stored
 */
Datum
lifecycle_workflow(PG_FUNCTION_ARGS)
{
	char	   *name = args_text_arg(fcinfo, 0, "name", NAMEDATALEN - 1);
	int			version = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	Jsonb	   *def;

	if (!PG_ARGISNULL(1) && version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be positive")));
	SPI_connect();
	def = store_workflow_get(name, version, NULL, NULL);
	SPI_finish();
	if (def == NULL && version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" does not exist", name),
				 errhint("Define it with lifecycle_define_workflow().")));
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("workflow \"%s\" has no version %d", name, version)));
	PG_RETURN_JSONB_P(def);
}

/*
 * lifecycle._workflow_bounds(definition, params = NULL)
 *	 -> table(state text, bound interval, path text[])
 *
 * For tests (granted to lifecycle_admin): compile a definition and show
 * each state's retention bound at the definition's defaults overridden by
 * params (a policy's keys).
 */
Datum
lifecycle_workflow_bounds(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *def = workflows_definition_arg(fcinfo, 0);
	Jsonb	   *params = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	MemoryContext cxt;
	LcGraph    *g;
	LcParamValues pv;
	LcBound    *bounds;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "lifecycle workflow bounds",
								ALLOCSET_SMALL_SIZES);
	g = workflow_compile("(test)", 1, def, cxt);
	workflow_param_values(g, params, true, &pv);
	n = workflow_bounds(g, &pv, &bounds);
	for (int i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};
		Datum	   *path = palloc(sizeof(Datum) * bounds[i].n_path);

		for (int j = 0; j < bounds[i].n_path; j++)
			path[j] = CStringGetTextDatum(bounds[i].path[j]);
		values[0] = CStringGetTextDatum(g->states[bounds[i].state].name);
		values[1] = IntervalPGetDatum(&bounds[i].bound);
		values[2] = PointerGetDatum(construct_array(path, bounds[i].n_path,
													TEXTOID, -1, false,
													TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
