"""The subscription ledger, planning one message per (moment, member, event), choosing its channel, recording
attempts and delivery reports. Sessions are the caller's; nothing here commits except `send_message`, the job's
own unit of work (see jobs.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound, ValidationFailed
from app.members.models import Identity, Member
from app.notifications.formatting import build_data
from app.notifications.models import (NotificationAttempt, NotificationMessage, NotificationMoment, NotificationMute,
                                      SubscriptionGrant)
from app.notifications.moments import CHANNELS, MOMENTS, quiet_until
from app.outbox import emit
from app.referrals.models import Touch

SEND_JOB = "notifications.send"
# WeChat's answers that will not change by trying again: recorded with the code, never retried.
PERMANENT = frozenset({40003, 40036, 40037, 41028, 41029, 41030, 43004, 43101, 43104, 43107, 47001, 47003, 40165,
                       40166, 40013})


# --- the subscription ledger ---

def record_subscription_results(session: Session, member_id: int, results: dict) -> dict:
    """The mini-program's report of one wx.requestSubscribeMessage: {template_id: "accept" | "reject" | "ban" |
    "filter"}. Each accept is one grant; a ban voids the grants left for that template; "filter" (not our
    template) is ignored. Returns the grants left per template reported."""
    now = utcnow()
    for template_id, result in results.items():
        if result == "filter":
            continue
        if result not in ("accept", "reject", "ban"):
            raise ValidationFailed(f"unknown subscription result {result!r}", code="subscription_result_invalid")
        if result == "ban":
            session.execute(update(SubscriptionGrant).where(
                SubscriptionGrant.member_id == member_id, SubscriptionGrant.template_id == template_id,
                SubscriptionGrant.result == "accept", SubscriptionGrant.consumed_at.is_(None)).values(consumed_at=now))
        session.add(SubscriptionGrant(member_id=member_id, template_id=template_id, result=result, created_at=now))
    session.flush()
    left = grants_left(session, member_id)
    return {t: left.get(t, 0) for t in results}


def grants_left(session: Session, member_id: int) -> dict[str, int]:
    rows = session.execute(select(SubscriptionGrant.template_id, func.count()).where(
        SubscriptionGrant.member_id == member_id, SubscriptionGrant.result == "accept",
        SubscriptionGrant.consumed_at.is_(None)).group_by(SubscriptionGrant.template_id))
    return {t: int(n) for t, n in rows}


def consume_grant(session: Session, member_id: int, template_id: str, message_id: int) -> int | None:
    """Take one open grant for this template (a conditional UPDATE; on PostgreSQL the candidate row is locked
    and rows other senders hold are skipped, so two sends never take one grant). The grant id, or None."""
    lock = " FOR UPDATE SKIP LOCKED" if session.get_bind().dialect.name == "postgresql" else ""
    return session.execute(text(
        "UPDATE subscription_grants SET consumed_at = :now, message_id = :mid WHERE consumed_at IS NULL AND id = ("
        "SELECT id FROM subscription_grants WHERE member_id = :member AND template_id = :tpl AND result = 'accept'"
        f" AND consumed_at IS NULL ORDER BY id LIMIT 1{lock}) RETURNING id"),
        {"now": utcnow(), "mid": message_id, "member": member_id, "tpl": template_id}).scalar()


def release_grant(session: Session, grant_id: int) -> None:
    """A send that did not reach WeChat's decision (transient error, invalid data): the grant is still there."""
    session.execute(update(SubscriptionGrant).where(SubscriptionGrant.id == grant_id)
                    .values(consumed_at=None, message_id=None))


# --- the operator's settings ---

@dataclass(frozen=True)
class MomentConfig:
    moment: str
    enabled: bool
    channels: list
    subscribe_template_id: str
    subscribe_fields: dict
    template_template_id: str
    template_fields: dict
    page: str
    digest_seconds: int = 0

    def as_dict(self) -> dict:
        m = MOMENTS[self.moment]
        return {"moment": self.moment, "event": m.event, "urgent": m.urgent, "values": list(m.values),
                "enabled": self.enabled, "channels": list(self.channels), "page": self.page,
                "digest": m.digest, "digest_seconds": self.digest_seconds,
                "subscribe": {"template_id": self.subscribe_template_id, "fields": dict(self.subscribe_fields)},
                "template": {"template_id": self.template_template_id, "fields": dict(self.template_fields)}}


