// A workstation's panel (/panel/<station>): the four actions as the operators know them, the
// MO picked from the lists the gateway answers (waiting, ready, running) or scanned, sticker
// codes typed or scanned (a scanner types and ends with Enter), a confirmation before an end
// or a changeover, and the gateway's reply in the operator's language.
//
// One request_id per attempt: a double tap, a retry after a blip, or a reload while a command
// waits for its reply all send the same id, and the agent applies it once.
"use strict";

const station = pathName(2);
const base = "/panel/" + encodeURIComponent(station);
const PENDING_KEY = "linegate.pending." + station;
const OPERATOR_KEY = "linegate.operator." + station;
// Sent again while unanswered, every RETRY_MS, this many times; then the operator decides.
const RETRY_MS = 2000;
const MAX_TRIES = 45;

// What each action asks for, in the order a scanner fills it.
const ACTIONS = {
  register: {
    action: "register-mo", ok: "ok_register", withLine: true,
    fields: [{ key: "mo", label: "mo", list: "mo-options" }, { key: "auth_first", label: "first_code", code: true }, { key: "roll_number", label: "roll_number" }],
  },
  start: {
    action: "start-production", ok: "ok_start", withLine: true,
    fields: [{ key: "mo", label: "mo", list: "ready-mo" }, { key: "leader_id", label: "leader_id" }],
  },
  changeover: {
    action: "changeover", ok: "ok_changeover", confirm: "confirm_changeover",
    fields: [
      { key: "current_mo", label: "current_mo", list: "running-mo" },
      { key: "next_mo", label: "next_mo", list: "ready-mo" },
      { key: "new_auth", label: "new_code", code: true },
      { key: "roll_number", label: "roll_optional", optional: true },
    ],
  },
  end: {
    action: "end-production", ok: "ok_end", confirm: "confirm_end",
    fields: [{ key: "mo", label: "mo", list: "running-mo" }, { key: "authenticity", label: "next_code", code: true }],
  },
};

// Printed beside a workstation, these barcodes choose an action when scanned into any field,
// so a scanner alone drives the panel.
const ACTION_CODES = { "LG-REGISTER": "register", "LG-START": "start", "LG-CHANGEOVER": "changeover", "LG-END": "end" };

function scannedAction(text) {
  return ACTION_CODES[String(text || "").trim().toUpperCase()] || null;
}

let info = null; // {station, line, gateway, signed_in}
let state = null;
let pageUp = false;
let pageDownSince = Date.now();
const seen = {};
let feed = null;

