"""`flask ledger check`: prove every entry balances and every cached balance equals its derived sum."""
from __future__ import annotations

import json

import click


def register_ledger_cli(app) -> None:
    """Adds the `ledger` command group to a Flask app. Plain click, no flask import: the runtime comes from the
    app passed in, which keeps app/ledger free of Flask as the import test demands."""

    @click.group("ledger", help="Double-entry ledger tools.")
    def ledger():
        pass

    @ledger.command("check")
    @click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
    def check(as_json: bool):
        """Exit 0 when the books are consistent, 1 (with the offending rows) when they are not."""
        from app.ledger.service import check_ledger

        rt = app.extensions["liebian"]
        with rt.sessions() as s:
            report = check_ledger(s)
        if as_json:
            click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            click.echo(f"{report.entries} entries, {report.accounts} accounts, "
                       f"sum of all balances {report.total_balance_fen} fen")
            for row in report.unbalanced_entries:
                click.echo(f"UNBALANCED entry {row['entry_id']} {row['key']}: sum {row['sum_fen']} fen, "
                           f"{row['lines']} lines")
            for row in report.mismatched_accounts:
                click.echo(f"MISMATCH account {row['code']}: cached {row['cached_fen']} fen, "
                           f"derived {row['derived_fen']} fen")
            for row in report.pending_mismatches:
                click.echo(f"MISMATCH member {row['member_id']} pending {row['pending_fen']} fen, open commissions "
                           f"{row['open_commissions_fen']} fen")
            for row in report.broken_maturation_links:
                click.echo(f"BROKEN LINK commission {row['commission_id']} ({row['state']}, earner {row['earner_id']}) "
                           f"names maturation entry {row['mature_entry_id']}, which did not credit that earner")
            click.echo("OK" if report.ok else "LEDGER CHECK FAILED")
        if not report.ok:
            raise SystemExit(1)

    app.cli.add_command(ledger)
