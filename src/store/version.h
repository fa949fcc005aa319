/*-------------------------------------------------------------------------
 *
 * version.h
 *	  Does the extension's schema in this database match the library?
 *
 * IDENTIFICATION
 *	  src/version.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LIFECYCLE_VERSION_H
#define LIFECYCLE_VERSION_H

/* Defined by the Makefile from lifecycle.control (one place). */
#ifndef LIFECYCLE_NAME
#error "LIFECYCLE_NAME must be defined by the build (Makefile)"
#endif
#ifndef LIFECYCLE_VERSION
#error "LIFECYCLE_VERSION must be defined by the build (Makefile)"
#endif

typedef enum LcSchema
{
	LC_SCHEMA_MISSING,			/* the extension is not installed here */
	LC_SCHEMA_CURRENT,			/* installed at the library's version */
	LC_SCHEMA_OTHER				/* installed at another version */
} LcSchema;

extern void version_init(void);
extern LcSchema version_schema(char **installed);
extern void version_require(void);

#endif							/* LIFECYCLE_VERSION_H */
