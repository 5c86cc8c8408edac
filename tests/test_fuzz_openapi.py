"""A bounded fuzz run: schemathesis generates requests for every operation of /openapi.json (valid and invalid
bodies, query strings and path parameters) and sends them to the app with a member's or an operator's token.
No answer may be a 500. FUZZ_EXAMPLES (default 4 per operation, deterministic) keeps the run well under a
minute; raise it locally for a longer hunt (e.g. FUZZ_EXAMPLES=200 FUZZ_RANDOM=1)."""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from app.identity import tokens
from app.identity.operators import create_operator
from app.ledger.service import member_account, platform_account, post_entry
from app.health import record_tick
from tests.factories import make_member

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"


@pytest.fixture
def callers(rt, session):
    """A funded partner who is also a clerk and a store manager, and an operator: the fuzzer gets past sign-in."""
    member = make_member(session, "fuzz", roles=("consumer", "partner", "clerk", "store_manager"),
                         mini_openid="o_fuzz_member")
    post_entry(session, "test:fuzz:fund", [(member_account(session, member.id, "available"), 100_000),
                                          (platform_account(session, "commission_expense"), -100_000)],
               "test_funding")
    op = create_operator(session, "fuzzer", "a-long-password-123")
    session.commit()
    record_tick(rt.redis)  # a scheduler runs, as in production: /healthz's 503 is for a stopped one
    secret = rt.settings.secret_key
    return {"/api/mp/": {"Authorization": "Bearer " + tokens.issue(secret, "member", member.id)},
            "/h5/": {},
            "/api/admin/": {"Authorization": "Bearer " + tokens.issue(secret, "operator", op.id)}}


def _fuzz(operation, mode, headers_for, failures):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case):
        try:
            case.call_and_validate(headers=headers_for(case.path), checks=[not_a_server_error])
        except BaseExceptionGroup as failure:  # schemathesis' FailureGroup: noted; the other operations still run
            failures.setdefault(f"{operation.method.upper()} {operation.path} ({mode.value})",
                                f"{case.as_curl_command()}\n{failure}"[:2000])

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong (no parameters and no body): the positive run covers it
        assert mode is GenerationMode.NEGATIVE


@pytest.mark.timeout(120)
def test_no_request_gets_a_server_error(app, callers):
    """Every operation, with valid (positive) and invalid (negative) inputs; the failures of all operations are
    reported together."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def headers_for(path: str) -> dict:
        if path == "/api/admin/login":
            return {}
        return next((h for prefix, h in callers.items() if path.startswith(prefix)), {})

    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 70
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, headers_for, failures)
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
