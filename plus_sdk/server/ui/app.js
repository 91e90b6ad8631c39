// The review page of plus serve: a user signs in with a key and reads, edits, reverts or deletes
// their summary, resolves model suggestions, and sees one judgement under it. Plain JS, no build
// step, no network beyond this server. Every write goes through the /v1/summaries routes.
"use strict";

// ---------------------------------------------------------------------------------------------
// 1. A word diff (longest common subsequence over words and the spaces between them)
// ---------------------------------------------------------------------------------------------

const PlusDiff = (() => {
  const MAX_CELLS = 4_000_000; // beyond this the table is too big: diff whole lines instead

  function tokens(text) {
    return text.split(/(\s+)/).filter((t) => t.length > 0);
  }

  function lines(text) {
    return text.split(/(\n)/).filter((t) => t.length > 0);
  }

  // [op, text] pieces: "=" kept, "-" only in a, "+" only in b; neighbours with the same op merged.
  function diff(a, b) {
    let x = tokens(a);
    let y = tokens(b);
    if ((x.length + 1) * (y.length + 1) > MAX_CELLS) {
      x = lines(a);
      y = lines(b);
    }
    const n = x.length;
    const m = y.length;
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width); // table[i][j] = LCS length of x[i:], y[j:]
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = x[i] === y[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    const pieces = [];
    const push = (op, text) => {
      const last = pieces[pieces.length - 1];
      if (last && last[0] === op) last[1] += text;
      else pieces.push([op, text]);
    };
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { push("=", x[i]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) { push("-", x[i]); i++; }
      else { push("+", y[j]); j++; }
    }
    while (i < n) push("-", x[i++]);
    while (j < m) push("+", y[j++]);
    return pieces;
  }

  // Fill `container` with the diff as text, <ins> and <del> (no HTML is parsed from the texts).
  function render(container, a, b) {
    container.replaceChildren();
    for (const [op, text] of diff(a, b)) {
      if (op === "=") { container.append(document.createTextNode(text)); continue; }
      const node = document.createElement(op === "+" ? "ins" : "del");
      const label = document.createElement("span");
      label.className = "sr-only";
      label.textContent = op === "+" ? " added: " : " removed: ";
      node.append(label, document.createTextNode(text));
      container.append(node);
    }
  }

  return { tokens, diff, render };
})();

// ---------------------------------------------------------------------------------------------
// 2. Talking to the server: errors become sentences, never raw JSON
// ---------------------------------------------------------------------------------------------

class UiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const session = { userId: null, key: null, current: null, proposal: null, history: [] };

function explain(status, message) {
  if (status === 401) return "That key was not accepted. Check it and sign in again.";
  if (status === 413) return "That text is too long for this server.";
  if (status === 429 || status === 503) return "The server is busy. Wait a moment and try again.";
  if (message) return message.charAt(0).toUpperCase() + message.slice(1);
  return `The server could not do that (HTTP ${status}).`;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.key) headers.Authorization = `Bearer ${session.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    throw new UiError("The server did not answer. Check that it is running, then try again.", 0);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const message = data && data.error && typeof data.error.message === "string" ? data.error.message : "";
    throw new UiError(explain(response.status, message), response.status);
  }
  return data;
}

const userPath = (suffix = "") => `/v1/summaries/${encodeURIComponent(session.userId)}${suffix}`;

// ---------------------------------------------------------------------------------------------
// 3. Rendering
// ---------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function show(id, visible) { $(id).hidden = !visible; }

function say(message) {
  $("alert").hidden = true;
  $("notice").textContent = message;
  $("notice").hidden = false;
}

function fail(error) {
  $("notice").hidden = true;
  $("alert").textContent = error instanceof UiError ? error.message : `Something went wrong: ${error.message || error}`;
  $("alert").hidden = false;
}

function clearMessages() {
  $("alert").hidden = true;
  $("notice").hidden = true;
}

function formatDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (v) => String(v).padStart(2, "0");
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
    + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

function describeAction(v) {
  switch (v.action) {
    case "edit": return "your edit";
    case "revert": return `you went back to version ${v.based_on}`;
    case "accept": return `you accepted the model's suggestion (version ${v.based_on})`;
    case "proposal": return "a model suggestion";
    default: return v.author === "user" ? "your text" : "written by the model";
  }
}

