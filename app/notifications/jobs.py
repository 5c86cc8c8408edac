"""`notifications.send`: one message, on the first channel that can carry it, paced below WeChat's limits. The
subscribers call `send` themselves for a message due now; the job sends the ones planned for later.

The message row is locked for the whole attempt, so two runs of one message (the outbox runs jobs at least once;
a replayed event's subscriber and a job) never both send. Transient errors (WeChat unreachable, busy, over its
quota) put the grant back and retry with backoff (RetryLater); permanent answers (43101, 47003, 40037, 43004, ...)
are recorded with WeChat's code and the next channel is tried; when none is left the message is failed (or
skipped when no channel applied)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.db import utcnow
from app.notifications import service
from app.notifications.moments import WHILE_AWAITING_CONFIRMATION, digest_values, page_for
from app.members.models import Identity
from app.notifications.models import NotificationAttempt, NotificationMessage, NotificationMoment
from app.outbox import RetryLater, job
from app.withdrawals.models import Withdrawal
from app.withdrawals.ratelimit import RateLimiter
from app.withdrawals.states import WAIT_USER_CONFIRM
from wechat.clients import mini_program, official_account
from wechat.errors import WeChatError

RATE_KEY = "notify:rate"


def _limiter(rt) -> RateLimiter:
    s = rt.settings.notify
    return RateLimiter(rt.redis, RATE_KEY, s.rate_per_s, s.rate_burst)


def _backoff(rt, session, message_id: int) -> float:
    retries = session.scalar(select(func.count()).select_from(NotificationAttempt).where(
        NotificationAttempt.message_id == message_id, NotificationAttempt.outcome == "retry")) or 0
    s = rt.settings.notify
    return min(s.retry_base * (2 ** retries), s.retry_max)


def _send(rt, openid: str, channel: str, template_id: str, data: dict, page: str) -> int:
    settings = rt.settings
    if channel == "subscribe":
        mp = mini_program(settings, rt.redis)
        return mp.send_subscribe_message(openid, template_id, data, page=page or None)["msgid"]
    link = {"appid": settings.wechat_miniapp_id, "pagepath": page} if page else None
    return official_account(settings, rt.redis).send_template(openid, template_id, data, miniprogram=link)["msgid"]


def _locked(s, message_id: int):
    """The message, locked for the whole attempt, with what deciding needs read in the same statement: the
    moment's saved settings (None: the defaults), whether its member mutes it, and their mini-program openid."""
    m = NotificationMessage
    mini_openid = (select(Identity.value).where(Identity.member_id == m.member_id, Identity.kind == "mini_openid")
                   .order_by(Identity.id.desc()).limit(1).scalar_subquery())
    return s.execute(select(m, NotificationMoment, service.is_muted(m.member_id, m.moment), mini_openid)
                     .select_from(m).outerjoin(NotificationMoment, NotificationMoment.moment == m.moment)
                     .where(m.id == message_id).with_for_update(of=m)).first()


def _still_awaiting(session, msg: NotificationMessage) -> bool:
    state = session.scalar(select(Withdrawal.state).where(Withdrawal.id == int(msg.values.get("withdrawal_id", 0))))
    return state == WAIT_USER_CONFIRM


def _digest_group(session, msg: NotificationMessage, cfg, now) -> list[NotificationMessage]:
    """The message and, for a moment merged into digests, every other pending one of its member whose window is
    due (locked; rows another run holds are skipped, it sends them). Oldest first."""
    if not cfg.digest_seconds:
        return [msg]
    others = list(session.scalars(select(NotificationMessage).where(
        NotificationMessage.moment == msg.moment, NotificationMessage.member_id == msg.member_id,
        NotificationMessage.status == "pending", NotificationMessage.id != msg.id,
        NotificationMessage.not_before <= now).order_by(NotificationMessage.id).with_for_update(skip_locked=True)))
    return sorted([msg, *others], key=lambda m: m.id)


