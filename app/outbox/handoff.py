"""Handing outbox rows to RQ. Rows of one queue go together in batch jobs of up to `batch` rows
(`workers.outbox.run_messages`, named by string: RQ resolves it in the worker, so nothing here imports
`workers/`). A failure here loses nothing: the sweeper hands the rows out again."""
from __future__ import annotations

import logging

import redis
from rq import Queue

log = logging.getLogger(__name__)
RUN_MESSAGES = "workers.outbox.run_messages"


def job_id(row_id: int, attempt: int) -> str:
    """The RQ job id of a batch led by this row's attempt."""
    return f"outbox-{row_id}-{attempt}"


def alias_key(row_id: int, attempt: int) -> str:
    """Redis key naming the RQ job that carries this row's attempt when another row leads its batch."""
    return f"outbox:batch:{row_id}-{attempt}"


class Handoff:
    def __init__(self, connection: redis.Redis, *, inline: bool, batch: int):
        self.connection, self.inline, self.batch = connection, inline, max(1, batch)

    def queue(self, name: str) -> Queue:
        # Embedded mode: jobs run inline, in this process, right when handed over (after the commit).
        return Queue(name, connection=self.connection, is_async=not self.inline)

    def __call__(self, rows: list[tuple[int, str]]) -> None:
        self.hand([(row_id, queue, 1) for row_id, queue in rows])

    def hand(self, items: list[tuple[int, str, int]]) -> None:
        """Hand (row_id, queue, attempt) rows to RQ, per queue, in batches."""
        by_queue: dict[str, list[tuple[int, int]]] = {}
        for row_id, queue, attempt in items:
            by_queue.setdefault(queue, []).append((row_id, attempt))
        for queue, rows in by_queue.items():
            for i in range(0, len(rows), self.batch):
                self.hand_batch(queue, rows[i:i + self.batch])

    def hand_batch(self, queue: str, chunk: list[tuple[int, int]]) -> None:
        """One RQ job for these rows, named after its first row's attempt; each other row's attempt first names
        the job in Redis, so the sweeper judges every row by that job's fate (gone, failed, started too long ago).
        A single row (the common commit) costs one enqueue and nothing more."""
        row_ids, attempts = [r for r, _ in chunk], [a for _, a in chunk]
        batch_job = job_id(row_ids[0], attempts[0])
        try:
            if not self.inline and len(chunk) > 1:
                pipe = self.connection.pipeline(transaction=False)
                for row_id, attempt in chunk[1:]:
                    pipe.set(alias_key(row_id, attempt), batch_job, ex=86400)
                pipe.execute()
            self.queue(queue).enqueue(RUN_MESSAGES, queue, row_ids, attempts, job_id=batch_job,
                                      result_ttl=0, failure_ttl=86400, job_timeout=600)
        except Exception:
            log.exception("could not enqueue outbox rows %s; the sweeper will", row_ids)
