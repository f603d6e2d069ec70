"""The Host header is the visitor's: redirects never repeat it, and requests for hosts that are
not ours are refused (CLICKTOCHAT_TRUSTED_HOSTS)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from clicktochat.app import create_app
from clicktochat.hosts import allowed_hosts, host_name
from clicktochat.settings import Settings
from conftest import call

EVIL = "evil.example"


@pytest.fixture
def any_host(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """An app that trusts every host, so the redirects themselves are what is tested; and the demo's token."""
    relaxed = dataclasses.replace(settings, trusted_hosts="*", demo=True)
    with TestClient(create_app(relaxed), base_url="https://chat.example.com", follow_redirects=False) as client:
        store = client.app.state.service.store  # type: ignore[attr-defined]
        yield client, json.loads(call(client, store.get_meta("demo")))["token"]  # type: ignore[arg-type]


REDIRECTS = [
    ("/admin", "/admin/"), ("/admin?x=1", "/admin/?x=1"), ("/s/vetrina/", "/s/vetrina"), ("/healthz/", "/healthz"),
    ("/healthz//", "/healthz"), ("/widget.js/", "/widget.js"), ("/api/v1/openapi.json/", "/api/v1/openapi.json"),
    ("/c/{token}/", "/c/{token}"), ("/poster/s/vetrina/", "/poster/s/vetrina"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "location"), REDIRECTS)
@pytest.mark.parametrize("host", [EVIL, "chat.example.com", f"{EVIL}:8443", "[::1]:8000"])
def test_slash_redirects_are_relative_whatever_the_host(
    any_host: tuple[TestClient, str], path: str, location: str, host: str
) -> None:
    client, token = any_host
    response = client.get(path.format(token=token), headers={"host": host})
    assert response.status_code == 307
    assert response.headers["location"] == location.format(token=token)


def test_a_redirect_leads_to_a_page_and_never_to_another_site(any_host: tuple[TestClient, str]) -> None:
    client, _ = any_host
    assert client.get("/admin", follow_redirects=True).url.path == "/admin/login"
    for path in ("//evil.example/", "//evil.example", "/\\evil.example/", "/nothing/", "/api/v1/", "/admin/"):
        location = client.get(path, headers={"host": EVIL}).headers.get("location", "")
        assert not location.startswith(("//", "/\\", "http")) and EVIL not in location, (path, location)
    assert client.get("/nothing/").status_code == 404


@pytest.mark.parametrize("host", [EVIL, "chat.example.com.evil.example", "example.com", "", "chat.example.co",
                                  "chat.example.com:443@evil.example", "[::1]:80@evil.example"])  # an attacker's
@pytest.mark.parametrize("path", ["/admin", "/admin/", "/s/vetrina/", "/", "/api/v1/links", "/widget.js/"])
def test_other_hosts_are_refused(client: TestClient, host: str, path: str) -> None:
    page = client.get(path, headers={"host": host, "accept": "text/html"})
    assert page.status_code == 400 and "location" not in page.headers
    if not path.startswith("/api/"):  # the API answers problem+json whatever the Accept
        assert "text/html" in page.headers["content-type"] and "host name" in page.text
        if host:  # not even in the page's stylesheet link: the README says no one can write their domain in a page
            assert host.split(":")[0] not in page.text.replace("chat.example.com", "")
    problem = client.get(path, headers={"host": host, "accept": "application/json"})
    assert problem.status_code == 400 and problem.headers["content-type"] == "application/problem+json"
    assert "CLICKTOCHAT_TRUSTED_HOSTS" in problem.json()["detail"]


@pytest.mark.parametrize("path", ["/", "/admin/login", "/s/nosuch"])
def test_pages_link_their_assets_by_paths_that_are_served(client: TestClient, path: str) -> None:
    """Pages name their stylesheets and scripts by a path from the root (never the Host's URL),
    the dashboard's included, whose pages live under a mount."""
    page = client.get(path, headers={"accept": "text/html"})
    assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js)\?v=[^"]+)"', page.text)
    assert assets, page.text
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize("host", ["chat.example.com", "CHAT.example.com", "chat.example.com.", "chat.example.com:443",
                                  "127.0.0.1:8000"])  # the last: a proxy on this machine that keeps its upstream's
def test_our_host_is_served_however_it_is_written(client: TestClient, host: str) -> None:
    assert client.get("/", headers={"host": host}).status_code == 200
    assert client.get("/admin", headers={"host": host}).headers["location"] == "/admin/"


def test_health_checks_may_name_any_address(client: TestClient) -> None:
    assert client.get("/healthz", headers={"host": "10.0.0.7:8000"}).status_code == 200


def test_a_configured_list_replaces_the_base_urls_host(settings: Settings) -> None:
    listed = dataclasses.replace(settings, trusted_hosts="links.example.org, www.example.org")
    with TestClient(create_app(listed), base_url="https://links.example.org") as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"host": "www.example.org"}).status_code == 200
        assert client.get("/", headers={"host": "chat.example.com"}).status_code == 400


def test_the_base_urls_host_and_the_loopback_names_are_trusted_by_default() -> None:
    assert allowed_hosts("", "http://127.0.0.1:8000") == {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts("", "http://localhost:8000") == {"127.0.0.1", "localhost", "::1"}
    # A proxy on the same machine that does not pass Host on (nginx's default) names its upstream.
    assert allowed_hosts("", "https://chat.example.com") == {"chat.example.com", "127.0.0.1", "localhost", "::1"}
    assert allowed_hosts("*", "https://chat.example.com") is None
    assert allowed_hosts("A.example.com., [::1]", "https://chat.example.com") == {"a.example.com", "::1"}


@pytest.mark.parametrize(("raw", "name"), [("Chat.Example.com:8000", "chat.example.com"), ("[::1]:8000", "::1"),
                                           ("[::1", ""), ("", ""), ("a.example.", "a.example"),
                                           ("a.example:", "a.example"), ("a.example:80@evil.example", ""),
                                           ("[::1]x", "")])  # fmt: skip
def test_host_names_are_read_without_port_case_or_final_dot(raw: str, name: str) -> None:
    assert host_name(raw) == name


def test_urls_are_not_host_names(db_path: str) -> None:
    with pytest.raises(ValueError, match="TRUSTED_HOSTS"):
        Settings(db=db_path, trusted_hosts="https://chat.example.com")