def moment_config(session: Session, moment: str) -> MomentConfig:
    return config_of(moment, session.get(NotificationMoment, moment))


def config_of(moment: str, row: NotificationMoment | None) -> MomentConfig:
    """The settings of a moment from its saved row (None: never saved, the defaults)."""
    m = MOMENTS[moment]
    if row is None:
        return MomentConfig(moment, True, list(CHANNELS), "", dict(m.subscribe_fields), "", dict(m.template_fields),
                            m.page)
    return MomentConfig(moment, row.enabled, list(row.channels), row.subscribe_template_id, dict(row.subscribe_fields),
                        row.template_template_id, dict(row.template_fields), row.page, row.digest_seconds or 0)


def all_moment_configs(session: Session) -> list[dict]:
    return [moment_config(session, name).as_dict() for name in MOMENTS]


def save_moment_config(session: Session, moment: str, changes: dict) -> dict:
    """Save what the operator changed for one moment: enabled, channels (order), page, subscribe/template
    {template_id, fields: {wechat_key: value_name}}. Field mappings may only name the moment's values."""
    m = MOMENTS.get(moment)
    if m is None:
        raise NotFound(f"no moment {moment!r}", code="moment_not_found")
    cur = moment_config(session, moment)
    channels = changes.get("channels", cur.channels)
    if len(set(channels)) != len(channels) or any(c not in CHANNELS for c in channels):
        raise ValidationFailed("channels are subscribe and template, each at most once", code="channels_invalid")
    out = {"subscribe": (cur.subscribe_template_id, cur.subscribe_fields),
           "template": (cur.template_template_id, cur.template_fields)}
    for channel in CHANNELS:
        given = changes.get(channel)
        if given is None:
            continue
        fields = given.get("fields", out[channel][1])
        unknown = sorted(v for v in fields.values() if v not in m.values)
        if unknown:
            raise ValidationFailed(f"{moment} has no value {unknown[0]!r}; it has {', '.join(m.values)}",
                                   code="moment_value_unknown")
        out[channel] = (given.get("template_id", out[channel][0]), dict(fields))
    digest = int(changes.get("digest_seconds", cur.digest_seconds))
    if digest < 0 or digest > 86400 or (digest and not m.digest):
        raise ValidationFailed(f"{moment} takes a digest window of 0 to 86400 s" if m.digest else
                               f"{moment} is never merged into digests", code="digest_invalid")
    row = session.get(NotificationMoment, moment) or NotificationMoment(moment=moment)
    row.digest_seconds = digest
    row.enabled = bool(changes.get("enabled", cur.enabled))
    row.channels = list(channels)
    row.page = changes.get("page", cur.page)
    row.subscribe_template_id, row.subscribe_fields = out["subscribe"]
    row.template_template_id, row.template_fields = out["template"]
    session.add(row)
    session.flush()
    return moment_config(session, moment).as_dict()


# --- mutes ---

def set_mutes(session: Session, member_id: int, moments: list[str]) -> list[str]:
    unknown = [m for m in moments if m not in MOMENTS]
    if unknown:
        raise ValidationFailed(f"no moment {unknown[0]!r}", code="moment_unknown")
    session.query(NotificationMute).filter(NotificationMute.member_id == member_id).delete()
    for moment in sorted(set(moments)):
        session.add(NotificationMute(member_id=member_id, moment=moment))
    session.flush()
    return mutes_of(session, member_id)


def mutes_of(session: Session, member_id: int) -> list[str]:
    return sorted(session.scalars(select(NotificationMute.moment).where(NotificationMute.member_id == member_id)))


# --- planning ---

