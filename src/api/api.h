/*-------------------------------------------------------------------------
 *
 * api.h
 *	  The event flow shared by the application and admin APIs (api_app.c).
 *
 * IDENTIFICATION
 *	  src/api/api.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_API_H
#define LIFECYCLE_API_H

#include "fmgr.h"

#include "machine.h"
#include "store.h"
#include "store_migrate.h"

extern void api_find(const char *tenant, const char *subject, bool for_update,
					 LcUserRow *row);
extern void api_not_found(const char *tenant) pg_attribute_noreturn();
extern void api_user_policy(const LcPolicy *policy);
extern void api_refuse(const LcUserRow *row, LcEvent event,
					   const LcOutcome *o);
extern Datum api_state_datum(FunctionCallInfo fcinfo, const LcGraph *g,
							 LcState state);
extern LcState api_event(FunctionCallInfo fcinfo, const char *event,
						 const char *reason, int64 *evidence,
						 const LcGraph **graph);
extern LcState api_instance_event(const char *tenant, const char *subject,
								  const char *workflow, const char *key,
								  const char *event, const char *reason,
								  bool signal, int64 *evidence,
								  const LcGraph **graph);
extern void api_instance_not_found(const char *tenant, const char *workflow)
			pg_attribute_noreturn();
extern Datum api_simple_event(FunctionCallInfo fcinfo, const char *event);
extern void api_hold_new_instance(const char *tenant, const char *subject,
								  int64 id, const char *actor);
extern int	admin_define_policy(const char *name, Jsonb *def, List *schemas);
extern void admin_workflow_policies(const char *workflow, int version);

/* migrate.c: moving instances to another version of their workflow */
extern int	migrate_target_state(const LcGraph *g, const char *name);
extern void migrate_check_map(const LcGraph *g, Jsonb *map);
extern const char *migrate_map_get(Jsonb *map, const char *state);
extern Jsonb *migrate_resolve(const LcGraph *g, Jsonb *map,
							  const LcWorkflowGroup *groups, int n,
							  const char *what);
extern LcPolicy *migrate_policy_for(const LcGraph *g, const char *name,
									Jsonb **normalized);

#endif							/* LIFECYCLE_API_H */
