"""Who may open an SSE stream: the bearer token, the per-subscription client limit, the settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from yarl import URL

from auditline.alerting.sse import AccessLog, Gate, exposed, presented_token, redacted_url
from auditline.alerting.subscriptions import SubscriptionsFile, load_subscriptions
from auditline.errors import ConfigError

TOKEN = "s3cret-token"


def subscriptions(*entries: dict[str, object]) -> SubscriptionsFile:
    return SubscriptionsFile.model_validate({"subscriptions": list(entries)})


def gate(monkeypatch: pytest.MonkeyPatch, **sse: object) -> Gate:
    monkeypatch.setenv("CONSOLE_TOKEN", TOKEN)
    return Gate.of(subscriptions({"name": "console", "sse": sse}).subscriptions[0])


def request(path: str = "/subscriptions/console/events", **headers: str) -> web.Request:
    return make_mocked_request("GET", path, headers=headers)


@pytest.mark.parametrize(
    ("authorization", "query", "expected"),
    [
        ("Bearer abc", None, "abc"),
        ("bearer  abc ", None, "abc"),
        ("Basic dTpw", None, None),
        ("Basic dTpw", "abc", "abc"),  # another scheme (a proxy's): the query's token
        (None, "abc", "abc"),
        ("Bearer abc", "other", "abc"),  # the header, when there is one
        (None, None, None),
    ],
)
def test_presented_token(
    authorization: str | None, query: str | None, expected: str | None
) -> None:
    assert presented_token(authorization, query) == expected


def test_a_token_is_needed_and_must_be_the_right_one(monkeypatch: pytest.MonkeyPatch) -> None:
    door = gate(monkeypatch, token_env="CONSOLE_TOKEN")
    with pytest.raises(web.HTTPUnauthorized) as missing:
        door.admit(request())
    assert missing.value.headers["WWW-Authenticate"] == 'Bearer realm="auditline"'
    assert missing.value.text == (
        "subscription console needs a token: send Authorization: Bearer <token>, "
        "or ?access_token=<token>\n"
    )
    with pytest.raises(web.HTTPUnauthorized) as wrong:
        door.admit(request(Authorization="Bearer nope"))
    assert "invalid_token" in wrong.value.headers["WWW-Authenticate"]
    assert wrong.value.text == "the token sent for subscription console is wrong\n"
    with pytest.raises(web.HTTPUnauthorized):
        door.admit(request(f"/subscriptions/console/events?access_token={TOKEN}x"))
    door.admit(request(Authorization=f"Bearer {TOKEN}"))
    door.admit(request(f"/subscriptions/console/events?access_token={TOKEN}&from=beginning"))


def test_without_a_token_everyone_is_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    gate(monkeypatch).admit(request())


def test_an_unset_token_variable_stops_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    entry = subscriptions({"name": "console", "sse": {"token_env": "NOT_SET_TOKEN"}})
    with pytest.raises(ConfigError) as error:
        Gate.of(entry.subscriptions[0])
    assert str(error.value) == (
        "subscription console: SSE token: the environment variable NOT_SET_TOKEN is unset or "
        "empty: set it, or remove token_env"
    )


def test_past_max_clients_a_stream_gets_503(monkeypatch: pytest.MonkeyPatch) -> None:
    door = gate(monkeypatch, max_clients=2)
    with door.slot(), door.slot():
        with pytest.raises(web.HTTPServiceUnavailable) as full, door.slot():
            pass
        assert full.value.headers["Retry-After"] == "5"
        assert full.value.text == (
            "subscription console has its limit of 2 SSE streams open: retry later, or raise its "
            "sse.max_clients in the subscriptions file\n"
        )
    assert door.open == 0
    with door.slot():  # a closed stream frees its slot
        assert door.open == 1


def test_default_limit() -> None:
    assert Gate.of(subscriptions({"name": "c", "sse": {}}).subscriptions[0]).max_clients == 32


def test_bad_sse_settings_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "subs.yaml"
    path.write_text("subscriptions:\n  - name: console\n    sse: {max_clients: 0}\n", "utf-8")
    with pytest.raises(ConfigError, match=r"subs.yaml:3: subscriptions.0.sse.max_clients: .*1"):
        load_subscriptions(path)
    path.write_text("subscriptions:\n  - name: console\n    sse: {token: abc}\n", "utf-8")
    with pytest.raises(ConfigError, match=r"subs.yaml:3: subscriptions.0.sse.token: Extra"):
        load_subscriptions(path)


def test_streams_without_a_token_on_a_reachable_address_are_named() -> None:
    subs = subscriptions(
        {"name": "open", "sse": {}},
        {"name": "closed", "sse": {"token_env": "T"}},
        {"name": "hook", "webhook": {"url": "http://127.0.0.1:1/"}},
    )
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposed(subs, host) == [], host
    for host in ("0.0.0.0", "::", "10.1.2.3", "alerts.example.org"):
        assert exposed(subs, host) == ["open"], host


def test_the_access_log_leaves_the_query_token_out(caplog: pytest.LogCaptureFixture) -> None:
    assert redacted_url(URL("/s/c/events?from=beginning")) == "/s/c/events?from=beginning"
    url = URL(f"/s/c/events?access_token={TOKEN}&from=beginning")
    assert TOKEN not in redacted_url(url) and "from=beginning" in redacted_url(url)
    logger = logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, "test.access"):
        AccessLog(logger, "").log(request(str(url)), web.Response(status=200), 0.5)
    assert TOKEN not in caplog.text
    assert '"GET /s/c/events?access_token=redacted&from=beginning" 200 0.500s' in caplog.text
