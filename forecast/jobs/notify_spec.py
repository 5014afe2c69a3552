"""``--notify`` SPECs: the notifier each names (the grammar is :mod:`forecast.jobs.notify`'s docstring).

A SPEC is checked when it is parsed (scheme, host, port, no spaces or control characters in a
URL, an address or a subject); no error shows a SPEC or URL in full.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TextIO

from forecast.errors import NotifySpecError
from forecast.jobs.notify import (
    DEFAULT_TIMEOUT,
    SMTP_PASSWORD_ENV,
    SMTP_USER_ENV,
    SPEC_HELP,
    FileNotifier,
    Notifier,
    SmtpNotifier,
    StdoutNotifier,
    WebhookNotifier,
    _control_position,
    _safe_port,
)

__all__ = ["parse_notify_spec"]


def _smtp_from_spec(spec: str, timeout: float) -> SmtpNotifier:
    """An :class:`SmtpNotifier` from its SPEC; errors name the host at most, never the SPEC."""
    position = _control_position(spec.replace(" ", "%20"))
    if position >= 0:
        raise NotifySpecError(f"an smtp SPEC must not hold control characters (found one at character {position + 1})")
    parts = urllib.parse.urlsplit(spec)
    implicit = parts.scheme == "smtps"
    if parts.username or parts.password:
        raise NotifySpecError(
            f"smtp SPEC for {parts.hostname or '(no host)'}: do not put credentials in the SPEC; set {SMTP_USER_ENV} "
            f"and {SMTP_PASSWORD_ENV} in the environment"
        )
    if not parts.hostname:
        raise NotifySpecError("an smtp SPEC needs a host: smtp://HOST[:PORT]?to=ADDR&from=ADDR")
    if not re.fullmatch(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+", parts.hostname):
        raise NotifySpecError("the host of an smtp SPEC may hold letters, digits, dots and hyphens only")
    where = f"smtp SPEC for {parts.hostname}"
    explicit_port = _safe_port(parts, where)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    allowed = ("to", "from", "starttls", "cafile", "subject")
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        shown = [name if len(name) <= 20 else name[:20] + "..." for name in unknown[:5]]
        raise NotifySpecError(f"{where}: unknown parameters {shown}; allowed: {', '.join(allowed)}")
    to = tuple(addr.strip() for value in query.get("to", []) for addr in value.split(",") if addr.strip())
    sender = (query.get("from") or [""])[-1].strip()
    if not to or not sender:
        raise NotifySpecError(f"{where}: an smtp SPEC needs to=ADDR and from=ADDR")
    named = [(f"to address {i}", address) for i, address in enumerate(to, start=1)] + [("from address", sender)]
    for name, address in named:
        if "@" not in address or _control_position(address) >= 0 or any(ch in address for ch in "<>,;\"'"):
            raise NotifySpecError(f"{where}: the {name} is not a plain e-mail address (NAME@DOMAIN)")
    starttls_text = (query.get("starttls") or ["0"])[-1].strip().lower()
    if starttls_text not in ("0", "1", "true", "false", "yes", "no"):
        raise NotifySpecError(f"{where}: starttls must be 1 or 0, got {starttls_text[:20]!r}")
    starttls = starttls_text in ("1", "true", "yes")
    if implicit and starttls:
        raise NotifySpecError(f"{where}: smtps:// is TLS from the start; drop starttls=1 or use smtp://")
    port = explicit_port or (465 if implicit else 587 if starttls else 25)
    cafile = query["cafile"][-1] if query.get("cafile") else None
    subject = (query.get("subject") or ["[forecast alert]"])[-1]
    if _control_position(subject.replace(" ", "_")) >= 0 or len(subject) > 200:
        raise NotifySpecError(
            f"{where}: the subject must be one line of at most 200 characters without control characters"
        )
    if cafile is not None and _control_position(cafile) >= 0:
        raise NotifySpecError(f"{where}: the cafile path holds a control character")
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
    head = text.split(":", 1)[0]
    if len(head) <= 12 and head.isascii() and head.replace("-", "").replace("_", "").isalnum():
        shown = f"{head!r}" + (" (with ':...')" if ":" in text else "")
    else:
        shown = f"of {len(text)} characters"  # may be a pasted secret: not echoed
    raise NotifySpecError(f"unknown notify SPEC {shown}; expected one of: {SPEC_HELP}")
