"""The OpenAPI document: valid OpenAPI 3.1, in step with the routes, and true of what the
running app answers (real responses validated with the document's own schemas)."""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.testclient import TestClient

from clicktochat import api, chat_api, notify_api, optin_api

API = "/api/v1"
DOC_URI = "urn:clicktochat:openapi"
NUMBER = "+39 347 123 4567"


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()  # type: ignore[no-any-return]


def pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def validator(document: dict[str, Any], schema_pointer: str) -> Draft202012Validator:
    """A validator of one schema inside the document; its `#/components/...` refs resolve
    against the whole document."""
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": DOC_URI + schema_pointer}, registry=registry)


def check_response(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """The response's status and media type are documented for the operation, and its body
    validates against the documented schema."""
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method.upper()} {path} does not document {status}"
    media_type = response.headers["content-type"].split(";")[0]
    content = operation["responses"][status]["content"]
    assert media_type in content, f"{method.upper()} {path} {status}: {media_type} not in {sorted(content)}"
    schema_at = pointer("paths", path, method, "responses", status, "content", media_type, "schema")
    validator(document, schema_at).validate(response.json())


def check_request(document: dict[str, Any], method: str, path: str, body: dict[str, Any]) -> None:
    schema_at = pointer("paths", path, method, "requestBody", "content", "application/json", "schema")
    validator(document, schema_at).validate(body)


# -- the document itself --------------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on an invalid document
    assert document["servers"] == [{"url": "https://chat.example.com/api/v1"}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]


def test_every_schema_in_the_document_is_a_valid_json_schema(document: dict[str, Any]) -> None:
    assert set(document["components"]["schemas"]) >= {"Problem", "LinkOut", "SignedLinkOut", "AgentOut"}
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    served = set()
    for route in [*api.routes, *chat_api.routes, *notify_api.routes, *optin_api.routes]:
        if route.path == "/openapi.json":
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {business_id:int} -> {business_id}
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET route
                served.add((method.lower(), path))
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == documented
    assert len(served) == 42


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            declared = [(p["name"], p["in"], p["required"]) for p in parameters if p["in"] == "path"]
            assert declared == [(name, "path", True) for name in names], (method, path)
            assert all(p["in"] in ("path", "query") or (p["in"], p["name"]) == ("header", "If-Match")
                       for p in parameters)  # fmt: skip


def test_what_honours_if_match_says_so(document: dict[str, Any]) -> None:
    """The four things one edits say they answer with an ETag and take If-Match, and that a
    stale one is a 412 (tests/test_versions.py checks the server does)."""
    for path in ("/links/{slug}", "/businesses/{business_id}", "/agents/{agent_id}", "/widgets/{widget_id}"):
        patch = document["paths"][path]["patch"]
        assert ("If-Match", "header") in [(p["name"], p["in"]) for p in patch["parameters"]], path
        assert "412" in patch["responses"] and "ETag" in patch["responses"]["200"]["headers"], path
        assert "ETag" in document["paths"][path]["get"]["responses"]["200"]["headers"], path


def test_stats_responses_match_the_document(client: TestClient, auth: dict[str, str], document: dict[str, Any]) -> None:
    query = [p["name"] for p in document["paths"]["/stats"]["get"]["parameters"]]
    assert query == ["from", "to", "by", "business", "link", "campaign", "agent", "widget", "channel", "limit"]
    for by in ("day", "agent", "referrer"):
        check_response(document, "get", "/stats", client.get(f"{API}/stats", params={"by": by}, headers=auth))
    csv = client.get(f"{API}/stats.csv", headers=auth)
    assert "text/csv" in document["paths"]["/stats.csv"]["get"]["responses"][str(csv.status_code)]["content"]
    check_response(document, "get", "/stats", client.get(f"{API}/stats", params={"by": "x"}, headers=auth))


