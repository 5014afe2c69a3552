"""Notifiers of ``forecast alert``: where alert objects go.

A destination is given by a SPEC (``--notify``, repeatable):

``stdout``
    One JSON object per line on standard output.
``file:PATH``
    Appends one JSON object per line to ``PATH`` (flushed and fsync'ed; an id already in
    the file is not written again).
``webhook:URL``
    HTTP(S) POST of the alert object as JSON (``Content-Type: application/json``,
    ``Idempotency-Key: <alert id>``); any 2xx answer is a delivery.
``slack:URL``
    The same POST with a Slack-compatible payload ``{"text": "..."}`` (Slack, Mattermost,
    Rocket.Chat and Teams incoming webhooks accept it).
``smtp://HOST[:PORT]?to=ADDR[,ADDR...]&from=ADDR[&starttls=1][&cafile=PATH][&subject=TEXT]``
    One e-mail per alert (``Message-ID`` derived from the alert id).  ``starttls=1`` upgrades
    the connection with STARTTLS before logging in (port default 587 with it, 25 without);
    ``smtps://`` connects over TLS from the start (port default 465).  ``cafile`` names a CA
    bundle to trust instead of the system's.  When the environment variables
    ``FORECAST_SMTP_USER`` and ``FORECAST_SMTP_PASSWORD`` are both set, the notifier logs in
    with them; they are read when a mail is sent and never logged or stored.

Secrets in a webhook URL (Slack puts its token in the path) are kept out of the logs: a
destination is logged as ``scheme://host[:port]/...``.  They are stored, as given, in the
state file's outbox (it needs them to retry), so keep that file private.

A notifier raises :class:`NotifyError` when a delivery fails; the outbox keeps the
notification for the next run.  ``--notify-timeout`` bounds each **whole send** (connecting,
sending, and reading the answer to its end): a receiver that answers one byte a second is cut
off at the deadline, not kept alive by every byte it drips.  SPECs are checked when they are
parsed (scheme, host, port, no spaces or control characters in a URL, an address or a
subject), and no message ever shows a SPEC or URL in full: tokens and passwords stay out of
logs and errors.  :func:`forecast.jobs.notify_spec.parse_notify_spec` turns a SPEC into its
notifier.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import smtplib
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TextIO

from forecast.errors import NotifyError, NotifySpecError

__all__ = [
    "SMTP_PASSWORD_ENV",
    "SMTP_USER_ENV",
    "FileNotifier",
    "Notifier",
    "SmtpNotifier",
    "StdoutNotifier",
    "WebhookNotifier",
    "alert_line",
]

log = logging.getLogger(__name__)

SMTP_USER_ENV = "FORECAST_SMTP_USER"
SMTP_PASSWORD_ENV = "FORECAST_SMTP_PASSWORD"
DEFAULT_TIMEOUT = 10.0
#: At most this much of a webhook's answer body is read (the status is what counts).
MAX_ANSWER_BYTES = 65536
SPEC_HELP = "stdout | file:PATH | webhook:URL | slack:URL | smtp://HOST[:PORT]?to=ADDR&from=ADDR[&starttls=1]"


def _control_position(text: str) -> int:
    """Index of the first space or control character in ``text``, or -1."""
    for i, ch in enumerate(text):
        if ord(ch) <= 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029":
            return i
    return -1


def _safe_port(parts: urllib.parse.SplitResult, what: str) -> int | None:
    """The URL's port, or a :class:`NotifySpecError` that does not echo the URL."""
    try:
        port = parts.port
    except ValueError:
        raise NotifySpecError(f"{what}: the port is not a number from 1 to 65535") from None
    if port == 0:
        raise NotifySpecError(f"{what}: the port is not a number from 1 to 65535")
    return port


class _Deadline:
    """A whole-send deadline: at expiry the watched socket is shut down, so a blocked read returns.

    A socket timeout bounds each read; a receiver that sends one byte a second never trips it.
    This bounds the whole exchange instead.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.monotonic()
        self.expired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return max(0.05, self.seconds - (time.monotonic() - self.started))

    def watch(self, socket_of: Any) -> None:
        """Shut down ``socket_of()`` (a callable, as the socket may not exist yet) at the deadline."""

        def expire() -> None:
            self.expired = True
            sock = socket_of()
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        self._timer = threading.Timer(self.remaining(), expire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``...`` (longest first), on one line, cut short."""
    for secret in sorted((x for x in secrets if x and len(x) >= 4), key=len, reverse=True):
        text = text.replace(secret, "...")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 200 else line[:200] + "..."