let chosen = null; // a key of ACTIONS
let values = {}; // field → {text, id}: what the operator typed or picked
let listFor = null; // the MO field whose list is shown
const lists = {}; // query → MOs, as the gateway last answered
let confirming = false;
let attempt = null; // {request_id, action, command, key, tries, inFlight}
let message = null; // {kind, text, detail}
let retryTimer = null;

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "web-" + station + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function post(what, body) {
  try {
    const res = await fetch(base + "/" + what, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    let json = null;
    try { json = await res.json(); } catch (_) { /* not JSON */ }
    return { status: res.status, body: json || {} };
  } catch (_) {
    return { status: 0, body: {} };
  }
}

// Sticker codes are digits; arithmetic keeps their width ("000100" − 1 = "000099").
function minusOne(code) {
  if (!/^\d{1,30}$/.test(code || "")) return null;
  const n = BigInt(code) - 1n;
  return n < 0n ? null : n.toString().padStart(code.length, "0");
}

function counted(first, last) {
  if (!/^\d{1,30}$/.test(first || "") || !/^\d{1,30}$/.test(last || "")) return null;
  const n = BigInt(last) - BigInt(first) + 1n;
  return n < 0n ? null : n.toString();
}

function sentence(reply) {
  const code = reply && reply.error ? reply.error.code : null;
  if (code && WORDS.en["err_" + code]) return t("err_" + code);
  return t("err_other", { message: reply && reply.error ? reply.error.message : "?" });
}

function okSentence(def, result) {
  const mo = (result && result.mo) || {};
  if (def.action === "changeover") {
    const cur = result.current || {};
    const next = result.next || {};
    return t(def.ok, { current: txt(cur.name), last: txt(cur.auth_last), next: txt(next.name), first: txt(next.auth_first) });
  }
  return t(def.ok, {
    name: txt(mo.name), first: txt(mo.auth_first), roll: txt(mo.roll_number), leader: txt(mo.leader_id),
    last: txt(mo.auth_last), produced: txt(counted(mo.auth_first, mo.auth_last)),
  });
}

// The MO a field names, as its own list has it: the one picked, or found by the name typed.
function moOf(key) {
  const v = values[key];
  const field = chosen ? ACTIONS[chosen].fields.find((f) => f.key === key) : null;
  if (!v || !v.text || !field || !field.list) return null;
  for (const m of lists[field.list] || []) {
    if ((v.id != null && m.id === v.id) || m.name === v.text || String(m.id) === v.text) return m;
  }
  return null;
}

// ---- drawing ----

function draw() {
  document.getElementById("station-name").textContent = t("station") + " " + station + (info ? " · " + t("line") + " " + info.line : "");
  document.title = t("panel") + " " + station + " · linegate";
  document.getElementById("operator-label").textContent = t("operator_label");
  const off = info && info.signed_in ? offline(state, pageUp, pageDownSince, seen) : null;
  showBanner(off);
  chips(info && info.signed_in ? state : null, off);
  const main = document.getElementById("main");
  if (!info) {
    main.replaceChildren(el("p", { class: "hint", text: t("loading") }));
  } else if (!info.signed_in) {
    main.replaceChildren(signInForm());
    document.getElementById("password").focus();
  } else {
    main.replaceChildren(actionBar(), confirming ? confirmBox() : actionForm(), messageBox(), footer());
    focusNext();
  }
}

function signInForm() {
  const form = el("form", { class: "sign-in", id: "sign-in" },
    el("h2", { text: t("sign_in_title", { station }) }),
    el("p", { class: "hint", text: t("sign_in_help") }),
    el("label", {}, el("span", { text: t("password") }), el("input", { id: "password", type: "password", autocomplete: "current-password", maxlength: "256" })),
    el("button", { class: "primary", type: "submit", text: t("sign_in") }),
    messageBox(),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const password = document.getElementById("password").value;
    message = { kind: "pending", text: () => t("sending") };
    redrawMessage();
    const res = await post("sign-in", { password });
    if (res.status === 200) {
      message = null;
      await loadSession();
    } else {
      message = { kind: "bad", text: () => errorText(res) };
      redrawMessage();
    }
  });
  return form;
}

function actionBar() {
  return el("nav", { class: "actions" },
    Object.keys(ACTIONS).map((key) => el("button", {
      type: "button", class: "action" + (chosen === key ? " chosen" : ""), id: "action-" + key, text: t(key),
      onclick: () => choose(key),
    })));
}

function actionForm() {
  if (!chosen) return el("section", { class: "form" }, el("p", { class: "hint big", text: t("pick_mo") }));
  const def = ACTIONS[chosen];
  const inputs = def.fields.map((f, i) => {
    const input = el("input", {
      id: "f-" + f.key, name: f.key, autocomplete: "off", maxlength: "64",
      inputmode: f.code ? "numeric" : null, value: (values[f.key] || {}).text || "",
    });
    input.addEventListener("input", () => {
      values[f.key] = { text: input.value.trim(), id: null };
      redrawHint();
    });
    input.addEventListener("focus", () => {
      if (f.list && listFor !== f.key) {
        listFor = f.key;
        redrawList();
      }
    });
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      // This Enter is the field's: not also the confirmation's that it may open.
      e.preventDefault();
      e.stopPropagation();
      const act = scannedAction(input.value);
      if (act) {
        input.value = "";
        delete values[f.key];
        choose(act);
        return;
      }
      // On to the next field still empty (an optional one too: a roll may change); after the
      // last, send.
      const next = def.fields.slice(i + 1).find((g) => !(values[g.key] || {}).text);
      if (next) document.getElementById("f-" + next.key).focus();
      else submit();
    });
    return el("label", { class: "field-input" }, el("span", { text: t(f.label) + (f.optional ? "" : " *") }), input);
  });
  return el("section", { class: "form" },
    el("form", { class: "inputs", id: "action-form", onsubmit: (e) => { e.preventDefault(); submit(); } },
      inputs,
      el("div", { class: "code-hint", id: "code-hint" }),
      el("button", { class: "primary send", type: "submit", id: "send", text: t("send") }),
    ),
    el("div", { class: "mo-list", id: "mo-list" }),
  );
}

