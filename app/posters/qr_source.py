"""What a member's poster QR box shows: their exclusive share code, from app.referrals.codes."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.referrals.codes import poster_qr_payload
from posters import QRPayload


def member_qr_payload(session: Session, member_id: int, kind: str = "share_link") -> QRPayload:
    kind_, value = poster_qr_payload(session, member_id, kind=kind)
    return QRPayload(kind_, value)