def alert_line(alert: Mapping[str, Any]) -> str:
    """The alert as one line of JSON (the same bytes for stdout, files and ``--replay``)."""
    return json.dumps(alert, separators=(", ", ": "), ensure_ascii=False)


def alert_text(alert: Mapping[str, Any]) -> str:
    """A one-line human summary of an alert."""
    probability = alert.get("probability")
    if alert.get("rule") == "surprise":
        what = (
            f"count {alert.get('count')} is surprisingly {'high' if alert['direction'] == 'up' else 'low'} "
            f"(tail probability {probability}, predictive median {alert.get('predictive_median')})"
        )
    else:
        what = (
            f"rate shift {alert['direction']} (P(changepoint within {alert.get('within_last')} obs) = "
            f"{probability}; mean {alert.get('rate_before')} -> {alert.get('rate_after')} since "
            f"{alert.get('regime_start')})"
        )
    return f"[forecast alert] {alert['front']} {alert['date']}: {what} [as of {alert['as_of']}, id {alert['id'][:12]}]"


class Notifier:
    """A destination.  ``key`` identifies it in the outbox; ``describe()`` is safe to log."""

    key: str

    def describe(self) -> str:
        return self.key

    def secrets(self) -> list[str]:
        """Strings that must never appear in a message (tokens in URLs, passwords)."""
        return []

    def send(self, alert: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def failure(self, error: BaseException) -> str:
        """What to log and store when ``send`` raised ``error``: no traceback, no secret."""
        if isinstance(error, NotifyError):
            return scrub(str(error), self.secrets())
        detail = scrub(str(error), self.secrets())
        return f"{self.describe()}: unexpected {type(error).__name__}" + (f": {detail}" if detail else "")


class StdoutNotifier(Notifier):
    """JSON lines on a text stream (standard output by default)."""

    def __init__(self, stream: TextIO | None = None):
        self.key = "stdout"
        self.stream = stream

    def send(self, alert: Mapping[str, Any]) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        try:
            stream.write(alert_line(alert) + "\n")
            stream.flush()
        except (OSError, ValueError) as error:
            raise NotifyError(f"cannot write to standard output: {error}") from error


class FileNotifier(Notifier):
    """JSON lines appended to a file (created readable and writable by its owner only, 0600)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().absolute()
        self.key = f"file:{self.path}"

    def send(self, alert: Mapping[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and f'"id": "{alert["id"]}"' in self.path.read_text(encoding="utf-8"):
                log.info(
                    "alert %s is already in %s (an earlier run stopped before recording it)",
                    alert["id"][:12],
                    self.path,
                )
                return
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(descriptor, "a", encoding="utf-8") as handle:
                handle.write(alert_line(alert) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise NotifyError(f"cannot append to {self.path}: {error.strerror or error}") from error


def _redacted_url(url: str) -> str:
    """``scheme://host[:port]/...``: a URL as it may be logged (no path, query or user)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    if _control_position(host) >= 0:
        host = "?"
    if port:
        host += f":{port}"
    return f"{parts.scheme[:10]}://{host[:100]}/..."


class WebhookNotifier(Notifier):
    """HTTP POST of JSON; ``slack=True`` posts ``{"text": ...}``.

    Raises
    ------
    NotifySpecError
        When the URL is not http(s), has no host, a port out of range, or a space or control
        character (the message never shows the URL).
    """

    def __init__(self, url: str, *, slack: bool = False, timeout: float = DEFAULT_TIMEOUT):
        kind = "slack" if slack else "webhook"
        position = _control_position(url)
        if position >= 0:
            raise NotifySpecError(
                f"a {kind} URL must not hold spaces or control characters (found one at character {position + 1}); "
                "percent-encode it (a space is %20)"
            )
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifySpecError(f"a {kind} needs an http:// or https:// URL with a host, got {_redacted_url(url)!r}")
        _safe_port(parts, f"{kind} URL for {parts.hostname}")
        self.url = url
        self.slack = slack
        self.timeout = timeout
        self.key = f"{kind}:{url}"

    def describe(self) -> str:
        return f"{'slack' if self.slack else 'webhook'}:{_redacted_url(self.url)}"

    def secrets(self) -> list[str]:
        parts = urllib.parse.urlsplit(self.url)
        return [self.url, parts.path, parts.query, parts.username or "", parts.password or ""]

    def payload(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        return {"text": alert_text(alert)} if self.slack else dict(alert)

    def _connection(self, parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
        """A connection to the receiver, or through the proxy that ``http(s)_proxy`` names.

        The proxy settings and ``no_proxy`` are read as :mod:`urllib` reads them; an HTTPS
        receiver is reached through a CONNECT tunnel, so the proxy never sees the URL's path.
        """
        host, port = parts.hostname or "", parts.port
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(host):
            proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            proxy_host, proxy_port = proxy_parts.hostname or "", proxy_parts.port or 8080
            if parts.scheme == "https":
                tunnel = http.client.HTTPSConnection(
                    proxy_host, proxy_port, timeout=timeout, context=ssl.create_default_context()
                )
                tunnel.set_tunnel(host, port)
                return tunnel
            return http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def send(self, alert: Mapping[str, Any]) -> None:
        body = json.dumps(self.payload(alert)).encode("utf-8")
        parts = urllib.parse.urlsplit(self.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(alert["id"]),
            "User-Agent": "forecast-alert",
        }
        deadline = _Deadline(self.timeout)
        connection = self._connection(parts, deadline.remaining())
        if parts.scheme == "http" and connection.host != parts.hostname:
            target = self.url  # through an HTTP proxy: the request names the whole URL
        deadline.watch(lambda: connection.sock)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_ANSWER_BYTES)
            status = response.status
        except (http.client.HTTPException, OSError, ValueError) as error:
            if deadline.expired:
                raise NotifyError(
                    f"{self.describe()} did not complete the exchange within {self.timeout:g} s (whole-send deadline)"
                ) from None
            reason = scrub(str(getattr(error, "reason", error)) or type(error).__name__, self.secrets())
            raise NotifyError(f"{self.describe()} unreachable: {reason}") from None
        finally:
            deadline.cancel()
            connection.close()
        if deadline.expired:
            raise NotifyError(
                f"{self.describe()} did not complete the exchange within {self.timeout:g} s (whole-send deadline)"
            )
        if not 200 <= status < 300:
            raise NotifyError(f"{self.describe()} answered HTTP {status}")


class SmtpNotifier(Notifier):
    """One e-mail per alert over SMTP (STARTTLS or TLS; login from the environment)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        to: tuple[str, ...],
        sender: str,
        starttls: bool = False,
        implicit_tls: bool = False,
        cafile: str | None = None,
        subject: str = "[forecast alert]",
        timeout: float = DEFAULT_TIMEOUT,
        key: str = "",
        environ: Mapping[str, str] | None = None,
    ):
        self.host = host
        self.port = port
        self.to = to
        self.sender = sender
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.cafile = cafile
        self.subject = subject
        self.timeout = timeout
        self.key = key or f"smtp://{host}:{port}?to={','.join(to)}&from={sender}"
        self.environ = environ

    def describe(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        tls = " (STARTTLS)" if self.starttls else ""
        return f"{scheme}://{self.host}:{self.port}{tls} to {', '.join(self.to)}"

    def message(self, alert: Mapping[str, Any]) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = f"{self.subject} {alert['front']} {alert['direction']} on {alert['date']} ({alert['rule']})"
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Message-ID"] = f"<{alert['id']}@forecast-alert>"
        mail.set_content(alert_text(alert) + "\n\n" + json.dumps(alert, indent=2) + "\n")
        return mail

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def secrets(self) -> list[str]:
        environ = self.environ if self.environ is not None else os.environ
        return [self.key, environ.get(SMTP_PASSWORD_ENV, "")]

    def send(self, alert: Mapping[str, Any]) -> None:
        environ = self.environ if self.environ is not None else os.environ
        user = environ.get(SMTP_USER_ENV)
        password = environ.get(SMTP_PASSWORD_ENV)
        deadline = _Deadline(self.timeout)
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(timeout=deadline.remaining(), context=self._context())
        else:
            client = smtplib.SMTP(timeout=deadline.remaining())
        client._host = self.host  # type: ignore[attr-defined] # the TLS server name (set by __init__ only)
        deadline.watch(lambda: getattr(client, "sock", None))
        try:
            client.connect(self.host, self.port)
            with client:
                client.ehlo()
                if self.starttls:
                    client.starttls(context=self._context())
                    client.ehlo()
                if user and password:
                    client.login(user, password)
                client.send_message(self.message(alert))
        except smtplib.SMTPAuthenticationError as error:
            raise NotifyError(f"{self.describe()}: login refused (code {error.smtp_code})") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as error:
            if deadline.expired:
                raise NotifyError(
                    f"{self.describe()} did not complete the exchange within {self.timeout:g} s (whole-send deadline)"
                ) from None
            if isinstance(error, smtplib.SMTPException):
                detail = scrub(_first_line(error), self.secrets())
                raise NotifyError(f"{self.describe()}: {type(error).__name__}: {detail}") from None
            raise NotifyError(f"{self.describe()} unreachable: {scrub(_first_line(error), self.secrets())}") from None
        finally:
            deadline.cancel()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