def _follower(rt, session, member_id: int) -> str | None:
    """The member's service-account openid if they follow the account now (WeChat's cgi-bin/user/info says:
    subscribe 0 or 1), else None."""
    openid = service.may_follow(session, member_id)
    if openid is None:
        return None
    try:
        return openid if official_account(rt.settings, rt.redis).user_info(openid)["subscribe"] == 1 else None
    except WeChatError as exc:
        if exc.errcode in service.PERMANENT:
            return None
        raise RetryLater(_backoff(rt, session, 0) or 1.0, f"user/info: {exc.errcode}") from exc


@job(service.SEND_JOB, queue="notifications")
def send(rt, message_id: int) -> str:
    with rt.session() as s:
        row = _locked(s, int(message_id))
        if row is None or row[0].status != "pending":
            return "nothing to send"
        msg, muted, mini_openid = row[0], row[2], row[3]
        now = utcnow()
        if msg.not_before > now:
            raise RetryLater((msg.not_before - now).total_seconds(), "quiet hours")
        cfg = service.config_of(msg.moment, row[1])
        if msg.moment in WHILE_AWAITING_CONFIRMATION and not _still_awaiting(s, msg):
            service._skip(s, msg.id, "not_awaiting")
            s.commit()
            return "skipped: the withdrawal no longer awaits confirmation"
        if not cfg.enabled or muted:
            service._skip(s, msg.id, "disabled" if not cfg.enabled else "muted")
            s.commit()
            return "skipped"
        wait = _limiter(rt).try_acquire()
        if wait > 0:
            raise RetryLater(wait, "notification rate limit")
        group = _digest_group(s, msg, cfg, now)
        values = digest_values(msg.moment, [m.values for m in group]) if len(group) > 1 else msg.values
        last_error: tuple[int, str] | None = None
        for channel in cfg.channels:
            grant_id = None
            if channel == "subscribe":
                template_id, openid = cfg.subscribe_template_id, mini_openid
                if not template_id or openid is None:
                    continue
                grant_id = service.consume_grant(s, msg.member_id, template_id, msg.id)
                if grant_id is None:
                    continue  # no grant left: the next channel
            else:
                template_id, openid = cfg.template_template_id, _follower(rt, s, msg.member_id)
                if not template_id or openid is None:
                    continue
            data = service.data_for(cfg, channel, values)
            try:
                msgid = _send(rt, openid, channel, template_id, data, page_for(cfg.page, values))
            except WeChatError as exc:
                if exc.errcode not in service.PERMANENT:
                    s.rollback()  # the grant goes back; the attempt is recorded on its own
                    delay = _backoff(rt, s, int(message_id))
                    service.record_attempt(s, int(message_id), channel, "retry", exc.errcode, exc.errmsg)
                    s.commit()
                    raise RetryLater(delay, f"WeChat {exc.errcode}: {exc.errmsg}") from exc
                if grant_id is not None and exc.errcode != 43101:
                    service.release_grant(s, grant_id)  # WeChat refused the request, not the grant
                service.record_attempt(s, msg.id, channel, "failed", exc.errcode, exc.errmsg)
                last_error = (exc.errcode, exc.errmsg)
                continue
            for m in group:
                m.status, m.channel, m.template_id, m.msgid, m.sent_at = "sent", channel, template_id, msgid, utcnow()
                if m is not msg:
                    m.reason = f"digest:{msg.id}"
                    service.record_attempt(s, m.id, channel, "sent", errmsg=f"in the digest of message {msg.id}")
            if len(group) > 1:
                msg.reason = f"digest:{len(group)}"
            service.record_attempt(s, msg.id, channel, "sent")
            s.commit()
            return f"sent by {channel}" + (f" (digest of {len(group)})" if len(group) > 1 else "")
        if last_error is not None:
            for m in group:
                m.status, m.errcode, m.errmsg = "failed", last_error[0], last_error[1][:200]
            s.commit()
            return f"failed: {last_error[0]}"
        for m in group:
            service._skip(s, m.id, "no_channel")
        s.commit()
        return "skipped: no channel"