function fillOrigin(dl, v) {
  const rows = [
    ["Version", String(v.version)],
    ["How", describeAction(v)],
    ["Model", v.author === "user" && v.model_id === "user" ? "none (you wrote it)" : v.model_id],
    ["Date", formatDate(v.created_at)],
    ["Edited by you", v.author === "user" ? "yes" : "no"],
  ];
  if (v.prompt_version) rows.splice(3, 0, ["Prompt version", v.prompt_version]);
  dl.replaceChildren();
  for (const [term, detail] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = detail;
    dl.append(dt, dd);
  }
}

function renderCurrent() {
  const v = session.current;
  show("current-empty", !v);
  show("current-text", Boolean(v));
  show("current-origin", Boolean(v));
  $("current-text").textContent = v ? v.text : "";
  if (v) fillOrigin($("current-origin"), v);
  $("edit-text").value = v ? v.text : "";
  $("delete-button").disabled = !v && session.history.length === 0;
}

function renderProposal() {
  const p = session.proposal;
  show("proposal", Boolean(p));
  if (!p) return;
  PlusDiff.render($("proposal-diff"), session.current ? session.current.text : "", p.text);
  fillOrigin($("proposal-origin"), p);
}

function historyItem(v, previous) {
  const li = document.createElement("li");
  li.id = `version-${v.version}`;
  const details = document.createElement("details");
  const head = document.createElement("summary");
  head.textContent = `Version ${v.version} · ${formatDate(v.created_at)} · ${describeAction(v)}`;
  for (const [flag, label] of [[v.is_current, "current"], [v.is_proposal, "suggestion"]]) {
    if (!flag) continue;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = label;
    head.append(tag);
  }
  const text = document.createElement("div");
  text.className = "summary";
  text.textContent = v.text;
  details.append(head, text);
  if (previous) {
    const caption = document.createElement("p");
    caption.className = "help";
    caption.textContent = `Changes from version ${previous.version}:`;
    const changes = document.createElement("div");
    changes.className = "diff";
    PlusDiff.render(changes, previous.text, v.text);
    details.append(caption, changes);
  }
  if (!v.is_current) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = `Make version ${v.version} current`;
    button.addEventListener("click", () => act(() => revert(v.version)));
    details.append(button);
  }
  li.append(details);
  return li;
}

function renderHistory() {
  const list = $("history-list");
  list.replaceChildren();
  const rows = session.history;
  for (let k = rows.length - 1; k >= 0; k--) list.append(historyItem(rows[k], rows[k - 1]));
  show("history", rows.length > 0);
}

function render() {
  renderCurrent();
  renderProposal();
  renderHistory();
}

// ---------------------------------------------------------------------------------------------
// 4. Actions (each one request through the store routes, then a reload of the state)
// ---------------------------------------------------------------------------------------------

async function load() {
  try {
    const shown = await api("GET", userPath());
    session.current = shown.current;
    session.proposal = shown.proposal;
    session.history = await api("GET", userPath("/history"));
  } catch (error) {
    if (error.status !== 404) throw error;
    Object.assign(session, { current: null, proposal: null, history: [] });
  }
  render();
}

async function act(work) {
  const buttons = [...document.querySelectorAll("#app button")];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    clearMessages();
    await work();
  } catch (error) {
    fail(error);
    if (error.status === 401) signOut(false);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    if (!$("app").hidden) renderCurrent();
  }
}

async function signIn(userId, key) {
  session.userId = userId;
  session.key = key;
  await load();
  sessionStorage.setItem("plus-ui", JSON.stringify({ userId, key }));
  $("who-user").textContent = userId;
  show("who", true);
  show("signin", false);
  show("app", true);
  $("current-title").setAttribute("tabindex", "-1");
  $("current-title").focus();
}

