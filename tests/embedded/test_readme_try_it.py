"""The README's "Try it" block, run as written against a served embedded app after `flask seed-demo`: it
cannot rot."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

README = Path(__file__).resolve().parents[2] / "README.md"


def try_it_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Try it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.S | re.M)
    assert len(blocks) == 1, "the Try it section has one shell block"
    return blocks[0]


def test_the_readme_try_it_block_runs_verbatim_on_any_port(embedded, tmp_path):
    seeded = embedded.cli("seed-demo")
    assert seeded.exit_code == 0, seeded.output
    assert "demo-partner" in seeded.output and "demo-guest" in seeded.output
    block = try_it_block()
    assert "Authorization: Bearer" in block
    port = str(urlsplit(embedded.url).port)
    assert port != "5000"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIEBIAN_", "PUBLIC_BASE_URL"))}
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], env={**env, "PORT": port}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    outputs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    partner_id = embedded.call("GET", "/api/mp/me", embedded.login("demo-partner"))["id"]
    new_person, guest = outputs[1], outputs[2]
    assert new_person["referrer_id"] == partner_id and guest["referrer_id"] == partner_id
    paid = outputs[3]
    assert paid["status"] == "applied" and {c["earner_id"] for c in paid["commissions"] if c["level"] == 1} == {
        partner_id}
    withdrawal, books = outputs[-2], outputs[-1]
    assert withdrawal["state"] == "SUCCESS" and withdrawal["net_fen"] == 500
    assert books["ok"] is True
    assert (tmp_path / "partner-qr.png").read_bytes().startswith(b"\x89PNG")
    paid_out = embedded.call("GET", "/_emulator/_sim/pay/ledger")["payouts"]
    assert [p["amount"] for p in paid_out] == [500]
