// Search page: calls the JSON API with the key from the key box; all data goes in through textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "visual-intent-api-key";
const objectUrls = [];

function headers(json) {
  const h = {};
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || `HTTP ${response.status}`;
    throw new Error(message);
  }
  return data;
}

function chip(text, kind) {
  const span = document.createElement("span");
  span.className = "chip" + (kind ? " " + kind : "");
  span.textContent = text;
  return span;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function fmt(seconds) {
  return seconds === null || seconds === undefined ? "?" : seconds.toFixed(2) + "s";
}

function buildRequest() {
  const filters = {};
  const pick = (id, field) => {
    const value = $(id).value;
    if (value) filters[field] = [value];
  };
  pick("f-tone", "tones");
  pick("f-setting", "settings");
  pick("f-time", "times_of_day");
  pick("f-category", "categories");
  const request = {
    query: $("query").value.trim(),
    k: Math.max(1, Math.min(100, parseInt($("k").value, 10) || 8)),
    use: $("use").value,
    collapse: $("collapse").checked,
    explain: true,
  };
  const sku = $("sku").value.trim();
  if (sku) request.sku = sku;
  if (Object.keys(filters).length) request.filters = filters;
  return request;
}

function renderFrame(frame) {
  const chips = $("frame-chips");
  chips.replaceChildren();
  if (frame.product) chips.append(chip(`product: ${frame.product.name || frame.sku}`, "product"));
  for (const slot of ["category", "setting", "time_of_day", "weather", "action", "style"]) {
    const value = frame[slot];
    if (value && !(slot === "category" && frame.product)) {
      chips.append(chip(`${slot}: ${value.value}${value.source === "embedding" ? " ~" : ""}`, "slot"));
    }
  }
  for (const tone of frame.tones || []) chips.append(chip(`tone: ${tone.value}`, "slot"));
  for (const neg of frame.negations || []) chips.append(chip(`not ${neg.value}`, "negation"));
  if (!chips.children.length) chips.append(chip("no slots recognised", "muted"));
  $("frame-notes").textContent = (frame.notes || []).join("; ");
  $("frame").hidden = false;
}

async function loadThumbnail(img, placeholder, url) {
  try {
    const response = await fetch(url, { headers: headers(false) });
    if (!response.ok) return;
    const src = URL.createObjectURL(await response.blob());
    objectUrls.push(src);
    img.src = src;
    img.hidden = false;
    placeholder.hidden = true;
  } catch (err) {
    // leave the placeholder
  }
}

async function toggleLineage(sceneId, box) {
  if (!box.hidden) {
    box.hidden = true;
    return;
  }
  box.replaceChildren(chip("loading lineage...", "muted"));
  box.hidden = false;
  try {
    const lineage = await api("GET", `/v1/scenes/${encodeURIComponent(sceneId)}/lineage`);
    box.replaceChildren();
    const line = (label, nodes) => {
      const p = document.createElement("p");
      p.append(document.createTextNode(label + ": "));
      if (!nodes.length) p.append(chip("none", "muted"));
      for (const n of nodes) p.append(chip(`${n.scene_id} (${n.depth})`, n.eligible ? "node" : "node hidden-node"));
      box.append(p);
    };
    const root = document.createElement("p");
    root.textContent = `root: ${lineage.root}`;
    box.append(root);
    line("ancestors", lineage.ancestors);
    line("descendants", lineage.descendants);
    if (lineage.credit && lineage.credit.length) {
      const credit = document.createElement("p");
      credit.textContent = `credit: ${lineage.credit.map((c) => c || "unknown").join(" → ")}`;
      box.append(credit);
    }
  } catch (err) {
    box.replaceChildren(chip(err.message, "negation"));
  }
}

// Trust layer: the verified Content Credential state and the disclosure label a publisher must show.
function trustChips(hit) {
  const box = document.createElement("div");
  box.className = "chips trust";
  const state = (hit.provenance && hit.provenance.verified.c2pa_state) || "no credential";
  box.append(chip(`credential: ${state}`, `credential credential-${state.replace(/\s+/g, "-").toLowerCase()}`));
  const d = hit.disclosure;
  if (d && d.required) box.append(chip(`label: ${d.label}`, "disclosure"));
  if (d && !d.ok) box.append(chip("disclosure not met", "miss"));
  for (const flag of (hit.provenance && hit.provenance.mismatches) || []) box.append(chip(`⚠ ${flag}`, "miss"));
  return box;
}

function renderCard(hit, rank) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  card.dataset.sceneId = hit.scene_id;
  card.querySelector(".rank").textContent = `#${rank}`;
  card.querySelector(".scene-id").textContent = hit.scene_id;
  card.querySelector(".score").textContent = `score ${hit.score.toFixed(3)}`;
  const shot = hit.best_shot;
  let shotText = "no shots indexed";
  if (shot && shot.end_s !== null && shot.end_s > shot.start_s) {
    shotText = `best shot ${shot.index}: ${fmt(shot.start_s)} - ${fmt(shot.end_s)}`;
  } else if (shot) {
    shotText = `best shot ${shot.index}: still image`;
  }
  card.querySelector(".shot").textContent = shotText;
  card.querySelector(".caption").textContent = hit.caption || "";
  card.querySelector(".prompt").textContent = hit.prompt;
  const tones = card.querySelector(".tones");
  for (const tone of hit.tones) tones.append(chip(tone, "tone"));
  const context = [hit.setting, hit.time_of_day, hit.weather].filter(Boolean).join(" · ");
  if (context) tones.append(chip(context, "context"));
  const matched = card.querySelector(".matched");
  for (const [slot, value] of Object.entries(hit.matched_slots)) matched.append(chip(`✓ ${slot}: ${value}`, "match"));
  const missed = card.querySelector(".missed");
  const mismatched = (hit.explanation && hit.explanation.mismatched) || {};
  for (const [slot, value] of Object.entries(mismatched)) missed.append(chip(`✗ ${slot}: ${value}`, "miss"));
  if (hit.variants.length) missed.append(chip(`+${hit.variants.length} remix variant(s)`, "muted"));
  card.querySelector(".missed").after(trustChips(hit));
  if (shot && shot.thumbnail_url) {
    loadThumbnail(card.querySelector("img"), card.querySelector(".no-thumb"), shot.thumbnail_url);
  }
  const box = card.querySelector(".lineage");
  card.querySelector(".lineage-button").addEventListener("click", () => toggleLineage(hit.scene_id, box));
  return card;
}

