"""The operator's binding rules, and the pure decision of what a touch does. No database here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta

from app.errors import ValidationFailed

CHOICES = {
    "who": ("any_unbound", "new_only"),
    "when": ("first_touch", "first_purchase"),
    "duration": ("permanent", "protection", "last_touch"),
    "partner_policy": ("everyone", "application", "spend", "designated"),
}


@dataclass(frozen=True)
class BindingRules:
    # Who may be bound: anyone without a referrer, or only people we had never seen before this touch.
    who: str = "any_unbound"
    # Bind on the touch itself, or remember the touch and bind at the first purchase.
    when: str = "first_touch"
    # permanent first touch; `protection`: after protection_days a new touch may rebind; last_touch: always.
    duration: str = "permanent"
    protection_days: int = 30
    # A member is "new" when their first touch comes within this many hours of their first sighting.
    new_member_hours: int = 24
    partner_policy: str = "everyone"
    partner_spend_threshold_fen: int = 0
    welcome_text: str = "欢迎关注！点击菜单进入会员中心。"
    # A news (图文) welcome instead of the text when set: up to 8 articles {title, description, pic_url, url},
    # WeChat's limit for a reply to an event.
    welcome_news: list = field(default_factory=list)
    permanent_qr_budget: int = 90_000  # of WeChat's lifetime 100,000; past it, 30-day codes renewed in time
    temp_qr_days: int = 30
    temp_qr_renew_days: int = 3

    @classmethod
    def from_dict(cls, raw: dict | None) -> "BindingRules":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (raw or {}).items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def validated(self) -> "BindingRules":
        errors = {}
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                errors[name] = [f"must be one of {', '.join(allowed)}"]
        for name in ("protection_days", "new_member_hours", "partner_spend_threshold_fen", "temp_qr_renew_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors[name] = ["must be a whole number ≥ 0"]
        if not isinstance(self.permanent_qr_budget, int) or not 0 <= self.permanent_qr_budget <= 100_000:
            errors["permanent_qr_budget"] = ["must be between 0 and 100000 (WeChat's lifetime quota)"]
        if not isinstance(self.temp_qr_days, int) or not 1 <= self.temp_qr_days <= 30:
            errors["temp_qr_days"] = ["must be between 1 and 30 (WeChat's limit for temporary codes)"]
        if not isinstance(self.welcome_text, str) or len(self.welcome_text) > 600:
            errors["welcome_text"] = ["must be text of at most 600 characters"]
        news_errors = _news_errors(self.welcome_news)
        if news_errors:
            errors["welcome_news"] = news_errors
        if errors:
            raise ValidationFailed("The binding rules are invalid.", code="rules_invalid", details=errors)
        return self

    def welcome_reply(self) -> str | dict:
        """What a new follower receives: the news articles when configured, else the text."""
        if self.welcome_news:
            return {"articles": [dict(a) for a in self.welcome_news]}
        return self.welcome_text


NEWS_LIMITS = {"title": 64, "description": 120, "pic_url": 512, "url": 512}


def _news_errors(news) -> list[str]:
    if not isinstance(news, list) or len(news) > 8:
        return ["must be a list of at most 8 articles"]
    errors = []
    for i, article in enumerate(news):
        if not isinstance(article, dict) or set(article) - set(NEWS_LIMITS) or not article.get("title") \
                or not article.get("url"):
            errors.append(f"article {i}: needs a title and a url; fields are {', '.join(NEWS_LIMITS)}")
            continue
        for key, limit in NEWS_LIMITS.items():
            value = article.get(key, "")
            if not isinstance(value, str) or len(value) > limit:
                errors.append(f"article {i}: {key} must be text of at most {limit} characters")
            elif key in ("pic_url", "url") and value and not value.startswith(("https://", "http://")):
                errors.append(f"article {i}: {key} must be an http(s) address")
    return errors


def decide(rules: BindingRules, *, current_referrer_id: int | None, bound_at: datetime | None,
           candidate_referrer_id: int, member_is_new: bool, now: datetime) -> str:
    """What a valid touch does to a member: bind | rebind | already_bound | protected | not_new."""
    if current_referrer_id is None:
        if rules.who == "new_only" and not member_is_new:
            return "not_new"
        return "bind"
    if current_referrer_id == candidate_referrer_id:
        return "already_bound"
    if rules.duration == "permanent":
        return "already_bound"
    protecting = rules.duration == "protection" and bound_at is not None
    if protecting and now < bound_at + timedelta(days=rules.protection_days):
        return "protected"
    return "rebind"


CODE_STANDINGS = ("active", "frozen", "revoked", "inactive")


def code_standing(kind: str, status: str, partner_status: str | None, on_staff: bool, has_referrer: bool) -> str:
    """What a code can do now; the one rule behind a scan (`binding`) and the code a member is shown (`codes`).

    active: it binds. frozen: its partner is frozen. revoked: the code, or its partner's standing, was revoked.
    inactive: the clerk (or the campaign's clerk or partner) no longer wins customers."""
    if status != "active":
        return "revoked"
    if kind == "partner":
        return partner_status if partner_status in ("active", "frozen") else "revoked"
    if kind == "clerk":
        return "active" if on_staff else "inactive"
    # campaign: binds only while its clerk or partner (if it names one) may still win customers
    if not has_referrer or partner_status == "active" or on_staff:
        return "active"
    return "frozen" if partner_status == "frozen" else "inactive"
