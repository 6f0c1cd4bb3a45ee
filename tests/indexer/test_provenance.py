"""Verified provenance: real c2pa-python reading files signed here with a test CA, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.pipeline import Encoders, IndexOptions, index_catalog
from indexer.provenance import INVALID, TRUSTED, VALID, TrustConfig, read_credential
from indexer.schema import SCENES, SceneCol
from indexer.store import Store
from tests.trust_support import Signer, make_signer, trust_catalog


@pytest.fixture(scope="module")
def signer() -> Signer:
    return make_signer()


@pytest.fixture
def trust_files(tmp_path: Path, signer: Signer) -> dict[str, Path]:
    return trust_catalog(tmp_path / "trust", signer)


def _scene_rows(db: Path) -> dict[str, dict[str, object]]:
    table = Store.open(db).columns(
        SCENES,
        [
            SceneCol.ID,
            SceneCol.C2PA_STATE,
            SceneCol.C2PA_CODES,
            SceneCol.C2PA_GENERATOR,
            SceneCol.C2PA_SOURCE_TYPE,
            SceneCol.C2PA_TRAINING,
            SceneCol.C2PA_BINDING,
            SceneCol.C2PA_MEDIA,
            SceneCol.PROVENANCE_FLAGS,
        ],
    )
    return {r[SceneCol.ID]: r for r in table.to_pylist()}


@pytest.mark.parametrize("name", ["signed.jpg", "signed.mp4", "signed.mov"])
def test_signed_file_is_trusted_with_anchors_and_valid_without(trust_files: dict[str, Path], name: str) -> None:
    path = trust_files["root"] / "media" / name
    trusted = read_credential(path, TrustConfig(trust_files["anchors"].read_text()))
    assert trusted.state == TRUSTED and trusted.binding_ok is True
    assert "signingCredential.ocsp.skipped" in trusted.codes  # OCSP is never fetched
    assert trusted.digital_source_type == "trainedAlgorithmicMedia"
    assert read_credential(path, TrustConfig()).state == VALID


def test_tampered_media_is_invalid_and_names_the_binding_failure(trust_files: dict[str, Path]) -> None:
    credential = read_credential(
        trust_files["root"] / "media" / "tampered.mp4", TrustConfig(trust_files["anchors"].read_text())
    )
    assert credential.state == INVALID and credential.binding_ok is False
    assert "assertion.bmffHash.mismatch" in credential.codes


def test_tampered_jpeg_is_invalid(trust_files: dict[str, Path], tmp_path: Path) -> None:
    from tests.trust_support import tamper

    copy = tmp_path / "copy.jpg"
    copy.write_bytes((trust_files["root"] / "media" / "signed.jpg").read_bytes())
    credential = read_credential(tamper(copy, 20), TrustConfig())
    assert credential.state == INVALID and "assertion.dataHash.mismatch" in credential.codes


def test_another_ca_is_not_trusted(trust_files: dict[str, Path]) -> None:
    stranger = TrustConfig(make_signer("Other").root_pem)
    credential = read_credential(trust_files["root"] / "media" / "signed.jpg", stranger)
    assert credential.state == VALID and "signingCredential.untrusted" in credential.codes


def test_unsigned_file_has_no_credential(trust_files: dict[str, Path]) -> None:
    credential = read_credential(trust_files["root"] / "media" / "unsigned.png", TrustConfig())
    assert credential.state is None and credential.error == "no credential" and credential.binding_ok is None


def test_index_stores_facts_and_flags_claims_that_disagree(
    trust_files: dict[str, Path], tmp_path: Path, text_only: Encoders
) -> None:
    db = tmp_path / "index"
    options = IndexOptions(db=db, progress=False, use_clip=False, c2pa_trust_anchors=trust_files["anchors"])
    report = index_catalog(options, trust_files["scenes"], trust_files["ads"], trust_files["consents"], text_only)
    assert not report.errors
    assert report.credentials == {TRUSTED: 4, INVALID: 1, "none": 1} and report.trust_anchors
    rows = _scene_rows(db)
    assert {sid: r[SceneCol.C2PA_STATE] for sid, r in rows.items()} == {
        "t-jpg": TRUSTED,
        "t-mp4": TRUSTED,
        "t-mov": TRUSTED,
        "t-cameo": TRUSTED,
        "t-tampered": INVALID,
        "t-unsigned": None,
        "t-text": None,
    }
    assert rows["t-mov"][SceneCol.C2PA_GENERATOR] == "veo-3"
    assert rows["t-mov"][SceneCol.C2PA_TRAINING] == ["cawg.ai_training=allowed"]
    assert rows["t-mp4"][SceneCol.C2PA_SOURCE_TYPE] == "trainedAlgorithmicMedia"
    assert rows["t-tampered"][SceneCol.C2PA_BINDING] is False
    flags = {sid: r[SceneCol.PROVENANCE_FLAGS] for sid, r in rows.items()}
    assert flags["t-mp4"] == [] and flags["t-text"] == []
    assert flags["t-mov"] == ["generator_mismatch"]
    assert flags["t-unsigned"] == ["claimed_credential_missing", "disclosed_ai_without_credential"]
    assert flags["t-tampered"] == ["claimed_credential_invalid", "media_altered_after_signing"]
    assert flags["t-cameo"] == ["credential_says_ai_record_says_not"]
    media = json.loads(str(rows["t-mp4"][SceneCol.C2PA_MEDIA]))
    assert [m["state"] for m in media] == [TRUSTED] and media[0]["path"].endswith("signed.mp4")


def test_without_anchors_signed_scenes_are_valid_and_anchors_are_kept(
    trust_files: dict[str, Path], tmp_path: Path, text_only: Encoders
) -> None:
    db = tmp_path / "index"
    first = index_catalog(
        IndexOptions(db=db, progress=False, use_clip=False), trust_files["scenes"], encoders=text_only
    )
    assert first.credentials[VALID] == 4 and not first.trust_anchors
    assert _scene_rows(db)["t-jpg"][SceneCol.C2PA_STATE] == VALID
    # anchors given later: the content hash changes, every credential is read again, and the index keeps them
    anchored = IndexOptions(db=db, progress=False, use_clip=False, c2pa_trust_anchors=trust_files["anchors"])
    report = index_catalog(anchored, trust_files["scenes"], encoders=text_only)
    assert report.scenes == 7 and _scene_rows(db)["t-jpg"][SceneCol.C2PA_STATE] == TRUSTED
    again = index_catalog(
        IndexOptions(db=db, progress=False, use_clip=False), trust_files["scenes"], encoders=text_only
    )
    assert again.unchanged == 7  # the saved anchors still apply: nothing re-read, nothing downgraded


TRUST_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trust"


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("signed.jpg", TRUSTED),
        ("signed.mp4", TRUSTED),
        ("signed.mov", TRUSTED),
        ("tampered.mp4", INVALID),
        ("unsigned.png", None),
    ],
)
def test_shipped_trust_fixtures_keep_their_states(name: str, state: str | None) -> None:
    """fixtures/trust (make_trust_fixtures.py): checked-in media against the checked-in test anchor."""
    trust = TrustConfig((TRUST_FIXTURES / "anchors.pem").read_text())
    assert read_credential(TRUST_FIXTURES / "media" / name, trust).state == state


def test_trust_settings_are_offline_and_carry_anchors_and_ekus() -> None:
    assert TrustConfig().settings() == {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": False}
    }
    configured = TrustConfig("PEM", "1.3.6.1.5.5.7.3.36\n").settings()
    assert configured["verify"]["verify_trust"] is True
    assert configured["trust"] == {"trust_anchors": "PEM", "trust_config": "1.3.6.1.5.5.7.3.36\n"}
    assert TrustConfig().fingerprint != TrustConfig("PEM").fingerprint