function confirmBox() {
  const def = ACTIONS[chosen];
  const name = (key) => { const m = moOf(key); return m ? m.name : (values[key] || {}).text; };
  const question = chosen === "end"
    ? t(def.confirm, { mo: name("mo") })
    : t(def.confirm, { current: name("current_mo"), next: name("next_mo") });
  return el("section", { class: "confirm", id: "confirm" },
    el("h2", { text: question }),
    el("p", { class: "hint big", text: hintText() }),
    el("div", { class: "confirm-buttons" },
      el("button", { class: "primary", type: "button", id: "confirm-yes", text: t("confirm"), onclick: () => submit(true) }),
      el("button", { type: "button", id: "confirm-no", text: t("cancel"), onclick: () => { confirming = false; draw(); } }),
    ));
}

function messageBox() {
  const box = el("div", { id: "message", class: "message" + (message ? " " + message.kind : ""), role: "status" });
  if (message) {
    box.append(el("div", { class: "message-text", text: message.text() }));
    if (message.retry) box.append(el("button", { type: "button", id: "retry", text: t("retry"), onclick: () => attempt && send(attempt) }));
    if (message.detail) box.append(el("div", { class: "message-detail", text: message.detail }));
  }
  return box;
}

function footer() {
  return el("footer", { class: "panel-foot" },
    el("button", { type: "button", id: "sign-out", text: t("sign_out"), onclick: async () => { await post("sign-out", {}); await loadSession(); } }));
}

function redrawMessage() {
  const old = document.getElementById("message");
  if (old) old.replaceWith(messageBox());
}

function hintText() {
  if (chosen === "end") {
    const last = minusOne((values.authenticity || {}).text);
    const mo = moOf("mo");
    return last ? t("ends_at", { code: last, n: txt(counted(mo && mo.auth_first, last)) }) : "";
  }
  if (chosen === "changeover") {
    const last = minusOne((values.new_auth || {}).text);
    const mo = moOf("current_mo");
    return last ? t("ends_at", { code: last, n: txt(counted(mo && mo.auth_first, last)) }) : "";
  }
  return "";
}

function redrawHint() {
  const hint = document.getElementById("code-hint");
  if (hint) hint.textContent = hintText();
}

function redrawList() {
  const box = document.getElementById("mo-list");
  if (!box || !chosen) return;
  const def = ACTIONS[chosen];
  const field = def.fields.find((f) => f.key === listFor) || def.fields.find((f) => f.list);
  if (!field) return;
  const mos = lists[field.list];
  const items = mos == null
    ? [el("p", { class: "hint", text: t("loading") })]
    : mos.length === 0
      ? [el("p", { class: "hint", text: t("list_empty") })]
      : mos.map((m) => el("button", {
        type: "button", class: "mo" + ((values[field.key] || {}).id === m.id ? " picked" : ""), "data-mo": m.id,
        onclick: () => pick(field.key, m),
      },
      el("span", { class: "mo-n", text: txt(m.name) }),
      el("span", { class: "mo-p", text: txt(m.product) }),
      el("span", { class: "mo-q", text: txt(m.product_qty) + (m.auth_first ? " · " + txt(m.auth_first) : "") })));
  box.replaceChildren(el("h3", { text: t(field.label) }), ...items);
}

function focusNext() {
  if (!chosen || confirming) return;
  const operator = document.getElementById("operator");
  if (!operator.value.trim()) return operator.focus();
  const def = ACTIONS[chosen];
  const empty = def.fields.find((f) => !(values[f.key] || {}).text && !f.optional) || def.fields[def.fields.length - 1];
  const input = document.getElementById("f-" + empty.key);
  if (input) input.focus();
  redrawList();
  redrawHint();
}

// ---- acting ----

function choose(key) {
  if (chosen !== key) {
    chosen = key;
    values = {};
    confirming = false;
    // The last reply was read; this is a new task.
    if (!attempt) message = null;
    // A running MO is usually the only one: picked for the operator.
    listFor = ACTIONS[key].fields.find((f) => f.list).key;
  }
  draw();
  refreshLists();
}

function pick(key, mo) {
  values[key] = { text: mo.name, id: mo.id };
  const input = document.getElementById("f-" + key);
  if (input) input.value = mo.name;
  // On to the next MO field's list, or the codes.
  const def = ACTIONS[chosen];
  const nextList = def.fields.find((f) => f.list && f.key !== key && !(values[f.key] || {}).text);
  if (nextList) listFor = nextList.key;
  focusNext();
}

function command() {
  const def = ACTIONS[chosen];
  const operator = document.getElementById("operator").value.trim();
  const cmd = { operator };
  for (const f of def.fields) {
    const v = values[f.key] || {};
    if (!v.text) continue;
    cmd[f.key] = f.list ? (v.id != null ? v.id : v.text) : v.text;
  }
  if (def.withLine && info.line) cmd.line = info.line;
  return cmd;
}

