"""A member's real name: given once, kept encrypted, shown masked, changeable with an audit trail.

WeChat Pay needs the payee's real name on every merchant transfer of 2,000 yuan or more, and checks it against
the name the WeChat account is verified under (a mismatch fails the transfer with NAME_NOT_CORRECT). The
member gives it once; each withdrawal that needs it snapshots the encrypted value, so changing the name later
does not change a transfer already requested.

Stored only encrypted (`members.real_name_enc`, Fernet with a key derived from SECRET_KEY, `app.crypto`);
audit entries carry the masked form only."""
from __future__ import annotations

import re
import unicodedata

from sqlalchemy.orm import Session

from app.audit.service import record
from app.crypto import decrypt, encrypt
from app.errors import ValidationFailed
from app.members.models import Member
from app.members.service import get_member

# Han characters (basic block, extension A, and extensions B onward for rare characters in names).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f"
# Letters of the Latin alphabet, with the accented ones of Latin-1 and Latin Extended-A.
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u017f"
CHINESE_NAME = re.compile(f"^[{_HAN}]+(?:·[{_HAN}]+)*$")
LATIN_NAME = re.compile(f"^[{_LATIN}]+(?:(?:[ '\\-]|\\. ?)[{_LATIN}]+)*\\.?$")
CHINESE_LENGTH = (2, 30)  # characters, the separating dots included
LATIN_LENGTH = (2, 64)
# The separator of ethnic-minority and transliterated names, however it was typed: all become U+00B7.
_DOTS = str.maketrans({"\u2022": "·", "\u30fb": "·", "\uff65": "·", "\u2027": "·", "\u318d": "·", "\u00b7": "·",
                       "\u16eb": "·", "\u2219": "·", "\u22c5": "·", "\u0387": "·"})
_SPACES = re.compile(r"\s+")


def normalize_real_name(raw: object) -> str:
    """The real name as it will be sent to WeChat Pay, or ValidationFailed `real_name_invalid` (details.reason:
    blank, too_short, too_long, characters). Accepted: Han characters, optionally in parts joined by a middle dot
    (买买提·艾力; any of the usual dot characters is read as U+00B7), or Latin letters in words separated by a
    space, hyphen, apostrophe or a period (Mary-Jane O'Neil, J. R. Smith). Full-width letters and spaces become
    ordinary ones; surrounding spaces are trimmed. No digits, no mixing of Han and Latin."""
    if not isinstance(raw, str):
        raise _invalid("characters", "The real name is text.")
    name = _SPACES.sub(" ", unicodedata.normalize("NFKC", raw).translate(_DOTS)).strip()
    if not name:
        raise _invalid("blank", "Give your real name as on your ID.")
    if CHINESE_NAME.match(name.replace(" ", "")):
        name = name.replace(" ", "")  # spaces typed between Han characters are not part of the name
        lo, hi = CHINESE_LENGTH
    elif LATIN_NAME.match(name):
        lo, hi = LATIN_LENGTH
    else:
        raise _invalid("characters", "A real name is written in Chinese characters (parts joined by ·) or in "
                                     "Latin letters, without digits or other signs.")
    if len(name) < lo:
        raise _invalid("too_short", f"A real name has at least {lo} characters.")
    if len(name) > hi:
        raise _invalid("too_long", f"A real name has at most {hi} characters.")
    return name


def _invalid(reason: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code="real_name_invalid", details={"reason": reason})


def mask_real_name(name: str) -> str:
    """What the member and operators see: Chinese names keep their last character (**明, ***·**力); Latin names
    keep each word's first letter (J*** S****)."""
    if not name:
        return ""
    if CHINESE_NAME.match(name):
        return "".join(ch if ch == "·" else "*" for ch in name[:-1]) + name[-1]
    return " ".join(word[0] + "*" * (len(word) - 1) for word in name.split(" "))


def real_name_view(secret: str, member: Member) -> dict:
    if not member.real_name_enc:
        return {"on_file": False, "real_name": None}
    return {"on_file": True, "real_name": mask_real_name(decrypt(secret, member.real_name_enc))}


def set_real_name(session: Session, secret: str, member_id: int, raw: object, *, actor: str = "member") -> dict:
    """Record (or change) the member's real name. Giving the same name again changes nothing; a first name and
    every change are audited (`member.real_name_set`, `member.real_name_changed`) with masked values only."""
    member = get_member(session, member_id)
    name = normalize_real_name(raw)
    previous = decrypt(secret, member.real_name_enc) if member.real_name_enc else None
    if previous == name:
        return real_name_view(secret, member)
    member.real_name_enc = encrypt(secret, name)
    if previous is None:
        record(session, actor, "member.real_name_set", "member", member.id, real_name=mask_real_name(name))
    else:
        record(session, actor, "member.real_name_changed", "member", member.id, real_name=mask_real_name(name),
               previous=mask_real_name(previous))
    session.flush()
    return real_name_view(secret, member)
