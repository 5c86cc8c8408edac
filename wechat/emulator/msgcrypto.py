"""WeChat message-push signing and AES "safe mode" encryption, written from WeChat's specification.

Deliberately independent of wechatpy: a test checks this against wechatpy's WeChatCrypto in both directions,
so neither the emulator nor our adapter can drift from WeChat's format unnoticed."""
from __future__ import annotations

import base64
import hashlib
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads PKCS#7 to 32 bytes, not AES's 16


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    assert len(key) == 32, "EncodingAESKey must be 43 characters"
    return key


def encrypt(encoding_aes_key: str, xml: str, appid: str) -> str:
    key = _key(encoding_aes_key)
    body = xml.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + appid.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def decrypt(encoding_aes_key: str, ciphertext: str) -> tuple[str, str]:
    """-> (xml, appid)"""
    key = _key(encoding_aes_key)
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(ciphertext)) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK:
        raise ValueError("bad padding")
    plain = plain[:-pad]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20:20 + length].decode(), plain[20 + length:].decode()


def encrypted_envelope(encoding_aes_key: str, token: str, appid: str, xml: str, timestamp: str,
                       nonce: str) -> tuple[str, str]:
    """-> (body of the POST, msg_signature)"""
    enc = encrypt(encoding_aes_key, xml, appid)
    msg_sig = signature(token, timestamp, nonce, enc)
    return f"<xml><ToUserName><![CDATA[{appid}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>", msg_sig
