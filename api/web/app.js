// Search page: calls the JSON API with the key from the key box; all data goes in through textContent.
// The query, filters and examples live in the URL, so a search can be shared and reloaded.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "visual-intent-api-key";
const objectUrls = [];
const FILTERS = [
  ["f-tone", "tones", "tone"],
  ["f-setting", "settings", "setting"],
  ["f-time", "times_of_day", "time"],
  ["f-category", "categories", "category"],
];
// Recommend-by-example state: scene ids to find more of, and to steer away from.
const examples = { like: [], unlike: [] };

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
    const error = data.error || {};
    const detail = (error.details || []).map((d) => (d.field ? `${d.field}: ${d.reason}` : d.reason)).join("; ");
    throw new Error(`${error.message || "HTTP " + response.status}${detail ? " (" + detail + ")" : ""}` +
      ` [${error.code || response.status}]`);
  }
  return data;
}

function chip(text, kind) {
  const span = document.createElement("span");
  span.className = "chip" + (kind ? " " + kind : "");
  span.textContent = text;
  return span;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function fmt(seconds) {
  return seconds === null || seconds === undefined ? "?" : seconds.toFixed(2) + "s";
}

// --- the URL: q, sku, tone, setting, time, category, use, k, collapse, like, unlike -------------------

function writeUrl() {
  const params = new URLSearchParams();
  const put = (name, value) => value && params.set(name, value);
  put("q", $("query").value.trim());
  put("sku", $("sku").value.trim());
  for (const [id, , name] of FILTERS) put(name, $(id).value);
  if ($("use").value !== "search") params.set("use", $("use").value);
  if ($("k").value !== "8") params.set("k", $("k").value);
  if (!$("collapse").checked) params.set("collapse", "0");
  put("like", examples.like.join(","));
  put("unlike", examples.unlike.join(","));
  const query = params.toString();
  history.replaceState(null, "", query ? "?" + query : location.pathname);
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  $("query").value = params.get("q") || "";
  $("sku").value = params.get("sku") || "";
  for (const [id, , name] of FILTERS) $(id).value = params.get(name) || "";
  $("use").value = params.get("use") === "ads" ? "ads" : "search";
  $("k").value = params.get("k") || "8";
  $("collapse").checked = params.get("collapse") !== "0";
  const ids = (name) => (params.get(name) || "").split(",").filter(Boolean);
  examples.like = ids("like");
  examples.unlike = ids("unlike");
  return Boolean($("query").value || examples.like.length);
}

// --- requests ------------------------------------------------------------------------------------------

function commonFields() {
  const filters = {};
  for (const [id, field] of FILTERS) {
    if ($(id).value) filters[field] = [$(id).value];
  }
  const fields = {
    k: Math.max(1, Math.min(100, parseInt($("k").value, 10) || 8)),
    use: $("use").value,
    collapse: $("collapse").checked,
    explain: true,
  };
  if (Object.keys(filters).length) fields.filters = filters;
  return fields;
}

function buildRequest() {
  if (examples.like.length) {
    return ["/v1/recommend", { positive: examples.like, negative: examples.unlike, ...commonFields() }];
  }
  const request = { query: $("query").value.trim(), ...commonFields() };
  const sku = $("sku").value.trim();
  if (sku) request.sku = sku;
  return ["/v1/search", request];
}

// --- rendering -----------------------------------------------------------------------------------------

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
  $("frame").hidden = examples.like.length > 0;
}

function renderExamples() {
  const box = $("examples");
  box.hidden = !examples.like.length;
  const unlike = examples.unlike.length ? `, unlike ${examples.unlike.join(", ")}` : "";
  $("examples-text").textContent = `Scenes like ${examples.like.join(", ")}${unlike}`;
}

