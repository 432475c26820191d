// v2p page: upload or type, show frames + prompts, copy, rate. No framework, no network beyond this server.
const $ = (id) => document.getElementById(id);
let last = null; // {query_id, clip_sha256, result, text}

function status(html, error = false, busy = false) {
  const el = $("status");
  el.hidden = false;
  el.className = "status" + (error ? " error" : "");
  el.innerHTML = (busy ? '<div class="spinner"></div>' : "") + `<div>${html}</div>`;
}

function esc(s) { const d = document.createElement("div"); d.textContent = s ?? ""; return d.innerHTML; }

async function health() {
  try {
    const r = await fetch("/api/health");
    const h = await r.json();
    $("limits").textContent = `up to ${h.max_upload_mb} MB, ${h.max_seconds} s`;
    $("index-info").textContent = `${h.prompts.toLocaleString()} prompts · encoder ${h.encoder}`;
  } catch (e) { $("limits").textContent = "server unreachable"; }
}

async function send(form, label) {
  $("result").hidden = true;
  status(`Reading <strong>${esc(label)}</strong> and searching the prompt bank…`, false, true);
  let r;
  try { r = await fetch("/api/query", { method: "POST", body: form }); }
  catch (e) { status("The server did not answer. Is <code>v2p serve</code> still running?", true); return; }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { status(esc(body.error || body.detail || `error ${r.status}`), true); return; }
  last = { ...body, text: form.get("text") };
  render(body);
}

function render(body) {
  const res = body.result;
  $("status").hidden = true;
  $("frames").innerHTML = body.frames.map((src, i) => `<img alt="frame ${i + 1}" src="${src}">`).join("");
  $("frames").hidden = !body.frames.length;
  const chips = [];
  if (res.camera) chips.push(`camera: ${esc(res.camera.phrase)}`, esc(res.camera.pika_flags));
  chips.push(`${esc(res.score_kind)} scores`, `${body.seconds.toFixed(2)} s`);
  $("camera").innerHTML = chips.map((c) => `<span class="chip">${c}</span>`).join("");
  $("prompts").innerHTML = res.candidates.map((c, i) => `
    <li class="prompt" data-i="${i}">
      <div class="text">${esc(c.prompt)}</div>
      <div class="meta"><span>#${c.rank}</span><span>${c.score.toFixed(3)}</span><span>${esc(c.source)}</span>
        <span class="grow"></span>
        <button type="button" class="copy">Copy</button>
        <button type="button" class="up" aria-label="Good prompt">✓ Good</button>
        <button type="button" class="down" aria-label="Bad prompt">✗ Bad</button></div>
    </li>`).join("");
  $("spliced").hidden = !res.spliced;
  if (res.spliced) {
    $("spliced").innerHTML = `<div class="text"><strong>Spliced:</strong> ${esc(res.spliced)}</div>
      <div class="meta"><span class="grow"></span><button type="button" class="copy">Copy</button></div>`;
  }
  $("result").hidden = false;
}

async function rate(i, value, button) {
  const c = last.result.candidates[i];
  const shown = last.result.candidates.map((x) => ({ prompt_id: x.prompt_id, rank: x.rank, score: x.score,
    features: x.features }));
  const r = await fetch("/api/feedback", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_id: last.query_id, rating: value, prompt_id: c.prompt_id, prompt: c.prompt,
      rank: c.rank, clip_sha256: last.clip_sha256, query_text: last.text || null, shown }) });
  if (r.ok) {
    const li = button.closest(".prompt");
    li.querySelectorAll(".up,.down").forEach((b) => b.classList.remove("on"));
    button.classList.add("on");
  } else { status("Your rating could not be saved.", true); }
}

$("spliced").addEventListener("click", async (e) => {
  if (!e.target.classList.contains("copy") || !last?.result.spliced) return;
  await navigator.clipboard?.writeText(last.result.spliced);
  e.target.textContent = "Copied"; setTimeout(() => (e.target.textContent = "Copy"), 1200);
});

$("prompts").addEventListener("click", async (e) => {
  const li = e.target.closest(".prompt"); if (!li || !last) return;
  const i = Number(li.dataset.i);
  if (e.target.classList.contains("copy")) {
    await navigator.clipboard?.writeText(last.result.candidates[i].prompt);
    e.target.textContent = "Copied"; setTimeout(() => (e.target.textContent = "Copy"), 1200);
  } else if (e.target.classList.contains("up")) { rate(i, 1, e.target); }
  else if (e.target.classList.contains("down")) { rate(i, -1, e.target); }
});

$("wanted-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const wanted = $("wanted").value.trim(); if (!wanted || !last) return;
  const r = await fetch("/api/feedback", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_id: last.query_id, rating: -1, clip_sha256: last.clip_sha256,
      query_text: last.text || null, wanted_prompt: wanted }) });
  $("wanted").value = ""; $("wanted").placeholder = r.ok ? "Thanks, saved." : "Could not save.";
});

function upload(file) { const f = new FormData(); f.append("file", file); send(f, file.name); }
const drop = $("drop");
drop.addEventListener("click", (e) => { if (e.target.id !== "pick") $("file").click(); });
$("pick").addEventListener("click", () => $("file").click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
$("file").addEventListener("change", () => { if ($("file").files[0]) upload($("file").files[0]); });
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) upload(f); });
$("text-form").addEventListener("submit", (e) => {
  e.preventDefault(); const t = $("text").value.trim(); if (!t) return;
  const f = new FormData(); f.append("text", t); send(f, t);
});
health();
