"""Drain the scan-event stream (REFERRAL_TOUCH_MODE=stream). Run one or more: `python -m workers.touch_consumer`."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket

from app.referrals import inbox
from app.runtime import get_runtime

log = logging.getLogger("touch_consumer")


def main() -> None:
    rt = get_runtime()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=rt.settings.touch.batch,
                        help="touches processed per transaction at most (most of them bind nobody)")
    parser.add_argument("--linger-ms", type=int, default=rt.settings.touch.linger_ms,
                        help="when fewer than --batch touches are waiting, gather more for this long before processing "
                             "(bigger batches cost far less per touch; binds lag by at most this much)")
    parser.add_argument("--until-empty", action="store_true", help="exit once the stream has no backlog")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    name = f"{socket.gethostname()}-{os.getpid()}"
    stop = False

    def _stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        handled = inbox.drain_once(rt, name, count=args.batch, linger_ms=args.linger_ms)
        if args.until_empty and handled == 0 and inbox.backlog(rt.redis) == 0:
            break


if __name__ == "__main__":
    main()
