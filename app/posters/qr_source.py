"""What a member's poster QR box shows: their exclusive share code, from app.referrals.codes."""
from __future__ import annotations

from sqlalchemy.orm import Session

from posters import QRPayload


def member_qr_payload(session: Session, member_id: int, public_base_url: str, kind: str = "share_link") -> QRPayload:
    try:
        from app.referrals.codes import poster_qr_payload
    except ImportError:
        # TEMPORARY (issue 8): a stand-in link until app.referrals.codes lands. Remove this branch, and the
        # public_base_url parameter, once poster_qr_payload exists.
        return QRPayload("text", f"{public_base_url}/s/m{member_id}")
    kind_, value = poster_qr_payload(session, member_id, kind=kind)
    return QRPayload(kind_, value)