def test_operations_with_a_body_document_it_and_415(document: dict[str, Any]) -> None:
    with_body = {(m, p) for p, item in document["paths"].items() for m, op in item.items() if "requestBody" in op}
    assert with_body == {
        ("post", "/links"), ("patch", "/links/{slug}"), ("post", "/businesses"), ("patch", "/businesses/{business_id}"),
        ("post", "/businesses/{business_id}/agents"), ("patch", "/agents/{agent_id}"),
        ("put", "/businesses/{business_id}/logo"), ("post", "/widgets"), ("patch", "/widgets/{widget_id}"),
        ("post", "/whatsapp-numbers"), ("post", "/conversations/{conversation_id}/messages"),
        ("post", "/notifications"), ("post", "/optins"),
    }  # fmt: skip
    for method, path in with_body:
        responses = document["paths"][path][method]["responses"]
        assert {"400", "401", "415", "422"} <= set(responses), (method, path)


def test_request_schemas_refuse_what_the_api_refuses(document: dict[str, Any]) -> None:
    check_request(document, "post", "/links", {"to": NUMBER, "short": False, "text": "Ciao", "expires_in": 60})
    for bad in ({"to": NUMBER, "colour": "red"}, {"agent_id": "5"}, {"to": NUMBER, "mode": "bad"},
                {"to": NUMBER, "expires_in": 0}):  # fmt: skip
        with pytest.raises(ValidationError):
            check_request(document, "post", "/links", bad)
    check_request(
        document,
        "post",
        "/businesses/{business_id}/agents",
        {"name": "A", "address": NUMBER, "hours": "mon 09:00-10:00"},
    )
    with pytest.raises(ValidationError):
        check_request(document, "post", "/businesses/{business_id}/agents", {"name": "A"})


# -- real responses against the document ----------------------------------------------


def test_link_responses_match_the_document(client: TestClient, auth: dict[str, str], document: dict[str, Any]) -> None:
    shop = client.post(f"{API}/businesses", json={"name": "Dolce"}, headers=auth)
    check_response(document, "post", "/businesses", shop)
    agent = client.post(
        f"{API}/businesses/{shop.json()['id']}/agents", json={"name": "A", "address": NUMBER}, headers=auth
    )

    bodies: list[dict[str, Any]] = [
        {"to": NUMBER, "text": "Ciao 🍰", "campaign": "c", "source": "s", "expires_in": 3600},
        {"to": NUMBER, "slug": "custom", "mode": "landing"},
        {"agent_id": agent.json()["id"]},  # nulls where the destination depends on the agent
        {"business_id": shop.json()["id"], "slug": "shop"},
    ]
    for body in bodies:
        check_request(document, "post", "/links", body)
        response = client.post(f"{API}/links", json=body, headers=auth)
        assert response.status_code == 201
        check_response(document, "post", "/links", response)
        slug = response.json()["slug"]
        check_response(document, "get", "/links/{slug}", client.get(f"{API}/links/{slug}", headers=auth))

    signed = client.post(f"{API}/links", json={"to": NUMBER, "short": False, "expires_in": 60}, headers=auth)
    assert signed.status_code == 201 and signed.json()["short"] is False
    check_response(document, "post", "/links", signed)
    signed_to_agent = client.post(f"{API}/links", json={"agent_id": agent.json()["id"], "short": False}, headers=auth)
    assert signed_to_agent.status_code == 422  # signed links carry a fixed number
    check_response(document, "post", "/links", signed_to_agent)

    listed = client.get(f"{API}/links", headers=auth)
    assert len(listed.json()["links"]) == 4
    check_response(document, "get", "/links", listed)
    check_response(
        document, "patch", "/links/{slug}", client.patch(f"{API}/links/custom", json={"text": "x"}, headers=auth)
    )
    check_response(document, "delete", "/links/{slug}", client.delete(f"{API}/links/custom", headers=auth))


