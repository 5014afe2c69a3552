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
notification for the next run.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TextIO

from forecast.errors import ForecastError

__all__ = [
    "SMTP_PASSWORD_ENV",
    "SMTP_USER_ENV",
    "FileNotifier",
    "Notifier",
    "NotifyError",
    "NotifySpecError",
    "SmtpNotifier",
    "StdoutNotifier",
    "WebhookNotifier",
    "alert_line",
    "parse_notify_spec",
]

log = logging.getLogger(__name__)

SMTP_USER_ENV = "FORECAST_SMTP_USER"
SMTP_PASSWORD_ENV = "FORECAST_SMTP_PASSWORD"
DEFAULT_TIMEOUT = 10.0
SPEC_HELP = "stdout | file:PATH | webhook:URL | slack:URL | smtp://HOST[:PORT]?to=ADDR&from=ADDR[&starttls=1]"


class NotifyError(ForecastError):
    """A notification could not be delivered (it stays in the outbox)."""


class NotifySpecError(ForecastError):
    """A ``--notify`` SPEC is malformed."""


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

    def send(self, alert: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError


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
    """JSON lines appended to a file."""

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
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(alert_line(alert) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise NotifyError(f"cannot append to {self.path}: {error.strerror or error}") from error


def _redacted_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}/..."


class WebhookNotifier(Notifier):
    """HTTP POST of JSON; ``slack=True`` posts ``{"text": ...}``."""

    def __init__(self, url: str, *, slack: bool = False, timeout: float = DEFAULT_TIMEOUT):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifySpecError(f"a webhook needs an http:// or https:// URL, got {_redacted_url(url)!r}")
        self.url = url
        self.slack = slack
        self.timeout = timeout
        self.key = f"{'slack' if slack else 'webhook'}:{url}"

    def describe(self) -> str:
        return f"{'slack' if self.slack else 'webhook'}:{_redacted_url(self.url)}"

    def payload(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        return {"text": alert_text(alert)} if self.slack else dict(alert)

    def send(self, alert: Mapping[str, Any]) -> None:
        body = json.dumps(self.payload(alert)).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": str(alert["id"]),
                "User-Agent": "forecast-alert",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) checked
                status = response.status
        except urllib.error.HTTPError as error:
            error.close()  # the error holds the open response
            raise NotifyError(f"{self.describe()} answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise NotifyError(f"{self.describe()} unreachable: {reason}") from None
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

    def send(self, alert: Mapping[str, Any]) -> None:
        environ = self.environ if self.environ is not None else os.environ
        user = environ.get(SMTP_USER_ENV)
        password = environ.get(SMTP_PASSWORD_ENV)
        try:
            if self.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
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
        except smtplib.SMTPException as error:
            raise NotifyError(f"{self.describe()}: {type(error).__name__}: {_first_line(error)}") from None
        except (OSError, ssl.SSLError) as error:
            raise NotifyError(f"{self.describe()} unreachable: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _smtp_from_spec(spec: str, timeout: float) -> SmtpNotifier:
    parts = urllib.parse.urlsplit(spec)
    implicit = parts.scheme == "smtps"
    if not parts.hostname:
        raise NotifySpecError(f"{spec!r}: an smtp SPEC needs a host: smtp://HOST[:PORT]?to=ADDR&from=ADDR")
    if parts.username or parts.password:
        raise NotifySpecError(
            f"smtp SPEC for {parts.hostname}: do not put credentials in the SPEC; set {SMTP_USER_ENV} and "
            f"{SMTP_PASSWORD_ENV} in the environment"
        )
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    allowed = ("to", "from", "starttls", "cafile", "subject")
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise NotifySpecError(f"{spec!r}: unknown parameters {unknown}; allowed: {', '.join(allowed)}")
    to = tuple(addr.strip() for value in query.get("to", []) for addr in value.split(",") if addr.strip())
    sender = (query.get("from") or [""])[-1].strip()
    if not to or not sender:
        raise NotifySpecError(f"{spec!r}: an smtp SPEC needs to=ADDR and from=ADDR")
    starttls_text = (query.get("starttls") or ["0"])[-1].strip().lower()
    if starttls_text not in ("0", "1", "true", "false", "yes", "no"):
        raise NotifySpecError(f"{spec!r}: starttls must be 1 or 0, got {starttls_text!r}")
    starttls = starttls_text in ("1", "true", "yes")
    if implicit and starttls:
        raise NotifySpecError(f"{spec!r}: smtps:// is TLS from the start; drop starttls=1 or use smtp://")
    port = parts.port or (465 if implicit else 587 if starttls else 25)
    cafile = (query.get("cafile") or [None])[-1]
    subject = (query.get("subject") or ["[forecast alert]"])[-1]
    return SmtpNotifier(
        parts.hostname,
        port,
        to=to,
        sender=sender,
        starttls=starttls,
        implicit_tls=implicit,
        cafile=cafile,
        subject=subject,
        timeout=timeout,
        key=spec,
    )


def parse_notify_spec(spec: str, *, stdout: TextIO | None = None, timeout: float = DEFAULT_TIMEOUT) -> Notifier:
    """The notifier a SPEC names (see the module docstring for the grammar).

    Raises
    ------
    NotifySpecError
        When the SPEC is not one of the forms above.
    """
    text = spec.strip()
    if text == "stdout":
        return StdoutNotifier(stdout)
    if text.startswith("file:"):
        path = text[len("file:") :]
        if not path:
            raise NotifySpecError("file: needs a path, as in file:/var/log/forecast/alerts.jsonl")
        return FileNotifier(path)
    if text.startswith("webhook:"):
        return WebhookNotifier(text[len("webhook:") :], timeout=timeout)
    if text.startswith("slack:"):
        return WebhookNotifier(text[len("slack:") :], slack=True, timeout=timeout)
    if text.startswith(("smtp://", "smtps://")):
        return _smtp_from_spec(text, timeout)
    shown = text if ":" not in text else text.split(":", 1)[0] + ":..."
    raise NotifySpecError(f"unknown notify SPEC {shown!r}; expected one of: {SPEC_HELP}")
