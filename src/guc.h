/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  Settings of the lifecycle extension (lifecycle.*).
 *
 * IDENTIFICATION
 *	  src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_GUC_H
#define LIFECYCLE_GUC_H

extern char *lc_database;
extern bool lc_enabled;
extern int	lc_batch_size;
extern int	lc_max_sleep;
extern int	lc_http_timeout;
extern int	lc_max_attempts;
extern int	lc_max_concurrent_requests;
extern bool lc_allow_private_targets;
extern bool lc_allow_time_travel;
extern char *lc_role;
extern char *lc_otel_endpoint;
extern char *lc_otel_headers;
extern char *lc_otel_service_name;
extern char *lc_traceparent;

extern void guc_init(void);

#endif							/* LIFECYCLE_GUC_H */
