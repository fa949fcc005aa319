/*-------------------------------------------------------------------------
 *
 * store_workflow.h
 *	  The SQL of lifecycle.workflows: workflow definitions by version.
 *
 * IDENTIFICATION
 *	  src/store/store_workflow.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_STORE_WORKFLOW_H
#define LIFECYCLE_STORE_WORKFLOW_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

extern Jsonb *store_workflow_get(const char *name, int version,
								 int *version_out, bool *built_in);
extern int	store_workflow_insert(const char *name, Jsonb *def,
								  TimestampTz now, bool built_in);
extern bool store_workflow_message_declared(const char *message);

#endif							/* LIFECYCLE_STORE_WORKFLOW_H */
