"""TLS for the sidecar-injection webhook: cert-manager's files, or a self-managed CA.

Self-managed: the first replica to start generates a CA and a serving certificate for the
webhook Service (``<service>.<namespace>.svc`` and its short forms) and stores them in one
Secret; a replica that loses the create race (409) reads the winner's. Every replica serves
the same certificate and writes the same caBundle into the chart's
MutatingWebhookConfiguration, so two replicas never fight over it. A certificate within
30 days of expiry (or for other names) is replaced, guarded by the Secret's resourceVersion.

cert-manager: the chart mounts the Certificate's Secret; kopf's server re-reads the files when
they change, and cert-manager's CA injector writes the caBundle.

``cryptography`` comes with the ``operator`` extra.
"""

from __future__ import annotations

import base64
import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from switchyard_router import clock

from .kube import Kube, KubeError, core_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .webhook import SelfManagedCerts, ServerSettings

JSON = dict[str, Any]
log = logging.getLogger("switchyard.webhook")

RENEW_BEFORE = datetime.timedelta(days=30)
WEBHOOK_CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


@dataclass(frozen=True)
class CertBundle:
    ca: bytes  # PEM
    cert: bytes  # PEM, the serving certificate signed by `ca`
    key: bytes  # PEM, PKCS#8, unencrypted

    def secret_data(self) -> dict[str, str]:
        return {
            "ca.crt": base64.b64encode(self.ca).decode(),
            "tls.crt": base64.b64encode(self.cert).decode(),
            "tls.key": base64.b64encode(self.key).decode(),
        }

    @classmethod
    def from_secret(cls, secret: JSON) -> CertBundle | None:
        data = secret.get("data") or {}
        try:
            return cls(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")))
        except (KeyError, ValueError):
            return None

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in (("ca.crt", self.ca), ("tls.crt", self.cert), ("tls.key", self.key)):
            target = directory / name
            target.write_bytes(content)
            target.chmod(0o600)


def service_names(service: str, namespace: str) -> list[str]:
    svc = f"{service}.{namespace}.svc"
    return [svc, service, f"{service}.{namespace}", f"{svc}.cluster.local"]


def generate(dns_names: list[str], validity_days: int = 3650) -> CertBundle:
    """A fresh CA (P-256) and a serving certificate for `dns_names` signed by it."""
    now = clock.now()
    not_before = now - datetime.timedelta(minutes=5)  # clock skew between nodes
    not_after = now + datetime.timedelta(days=validity_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchyard-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return CertBundle(
        ca=ca.public_bytes(pem),
        cert=cert.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def is_usable(bundle: CertBundle, dns_names: list[str], now: datetime.datetime | None = None) -> bool:
    """Parses, covers every name and stays valid for longer than RENEW_BEFORE."""
    now = now or clock.now()
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert)
        x509.load_pem_x509_certificate(bundle.ca)
        serialization.load_pem_private_key(bundle.key, password=None)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = set(sans.get_values_for_type(x509.DNSName))
    return set(dns_names) <= covered and cert.not_valid_after_utc - now > RENEW_BEFORE


async def ensure_secret(kube: Kube, config: SelfManagedCerts) -> CertBundle:
    """The shared CA and serving certificate: read, or generated and stored (race-safe)."""
    names = service_names(config.service_name, config.namespace)
    path = core_path("secrets", config.namespace, config.secret_name)
    for _ in range(5):
        secret = await kube.get(path)
        bundle = CertBundle.from_secret(secret) if secret else None
        if bundle is not None and is_usable(bundle, names):
            return bundle
        fresh = generate(names, config.validity_days)
        try:
            if secret is None:
                await kube.create(
                    core_path("secrets", config.namespace),
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "type": "kubernetes.io/tls",
                        "metadata": {
                            "name": config.secret_name,
                            "namespace": config.namespace,
                            "labels": {"app.kubernetes.io/managed-by": "switchyard-operator"},
                        },
                        "data": fresh.secret_data(),
                    },
                )
            else:
                rv = secret.get("metadata", {}).get("resourceVersion")
                await kube.patch(path, {"metadata": {"resourceVersion": rv}, "data": fresh.secret_data()})
            log.info("webhook certificate stored in Secret %s/%s", config.namespace, config.secret_name)
            return fresh
        except KubeError as exc:
            if exc.status != 409:
                raise
            # Another replica stored its certificate first: use that one.
    raise RuntimeError(f"could not settle the webhook certificate in Secret {config.secret_name}")


async def patch_ca_bundle(kube: Kube, name: str, ca: bytes) -> bool:
    """Write `ca` into every webhook of the MutatingWebhookConfiguration; False if it is absent."""
    path = f"{WEBHOOK_CONFIGURATIONS}/{name}"
    bundle = base64.b64encode(ca).decode()
    for _ in range(5):
        current = await kube.get(path)
        if current is None:
            log.warning("MutatingWebhookConfiguration %s not found: caBundle not written", name)
            return False
        webhooks: list[JSON] = current.get("webhooks") or []
        if all(w.get("clientConfig", {}).get("caBundle") == bundle for w in webhooks):
            return True
        for webhook in webhooks:
            webhook.setdefault("clientConfig", {})["caBundle"] = bundle
        rv = current.get("metadata", {}).get("resourceVersion")
        try:
            await kube.patch(path, {"metadata": {"resourceVersion": rv}, "webhooks": webhooks})
            return True
        except KubeError as exc:
            if exc.status != 409:
                raise
    return False


class SelfManagedWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS webhook server with the shared self-managed certificate.

    The certificate is settled when kopf starts the server (after login), written to
    `work_dir` for the TLS context, and its CA patched into the webhook configuration.
    """

    def __init__(self, settings: ServerSettings, memo: Any) -> None:
        assert settings.self_managed is not None
        directory = Path(settings.work_dir)
        super().__init__(
            addr="0.0.0.0",  # the Service reaches the pod IP
            port=settings.port,
            certfile=directory / "tls.crt",
            pkeyfile=directory / "tls.key",
            cafile=directory / "ca.crt",
        )
        self.certs = settings.self_managed
        self.directory = directory
        self.memo = memo

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        kube: Kube = self.memo.runtime.kube
        bundle = await ensure_secret(kube, self.certs)
        bundle.write(self.directory)
        await patch_ca_bundle(kube, self.certs.webhook_configuration, bundle.ca)
        async for client_config in super().__call__(fn):
            yield client_config


def webhook_server(settings: ServerSettings, memo: Any) -> kopf.WebhookServer:
    """The server for `settings.admission.server`, by certificate source."""
    if settings.self_managed is not None:
        return SelfManagedWebhookServer(settings, memo)
    if settings.cert_dir is None:
        raise ValueError("the webhook needs either server.certDir (cert-manager) or server.selfManaged")
    directory = Path(settings.cert_dir)
    return kopf.WebhookServer(
        addr="0.0.0.0",
        port=settings.port,
        certfile=directory / "tls.crt",
        pkeyfile=directory / "tls.key",
        cafile=directory / "ca.crt",
    )