function renderAds(ads) {
  const list = $("ads");
  list.replaceChildren();
  $("ads-title").hidden = false;
  if (!ads.length) list.append(chip("no ad passed the relevance floor", "muted"));
  for (const ad of ads) {
    const item = document.createElement("li");
    item.className = "ad";
    const head = document.createElement("strong");
    head.textContent = ad.headline || ad.ad_id;
    const who = document.createElement("div");
    who.className = "advertiser";
    who.textContent = `${ad.advertiser || ""} · ${ad.ad_id} · score ${ad.score.toFixed(3)}`;
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = ad.explanation || "";
    item.append(head, who, why);
    list.append(item);
  }
}

async function search(event) {
  event.preventDefault();
  showError("");
  sessionStorage.setItem(KEY_STORE, $("api-key").value);
  while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
  $("search-button").disabled = true;
  try {
    const data = await api("POST", "/v1/search", buildRequest());
    renderFrame(data.frame);
    const cards = $("results");
    cards.replaceChildren(...data.scenes.map((hit, i) => renderCard(hit, i + 1)));
    $("results-title").hidden = false;
    $("empty").hidden = data.scenes.length > 0;
    renderAds(data.ads);
    document.body.dataset.state = "done";
  } catch (err) {
    showError(err.message);
    document.body.dataset.state = "error";
  } finally {
    $("search-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("search-form").addEventListener("submit", search);
});
