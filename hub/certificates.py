"""Client certificates for mutual TLS: which agency a connection comes from.

With ``server.tls_client_ca`` set, the hub asks every client for a certificate issued by
that CA (the TLS layer checks the chain). A certificate proves nothing about *which*
agency is calling until an admin registers it: the hub keeps the SHA-256 fingerprint of
each registered certificate with the agency it belongs to. A request's bearer token then
counts only when the connection's certificate is registered and unrevoked, and, for a user
who belongs to an agency, registered to that same agency. So a stolen data-officer token is
useless from another agency's machines.

This module is pure: parsing a PEM certificate and fingerprinting DER bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hub.errors import BadRequest

__all__ = ["ClientCertificate", "fingerprint", "parse_certificate", "peer_fingerprint"]

_MAX_PEM = 20_000


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    fingerprint: str
    subject: str
    not_after_us: int


def fingerprint(der: bytes) -> str:
    """The certificate's SHA-256 fingerprint, lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def parse_certificate(pem: object, now: datetime) -> ClientCertificate:
    """One PEM certificate, still valid at ``now``, ready to register."""
    if not isinstance(pem, str) or len(pem) > _MAX_PEM:
        raise BadRequest(f"certificate must be one PEM certificate of at most {_MAX_PEM} bytes")
    if pem.count("-----BEGIN CERTIFICATE-----") != 1 or "PRIVATE KEY" in pem:
        raise BadRequest("certificate must hold exactly one PEM certificate and no key")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise BadRequest("certificate is not a readable PEM X.509 certificate") from None
    not_after = cert.not_valid_after_utc
    if not_after <= now.astimezone(UTC):
        raise BadRequest(f"certificate expired on {not_after:%Y-%m-%d}")

    der = cert.public_bytes(Encoding.DER)
    return ClientCertificate(
        fingerprint(der), cert.subject.rfc4514_string()[:500], int(not_after.timestamp() * 1e6)
    )


def peer_fingerprint(request: web.Request) -> str | None:
    """The fingerprint of the certificate the client presented on this connection."""
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return None if der is None else fingerprint(der)
