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


@pytest.fixture
def push_handler():
    """push_handler(key, fn) registers fn for this test only."""
    from wechat import registry

    def add(key, fn):
        """fn(session, message): this test's handler (the runtime, a handler's third argument, is left out)."""
        return registry.register_push_handler(key, lambda session, message, _rt: fn(session, message))

    with registry.isolated():  # only this test's handlers, not the domain's
        yield add


@pytest.fixture
def transfer_handler():
    from wechat import registry

    seen = []

    def handler(session, resource, _rt):
        seen.append(resource)

    with registry.isolated():
        registry.register_transfer_notification_handler(handler)
        yield seen
