/*-------------------------------------------------------------------------
 *
 * exporter.h
 *	  The OpenTelemetry exporter background worker.
 *
 * IDENTIFICATION
 *	  src/workers/exporter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_EXPORTER_H
#define LIFECYCLE_EXPORTER_H

#include "fmgr.h"

extern void exporter_register(void);
extern PGDLLEXPORT void lifecycle_exporter_main(Datum arg);

#endif							/* LIFECYCLE_EXPORTER_H */
