/* placeholder: outbox SQL is issue 5 */
#include "postgres.h"
