"""Helpers the test files share (plain functions; fixtures live in the conftest.py files)."""

from __future__ import annotations

import io

from PIL import Image

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    """The problem+json body of ``response``, after checking it is one with this ``status``, a title and a detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


def png_bytes(width: int, height: int, mode: str = "L", colour: int | tuple = 0) -> bytes:
    """A plain PNG of this size (a large one of one colour compresses to a few kB: a pixel bomb)."""
    buf = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def records(response) -> list[dict]:
    """The records of a 200 answer from /v1/images or /v1/videos (``{"results": [...]}``)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results"}, body
    return body["results"]


def record(response) -> dict:
    """The one record of a 200 answer for one file."""
    (only,) = records(response)
    return only


IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
AI_GENERATED = [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]


class ContentCredentialsSigner:
    """Signs files with C2PA manifests under a certificate chain made here (c2pa refuses a self-signed signer).

    A test CA, and under it an ES256 end-entity certificate with the key
    usage and extended key usage (email protection) that C2PA asks of a
    claim signer; ``ca_pem`` is the root a reader may be told to trust.
    """

    def __init__(self) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        def name(common_name: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unmask tests"),
                              x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

        def certificate(subject: str, key, issuer: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
            now = datetime.datetime.now(datetime.timezone.utc)
            usage = dict.fromkeys(["content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
                                   "encipher_only", "decipher_only"], False)
            builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer).public_key(key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                       .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                       .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
            if not ca:
                builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            return builder.sign(issuer_key, hashes.SHA256())

        def pem(cert: x509.Certificate) -> bytes:
            return cert.public_bytes(serialization.Encoding.PEM)

        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca = certificate("unmask test CA", ca_key, name("unmask test CA"), ca_key, ca=True)
        leaf = certificate("unmask test signer", key, ca.subject, ca_key, ca=False)
        self.ca_pem = pem(ca)
        self._chain = pem(leaf) + self.ca_pem  # the signer's certificate first, then its issuer
        self._key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def sign(self, data: bytes, mime: str, actions: list[dict] = AI_GENERATED, generator: str = "unmask-tests",
             remote_url: str | None = None) -> bytes:
        """``data`` with a manifest embedded (or, with ``remote_url``, only a pointer to it there): these actions,
        this claim generator (version 1.0), no time-stamp."""
        import c2pa

        manifest = {"claim_generator_info": [{"name": generator, "version": "1.0"}], "title": "test",
                    "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self._chain, self._key, None))
        out = io.BytesIO()
        with signer, c2pa.Builder(manifest) as builder:
            if remote_url:
                builder.set_no_embed()
                builder.set_remote_url(remote_url)
            builder.sign(signer, mime, io.BytesIO(data), out)
        return out.getvalue()


def break_manifest(signed: bytes) -> bytes:
    """A signed file whose claim cannot be parsed: the start of its CBOR overwritten (the file's own structure intact)."""
    at = signed.index(b"cbor", signed.index(b"c2pa.claim.v2")) + 4  # the claim's content box, after its type
    return signed[:at] + b"\xff" * 16 + signed[at + 16 :]  # 0xff: a CBOR "break" where no item is open