async function fetchBlob(url) {
  const response = await fetch(url, { headers: headers(false) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const src = URL.createObjectURL(await response.blob());
  objectUrls.push(src);
  return src;
}

async function loadThumbnail(img, placeholder, url) {
  try {
    img.src = await fetchBlob(url);
    img.hidden = false;
    placeholder.hidden = true;
  } catch (err) {
    // leave the placeholder
  }
}

// Plays [start_s, end_s] of the clip: the file comes with the API key as a blob, then seek, play, stop.
async function playShot(card, sceneId, shot) {
  const video = card.querySelector(".player");
  const button = card.querySelector(".play-button");
  button.disabled = true;
  button.textContent = "Loading...";
  try {
    if (!video.src) {
      video.src = await fetchBlob(`/v1/scenes/${encodeURIComponent(sceneId)}/shots/${shot.index}/media`);
      video.addEventListener("timeupdate", () => {
        if (video.currentTime >= shot.end_s) video.pause();
      });
      await new Promise((resolve, reject) => {
        video.addEventListener("loadedmetadata", resolve, { once: true });
        video.addEventListener("error", () => reject(new Error("this browser cannot play the clip")), { once: true });
      });
    }
    video.hidden = false;
    video.currentTime = shot.start_s;
    await video.play().catch(() => undefined); // autoplay rules may refuse; the controls remain
    card.dataset.playing = "1";
    button.textContent = "Replay best shot";
  } catch (err) {
    button.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

function renderScores(hit, box) {
  if (!box.hidden) {
    box.hidden = true;
    return;
  }
  box.replaceChildren();
  const why = hit.explanation || { channels: {}, ranks: {}, summary: "" };
  const table = el("table");
  const head = el("tr");
  for (const name of ["channel", "rank", "score"]) head.append(el("th", "", name));
  table.append(head);
  const names = Object.keys(why.ranks).sort((a, b) => why.ranks[a] - why.ranks[b]);
  for (const name of names) {
    const row = el("tr");
    row.append(el("td", "", name), el("td", "", `#${why.ranks[name]}`), el("td", "", String(why.channels[name])));
    table.append(row);
  }
  const fused = el("tr");
  fused.append(el("td", "", "fused"), el("td", "", ""), el("td", "", hit.score.toFixed(4)));
  table.append(fused);
  box.append(table, el("p", "summary", why.summary || ""));
  box.hidden = false;
}

// The lineage as a tree: root, down the ancestors to this scene, then its remixes nested under their parents.
function lineageTree(lineage) {
  const tree = el("ul", "tree");
  const items = new Map();
  const add = (parentList, node, current) => {
    const item = el("li");
    item.append(chip(node.scene_id, "node" + (node.eligible === false ? " hidden-node" : "")));
    if (current) item.classList.add("current");
    const children = el("ul");
    item.append(children);
    parentList.append(item);
    items.set(node.scene_id, children);
    return children;
  };
  let list = tree;
  for (const node of [...lineage.ancestors].reverse()) list = add(list, node, false);
  const here = add(list, { scene_id: lineage.scene_id, eligible: true }, true);
  for (const node of lineage.descendants) add(items.get(node.parent_id) || here, node, false);
  return tree;
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
    const summary = el("p", "", `root: ${lineage.root} · ${lineage.ancestors.length} ancestor(s), ` +
      `${lineage.descendants.length} remix(es)`);
    box.replaceChildren(summary, lineageTree(lineage));
    if (lineage.credit && lineage.credit.length) {
      box.append(el("p", "", `credit: ${lineage.credit.map((c) => c || "unknown").join(" → ")}`));
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
  const isClip = shot && shot.end_s !== null && shot.end_s > shot.start_s;
  if (isClip) {
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
  if (isClip) {
    const play = card.querySelector(".play-button");
    play.hidden = false;
    play.addEventListener("click", () => playShot(card, hit.scene_id, shot));
  }
  card.querySelector(".like-button").addEventListener("click", () => {
    examples.like = [hit.scene_id];
    examples.unlike = [];
    run();
  });
  const unlike = card.querySelector(".unlike-button");
  unlike.hidden = !examples.like.length;
  unlike.addEventListener("click", () => {
    examples.unlike = [...examples.unlike.filter((id) => id !== hit.scene_id), hit.scene_id];
    run();
  });
  const scores = card.querySelector(".scores");
  card.querySelector(".scores-button").addEventListener("click", () => renderScores(hit, scores));
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
    const item = el("li", "ad");
    const who = el("div", "advertiser", `${ad.advertiser || ""} · ${ad.ad_id} · score ${ad.score.toFixed(3)}`);
    item.append(el("strong", "", ad.headline || ad.ad_id), who, el("div", "why", ad.explanation || ""));
    list.append(item);
  }
}

function clearResults() {
  while (objectUrls.length) URL.revokeObjectURL(objectUrls.pop());
  $("results").replaceChildren();
  $("ads").replaceChildren();
  $("empty").hidden = true;
  $("results-title").hidden = true;
  $("ads-title").hidden = true;
}

async function run() {
  showError("");
  sessionStorage.setItem(KEY_STORE, $("api-key").value);
  writeUrl();
  renderExamples();
  clearResults();
  document.body.dataset.state = "loading";
  $("loading").hidden = false;
  $("search-button").disabled = true;
  try {
    const [path, request] = buildRequest();
    const data = await api("POST", path, request);
    renderFrame(data.frame);
    $("results").replaceChildren(...data.scenes.map((hit, i) => renderCard(hit, i + 1)));
    $("results-title").hidden = data.scenes.length === 0;
    $("empty").hidden = data.scenes.length > 0;
    renderAds(data.ads);
    document.body.dataset.state = data.scenes.length ? "done" : "empty";
  } catch (err) {
    $("frame").hidden = true;
    showError(err.message);
    document.body.dataset.state = "error";
  } finally {
    $("loading").hidden = true;
    $("search-button").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    examples.like = [];
    examples.unlike = [];
    run();
  });
  $("back-to-search").addEventListener("click", () => {
    examples.like = [];
    examples.unlike = [];
    if ($("query").value.trim()) {
      run();
    } else {
      writeUrl();
      renderExamples();
      clearResults();
    }
  });
  if (readUrl()) run();
});
