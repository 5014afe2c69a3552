"""Delivery under slow receivers and broken destinations, bad SPECs, and private files.

Every server here listens on 127.0.0.1 only and stops after a bounded number of steps.
"""

from __future__ import annotations

import io
import logging
import socket
import stat
import threading
import time
from contextlib import closing

import pytest

from forecast.errors import NotifyError, NotifySpecError
from forecast.jobs.alert import EXIT_NOT_DELIVERED, AlertRequest, run_alert_job
from forecast.jobs.alert_state import AlertStore
from forecast.jobs.notify import WebhookNotifier
from forecast.jobs.notify_spec import parse_notify_spec
from tests.test_alert_job import day, write_events

ALERT = {
    "id": "cd" * 32,
    "front": "north",
    "date": "2024-03-01",
    "direction": "up",
    "rule": "changepoint",
    "probability": 0.99,
    "as_of": "2024-03-01",
}


class DripServer:
    """Accepts connections on 127.0.0.1, reads the request, then answers one byte every ``step`` seconds.

    At most ``max_bytes`` bytes per connection (a bounded loop), so a client without a whole-send
    deadline is kept busy for ``max_bytes * step`` seconds.
    """

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\nok"

    def __init__(self, step: float = 0.2, max_bytes: int = 150):
        self.step = step
        self.max_bytes = max_bytes
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = threading.Event()
        self.sent = 0
        self.stop = threading.Event()
        self.read_first = True  # HTTP: the client speaks first; SMTP: the server greets first
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            with closing(connection):
                connection.settimeout(2)
                try:
                    if self.read_first:
                        connection.recv(65536)
                    self.requests.set()
                    for i in range(min(self.max_bytes, len(self.ANSWER))):
                        if self.stop.is_set():
                            break
                        connection.sendall(self.ANSWER[i : i + 1])
                        self.sent += 1
                        time.sleep(self.step)
                except OSError:
                    pass

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


def test_a_drip_feeding_receiver_is_cut_off_at_the_whole_send_deadline():
    with DripServer(step=0.2, max_bytes=150) as server:  # 30 s of drip without a whole-send deadline
        notifier = WebhookNotifier(f"http://127.0.0.1:{server.port}/hook/T0/SECRET", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(NotifyError, match="within 1 s") as error:
            notifier.send(ALERT)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert 0 < server.sent < 30  # it was dripping, and it was cut off
    assert "SECRET" not in str(error.value)


def test_a_slow_receiver_does_not_hold_the_state_lock(tmp_path):
    events = write_events(tmp_path / "events.csv")
    with DripServer(step=0.2, max_bytes=150) as server:
        request = AlertRequest(
            state=tmp_path / "state.sqlite",
            events=(events,),
            as_of=day(90),
            since=day(50),
            notify=(f"webhook:http://127.0.0.1:{server.port}/hook",),
            notify_timeout=3.0,
        )
        outcome: dict[str, object] = {}
        thread = threading.Thread(target=lambda: outcome.update(result=run_alert_job(request)))
        thread.start()
        assert server.requests.wait(30), "the run never reached the receiver"
        # While the first run is sending, another run takes the state's write lock at once.
        started = time.monotonic()
        with AlertStore(tmp_path / "state.sqlite", lock_timeout=0.5) as store, store.transaction():
            store.set_meta("touched", "yes")
        assert time.monotonic() - started < 0.5
        thread.join(60)
    result = outcome["result"]
    assert result.exit_code() == EXIT_NOT_DELIVERED  # type: ignore[attr-defined]
    assert result.pending == {f"webhook:http://127.0.0.1:{server.port}/...": len(result.issued)}  # type: ignore[attr-defined]


def test_a_destination_that_raises_anything_is_isolated_and_keeps_its_rows(tmp_path, monkeypatch, caplog):
    events = write_events(tmp_path / "events.csv")

    def explode(self, alert):
        raise RuntimeError(f"unexpected trouble with {self.url}")

    monkeypatch.setattr(WebhookNotifier, "send", explode)
    caplog.set_level(logging.INFO)
    out = io.StringIO()
    request = AlertRequest(
        state=tmp_path / "state.sqlite",
        events=(events,),
        as_of=day(90),
        since=day(50),
        notify=("webhook:http://127.0.0.1:9/hooks/T000/B000/TOKEN123", f"file:{tmp_path / 'a.jsonl'}", "stdout"),
    )
    result = run_alert_job(request, stdout=out)
    assert result.issued
    assert result.exit_code() == EXIT_NOT_DELIVERED
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == len(result.issued)
    assert len(out.getvalue().splitlines()) == len(result.issued)
    assert result.pending == {"webhook:http://127.0.0.1:9/...": len(result.issued)}
    assert "TOKEN123" not in caplog.text and "Traceback" not in caplog.text
    assert "unexpected RuntimeError" in caplog.text


def test_a_closed_standard_output_does_not_stop_the_other_destinations(tmp_path):
    events = write_events(tmp_path / "events.csv")
    closed = io.StringIO()
    closed.close()
    request = AlertRequest(
        state=tmp_path / "state.sqlite",
        events=(events,),
        as_of=day(90),
        since=day(50),
        notify=("stdout", f"file:{tmp_path / 'a.jsonl'}"),
    )
    result = run_alert_job(request, stdout=closed)
    assert result.exit_code() == EXIT_NOT_DELIVERED and result.failed_destinations == ["stdout"]
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == len(result.issued) > 0


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("webhook:http://127.0.0.1/hooks/T0 SECRET", "spaces or control characters"),
        ("webhook:http://127.0.0.1:99999/hooks/SECRET", "port"),
        ("slack:https://127.0.0.1/hooks/\rSECRET", "control characters"),
        ("smtp://127.0.0.1?to=a@b.org&from=c@d.org&subject=x%0D%0ABcc:SECRET@e.org", "subject"),
        ("smtp://127.0.0.1?to=a@b.org%0D%0ABcc:SECRET@e.org&from=c@d.org", "not a plain e-mail address"),
        ("smtp://bot:SECRET@?to=a@b.org&from=c@d.org", "credentials"),
        ("smtp://?to=a@b.org&from=c@d.org&password=SECRET", "needs a host"),
        ("smtp://127.0.0.1:70000?to=a@b.org&from=c@d.org&x=SECRET", "port"),
        ("xoxb-SECRET-token-pasted", "unknown notify SPEC"),
    ],
)
def test_bad_specs_are_refused_when_parsed_without_echoing_secrets(spec, needle):
    with pytest.raises(NotifySpecError) as error:
        parse_notify_spec(spec)
    assert needle in str(error.value)
    assert "SECRET" not in str(error.value)


