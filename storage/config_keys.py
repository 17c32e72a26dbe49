"""Keys of the `config` table (one row per database-wide setting), named once for every module reading them.

Kept apart so that the modules sharing a key (the quotas and the ledger check; the zone pin) need not
import each other.
"""

from typing import Final

#: The default daily allowance an admin set for everyone (absent: the configured DAILY_FREE_QUOTA).
DEFAULT_ALLOWANCE_KEY: Final = "daily_free_quota"
#: The quota time zone pinned at the first start (storage/zone.py).
ZONE_KEY: Final = "quota_timezone"
