"""The pure binding decision, rule by rule."""
from datetime import datetime, timedelta, timezone

import pytest

from app.errors import ValidationFailed
from app.referrals.rules import BindingRules, decide

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("rules, current, bound_days_ago, is_new, expected", [
    (BindingRules(), None, None, True, "bind"),
    (BindingRules(), 7, 400, True, "already_bound"),                    # permanent: first touch wins forever
    (BindingRules(), 9, 1, True, "already_bound"),                      # same referrer again
    (BindingRules(who="new_only"), None, None, False, "not_new"),
    (BindingRules(who="new_only"), None, None, True, "bind"),
    (BindingRules(duration="protection", protection_days=30), 7, 29, True, "protected"),
    (BindingRules(duration="protection", protection_days=30), 7, 31, True, "rebind"),
    (BindingRules(duration="last_touch"), 7, 0, True, "rebind"),
    (BindingRules(duration="last_touch"), 9, 0, True, "already_bound"),
])
def test_decide(rules, current, bound_days_ago, is_new, expected):
    bound_at = NOW - timedelta(days=bound_days_ago) if bound_days_ago is not None else None
    candidate = 9
    assert decide(rules, current_referrer_id=current, bound_at=bound_at, candidate_referrer_id=candidate,
                  member_is_new=is_new, now=NOW) == expected


@pytest.mark.parametrize("change, field", [
    ({"duration": "forever"}, "duration"),
    ({"protection_days": -1}, "protection_days"),
    ({"permanent_qr_budget": 100_001}, "permanent_qr_budget"),
    ({"temp_qr_days": 31}, "temp_qr_days"),
])
def test_invalid_rules_are_refused_with_the_field_named(change, field):
    with pytest.raises(ValidationFailed) as err:
        BindingRules.from_dict(change).validated()
    assert field in err.value.details
