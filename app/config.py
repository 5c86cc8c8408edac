"""The one typed configuration: every setting is read here, once, from the environment (names in the README's
table), with embedded defaults for a newcomer. Nothing else reads the environment; code receives `Settings`.

Tests and tools build their own with `load_settings({...})` (a mapping, not the process environment) or change
a copy with `settings.with_(...)`."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("LIEBIAN_INSTANCE_DIR") or Path(__file__).resolve().parent.parent / "instance")
EMULATOR_PREFIX = "/_emulator"
DEV_SECRET = "liebian-embedded-dev-secret-not-for-production"


class ConfigError(RuntimeError):
    pass


def _bp(value: int, name: str) -> int:
    if not 0 < value <= 10000:
        raise ConfigError(f"{name} is in basis points, 1 to 10000, got {value}")
    return value


class _Env:
    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ

    def __call__(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        return value if value not in (None, "") else default

    def int(self, name: str, default: int) -> int:
        raw = self(name)
        try:
            return default if raw is None else int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None

    def bool(self, name: str, default: bool) -> bool:
        raw = self(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be 1 or 0 (true/false, on/off), got {raw!r}")

    def float(self, name: str, default: float) -> float:  # durations in seconds and request rates, never money
        raw = self(name)
        try:
            return default if raw is None else float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None


@dataclass(frozen=True)
class PayoutSettings:
    """Payout tuning (defaults suit production; tests shorten them)."""
    http_timeout: float = 10.0  # PAYOUT_HTTP_TIMEOUT: seconds to wait for WeChat Pay (then: unknown, query later)
    rate_per_s: float = 100.0  # WECHATPAY_RATE_LIMIT: requests/s per merchant, shared by all workers
    rate_burst: int = 5  # WECHATPAY_RATE_BURST: requests allowed at once above the steady rate
    accept_grace: float = 10.0  # PAYOUT_ACCEPT_GRACE: after a submit, NOT_FOUND means "still being accepted"
    backoff_base: float = 2.0  # PAYOUT_BACKOFF_BASE: retry backoff (doubling, jittered) for unknown outcomes
    backoff_max: float = 300.0  # PAYOUT_BACKOFF_MAX
    confirm_recheck: float = 1800.0  # PAYOUT_CONFIRM_RECHECK: between queries of a bill awaiting confirmation
    cancel_followup: float = 10.0  # PAYOUT_CANCEL_FOLLOWUP: after a member's cancel, query the CANCELING bill
    reconcile_every: float = 300.0  # PAYOUT_RECONCILE_SECONDS: how often every non-final bill is queried


@dataclass(frozen=True)
class OutboxSettings:
    lease_seconds: float = 60.0  # OUTBOX_LEASE_SECONDS: a row handed out longer ago without finishing goes again
    max_failures: int = 25  # OUTBOX_MAX_FAILURES: then the row is dead (kept; /healthz counts them)
    batch: int = 8  # OUTBOX_BATCH: rows of one queue handed to RQ together in one job
    sweep_every: float = 2.0  # OUTBOX_SWEEP_SECONDS: how often the scheduler sweeps


@dataclass(frozen=True)
class SchedulerSettings:
    # EMBEDDED_SCHEDULER: without REDIS_URL, the served process runs the periodic jobs itself (a daemon thread)
    in_process: bool = True
    mature_every: float = 600.0  # COMMISSION_MATURE_SECONDS: how often due commissions are matured


@dataclass(frozen=True)
class RetentionSettings:
    """How long the bookkeeping of events and jobs is kept (the money, orders and boards' credits are kept
    forever; these only say what was delivered)."""
    events_days: int = 90  # EVENTS_KEEP_DAYS: a domain event and its receipts, once every delivery is done
    outbox_days: int = 30  # OUTBOX_KEEP_DAYS: a finished outbox row (rows given up on are kept for operators)
    every: float = 3600.0  # RETENTION_SECONDS: how often the scheduler prunes


@dataclass(frozen=True)
class HealthSettings:
    """When /healthz says degraded (503) although everything answers."""
    job_failures: int = 5  # HEALTH_JOB_FAILURES: a job (outbox row or periodic job) failing this many times in a row
    dead_window: float = 86400.0  # HEALTH_DEAD_WINDOW_SECONDS: an outbox row given up on (dead) this recently
    outbox_backlog: int = 10000  # HEALTH_OUTBOX_BACKLOG: outbox rows due and not done
    outbox_oldest: float = 300.0  # HEALTH_OUTBOX_OLDEST_SECONDS: the oldest due, not done row waiting this long
    scheduler_stale: float = 60.0  # HEALTH_SCHEDULER_STALE_SECONDS: the scheduler's last tick longer ago than this


@dataclass(frozen=True)
class TouchSettings:
    mode: str = "inline"  # REFERRAL_TOUCH_MODE: "inline" (bind in the callback) or "stream" (Redis stream + consumer)
    batch: int = 500  # TOUCH_BATCH: touches a consumer takes at once
    linger_ms: int = 100  # TOUCH_LINGER_MS: how long a consumer waits to fill a batch


@dataclass(frozen=True)
class NotifySettings:
    # NOTIFY_QUIET_START / NOTIFY_QUIET_END: quiet hours, whole hours of China time (UTC+8); non-urgent messages
    # planned inside them wait until the end. Equal values: no quiet hours.
    quiet_start: int = 22
    quiet_end: int = 8
    rate_per_s: float = 20.0  # NOTIFY_RATE_LIMIT: message sends per second, all workers together
    rate_burst: int = 5  # NOTIFY_RATE_BURST
    retry_base: float = 5.0  # NOTIFY_RETRY_BASE: seconds before the first retry of a transient error (doubling)
    retry_max: float = 600.0  # NOTIFY_RETRY_MAX
    # NOTIFY_CONFIRM_REMIND_AFTER: seconds after a transfer starts awaiting the member's confirmation that the
    # reminder goes (WeChat closes the bill after 24 hours), unless the member confirmed or cancelled
    confirm_remind_after: float = 72000.0


@dataclass(frozen=True)
class BoardSettings:
    keep_days: int = 40  # BOARDS_KEEP_DAYS: a closed day's board lives this many days past its end
    keep_weeks: int = 10  # BOARDS_KEEP_WEEKS: a closed ISO week's board, this many weeks past its end
    keep_months: int = 13  # BOARDS_KEEP_MONTHS: a closed month's board, this many months (of 31 days) past its end
    top_cache_seconds: float = 2.0  # BOARDS_TOP_CACHE_SECONDS: a board's top N is shared this long between reads
    dedupe_days: int = 14  # BOARDS_DEDUPE_DAYS: how long an applied credit's dedupe key guards against replays
    freeze_every: float = 60.0  # CONTEST_FREEZE_SECONDS: how often the scheduler freezes contests past their deadline
    live_seconds: float = 10.0  # CONTEST_LIVE_SECONDS: an open contest's live standings are shared this long


@dataclass(frozen=True)
class FraudSettings:
    """Signals checked on the orders behind a contest prize before it is paid (app/orders/signals.py)."""
    self_purchase_bp: int = 3000  # FRAUD_SELF_PURCHASE_BP: share of the counted amount the winner bought themself
    shared_payer_accounts: int = 3  # FRAUD_SHARED_PAYER_ACCOUNTS: buyer accounts one WeChat payer may pay for
    refund_rate_bp: int = 3000  # FRAUD_REFUND_RATE_BP: share of the counted amount refunded
    refund_min_orders: int = 3  # FRAUD_REFUND_MIN_ORDERS: fewer counted orders are too few to judge a refund rate


@dataclass(frozen=True)
class PosterSettings:
    store_dir: str  # POSTER_STORE_DIR: where rendered posters and backgrounds are kept
    font_text: str | None = None  # POSTER_FONT_TEXT: a CJK font file instead of the bundled Noto Sans CJK
    font_emoji: str | None = None  # POSTER_FONT_EMOJI: a colour emoji font; empty turns colour emoji off


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
    instance_dir: str = str(INSTANCE_DIR)  # LIEBIAN_INSTANCE_DIR: SQLite file, posters, dev keys, emulator world
    payout: PayoutSettings = field(default_factory=PayoutSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    touch: TouchSettings = field(default_factory=TouchSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    posters: PosterSettings = field(default_factory=lambda: PosterSettings(str(INSTANCE_DIR / "posters")))
    boards: BoardSettings = field(default_factory=BoardSettings)
    fraud: FraudSettings = field(default_factory=FraudSettings)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (the process environment by default)."""
    _env = _Env(os.environ if environ is None else environ)
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
    instance = Path(_env("LIEBIAN_INSTANCE_DIR", str(INSTANCE_DIR)))
    return Settings(
        database_url=_env("DATABASE_URL", f"sqlite:///{instance / 'liebian.db'}"),
        redis_url=_env("REDIS_URL"),
        secret_key=secret,
        public_base_url=public,
        wechat_app_id=_env("WECHAT_APP_ID", "wxdemoservice0001"),
        wechat_app_secret=_env("WECHAT_APP_SECRET", "demo-service-secret"),
        wechat_token=_env("WECHAT_TOKEN", "liebiandemotoken"),
        wechat_encoding_aes_key=_env("WECHAT_ENCODING_AES_KEY",
                                     None if real_wechat else "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
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
        wechatpay_api_base=(_env("WECHATPAY_API_BASE",
                                 "https://api.mch.weixin.qq.com" if real_wechat else emu)).rstrip("/"),
        shop_webhook_secret=_env("SHOP_WEBHOOK_SECRET", "demo-shop-secret"),
        embedded_emulator=not real_wechat,
        max_body_bytes=_env.int("MAX_BODY_BYTES", 1 << 20),
        instance_dir=str(instance),
        payout=PayoutSettings(
            http_timeout=_env.float("PAYOUT_HTTP_TIMEOUT", 10.0), rate_per_s=_env.float("WECHATPAY_RATE_LIMIT", 100.0),
            rate_burst=_env.int("WECHATPAY_RATE_BURST", 5), accept_grace=_env.float("PAYOUT_ACCEPT_GRACE", 10.0),
            backoff_base=_env.float("PAYOUT_BACKOFF_BASE", 2.0), backoff_max=_env.float("PAYOUT_BACKOFF_MAX", 300.0),
            confirm_recheck=_env.float("PAYOUT_CONFIRM_RECHECK", 1800.0),
            cancel_followup=_env.float("PAYOUT_CANCEL_FOLLOWUP", 10.0),
            reconcile_every=_env.float("PAYOUT_RECONCILE_SECONDS", 300.0)),
        boards=BoardSettings(
            keep_days=_env.int("BOARDS_KEEP_DAYS", 40), keep_weeks=_env.int("BOARDS_KEEP_WEEKS", 10),
            keep_months=_env.int("BOARDS_KEEP_MONTHS", 13),
            top_cache_seconds=_env.float("BOARDS_TOP_CACHE_SECONDS", 2.0),
            dedupe_days=_env.int("BOARDS_DEDUPE_DAYS", 14),
            freeze_every=_env.float("CONTEST_FREEZE_SECONDS", 60.0),
            live_seconds=_env.float("CONTEST_LIVE_SECONDS", 10.0)),
        fraud=FraudSettings(
            self_purchase_bp=_bp(_env.int("FRAUD_SELF_PURCHASE_BP", 3000), "FRAUD_SELF_PURCHASE_BP"),
            shared_payer_accounts=max(2, _env.int("FRAUD_SHARED_PAYER_ACCOUNTS", 3)),
            refund_rate_bp=_bp(_env.int("FRAUD_REFUND_RATE_BP", 3000), "FRAUD_REFUND_RATE_BP"),
            refund_min_orders=max(1, _env.int("FRAUD_REFUND_MIN_ORDERS", 3))),
        outbox=OutboxSettings(
            lease_seconds=_env.float("OUTBOX_LEASE_SECONDS", 60.0), max_failures=_env.int("OUTBOX_MAX_FAILURES", 25),
            batch=max(1, _env.int("OUTBOX_BATCH", 8)), sweep_every=_env.float("OUTBOX_SWEEP_SECONDS", 2.0)),
        touch=TouchSettings(mode=_touch_mode(_env("REFERRAL_TOUCH_MODE", "inline")),
                            batch=_env.int("TOUCH_BATCH", 500), linger_ms=_env.int("TOUCH_LINGER_MS", 100)),
        notify=NotifySettings(
            quiet_start=_hour(_env.int("NOTIFY_QUIET_START", 22), "NOTIFY_QUIET_START"),
            quiet_end=_hour(_env.int("NOTIFY_QUIET_END", 8), "NOTIFY_QUIET_END"),
            rate_per_s=_env.float("NOTIFY_RATE_LIMIT", 20.0), rate_burst=max(1, _env.int("NOTIFY_RATE_BURST", 5)),
            retry_base=_env.float("NOTIFY_RETRY_BASE", 5.0), retry_max=_env.float("NOTIFY_RETRY_MAX", 600.0),
            confirm_remind_after=_env.float("NOTIFY_CONFIRM_REMIND_AFTER", 72000.0)),
        scheduler=SchedulerSettings(in_process=_env.bool("EMBEDDED_SCHEDULER", True),
                                    mature_every=_env.float("COMMISSION_MATURE_SECONDS", 600.0)),
        retention=RetentionSettings(events_days=max(1, _env.int("EVENTS_KEEP_DAYS", 90)),
                                    outbox_days=max(1, _env.int("OUTBOX_KEEP_DAYS", 30)),
                                    every=_env.float("RETENTION_SECONDS", 3600.0)),
        health=HealthSettings(
            job_failures=max(1, _env.int("HEALTH_JOB_FAILURES", 5)),
            dead_window=_env.float("HEALTH_DEAD_WINDOW_SECONDS", 86400.0),
            outbox_backlog=_env.int("HEALTH_OUTBOX_BACKLOG", 10000),
            outbox_oldest=_env.float("HEALTH_OUTBOX_OLDEST_SECONDS", 300.0),
            scheduler_stale=_env.float("HEALTH_SCHEDULER_STALE_SECONDS", 60.0)),
        posters=PosterSettings(store_dir=_env("POSTER_STORE_DIR", str(instance / "posters")),
                               font_text=_env("POSTER_FONT_TEXT"),
                               font_emoji=_env.environ.get("POSTER_FONT_EMOJI")),  # "" is meaningful: no emoji
    )


def _hour(value: int, name: str) -> int:
    if not 0 <= value <= 23:
        raise ConfigError(f"{name} is an hour, 0 to 23, got {value}")
    return value


def _touch_mode(value: str) -> str:
    if value not in ("inline", "stream"):
        raise ConfigError(f"REFERRAL_TOUCH_MODE must be inline or stream, got {value!r}")
    return value
