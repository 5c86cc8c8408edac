"""A local WeChat that speaks the real protocols: public-platform APIs, OAuth, message push and WeChat Pay v3
merchant transfer, plus /_sim endpoints to act as a WeChat user and to inject faults.

One Flask app serves every WeChat host's paths (they do not collide). Run it alone with
`python -m wechat.emulator --port 5050`; the embedded default mounts it at /_emulator in Liebian itself and keeps
its world (people, QR tickets, bills) in the instance folder, so people survive a restart (`persist.py`)."""
from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

from pathlib import Path

from flask import Flask, jsonify

from wechat.emulator import pushes
from wechat.emulator.faults import Faults
from wechat.emulator.paydesk import PayDesk
from wechat.emulator.persist import WorldFile
from wechat.emulator.state import World

STATE_FILE = "wechat-emulator.json"  # in the instance folder, embedded default only

DEFAULTS = {"token_ttl": 7200, "permanent_qr_quota": 100000, "jscode_rate_limit": 100, "published_pages": None,
            "notify_retry_delays": [0.2, 0.5, 1.0, 2.0],
            "template_report_delay": None}  # seconds before TEMPLATESENDJOBFINISH is pushed; None: on request


class Emulator:
    """The emulator's state and the in-process twins of the /_sim endpoints."""

    def __init__(self, config: dict):
        self.config = {**DEFAULTS, **config}
        self.world = World(self.config)
        self.faults = Faults()
        self.pay = PayDesk(self.config, self.faults)
        self._last_push_time: dict[str, int] = {}
        state_file = self.config.get("state_file")
        self.store = WorldFile(state_file, self.world, self.pay) if state_file else None
        if self.store is not None:
            self.store.load()

    def save(self) -> None:
        """Persist the world (when it has a state file); every request that changes it does so."""
        if self.store is not None:
            self.store.save()

    def reload_if_changed(self) -> None:
        if self.store is not None:
            self.store.reload_if_changed()

    def reset(self) -> None:
        self.pay.wait_idle(timeout=10)
        self.world.reset()
        self.faults.clear()
        self.pay.reset()
        self._last_push_time.clear()
        self.save()

    # --- people ---
    def create_person(self, **kw) -> dict:
        out = self.person(self.world.create_person(**kw).pid)
        self.save()
        return out

    def ensure_person(self, pid: str, **kw) -> dict:
        """The person `pid`, created with `kw` unless they exist (demo data: the same pid on every run)."""
        self.reload_if_changed()
        if pid not in self.world.persons:
            return self.create_person(pid=pid, **kw)
        return self.person(pid)

    def person(self, ref: str) -> dict:
        return self.world.person(ref).public(self.world.app_ids())

    def oauth_code(self, ref: str, scope: str = "snsapi_base", snapshot: bool = False) -> str:
        return self.world.oauth_code(self.world.oa["appid"], scope, self.world.person(ref), snapshot)

    def wx_login(self, ref: str) -> str:
        return self.world.js_code(self.world.person(ref))

    def open_miniprogram(self, ref: str, scene: str | None, page: str = "pages/index/index") -> dict:
        """What the mini-program sees when this person opens it from a code with `scene`."""
        query = {"scene": scene} if scene else {}
        return {"js_code": self.wx_login(ref), "path": page, "query": query,
                "scene_code": 1047 if scene else 1001, "openid": self.person(ref)["openids"][self.world.mini["appid"]]}

    def phone_code(self, ref: str) -> str:
        return self.world.phone_code(self.world.person(ref))

    def grant_consent(self, ref: str, template_id: str, count: int = 1) -> None:
        self.world.grant_consent(self.world.person(ref), template_id, count)

    def request_subscribe(self, ref: str, choices: dict) -> dict:
        out = self.world.request_subscribe(self.world.person(ref), choices)
        self.save()
        return out

    def push_template_reports(self) -> list[dict]:
        """Deliver the TEMPLATESENDJOBFINISH event of every template message sent since the last call, as
        WeChat does a moment after the send (the embedded default and tests call this; see _sim)."""
        results = []
        for report in self.world.take_template_reports():
            p = self.world.person(report["openid"])
            results.append(self._push(self._event(p, "TEMPLATESENDJOBFINISH", MsgID=report["msgid"],
                                                  Status=report["status"])))
        return results

    def _schedule_template_reports(self) -> None:
        delay = self.config.get("template_report_delay")
        if delay is None:
            return
        timer = threading.Timer(float(delay), self._push_reports_quietly)
        timer.daemon = True
        timer.start()

    def _push_reports_quietly(self) -> None:
        try:
            self.push_template_reports()
        except Exception:  # a push that cannot be delivered is recorded in world.pushes already
            pass

    # --- message push ---
    def _create_time(self, openid: str) -> int:
        # Distinct events of one user get distinct CreateTimes, so FromUserName+CreateTime dedupe stays exact.
        with self.world.lock:
            t = max(int(time.time()), self._last_push_time.get(openid, 0) + 1)
            self._last_push_time[openid] = t
            return t

    def _push(self, fields: dict) -> dict:
        oa = self.world.oa
        result = pushes.deliver(oa, fields, repeat=self.faults.push_repeat)
        with self.world.lock:
            self.world.pushes.append(result)
        return result

    def _event(self, person, event: str, **extra) -> dict:
        openid = person.openid(self.world.oa["appid"])
        return {"ToUserName": self.world.oa.get("original_id", "gh_emulator0001"), "FromUserName": openid,
                "CreateTime": self._create_time(openid), "MsgType": "event", "Event": event, **extra}

    def scan(self, ref: str, ticket: str | None = None, scene: str | None = None) -> dict:
        """The person scans a parametric QR code: subscribe+qrscene_ when not following, SCAN otherwise.

        The code is named by its `ticket`, or by its `scene` (what a person holding the printed code has: the
        newest live code this account made for that scene)."""
        p = self.world.person(ref)
        if ticket is None:
            if not scene:
                raise ValueError("give the ticket or the scene of the code to scan")
            ticket = self.world.ticket_for_scene(scene)
            if ticket is None:
                raise KeyError(f"this account has made no live QR code for scene {scene!r}")
        t = self.world.ticket(ticket)
        if t is None:
            raise KeyError(f"unknown or expired ticket {ticket!r}")
        if p.following:
            fields = self._event(p, "SCAN", EventKey=t["scene"], Ticket=ticket)
        else:
            fields = self._event(p, "subscribe", EventKey=f"qrscene_{t['scene']}", Ticket=ticket)
            self.world.follow(p, t["scene"])
        self.save()
        return self._push(fields)

    def follow(self, ref: str) -> dict:
        """The person follows the service account without a code (search, a shared card): a plain subscribe."""
        p = self.world.person(ref)
        if p.following:
            raise ValueError("this person follows the account already")
        self.world.follow(p)
        return self._push(self._event(p, "subscribe", EventKey=""))

    def unsubscribe(self, ref: str) -> dict:
        p = self.world.person(ref)
        p.following = False
        self.save()
        return self._push(self._event(p, "unsubscribe", EventKey=""))

    def send_text(self, ref: str, content: str) -> dict:
        p = self.world.person(ref)
        openid = p.openid(self.world.oa["appid"])
        import secrets

        return self._push({"ToUserName": self.world.oa.get("original_id", "gh_emulator0001"),
                           "FromUserName": openid, "CreateTime": self._create_time(openid), "MsgType": "text",
                           "Content": content, "MsgId": secrets.randbits(63)})


