"""Render once per content address; every later request for the same inputs is a store lookup."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from posters.keys import poster_key
from posters.render import CONTENT_TYPES, EXTENSIONS, PosterInputs, output_format, render_poster
from posters.spec import TemplateSpec
from posters.store import BlobStore


@dataclass(frozen=True)
class PosterResult:
    key: str
    name: str  # the store name, also the URL path under /posters/ ... e.g. posters/<key>.jpg
    format: str
    data: bytes
    rendered: bool  # False when it came from the store

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        return self.name.split("/", 1)[1]


def poster_name(key: str, fmt: str) -> str:
    return f"posters/{key}.{EXTENSIONS[fmt]}"


def get_or_render(store: BlobStore, spec: TemplateSpec, inputs: PosterInputs,
                  load_background: Callable[[], bytes | None]) -> PosterResult:
    """The stored poster for these inputs, rendering and storing it first if it is not there yet.

    load_background is only called on a miss, so a hit reads one blob and nothing else."""
    fmt = output_format(spec, inputs)
    key = poster_key(spec, inputs)
    name = poster_name(key, fmt)
    data = store.get(name)
    if data is not None:
        return PosterResult(key, name, fmt, data, rendered=False)
    data = render_poster(spec, load_background(), inputs)
    store.put(name, data)
    return PosterResult(key, name, fmt, data, rendered=True)