async function submit(confirmed) {
  const def = ACTIONS[chosen];
  if (!def) return;
  const operator = document.getElementById("operator");
  if (!operator.value.trim()) {
    message = { kind: "bad", text: () => t("operator_needed") };
    redrawMessage();
    operator.focus();
    return;
  }
  const missing = def.fields.find((f) => !f.optional && !(values[f.key] || {}).text);
  if (missing) {
    message = { kind: "bad", text: () => t("err_missing_field") + " (" + t(missing.label) + ")" };
    redrawMessage();
    document.getElementById("f-" + missing.key).focus();
    return;
  }
  if (def.confirm && !confirmed) {
    confirming = true;
    draw();
    return;
  }
  confirming = false;
  const cmd = command();
  const key = def.action + " " + JSON.stringify(cmd);
  // The same command again (a double tap, "Send again") is the same attempt: same request_id.
  if (!attempt || attempt.key !== key) {
    // When the operator made it, by this tablet's clock: the gateway counts its age from it.
    attempt = { request_id: newId(), action: def.action, command: cmd, key, tries: 0, created: Date.now() };
  }
  draw();
  send(attempt);
}

// The attempt is over (answered, or refused for good): a reload does not send it again.
function forget() {
  attempt = null;
  try { sessionStorage.removeItem(PENDING_KEY); } catch (_) { /* storage off */ }
}

async function send(a) {
  if (a.inFlight) return;
  clearTimeout(retryTimer);
  a.inFlight = true;
  a.tries += 1;
  message = { kind: "pending", text: () => a.tries === 1 ? t("sending") : t("pending", { n: a.tries }), detail: a.request_id };
  redrawMessage();
  try { sessionStorage.setItem(PENDING_KEY, JSON.stringify(a)); } catch (_) { /* storage off */ }
  const age = Math.max(0, Date.now() - (a.created || Date.now()));
  const res = await post("command", { action: a.action, command: { ...a.command, request_id: a.request_id }, age_ms: age });
  a.inFlight = false;
  if (attempt !== a) return;
  const reply = res.body;
  if (res.status === 401) {
    info.signed_in = false;
    message = { kind: "bad", text: () => t("err_signed_out") };
    draw();
    return;
  }
  if (res.status === 200 && reply.request_id === a.request_id) {
    // `internal`: nothing was stored; the same attempt may be sent again.
    const final = reply.ok || !(reply.error && reply.error.code === "internal");
    if (final) forget();
    if (reply.ok) {
      const def = Object.values(ACTIONS).find((d) => d.action === a.action);
      message = { kind: "ok", text: () => okSentence(def, reply.result || {}), detail: a.request_id };
      if (def && ACTIONS[chosen] === def) values = {};
      draw();
      refreshLists();
    } else {
      message = { kind: "bad", text: () => sentence(reply), detail: a.request_id, retry: !final };
      redrawMessage();
    }
    return;
  }
  // No reply yet (202), the gateway busy or unreachable: the same attempt again, a while later.
  const transient = res.status === 0 || res.status === 202 || res.status === 503 || res.status === 504;
  if (transient && a.tries < MAX_TRIES) {
    message = { kind: "pending", text: () => t("pending", { n: a.tries }), detail: a.request_id };
    redrawMessage();
    retryTimer = setTimeout(() => send(a), RETRY_MS);
    return;
  }
  message = transient
    ? { kind: "bad", text: () => t("pending_stop"), detail: a.request_id, retry: true }
    : { kind: "bad", text: () => errorText(res), detail: a.request_id };
  if (!transient) forget();
  redrawMessage();
}

function errorText(res) {
  if (res.status === 0) return t("err_network");
  const code = res.body && res.body.error ? res.body.error.code : null;
  return code && WORDS.en["err_" + code] ? t("err_" + code) : t("err_other", { message: res.status });
}

async function query(name) {
  const cmd = { request_id: newId() };
  if (info.line) cmd.line = info.line;
  const res = await post("command", { action: name, command: cmd });
  if (res.status === 200 && res.body.ok && res.body.result && Array.isArray(res.body.result.mos)) {
    lists[name] = res.body.result.mos;
  } else if (res.status === 401) {
    info.signed_in = false;
    draw();
  }
}

