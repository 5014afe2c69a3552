"""Notifiers against real local servers: a webhook receiver over HTTP and an SMTP server.

Both servers are started by the tests on the loopback interface.  The SMTP server
(aiosmtpd) speaks STARTTLS with a throw-away certificate made by the ``openssl`` command;
where ``openssl`` is missing that test is skipped and the STARTTLS branch is still covered
with a mocked ``smtplib``.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
from contextlib import closing, contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest

from forecast.errors import NotifyError, NotifySpecError
from forecast.jobs.alert import EXIT_NOT_DELIVERED, EXIT_OK, AlertRequest, run_alert_job
from forecast.jobs.notify import (
    SMTP_PASSWORD_ENV,
    SMTP_USER_ENV,
    FileNotifier,
    SmtpNotifier,
    StdoutNotifier,
    WebhookNotifier,
)
from forecast.jobs.notify_spec import parse_notify_spec
from tests.test_alert_job import day, write_events

ALERT = {
    "id": "ab" * 32,
    "front": "gaza",
    "date": "2023-12-01",
    "direction": "up",
    "rule": "changepoint",
    "probability": 0.99,
    "as_of": "2023-12-01",
    "within_last": 7,
    "rate_before": 13.9,
    "rate_after": 97.0,
    "regime_start": "2023-12-01",
}


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# A webhook receiver


class Receiver:
    """Records every POST; answers with the next status in ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(body),
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def accepted(self) -> list[dict]:
        return [r for r in self.requests if 200 <= r["status"] < 300]


@contextmanager
def http_server(receiver: Receiver, port: int = 0):
    server = ThreadingHTTPServer(("127.0.0.1", port), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_webhook_posts_the_alert_as_json_with_an_idempotency_key():
    receiver = Receiver()
    with http_server(receiver) as url:
        WebhookNotifier(f"{url}/hook/secret-token").send(ALERT)
        WebhookNotifier(f"{url}/slack", slack=True).send(ALERT)
    plain, slack = receiver.requests
    assert plain["body"] == ALERT and plain["path"] == "/hook/secret-token"
    assert plain["headers"]["Content-Type"] == "application/json"
    assert plain["headers"]["Idempotency-Key"] == ALERT["id"]
    assert set(slack["body"]) == {"text"} and "gaza" in slack["body"]["text"] and "up" in slack["body"]["text"]


def test_webhook_failures_raise_notify_error_without_the_secret_path():
    receiver = Receiver([500])
    with http_server(receiver) as url:
        with pytest.raises(NotifyError, match="HTTP 500") as error:
            WebhookNotifier(f"{url}/T000/B000/XXXXSECRET").send(ALERT)
    assert "XXXXSECRET" not in str(error.value)
    with pytest.raises(NotifyError, match="unreachable"):
        WebhookNotifier(f"http://127.0.0.1:{free_port()}/x", timeout=2).send(ALERT)


# --------------------------------------------------------------------------------------------
# Through the job: outbox, retries, exactly once


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return write_events(tmp_path / "events.csv")


def run(tmp_path: Path, events: Path, notify: tuple[str, ...], **changes):
    request = AlertRequest(
        state=tmp_path / "state.sqlite",
        events=(events,),
        as_of=day(75),
        since=day(50),
        notify=notify,
        notify_timeout=2.0,
        **changes,
    )
    return run_alert_job(request, stdout=io.StringIO())


def test_a_server_answering_500_then_200_gets_each_alert_exactly_once(tmp_path, events):
    receiver = Receiver([500])
    with http_server(receiver) as url:
        first = run(tmp_path, events, (f"webhook:{url}/hook",))
        assert first.issued and first.exit_code() == EXIT_NOT_DELIVERED
        assert first.delivered == 0 and len(receiver.requests) == 1  # the destination is not hammered
        second = run(tmp_path, events, (f"webhook:{url}/hook",))
        assert second.exit_code() == EXIT_OK and second.issued == []
        third = run(tmp_path, events, (f"webhook:{url}/hook",))
    accepted = [r["body"]["id"] for r in receiver.accepted()]
    assert sorted(accepted) == sorted(a["id"] for a in first.issued)
    assert len(accepted) == len(set(accepted))
    assert third.delivered == 0
    with closing(sqlite3.connect(tmp_path / "state.sqlite")) as db:
        attempts = db.execute("SELECT MAX(attempts), COUNT(*) - COUNT(delivered_at) FROM outbox").fetchone()
    assert attempts == (2, 0)


def test_a_notifier_that_is_down_then_up_receives_the_alert_once(tmp_path, events):
    port = free_port()
    spec = f"webhook:http://127.0.0.1:{port}/hook"
    down = run(tmp_path, events, (spec, "stdout"))
    assert down.issued and down.failed_destinations == [f"webhook:http://127.0.0.1:{port}/..."]
    assert down.delivered == len(down.issued)  # stdout got them; the webhook did not
    receiver = Receiver()
    with http_server(receiver, port):
        up = run(tmp_path, events, (spec, "stdout"))
        assert up.failed_destinations == [] and up.delivered == len(down.issued)
        run(tmp_path, events, (spec, "stdout"))
    ids = [r["body"]["id"] for r in receiver.accepted()]
    assert sorted(ids) == sorted(a["id"] for a in down.issued) and len(ids) == len(set(ids))


# --------------------------------------------------------------------------------------------
# SMTP


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": message_from_bytes(envelope.content),
                "tls": session.ssl is not None,
            }
        )
        return "250 OK"


