/* placeholder: the sender worker is issue 5 */
#include "postgres.h"
#include "sender.h"

void
sender_register(void)
{
}
