"""The emulator's world on disk, for the embedded default: people (with their openids and unionids), QR tickets,
messages sent to them, and the pay desk (bills, the merchant's balance, what was paid) survive a restart.

One JSON file, replaced atomically after every emulator request that changed it (and after the in-process
twins that change people). A process re-reads the file when another process (say `flask seed-demo` while the
app serves) replaced it. Tokens and one-time codes are not kept: they expire anyway, and clients fetch them
again. Not used by tests' emulators or `python -m wechat.emulator` unless given a file."""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, fields
from pathlib import Path

from wechat.emulator.state import Person

log = logging.getLogger(__name__)
VERSION = 1
_PERSON_FIELDS = {f.name for f in fields(Person)}


class WorldFile:
    def __init__(self, path: str | os.PathLike, world, pay):
        self.path, self.world, self.pay = Path(path), world, pay
        self._lock = threading.Lock()
        self._last_text: str | None = None
        self._seen: tuple | None = None  # the file's identity as last read or written here (see _stamp)

    # --- what is kept ---
    def snapshot(self) -> dict:
        w, p = self.world, self.pay
        with w.lock, p.lock:
            return {"version": VERSION,
                    "persons": [asdict(x) for x in w.persons.values()],
                    "tickets": w.tickets, "permanent_scenes": w.permanent_scenes, "messages": w.messages,
                    "templates": w.templates,
                    "pay": {"bills": p.bills, "balance": p.balance, "payouts": p.payouts}}

    def restore(self, data: dict) -> None:
        w, p = self.world, self.pay
        with w.lock, p.lock:
            w.persons, w.by_openid = {}, {}
            for raw in data.get("persons", []):
                person = Person(**{k: v for k, v in raw.items() if k in _PERSON_FIELDS})
                w.persons[person.pid] = person
                for appid in w.app_ids():
                    w.by_openid[person.openid(appid)] = person
            w.tickets = dict(data.get("tickets", {}))
            w.permanent_scenes = dict(data.get("permanent_scenes", {}))
            w.messages = list(data.get("messages", []))
            w.templates = dict(data.get("templates", {}))
            pay = data.get("pay", {})
            p.bills = dict(pay.get("bills", {}))
            p.balance = int(pay.get("balance", p.balance))
            p.payouts = list(pay.get("payouts", []))

    # --- disk ---
    def _stamp(self) -> tuple | None:
        """Every save replaces the file (a new inode), so this changes with each write, even within one
        timestamp tick."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def load(self) -> bool:
        """Read the file if it exists (True when something was restored)."""
        with self._lock:
            stamp = self._stamp()
            if stamp is None:
                return False
            try:
                text = self.path.read_text(encoding="utf-8")
                data = json.loads(text)
            except (OSError, ValueError):
                log.exception("emulator world file %s unreadable; starting empty", self.path)
                return False
            self.restore(data)
            self._last_text, self._seen = json.dumps(self.snapshot(), ensure_ascii=False, sort_keys=True), stamp
            return True

    def reload_if_changed(self) -> None:
        """Another process replaced the file since this one last read or wrote it: take its world."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            self.load()

    def save(self) -> None:
        """Write the world if it changed since the last write (atomically: a reader sees old or new)."""
        text = json.dumps(self.snapshot(), ensure_ascii=False, sort_keys=True)
        with self._lock:
            if text == self._last_text:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
            self._last_text, self._seen = text, self._stamp()
