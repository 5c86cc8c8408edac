"""Chaos: 200+ withdrawals paid by real `rq worker` processes while WeChat times out, fails with SYSTEM_ERROR
and repeats notifications, and one worker is SIGKILLed mid-run. The emulator's own transfer record judges."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.ledger.service import check_ledger, member_balances
from app.withdrawals.models import Withdrawal
from app.withdrawals.service import request_withdrawal
from tests.withdrawals.conftest import set_rule

ROOT = Path(__file__).resolve().parents[2]
N_PARTNERS, PER_PARTNER = 60, 4  # 240 withdrawals

TUNING = {"OUTBOX_LEASE_SECONDS": "4", "OUTBOX_SWEEP_SECONDS": "0.5", "PAYOUT_RECONCILE_SECONDS": "3",
          "PAYOUT_ACCEPT_GRACE": "1", "PAYOUT_BACKOFF_BASE": "0.2", "PAYOUT_BACKOFF_MAX": "2",
          "PAYOUT_HTTP_TIMEOUT": "1", "PAYOUT_CONFIRM_RECHECK": "0"}


def spawn(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    # Own session: SIGKILL to the group takes the RQ work-horse down with its parent, as a crashed host would.
    with log.open("wb") as out:  # the child writes to its own copy of the descriptor
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.mark.timeout(240)
def test_chaos_every_withdrawal_final_none_paid_twice(rt, session, emulator, live_app, test_env, settings,
                                                      partner_factory, tmp_path):
    set_rule(session, auto_approve_below_fen=10**9, daily_count=100, max_fen=10**7, daily_max_fen=10**9,
             fee_bps=30, min_fen=100)
    emulator.pay.auto_confirm = True  # users confirm at once; WeChat notifies
    members = [partner_factory(available_fen=50_000) for _ in range(N_PARTNERS)]

    env = {**os.environ, **test_env, **TUNING, "PYTHONPATH": str(ROOT)}
    py = sys.executable
    rq_bin = str(Path(py).with_name("rq"))
    workers = [spawn([rq_bin, "worker", "payouts", "default", "--url", env["REDIS_URL"], "--path", str(ROOT),
                      "-w", "rq.worker.SimpleWorker",
                      "-n", f"chaos-{i}-{os.getpid()}"], env, tmp_path / f"worker{i}.log") for i in range(3)]
    scheduler = spawn([py, "-m", "workers.scheduler", "--interval", "0.2"], env, tmp_path / "scheduler.log")
    try:
        faults = emulator.faults
        faults.add(target="pay.create", kind="timeout", seconds=1.3, phase="after", rate=0.08)  # billed, answer lost
        faults.add(target="pay.create", kind="timeout", seconds=1.3, phase="before", rate=0.05)  # never arrived
        faults.add(target="pay.create", kind="error", error="SYSTEM_ERROR", phase="after", rate=0.05)
        faults.add(target="pay.create", kind="error", error="503", phase="before", rate=0.03)
        faults.add(target="pay.query", kind="error", error="SYSTEM_ERROR", phase="before", rate=0.3)
        faults.add_notify("duplicate", 60)
        faults.add_notify("drop", 15)  # settled only by the reconciliation's queries

        amounts = {}
        for round_ in range(PER_PARTNER):
            for m in members:
                amount = 1_000 + 37 * (m.id % 50) + round_
                with rt.session() as s:
                    w, _ = request_withdrawal(s, m.id, amount, f"chaos-{round_}", appid=settings.wechat_miniapp_id)
                    amounts[w.id] = (w.amount_fen, w.net_fen)

        killed = False
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with rt.sessions() as s:
                by_state = Counter(dict(s.execute(select(Withdrawal.state, func.count())
                                                  .group_by(Withdrawal.state)).all()))
            final = sum(by_state[k] for k in ("SUCCESS", "FAIL", "CANCELLED", "REJECTED"))
            if not killed and final >= len(amounts) // 4:
                kill(workers[0])  # mid-run: it holds jobs (and maybe a bill whose answer it never records)
                killed = True
            if final == len(amounts):
                break
            time.sleep(0.5)
        assert killed
        emulator.pay.wait_idle(timeout=20)
        fired = [(f["target"], f["kind"], f["error"], f["phase"], f["fired"]) for f in faults.describe()["rules"]]
        delivered = sum(1 for n in emulator.pay.notifications if n.get("ok"))
    finally:
        for p in workers + [scheduler]:
            kill(p, signal.SIGTERM)
        for p in workers + [scheduler]:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill(p)
        emulator.faults.clear()

    session.expire_all()
    rows = session.execute(select(Withdrawal.id, Withdrawal.state, Withdrawal.out_bill_no, Withdrawal.net_fen)).all()
    assert len(rows) == N_PARTNERS * PER_PARTNER >= 200
    assert Counter(r.state for r in rows) == {"SUCCESS": len(rows)}, Counter(r.state for r in rows)

    pay = emulator.pay.ledger()
    paid_bills = Counter(p["out_bill_no"] for p in pay["payouts"])
    assert max(paid_bills.values()) == 1  # no bill paid twice
    ours = {r.out_bill_no for r in rows}
    assert set(paid_bills) == ours  # every withdrawal paid through its one bill, no stray bills
    assert {b["out_bill_no"] for b in pay["bills"]} == ours
    assert pay["paid_total"] == sum(r.net_fen for r in rows) == sum(net for _, net in amounts.values())
    assert check_ledger(session).ok
    for m in members:
        assert member_balances(session, m.id)["withdrawing"] == 0
    assert all(n > 0 for *_, n in fired), fired  # every kind of fault actually happened
    assert delivered > len(rows)  # duplicated notifications were delivered (and changed nothing)
    print(f"chaos: {len(rows)} withdrawals, {pay['paid_total']} fen paid, faults fired {fired}, "
          f"{delivered} notifications delivered")
