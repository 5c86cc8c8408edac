"""Settings read once from the environment (names from WECHAT.md), with embedded defaults for a newcomer."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("LIEBIAN_INSTANCE_DIR", Path(__file__).resolve().parent.parent / "instance"))
EMULATOR_PREFIX = "/_emulator"
DEV_SECRET = "liebian-embedded-dev-secret-not-for-production"


class ConfigError(RuntimeError):
    pass


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None  # None = in-process stand-in (fakeredis) and inline jobs
    secret_key: str
    public_base_url: str
    # WeChat service account (公众号)
    wechat_app_id: str
    wechat_app_secret: str
    wechat_token: str
    wechat_encoding_aes_key: str | None
    # mini-program (小程序)
    wechat_miniapp_id: str
    wechat_miniapp_secret: str
    wechat_api_base: str
    wechat_open_base: str
    wechat_mp_base: str
    # WeChat Pay v3
    wechatpay_mch_id: str
    wechatpay_api_v3_key: str
    wechatpay_private_key: str | None
    wechatpay_cert_serial: str
    wechatpay_public_key: str | None
    wechatpay_public_key_id: str
    wechatpay_api_base: str
    shop_webhook_secret: str
    # True when no real WeChat is configured: the emulator is mounted at EMULATOR_PREFIX in this process.
    embedded_emulator: bool
    max_body_bytes: int = 1 << 20
    extra: dict = field(default_factory=dict)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    if env is not None:
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            return load_settings()
        finally:
            os.environ.clear()
            os.environ.update(old)

    public = (_env("PUBLIC_BASE_URL", "http://127.0.0.1:5000") or "").rstrip("/")
    real_wechat = _env("WECHAT_APP_ID") is not None or _env("WECHAT_API_BASE") is not None
    secret = _env("SECRET_KEY")
    if real_wechat:
        # Demo defaults are public: with real WeChat they would let anyone forge pushes and paid orders.
        missing = [k for k in ("SECRET_KEY", "WECHAT_APP_SECRET", "WECHAT_TOKEN", "WECHAT_ENCODING_AES_KEY",
                               "SHOP_WEBHOOK_SECRET", "WECHATPAY_API_V3_KEY") if _env(k) is None]
        if missing:
            raise ConfigError(f"{', '.join(missing)} required when WECHAT_APP_ID or WECHAT_API_BASE is set")
    if secret is None:
        secret = DEV_SECRET
    emu = f"{public}{EMULATOR_PREFIX}"
    return Settings(
        database_url=_env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'liebian.db'}"),
        redis_url=_env("REDIS_URL"),
        secret_key=secret,
        public_base_url=public,
        wechat_app_id=_env("WECHAT_APP_ID", "wxdemoservice0001"),
        wechat_app_secret=_env("WECHAT_APP_SECRET", "demo-service-secret"),
        wechat_token=_env("WECHAT_TOKEN", "liebiandemotoken"),
        wechat_encoding_aes_key=_env("WECHAT_ENCODING_AES_KEY", None if real_wechat else "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
        wechat_miniapp_id=_env("WECHAT_MINIAPP_ID", "wxdemominiapp0001"),
        wechat_miniapp_secret=_env("WECHAT_MINIAPP_SECRET", "demo-miniapp-secret"),
        wechat_api_base=(_env("WECHAT_API_BASE", "https://api.weixin.qq.com" if real_wechat else emu)).rstrip("/"),
        wechat_open_base=(_env("WECHAT_OPEN_BASE", "https://open.weixin.qq.com" if real_wechat else emu)).rstrip("/"),
        wechat_mp_base=(_env("WECHAT_MP_BASE", "https://mp.weixin.qq.com" if real_wechat else emu)).rstrip("/"),
        wechatpay_mch_id=_env("WECHATPAY_MCH_ID", "1900000001"),
        wechatpay_api_v3_key=_env("WECHATPAY_API_V3_KEY", "liebianDemoApiV3Key0123456789abc"),
        wechatpay_private_key=_env("WECHATPAY_PRIVATE_KEY"),
        wechatpay_cert_serial=_env("WECHATPAY_CERT_SERIAL", "DEMOMERCHANTSERIAL0001"),
        wechatpay_public_key=_env("WECHATPAY_PUBLIC_KEY"),
        wechatpay_public_key_id=_env("WECHATPAY_PUBLIC_KEY_ID", "PUB_KEY_ID_DEMO0001"),
        wechatpay_api_base=(_env("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com" if real_wechat else emu)).rstrip("/"),
        shop_webhook_secret=_env("SHOP_WEBHOOK_SECRET", "demo-shop-secret"),
        embedded_emulator=not real_wechat,
        max_body_bytes=_env_int("MAX_BODY_BYTES", 1 << 20),
    )