def test_the_201_schema_tells_short_and_signed_links_apart(
    client: TestClient, auth: dict[str, str], document: dict[str, Any]
) -> None:
    schema = document["paths"]["/links"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema == {
        "oneOf": [{"$ref": "#/components/schemas/LinkOut"}, {"$ref": "#/components/schemas/SignedLinkOut"}]
    }
    short = client.post(f"{API}/links", json={"to": NUMBER}, headers=auth).json()
    signed = client.post(f"{API}/links", json={"to": NUMBER, "short": False}, headers=auth).json()
    link_out = validator(document, "#/components/schemas/LinkOut")
    signed_out = validator(document, "#/components/schemas/SignedLinkOut")
    assert link_out.is_valid(short) and not signed_out.is_valid(short)
    assert signed_out.is_valid(signed) and not link_out.is_valid(signed)


def test_business_and_agent_responses_match_the_document(
    client: TestClient, auth: dict[str, str], document: dict[str, Any]
) -> None:
    shop = client.post(f"{API}/businesses", json={"name": "Dolce", "timezone": "Europe/Rome"}, headers=auth)
    assert shop.status_code == 201
    check_response(document, "post", "/businesses", shop)
    business_id = shop.json()["id"]
    check_response(document, "get", "/businesses", client.get(f"{API}/businesses", headers=auth))
    check_response(
        document, "get", "/businesses/{business_id}", client.get(f"{API}/businesses/{business_id}", headers=auth)
    )

    for body in ({"name": "Always", "address": NUMBER},
                 {"name": "Hours", "address": NUMBER, "hours": "mon-fri 09:00-18:00; sat 10:00-12:00",
                  "timezone": "Asia/Tokyo"}):  # fmt: skip
        agent = client.post(f"{API}/businesses/{business_id}/agents", json=body, headers=auth)
        assert agent.status_code == 201
        check_response(document, "post", "/businesses/{business_id}/agents", agent)
        agent_id = agent.json()["id"]
        check_response(document, "get", "/agents/{agent_id}", client.get(f"{API}/agents/{agent_id}", headers=auth))
        patched = client.patch(f"{API}/agents/{agent_id}", json={"hours": {"sun": ["10:00-11:00"]}}, headers=auth)
        check_response(document, "patch", "/agents/{agent_id}", patched)
    agents = client.get(f"{API}/businesses/{business_id}/agents", headers=auth)
    assert len(agents.json()["agents"]) == 2
    check_response(document, "get", "/businesses/{business_id}/agents", agents)

    patched = client.patch(f"{API}/businesses/{business_id}", json={"fallback_agent_id": agent_id}, headers=auth)
    assert patched.json()["fallback_agent_id"] == agent_id
    check_response(document, "patch", "/businesses/{business_id}", patched)

    deleted = client.delete(f"{API}/agents/{agent_id}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert "204" in document["paths"]["/agents/{agent_id}"]["delete"]["responses"]


def test_problem_responses_match_the_document(
    client: TestClient, auth: dict[str, str], document: dict[str, Any]
) -> None:
    invalid = client.post(f"{API}/links", json={"to": "12", "colour": "red"}, headers=auth)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "colour"
    check_response(document, "post", "/links", invalid)

    bad_timezone = client.post(f"{API}/businesses", json={"name": "x", "timezone": "Mars/Olympus"}, headers=auth)
    assert bad_timezone.status_code == 422
    check_response(document, "post", "/businesses", bad_timezone)

    malformed = client.post(f"{API}/links", content=b"{bad", headers=auth | {"content-type": "application/json"})
    assert malformed.status_code == 400
    check_response(document, "post", "/links", malformed)

    not_json = client.post(f"{API}/links", content=b"to=1", headers=auth | {"content-type": "text/plain"})
    assert not_json.status_code == 415
    check_response(document, "post", "/links", not_json)

    unauthorized = client.get(f"{API}/links")
    assert unauthorized.status_code == 401
    check_response(document, "get", "/links", unauthorized)

    missing = client.get(f"{API}/links/nope", headers=auth)
    assert missing.status_code == 404
    check_response(document, "get", "/links/{slug}", missing)

    shop = client.post(f"{API}/businesses", json={"name": "Dolce"}, headers=auth).json()
    client.post(f"{API}/links", json={"business_id": shop["id"], "slug": "held"}, headers=auth)
    conflict = client.delete(f"{API}/businesses/{shop['id']}", headers=auth)
    assert conflict.status_code == 409
    check_response(document, "delete", "/businesses/{business_id}", conflict)


def test_the_document_is_served_with_the_configured_origin(settings: Any, db_path: str) -> None:
    from dataclasses import replace

    from clicktochat.app import create_app

    other = replace(settings, base_url="https://links.example.org")
    with TestClient(create_app(other), base_url="https://links.example.org") as client:
        assert client.get(f"{API}/openapi.json").json()["servers"] == [{"url": "https://links.example.org/api/v1"}]


# What the server refuses, the document refuses too (issue 11: a schema-driven fuzzer's valid
# requests were refused with 422). Each: (method, path, body); the API must answer 422 and the
# request schema must not validate it.
REFUSED_BODIES = [
    ("post", "/businesses", {"name": ""}),
    ("post", "/businesses", {"name": "   "}),
    ("post", "/businesses", {"name": "Shop", "timezone": "Mars/Olympus"}),
    ("patch", "/businesses/{business_id}", {"name": ""}),
    ("post", "/businesses/{business_id}/agents", {"name": "", "address": NUMBER}),
    ("post", "/businesses/{business_id}/agents", {"name": "Ana", "address": ""}),
    ("patch", "/agents/{agent_id}", {"name": ""}),
    ("post", "/links", {}),  # no destination
    ("post", "/links", {"to": NUMBER, "agent_id": 1}),  # two
    ("post", "/links", {"to": NUMBER, "text": "a" * 1001}),
    ("post", "/links", {"to": NUMBER, "title": "Shop"}),  # a title is for signed links
    ("post", "/links", {"to": NUMBER, "short": False, "slug": "x"}),  # a slug is for short links
    ("post", "/links", {"to": NUMBER, "expires_in": 60, "expires_at": "2030-01-01T00:00:00Z"}),
    ("post", "/links", {"to": NUMBER, "slug": "Not a slug!"}),
    ("patch", "/links/{slug}", {"to": NUMBER, "business_id": 1}),
    ("patch", "/links/{slug}", {"to": None}),
    ("post", "/widgets", {"business_id": 1, "bubble_delay": 601}),
    ("post", "/widgets", {"business_id": 1, "offset_x": -1}),
    ("post", "/widgets", {"business_id": 1, "colour": "red"}),
    ("post", "/widgets", {"business_id": 1, "allowed_domains": ["https://x.com/"]}),
    ("post", "/widgets", {"business_id": 1, "show_on": ["shop"]}),
    ("post", "/widgets", {"business_id": 1, "id": "Bad id!"}),
    ("patch", "/widgets/{widget_id}", {"scroll": 101}),
    ("post", "/whatsapp-numbers", {"business_id": 1, "phone_number_id": "abc", "waba_id": "1234567",
                                   "access_token": "x" * 30, "app_secret": "y" * 20, "verify_token": "z" * 10}),
    ("post", "/whatsapp-numbers", {"business_id": 1, "phone_number_id": "1234567", "waba_id": "1234567",
                                   "access_token": "short", "app_secret": "y" * 20, "verify_token": "z" * 10}),
    ("post", "/conversations/{conversation_id}/messages", {"text": ""}),
    ("post", "/conversations/{conversation_id}/messages", {"text": "  \n "}),
    ("post", "/conversations/{conversation_id}/messages", {"text": "ok", "idempotency_key": "has spaces"}),
    ("post", "/conversations/{conversation_id}/messages", {"text": "ok", "idempotency_key": ""}),
    ("post", "/businesses", {"name": "w\u0097S"}),  # found by a schema-driven fuzzer, as the three below
    ("post", "/businesses/{business_id}/agents", {"name": "0", "channels": None}),
    ("patch", "/agents/{agent_id}", {"channel": "call"}),
    ("post", "/notifications", {"to": NUMBER, "topic": "orders", "template": "t", "language": "it",
                                "idempotency_key": ""}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body"), REFUSED_BODIES)
def test_the_document_refuses_what_the_server_refuses(
    client: TestClient, auth: dict[str, str], document: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        check_request(document, method, path, body)
    shop = client.post(f"{API}/businesses", json={"name": "Dolce"}, headers=auth).json()
    agent = client.post(f"{API}/businesses/{shop['id']}/agents", json={"name": "Ana", "address": NUMBER},
                        headers=auth).json()  # fmt: skip
    client.post(f"{API}/links", json={"to": NUMBER, "slug": "flyer"}, headers=auth)
    client.post(f"{API}/widgets", json={"business_id": shop["id"], "id": "shop"}, headers=auth)
    url = path.format(business_id=shop["id"], agent_id=agent["id"], slug="flyer", widget_id="shop",
                      conversation_id=1)  # fmt: skip
    body = {k: (shop["id"] if k == "business_id" and v == 1 else v) for k, v in body.items()}
    answer = client.request(method.upper(), API + url, json=body, headers=auth)
    assert answer.status_code == 422, answer.text  # the body is checked first


def test_whole_numbers_written_with_a_fraction_are_taken_as_json_schema_takes_them(
    client: TestClient, auth: dict[str, str], document: dict[str, Any]
) -> None:
    """Found by a schema-driven fuzzer: JSON Schema's `integer` takes 3.0; the server refused it."""
    shop = client.post(f"{API}/businesses", json={"name": "Dolce"}, headers=auth).json()
    agent = client.post(f"{API}/businesses/{shop['id']}/agents", json={"name": "Ana", "address": NUMBER},
                        headers=auth).json()  # fmt: skip
    body = {"agent_id": float(agent["id"]), "slug": "flyer"}
    check_request(document, "post", "/links", body)
    made = client.post(f"{API}/links", json=body, headers=auth)
    assert made.status_code == 201 and made.json()["agent_id"] == agent["id"], made.text
    widget = client.post(f"{API}/widgets", json={"business_id": float(shop["id"]), "scroll": 97.0}, headers=auth)
    assert widget.status_code == 201 and widget.json()["scroll"] == 97, widget.text
    refused = client.post(f"{API}/widgets", json={"business_id": shop["id"], "scroll": 97.5}, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "scroll"


@pytest.mark.parametrize(("parameter", "value"), [("limit", "0"), ("limit", "1001"), ("offset", "-1")])
def test_the_links_list_documents_its_limit_and_offset(
    client: TestClient, auth: dict[str, str], document: dict[str, Any], parameter: str, value: str
) -> None:
    (declared,) = [p for p in document["paths"]["/links"]["get"]["parameters"] if p["name"] == parameter]
    with pytest.raises(ValidationError):
        Draft202012Validator(declared["schema"]).validate(int(value))
    assert client.get(f"{API}/links", params={parameter: value}, headers=auth).status_code == 422


@pytest.mark.parametrize(("parameter", "value"), [("by", ""), ("by", "colour"), ("limit", "0"), ("channel", "fax"),
                                                  ("business", "0"), ("link", "Not a slug")])  # fmt: skip
def test_the_stats_parameters_are_declared_as_the_server_checks_them(
    client: TestClient, auth: dict[str, str], document: dict[str, Any], parameter: str, value: str
) -> None:
    (declared,) = [p for p in document["paths"]["/stats"]["get"]["parameters"] if p["name"] == parameter]
    schema = declared["schema"]
    with pytest.raises(ValidationError):
        Draft202012Validator(schema).validate(int(value) if schema["type"] == "integer" else value)
    assert client.get(f"{API}/stats", params={parameter: value}, headers=auth).status_code == 422


def test_every_integer_the_server_bounds_has_its_bounds_in_the_document(document: dict[str, Any]) -> None:
    """Found by a schema-driven fuzzer: `offset=198520826590` and `business=2**64` passed the
    document and were refused by the server, and pydantic's ge/le on an optional field never
    reached it."""
    unbounded: list[str] = []

    components = document["components"]["schemas"]

    def visit(schema: Any, where: str, bounds: frozenset[str] = frozenset()) -> None:
        """`bounds`: those set beside an anyOf (they hold for each of its integers)."""
        if isinstance(schema, dict):
            bounds |= {"minimum" if key == "exclusiveMinimum" else key for key in schema.keys()
                       & {"minimum", "exclusiveMinimum", "maximum"}}  # fmt: skip
            if schema.get("type") == "integer" and not {"minimum", "maximum"} <= bounds:
                unbounded.append(where)
            if isinstance(schema.get("$ref"), str):  # a request's parts, wherever they are defined
                name = schema["$ref"].rsplit("/", 1)[-1]
                visit(components[name], f"{where}->{name}")
            for key, value in schema.items():
                visit(value, f"{where}.{key}", bounds if key in ("anyOf", "oneOf", "allOf") else frozenset())
        elif isinstance(schema, list):
            for n, value in enumerate(schema):
                visit(value, f"{where}[{n}]", bounds)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":  # (a path's id out of range is a 404, as an unknown one is)
                    visit(parameter["schema"], f"{method} {path}?{parameter['name']}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                visit(body["schema"], f"{method} {path} body")
    assert unbounded == []
