"""The admin page (``/admin/ui``): login, session cookie, CSRF, search, replay, retry, pause, languages.

On SQLite and PostgreSQL, through the real app; the browser-driven scenario is in
tests/e2e/test_admin_page_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.config import load_settings
from bridge.db.models import InboxEvent, OutboxCommand
from bridge.outbox.pause import paused
from tests.support.admin_kit import TOKEN, Seeded, seed
from tests.support.outbox_kit import runtime_for

UI = "/admin/ui"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _client(db_url: str, token: str = TOKEN, base_url: str = "http://testserver") -> TestClient:
    settings = load_settings(BRIDGE_DATABASE_URL=db_url, BRIDGE_ADMIN_TOKEN=token)
    return TestClient(create_app(settings), base_url=base_url, follow_redirects=False)


def _log_in(client: TestClient, token: str = TOKEN) -> str:
    """Log in through the form; the CSRF token of the new session."""
    form = client.get(f"{UI}/login")
    response = client.post(f"{UI}/login", data={"csrf": _csrf(form.text), "token": token})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{UI}/"
    return _csrf(client.get(f"{UI}/").text)


@pytest.fixture
def seeded(db_url: str) -> Iterator[Seeded]:
    with runtime_for(db_url) as runtime:
        yield seed(runtime)


def test_without_a_token_configured_the_page_does_not_exist(db_url: str) -> None:
    with _client(db_url, token="") as client:
        assert client.get(f"{UI}/").status_code == 404
        assert client.get(f"{UI}/login").status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_login_logout_and_the_session_cookie(db_url: str) -> None:
    with _client(db_url) as client:
        for path in ("/", "/events", "/commands/1"):
            response = client.get(f"{UI}{path}")
            assert response.status_code == 303
            assert response.headers["location"] == f"{UI}/login"
        form = client.get(f"{UI}/login")
        cookie = form.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/admin/ui"):
            assert attribute in cookie
        assert "Secure" not in cookie
        assert form.headers["x-frame-options"] == "DENY"
        wrong = client.post(f"{UI}/login", data={"csrf": _csrf(form.text), "token": "nope"})
        assert wrong.status_code == 401
        assert "Jeton incorrect" in wrong.text
        csrf = _log_in(client)
        assert client.get(f"{UI}/").status_code == 200
        assert client.post(f"{UI}/logout", data={"csrf": csrf}).status_code == 303
        assert client.get(f"{UI}/").headers["location"] == f"{UI}/login"
        # A cookie signed with another key (tampered, or from before a token change) is no session.
        _log_in(client)
        signed = client.cookies["bridge_admin"]
        for value, answer in ((signed, 200), (signed[:-2] + "xx", 303), ("e30.forged.sig", 303)):
            client.cookies.clear()
            client.cookies.set("bridge_admin", value)
            assert client.get(f"{UI}/").status_code == answer
    with _client(db_url, base_url="https://testserver") as client:
        assert "Secure" in client.get(f"{UI}/login").headers["set-cookie"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_post_needs_the_sessions_csrf_token(db_url: str, seeded: Seeded) -> None:
    with _client(db_url) as client:
        login = client.get(f"{UI}/login")
        refused = client.post(f"{UI}/login", data={"token": TOKEN})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        assert login.status_code == 200
        csrf = _log_in(client)
        posts = [
            f"{UI}/delivery/pause",
            f"{UI}/events/{seeded.failed_event}/replay",
            f"{UI}/commands/{seeded.dead}/retry",
            f"{UI}/events/replay",
            f"{UI}/logout",
        ]
        for path in posts:
            assert client.post(path, data={"state": "failed"}).status_code == 403
            assert client.post(path, data={"csrf": csrf + "x"}).status_code == 403
        not_a_form = client.post(posts[0], content=b'{"csrf": "x"}')
        assert not_a_form.status_code == 400
        assert client.get(f"{UI}/").status_code == 200  # still logged in: nothing was done
    with runtime_for(db_url) as runtime, runtime.sessions() as session:
        assert paused(session) is None
        assert session.get(InboxEvent, seeded.failed_event).status == "failed"  # type: ignore[union-attr]


def test_search_detail_replay_retry_and_pause(db_url: str, seeded: Seeded) -> None:
    with _client(db_url) as client:
        csrf = _log_in(client)
        dashboard = client.get(f"{UI}/").text
        assert "aucun pour l&#39;instant" in dashboard  # no reconcile report stored yet
        # By the order number inside the raw body, by the invoice number in the API's answer,
        # by a key, by an id: each finds its row, and only it.
        events = client.get(f"{UI}/events", params={"q": "cmd-1042"}).text
        assert f'/events/{seeded.failed_event}"' in events
        assert f'/events/{seeded.mapped_event}"' not in events
        commands = client.get(f"{UI}/commands", params={"q": "FA-2026-0042"}).text
        assert f'/commands/{seeded.done}"' in commands
        assert f'/commands/{seeded.dead}"' not in commands
        by_key = client.get(f"{UI}/commands", params={"q": "customer:shopify", "state": "dead"})
        assert f'/commands/{seeded.dead}"' in by_key.text
        odd = client.get(f"{UI}/commands", params={"q": "%_\\", "state": "bogus"})
        assert odd.status_code == 200
        assert "Aucun résultat" in odd.text

        detail = client.get(f"{UI}/events/{seeded.failed_event}").text
        assert "MappingError: no customer email" in detail
        assert "CMD-1042" in detail  # the raw body
        dead = client.get(f"{UI}/commands/{seeded.dead}").text
        assert "doit être rempli(e)" in dead  # the API's errors
        assert client.get(f"{UI}/commands/99999999999999999999").status_code == 404
        assert client.get(f"{UI}/events/424242").status_code == 404

        replay = client.post(f"{UI}/events/{seeded.failed_event}/replay", data={"csrf": csrf})
        assert replay.headers["location"] == f"{UI}/events/{seeded.failed_event}"
        assert "1 événement(s) rejoué(s)" in client.get(replay.headers["location"]).text
        again = client.post(f"{UI}/events/{seeded.failed_event}/replay", data={"csrf": csrf})
        assert "déjà en attente" in client.get(again.headers["location"]).text

        everything = client.post(f"{UI}/commands/retry", data={"csrf": csrf})
        assert "Choisissez un état" in client.get(everything.headers["location"]).text
        retried = client.post(
            f"{UI}/commands/retry", data={"csrf": csrf, "q": "shopify", "state": ""}
        )
        assert retried.headers["location"] == f"{UI}/commands?q=shopify"
        assert "1 commande(s) relancée(s)" in client.get(retried.headers["location"]).text

        client.post(f"{UI}/delivery/pause", data={"csrf": csrf, "reason": "rotation de clé"})
        assert "rotation de clé" in client.get(f"{UI}/").text
        with runtime_for(db_url) as runtime, runtime.sessions() as session:
            pause = paused(session)
            assert pause is not None
            assert pause["by"] == "admin-page"
        client.post(f"{UI}/delivery/resume", data={"csrf": csrf})
    with runtime_for(db_url) as runtime, runtime.sessions() as session:
        assert paused(session) is None
        assert session.get(InboxEvent, seeded.failed_event).status == "received"  # type: ignore[union-attr]
        states = dict(session.execute(select(OutboxCommand.id, OutboxCommand.status)).all())
        assert states == {seeded.done: "done", seeded.dead: "pending", seeded.pending: "pending"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_languages(db_url: str) -> None:
    with _client(db_url) as client:
        assert "Connexion" in client.get(f"{UI}/login").text
        english = {"Accept-Language": "de-DE, en-GB;q=0.8, fr;q=0.5"}
        page = client.get(f"{UI}/login", headers=english).text
        assert "Log in" in page
        assert '<html lang="en">' in page
        _log_in(client)
        switched = client.get(f"{UI}/lang/en", params={"next": f"{UI}/events?state=failed"})
        assert switched.headers["location"] == f"{UI}/events?state=failed"
        assert "Received webhooks" in client.get(switched.headers["location"]).text
        # The switch never sends the browser to another site.
        for target in ("https://evil.example/", "//evil.example/admin/ui/", "/admin/ui/..//x"):
            away = client.get(f"{UI}/lang/fr", params={"next": target})
            assert away.headers["location"] == f"{UI}/"
        assert "Tableau de bord" in client.get(f"{UI}/").text
