"""The organ's PAdES signature on its documents (pyHanko), and its check.

The certificate and key come from DOCUMENT_SIGNING_CERTIFICATE_PATH (PKCS#12, or a PEM certificate with
DOCUMENT_SIGNING_KEY_PATH); ``approvals dev`` makes a self-signed organ certificate on first start
(:func:`generate_dev_certificate`). Any PDF reader shows the signature; :func:`check_signature` is what
``approvals audit verify`` asks: intact, covering the whole file, and made with the organ's certificate.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

with warnings.catch_warnings():  # pyHanko imports DSA, which nobody here uses, and cryptography warns of it
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import fields, signers
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

DEV_CERTIFICATE_FILE = "document-signing-cert.pem"
DEV_KEY_FILE = "document-signing-key.pem"


class SigningSetupError(ValueError):
    """The organ's certificate cannot be used; the message names the setting."""


@dataclass(frozen=True)
class OrganSigner:
    signer: signers.SimpleSigner
    certificate: asn1_x509.Certificate

    @classmethod
    def load(cls, certificate_path: Path | None, key_path: Path | None, passphrase: str | None) -> OrganSigner:
        """The signer of DOCUMENT_SIGNING_CERTIFICATE_PATH: a PKCS#12 file, or a PEM certificate whose key is
        DOCUMENT_SIGNING_KEY_PATH."""
        if certificate_path is None:
            raise SigningSetupError(
                "DOCUMENT_SIGNING_CERTIFICATE_PATH is not set: give the organ's certificate (PKCS#12, or PEM with "
                "DOCUMENT_SIGNING_KEY_PATH) that signs its official documents"
            )
        if not certificate_path.is_file():
            raise SigningSetupError(f"DOCUMENT_SIGNING_CERTIFICATE_PATH: no file at {certificate_path}")
        secret = passphrase.encode() if passphrase else None
        if certificate_path.suffix.lower() in (".p12", ".pfx"):
            signer = signers.SimpleSigner.load_pkcs12(str(certificate_path), passphrase=secret)
        elif key_path is None:
            raise SigningSetupError(
                "DOCUMENT_SIGNING_KEY_PATH is not set: a PEM certificate needs its private key (or give a PKCS#12 "
                "file as DOCUMENT_SIGNING_CERTIFICATE_PATH)"
            )
        else:
            signer = signers.SimpleSigner.load(str(key_path), str(certificate_path), key_passphrase=secret)
        if signer is None or signer.signing_cert is None:
            raise SigningSetupError(
                f"DOCUMENT_SIGNING_CERTIFICATE_PATH: {certificate_path} holds no usable certificate and key"
            )
        return cls(signer, signer.signing_cert)

    def sign(self, pdf: bytes, *, organ: str, reason: str) -> bytes:
        """The PDF with the organ's PAdES signature (B-B) over the whole file."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="OrganSeal",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            name=organ,
            location="阿拉山口综合保税区",
        )
        return signers.sign_pdf(writer, meta, signer=self.signer).getvalue()


def load_certificate(path: Path | None, passphrase: str | None) -> asn1_x509.Certificate | None:
    """The organ's certificate alone (what an auditor needs to check signatures; no key): from a PKCS#12 file
    or a PEM/DER certificate at DOCUMENT_SIGNING_CERTIFICATE_PATH; None when it is not set."""
    if path is None:
        return None
    data = path.read_bytes()
    if path.suffix.lower() in (".p12", ".pfx"):
        _, certificate, _ = pkcs12.load_key_and_certificates(data, passphrase.encode() if passphrase else None)
        if certificate is None:
            raise SigningSetupError(f"DOCUMENT_SIGNING_CERTIFICATE_PATH: {path} holds no certificate")
        return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    return load_cert_from_pemder(str(path))


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    problem: str | None = None


async def check_signature(pdf: bytes, certificate: asn1_x509.Certificate) -> SignatureCheck:
    """Whether ``pdf`` carries one intact signature over the whole file, made with ``certificate``."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        embedded = reader.embedded_signatures
        if len(embedded) != 1:
            return SignatureCheck(False, f"{len(embedded)} signatures, expected one")
        status = await async_validate_pdf_signature(embedded[0], ValidationContext(trust_roots=[certificate]))
    except Exception as error:  # a PDF that cannot be read is a failed check, said as such
        return SignatureCheck(False, f"unreadable: {type(error).__name__}: {error}")
    if not status.intact or not status.valid:
        return SignatureCheck(False, "the signature does not match the bytes")
    if status.signing_cert.dump() != certificate.dump():
        return SignatureCheck(False, "signed with another certificate than the organ's")
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        return SignatureCheck(False, f"the signature covers {status.coverage}, not the whole file")
    if not status.trusted:
        return SignatureCheck(False, "the signing certificate is not the trusted organ certificate")
    return SignatureCheck(True)


def generate_dev_certificate(directory: Path, organ: str) -> tuple[Path, Path]:
    """A self-signed organ certificate for ``approvals dev`` (kept across restarts): (certificate, key)."""
    certificate_path, key_path = directory / DEV_CERTIFICATE_FILE, directory / DEV_KEY_FILE
    if certificate_path.is_file() and key_path.is_file():
        return certificate_path, key_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organ),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "开发用公文签章 (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, organ),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path
