"""RobinhoodAuth: TOTP login, the private session cache, re-login, and secrets kept secret."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pyotp
import pytest
import requests
import responses
from robin_stocks.robinhood import helper as rh_helper

from orders.errors import AuthenticationError, BrokerError
from orders.gateways.auth import (
    CACHE_FILE_NAME,
    MissingCredentialsError,
    RobinhoodAuth,
    UnsafeSessionCacheError,
)
from tests.gateways.robinhood_fixtures import (
    ORDERS_URL,
    POSITIONS_URL,
    TOKEN_URL,
    FakeTime,
    make_gateway,
    order_json,
    robin_stocks_state,
)

USERNAME = "trader@example.com"
PASSWORD = "hunter2-correct-horse"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ACCESS = "access-token-abcdef123456"
REFRESH = "refresh-token-zyxw987654"
SECRETS = (USERNAME, PASSWORD, TOTP_SECRET, ACCESS, REFRESH, "cached-access-0001")


@pytest.fixture(autouse=True)
def logged_out() -> Iterator[None]:
    with robin_stocks_state(logged_in=False):
        yield


@pytest.fixture(autouse=True)
def no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> str:
        raise AssertionError("RobinhoodAuth prompted without being asked to")

    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr("getpass.getpass", refuse)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


def token_body(access: str = ACCESS) -> dict[str, Any]:
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 86400,
        "refresh_token": REFRESH,
        "scope": "internal",
    }


def make_auth(tmp_path: Path, clock: FakeTime, **options: Any) -> RobinhoodAuth:
    options.setdefault("totp_secret", TOTP_SECRET)
    options.setdefault("env", {})
    return RobinhoodAuth(
        options.pop("username", USERNAME),
        options.pop("password", PASSWORD),
        session_dir=tmp_path / "session",
        sleep=clock.sleep,
        **options,
    )


def token_posts(rsps: responses.RequestsMock) -> list[dict[str, str]]:
    return [dict(parse_qsl(str(c.request.body))) for c in rsps.calls if c.request.url == TOKEN_URL]


def write_cache(tmp_path: Path, auth: RobinhoodAuth, access: str, mode: int = 0o600) -> Path:
    """A cache as an earlier successful login of this user left it."""
    path = auth.session_cache
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {
        "version": 1,
        "user": hashlib.sha256(USERNAME.encode()).hexdigest(),
        "token_type": "Bearer",
        "access_token": access,
        "refresh_token": REFRESH,
        "device_token": "dev-token-1",
    }
    path.write_text(json.dumps(record))
    path.chmod(mode)
    return path


class TestPasswordLogin:
    """A password login with a TOTP code installs the token where robin_stocks reads it."""

    def test_totp_login_installs_the_session_and_caches_it_privately(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"next": None, "results": []})
        auth = make_auth(tmp_path, clock)

        auth.login()

        (form,) = token_posts(rsps)
        assert pyotp.TOTP(TOTP_SECRET).verify(form["mfa_code"], valid_window=1)
        assert (form["username"], form["password"], form["grant_type"]) == (
            USERNAME,
            PASSWORD,
            "password",
        )
        assert rh_helper.LOGGED_IN is True
        assert rh_helper.SESSION.headers["Authorization"] == f"Bearer {ACCESS}"
        assert rsps.calls[-1].request.headers["Authorization"] == f"Bearer {ACCESS}"
        cache = auth.session_cache
        assert stat.S_IMODE(cache.stat().st_mode) == 0o600
        assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
        stored = json.loads(cache.read_text())
        assert stored["access_token"] == ACCESS
        assert stored["device_token"] == form["device_token"]
        assert PASSWORD not in cache.read_text()
        assert USERNAME not in cache.read_text()

    def test_credentials_come_from_the_environment(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        env = {
            "ROBINHOOD_USERNAME": USERNAME,
            "ROBINHOOD_PASSWORD": PASSWORD,
            "ROBINHOOD_TOTP_SECRET": TOTP_SECRET,
            "ROBINHOOD_SESSION_DIR": str(tmp_path / "from-env"),
        }
        auth = RobinhoodAuth(env=env, sleep=clock.sleep)

        auth.login()

        (form,) = token_posts(rsps)
        assert (form["username"], form["password"]) == (USERNAME, PASSWORD)
        assert "mfa_code" in form
        assert auth.session_cache == tmp_path / "from-env" / CACHE_FILE_NAME
        assert auth.session_cache.exists()

    @pytest.mark.parametrize("missing", ["username", "password"])
    def test_missing_credentials_raise_without_prompt_or_request(
        self,
        tmp_path: Path,
        clock: FakeTime,
        rsps: responses.RequestsMock,
        missing: str,
    ) -> None:
        auth = make_auth(tmp_path, clock, **{missing: None})

        with pytest.raises(MissingCredentialsError, match="ROBINHOOD_USERNAME") as info:
            auth.login()

        assert missing in str(info.value)
        assert len(rsps.calls) == 0
        assert rh_helper.LOGGED_IN is False

    def test_interactive_login_may_prompt(
        self,
        tmp_path: Path,
        clock: FakeTime,
        rsps: responses.RequestsMock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        monkeypatch.setattr("getpass.getpass", lambda _prompt: PASSWORD)
        auth = make_auth(tmp_path, clock, password=None, interactive=True)

        auth.login()

        assert token_posts(rsps)[0]["password"] == PASSWORD

    def test_refused_password_is_not_retried(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(
            responses.POST,
            TOKEN_URL,
            status=400,
            json={"detail": "Unable to log in with provided credentials."},
        )

        with pytest.raises(AuthenticationError, match="provided credentials"):
            make_auth(tmp_path, clock).login()

        assert len(token_posts(rsps)) == 1
        assert rh_helper.LOGGED_IN is False

    def test_missing_totp_is_explained(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json={"mfa_required": True, "mfa_type": "app"})

        with pytest.raises(AuthenticationError, match="ROBINHOOD_TOTP_SECRET"):
            make_auth(tmp_path, clock, totp_secret=None).login()

    def test_bad_totp_secret_is_a_typed_error(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        with pytest.raises(AuthenticationError, match="base32") as info:
            make_auth(tmp_path, clock, totp_secret="not base32 !!").login()

        assert "not base32" not in str(info.value)
        assert len(rsps.calls) == 0

    def test_server_errors_are_retried_with_backoff(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, status=503, body="unavailable")
        rsps.add(
            responses.POST,
            TOKEN_URL,
            status=429,
            json={"detail": "Request was throttled. Expected available in 9 seconds."},
        )
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})

        make_auth(tmp_path, clock).login()

        assert len(token_posts(rsps)) == 3
        assert len(clock.sleeps) == 2 and clock.sleeps[1] >= 9
        assert rh_helper.LOGGED_IN is True

    def test_unreachable_robinhood_gives_up_after_bounded_attempts(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, body=requests.ConnectionError("no route"))

        with pytest.raises(AuthenticationError, match="after 3 attempt"):
            make_auth(tmp_path, clock, max_attempts=3).login()

        assert len(token_posts(rsps)) == 3
        assert len(clock.sleeps) == 2

    def test_device_verification_is_not_attempted_unattended(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(
            responses.POST,
            TOKEN_URL,
            json={"verification_workflow": {"id": "wf-1", "workflow_status": "pending"}},
        )

        with pytest.raises(AuthenticationError, match="interactive=True"):
            make_auth(tmp_path, clock).login()

        assert len(rsps.calls) == 1


class TestCachedSession:
    """A cached session is used only if it is private, ours, and Robinhood still honours it."""

    def test_cached_session_is_confirmed_and_used_without_a_password_login(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        auth = make_auth(tmp_path, clock)
        write_cache(tmp_path, auth, "cached-access-0001")

        auth.login()

        assert token_posts(rsps) == []
        assert len(rsps.calls) == 1
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer cached-access-0001"
        assert rh_helper.LOGGED_IN is True

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660], ids=oct)
    def test_a_cache_others_can_read_is_refused_not_loaded(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock, mode: int
    ) -> None:
        auth = make_auth(tmp_path, clock)
        path = write_cache(tmp_path, auth, "cached-access-0001", mode=mode)

        with pytest.raises(UnsafeSessionCacheError) as info:
            auth.login()

        message = str(info.value)
        assert f"chmod 600 {path}" in message
        assert "delete" in message
        assert "cached-access-0001" not in message
        assert len(rsps.calls) == 0
        assert rh_helper.LOGGED_IN is False
        assert "Authorization" not in rh_helper.SESSION.headers

    def test_a_symlinked_cache_is_refused(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        auth = make_auth(tmp_path, clock)
        real = write_cache(tmp_path, auth, "cached-access-0001")
        elsewhere = tmp_path / "elsewhere.json"
        real.rename(elsewhere)
        os.symlink(elsewhere, real)

        with pytest.raises(UnsafeSessionCacheError):
            auth.login()

    def test_expired_token_falls_back_to_a_password_login(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.GET, POSITIONS_URL, status=401, json={"detail": "expired"})
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        auth = make_auth(tmp_path, clock)
        write_cache(tmp_path, auth, "cached-access-0001")

        auth.login()

        (form,) = token_posts(rsps)
        assert form["device_token"] == "dev-token-1"  # the device Robinhood already knows
        assert rh_helper.SESSION.headers["Authorization"] == f"Bearer {ACCESS}"
        assert json.loads(auth.session_cache.read_text())["access_token"] == ACCESS

    def test_another_users_cache_is_not_used(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        auth = make_auth(tmp_path, clock, username="someone-else@example.com")
        write_cache(tmp_path, auth, "cached-access-0001")

        auth.login()

        assert len(token_posts(rsps)) == 1


class TestSessionChecks:
    """is_authenticated asks Robinhood; a 401 met by the gateway is cured by one re-login."""

    def test_logged_out_is_false_without_a_request(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        assert make_auth(tmp_path, clock).is_authenticated() is False
        assert len(rsps.calls) == 0

    @pytest.mark.parametrize(("status", "expected"), [(200, True), (401, False), (403, False)])
    def test_answer_decides(
        self,
        tmp_path: Path,
        clock: FakeTime,
        rsps: responses.RequestsMock,
        status: int,
        expected: bool,
    ) -> None:
        rh_helper.set_login_state(True)
        rsps.add(responses.GET, POSITIONS_URL, status=status, json={"results": []})

        assert make_auth(tmp_path, clock).is_authenticated() is expected
        assert len(rsps.calls) == 1

    def test_unreachable_is_an_error_not_a_no(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rh_helper.set_login_state(True)
        rsps.add(responses.GET, POSITIONS_URL, body=requests.ConnectTimeout())

        with pytest.raises(BrokerError, match="try again"):
            make_auth(tmp_path, clock).is_authenticated()

    def test_gateway_401_triggers_relogin_and_the_request_is_retried(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rh_helper.set_login_state(True)
        rh_helper.update_session("Authorization", "Bearer stale")
        order_url = f"{ORDERS_URL}ord-1/"
        rsps.add(responses.GET, order_url, status=401, json={"detail": "expired"})
        rsps.add(responses.GET, order_url, json=order_json(order_id="ord-1"))
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        rsps.add(responses.GET, order_json()["instrument"], json={"symbol": "AAPL"})
        auth = make_auth(tmp_path, clock)
        gateway = make_gateway(clock, auth=auth)

        snapshot = gateway.fetch("ord-1")

        assert snapshot is not None and snapshot.symbol == "AAPL"
        assert len(token_posts(rsps)) == 1
        retried = [c for c in rsps.calls if c.request.url == order_url][-1]
        assert retried.request.headers["Authorization"] == f"Bearer {ACCESS}"


class TestSecrets:
    """No credential or token reaches a log line, the terminal, an exception or a repr."""

    def test_nothing_secret_leaks_on_success_or_failure(
        self,
        tmp_path: Path,
        clock: FakeTime,
        rsps: responses.RequestsMock,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        caplog.set_level(logging.DEBUG)
        texts: list[str] = []
        auth = make_auth(tmp_path, clock)
        texts.append(repr(auth))
        # A refusal that echoes the password back must be scrubbed.
        rsps.add(
            responses.POST,
            TOKEN_URL,
            status=400,
            json={"detail": f"bad password {PASSWORD} for {USERNAME}"},
        )
        with pytest.raises(AuthenticationError) as refused:
            auth.login()
        texts += [str(refused.value), repr(refused.value)]
        # The expired-cache path, then a good login.
        write_cache(tmp_path, auth, "cached-access-0001")
        rsps.replace(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, status=401, json={"detail": "expired"})
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        auth.login()
        texts.append(repr(auth))
        # A transport failure during login.
        rsps.replace(responses.POST, TOKEN_URL, body=requests.ConnectionError(PASSWORD))
        with pytest.raises(AuthenticationError) as unreachable:
            auth.relogin()
        texts.append(str(unreachable.value))

        captured = capsys.readouterr()
        texts += [caplog.text, captured.out, captured.err]
        for text in texts:
            for secret in SECRETS:
                assert secret not in text, f"a secret leaked into: {text!r}"
        assert "***" in str(refused.value)


class TestUsernameScrubbing:
    """Robinhood may echo the username in another case; it is scrubbed all the same."""

    @pytest.mark.parametrize(
        "echoed",
        [USERNAME, USERNAME.upper(), "Trader@Example.Com"],
        ids=["same", "upper", "mixed"],
    )
    def test_the_username_in_any_case_never_reaches_the_error(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock, echoed: str
    ) -> None:
        rsps.add(
            responses.POST,
            TOKEN_URL,
            status=400,
            json={"detail": f"Unable to log in {echoed} with provided credentials."},
        )
        auth = make_auth(tmp_path, clock, username="Trader@Example.COM")

        with pytest.raises(AuthenticationError) as refused:
            auth.login()

        for text in (str(refused.value), repr(refused.value)):
            assert USERNAME not in text.lower(), f"the username leaked into: {text!r}"
        assert "Unable to log in *** with provided credentials." in str(refused.value)


def login_within(auth: RobinhoodAuth, seconds: float, unblock: Path) -> BaseException | None:
    """Run `auth.login()` in a thread; what it raised, or None. A login still running after
    `seconds` fails the test: the FIFO at `unblock` is opened for writing to let it go."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            auth.login()
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(seconds)
        pytest.fail(f"login() blocked for {seconds} s on the session cache {unblock}")
    return outcome[0]


