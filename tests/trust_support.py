"""Content Credentials for tests: a test CA and signing certificate made here (offline, `cryptography`), and a
small catalog of signed, unsigned and tampered media built from the fixture clips.

c2pa-rs checks the signing certificate's profile: X.509 v3, not a CA, key usage digitalSignature, an extended
key use it accepts (emailProtection here), key identifiers; the root is a CA with keyCertSign.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from tests.helpers import write_jsonl

FIXTURE_CLIPS = Path(__file__).resolve().parents[1] / "fixtures" / "clips"
RUNNER = {"sku": "SKU-N1", "name": "Neon Runner sneakers", "category": "footwear"}
POSTER = {"sku": "SKU-P1", "name": "Blue studio poster", "category": "lighting"}
AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class Signer:
    root_pem: str  # the trust anchor
    chain_pem: bytes  # the signing certificate (the root stays out of the chain, as C2PA expects)
    key_pem: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "VI")]
    )


def make_signer(label: str = "VI Test", days: int = 30) -> Signer:
    now = dt.datetime.now(dt.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} Root"))
        .issuer_name(_name(f"{label} Root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=max(days, 365)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} Signer"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return Signer(root.public_bytes(pem).decode(), leaf.public_bytes(pem), key)


def manifest(generator: str, source_type: str = AI_SOURCE, training: str = "notAllowed") -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "test clip",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            },
            {"label": "cawg.training-mining", "data": {"entries": {"cawg.ai_training": {"use": training}}}},
        ],
    }


def sign(signer: Signer, source: Path, dest: Path, definition: dict[str, Any]) -> Path:
    import c2pa

    mime = {".jpg": "image/jpeg", ".mp4": "video/mp4", ".mov": "video/quicktime", ".png": "image/png"}
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=signer.chain_pem, private_key=signer.key_pem, ta_url=None)
    context = c2pa.Context.from_dict({"verify": {"verify_after_sign": False}})
    with c2pa.Signer.from_info(info) as c2pa_signer, context, c2pa.Builder(definition, context) as builder:
        with source.open("rb") as src, dest.open("w+b") as dst:
            builder.sign(c2pa_signer, mime[source.suffix], src, dst)
    return dest


def tamper(path: Path, offset_from_end: int = 100) -> Path:
    """Flip one byte of the media payload (near the end: pixel or sample data, not the manifest)."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _scene(scene_id: str, prompt: str, media: list[str], **extra: Any) -> dict[str, Any]:
    record = {"scene_id": scene_id, "prompt": prompt, "media": media, "creator_id": f"creator-{scene_id}"}
    return {**record, **extra}


def trust_catalog(root: Path, signer: Signer) -> dict[str, Path]:
    """Scenes over signed JPEG/MP4/MOV, an unsigned PNG, a tampered MP4 and claims that disagree with them."""
    media = root / "media"
    media.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 80, 20)).save(media / "plain.jpg", quality=90)
    Image.new("RGB", (64, 48), (20, 80, 200)).save(media / "unsigned.png")
    sign(signer, media / "plain.jpg", media / "signed.jpg", manifest("sora-2"))
    sign(signer, FIXTURE_CLIPS / "night_pan_1shot.mp4", media / "signed.mp4", manifest("sora-2"))
    sign(signer, FIXTURE_CLIPS / "neon_city_4shots.mov", media / "signed.mov", manifest("veo-3", training="allowed"))
    sign(signer, FIXTURE_CLIPS / "alpine_night_3shots.mp4", media / "tampered.mp4", manifest("sora-2"))
    tamper(media / "tampered.mp4")
    ai = {"generator": "sora-2", "ai_disclosure": True, "c2pa_manifest": "urn:c2pa:test"}
    scenes = [
        _scene("t-jpg", "An orange poster on a studio wall", ["media/signed.jpg"], provenance=ai),
        _scene("t-mp4", "A night city pan with neon signs", ["media/signed.mp4"], provenance=ai, products=[RUNNER]),
        _scene("t-mov", "Neon city street, four quick shots", ["media/signed.mov"], provenance=ai),  # says veo-3
        _scene("t-tampered", "Alpine peaks at night", ["media/tampered.mp4"], provenance=ai),
        _scene(
            "t-unsigned", "A blue poster on a studio wall", ["media/unsigned.png"], provenance=ai, products=[POSTER]
        ),
        _scene(
            "t-cameo",
            "A presenter walks through the neon city",
            ["media/signed.mp4"],
            parent_id="t-mp4",
            cameos=["p-ok"],
            provenance={"generator": "sora-2", "ai_disclosure": False},
        ),
        _scene("t-text", "A text-only scene about a neon city", [], provenance={"generator": "sora-2"}),
    ]
    consents = [{"persona_id": "p-ok", "scopes": ["search", "ads"]}]
    ads = [
        {
            "ad_id": "ad-neon",
            "headline": "Neon city sneakers",
            "keywords": ["neon", "city"],
            "skus": ["SKU-N1"],
            "categories": ["footwear"],
            "creative_scene_ids": ["t-mp4"],
        },
        {
            "ad_id": "ad-poster",
            "headline": "Blue studio poster prints",
            "keywords": ["poster", "studio"],
            "skus": ["SKU-P1"],
            "categories": ["lighting"],
            "creative_scene_ids": ["t-unsigned"],
        },
    ]
    anchors = root / "anchors.pem"
    anchors.write_text(signer.root_pem)
    return {
        "root": root,
        "anchors": anchors,
        "scenes": write_jsonl(root / "scenes.jsonl", scenes),
        "consents": write_jsonl(root / "consents.jsonl", consents),
        "ads": write_jsonl(root / "ads.jsonl", ads),
    }
