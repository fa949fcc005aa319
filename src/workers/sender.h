/*-------------------------------------------------------------------------
 *
 * sender.h
 *	  The sender background worker: delivers the outbox.
 *
 * IDENTIFICATION
 *	  src/sender.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_SENDER_H
#define LIFECYCLE_SENDER_H

#include "fmgr.h"

extern void sender_register(void);
extern PGDLLEXPORT void lifecycle_sender_main(Datum arg);

#endif							/* LIFECYCLE_SENDER_H */
