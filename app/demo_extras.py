"""Demo data of the later domains (poster templates, orders and commissions), seeded after the referral tree."""
from __future__ import annotations

import copy


def seed_extras(session, *, captain, partner) -> str:
    notes = [_poster_template(session)]
    return "; ".join(n for n in notes if n)


def _poster_template(session) -> str:
    from app.posters.storage import poster_store
    from app.posters.templates import create_template, upload_background
    from app.runtime import get_runtime
    from posters.samples import REFERENCE_SPEC, photo_like_background

    store = poster_store(get_runtime().settings)
    background = upload_background(session, store, photo_like_background(), "system:demo")
    spec = copy.deepcopy(REFERENCE_SPEC)
    spec["background"] = {"sha256": background.sha256, "color": "#f4efe6"}
    template = create_template(session, "system:demo", "默认海报", spec)
    return f"poster template #{template.id}"
