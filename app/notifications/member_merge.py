"""When two members turn out to be one person, the merged account's notification rows follow the survivor: its
subscription grants (open ones are still WeChat's one-time grants of the same person), its mutes (the two sets
merged), and its messages with their attempts (the operator's history of the member).

A message both accounts had for one (moment, event) keeps the survivor's row: the other's attempts move onto
it, a grant that carried the other's send points at it, and when only the other was sent (the person has the
message already) the survivor's row takes that send, so its pending job sends nothing. The other row is then
deleted; an attempt `merged` on the kept row says so."""
from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, aliased

from app.members.merge import register_merge_hook
from app.notifications.models import NotificationAttempt, NotificationMessage, NotificationMute, SubscriptionGrant

# What the person received, copied from a twin that was sent onto the kept row that was not.
_SENT_FIELDS = ("status", "reason", "channel", "template_id", "msgid", "errcode", "errmsg", "delivery", "sent_at")


@register_merge_hook
def move_notifications(session: Session, kept_id: int, merged_id: int) -> None:
    session.flush()
    session.execute(update(SubscriptionGrant).where(SubscriptionGrant.member_id == merged_id)
                    .values(member_id=kept_id))
    _move_mutes(session, kept_id, merged_id)
    _fold_twins(session, kept_id, merged_id)
    session.execute(update(NotificationMessage).where(NotificationMessage.member_id == merged_id)
                    .values(member_id=kept_id))


def _move_mutes(session: Session, kept_id: int, merged_id: int) -> None:
    """A moment muted on either account stays muted (one row per moment)."""
    kept_moments = select(NotificationMute.moment).where(NotificationMute.member_id == kept_id).scalar_subquery()
    session.execute(delete(NotificationMute).where(NotificationMute.member_id == merged_id,
                                                   NotificationMute.moment.in_(kept_moments)))
    session.execute(update(NotificationMute).where(NotificationMute.member_id == merged_id)
                    .values(member_id=kept_id))


def _fold_twins(session: Session, kept_id: int, merged_id: int) -> None:
    """The merged account's messages whose (moment, event) the survivor has too: folded into the survivor's."""
    kept, other = aliased(NotificationMessage), aliased(NotificationMessage)
    pairs = session.execute(
        select(kept.id, other.id).join(other, (other.moment == kept.moment) & (other.event_id == kept.event_id))
        .where(kept.member_id == kept_id, other.member_id == merged_id).order_by(kept.id)).all()
    if not pairs:
        return
    ids = [i for pair in pairs for i in pair]
    # Locked (a send job holding one finishes first), so what is read below is what was sent.
    rows = {m.id: m for m in session.scalars(select(NotificationMessage).where(NotificationMessage.id.in_(ids))
                                             .order_by(NotificationMessage.id).with_for_update()
                                             .execution_options(populate_existing=True))}
    for kept_msg_id, twin_id in pairs:
        keep, twin = rows[kept_msg_id], rows[twin_id]
        if twin.status == "sent" and keep.status != "sent":
            for f in _SENT_FIELDS:
                setattr(keep, f, getattr(twin, f))
        session.execute(update(NotificationAttempt).where(NotificationAttempt.message_id == twin.id)
                        .values(message_id=keep.id))
        session.execute(update(SubscriptionGrant).where(SubscriptionGrant.message_id == twin.id)
                        .values(message_id=keep.id))
        session.add(NotificationAttempt(message_id=keep.id, channel=twin.channel, outcome="merged",
                                        errmsg=f"message {twin.id} of member {merged_id} ({twin.status}) "
                                               f"merged into this one"))
        session.flush()
        session.execute(delete(NotificationMessage).where(NotificationMessage.id == twin.id))