function signOut(clear = true) {
  sessionStorage.removeItem("plus-ui");
  Object.assign(session, { userId: null, key: null, current: null, proposal: null, history: [] });
  show("app", false);
  show("who", false);
  show("signin", true);
  $("key").value = "";
  if (clear) clearMessages();
  $("key").focus();
}

async function saveEdit() {
  const text = $("edit-text").value;
  if (!text.trim()) throw new UiError("The summary is empty: write a few words about yourself first.");
  const saved = await api("PUT", userPath(), { text });
  await load();
  say(`Saved as version ${saved.version}. It is your current summary.`);
}

async function revert(version) {
  const saved = await api("POST", userPath("/revert"), { version });
  await load();
  say(`Version ${version} is current again (saved as version ${saved.version}).`);
}

async function acceptProposal() {
  const saved = await api("POST", userPath("/proposal"));
  await load();
  say(`Suggestion accepted: it is your current summary (version ${saved.version}).`);
}

async function dismissProposal() {
  await api("DELETE", userPath("/proposal"));
  await load();
  say("Suggestion dismissed. It stays in your history.");
}

async function deleteEverything() {
  const result = await api("DELETE", userPath());
  await load();
  say(`Deleted ${result.deleted_versions} version(s). Nothing about you is stored here now.`);
}

async function judge() {
  const prompt = $("judge-prompt").value.trim();
  const a = $("judge-a").value.trim();
  const b = $("judge-b").value.trim();
  const missing = [["request", prompt], ["reply A", a], ["reply B", b]].filter(([, v]) => !v).map(([n]) => n);
  if (missing.length) throw new UiError(`Fill in the ${missing.join(", ")} first.`);
  if (!session.current) throw new UiError("There is no summary to judge with: save one first.");
  $("judge-result").textContent = "Judging…";
  try {
    const pref = await api("POST", "/v1/judge", { summary: session.current.text, prompt, a, b });
    const pA = Math.round(pref.probability * 100);
    const verdict = pA === 50 ? "Neither reply fits you better" : `Reply ${pref.choice === "a" ? "A" : "B"} fits you better`;
    $("judge-result").textContent = `${verdict}: ${pA}% that you prefer A, `
      + `${100 - pA}% B (under version ${session.current.version} of your summary).`;
  } catch (error) {
    $("judge-result").textContent = "";
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Wiring
// ---------------------------------------------------------------------------------------------

// Say so at once when this server has no summary store (plus serve without --store).
async function checkServer() {
  try {
    const info = await api("GET", "/ui/info");
    if (!info.store) {
      fail(new UiError("This server keeps no summaries: start plus serve with --store to use this page."));
      $("signin-button").disabled = true;
    }
  } catch (_) { /* the sign-in reports an unreachable server */ }
}

function onSubmit(id, work) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    act(work);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const userId = $("user-id").value.trim();
    const key = $("key").value;
    if (!userId || !key) {
      fail(new UiError(!userId ? "Enter your user id." : "Enter your key."));
      $(!userId ? "user-id" : "key").focus();
      return;
    }
    $("signin-button").disabled = true;
    try {
      await signIn(userId, key);
    } catch (error) {
      session.key = null;
      fail(error);
      $("key").focus();
    } finally {
      $("signin-button").disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  onSubmit("edit-form", saveEdit);
  onSubmit("judge-form", judge);
  $("accept-proposal").addEventListener("click", () => act(acceptProposal));
  $("dismiss-proposal").addEventListener("click", () => act(dismissProposal));
  $("delete-button").addEventListener("click", () => {
    $("delete-dialog").returnValue = "";
    $("delete-dialog").showModal();
  });
  $("delete-dialog").addEventListener("close", () => {
    if ($("delete-dialog").returnValue === "delete") act(deleteEverything);
    $("delete-button").focus();
  });
  checkServer();
  const saved = sessionStorage.getItem("plus-ui");
  const ready = () => { document.body.dataset.ready = "true"; }; // the page has settled (tests wait for it)
  if (!saved) { ready(); return; }
  const { userId, key } = JSON.parse(saved);
  $("user-id").value = userId;
  signIn(userId, key).catch((error) => { signOut(false); fail(error); }).finally(ready);
});
