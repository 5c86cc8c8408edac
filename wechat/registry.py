"""Handlers for what WeChat calls us with, registered by domain packages (kept free of Flask).

Push handlers: `register_push_handler(key, fn)`, `fn(session, message, rt) -> str | None` (reply text; rt is the
process runtime). Keys are `wechat.push.handler_key(message)`: "subscribe" (plain follow), "subscribe_scan"
(follow by scanning a parametric QR; `message.scene_id` is the scene without "qrscene_"), "scan" (a follower scanned),
"unsubscribe", "click", "view", "text", "image", ... and "*" for every message.
A handler may take over the delivery claim (`claims_delivery=<predicate>`): when every handler for a message
says so, the callback does not claim the delivery itself and marks `message.delivery_claimed = False`; the
handler then dedupes WeChat's retries atomically with its own write (one Redis call instead of two).
Transfer notifications: `register_transfer_notification_handler(fn)`, `fn(session, resource: dict, rt)`.

Domain packages put their registrations in `app/<domain>/wechat_handlers.py`; those modules are imported on
first dispatch (like `import_all_models`), so registration never depends on import order elsewhere."""
from __future__ import annotations

import threading
from typing import Callable

from app.modules import import_domain_modules

_push: dict[str, list[Callable]] = {}
_transfer: list[Callable] = []
_loaded = False
_lock = threading.Lock()


def register_push_handler(event_type: str, fn: Callable, claims_delivery: Callable[[], bool] | None = None
                          ) -> Callable:
    if claims_delivery is not None:
        fn.claims_delivery = claims_delivery
    with _lock:
        handlers = _push.setdefault(event_type.lower(), [])
        if fn not in handlers:
            handlers.append(fn)
    return fn


def register_transfer_notification_handler(fn: Callable) -> Callable:
    with _lock:
        if fn not in _transfer:
            _transfer.append(fn)
    return fn


def load_handler_modules() -> None:
    global _loaded
    if _loaded:
        return
    import_domain_modules("wechat_handlers")
    _loaded = True


def push_handlers(key: str) -> list[Callable]:
    load_handler_modules()
    return list(_push.get(key, [])) + list(_push.get("*", []))


def handlers_claim_delivery(handlers: list[Callable], rt) -> bool:
    """True when every handler dedupes the delivery itself (see the module docstring)."""
    return bool(handlers) and all(getattr(h, "claims_delivery", None) is not None and h.claims_delivery(rt)
                                  for h in handlers)


def transfer_notification_handlers() -> list[Callable]:
    load_handler_modules()
    return list(_transfer)


def unregister_push_handler(event_type: str, fn: Callable) -> None:
    with _lock:
        handlers = _push.get(event_type.lower(), [])
        if fn in handlers:
            handlers.remove(fn)


def unregister_transfer_notification_handler(fn: Callable) -> None:
    with _lock:
        if fn in _transfer:
            _transfer.remove(fn)


class isolated:
    """Tests: run with an empty registry (domain handlers set aside), restored afterwards."""

    def __enter__(self):
        global _loaded
        with _lock:
            self._was_loaded, _loaded = _loaded, True  # no domain modules imported while isolated
            self._saved = ({k: list(v) for k, v in _push.items()}, list(_transfer))
            _push.clear()
            _transfer.clear()
        return self

    def __exit__(self, *exc):
        global _loaded
        with _lock:
            _loaded = self._was_loaded
            _push.clear()
            _push.update(self._saved[0])
            _transfer[:] = self._saved[1]
