"""The example app's small parts on their own: settings from the environment, the address
policy's rules, upload name cleaning, the local SMTP sink's address in the data directory."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from examples.demo.local_sink import (
    SinkAddress,
    SinkAddressError,
    forget_sink,
    local_sink,
    read_sink,
    record_sink,
)
from examples.demo.mail import Mailer, PermanentMailError, TransientMailError, build_message
from examples.demo.settings import Settings, SettingsError
from examples.demo.ssrf import AddressPolicy, BlockedAddressError, is_internal, parse_allow_list
from examples.demo.uploads import TextSniffer, UnsupportedUpload, display_name


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "DEMO_DATA_DIR": str(tmp_path), "SMTP_HOST": "smtp.example.com",
        "SMTP_SECURITY": "TLS", "SMTP_USER": "me", "SMTP_PASSWORD": "pw",
        "DEMO_MAX_UPLOAD_MB": "1.5", "DEMO_WEBHOOK_ALLOW": "10.0.0.0/8, 127.0.0.1:8080",
        "DEMO_EMBEDDED_WORKER": "0",
    })
    assert settings.smtp.port == 465 and settings.smtp.security == "tls"
    assert settings.smtp.username == "me" and "pw" not in repr(settings)
    assert settings.jobs_url == f"sqlite:///{tmp_path}/jobs.db"
    assert settings.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert len(settings.webhook_allow) == 2 and not settings.embedded_worker
    defaults = Settings.from_env({})
    assert not defaults.smtp.configured and defaults.slow_seconds == 5.0


@pytest.mark.parametrize(("name", "value"), [
    ("SMTP_SECURITY", "ssl3"), ("SMTP_PORT", "twenty-five"), ("DEMO_STEP_SECONDS", "-1"),
    ("DEMO_WEBHOOK_ALLOW", "not-a-network"), ("DEMO_WEBHOOK_ALLOW", "127.0.0.1:99999"),
])
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.0.1", "10.1.2.3", "172.31.0.1", "192.168.0.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::", "fe80::1",
    "fd00::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::a9fe:a9fe",
    "2002:c0a8:0101::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "ff02::1",
])
def test_internal_addresses(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert not is_internal(ipaddress.ip_address(address))


def test_the_allow_list_opens_exactly_what_it_names() -> None:
    policy = AddressPolicy(parse_allow_list("127.0.0.1/32:8080, 10.0.0.0/8, [::1]:9000"))
    policy.check(ipaddress.ip_address("127.0.0.1"), 8080)
    policy.check(ipaddress.ip_address("::ffff:127.0.0.1"), 8080)  # the same host, mapped
    policy.check(ipaddress.ip_address("10.9.9.9"), 1)
    policy.check(ipaddress.ip_address("::1"), 9000)
    for address, port in (("127.0.0.1", 8081), ("127.0.0.2", 8080), ("::1", 9001),
                          ("169.254.169.254", 80)):
        with pytest.raises(BlockedAddressError):
            policy.check(ipaddress.ip_address(address), port)


@pytest.mark.parametrize(("raw", "shown"), [
    ("report.csv", "report.csv"), ("../../etc/passwd", "passwd"), ("C:\\x\\y.csv", "y.csv"),
    ("a/b/", "upload.csv"), ("\x00\x1b[31mred.csv", "[31mred.csv"), ("", "upload.csv"),
    ("x" * 300, "x" * 255), ("\u202egpj.csv", "gpj.csv"),
])
def test_display_names_are_cleaned(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


def test_the_sink_address_is_recorded_read_and_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "data" / "smtp-sink.json"
    assert read_sink(path) is None  # no web process: nothing recorded
    mine = SinkAddress("127.0.0.1", 2525)
    record_sink(path, mine)
    assert read_sink(path) == mine
    assert [p.name for p in path.parent.iterdir()] == ["smtp-sink.json"]  # no partial left
    forget_sink(path, SinkAddress("127.0.0.1", 2526))  # another's: kept
    assert read_sink(path) == mine
    forget_sink(path, mine)
    assert not path.exists()


@pytest.mark.parametrize("content", [
    "", "not json", "[]", '{"host": "127.0.0.1"}', '{"host": "mail.example.com", "port": 25}',
    '{"host": "10.0.0.1", "port": 25}', '{"host": "127.0.0.1", "port": 0}',
    '{"host": "127.0.0.1", "port": "25"}', '{"host": "127.0.0.1", "port": true}',
    '{"host": "127.0.0.1", "port": 70000}',
])
def test_a_sink_address_that_is_not_a_local_sinks_is_refused(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "smtp-sink.json"
    path.write_text(content)
    with pytest.raises(SinkAddressError, match=r"smtp-sink\.json"):
        read_sink(path)


async def test_without_smtp_host_the_mailer_finds_the_sink_in_the_data_dir(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"DEMO_DATA_DIR": str(tmp_path), "DEMO_SMTP_FAIL_RATE": "0"})
    mailer = Mailer(settings.smtp, settings.sink_file)
    message = build_message("a@example.com", "b@example.com", "Hi", "Hello")
    # No web process (yet): a temporary error, naming the file, so the job retries.
    with pytest.raises(TransientMailError, match=r"smtp-sink\.json"):
        await mailer.send(message)
    async with local_sink(settings) as sink:
        await mailer.send(message)
        assert [m.to for m in sink.mails] == [("b@example.com",)]
    assert not settings.sink_file.exists()
    # A configured server is used as configured, the data directory aside.
    with pytest.raises(PermanentMailError, match="SMTP_HOST"):
        await Mailer(settings.smtp).send(message)


def test_the_text_sniffer_takes_a_character_cut_between_chunks() -> None:
    sniffer = TextSniffer()
    sniffer.feed(b"a,caf\xc3")  # the first byte of \u00e9 ends this chunk
    sniffer.feed(b"\xa9\n")
    sniffer.feed(b"", final=True)
    cut = TextSniffer()
    cut.feed(b"a,b\n\xc3")
    with pytest.raises(UnsupportedUpload, match="byte 4"):
        cut.feed(b"", final=True)
    wrong = TextSniffer()
    wrong.feed(b"abc")
    with pytest.raises(UnsupportedUpload, match="byte 5"):
        wrong.feed(b"de\xff")
