"""A member's own nickname and avatar, filled in the way WeChat's mini-programs do it now.

WeChat no longer gives apps a user's nickname or avatar: `wx.getUserProfile` was retired in 2022, and neither
code2session nor the service account's user/info carries them. Its replacement is the fill-in: an
`<input type="nickname">` (the person types or picks their WeChat nickname; the text comes to us) and a
`<button open-type="chooseAvatar">` (a temporary image file, uploaded with `wx.uploadFile`). Without them a
member's poster says "微信用户" with a grey silhouette.

The avatar is validated and re-encoded (`posters.images.normalize_avatar_upload`: JPEG, PNG or WebP in, a square
JPEG without metadata out) and kept in the blob store under its content address `avatars/<sha256>.jpg`; the
member's `avatar_url` is the public URL that serves it back (`GET /avatars/<sha256>.jpg`)."""
from __future__ import annotations

import hashlib
import re
import unicodedata

from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.members.models import Member
from app.members.service import get_member
from posters.images import ImageRejected, normalize_avatar_upload
from posters.store import BlobStore

NICKNAME_MAX = 32  # characters; WeChat's own nicknames are shorter
_KEEP_FORMAT = {"\u200d"}  # zero-width joiner: part of emoji sequences (👨‍👩‍👧)
_SPACES = re.compile(r"\s+")
_AVATAR_PATH = "/avatars/"
_AVATAR_FILE = re.compile(r"^([0-9a-f]{64})\.jpg$")


def clean_nickname(raw: object) -> str:
    """The nickname to store, or ValidationFailed: nickname_invalid (not text, or control and other invisible
    characters), nickname_blank (nothing visible), nickname_too_long (over NICKNAME_MAX characters).
    Surrounding whitespace is trimmed and inner runs of whitespace become one space."""
    if not isinstance(raw, str):
        raise ValidationFailed("The nickname is text.", code="nickname_invalid")
    text = unicodedata.normalize("NFC", raw)
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Zl", "Zp") or (category == "Cf" and ch not in _KEEP_FORMAT):
            raise ValidationFailed("The nickname contains a control or invisible character.", code="nickname_invalid",
                                   details={"character": f"U+{ord(ch):04X}"})
    text = _SPACES.sub(" ", text).strip()
    if not any(not ch.isspace() and ch not in _KEEP_FORMAT and unicodedata.category(ch) != "Mn" for ch in text):
        raise ValidationFailed("The nickname is blank.", code="nickname_blank")
    if len(text) > NICKNAME_MAX:
        raise ValidationFailed(f"The nickname is longer than {NICKNAME_MAX} characters.", code="nickname_too_long",
                               details={"max_length": NICKNAME_MAX})
    return text


def set_nickname(session: Session, member_id: int, nickname: object) -> Member:
    member = get_member(session, member_id)
    member.nickname = clean_nickname(nickname)
    session.flush()
    return member


def avatar_blob_name(sha256: str) -> str:
    return f"avatars/{sha256}.jpg"


def avatar_url(public_base_url: str, sha256: str) -> str:
    return f"{public_base_url}{_AVATAR_PATH}{sha256}.jpg"


def stored_avatar_name(url: str | None, public_base_url: str) -> str | None:
    """The blob name behind an avatar URL of ours (None for a WeChat or other outside URL)."""
    prefix = f"{public_base_url}{_AVATAR_PATH}"
    if not url or not url.startswith(prefix):
        return None
    m = _AVATAR_FILE.match(url[len(prefix):])
    return avatar_blob_name(m.group(1)) if m else None


def avatar_file_name(filename: str) -> str | None:
    """The blob name for a requested `/avatars/<filename>`, None when it is not one of ours."""
    m = _AVATAR_FILE.match(filename)
    return avatar_blob_name(m.group(1)) if m else None


def set_avatar(session: Session, store: BlobStore, member_id: int, data: bytes, public_base_url: str) -> Member:
    """Validate and store an uploaded avatar and make it the member's. ValidationFailed with the image's code
    (image_empty, image_too_large, image_unreadable, image_too_many_pixels, image_too_small)."""
    member = get_member(session, member_id)
    try:
        clean, _info = normalize_avatar_upload(data)
    except ImageRejected as exc:
        raise ValidationFailed(str(exc), code=exc.code) from None
    sha = hashlib.sha256(clean).hexdigest()
    store.put(avatar_blob_name(sha), clean)  # content-addressed: storing it again is a no-op
    member.avatar_url = avatar_url(public_base_url, sha)
    session.flush()
    return member
