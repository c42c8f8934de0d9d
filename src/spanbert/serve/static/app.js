// SpanBERT demo page: talks to the JSON API of `spanbert serve` on the same origin.
//
// No framework and no external resource. All text reaches the page through text nodes or
// textContent (never innerHTML), and highlights are built from the API's character offsets:
// the document is cut at every span boundary and each piece is wrapped in the <mark>s that
// cover it, so nested spans (coreference) nest in the DOM.
"use strict";

// The task names the server may report, mapped to this page's sections.
const TASK_ALIASES = {
  qa: "qa", "question-answering": "qa", question_answering: "qa", squad: "qa",
  fill: "fill", infill: "fill", infilling: "fill", pretrain: "fill", pretraining: "fill", mlm: "fill",
  classify: "classify", classification: "classify", "text-classification": "classify",
  relations: "relations", relation: "relations", re: "relations",
  entities: "entities", ner: "entities", "token-classification": "entities",
  coref: "coref", coreference: "coref",
  summarize: "summarize", summarization: "summarize", summary: "summarize",
};
const TASKS = ["qa", "fill", "entities", "coref", "summarize", "relations", "classify"];
const HEAD_ORDER = ["mlm", "sbo", "joint", "iterative"];
const HEAD_NAMES = { mlm: "MLM head", sbo: "span boundary head", joint: "MLM × SBO", iterative: "iterative (MLM × SBO)" };
// Fixed colours for the usual entity types; other labels get a hue from their name.
const ENTITY_COLOURS = { PER: "#ffc9c9", PERSON: "#ffc9c9", ORG: "#a5d8ff", ORGANIZATION: "#a5d8ff", LOC: "#b2f2bb",
  LOCATION: "#b2f2bb", GPE: "#c3fae8", MISC: "#ffec99", DATE: "#eebefa", NORP: "#ffd8a8" };

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- small helpers

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "className") node.className = value;
    else if (key === "style") for (const [p, v] of Object.entries(value)) node.style.setProperty(p, v);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Four decimals; tiny non-zero values (e.g. a product of token probabilities) as 1.23e-6. */
function formatScore(score) {
  if (typeof score !== "number" || !Number.isFinite(score)) return String(score ?? "");
  return score === 0 || Math.abs(score) >= 1e-3 ? score.toFixed(4) : score.toExponential(2);
}

/** A readable hue for cluster ``i`` (golden-angle steps so neighbours differ). */
function clusterColour(i) {
  const hue = Math.round((i * 137.508 + 30) % 360);
  return { fill: `hsl(${hue} 85% 85%)`, border: `hsl(${hue} 60% 40%)` };
}

function labelColour(label) {
  const key = String(label).toUpperCase();
  if (ENTITY_COLOURS[key]) return ENTITY_COLOURS[key];
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.codePointAt(0)) % 360;
  return `hsl(${h} 80% 84%)`;
}

/**
 * Python counts characters by code point, JavaScript by UTF-16 unit; the API's offsets are
 * Python's. Returns a function mapping a code-point offset to a UTF-16 offset in ``text``.
 */
function codePointToUtf16(text) {
  const table = [0];
  let u = 0;
  for (const ch of text) { u += ch.length; table.push(u); }
  return (i) => table[Math.max(0, Math.min(i, table.length - 1))];
}

/**
 * Fill ``container`` with ``text`` where each span {start, end, make} (UTF-16 offsets, end
 * exclusive) is wrapped in the element ``make()`` returns. Spans that nest produce nested
 * elements; a span crossing another is split into pieces (the later pieces get
 * ``data-continued``). Every element gets ``data-span`` = the span's index in ``spans``.
 */
