"""Verified provenance: Content Credentials (C2PA) read from each media file with c2pa-python, offline.

A catalog's `provenance` fields are claims; what this module reads from the files is fact. Per media file it
records the validation state (`Trusted`, `Valid`, `Invalid`, or None when the file carries no credential), the
status codes, the claim generator, the IPTC digitalSourceType of the creation action, the CAWG training/mining
permissions and whether the content binding (the hash of the media bytes) matches. Remote manifests and OCSP
are never fetched. With trust anchors, a credential chaining to them is `Trusted`; one that does not stays `Valid`
with the code `signingCredential.untrusted`; without anchors trust is not checked, so a correctly signed file is
`Valid`, never `Trusted`. Any failure (e.g. media bytes changed after signing) makes it `Invalid`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import VisualIntentError
from indexer.location import IndexLocation

TRUSTED, VALID, INVALID = "Trusted", "Valid", "Invalid"
STATES = (TRUSTED, VALID, INVALID)
NO_CREDENTIAL = "none"  # the filter value for "no credential at all"
# Content-binding failures (c2pa-rs validation codes): the media bytes differ from what was signed.
BINDING_FAILURES = frozenset(
    {
        "assertion.dataHash.mismatch",
        "assertion.bmffHash.mismatch",
        "assertion.boxesHash.mismatch",
        "assertion.collectionHash.mismatch",
    }
)
IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# digitalSourceType values that mean the pixels were made by a model (IPTC NewsCodes).
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"})
ANCHORS_FILE = "c2pa_trust_anchors.pem"  # kept inside the index so later runs (and API upserts) use the same


@dataclass(frozen=True)
class TrustConfig:
    """What validation trusts: PEM root certificates and, optionally, the allowed extended key uses (one OID a
    line, the c2pa `trust_config` format). No anchors: signatures are checked, trust is not."""

    anchors: str | None = None
    allowed_ekus: str | None = None

    @property
    def fingerprint(self) -> str:
        """Part of the content hash: changing the anchors re-reads every credential."""
        text = f"{self.anchors or ''}\0{self.allowed_ekus or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:12] if text != "\0" else "no-anchors"

    def settings(self) -> dict[str, Any]:
        verify = {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": self.anchors is not None}
        config: dict[str, Any] = {"verify": verify}
        trust: dict[str, str] = {}
        if self.anchors:
            trust["trust_anchors"] = self.anchors
        if self.allowed_ekus:
            trust["trust_config"] = self.allowed_ekus
        if trust:
            config["trust"] = trust
        return config


def trust_for_index(db: Path | IndexLocation, anchors: Path | None, allowed_ekus: Path | None = None) -> TrustConfig:
    """The trust to index with: the given files (saved into the index), else what the index saved earlier."""
    index = IndexLocation.of(db)
    text: str | None = None
    if anchors is not None:
        text = _read_pem(anchors)
        index.write_bytes(ANCHORS_FILE, text.encode("utf-8"))
    else:
        saved = index.read_bytes(ANCHORS_FILE)
        text = saved.decode("utf-8") if saved is not None else None
    ekus = allowed_ekus.read_text(encoding="utf-8") if allowed_ekus is not None else None
    return TrustConfig(text, ekus)


def _read_pem(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VisualIntentError(f"cannot read trust anchors {path}: {exc}; pass a PEM file") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise VisualIntentError(f"{path} holds no PEM certificate; pass --c2pa-trust-anchors a PEM bundle")
    return text


@dataclass
class MediaCredential:
    """What one media file's Content Credentials say, as verified."""

    path: str
    state: str | None = None  # Trusted, Valid, Invalid; None: no credential
    codes: list[str] = field(default_factory=list)  # failure and informational status codes
    claim_generator: str | None = None
    digital_source_type: str | None = None  # the IPTC term, e.g. trainedAlgorithmicMedia
    training_mining: dict[str, str] = field(default_factory=dict)  # e.g. cawg.ai_training -> notAllowed
    binding_ok: bool | None = None  # None: no credential to bind
    signer: str | None = None
    error: str | None = None  # why no credential could be read (unsupported format, no manifest)


def read_credential(path: Path, trust: TrustConfig) -> MediaCredential:
    """Read and validate the credential embedded in `path`; never raises for a bad or missing manifest."""
    import c2pa

    out = MediaCredential(path=str(path))
    try:
        with c2pa.Context.from_dict(trust.settings()) as context, c2pa.Reader(str(path), context=context) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
    except c2pa.C2paError as exc:
        out.error = _reason(exc)
        return out
    _fill(out, store, state)
    return out


