"""Plain-text rendering of search results for the terminal."""

from __future__ import annotations

import textwrap
from typing import Any

from indexer.pipeline import IndexReport
from search.results import SearchResponse


def _frame_line(frame: dict[str, Any]) -> str:
    parts = []
    if frame.get("product"):
        product = frame["product"]
        parts.append(f"product={product.get('name') or product.get('sku')} ({product.get('category') or '?'})")
    for slot in ("category", "setting", "time_of_day", "weather", "action", "style"):
        value = frame.get(slot)
        if value and not (slot == "category" and frame.get("product")):
            parts.append(f"{slot}={value['value']}" + ("~" if value["source"] == "embedding" else ""))
    if frame.get("tones"):
        parts.append(
            "tone=" + ",".join(t["value"] + ("~" if t["source"] == "embedding" else "") for t in frame["tones"])
        )
    if frame.get("negations"):
        parts.append("not " + ",".join(f"{n['value']}" for n in frame["negations"]))
    return " ".join(parts) or "(no slots recognised)"


def _shot(hit: Any) -> str:
    shot = hit.best_shot
    if shot is None or shot.start_s is None or shot.end_s is None or shot.end_s <= 0:
        return ""
    return f"  [shot {shot.index}: {shot.start_s:.2f}-{shot.end_s:.2f}s]"


def _trust_line(hit: Any) -> str:
    """Credential state, the disclosure label when one is required, and claim/fact mismatches."""
    if hit.provenance is None:
        return ""
    parts = [f"credential {hit.provenance['verified']['c2pa_state'] or 'none'}"]
    if hit.disclosure and hit.disclosure["required"]:
        parts.append(f"label '{hit.disclosure['label']}'")
    if hit.disclosure and not hit.disclosure["ok"]:
        parts.append("disclosure NOT met")
    parts.extend(f"mismatch {flag}" for flag in hit.provenance["mismatches"])
    if hit.credit:
        parts.append("credit " + " > ".join(c or "?" for c in hit.credit))
    return "; ".join(parts)


def render_response(response: SearchResponse, width: int = 100) -> str:
    lines = [f"query: {response.query}" + (f"   [sku {response.frame['sku']}]" if response.frame.get("sku") else "")]
    lines.append(f"frame: {_frame_line(response.frame)}   (~ = resolved by embedding similarity)")
    for note in response.frame.get("notes", []):
        lines.append(f"note: {note}")
    if "NOT a semantic model" in response.text_encoder:
        lines.append(f"text encoder: {response.text_encoder}")
    if not response.scenes:
        lines.append("  no eligible scenes matched")
    for rank, hit in enumerate(response.scenes, start=1):
        context = " · ".join(filter(None, [hit.setting, hit.time_of_day, hit.weather, ",".join(hit.tones)]))
        lines.append(f"{rank:>3}. {hit.scene_id}  {hit.score:.3f}  {context}{_shot(hit)}")
        lines.extend(
            textwrap.wrap(
                hit.prompt, width=width - 7, initial_indent="       ", subsequent_indent="       ", max_lines=2
            )
        )
        why = hit.explanation.summary()
        if hit.variants:
            why += f"; +{len(hit.variants)} remix variant(s)"
        lines.append(f"       why: {why}")
        trust = _trust_line(hit)
        if trust:
            lines.append(f"       trust: {trust}")
    if response.ads:
        lines.append("ads:")
        for rank, ad in enumerate(response.ads, start=1):
            lines.append(f"{rank:>3}. {ad.ad_id}  {ad.score:.3f}  {ad.advertiser or ''}: {ad.headline or ''}")
            lines.append(f"       why: {ad.explanation}")
    return "\n".join(lines)


def render_summary(
    accepted: dict[str, int], changes: list[dict[str, Any]], rejected: list[dict[str, Any]], gaps: dict[str, str]
) -> str:
    """The end-of-run summary (stderr): what was accepted, which shapes were changed, what was rejected."""
    lines = ["accepted: " + (", ".join(f"{n} {kind}" for kind, n in accepted.items()) or "nothing")]
    if changes:
        lines.append("changed (record kept; the record as given is stored too):")
        for c in changes:
            lines.append(
                f"  {c['kind']:<10} {c['field']}: {c['reason']}  x{c['count']}  e.g. {', '.join(c['examples'])}"
            )
    rejected_total = sum(r["count"] for r in rejected)
    lines.append(f"rejected: {rejected_total}")
    for r in rejected:
        lines.append(f"  {r['field']}: {r['reason']}  x{r['count']}  e.g. {', '.join(r['examples'])}")
    if gaps:
        shown = ", ".join(f"{s} -> {p}" for s, p in list(gaps.items())[:3])
        lines.append(f"lineage gaps: {len(gaps)} scene(s) whose remix parent is not indexed yet (kept; e.g. {shown})")
    return "\n".join(lines)


def render_index_summary(report: IndexReport) -> str:
    data = report.to_dict()
    accepted = {"scenes": report.scenes + report.unchanged, "ads": report.ads, "consents": report.consents}
    text = render_summary(accepted, data["changes"], data["rejected"], report.lineage_gaps)
    if report.unchanged:
        text += (
            f"\nunchanged: {report.unchanged} scene(s) already stored with the same content (skipped, not re-encoded)"
        )
    if report.credentials:
        states = ", ".join(f"{n} {state}" for state, n in sorted(report.credentials.items()))
        anchors = (
            "checked against the trust anchors"
            if report.trust_anchors
            else ("no trust anchors: signed files are Valid, never Trusted (--c2pa-trust-anchors)")
        )
        text += f"\ncontent credentials: {states} media file(s); {anchors}"
    return text


def render_report(report: IndexReport) -> str:
    lines = [
        f"indexed {report.scenes} scenes ({report.shots} shots), {report.ads} ads, {report.consents} consents "
        f"into {report.db} in {report.seconds:.1f}s" + (f"; {report.unchanged} unchanged" if report.unchanged else ""),
        "visual channel: on (CLIP loaded)"
        if report.clip_status == "loaded"
        else f"visual channel: OFF, text channels only ({report.clip_status})",
    ]
    for name, info in report.ann.items():
        lines.append(f"ann {name}: {info['rows']} rows, {info['kind']} (LanceDB version {info['version']})")
    if report.errors:
        lines.append(f"skipped {len(report.errors)} invalid record(s):")
        lines.extend(f"  skipping {err}" for err in report.errors[:50])
        if len(report.errors) > 50:
            lines.append(f"  ... and {len(report.errors) - 50} more")
    return "\n".join(lines)
