"""The trust layer on a search response: disclosure, claims vs verified provenance, and credit per result;
disclosure and credential checks for ads (an ad can be required to run only on credentialed creatives)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search.disclosure import combine, provenance_view, trust_facts
from search.lineage import credit_chain
from search.results import AdHit, SceneHit
from search.snapshot import AdEntry, Snapshot


def credentialed(snap: Snapshot) -> np.ndarray:
    """Rows whose every media file carries a verified (Trusted or Valid) Content Credential."""
    return trust_facts(snap).credentialed


def ad_credentialed(snap: Snapshot, ad: AdEntry) -> bool:
    """An ad runs only where each creative is in the index and credentialed; none in the index = unverified."""
    rows = [snap.row.get(s) for s in ad.creatives]
    mask = credentialed(snap)
    return bool(rows) and all(r is not None and mask[r] for r in rows)


def annotate_scenes(
    snap: Snapshot, hits: Sequence[SceneHit], rows: Sequence[int], use: str, visible: np.ndarray
) -> None:
    facts = trust_facts(snap)
    for hit, row in zip(hits, rows, strict=True):
        hit.disclosure = facts.for_row(row, use).to_dict()
        hit.provenance = provenance_view(snap, row)
        hit.credit = credit_chain(snap, row, visible)


def annotate_ads(snap: Snapshot, hits: Sequence[AdHit], ads: Sequence[AdEntry]) -> None:
    facts = trust_facts(snap)
    for hit, ad in zip(hits, ads, strict=True):
        rows = [snap.row[s] for s in ad.creatives if s in snap.row]
        combined = combine([facts.for_row(r, "ads") for r in rows]).to_dict()
        combined["creatives"] = {snap.ids[r]: str(facts.state[r]) for r in rows}
        hit.disclosure = combined