function renderSpans(container, text, spans) {
  container.replaceChildren();
  const valid = spans
    .map((span, index) => ({ ...span, index }))
    .filter((s) => Number.isInteger(s.start) && Number.isInteger(s.end) && s.start >= 0 && s.start < s.end && s.end <= text.length);
  // Outer spans first: earlier start, then longer, then input order.
  valid.sort((a, b) => a.start - b.start || b.end - a.end || a.index - b.index);
  const cuts = [...new Set([0, text.length, ...valid.flatMap((s) => [s.start, s.end])])].sort((a, b) => a - b);
  const open = []; // [{span, node}] from outermost to innermost
  const pieces = new Map();
  for (let c = 0; c + 1 < cuts.length; c++) {
    const [a, b] = [cuts[c], cuts[c + 1]];
    const active = valid.filter((s) => s.start <= a && b <= s.end);
    let keep = 0;
    while (keep < open.length && keep < active.length && open[keep].span === active[keep]) keep++;
    open.length = keep;
    for (const span of active.slice(keep)) {
      const node = span.make();
      node.dataset.span = String(span.index);
      const seen = pieces.get(span.index) || 0;
      if (seen) node.dataset.continued = "true";
      pieces.set(span.index, seen + 1);
      (open.length ? open[open.length - 1].node : container).append(node);
      open.push({ span, node });
    }
    (open.length ? open[open.length - 1].node : container).append(document.createTextNode(text.slice(a, b)));
  }
}

// ---------------------------------------------------------------- errors and requests

class ApiError extends Error {
  constructor(message, status = 0, detail = "") {
    super(message);
    this.status = status; // 0 when the server could not be reached
    this.detail = detail;
  }
}

/** The server's ``detail`` (a string, or FastAPI's list of validation problems) as one line. */
function formatDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d && typeof d === "object" && "msg" in d
      ? `${(d.loc || []).join(".")}: ${d.msg}` : JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

function showError(message) {
  $("error-message").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error-message").textContent = "";
  $("error").hidden = true;
}

/** GET or POST JSON; throws ApiError with the server's message on any failure. */
async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`could not reach the server (${err.message})`);
  }
  const raw = await response.text();
  let data = null;
  try { data = raw ? JSON.parse(raw) : null; } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? formatDetail(data.detail) : raw.slice(0, 300) || response.statusText;
    throw new ApiError(`HTTP ${response.status}: ${detail}`, response.status, detail);
  }
  if (data === null || typeof data !== "object") throw new ApiError(`the server's reply to ${path} is not JSON`);
  return data;
}

/**
 * Run one task request for a section: marks the section busy, disables its button, shows a
 * failure in the error area, and sets ``data-state`` to ``done`` or ``error`` at the end.
 */