@contextmanager
def smtp_server(mailbox: Mailbox, **kwargs):
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_plain_smtp_delivers_one_mail_per_alert(tmp_path, events):
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        spec = f"smtp://127.0.0.1:{port}?to=ops@example.org,duty@example.org&from=forecast@example.org"
        result = run(tmp_path, events, (spec,))
        run(tmp_path, events, (spec,))
    assert result.issued and len(mailbox.messages) == len(result.issued)
    mail = mailbox.messages[0]
    assert mail["to"] == ["ops@example.org", "duty@example.org"] and mail["from"] == "forecast@example.org"
    assert mail["message"]["Message-ID"] == f"<{result.issued[0]['id']}@forecast-alert>"
    body = mail["message"].get_payload()
    assert result.issued[0]["id"] in body and "[forecast alert]" in mail["message"]["Subject"]


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test certificate")
def test_smtp_with_starttls_and_a_login_from_the_environment(tmp_path, events, monkeypatch, caplog):
    from aiosmtpd.smtp import AuthResult

    key, cert = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    seen_logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen_logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-pa55")

    mailbox = Mailbox()
    monkeypatch.setenv(SMTP_USER_ENV, "forecast-bot")
    monkeypatch.setenv(SMTP_PASSWORD_ENV, "s3cret-pa55")
    caplog.set_level(logging.DEBUG)
    with smtp_server(
        mailbox, tls_context=context, require_starttls=True, auth_required=True, authenticator=authenticator
    ) as port:
        spec = f"smtp://127.0.0.1:{port}?to=ops@example.org&from=forecast@example.org&starttls=1&cafile={cert}"
        result = run(tmp_path, events, (spec,))
        assert result.failed_destinations == []
        assert len(mailbox.messages) == len(result.issued) > 0
        assert all(message["tls"] for message in mailbox.messages)
        assert seen_logins[0] == (b"forecast-bot", b"s3cret-pa55")
        # A wrong password: refused, queued for later, and the password appears nowhere.
        monkeypatch.setenv(SMTP_PASSWORD_ENV, "wrong-pa55word")
        other = tmp_path / "other"
        other.mkdir()
        refused = run(other, events, (spec,))
        assert refused.issued and refused.failed_destinations and refused.exit_code() == EXIT_NOT_DELIVERED
        assert seen_logins[-1] == (b"forecast-bot", b"wrong-pa55word")
    assert "failed (attempt 1, kept for the next run)" in caplog.text
    assert "s3cret-pa55" not in caplog.text and "wrong-pa55word" not in caplog.text
    for state in (tmp_path / "state.sqlite", other / "state.sqlite"):
        with closing(sqlite3.connect(state)) as db:
            stored = "\n".join(
                str(row)
                for table in ("outbox", "alerts", "runs", "meta")
                for row in db.execute(f"SELECT * FROM {table}")
            )
        assert "s3cret" not in stored and "wrong-pa55" not in stored
    with closing(sqlite3.connect(other / "state.sqlite")) as db:
        assert db.execute("SELECT last_error FROM outbox").fetchone()[0].startswith("smtp://127.0.0.1")