let refreshing = null;
function refreshLists() {
  if (!info || !info.signed_in || !chosen) return;
  clearTimeout(refreshing);
  refreshing = setTimeout(async () => {
    const wanted = new Set(ACTIONS[chosen].fields.filter((f) => f.list).map((f) => f.list));
    await Promise.all([...wanted].map(query));
    // A single running MO is the one to end or change over from.
    const def = ACTIONS[chosen];
    for (const f of def.fields) {
      const mos = lists[f.list];
      if (f.list === "running-mo" && mos && mos.length === 1 && !(values[f.key] || {}).text) {
        values[f.key] = { text: mos[0].name, id: mos[0].id };
        const input = document.getElementById("f-" + f.key);
        if (input) input.value = mos[0].name;
        const nextList = def.fields.find((g) => g.list && !(values[g.key] || {}).text);
        if (nextList) listFor = nextList.key;
        // The focus moves on only from the field just filled (or from nowhere): a scanner
        // typing into another field keeps it.
        const at = document.activeElement;
        if (!at || at === document.body || at === input) focusNext();
      }
    }
    redrawList();
    redrawHint();
  }, 200);
}

async function loadSession() {
  let res;
  try {
    res = await fetch(base + "/session", { credentials: "same-origin", cache: "no-store" });
    info = await res.json();
  } catch (_) {
    message = { kind: "bad", text: () => t("err_network") };
    setTimeout(loadSession, 3000);
    draw();
    return;
  }
  draw();
  if (info.signed_in && !feed) {
    feed = live(base + "/events",
      (s) => {
        const changed = !state || JSON.stringify(s.line) !== JSON.stringify(state.line);
        state = s;
        chips(state, offline(state, pageUp, pageDownSince, seen));
        showBanner(offline(state, pageUp, pageDownSince, seen));
        if (changed) refreshLists();
      },
      (up, since) => {
        pageUp = up;
        pageDownSince = since;
        if (!up) {
          // Signed out meanwhile (a new password on the broker)? The session says.
          fetch(base + "/session", { cache: "no-store" }).then((r) => r.json()).then((i) => {
            if (info && info.signed_in && !i.signed_in) { info = i; draw(); }
          }).catch(() => {});
        }
        const off = offline(state, pageUp, pageDownSince, seen);
        showBanner(off);
        chips(state, off);
      });
  }
  if (info.signed_in) {
    // A command sent before a reload and never answered: the same attempt again.
    let pending = null;
    try { pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null"); } catch (_) { /* none */ }
    if (pending && pending.request_id && !attempt) {
      attempt = { ...pending, inFlight: false };
      send(attempt);
    }
    refreshLists();
  }
}

// A scan with no field focused (the panel just opened, a button tapped): an action's barcode.
let scanned = "";
document.addEventListener("keydown", (e) => {
  if (confirming || e.target instanceof HTMLInputElement) return;
  if (e.key === "Enter") {
    const act = scannedAction(scanned);
    scanned = "";
    if (act) { e.preventDefault(); choose(act); }
  } else if (e.key.length === 1) {
    scanned = (scanned + e.key).slice(-32);
  }
});

document.addEventListener("keydown", (e) => {
  // A focused button answers Enter by itself.
  if (!confirming || e.target instanceof HTMLButtonElement) return;
  if (e.key === "Enter") { e.preventDefault(); submit(true); }
  if (e.key === "Escape") { e.preventDefault(); confirming = false; draw(); }
});

const operatorInput = document.getElementById("operator");
try { operatorInput.value = localStorage.getItem(OPERATOR_KEY) || ""; } catch (_) { /* storage off */ }
operatorInput.addEventListener("input", () => {
  if (scannedAction(operatorInput.value)) return;
  try { localStorage.setItem(OPERATOR_KEY, operatorInput.value.trim()); } catch (_) { /* storage off */ }
});
let operatorKept = operatorInput.value;
operatorInput.addEventListener("change", () => {
  if (!scannedAction(operatorInput.value)) operatorKept = operatorInput.value.trim();
});
operatorInput.addEventListener("keydown", (e) => {
  if (e.key !== "Enter") return;
  e.preventDefault();
  e.stopPropagation();
  const act = scannedAction(operatorInput.value);
  if (act) {
    // An action's barcode, not a name: the operator stays who they were.
    operatorInput.value = operatorKept;
    try { localStorage.setItem(OPERATOR_KEY, operatorKept); } catch (_) { /* storage off */ }
    choose(act);
    return;
  }
  operatorKept = operatorInput.value.trim();
  focusNext();
});

languageButton(draw);
draw();
loadSession();
