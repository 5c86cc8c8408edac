"""What a member's poster QR box shows: their exclusive share code, from app.referrals.codes."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.referrals.codes import poster_qr_payload
from posters import QRPayload


def member_qr_payload(session: Session, member_id: int, public_base_url: str) -> QRPayload:
    kind, value = poster_qr_payload(session, member_id, public_base_url)
    return QRPayload(kind, value)