def test_a_refused_login_is_reported_without_the_credentials(tmp_path, caplog):
    class RefusingSMTP:
        def __init__(self, *args, **kwargs):
            pass

        def connect(self, host, port):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def ehlo(self):
            pass

        def starttls(self, context=None):
            pass

        def login(self, user, password):
            import smtplib

            raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")

    caplog.set_level(logging.DEBUG)
    notifier = SmtpNotifier(
        "mail.example.org",
        587,
        to=("ops@example.org",),
        sender="f@example.org",
        starttls=True,
        environ={SMTP_USER_ENV: "bot", SMTP_PASSWORD_ENV: "hunter2-secret"},
    )
    with mock.patch("smtplib.SMTP", RefusingSMTP), pytest.raises(NotifyError, match="login refused") as error:
        notifier.send(ALERT)
    logging.getLogger("forecast").error("%s", error.value)
    assert "hunter2-secret" not in str(error.value) and "hunter2-secret" not in caplog.text


def test_starttls_branch_with_a_mocked_smtplib():
    calls: list[str] = []

    class FakeSMTP:
        def __init__(self, timeout):
            self.timeout = timeout

        def connect(self, host, port):
            calls.append(f"connect {host}:{port}")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            calls.append("quit")
            return False

        def ehlo(self):
            calls.append("ehlo")

        def starttls(self, context=None):
            assert isinstance(context, ssl.SSLContext)
            calls.append("starttls")

        def login(self, user, password):
            calls.append(f"login {user}")

        def send_message(self, message):
            calls.append(f"send {message['To']}")

    notifier = parse_notify_spec("smtp://mail.example.org?to=ops@example.org&from=f@example.org&starttls=1")
    assert isinstance(notifier, SmtpNotifier) and notifier.port == 587
    notifier.environ = {SMTP_USER_ENV: "bot", SMTP_PASSWORD_ENV: "pw"}
    with mock.patch("smtplib.SMTP", FakeSMTP):
        notifier.send(ALERT)
    assert calls == [
        "connect mail.example.org:587",
        "ehlo",
        "starttls",
        "ehlo",
        "login bot",
        "send ops@example.org",
        "quit",
    ]
    calls.clear()
    notifier.environ = {}
    with mock.patch("smtplib.SMTP", FakeSMTP):
        notifier.send(ALERT)
    assert not any(call.startswith("login") for call in calls)  # no credentials, no login


# --------------------------------------------------------------------------------------------
# SPECs, stdout and files


def test_notify_specs_parse_and_redact(tmp_path):
    assert isinstance(parse_notify_spec("stdout"), StdoutNotifier)
    file_notifier = parse_notify_spec(f"file:{tmp_path / 'a.jsonl'}")
    assert isinstance(file_notifier, FileNotifier) and file_notifier.key == f"file:{tmp_path / 'a.jsonl'}"
    slack = parse_notify_spec("slack:https://hooks.slack.com/services/T0/B0/SECRET")
    assert isinstance(slack, WebhookNotifier) and slack.slack
    assert slack.describe() == "slack:https://hooks.slack.com/..."
    smtps = parse_notify_spec("smtps://mail.example.org?to=a@b.org&from=c@d.org")
    assert isinstance(smtps, SmtpNotifier) and smtps.port == 465 and smtps.implicit_tls
    plain = parse_notify_spec("smtp://mail.example.org?to=a@b.org&from=c@d.org")
    assert plain.port == 25 and not plain.starttls


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("pigeon:coop", "unknown notify SPEC"),
        ("file:", "needs a path"),
        ("webhook:ftp://example.org/x", "http:// or https://"),
        ("smtp://mail.example.org?to=a@b.org", "to=ADDR and from=ADDR"),
        ("smtp://user:pw@mail.example.org?to=a@b.org&from=c@d.org", "FORECAST_SMTP_USER"),
        ("smtp://mail.example.org?to=a@b.org&from=c@d.org&tls=1", "unknown parameters ['tls']"),
        ("smtps://mail.example.org?to=a@b.org&from=c@d.org&starttls=1", "TLS from the start"),
    ],
)
def test_bad_specs_are_refused(spec, needle):
    with pytest.raises(NotifySpecError, match=None) as error:
        parse_notify_spec(spec)
    assert needle in str(error.value)
    assert "pw@" not in str(error.value)


def test_file_notifier_appends_lines_and_skips_an_id_already_written(tmp_path):
    path = tmp_path / "out" / "alerts.jsonl"
    notifier = FileNotifier(path)
    notifier.send(ALERT)
    notifier.send(ALERT)  # as after a run killed between writing and recording it
    notifier.send({**ALERT, "id": "cd" * 32})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [ALERT["id"], "cd" * 32]


def test_stdout_notifier_prints_one_json_object_per_line():
    stream = io.StringIO()
    StdoutNotifier(stream).send(ALERT)
    assert json.loads(stream.getvalue()) == ALERT and stream.getvalue().count("\n") == 1
