"""The plugin's own signals."""
from django.dispatch import Signal

#: Sent when what was recorded about a shopper has been erased from the database (after the commit),
#: with `user_id`, `session_key` and `version` (their version token before, or None): whatever keeps
#: copies elsewhere (the cache) drops them.
shopper_forgotten = Signal()
