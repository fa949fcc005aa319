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

extern void sender_register(void);

#endif							/* LIFECYCLE_SENDER_H */