async function runTask(task, button, request, render) {
  const section = $(`${task}-section`);
  const title = section.querySelector("h2").textContent;
  clearError();
  section.dataset.state = "busy";
  section.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    const model = $(`${task}-model`).value;
    const body = { ...request(), ...(model ? { model } : {}) };
    const data = await api("POST", section.dataset.endpoint, body);
    const result = (data.results || [])[0];
    if (result === undefined) throw new ApiError("the server returned no result");
    render(result, data);
    section.dataset.state = "done";
  } catch (err) {
    showError(`${title}: ${err instanceof ApiError ? err.message : `the page failed to show the result (${err})`}`);
    section.dataset.state = "error";
  } finally {
    button.disabled = false;
    section.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------- the annotated document

// Each layer: {text, build(container, legend)}; only shown while the document is unchanged.
const layers = {};

function documentText() {
  return $("document").value;
}

function setLayer(name, layer) {
  layers[name] = layer;
  const radio = document.querySelector(`input[name=layer][value=${name}]`);
  radio.disabled = false;
  radio.checked = true;
  showLayer();
}

function showLayer() {
  const name = document.querySelector("input[name=layer]:checked").value;
  const view = $("document-view");
  const legend = $("legend");
  legend.replaceChildren();
  legend.hidden = true;
  view.dataset.layer = name;
  const layer = layers[name];
  if (!layer || layer.text !== documentText()) {
    view.replaceChildren(document.createTextNode(documentText()));
    view.dataset.layer = "none";
    return;
  }
  layer.build(view, legend);
  legend.hidden = legend.childElementCount === 0;
}

function documentChanged() {
  // Offsets of earlier results no longer fit the text: drop them.
  for (const name of Object.keys(layers)) delete layers[name];
  for (const radio of document.querySelectorAll("input[name=layer]")) {
    radio.disabled = radio.value !== "none";
    radio.checked = radio.value === "none";
  }
  showLayer();
}

/** API spans (code-point offsets into ``text``) to renderSpans' UTF-16 spans. */
function toUtf16(text, spans) {
  const at = codePointToUtf16(text);
  return spans.map((s) => ({ ...s, start: at(s.start), end: at(s.end) }));
}

// ---------------------------------------------------------------- tasks

function showQa(result, context) {
  const answer = $("qa-answer");
  answer.classList.toggle("no-answer", Boolean(result.no_answer));
  answer.textContent = result.no_answer ? "No answer (the model finds none in the document)" : result.answer;
  answer.dataset.noAnswer = String(Boolean(result.no_answer));
  $("qa-score").textContent = result.score === null || result.score === undefined ? "—" : formatScore(result.score);
  $("qa-score").dataset.score = String(result.score);
  $("qa-probability").textContent = result.probability === null || result.probability === undefined ? "—" : formatScore(result.probability);
  $("qa-result").hidden = false;
  const spans = result.no_answer ? [] : [{
    start: result.start, end: result.end,
    make: () => el("mark", { className: "answer", "data-testid": "answer-mark", "data-score": result.score,
      title: `answer, score ${formatScore(result.score)}, probability ${formatScore(result.probability)}` }),
  }];
  setLayer("answer", { text: context, build: (view) => renderSpans(view, context, toUtf16(context, spans)) });
}

function fillCandidates(prediction) {
  const top = prediction.top_k || prediction.candidates || [];
  return top.map((position) => position.map((pair) => (Array.isArray(pair)
    ? `${pair[0]} ${formatScore(pair[1])}` : `${pair.token ?? pair.text} ${formatScore(pair.probability ?? pair.score)}`)).join(", "));
}

function showFill(result, input) {
  // ``text``: the input filled by the joint head; ``filled``: by every head.
  $("fill-filled").textContent = String(result.text ?? "");
  const byHead = $("fill-by-head");
  byHead.replaceChildren();
  const filled = result.filled || {};
  for (const head of orderedHeads(filled)) {
    byHead.append(el("li", { "data-testid": "filled-head", "data-head": head },
      el("span", { className: "head", title: HEAD_NAMES[head] || head }, `${head}:`), " ",
      el("span", { className: "fill-text" }, String(filled[head]))));
  }
  // The input with each masked run highlighted; its joint fill as a tooltip.
  const runs = result.spans || [];
  renderSpans($("fill-input-view"), input, toUtf16(input, runs.map((span, i) => ({
    start: span.start, end: span.end,
    make: () => el("mark", { className: "fill-run", "data-testid": "fill-run-mark", "data-tag": i + 1,
      title: `span ${i + 1}: ${span.predictions?.joint?.text ?? ""}` }),
  }))));
  const list = $("fill-spans");
  list.replaceChildren();
  runs.forEach((span, i) => {
    const table = el("table", { className: "fill-heads" },
      el("tr", {}, el("th", { scope: "col" }, "head"), el("th", { scope: "col" }, "fill"),
        el("th", { scope: "col" }, "probability"), el("th", { scope: "col" }, "per token"),
        el("th", { scope: "col" }, "candidates per position")));
    const predictions = span.predictions || {};
    for (const head of orderedHeads(predictions)) {
      const p = predictions[head] || {};
      const cands = fillCandidates(p);
      table.append(el("tr", { "data-testid": "fill-head", "data-head": head },
        el("th", { scope: "row", title: HEAD_NAMES[head] || head }, head),
        el("td", { className: "fill-text" }, String(p.text ?? (p.tokens || []).join(" "))),
        el("td", { className: "fill-prob" }, formatScore(p.probability)),
        el("td", { className: "fill-probs" }, (p.probabilities || []).map(formatScore).join(", ")),
        el("td", { className: "candidates" }, ...(cands.length ? cands.flatMap((c, j) => (j ? [el("br"), c] : [c])) : ["—"]))));
    }
    const masked = Number.isInteger(span.start) ? [...input].slice(span.start, span.end).join("") : "";
    list.append(el("div", { className: "fill-span", "data-testid": "fill-span", "data-index": i },
      el("h3", {}, `Span ${i + 1}`, masked ? el("span", { className: "masked" }, ` ${masked}`) : null), table));
  });
  $("fill-result").hidden = false;
}

function orderedHeads(byHead) {
  return HEAD_ORDER.filter((h) => h in byHead).concat(Object.keys(byHead).filter((h) => !HEAD_ORDER.includes(h)));
}

function showEntities(result, context) {
  const entities = result.entities || [];
  const labels = [...new Set(entities.map((e) => e.label))].sort();
  const spans = entities.map((e) => ({
    start: e.start, end: e.end,
    make: () => el("mark", { className: "entity", "data-testid": "entity", "data-label": e.label,
      title: `${e.label}, score ${formatScore(e.score)}`, style: { "--c": labelColour(e.label) } }),
  }));
  const summary = $("entities-result");
  summary.textContent = entities.length
    ? `${entities.length} entit${entities.length === 1 ? "y" : "ies"} of ${labels.length} type${labels.length === 1 ? "" : "s"}.`
    : "No entity found.";
  summary.hidden = false;
  setLayer("entities", {
    text: context,
    build: (view, legend) => {
      renderSpans(view, context, toUtf16(context, spans));
      for (const label of labels) {
        const count = entities.filter((e) => e.label === label).length;
        legend.append(el("span", { className: "swatch", "data-testid": "legend-item", "data-label": label,
          style: { "--c": labelColour(label) } }, `${label} (${count})`));
      }
    },
  });
}

function showCoref(result, context) {
  const clusters = result.clusters || [];
  const list = $("coref-result");
  list.replaceChildren();
  const spans = [];
  clusters.forEach((cluster, c) => {
    const colour = clusterColour(c);
    for (const m of cluster) {
      spans.push({
        start: m.start, end: m.end,
        make: () => el("mark", { className: "coref", "data-testid": "mention", "data-cluster": c, "data-tag": c + 1,
          title: `cluster ${c + 1}`, style: { "--c": colour.fill, "--border": colour.border } }),
      });
    }
    list.append(el("li", { "data-cluster": c }, el("span", { className: "swatch", style: { "--c": colour.fill } }),
      cluster.map((m) => m.text).join(" · ")));
  });
  if (!clusters.length) list.append(el("li", {}, "No cluster found."));
  list.hidden = false;
  setLayer("coref", { text: context, build: (view) => renderSpans(view, context, toUtf16(context, spans)) });
}

function showSummary(result, context) {
  const sentences = result.sentences || [];
  $("summarize-result").textContent = result.summary ?? sentences.map((s) => s.text).join(" ");
  $("summarize-result").hidden = false;
  const spans = sentences.map((s, rank) => ({
    start: s.start, end: s.end,
    make: () => el("mark", { className: "summary-sentence", "data-testid": "summary-sentence", "data-index": s.index,
      "data-tag": `#${rank + 1}`, title: `sentence ${s.index + 1}, score ${formatScore(s.score)}` }),
  }));
  setLayer("summary", { text: context, build: (view) => renderSpans(view, context, toUtf16(context, spans)) });
}

/** The sentence without its <e1>/<e2> markers and the two entities' spans (UTF-16 offsets). */
function parseMarkers(marked) {
  const marker = /<(\/?)e([12])(?::([^<>\s]+))?>/g;
  let plain = "";
  let pos = 0;
  const open = {};
  const spans = [];
  for (const m of marked.matchAll(marker)) {
    plain += marked.slice(pos, m.index);
    pos = m.index + m[0].length;
    const which = m[2];
    if (!m[1]) open[which] = { start: plain.length, type: m[3] };
    else if (open[which]) {
      spans.push({ which, start: open[which].start, end: plain.length, type: open[which].type });
      delete open[which];
    }
  }
  plain += marked.slice(pos);
  return { plain, spans };
}

function showRelation(result, marked) {
  const { plain, spans } = parseMarkers(marked);
  renderSpans($("relations-view"), plain, spans.map((s) => ({
    start: s.start, end: s.end,
    make: () => el("mark", { className: `rel-entity rel-e${s.which}`, "data-testid": `rel-e${s.which}`,
      "data-label": s.type ? `e${s.which}:${s.type}` : `e${s.which}`, style: { "--c": s.which === "1" ? "#a5d8ff" : "#ffc9c9" } }),
  })));
  $("relations-label").textContent = result.label;
  $("relations-score").textContent = formatScore(result.score);
  fillProbabilities($("relations-probs"), result.probabilities);
  $("relations-result").hidden = false;
}

function fillProbabilities(table, probabilities) {
  table.replaceChildren();
  const entries = Object.entries(probabilities || {}).sort((a, b) => b[1] - a[1]);
  table.hidden = entries.length === 0;
  for (const [label, p] of entries) {
    table.append(el("tr", { "data-label": label },
      el("th", { scope: "row" }, label),
      el("td", {}, formatScore(p)),
      el("td", {}, el("span", { className: "bar", style: { width: `${Math.max(0, Math.min(1, p)) * 12}rem` } }))));
  }
}

function showClassification(result) {
  $("classify-label").textContent = result.label;
  $("classify-score").textContent = formatScore(result.score);
  fillProbabilities($("classify-probs"), result.probabilities);
  $("classify-result").hidden = false;
}

// ---------------------------------------------------------------- wiring

const ENDPOINTS = { qa: "/v1/qa", fill: "/v1/fill", entities: "/v1/entities", coref: "/v1/coref",
  summarize: "/v1/summarize", relations: "/v1/relations", classify: "/v1/classify" };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for /readyz (the server loads its models after it starts), then list the models. */
async function loadModels() {
  const status = $("models-status");
  let models;
  try {
    for (;;) {
      try {
        await api("GET", "/readyz");
        break;
      } catch (err) {
        // 503 "loading the models": wait; loading failed or anything else: report it.
        if (!(err.status === 503 && !String(err.detail).startsWith("loading failed"))) throw err;
        status.textContent = "The server is loading its models…";
        await sleep(1000);
      }
    }
    models = (await api("GET", "/v1/models")).models || [];
  } catch (err) {
    status.textContent = "No models: the server is not ready.";
    showError(`Loading the models: ${err.message}`);
    return;
  }
  const byTask = {};
  const list = $("models");
  list.replaceChildren();
  for (const m of models) {
    const task = TASK_ALIASES[String(m.task).toLowerCase()];
    list.append(el("li", { "data-task": task || m.task }, el("span", { className: "task" }, String(m.task)), String(m.name)));
    if (task) (byTask[task] ||= []).push(m);
  }
  for (const task of TASKS) {
    const section = $(`${task}-section`);
    section.dataset.endpoint = ENDPOINTS[task];
    const available = byTask[task] || [];
    section.hidden = available.length === 0;
    const select = $(`${task}-model`);
    select.replaceChildren(...available.map((m) => el("option", { value: m.name }, String(m.name))));
    select.closest("label").hidden = available.length < 2;
    for (const label of document.querySelectorAll(`#layers label[data-task=${task}]`)) label.hidden = available.length === 0;
  }
  $("no-models").hidden = models.length > 0;
  status.textContent = `${models.length} model${models.length === 1 ? "" : "s"} loaded`;
  document.body.dataset.ready = "true";
}

function setUp() {
  $("error-dismiss").addEventListener("click", clearError);
  $("document").addEventListener("input", documentChanged);
  for (const radio of document.querySelectorAll("input[name=layer]")) radio.addEventListener("change", showLayer);
  documentChanged();

  $("qa-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const context = documentText();
    runTask("qa", $("qa-ask"), () => ({ items: [{ question: $("qa-question").value, context }] }),
      (r) => showQa(r, context));
  });
  $("fill-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("fill-text").value;
    runTask("fill", $("fill-run"), () => ({ items: [{ text: input }], top_k: Number($("fill-top-k").value) || 5 }),
      (r) => showFill(r, input));
  });
  const overDocument = (task, button, show, extra = () => ({})) => button.addEventListener("click", () => {
    const text = documentText();
    runTask(task, button, () => ({ items: [{ text }], ...extra() }), (r) => show(r, text));
  });
  overDocument("entities", $("entities-run"), showEntities);
  overDocument("coref", $("coref-run"), showCoref);
  overDocument("summarize", $("summarize-run"), showSummary, () => ({ max_sentences: Number($("summarize-max").value) || 3 }));
  $("classify-run").addEventListener("click", () => {
    const pair = $("classify-pair").value;
    runTask("classify", $("classify-run"), () => ({ items: [{ text: documentText(), ...(pair ? { text_pair: pair } : {}) }] }),
      showClassification);
  });
  $("relations-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const marked = $("relations-text").value;
    runTask("relations", $("relations-run"), () => ({ items: [{ text: marked }] }), (r) => showRelation(r, marked));
  });
  loadModels();
}

document.addEventListener("DOMContentLoaded", setUp);
