"""Jobs enqueued after commit run only once the outermost transaction commits."""
from rq import Queue

from app.referrals import partners
from tests.factories import make_member
from workers.queues import enqueue_after_commit


def test_a_released_savepoint_is_not_the_commit(rt, session):
    queue = Queue("default", connection=rt.redis)
    member = make_member(session)
    enqueue_after_commit(session, "workers.jobs_referrals.renew_temporary_qr_codes", queue="default")
    with session.begin_nested():
        partners.make_partner(session, member.id, "designated")
    assert queue.count == 0
    session.commit()
    assert queue.count == 1
    assert Queue("posters", connection=rt.redis).count == 1  # the partner's pre-render, also after commit


def test_a_rolled_back_transaction_enqueues_nothing_and_forgets_its_jobs(rt, session):
    queue = Queue("default", connection=rt.redis)
    make_member(session)
    enqueue_after_commit(session, "workers.jobs_referrals.renew_temporary_qr_codes", queue="default")
    session.rollback()
    make_member(session)
    session.commit()
    assert queue.count == 0
