"""EtcdClient over https against etcd with client certificate authentication (etcd's
--cert-file/--key-file/--trusted-ca-file/--client-cert-auth), certificates from ipc.certs."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ipc import TLSConfig
from ipc.certs import CertificateAuthority
from store.backend import connect
from store.client import StoreUnavailableError
from store.etcd import EtcdClient
from tests.store.contract.conftest import ETCD, EtcdProcess

pytestmark = [pytest.mark.slow, pytest.mark.debian(ETCD)]


def _issue_for_server_and_client(
    ca: CertificateAuthority, name: str, address: str
) -> tuple[Path, Path]:
    """etcd 3.4's gateway dials etcd's own gRPC port presenting the server certificate, so
    with --client-cert-auth that certificate must allow client auth too (etcd's TLS guide)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_file, key_file = ca.directory / f"{name}.crt", ca.directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def etcd_mtls() -> Iterator[tuple[str, dict[str, TLSConfig]]]:
    root = Path(tempfile.mkdtemp(prefix="tabby-etcd-tls-", dir="/tmp"))
    try:
        ca = CertificateAuthority(root / "ca", "etcd-ca")
        rogue = CertificateAuthority(root / "rogue", "rogue-ca")
        probe = EtcdProcess(root)  # picks the address the server certificate must name
        srv = _issue_for_server_and_client(ca, "etcd", probe.host)
        cli = ca.issue("tabby-confd", server=False)
        probe.tls_args = [
            "--cert-file", str(srv[0]),
            "--key-file", str(srv[1]),
            "--trusted-ca-file", str(ca.cert_file),
            "--client-cert-auth",
        ]  # fmt: skip
        good = TLSConfig(cli.cert_file, cli.key_file, ca.cert_file)
        tls = {
            "good": good,
            "no_cert": TLSConfig(ca_file=ca.cert_file),
            "wrong_ca": TLSConfig(cli.cert_file, cli.key_file, rogue.cert_file),
        }
        try:
            probe.start()
            probe.wait_ready(ctx=good.client_context())
            yield probe.url, tls
        finally:
            probe.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_https_round_trip_with_client_certificate(
    etcd_mtls: tuple[str, dict[str, TLSConfig]],
) -> None:
    url, tls = etcd_mtls
    assert url.startswith("https://")
    kv = connect([url], tls=tls["good"])
    assert isinstance(kv, EtcdClient)
    try:
        put = await kv.put(b"/tls/k", b"v")
        got = await kv.range(b"/tls/k")
        assert got.kvs[0].value == b"v" and got.kvs[0].mod_revision == put.revision
        it = kv.watch(b"/tls/k", start_revision=put.revision)
        try:
            first = await asyncio.wait_for(it.__anext__(), 10)
            assert [ev.kv.mod_revision for ev in first.events] == [put.revision]
        finally:
            await it.aclose()  # type: ignore[attr-defined]
    finally:
        await kv.close()


@pytest.mark.parametrize("which", ["no_cert", "wrong_ca"])
async def test_https_refused_without_a_trusted_pair(
    etcd_mtls: tuple[str, dict[str, TLSConfig]], which: str
) -> None:
    """No client certificate (etcd refuses the handshake) or a CA that does not sign etcd's
    certificate (we refuse it): nothing is sent, so even a write's outcome is known."""
    url, tls = etcd_mtls
    kv = EtcdClient([url], tls=tls[which], timeout=2)
    try:
        with pytest.raises(StoreUnavailableError) as err:
            await kv.put(b"/tls/refused", b"v")
        assert not err.value.outcome_unknown
    finally:
        await kv.close()


async def test_certificates_in_the_endpoint_url(
    etcd_mtls: tuple[str, dict[str, TLSConfig]],
) -> None:
    """What a daemon config can say with `store_endpoints` alone: etcdctl's --cacert/--cert/
    --key as query parameters of the https:// endpoint."""
    url, tls = etcd_mtls
    good = tls["good"]
    query = f"?cacert={good.ca_file}&cert={good.cert_file}&key={good.key_file}"
    kv = connect([url + query])
    try:
        assert isinstance(kv, EtcdClient) and kv.endpoints == [url]
        put = await kv.put(b"/tls/url", b"v")
        assert (await kv.range(b"/tls/url")).kvs[0].mod_revision == put.revision
    finally:
        await kv.close()
    for bad in (f"{url}?cacert={good.ca_file}&cert={good.cert_file}", f"{url}?password=x"):
        with pytest.raises(ValueError):
            EtcdClient(bad)
    with pytest.raises(ValueError, match="same certificates"):
        EtcdClient([url + query, url])