def _reason(exc: Exception) -> str:
    name = type(exc).__name__.lstrip("_").removeprefix("C2pa")
    return {"ManifestNotFound": "no credential", "NotSupported": "format not supported"}.get(name, f"{name}: {exc}")


def _fill(out: MediaCredential, store: dict[str, Any], state: str | None) -> None:
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = [item["code"] for item in results.get("failure", [])]
    out.state = state if state in STATES else (INVALID if failures else VALID)
    out.codes = sorted({*failures, *(item["code"] for item in results.get("informational", []))})
    out.binding_ok = not BINDING_FAILURES & set(failures)
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    generators = manifest.get("claim_generator_info") or []
    out.claim_generator = generators[0].get("name") if generators else manifest.get("claim_generator")
    out.signer = (manifest.get("signature_info") or {}).get("common_name")
    for assertion in manifest.get("assertions", []):
        label, data = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for action in data.get("actions", []):
                if action.get("action") == "c2pa.created" and action.get("digitalSourceType"):
                    out.digital_source_type = str(action["digitalSourceType"]).removeprefix(IPTC_PREFIX)
        elif label in ("cawg.training-mining", "c2pa.training-mining"):
            out.training_mining = {k: str(v.get("use")) for k, v in (data.get("entries") or {}).items()}


@dataclass
class SceneProvenance:
    """The scene-level facts (the weakest media file decides) next to the catalog's claims."""

    state: str | None = None
    codes: list[str] = field(default_factory=list)
    claim_generator: str | None = None
    digital_source_type: str | None = None
    training_mining: dict[str, str] = field(default_factory=dict)
    binding_ok: bool | None = None
    mismatches: list[str] = field(default_factory=list)
    media: list[MediaCredential] = field(default_factory=list)

    def media_json(self) -> str:
        return json.dumps([asdict(m) for m in self.media], sort_keys=True)


def scene_provenance(creds: Sequence[MediaCredential], claims: Any) -> SceneProvenance:
    """Combine the media files of one scene: any Invalid file makes the scene Invalid; a file without a
    credential makes it uncredentialed (None); otherwise the weakest of Valid / Trusted. `claims` is the
    catalog's `Provenance` record (or None)."""
    out = SceneProvenance(media=list(creds))
    if creds:
        states = [c.state for c in creds]
        out.state = INVALID if INVALID in states else None if None in states else VALID if VALID in states else TRUSTED
        signed = [c for c in creds if c.state is not None]
        out.codes = sorted({code for c in signed for code in c.codes})
        out.claim_generator = next((c.claim_generator for c in signed if c.claim_generator), None)
        out.digital_source_type = next((c.digital_source_type for c in signed if c.digital_source_type), None)
        for c in signed:
            out.training_mining.update(c.training_mining)
        out.binding_ok = all(c.binding_ok for c in signed) if signed else None
    out.mismatches = mismatches(out, claims, has_media=bool(creds))
    return out


def mismatches(facts: SceneProvenance, claims: Any, has_media: bool) -> list[str]:
    """Where the catalog's claims and the verified credential disagree (README, "Verified provenance")."""
    flags: list[str] = []
    generator = getattr(claims, "generator", None)
    disclosed = getattr(claims, "ai_disclosure", None)
    manifest = getattr(claims, "c2pa_manifest", None)
    signed = facts.state in (TRUSTED, VALID)
    if has_media and not signed:
        if manifest:
            flags.append("claimed_credential_missing" if facts.state is None else "claimed_credential_invalid")
        if disclosed and facts.state is None:
            flags.append("disclosed_ai_without_credential")
    if signed and generator and facts.claim_generator and not _same_tool(generator, facts.claim_generator):
        flags.append("generator_mismatch")
    if signed and facts.digital_source_type in AI_SOURCE_TYPES and disclosed is False:
        flags.append("credential_says_ai_record_says_not")
    if facts.state == INVALID and not facts.binding_ok:
        flags.append("media_altered_after_signing")
    return flags


def _same_tool(claimed: str, signed: str) -> bool:
    a, b = claimed.strip().lower(), signed.strip().lower()
    return a in b or b in a