def _insert(session: Session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(NotificationMessage.__table__)


def is_muted(member_id, moment):
    """SQL: does the member mute the moment (either may be a column, for correlated use)?"""
    return exists().where(NotificationMute.member_id == member_id, NotificationMute.moment == moment)


def _recipient(session: Session, moment: str, member_id: int) -> tuple[int, MomentConfig, bool]:
    """For planning, in one statement per member followed: the member an id stands for now (the survivor of a
    merged member), the moment's settings and whether that member mutes it. The member row is read FOR KEY
    SHARE (as the message's foreign key locks it), so a merge of this member in progress is waited for and
    seen."""
    row = None
    for _ in range(8):  # as far as get_member follows merges
        row = session.execute(
            select(Member.status, Member.merged_into_id, is_muted(Member.id, moment), NotificationMoment)
            .select_from(Member).outerjoin(NotificationMoment, NotificationMoment.moment == moment)
            .where(Member.id == member_id)
            .with_for_update(read=True, key_share=True, of=Member)).first()
        if row is None or row.status != "merged" or row.merged_into_id is None:
            break
        member_id = row.merged_into_id
    if row is None:  # no such member: the message's foreign key will say so
        return member_id, moment_config(session, moment), False
    return member_id, config_of(moment, row[3]), bool(row[2])


def plan_message(session: Session, settings, moment: str, event_id: int, member_id: int, values: dict,
                 now: datetime | None = None, at: datetime | None = None,
                 send_now: list[int] | None = None) -> int | None:
    """The one message of (moment, member, event): written once (a replay finds it and does nothing), then
    skipped (moment off, muted) or queued for `notifications.send`, after quiet hours for non-urgent moments.
    An event naming a merged member plans for the survivor (where the merge moved its messages, so a replay
    after the merge finds the row). Returns the new message id, or None for a replay.

    With `send_now` (the subscribers' way), a message due now is not queued: its id is appended for the caller
    to send after its commit, in its own job, whose retries (the event's delivery) then carry the send. So a
    replay appends the message it finds still pending and due: the run that planned it did not get to send."""
    now = now or utcnow()
    member_id, cfg, muted = _recipient(session, moment, member_id)
    table = NotificationMessage.__table__
    new_id = session.execute(_insert(session).values(
        moment=moment, member_id=member_id, event_id=event_id, values=values, status="pending", reason="",
        channel="", template_id="", errmsg="", delivery="", not_before=now, created_at=now)
        .on_conflict_do_nothing(index_elements=["moment", "member_id", "event_id"]).returning(table.c.id)).scalar()
    if new_id is None:
        if send_now is not None:
            found = session.execute(select(NotificationMessage.id, NotificationMessage.status,
                                           NotificationMessage.not_before).where(
                NotificationMessage.moment == moment, NotificationMessage.member_id == member_id,
                NotificationMessage.event_id == event_id)).first()
            if found is not None and found.status == "pending" and found.not_before <= now:
                send_now.append(found.id)
        return None
    reason = "disabled" if not cfg.enabled else "muted" if muted else ""
    if reason:
        _skip(session, new_id, reason)
        return new_id
    not_before = max(now, at) if at is not None else now
    if cfg.digest_seconds:
        # A digest window opens with the first message waiting; later ones join it (the first job to run takes
        # every message of the window: jobs.send).
        opened = session.scalar(select(func.min(NotificationMessage.not_before)).where(
            NotificationMessage.moment == moment, NotificationMessage.member_id == member_id,
            NotificationMessage.status == "pending", NotificationMessage.id != new_id))
        not_before = opened if opened is not None and opened > now else \
            now + timedelta(seconds=cfg.digest_seconds)
    if not MOMENTS[moment].urgent:
        ends = quiet_until(not_before, settings.notify.quiet_start, settings.notify.quiet_end)
        if ends is not None:
            not_before = ends
    delay = (not_before - now).total_seconds()
    if delay > 0:
        session.execute(update(NotificationMessage).where(NotificationMessage.id == new_id)
                        .values(not_before=not_before))
    if send_now is not None and delay <= 0:
        send_now.append(new_id)
    else:
        emit(session, SEND_JOB, new_id, key=f"notify:{new_id}", delay=delay)
    return new_id


def _skip(session: Session, message_id: int, reason: str, channel: str = "") -> None:
    session.execute(update(NotificationMessage).where(NotificationMessage.id == message_id)
                    .values(status="skipped", reason=reason))
    session.add(NotificationAttempt(message_id=message_id, channel=channel, outcome="skipped", errmsg=reason))


# --- choosing a channel ---

def openid_of(session: Session, member_id: int, kind: str) -> str | None:
    return session.scalar(select(Identity.value).where(Identity.member_id == member_id, Identity.kind == kind)
                          .order_by(Identity.id.desc()).limit(1))


def may_follow(session: Session, member_id: int) -> str | None:
    """The member's service-account openid unless they surely do not follow (none, or their last
    service-account touch was an unfollow). An openid also comes from H5 sign-in, so the job asks WeChat."""
    openid = openid_of(session, member_id, "oa_openid")
    if openid is None:
        return None
    last = session.scalar(select(Touch.channel).where(Touch.member_id == member_id, Touch.channel.like("oa\\_%"))
                          .order_by(Touch.id.desc()).limit(1))
    return None if last == "oa_unsubscribe" else openid


def record_attempt(session: Session, message_id: int, channel: str, outcome: str, errcode: int | None = None,
                   errmsg: str = "") -> None:
    session.add(NotificationAttempt(message_id=message_id, channel=channel, outcome=outcome, errcode=errcode,
                                    errmsg=errmsg[:200]))


def data_for(cfg: MomentConfig, channel: str, values: dict) -> dict:
    return build_data(cfg.subscribe_fields if channel == "subscribe" else cfg.template_fields, values)


# --- delivery reports ---

def record_template_report(session: Session, openid: str, msgid: int, status: str) -> bool:
    """A TEMPLATESENDJOBFINISH push (verified by the callback): recorded on the template message with this msgid,
    only when it went to the openid the push comes from. True when a message was found."""
    msg = session.execute(
        select(NotificationMessage).join(Identity, (Identity.member_id == NotificationMessage.member_id)
                                         & (Identity.kind == "oa_openid"))
        .where(NotificationMessage.msgid == msgid, NotificationMessage.channel == "template",
               Identity.value == openid)).scalars().first()
    if msg is None:
        return False
    msg.delivery = (status or "")[:64]
    record_attempt(session, msg.id, "template", "delivered" if status == "success" else "undelivered",
                   errmsg=status or "")
    session.flush()
    return True


# --- what operators see ---

def messages_of(session: Session, member_id: int, limit: int = 100) -> list[dict]:
    if session.get(Member, member_id) is None:
        raise NotFound("no such member", code="member_not_found")
    msgs = list(session.scalars(select(NotificationMessage).where(NotificationMessage.member_id == member_id)
                                .order_by(NotificationMessage.id.desc()).limit(limit)))
    attempts: dict[int, list] = {}
    if msgs:
        for a in session.scalars(select(NotificationAttempt).where(
                NotificationAttempt.message_id.in_([m.id for m in msgs])).order_by(NotificationAttempt.id)):
            attempts.setdefault(a.message_id, []).append(
                {"at": a.at.isoformat(), "channel": a.channel, "outcome": a.outcome, "errcode": a.errcode,
                 "errmsg": a.errmsg})
    return [{"id": m.id, "moment": m.moment, "event_id": m.event_id, "status": m.status, "reason": m.reason,
             "channel": m.channel, "template_id": m.template_id, "msgid": str(m.msgid) if m.msgid else None,
             "errcode": m.errcode, "errmsg": m.errmsg, "delivery": m.delivery, "values": m.values,
             "not_before": m.not_before.isoformat(), "created_at": m.created_at.isoformat(),
             "sent_at": m.sent_at.isoformat() if m.sent_at else None, "attempts": attempts.get(m.id, [])}
            for m in msgs]
