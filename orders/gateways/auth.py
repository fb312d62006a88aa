"""Robinhood login for an unattended bot: password + TOTP, a private session cache, no prompts.

Why the token exchange is done here rather than through `robin_stocks.login`:

* `login()` stores its session as a pickle and unpickles it on the next start; a pickle that
  someone else could write runs their code. It writes the file with the process umask
  (usually 0644: a live bearer token readable by every local user) and truncates it to 0
  bytes on some failures.
* It calls `input()`/`getpass()` when a credential is missing and inside the device
  verification workflow, which blocks an unattended process forever.
* It reports failure by printing and returning None, and returns None on *success* with
  `store_session=False`, so its result cannot drive control flow.

So this module POSTs the same form to the same `oauth2/token/` endpoint with robin_stocks'
public client id, keeps the session as JSON (never pickle) in a file created 0600 in a 0700
directory, refuses a cache that group or others can read (the token may already have leaked:
the error says to `chmod 600` or delete it), confirms every session with an authenticated GET,
and then installs the token where robin_stocks and `RobinhoodGateway` read it: the
`Authorization` header of `helper.SESSION` and `helper.set_login_state(True)`. The device token
is kept across logins so Robinhood recognises the device and asks for verification less often.

Credentials come from the arguments or, when those are None, from the environment:
`ROBINHOOD_USERNAME`, `ROBINHOOD_PASSWORD`, `ROBINHOOD_TOTP_SECRET` (base32, as shown when
enabling an authenticator app) and `ROBINHOOD_SESSION_DIR` (default `~/.orders/robinhood`).
Only `interactive=True` may prompt (for missing credentials, or to let robin_stocks run
Robinhood's device-verification workflow). Secrets never appear in a log line, an exception
message or a repr: they are held in `_Secret` wrappers and scrubbed from the broker's text.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import pyotp
from robin_stocks.robinhood import authentication as rh_auth
from robin_stocks.robinhood import helper as rh_helper
from robin_stocks.robinhood import urls as rh_urls

from orders.config import Disagreement, OrderManagementConfig, RetryConfig
from orders.errors import (
    AuthenticationError,
    BrokerError,
    MissingCredentialsError,
    UnsafeSessionCacheError,
)
from orders.gateways import _http
from orders.gateways._http import Reply, RetriesExhausted, RetryPolicy
from orders.gateways.base import AmbiguousAttempt

__all__ = [
    "CACHE_FILE_NAME",
    "ENV_PASSWORD",
    "ENV_SESSION_DIR",
    "ENV_TOTP_SECRET",
    "ENV_USERNAME",
    "MissingCredentialsError",
    "RobinhoodAuth",
    "UnsafeSessionCacheError",
    "login_from_env",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
# The documented defaults of `order_management.retry`, defined once there.
_RETRY: Final = RetryConfig()

ENV_USERNAME: Final = "ROBINHOOD_USERNAME"
ENV_PASSWORD: Final = "ROBINHOOD_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_TOTP_SECRET: Final = "ROBINHOOD_TOTP_SECRET"  # noqa: S105 - the variable's name
ENV_SESSION_DIR: Final = "ROBINHOOD_SESSION_DIR"
CACHE_FILE_NAME: Final = "robinhood_session.json"

# robin_stocks 3.4.0's client id (authentication.py): the public id of Robinhood's web app.
_CLIENT_ID: Final = "c82SH0WZOsabOXGP2sxqcj34FxkvfnWRZBKlBjFS"


class _Secret:
    """A string that will not show itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def _default_session_dir(env: Mapping[str, str]) -> Path:
    configured = env.get(ENV_SESSION_DIR)
    return Path(configured) if configured else Path.home() / ".orders" / "robinhood"


