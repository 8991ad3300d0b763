"""S7, S11 and R23: outgoing HTTP from jobs. A fetch, a webhook with retries and
exponential backoff, and no way to reach internal addresses unless allow-listed, checked at
connect time on every hop."""

from __future__ import annotations

import itertools
import ssl
from datetime import datetime
from pathlib import Path

import httpx2
import pytest
import trustme
from demo_harness import Demo, Target, serve, target_app

from examples.demo.ssrf import (
    AddressPolicy,
    BlockedAddressError,
    guarded_client,
    parse_allow_list,
)


async def test_s7_async_fetch_records_the_status_code(demo: Demo, target: Target) -> None:
    response = await demo.client.post("/fetch", params={"url": f"{target.url}/ok"})
    assert response.status_code == 200
    done = await demo.wait(response.json()["task_id"])
    assert done["result"] == {"url": f"{target.url}/ok", "status_code": 200}
    assert target.paths() == ["/ok"]


async def test_s11_webhook_is_retried_with_exponential_backoff(
    demo: Demo, target: Target
) -> None:
    response = await demo.client.post(
        "/webhook", params={"url": f"{target.url}/flaky/one"}, json={"event": "paid", "n": 1}
    )
    done = await demo.wait(response.json()["task_id"])
    # Two 503s, then delivered on the third and last try.
    assert done["state"] == "completed" and done["result"] == {"status_code": 200, "attempt": 3}
    assert [e["message"] for e in done["errors"]] == [f"{target.url}/flaky/one answered 503"] * 2
    hits = [h for h in target.hits if h[0] == "/flaky/one"]
    assert len(hits) == 3
    assert all(h[3] == b'{"event":"paid","n":1}' for h in hits)
    # One idempotency key for every attempt, so the receiver can drop duplicates.
    assert len({h[2]["idempotency-key"] for h in hits}) == 1
    # Waits of base x 2^(n-1): at least 1x then 2x the configured base (no jitter).
    base = demo.settings.retry_backoff
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(hits)]
    assert gaps[0] >= base * 0.9 and gaps[1] >= 2 * base * 0.9


async def test_s11_final_failure_is_recorded_after_three_tries(
    demo: Demo, target: Target
) -> None:
    response = await demo.client.post("/webhook", params={"url": f"{target.url}/fail"},
                                      json={"x": 1})
    done = await demo.wait(response.json()["task_id"])
    assert done["state"] == "failed" and done["attempt"] == 3 and done["max_attempts"] == 3
    assert len(done["errors"]) == 3 and done["reason"] == "error"
    times = [datetime.fromisoformat(e["at"]) for e in done["errors"]]
    assert times == sorted(times)
    assert target.paths() == ["/fail"] * 3
    assert (await demo.client.post("/webhook", params={"url": f"{target.url}/ok"},
                                   json=[1, 2])).status_code == 422  # data must be an object


INTERNAL = [
    "http://127.0.0.1:{port}/internal", "http://127.1:{port}/internal",
    "http://2130706433:{port}/internal", "http://0x7f000001:{port}/internal",
    "http://0177.0.0.1:{port}/internal", "http://0x7f.0.0.1:{port}/internal",
    "http://localhost:{port}/internal", "http://LOCALHOST.:{port}/internal",
    "http://[::1]:{port}/internal", "http://[::ffff:127.0.0.1]:{port}/internal",
    "http://[::ffff:7f00:1]:{port}/internal", "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/x",
    "http://[::127.0.0.1]:{port}/internal", "http://0.0.0.0:{port}/internal",
    "http://0:{port}/internal", "http://10.0.0.1/", "http://172.16.5.4/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://100.64.0.1/",
    "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://224.0.0.1/",
    "http://255.255.255.255/", "http://[::]:{port}/internal",
]


