"""/docs works offline: Swagger UI's files are served by this app from the Swagger UI distribution that the
`flask-swagger-ui` package ships (pinned in requirements.txt, Swagger UI 5, which reads our OpenAPI 3.1), never
from a CDN (unreachable offline and for many users in mainland China). APIFlask's page template takes the asset
URLs from the config set here; only the package's files are used, not its blueprint."""
from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from apiflask import APIBlueprint, APIFlask
from flask import send_from_directory

from app.errors import NotFound

PREFIX = "/docs/assets"
ASSETS = {  # config key -> file of the bundle
    "SWAGGER_UI_CSS": "swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": "swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": "swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": "favicon-32x32.png",
}
_FILES = frozenset(ASSETS.values())
DIST = Path(flask_swagger_ui.__file__).parent / "dist"

bp = APIBlueprint("docs_assets", __name__, enable_openapi=False)


@bp.get(f"{PREFIX}/<name>")
def asset(name: str):
    if name not in _FILES:
        raise NotFound("No such documentation asset.")
    return send_from_directory(DIST, name, max_age=7 * 86400)


def install(app: APIFlask) -> None:
    app.config.update({key: f"{PREFIX}/{name}" for key, name in ASSETS.items()})
    app.register_blueprint(bp)
