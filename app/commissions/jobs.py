"""Commission jobs."""
from __future__ import annotations

import logging

from app.commissions.service import mature_all_due
from app.outbox import job
from app.runtime import Runtime

log = logging.getLogger(__name__)


@job("commissions.mature_due")
def mature_due_commissions(rt: Runtime, batch_size: int | None = None) -> int:
    """Periodic (every 10 minutes): move every due commission to available, one committed batch at a time.

    Safe to run twice at once: batches lock their rows with SKIP LOCKED, and each commission matures once."""
    n = mature_all_due(rt.sessions, **({"batch_size": batch_size} if batch_size else {}))
    log.info("matured %d commissions", n)
    return n
