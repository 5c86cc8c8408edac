from __future__ import annotations

from sqlalchemy.orm import Session

from app.audit.models import AuditEntry


def record(session: Session, actor: str, action: str, target_type: str, target_id, **details) -> AuditEntry:
    entry = AuditEntry(actor=actor, action=action, target_type=target_type, target_id=str(target_id), details=details)
    session.add(entry)
    return entry
