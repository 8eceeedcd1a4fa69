/* auditline console: one page over the read-only JSON API (docs/console.md). No framework, no
   build step; every text from the store goes into the page as text, never as markup. */
"use strict";

const state = { cy: null, graph: null, alerts: new Map(), cursor: "", source: null, meta: null };
window.auditlineConsole = state; // for the browser tests and the curious

// -- helpers ------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) if (value) query.set(key, value);
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  showError("");
  return body;
}

function hashParams() {
  const [view, query] = location.hash.replace(/^#\/?/, "").split("?");
  return { view: view || "graph", params: new URLSearchParams(query || "") };
}

function go(view, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) if (value) query.set(key, value);
  location.hash = `#/${view}${query.toString() ? "?" + query : ""}`;
}

function formParams(form) {
  const params = {};
  for (const [key, value] of new FormData(form).entries()) if (value) params[key] = String(value);
  return params;
}

function fillForm(form, params) {
  for (const [key, value] of params.entries()) if (form.elements[key]) form.elements[key].value = value;
}

const PALETTE = ["#2e90fa", "#12b76a", "#f79009", "#7a5af8", "#ee46bc", "#06aed4", "#66c61c",
  "#ef6820", "#6172f3", "#15b79e", "#875bf7", "#f63d68"];
function countryColour(country) {
  if (!country || country === "ZZ") return "#98a2b3";
  let hash = 0;
  for (const ch of country) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}
const CLASS_BORDER = { special_category: "#b42318", personal: "#dc6803", payment: "#dc6803",
  cn_sensitive: "#b42318", cn_important: "#b42318", pseudonymised: "#7a5af8", internal: "#475467" };
const SHAPES = { dataset: "round-rectangle", feature_store: "round-rectangle", run: "diamond",
  model_version: "hexagon", model: "hexagon", deployment: "triangle" };
const asUtc = (value) => (value ? `${value}${value.length === 16 ? ":00" : ""}Z` : "");

// -- lineage graph --------------------------------------------------------------------------------

async function showGraph(params) {
  const form = document.getElementById("graph-form");
  fillForm(form, params);
  const node = params.get("node");
  if (!node) return;
  const asOf = params.get("as_of");
  const graph = await api("/api/graph", {
    node, direction: params.get("direction") || "both", depth: params.get("depth") || "10",
    as_of: asOf ? asUtc(asOf) : "",
  });
  state.graph = graph;
  drawGraph(graph);
}

function drawGraph(graph) {
  const elements = [];
  for (const n of graph.nodes) {
    elements.push({ group: "nodes", classes: [n.kind, n.violations.length ? "violation" : "", n.id === graph.root ? "root" : ""].join(" "),
      data: { id: n.id, label: `${n.id}\n${n.country || "place unknown"}`, colour: countryColour(n.country),
        border: CLASS_BORDER[n.classification] || "#d0d5dd", shape: SHAPES[n.kind] || "ellipse", node: n } });
  }
  for (const e of graph.edges) {
    const rules = [...new Set(e.violations.map((v) => v.rule))];
    elements.push({ group: "edges", classes: e.violations.length ? "violation" : "",
      data: { id: e.id, source: e.source, target: e.target, edge: e,
        label: rules.length ? `${e.kind}\n✗ ${rules.join(", ")}` : e.kind } });
  }
  if (state.cy) state.cy.destroy();
  state.cy = cytoscape({
    container: document.getElementById("cy"), elements,
    style: [
      { selector: "node", style: { label: "data(label)", "text-wrap": "wrap", "font-size": 10,
        "background-color": "data(colour)", shape: "data(shape)", "border-width": 3,
        "border-color": "data(border)", "text-valign": "bottom", "text-margin-y": 4, width: 34, height: 34 } },
      { selector: "node.root", style: { width: 46, height: 46, "font-weight": "bold" } },
      { selector: "node.violation", style: { "border-color": "#c01048", "border-width": 5, "border-style": "double" } },
      { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", width: 2,
        "line-color": "#98a2b3", "target-arrow-color": "#98a2b3", label: "data(label)", "font-size": 9,
        "text-rotation": "autorotate", "text-wrap": "wrap", "text-margin-y": -14,
        "text-background-color": "#fff", "text-background-opacity": 0.8 } },
      { selector: "edge.violation", style: { "line-color": "#c01048", "target-arrow-color": "#c01048",
        width: 4, "line-style": "dashed", color: "#c01048" } },
      { selector: ":selected", style: { "overlay-color": "#2e90fa", "overlay-opacity": 0.2 } },
    ],
    layout: { name: "preset" },
  });
  // upstream on the left, downstream on the right: breadth-first levels, turned on their side
  state.cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1.4, padding: 20, animate: false }).run();
  state.cy.nodes().positions((n) => ({ x: n.position("y") * 2.0, y: n.position("x") * 1.2 }));
  state.cy.fit(undefined, 40);
  if (state.cy.zoom() > 1.1) { state.cy.zoom(1.1); state.cy.center(); }
  state.cy.on("tap", "node", (evt) => showNode(evt.target.data("node")));
  state.cy.on("tap", "edge", (evt) => showEdge(evt.target.data("edge")));
  drawLegend(graph);
  if (graph.truncated) showError(`The graph has more nodes than the console draws: the ${graph.nodes.length} nearest are shown; lower the depth.`);
}