async def test_r23_internal_addresses_are_refused_at_enqueue_and_at_connect(
    demo: Demo, target: Target
) -> None:
    hidden = Target()
    async with serve(target_app(hidden)) as hidden_url:
        port = int(hidden_url.rsplit(":", 1)[1])
        urls = [u.format(port=port) for u in INTERNAL]
        # 1. At enqueue: a clear 403 (a well-formed URL, a forbidden destination), or 422
        # for a spelling the schema refuses. A name
        # that does not resolve now is accepted (it may resolve later), and then stopped
        # at connect time like the rest.
        accepted = []
        for url in urls:
            for path in ("/webhook", "/fetch"):
                response = await demo.client.post(path, params={"url": url}, json={"a": 1})
                if response.status_code == 200:
                    accepted.append(response.json()["task_id"])
                else:
                    # 422: a spelling the schema does not take (octal, hex, IPv6 literal).
                    assert response.status_code in (403, 422), (path, url, response.text)
                    if response.status_code == 403:
                        assert "refused URL" in response.json()["detail"]
        assert len(accepted) <= 4, accepted
        for url in ("ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/",
                    "gopher://127.0.0.1/", "//no-scheme", "http://"):
            response = await demo.client.post("/webhook", params={"url": url}, json={})
            assert response.status_code == 422, url

        # 2. At connect, on every hop: an allowed target that redirects inside is stopped
        # at the redirect, whatever the encoding of the internal address.
        job_ids = list(accepted)
        for url in urls:
            redirect = str(httpx2.URL(f"{target.url}/redirect", params={"to": url}))
            response = await demo.client.post("/fetch", params={"url": redirect})
            assert response.status_code == 200, response.text
            job_ids.append(response.json()["task_id"])
        for job_id in job_ids:
            done = await demo.wait(job_id)
            assert done["state"] == "failed", done
            # Blocked, or a hop that is not even a valid URL, or a name that does not resolve.
            expected = ("BlockedAddressError", "RemoteProtocolError", "ConnectError")
            assert done["errors"][-1]["type"] in expected, done["errors"]
        # The internal service was never reached, by any of them.
        assert hidden.hits == []
    assert target.paths().count("/redirect") >= len(urls)  # unresolvable ones retry once


async def test_r23_the_guard_checks_every_connection_itself() -> None:
    """The transport-level guard without the app: the allow-list opens exactly one port;
    a DNS name is resolved and checked at connect time; a redirect is a new connect."""
    allowed, hidden = Target(), Target()
    async with serve(target_app(allowed)) as allowed_url, serve(target_app(hidden)) as hidden_url:
        allowed_port = allowed_url.rsplit(":", 1)[1]
        hidden_port = hidden_url.rsplit(":", 1)[1]
        policy = AddressPolicy(parse_allow_list(f"127.0.0.1/32:{allowed_port}"))
        async with guarded_client(policy) as client:
            assert (await client.get(f"{allowed_url}/ok")).status_code == 200
            with pytest.raises(BlockedAddressError):
                await client.get(f"http://127.0.0.1:{hidden_port}/internal")
            hop = f"http://127.0.0.1:{hidden_port}/internal"
            with pytest.raises(BlockedAddressError):
                await client.get(f"{allowed_url}/redirect", params={"to": hop})
            with pytest.raises(BlockedAddressError):
                await client.get(f"http://localhost:{hidden_port}/internal")
    assert hidden.hits == []
    assert [h[0] for h in allowed.hits].count("/redirect") == 1


async def test_r23_https_still_verifies_the_host_name(tmp_path: Path) -> None:
    """The guard connects to the address it checked, not the name; TLS must still check the
    certificate against the name in the URL."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    tls = ssl.create_default_context()
    ca.configure_trust(tls)
    secure = Target()
    async with serve(target_app(secure), ssl_certfile=str(tmp_path / "server.pem")) as url:
        port = url.rsplit(":", 1)[1]
        policy = AddressPolicy(parse_allow_list(f"127.0.0.1/32:{port}"))
        async with guarded_client(policy, tls=tls) as client:
            response = await client.get(f"https://localhost:{port}/ok")
            assert response.status_code == 200
            with pytest.raises(httpx2.ConnectError, match=r"certificate|hostname|IP"):
                await client.get(f"https://127.0.0.1:{port}/ok")  # not the certificate's name
    assert [h[0] for h in secure.hits] == ["/ok"]
