from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.fraud.models import RiskFlag


def raise_flag(session: Session, member_id: int | None, kind: str, **details) -> RiskFlag:
    flag = RiskFlag(member_id=member_id, kind=kind, details=details)
    session.add(flag)
    session.flush()
    return flag


def has_open_flags(session: Session, member_id: int) -> bool:
    return bool(session.scalar(select(exists().where(RiskFlag.member_id == member_id, RiskFlag.status == "open"))))
