"""Domain events: a domain records what happened; subscribers in other packages react, later, in workers.

    record(session, "order.paid", order_id=o.id, buyer_id=o.buyer_id, earner_ids=[...])

    @subscriber("order.paid", name="grades.evaluate_after_order")
    def evaluate(rt, event): ...

`record` writes the event row and, for every subscriber of its name, one outbox row (`events.deliver`) in the
caller's transaction. So an event recorded inside a savepoint that rolls back vanishes with it, one inside a
released savepoint waits for the outermost commit, and each subscriber is run at least once after that commit
by a worker (re-driven by the outbox sweeper when RQ loses it, retried with backoff when it raises).
Subscribers are idempotent: `first_receipt` gives exactly-once database effects; effects elsewhere (Redis,
WeChat) carry their own dedupe key derived from the event id."""
from app.events.registry import Event, Subscriber, subscriber, subscribers_of
from app.events.service import deliver_recorded, first_receipt, load_event, record, record_many

__all__ = ["Event", "Subscriber", "deliver_recorded", "first_receipt", "load_event", "record", "record_many",
           "subscriber", "subscribers_of"]
