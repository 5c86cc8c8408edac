"""Share posters as a pure function: (template spec, inputs) -> image bytes, plus a content-addressed cache.

Nothing here touches the database, Flask or the network; avatar and mini-program code bytes are fetched by
the caller (app.posters) and passed in, so a render is deterministic and safe to cache by its inputs."""
from posters.cache import PosterResult, get_or_render
from posters.keys import RENDERER_VERSION, poster_key
from posters.render import PosterInputs, QRPayload, render_poster
from posters.spec import SpecError, TemplateSpec, parse_spec
from posters.store import BlobStore, LocalDiskStore

__all__ = [
    "BlobStore", "LocalDiskStore", "PosterInputs", "PosterResult", "QRPayload", "RENDERER_VERSION", "SpecError",
    "TemplateSpec", "get_or_render", "parse_spec", "poster_key", "render_poster",
]
