"""Notifications: the moments that matter reach the member on WeChat, within WeChat's rules.

Subscribers of domain events (`subscribers.py`) plan one message per (moment, member, event) and send it when it
is due now; the named job `notifications.send` (`jobs.py`, queue `notifications`) sends the ones for later. The
send (`jobs.send`) picks the channel (a one-time subscribe grant from the subscription ledger, else a template
message to a follower of the service account, else nothing, recorded as skipped), formats the values to WeChat's
limits (`formatting.py`) and sends, paced below WeChat's limits.
Nothing below this package imports it."""