class TestCacheThatIsNotAFile:
    """Only a regular file is opened as the session cache; anything else is refused, at once."""

    def test_a_fifo_is_refused_without_blocking(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        auth = make_auth(tmp_path, clock)
        auth.session_cache.parent.mkdir(mode=0o700, parents=True)
        os.mkfifo(auth.session_cache, 0o600)

        raised = login_within(auth, 5.0, unblock=auth.session_cache)

        assert isinstance(raised, UnsafeSessionCacheError)
        message = str(raised)
        assert "FIFO" in message and "not a regular file" in message
        assert "delete it" in message and "log in again" in message
        assert len(rsps.calls) == 0
        assert rh_helper.LOGGED_IN is False

    def test_a_directory_is_refused_with_what_to_do(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        auth = make_auth(tmp_path, clock)
        auth.session_cache.mkdir(mode=0o700, parents=True)

        with pytest.raises(UnsafeSessionCacheError) as info:
            auth.login()

        message = str(info.value)
        assert f"session cache {auth.session_cache} is a directory" in message
        assert "delete it" in message and "session_dir" in message
        assert "chmod" not in message  # not the cure for a directory
        assert len(rsps.calls) == 0

    def test_a_missing_cache_still_means_a_password_login(
        self, tmp_path: Path, clock: FakeTime, rsps: responses.RequestsMock
    ) -> None:
        rsps.add(responses.POST, TOKEN_URL, json=token_body())
        rsps.add(responses.GET, POSITIONS_URL, json={"results": []})
        auth = make_auth(tmp_path, clock)

        auth.login()

        assert len(token_posts(rsps)) == 1
        assert stat.S_ISREG(os.lstat(auth.session_cache).st_mode)
