"""RSA keys for WeChat Pay v3: from the environment in production, generated once per instance in embedded mode.

Embedded mode needs two key pairs, persisted under INSTANCE_DIR so every process of the instance agrees:
the merchant key (the adapter signs with it, the emulator verifies) and the platform key (the emulator signs
responses and notifications with it, the adapter verifies)."""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import INSTANCE_DIR

_lock = threading.Lock()


def generate_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem_of(private_pem: str) -> str:
    key = load_private_key(private_pem)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _pem_text(value: str) -> bytes:
    """A config value is either PEM text or a path to a PEM file."""
    if "-----BEGIN" in value:
        return value.encode()
    return Path(value).expanduser().read_bytes()


@lru_cache(maxsize=32)
def load_private_key(value: str):
    return serialization.load_pem_private_key(_pem_text(value), password=None)


@lru_cache(maxsize=32)
def load_public_key(value: str):
    data = _pem_text(value)
    if b"CERTIFICATE" in data:  # a platform certificate instead of a bare public key
        from cryptography import x509

        return x509.load_pem_x509_certificate(data).public_key()
    return serialization.load_pem_public_key(data)


def dev_key(name: str, directory: Path | None = None) -> str:
    """The embedded instance's private key `name` (merchant or platform) as PEM text, created on first use."""
    if directory is None:
        directory = INSTANCE_DIR / "wechat-devkeys"
    path = directory / f"{name}.pem"
    with _lock:
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(generate_private_pem())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # first writer wins, even across processes
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text()


def dev_keys_dir(settings) -> Path:
    """Where the embedded instance of `settings` keeps its generated keys (its instance folder)."""
    return Path(settings.instance_dir) / "wechat-devkeys"


def merchant_private_pem(settings) -> str:
    return settings.wechatpay_private_key or dev_key("merchant", dev_keys_dir(settings))


def platform_public_pem(settings) -> str:
    return settings.wechatpay_public_key or public_pem_of(dev_key("platform", dev_keys_dir(settings)))
