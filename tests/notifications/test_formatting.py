"""The formatter fits every value to WeChat's field types: table-tested, and checked against the emulator's rules."""
from datetime import datetime, timezone

import pytest

from app.notifications.formatting import build_data, fit, yuan
from wechat.emulator.state import field_problem


@pytest.mark.parametrize("key,value,expected", [
    ("thing1", "佣金到账", "佣金到账"),
    ("thing1", "一" * 20, "一" * 20),
    ("thing1", "一" * 21, "一" * 19 + "…"),
    ("thing1", "a\nb  c", "a b c"),
    ("thing1", "", "-"),
    ("thing1", None, "-"),
    ("phrase2", "待结算", "待结算"),
    ("phrase2", "已到账啦啦啦", "已到账啦啦"),
    ("phrase2", "OK 1!", "OK"),
    ("phrase2", "123", "通知"),
    ("name3", "欧阳" * 6, "欧阳" * 5),
    ("amount4", 4560, "45.60元"),
    ("amount4", 5, "0.05元"),
    ("amount4", -120, "-1.20元"),
    ("amount4", 0, "0.00元"),
    ("amount4", "¥12.3", "12.3元"),
    ("amount4", "lots", "0.00元"),
    ("number5", 12, "12"),
    ("number5", "No. 7", "7"),
    ("number5", None, "0"),
    ("character_string6", "WD-2026/12:01", "WD-2026/12:01"),
    ("character_string6", "订单 A1" + "x" * 40, "A1" + "x" * 30),
    ("character_string6", "中文", "-"),
    ("time7", datetime(2026, 12, 1, 10, 5, tzinfo=timezone.utc), "2026-12-01 18:05"),
    ("time7", "2026-12-01T16:30:00+00:00", "2026-12-02 00:30"),
    ("date8", "2026-12-01T16:30:00+00:00", "2026-12-02"),
    ("keyword1", "x" * 300, "x" * 200),
])
def test_fit(key, value, expected):
    assert fit(key, value) == expected


@pytest.mark.parametrize("key,value", [("thing1", "字" * 50), ("phrase2", "不-1-好 Yes"), ("amount3", 123456789),
                                       ("amount3", "1e9"), ("number4", "x"), ("character_string5", "中" * 40),
                                       ("time6", datetime(2026, 1, 2, tzinfo=timezone.utc)), ("thing7", "")])
def test_fitted_values_pass_wechats_rules(key, value):
    assert field_problem(key, fit(key, value)) is None


def test_yuan_from_integers_only():
    assert [yuan(v) for v in (0, 1, 99, 100, 4560, 123456789, -1)] == \
           ["0.00", "0.01", "0.99", "1.00", "45.60", "1234567.89", "-0.01"]


def test_build_data_maps_keys_to_values():
    assert build_data({"amount1": "amount_fen", "thing2": "title"}, {"amount_fen": 1230, "title": "到账"}) == \
           {"amount1": {"value": "12.30元"}, "thing2": {"value": "到账"}}
