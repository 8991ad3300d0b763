"""The example app's small parts on their own: settings from the environment, the address
policy's rules, upload name cleaning."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from examples.demo.settings import Settings, SettingsError
from examples.demo.ssrf import AddressPolicy, BlockedAddressError, is_internal, parse_allow_list
from examples.demo.uploads import display_name


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
