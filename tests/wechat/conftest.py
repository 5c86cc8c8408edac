from __future__ import annotations

import pytest

from wechat.clients import MiniProgram, OfficialAccount


@pytest.fixture
def oa(settings, redis) -> OfficialAccount:
    return OfficialAccount(settings, redis)


@pytest.fixture
def mp(settings, redis) -> MiniProgram:
    return MiniProgram(settings, redis)


@pytest.fixture
def person(emulator):
    return emulator.sim("persons", nickname="小明", phone="13912345678")