function drawLegend(graph) {
  const legend = document.getElementById("legend");
  const countries = [...new Set(graph.nodes.map((n) => n.country || "unknown"))].sort();
  legend.replaceChildren(
    el("span", {}, "Fill: country — "),
    ...countries.map((c) => el("span", {}, el("i", { style: `background:${countryColour(c === "unknown" ? "" : c)}` }), c)),
    el("span", {}, " · Border: classification (red special category, orange personal) · ",
      el("span", { class: "violation" }, "red dashed hop: a rule was broken there"),
      " · shapes: dataset ▭, run ◆, model version ⬢, deployment ▲"),
  );
}

function violationList(violations) {
  if (!violations.length) return el("p", { class: "ok" }, "no violations");
  return el("ul", { class: "violations" }, violations.map((v) =>
    el("li", { class: "violation" }, el("b", {}, `${v.rule} (${v.decision}, ${v.severity})`), v.hop ? ` on ${v.hop}: ` : ": ", v.message)));
}

function showEdge(edge) {
  const detail = document.getElementById("detail");
  const attributes = Object.entries(edge.attributes).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)));
  detail.replaceChildren(
    el("h3", {}, `${edge.source} → ${edge.target}`),
    el("p", {}, `hop: ${edge.kind}`),
    attributes.length ? el("table", {}, attributes) : null,
    el("h4", {}, "Violations"), violationList(edge.violations),
    el("h4", {}, "Events"), el("ul", {}, edge.events.map((id) => el("li", {}, id))),
  );
}

async function showNode(node) {
  const detail = document.getElementById("detail");
  detail.replaceChildren(el("h3", {}, node.id), el("p", { class: "hint" }, "loading…"));
  const found = await api("/api/node", { id: node.id });
  const facts = [["kind", node.kind], ["country", node.country || "unknown"],
    ["classification", node.classification || "undeclared"],
    ...Object.entries(node.attributes)].filter(([, v]) => v);
  detail.replaceChildren(
    el("h3", {}, node.id),
    el("table", {}, facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
    el("p", {},
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); go("graph", { node: node.id }); } }, "centre the graph here"),
      found.evidence ? " · " : null,
      found.evidence ? el("a", { href: `#/evidence?model=${encodeURIComponent(found.evidence)}`, "data-testid": "open-evidence" }, "evidence bundle") : null),
    node.violations.length ? el("h4", {}, "Violations") : null,
    node.violations.length ? violationList(node.violations) : null,
    el("h4", {}, `Events (${found.events.length})`),
    el("table", {}, el("tr", {}, el("th", {}, "time"), el("th", {}, "kind"), el("th", {}, "stream #"), el("th", {}, "violations")),
      found.events.map((e) => el("tr", { title: JSON.stringify(e.body) },
        el("td", {}, e.time), el("td", {}, e.kind), el("td", {}, `${e.stream} #${e.sequence}`),
        el("td", { class: e.violations.length ? "violation" : "" }, e.violations.map((v) => v.rule).join(", ") || "—")))),
  );
}