def test_the_state_and_the_output_file_are_private(tmp_path):
    events = write_events(tmp_path / "events.csv")
    request = AlertRequest(
        state=tmp_path / "state.sqlite",
        events=(events,),
        as_of=day(90),
        since=day(50),
        notify=(f"file:{tmp_path / 'alerts.jsonl'}",),
    )
    assert run_alert_job(request).issued
    for path in (tmp_path / "state.sqlite", tmp_path / "alerts.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_webhooks_go_through_the_proxy_the_environment_names(monkeypatch):
    from tests.test_notifiers import Receiver, http_server

    receiver = Receiver()
    with http_server(receiver) as proxy:
        monkeypatch.setenv("http_proxy", proxy)
        monkeypatch.setenv("no_proxy", "")
        WebhookNotifier("http://hooks.invalid/T0/SECRET", timeout=5).send(ALERT)
        monkeypatch.setenv("no_proxy", "hooks.invalid")
        with pytest.raises(NotifyError, match="unreachable"):  # bypassed: straight to a host that does not exist
            WebhookNotifier("http://hooks.invalid/T0/SECRET", timeout=5).send(ALERT)
    (request,) = receiver.requests
    assert request["path"] == "http://hooks.invalid/T0/SECRET" and request["body"] == ALERT


def test_a_drip_feeding_mail_server_is_cut_off_at_the_whole_send_deadline():
    from forecast.jobs.notify import SmtpNotifier

    with DripServer(step=0.2, max_bytes=150) as server:  # its greeting drips for 30 s
        server.ANSWER = b"220 " + b"x" * 300 + b"\r\n"
        server.read_first = False
        notifier = SmtpNotifier("127.0.0.1", server.port, to=("ops@example.org",), sender="f@example.org", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(NotifyError, match="within 1 s"):
            notifier.send(ALERT)
        dripped = server.sent
    assert time.monotonic() - started < 2.5
    assert 0 < dripped < 30  # it was dripping its greeting, and it was cut off
