"""Personal data at rest: Fernet encryption and keyed blind indexes, both derived from SECRET_KEY."""
from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=8)
def _derive(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"liebian", info=purpose.encode()).derive(secret.encode())


def encrypt(secret: str, plaintext: str) -> str:
    return Fernet(base64.urlsafe_b64encode(_derive(secret, "pii-encryption"))).encrypt(plaintext.encode()).decode()


def decrypt(secret: str, token: str) -> str:
    try:
        return Fernet(base64.urlsafe_b64encode(_derive(secret, "pii-encryption"))).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("ciphertext was not made with this SECRET_KEY") from exc


def blind_index(secret: str, value: str) -> str:
    """Equality lookups on encrypted values (phone numbers) without storing them."""
    return hmac.new(_derive(secret, "blind-index"), value.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    digits = phone[-11:] if len(phone) >= 11 else phone
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "****"


def mask_name(name: str) -> str:
    """Nickname or real name as others may see it: first character, then stars."""
    if not name:
        return ""
    return name[0] + "*" * min(max(len(name) - 1, 1), 3)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