// -- alerts ---------------------------------------------------------------------------------------

function alertFilters() {
  return formParams(document.getElementById("alert-form"));
}

function alertRow(alert, fresh) {
  const targets = [...alert.models.map((m) => `model:${m}`), ...alert.assets];
  return el("tr", { class: fresh ? "new" : "", "data-alert": alert.alert_id },
    el("td", {}, alert.time), el("td", {}, alert.kind),
    el("td", { class: `sev-${alert.severity}` }, alert.severity), el("td", {}, alert.rule),
    el("td", {}, alert.state), el("td", {}, alert.title), el("td", {}, alert.where),
    el("td", {}, targets.map((t) => el("a", { href: `#/graph?node=${encodeURIComponent(t)}` }, t, " "))));
}

async function loadAlerts() {
  const filters = alertFilters();
  const found = await api("/api/alerts", filters);
  state.alerts = new Map(found.alerts.map((a) => [a.alert_id, a]));
  document.getElementById("alert-rows").replaceChildren(...found.alerts.slice().reverse().map((a) => alertRow(a, false)));
  follow(found.cursor, filters);
}

function follow(cursor, filters) {
  if (state.source) state.source.close();
  const query = new URLSearchParams(filters);
  if (cursor) query.set("after", cursor);
  const live = document.getElementById("live");
  const source = new EventSource(`/api/alerts/stream?${query}`);
  state.source = source;
  source.onopen = () => { live.textContent = "live"; live.classList.add("on"); };
  source.onerror = () => { live.textContent = "live: reconnecting"; live.classList.remove("on"); };
  source.addEventListener("alert", (evt) => {
    const alert = JSON.parse(evt.data);
    if (state.alerts.has(alert.alert_id)) return;
    state.alerts.set(alert.alert_id, alert);
    document.getElementById("alert-rows").prepend(alertRow(alert, true));
    if (hashParams().view !== "alerts") {
      const badge = document.getElementById("alert-badge");
      badge.textContent = String(Number(badge.textContent || 0) + 1);
      badge.hidden = false;
    }
  });
}

// -- transfers ------------------------------------------------------------------------------------

async function showTransfers(params) {
  const form = document.getElementById("transfer-form");
  fillForm(form, params);
  const found = await api("/api/transfers", Object.fromEntries(params.entries()));
  const cells = new Map(found.cells.map((c) => [`${c.from}>${c.to}`, c]));
  const header = el("tr", {}, el("th", {}, "from \\ to"), found.destinations.map((d) => el("th", {}, d)));
  const rows = found.origins.map((o) => el("tr", {}, el("th", {}, o), found.destinations.map((d) => {
    const cell = cells.get(`${o}>${d}`);
    if (!cell) return el("td", {}, "");
    const title = `${cell.movements} movement(s) of ${cell.assets.join(", ")}; mechanisms: ${cell.mechanisms.join(", ")}; classifications: ${cell.classifications.join(", ")}; ${cell.violations} with a violation`;
    return el("td", { class: cell.violations ? "flagged" : "", title }, cell.violations ? `${cell.movements} (${cell.violations} ✗)` : cell.movements);
  })));
  document.getElementById("transfer-matrix").replaceChildren(header, ...rows);
  document.getElementById("transfer-summary").textContent =
    `${found.movements} movement(s). A red cell holds movements a rule denied or flagged; hover a cell for its assets and mechanisms.`;
}

// -- drift ----------------------------------------------------------------------------------------

