"""Content address of a poster: the hash of everything that changes its pixels."""
from __future__ import annotations

import hashlib
import json

from posters.render import PosterInputs, output_format
from posters.spec import TemplateSpec

# Bump when the renderer or its fonts change what the same inputs look like, so stale posters are not served.
RENDERER_VERSION = 1


def poster_key(spec: TemplateSpec, inputs: PosterInputs) -> str:
    doc = {
        "r": RENDERER_VERSION,
        "t": spec.fingerprint,
        "n": inputs.nickname,
        "a": hashlib.sha256(inputs.avatar).hexdigest() if inputs.avatar else None,
        "q": inputs.qr.fingerprint() if inputs.qr else None,
        "p": {k: v for k, v in sorted(inputs.placeholders.items())},
        "f": output_format(spec, inputs),
    }
    blob = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:40]
