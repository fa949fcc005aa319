/*-------------------------------------------------------------------------
 *
 * store_migrate.h
 *	  The SQL of lifecycle_migrate_workflow() and of the forecast of a
 *	  proposed workflow definition.
 *
 * IDENTIFICATION
 *	  src/store/store_migrate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_MIGRATE_H
#define LIFECYCLE_STORE_MIGRATE_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* Running instances of a workflow in one policy and state. */
typedef struct LcWorkflowGroup
{
	char	   *policy;
	char	   *state;
	int64		n;
} LcWorkflowGroup;

extern int	store_migrate_groups(const char *workflow, int below_version,
								 LcWorkflowGroup **groups);
extern int	store_migrate_policy_version(const char *policy,
										 const char *workflow,
										 int workflow_version);
extern int64 store_migrate_instances(const char *workflow, int to_version,
									 const char *policy, int policy_version,
									 Jsonb *state_map, TimestampTz now,
									 const char *actor);

#endif							/* LIFECYCLE_STORE_MIGRATE_H */