async function showDrift(params) {
  const select = document.getElementById("drift-models");
  const models = (await api("/api/drift")).models;
  select.replaceChildren(...models.map((m) => el("option", { value: m.model }, `${m.model} (${m.alerts} alerts)`)));
  const model = params.get("model") || (models[0] && models[0].model);
  const charts = document.getElementById("drift-charts");
  if (!model) { charts.replaceChildren(el("p", { class: "hint" }, "No model version has predictions or drift alerts yet.")); return; }
  select.value = model;
  const found = await api("/api/drift", { model });
  const tables = [
    alertTable("Data quality", "quality", found.quality, ["feature", "check", "rate", "reference_rate", "threshold", "affected", "window_count"]),
    alertTable("Model quality (outcomes joined to predictions)", "performance", found.performance, ["metric", "value", "baseline", "threshold", "outcomes", "coverage", "label_delay_p50_s"]),
  ];
  if (!found.features.length) { charts.replaceChildren(el("p", { class: "ok" }, `${model}: no drift alert so far.`), ...tables); return; }
  charts.replaceChildren(
    el("p", {}, `${model}: ${found.episodes.length} episode(s) (${found.episodes.filter((e) => !e.closed).length} still open). The store keeps alerts, so each chart shows the windows where an episode opened or closed.`),
    ...found.features.map((f) => driftChart(f, found.episodes.filter((e) => e.feature === f.feature))), ...tables);
}

function alertTable(title, kind, alerts, fields) {
  if (!alerts.length) return el("p", { class: "ok", "data-kind": kind }, `${title}: no alert so far.`);
  const columns = ["state", "severity", ...fields, "window_start", "window_end"];
  const number = (v) => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : v);
  return el("section", { "data-kind": kind }, el("h3", {}, `${title}: ${alerts.length} alert(s)`),
    el("table", {}, el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {}, c.replaceAll("_", " "))))),
      el("tbody", {}, ...alerts.map((a) => el("tr", { class: a.state === "opened" ? "bad" : "" },
        ...columns.map((c) => el("td", {}, number(a[c]))))))));
}

function driftChart(feature, episodes) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const width = 760, height = 150, pad = 40;
  const ends = feature.points.map((p) => Date.parse(p.window_end));
  const starts = [...feature.points.map((p) => Date.parse(p.window_start)), ...episodes.map((e) => Date.parse(e.opened))];
  const t0 = Math.min(...starts), t1 = Math.max(...ends, t0 + 1);
  const v1 = Math.max(...feature.points.flatMap((p) => [p.value, p.threshold]), 1e-9) * 1.15;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad - (v / v1) * (height - 1.6 * pad);
  const root = svg("svg", { width, height, class: "chart", "data-feature": feature.feature });
  for (const e of episodes) {  // a high episode darker than a medium one
    const from = x(Date.parse(e.opened)), to = e.closed ? x(Date.parse(e.closed)) : x(t1);
    root.append(svg("rect", { x: from, y: pad / 2, width: Math.max(2, to - from), height: height - 1.5 * pad,
      fill: e.severity === "high" || e.severity === "critical" ? "#fda29b" : "#fee4e2", "fill-opacity": 0.6 },
      undefined));
  }
  root.append(svg("line", { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, stroke: "#d0d5dd" }));
  for (const [i, p] of feature.points.entries()) {
    const cx = x(ends[i]);
    root.append(svg("line", { x1: cx - 8, x2: cx + 8, y1: y(p.threshold), y2: y(p.threshold), stroke: "#c01048", "stroke-dasharray": "3 2" }));
    const dot = svg("circle", { cx, cy: y(p.value), r: 4, fill: p.state === "opened" ? "#c01048" : "#2e90fa" });
    dot.append(svg("title", {}, `${p.state} (${p.severity}) ${p.statistic} ${p.value} vs ${p.threshold}, window ${p.window_start} … ${p.window_end}`));
    root.append(dot);
    root.append(svg("text", { x: cx + 6, y: y(p.value) - 6 }, `${p.state} ${Number(p.value).toFixed(2)}`));
  }
  root.append(svg("text", { x: pad, y: 14 }, `${feature.feature === "*" ? "the model as a whole" : feature.feature} — ${feature.points[0].statistic}; red dot: an episode opened, blue: closed; dashed tick: its threshold; shaded: episodes (darker: high)`));
  root.append(svg("text", { x: pad, y: height - pad + 16 }, new Date(t0).toISOString().replace(".000Z", "+00:00")));
  root.append(svg("text", { x: width - pad - 150, y: height - pad + 16 }, new Date(t1).toISOString().replace(".000Z", "+00:00")));
  return root;
}

