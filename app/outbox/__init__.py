"""The transactional outbox: work that must happen because a transaction committed, and only then.

    emit(session, "withdrawals.drive_payout", withdrawal.id, queue="payouts", key=f"payout:{withdrawal.id}")

`emit` writes a row in the caller's transaction, naming a registered job (`jobs.job`), so the job exists if and
only if the state change committed. After the outermost commit the row is handed to RQ (`after_commit`, the one
after-commit mechanism in the codebase); the runner in `workers/outbox.py` runs it and marks it done, and its
sweeper hands out again whatever RQ lost. Jobs must therefore be idempotent and safe to run twice at once."""
from app.outbox.emit import RetryLater, emit, emit_many, outbox_stats
from app.outbox.jobs import Job, job, resolve_job

__all__ = ["Job", "RetryLater", "emit", "emit_many", "job", "outbox_stats", "resolve_job"]
