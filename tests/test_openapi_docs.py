"""The API description documents every success answer, and /docs works offline: the page and every asset it
references are served by the app itself (from the Swagger UI files of a package installed with the project)."""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import pytest

DEFAULT_DESCRIPTION = "Successful response"  # APIFlask's placeholder for an undocumented success
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def test_every_operation_documents_a_success_response_with_a_description(spec):
    undocumented = []
    for name, op in _operations(spec):
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        redirects = {code: r for code, r in op["responses"].items() if code.startswith("3")}
        described = [r for r in (success or redirects).values()
                     if r.get("description") and r["description"] != DEFAULT_DESCRIPTION]
        if not described:
            undocumented.append(name)
    assert len(list(_operations(spec))) >= 70
    assert undocumented == []


def test_every_2xx_says_what_it_returns(spec):
    """A JSON success names its schema (a component with properties); other types name their media type."""
    schemas = spec["components"]["schemas"]
    vague = []
    for name, op in _operations(spec):
        for code, response in op["responses"].items():
            if not code.startswith("2"):
                continue
            content = response.get("content") or {}
            if not content:
                vague.append(f"{name} {code}: no content")
            for media, body in content.items():
                schema = body.get("schema") or {}
                if media == "application/json":
                    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                    if not schemas.get(ref, {}).get("properties"):
                        vague.append(f"{name} {code}: {media} without a schema")
                elif schema.get("format") != "binary":
                    vague.append(f"{name} {code}: {media}")
    assert vague == []


def test_a_creating_post_documents_201_and_answers_201(client, spec, rt, session):
    from app.identity import tokens
    from app.identity.operators import create_operator

    assert "201" in spec["paths"]["/api/admin/stores"]["post"]["responses"]
    assert "200" not in spec["paths"]["/api/admin/stores"]["post"]["responses"]
    op = create_operator(session, "docs201", "a-long-password-123")
    session.commit()
    headers = {"Authorization": "Bearer " + tokens.issue(rt.settings.secret_key, "operator", op.id)}
    assert client.post("/api/admin/stores", json={"name": "S"}, headers=headers).status_code == 201


def test_docs_page_and_every_asset_it_references_are_served_by_the_app(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(refs) >= 4  # stylesheet, favicon, bundle, standalone preset
    for ref in refs:
        url = urlparse(urljoin("http://localhost/docs", ref))
        assert url.netloc == "localhost", f"/docs references {ref}: not this app (a CDN?)"
        with client.get(url.path) as asset:  # static files are streamed: close them
            assert asset.status_code == 200, ref
            assert len(asset.get_data()) > 500, ref
    with client.get(next(r for r in refs if r.endswith("swagger-ui-bundle.js"))) as bundle:
        assert "SwaggerUIBundle" in bundle.get_data(as_text=True)
    assert "url: \"/openapi.json\"" in html
    assert client.get("/openapi.json").status_code == 200


def test_the_asset_route_serves_only_the_swagger_ui_files(client):
    with client.get("/docs/assets/swagger-ui.css") as css:
        assert css.mimetype == "text/css"
    for name in ("../__init__.py", "LICENSE", "index.css", "..%2F..%2Fapp%2F__init__.py", "oauth2-redirect.html"):
        with client.get(f"/docs/assets/{name}") as r:
            assert r.status_code == 404, name


def test_swagger_ui_can_read_this_openapi_version(client):
    """Swagger UI 5 reads OpenAPI 3.1 (Swagger UI 4 shows a blank 'unsupported version' page for it)."""
    from app.api.docs_assets import DIST

    major = int((DIST / "VERSION").read_text().strip().lstrip("v").split(".")[0])
    openapi = client.get("/openapi.json").get_json()["openapi"]
    assert openapi.startswith("3.0") or major >= 5
