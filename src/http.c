/* placeholder: libcurl deliveries are issue 5 */
#include "postgres.h"