def create_emulator(config: dict) -> Flask:
    """config: {"oa": {appid, secret, token, encoding_aes_key, callback_url}, "mini": {appid, secret},
    "pay": {mch_id, api_v3_key, merchant_public_key, merchant_serial, platform_private_key,
    platform_public_key_id, balance?, auto_confirm?}, plus optional token_ttl, permanent_qr_quota,
    jscode_rate_limit, published_pages, notify_retry_delays}."""
    from wechat.emulator import pay_routes, sim_routes, wx_routes

    app = Flask("wechat_emulator")
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    emulator = Emulator(config)
    app.extensions["wechat_emulator"] = emulator
    app.register_blueprint(wx_routes.bp)
    app.register_blueprint(pay_routes.bp)
    app.register_blueprint(sim_routes.bp)

    if emulator.store is not None:
        @app.before_request
        def _read_world():
            emulator.reload_if_changed()

        @app.after_request
        def _keep_world(response):
            emulator.save()
            return response

    @app.get("/")
    def index():
        return jsonify({"emulator": "wechat", "apps": emulator.world.app_ids(),
                        "mch_id": emulator.config["pay"]["mch_id"],
                        "try": "/connect/oauth2/authorize?" + urlencode(
                            {"appid": emulator.world.oa["appid"], "redirect_uri": "http://127.0.0.1/",
                             "response_type": "code", "scope": "snsapi_userinfo", "state": "demo"})})

    return app


def config_for(settings, *, platform_private_key: str | None = None, merchant_public_key: str | None = None) -> dict:
    """Emulator config mirroring Liebian's settings (the other side of the same accounts)."""
    from wechat.keys import dev_key, dev_keys_dir, merchant_private_pem, public_pem_of

    return {
        "oa": {"appid": settings.wechat_app_id, "secret": settings.wechat_app_secret, "token": settings.wechat_token,
               "encoding_aes_key": settings.wechat_encoding_aes_key,
               "callback_url": settings.public_base_url + "/wechat/callback"},
        "mini": {"appid": settings.wechat_miniapp_id, "secret": settings.wechat_miniapp_secret},
        "pay": {"mch_id": settings.wechatpay_mch_id, "api_v3_key": settings.wechatpay_api_v3_key,
                "merchant_public_key": merchant_public_key or public_pem_of(merchant_private_pem(settings)),
                "merchant_serial": settings.wechatpay_cert_serial,
                "platform_private_key": platform_private_key or dev_key("platform", dev_keys_dir(settings)),
                "platform_public_key_id": settings.wechatpay_public_key_id},
    }


def create_emulator_for(settings) -> Flask:
    """The embedded default: the emulator plays WeChat for exactly the accounts in `settings`, its world kept in
    the instance folder."""
    return create_emulator({**config_for(settings), "state_file": str(Path(settings.instance_dir) / STATE_FILE)})