// -- evidence and streams -------------------------------------------------------------------------

async function showEvidence(params) {
  const model = params.get("model");
  document.getElementById("evidence-form").elements.model.value = model || "";
  const frame = document.getElementById("evidence-frame");
  const links = document.getElementById("evidence-downloads");
  if (!model) { frame.srcdoc = ""; links.replaceChildren(); return; }
  const response = await fetch(`/api/evidence?model=${encodeURIComponent(model)}&format=html`);
  if (!response.ok) { const body = await response.json(); throw new Error(body.error); }
  frame.srcdoc = await response.text();
  const page = `/api/evidence?model=${encodeURIComponent(model)}&format=html`;
  links.replaceChildren(...[["markdown", "Markdown"], ["html", "HTML"], ["json", "JSON"]].map(([form, label]) =>
    el("a", { href: `/api/evidence?model=${encodeURIComponent(model)}&format=${form}&download=1` }, `download ${label}`)),
    el("a", { href: page, "data-testid": "evidence-pdf", onclick: (e) => {
      e.preventDefault(); // the browser's print dialog saves the bundle's page as a PDF
      const w = window.open(page, "_blank");
      if (w) w.addEventListener("load", () => w.print());
    } }, "print / save as PDF"));
}

async function showStreams() {
  const found = await api("/api/streams");
  document.getElementById("streams-summary").replaceChildren(
    found.ok ? el("span", { class: "ok" }, "intact: ") : el("span", { class: "bad" }, "findings: "),
    `${found.events} events verified against ${found.anchors} anchors`);
  document.getElementById("stream-rows").replaceChildren(...found.streams.map((s) => el("tr", {},
    el("td", {}, s.stream), el("td", {}, s.service), el("td", {}, s.events), el("td", {}, s.last_sequence ?? ""),
    el("td", {}, s.last_time ?? ""),
    el("td", { class: s.ok ? "ok" : "bad" }, s.ok ? "intact" : s.findings.join("; ")))));
}

// -- routing --------------------------------------------------------------------------------------

const VIEWS = { graph: showGraph, alerts: async () => { document.getElementById("alert-badge").hidden = true; document.getElementById("alert-badge").textContent = ""; },
  transfers: showTransfers, drift: showDrift, evidence: showEvidence, streams: showStreams };

async function route() {
  const { view, params } = hashParams();
  const name = VIEWS[view] ? view : "graph";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === name);
  try { await VIEWS[name](params); } catch (error) { showError(error.message); }
}

async function start() {
  for (const [id, view] of [["graph-form", "graph"], ["transfer-form", "transfers"], ["drift-form", "drift"], ["evidence-form", "evidence"]]) {
    document.getElementById(id).addEventListener("submit", (e) => { e.preventDefault(); go(view, formParams(e.target)); });
  }
  document.getElementById("alert-form").addEventListener("submit", (e) => { e.preventDefault(); loadAlerts().catch((err) => showError(err.message)); });
  window.addEventListener("hashchange", route);
  try {
    state.meta = await api("/api/meta");
    document.getElementById("classifications").append(...state.meta.classifications.map((c) => el("option", {}, c)));
    document.getElementById("mechanisms").append(...state.meta.mechanisms.map((m) => el("option", {}, m)));
    const nodes = state.meta.models.map((m) => el("option", { value: `model:${m}` }));
    document.getElementById("graph-nodes").append(...nodes, ...state.meta.assets.map((a) => el("option", { value: a })));
    document.getElementById("evidence-models").append(...state.meta.models.map((m) => el("option", { value: m })));
    if (!hashParams().params.get("node") && hashParams().view === "graph" && state.meta.models.length) {
      document.getElementById("graph-node").value = `model:${state.meta.models[0]}`;
    }
    await loadAlerts();
  } catch (error) { showError(error.message); }
  await route();
}

start();