class RobinhoodAuth:
    """Logs robin_stocks' shared session in to Robinhood and keeps it logged in.

    `login()` tries the cached session first (confirmed by an authenticated GET), then a
    password login with a fresh TOTP code, with up to `max_attempts` tries when Robinhood is
    unreachable or throttling (never on a refused password: retries could lock the account),
    waiting as the configuration's `retry` block says (`from_config`) through `sleep`.
    `relogin()` does a password login regardless of the cache; `RobinhoodGateway(auth=...)`
    calls it on a 401.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        totp_secret: str | None = None,
        session_dir: str | os.PathLike[str] | None = None,
        interactive: bool = False,
        max_attempts: int = _RETRY.max_attempts,
        backoff_base: float = _RETRY.backoff_base_seconds,
        backoff_cap: float = _RETRY.backoff_max_seconds,
        sleep: Callable[[float], object] = time.sleep,
        timeout: tuple[float, float] = _http.DEFAULT_TIMEOUT,
        expires_in: int = 86400,
        max_throttle_wait: float = 300.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if env is None else env
        self._username = _secret(username if username is not None else environ.get(ENV_USERNAME))
        self._password = _secret(password if password is not None else environ.get(ENV_PASSWORD))
        self._totp = _secret(
            totp_secret if totp_secret is not None else environ.get(ENV_TOTP_SECRET)
        )
        directory = session_dir if session_dir is not None else _default_session_dir(environ)
        self._cache_path = Path(directory) / CACHE_FILE_NAME
        self._interactive = interactive
        self._retry = RetryPolicy(
            max_attempts=max(1, max_attempts),
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_throttle_wait=max_throttle_wait,
            sleep=sleep,
        )
        self._timeout = timeout
        self._expires_in = expires_in
        self._device_token: str | None = None

    @classmethod
    def from_config(
        cls,
        config: OrderManagementConfig,
        username: str | None = None,
        password: str | None = None,
        **options: Any,
    ) -> RobinhoodAuth:
        """A login that retries as the configuration's `retry` block says; `options` are the
        other keyword options of the constructor (`totp_secret`, `env`, `sleep`, ...)."""
        retry = config.retry
        return cls(
            username,
            password,
            max_attempts=retry.max_attempts,
            backoff_base=retry.backoff_base_seconds,
            backoff_cap=retry.backoff_max_seconds,
            **options,
        )

    def config_disagreements(self, config: OrderManagementConfig) -> Iterator[Disagreement]:
        """The `retry` settings where this login differs from `config`."""
        return self._retry.disagreements(config.retry)

    def __repr__(self) -> str:
        return (
            f"RobinhoodAuth(username={'<set>' if self._username else None}, "
            f"totp={'<set>' if self._totp else None}, session_cache={str(self._cache_path)!r})"
        )

    @property
    def session_cache(self) -> Path:
        return self._cache_path

    # -- public -----------------------------------------------------------------------------

    def login(self) -> None:
        """Log in: the cached session if Robinhood still honours it, else a password login."""
        cached = self._load_cache()
        if cached is not None:
            self._device_token = _str_or_none(cached.get("device_token"))
            if self._cache_is_for_this_user(cached) and self._try_cached(cached):
                _log.info("Robinhood session restored from %s", self._cache_path)
                return
        self._password_login()

    def relogin(self) -> None:
        """Log in with the password again (the token expired or was revoked: a 401)."""
        self._clear_session()
        self._password_login()

    def is_authenticated(self) -> bool:
        """Whether Robinhood accepts the current session, asked with an authenticated GET.

        False without a request when robin_stocks' login flag is down; `BrokerError` when
        Robinhood cannot be reached (that says nothing about the session).
        """
        if not rh_helper.LOGGED_IN:
            return False
        try:
            return self._confirm()
        except AmbiguousAttempt as exc:
            raise BrokerError(
                f"could not ask Robinhood whether the session is valid: {exc}; try again"
            ) from None

    def logout(self) -> None:
        """Forget the session in this process; the cache file stays for the next start."""
        self._clear_session()

    # -- cached session ---------------------------------------------------------------------

    def _load_cache(self) -> dict[str, Any] | None:
        """The cached session, or None when there is none (or it is not JSON).

        Only a regular file is opened: opening a FIFO for reading blocks until someone
        writes to it (a bot that never starts), and a directory fails with a bare
        `IsADirectoryError`. The path is checked with lstat before the open, and the open
        itself is non-blocking and refuses symlinks, so a swap between the two cannot hang
        or redirect it either.
        """
        path = self._cache_path
        try:
            kind = _file_kind(os.lstat(path).st_mode)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UnsafeSessionCacheError(
                path, f"cannot be checked ({exc.strerror})", advice=_NOT_A_FILE_ADVICE
            ) from None
        if kind is not None:
            raise UnsafeSessionCacheError(
                path, f"is {kind}, not a regular file", advice=_NOT_A_FILE_ADVICE
            )
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UnsafeSessionCacheError(
                path, f"cannot be opened safely ({exc.strerror})"
            ) from None
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeSessionCacheError(
                    path,
                    f"is {_file_kind(info.st_mode) or 'not a regular file'}",
                    advice=_NOT_A_FILE_ADVICE,
                )
            if info.st_mode & 0o077:
                mode = stat.S_IMODE(info.st_mode)
                raise UnsafeSessionCacheError(
                    path, f"is readable by group or others (mode {mode:o})"
                )
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                raise UnsafeSessionCacheError(path, "belongs to another user")
            try:
                data = json.load(handle)
            except ValueError:
                _log.warning("ignoring unreadable session cache %s", path)
                return None
        return data if isinstance(data, dict) else None

    def _cache_is_for_this_user(self, cached: Mapping[str, Any]) -> bool:
        if self._username is None:
            return True
        return cached.get("user") == _fingerprint(self._username.reveal())

    def _try_cached(self, cached: Mapping[str, Any]) -> bool:
        token_type = _str_or_none(cached.get("token_type"))
        access_token = _str_or_none(cached.get("access_token"))
        if token_type is None or access_token is None:
            return False
        self._install(token_type, access_token)
        if self._retrying(self._confirm, "confirm the cached Robinhood session"):
            return True
        _log.info("the cached Robinhood session was refused (expired?); logging in again")
        self._clear_session()
        return False

    def _write_cache(self, token: Mapping[str, Any]) -> None:
        directory = self._cache_path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        record = {
            "version": 1,
            "user": None if self._username is None else _fingerprint(self._username.reveal()),
            "token_type": token.get("token_type"),
            "access_token": token.get("access_token"),
            "refresh_token": token.get("refresh_token"),
            "device_token": self._device_token,
            "saved_at": time.time(),
        }
        temporary = directory / f".{CACHE_FILE_NAME}.{os.getpid()}.tmp"
        try:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
            os.replace(temporary, self._cache_path)
        finally:
            record.clear()  # no token left in a frame a traceback could show

    # -- password login ---------------------------------------------------------------------

    def _password_login(self) -> None:
        username, password = self._credentials()
        if self._device_token is None:
            self._device_token = str(rh_auth.generate_device_token())
        secrets = [s for s in (username, password, self._totp) if s is not None]
        # One budget for every password POST (a transient failure or a verification round):
        # repeated logins can lock the account, so `max_attempts` bounds them all together.
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                body = self._token_request(username, password, secrets)
            except AmbiguousAttempt as failure:
                if not self._retry.pause(attempt, failure):
                    raise AuthenticationError(
                        f"could not log in to Robinhood after {attempt} attempt(s): {failure}; "
                        "try again later"
                    ) from None
                continue
            if "verification_workflow" in body:
                self._verify_device(body)
                continue
            self._install(str(body["token_type"]), str(body["access_token"]))
            if not self._retrying(self._confirm, "confirm the new Robinhood session"):
                self._clear_session()
                raise AuthenticationError(
                    "Robinhood issued a token but refuses it; check the account in the app"
                )
            try:
                self._write_cache(body)
            except OSError as exc:  # the session works; only the next start logs in again
                _log.warning("logged in, but the session was not cached: %s", exc.strerror)
            else:
                _log.info("logged in to Robinhood; session cached in %s", self._cache_path)
            return
        raise AuthenticationError(
            "Robinhood kept asking for device verification; approve this device in the "
            "Robinhood app, then log in again"
        )

    def _token_request(
        self, username: _Secret, password: _Secret, secrets: list[_Secret]
    ) -> Mapping[str, Any]:
        form = {
            "client_id": _CLIENT_ID,
            "expires_in": str(self._expires_in),
            "grant_type": "password",
            "password": password.reveal(),
            "scope": "internal",
            "username": username.reveal(),
            "device_token": self._device_token or "",
            "try_passkeys": "False",
            "token_request_path": "/login",
            "create_read_only_secondary_token": "True",
        }
        if self._totp is not None:
            form["mfa_code"] = self._totp_code()
        try:
            reply = self._request("POST", rh_urls.login_url(), data=form)
        finally:
            form.clear()  # no password left in a frame a traceback could show
        body = reply.body
        if reply.status == 200 and isinstance(body, Mapping):
            if "access_token" in body and "token_type" in body:
                return body
            if "verification_workflow" in body:
                return body
        if isinstance(body, Mapping) and body.get("mfa_required"):
            hint = (
                f"set {ENV_TOTP_SECRET} or pass totp_secret"
                if self._totp is None
                else "the TOTP code was refused: check the secret and the system clock"
            )
            raise AuthenticationError(f"Robinhood asks for a two-factor code: {hint}")
        raise AuthenticationError(
            f"Robinhood refused the login ({reply.status}: "
            f"{_scrub(_detail(body), secrets)}); check {ENV_USERNAME} and {ENV_PASSWORD}. "
            "Not retried: repeated failures can lock the account"
        )

    def _verify_device(self, body: Mapping[str, Any]) -> None:
        if not self._interactive:
            raise AuthenticationError(
                "Robinhood wants to verify this device (by app, SMS or e-mail); run the login "
                "once from a terminal with RobinhoodAuth(..., interactive=True), then the "
                "cached session and device token let the bot log in unattended"
            )
        workflow = body["verification_workflow"]
        workflow_id = workflow.get("id") if isinstance(workflow, Mapping) else None
        # robin_stocks' workflow prompts with input() and polls with time.sleep: acceptable
        # only because the caller asked for an interactive login. It is private API of 3.4.0.
        rh_auth._validate_sherrif_id(self._device_token, workflow_id)

    def _totp_code(self) -> str:
        assert self._totp is not None
        try:
            return str(pyotp.TOTP(self._totp.reveal()).now())
        except (ValueError, TypeError):
            raise AuthenticationError(
                f"the TOTP secret is not valid base32; copy it again into {ENV_TOTP_SECRET}"
            ) from None

    def _credentials(self) -> tuple[_Secret, _Secret]:
        username, password = self._username, self._password
        if (username is None or password is None) and self._interactive:
            if username is None:
                username = _secret(input("Robinhood username: "))
            if password is None:
                password = _secret(getpass.getpass("Robinhood password: "))
            self._username, self._password = username, password
        if username is None or password is None:
            raise MissingCredentialsError(
                f"no Robinhood {'username' if username is None else 'password'}: pass it to "
                f"RobinhoodAuth or set {ENV_USERNAME} and {ENV_PASSWORD} (and "
                f"{ENV_TOTP_SECRET} for two-factor), or log in with interactive=True"
            )
        return username, password

    # -- session plumbing -------------------------------------------------------------------

    def _confirm(self) -> bool:
        reply = self._request("GET", rh_urls.positions_url(), params={"nonzero": "true"})
        if reply.status == 200:
            return True
        if reply.status in (401, 403):
            return False
        raise AmbiguousAttempt(f"Robinhood answered {reply.status}")

    def _install(self, token_type: str, access_token: str) -> None:
        rh_helper.update_session("Authorization", f"{token_type} {access_token}")
        rh_helper.set_login_state(True)

    def _clear_session(self) -> None:
        rh_helper.set_login_state(False)
        rh_helper.SESSION.headers.pop("Authorization", None)

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Reply:
        # `where` names the endpoint only: the form holds the password.
        where = f"{method} {url.split('?', 1)[0]}"
        return _http.send(
            method, url, where=where, params=params, data=data, timeout=self._timeout, login=True
        )

    def _retrying(self, action: Callable[[], _T], what: str) -> _T:
        try:
            return self._retry.run(action)
        except RetriesExhausted as exc:
            raise AuthenticationError(
                f"could not {what} after {exc.attempts} attempt(s): {exc.last}; try again later"
            ) from None


def _secret(value: str | None) -> _Secret | None:
    return _Secret(value) if value else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fingerprint(username: str) -> str:
    # The cache records whose session it is without storing the username itself.
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


def _detail(body: object) -> str:
    if isinstance(body, Mapping):
        for key in ("detail", "error_description", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return "no readable reason"


def _scrub(text: str, secrets: list[_Secret]) -> str:
    """`text` with every secret replaced by ***, whatever its case: Robinhood may echo a
    username lowercased (its logins are case-insensitive), and a username is an e-mail
    address, which must not reach a log either."""
    for secret in secrets:
        value = secret.reveal()
        for form in {value, value.strip()}:
            if form:
                text = re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
    return text


_NOT_A_FILE_ADVICE: Final = (
    "nothing was read from it. Move it away or delete it (or choose another session "
    f"directory with session_dir= or {ENV_SESSION_DIR}), then log in again: login() then "
    "writes the cache as a private regular file"
)


def _file_kind(mode: int) -> str | None:
    """What a path is when it is not a regular file (for the message); None when it is."""
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def login_from_env(
    config: OrderManagementConfig,
    env: Mapping[str, str] | None,
    needed_by: str,
    instead: str,
) -> RobinhoodAuth:
    """A logged-in RobinhoodAuth from the environment's credentials, retrying as `config`
    says, or AuthenticationError before anything is sent. The message names what asked for
    the login (`needed_by`: live mode, live quotes) and what to do `instead`."""
    environ = os.environ if env is None else env
    missing = [name for name in (ENV_USERNAME, ENV_PASSWORD) if not environ.get(name)]
    if missing:
        raise AuthenticationError(
            f"{needed_by} needs Robinhood credentials: set "
            + " and ".join(missing)
            + f" (and ROBINHOOD_TOTP_SECRET for two-factor), {instead}"
        )
    auth = RobinhoodAuth.from_config(config, env=dict(environ))
    auth.login()
    return auth
