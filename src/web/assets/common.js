// What every screen of linegate shares: the words in both languages, elements built as text
// (never as markup: product names and notes come from Odoo), the live link to the gateway, the
// gateway's state and the "offline since" banner.
"use strict";

const WORDS = {
  id: {
    lang_other: "EN",
    lines: "Lini",
    stations: "Stasiun",
    permits: "Izin yang akan habis",
    line: "Lini",
    station: "Stasiun",
    online: "ONLINE",
    offline: "OFFLINE",
    connecting: "Menghubungkan…",
    odoo_up: "Odoo terhubung",
    odoo_down: "Odoo terputus sejak {time}",
    odoo_refused: "Odoo menolak: {error}",
    odoo_unknown: "Odoo belum diketahui",
    waiting_odoo: "{n} hasil menunggu Odoo",
    parked: "{n} perlu supervisor",
    offline_since: "OFFLINE sejak {time}",
    reason_link: "layar ini tidak terhubung ke gateway",
    reason_broker: "gateway tidak terhubung ke broker",
    reason_agent: "agen linegate tidak berjalan",
    showing_last: "Menampilkan data terakhir.",
    running: "Berjalan",
    nothing_running: "Tidak ada MO yang berjalan",
    ready_next: "Siap berikutnya",
    last_ended: "Selesai terakhir",
    ended_at: "selesai {time}",
    none_ready: "Tidak ada MO yang siap",
    more: "+{n} lagi",
    product: "Produk",
    operator: "Operator",
    leader: "Leader",
    codes: "Kode stiker",
    roll: "Roll",
    produced: "Diproduksi",
    loss: "Loss",
    since: "Mulai",
    qty: "Jumlah",
    minutes: "{m} mnt",
    hours: "{h} j {m} mnt",
    no_lines: "Belum ada lini dengan MO.",
    no_stations: "Belum ada stasiun di [web] stations.",
    display: "Layar lini",
    panel: "Panel",
    days_left: "{n} hari lagi",
    expired_ago: "habis {n} hari lalu",
    expires_today: "habis hari ini",
    applicant: "Pemohon",
    expiry: "Berlaku sampai",
    // The panel.
    sign_in_title: "Masuk sebagai stasiun {station}",
    sign_in_help: "Sekali per perangkat: masukkan kata sandi broker stasiun ini (dari supervisor).",
    password: "Kata sandi stasiun",
    sign_in: "Masuk",
    sign_out: "Keluar",
    operator_label: "Operator",
    operator_needed: "Isi nama atau ID operator dulu.",
    register: "Daftarkan MO",
    start: "Start Production",
    changeover: "Changeover",
    end: "End Production",
    pick_mo: "Pilih MO atau pindai nomornya",
    mo: "MO",
    current_mo: "MO sekarang (berjalan)",
    next_mo: "MO berikutnya (siap)",
    first_code: "Kode stiker pertama",
    new_code: "Kode stiker pertama MO berikutnya",
    next_code: "Kode stiker berikutnya (belum terpakai)",
    ends_at: "Kode terakhir terpakai: {code} · diproduksi {n}",
    roll_number: "Nomor roll",
    roll_optional: "Nomor roll baru (boleh kosong)",
    leader_id: "ID leader",
    send: "Kirim",
    confirm: "Ya, lanjutkan (Enter)",
    cancel: "Batal (Esc)",
    confirm_end: "Akhiri produksi {mo}?",
    confirm_changeover: "Changeover dari {current} ke {next}?",
    sending: "Mengirim…",
    pending: "Belum dikonfirmasi oleh gateway — mengirim ulang (percobaan {n})…",
    pending_stop: "Tidak ada jawaban dari gateway. Periksa koneksi, lalu tekan Kirim lagi: aman, tidak akan tercatat dua kali.",
    retry: "Kirim lagi",
    loading: "Memuat…",
    list_empty: "Tidak ada MO di daftar ini.",
    ok_register: "MO {name} didaftarkan: kode pertama {first}, roll {roll}.",
    ok_start: "Produksi {name} dimulai (leader {leader}).",
    ok_changeover: "Changeover selesai: {current} berakhir di {last}, {next} mulai dari {first}.",
    ok_end: "Produksi {name} selesai: kode terakhir {last}, diproduksi {produced}.",
    ok_other: "Selesai.",
    // Refusals: every code of docs/mqtt.md, and the server's own.
    err_unknown_mo: "MO tidak ditemukan. Periksa nomor MO.",
    err_gone: "MO ini sudah tidak aktif di Odoo (selesai, batal, atau dihapus).",
    err_already_registered: "MO ini sudah didaftarkan.",
    err_not_ready: "MO ini belum didaftarkan. Daftarkan dulu.",
    err_already_started: "MO ini sudah dimulai.",
    err_not_running: "MO ini tidak sedang berjalan.",
    err_missing_field: "Ada isian yang belum diisi.",
    err_invalid_field: "Ada isian yang tidak valid (misalnya kode stiker lebih kecil dari kode pertama).",
    err_stale: "Perintah terlalu lama tertunda dan tidak dijalankan. Kirim sebagai perintah baru.",
    err_invalid_json: "Gateway tidak dapat membaca perintah ini.",
    err_too_large: "Perintah terlalu besar untuk gateway.",
    err_unknown_action: "Gateway tidak mengenal perintah ini.",
    err_internal: "Gateway tidak dapat menyimpan perintah (penyimpanan penuh atau rusak). Perintah TIDAK dijalankan. Hubungi supervisor.",
    err_bad_response_topic: "Panel ini tidak diizinkan untuk perintah itu. Hubungi supervisor.",
    err_reserved_station: "Nama stasiun ini dicadangkan. Hubungi supervisor.",
    err_signed_out: "Panel ini belum masuk sebagai stasiunnya. Minta supervisor memasukkan kata sandi stasiun.",
    err_refused_by_broker: "Broker menolak perintah dari stasiun ini. Hubungi supervisor (ACL broker).",
    err_busy: "Terlalu banyak perintah sekaligus. Tunggu sebentar lalu kirim lagi.",
    err_broker_unreachable: "Broker tidak dapat dihubungi. Coba lagi sebentar lagi.",
    err_wrong_password: "Kata sandi salah: broker tidak menerimanya.",
    err_too_many_attempts: "Terlalu banyak percobaan. Tunggu satu menit.",
    err_network: "Tidak terhubung ke gateway.",
    err_other: "Ditolak: {message}",
  },
  en: {
    lang_other: "ID",
    lines: "Lines",
    stations: "Stations",
    permits: "Permits expiring",
    line: "Line",
    station: "Station",
    online: "ONLINE",
    offline: "OFFLINE",
    connecting: "Connecting…",
    odoo_up: "Odoo connected",
    odoo_down: "Odoo down since {time}",
    odoo_refused: "Odoo refuses: {error}",
    odoo_unknown: "Odoo not known yet",
    waiting_odoo: "{n} results waiting for Odoo",
    parked: "{n} need a supervisor",
    offline_since: "OFFLINE since {time}",
    reason_link: "this screen cannot reach the gateway",
    reason_broker: "the gateway cannot reach its broker",
    reason_agent: "the linegate agent is not running",
    showing_last: "Showing the last known state.",
    running: "Running",
    nothing_running: "Nothing running",
    ready_next: "Ready next",
    last_ended: "Last ended",
    ended_at: "ended {time}",
    none_ready: "Nothing ready",
    more: "+{n} more",
    product: "Product",
    operator: "Operator",
    leader: "Leader",
    codes: "Sticker codes",
    roll: "Roll",
    produced: "Produced",
    loss: "Loss",
    since: "Since",
    qty: "Quantity",
    minutes: "{m} min",
    hours: "{h} h {m} min",
    no_lines: "No line has MOs yet.",
    no_stations: "No stations in [web] stations yet.",
    display: "Line display",
    panel: "Panel",
    days_left: "{n} days left",
    expired_ago: "expired {n} days ago",
    expires_today: "expires today",
    applicant: "Applicant",
    expiry: "Valid until",
    sign_in_title: "Sign in as station {station}",
    sign_in_help: "Once per device: enter this station's broker password (ask a supervisor).",
    password: "Station password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    operator_label: "Operator",
    operator_needed: "Enter the operator's name or ID first.",
    register: "Register MO",
    start: "Start Production",
    changeover: "Changeover",
    end: "End Production",
    pick_mo: "Pick an MO or scan its number",
    mo: "MO",
    current_mo: "Current MO (running)",
    next_mo: "Next MO (ready)",
    first_code: "First sticker code",
    new_code: "First sticker code of the next MO",
    next_code: "Next sticker code (not used)",
    ends_at: "Last code used: {code} · produced {n}",
    roll_number: "Roll number",
    roll_optional: "New roll number (may be empty)",
    leader_id: "Leader ID",
    send: "Send",
    confirm: "Yes, go ahead (Enter)",
    cancel: "Cancel (Esc)",
    confirm_end: "End production of {mo}?",
    confirm_changeover: "Change over from {current} to {next}?",
    sending: "Sending…",
    pending: "Not confirmed by the gateway yet — sending again (attempt {n})…",
    pending_stop: "No answer from the gateway. Check the connection, then press Send again: it is safe, nothing is recorded twice.",
    retry: "Send again",
    loading: "Loading…",
    list_empty: "No MO in this list.",
    ok_register: "MO {name} registered: first code {first}, roll {roll}.",
    ok_start: "Production of {name} started (leader {leader}).",
    ok_changeover: "Changeover done: {current} ended at {last}, {next} starts at {first}.",
    ok_end: "Production of {name} ended: last code {last}, produced {produced}.",
    ok_other: "Done.",
    err_unknown_mo: "No such MO. Check the MO number.",
    err_gone: "This MO is no longer open in Odoo (done, cancelled or deleted).",
    err_already_registered: "This MO is already registered.",
    err_not_ready: "This MO is not registered yet. Register it first.",
    err_already_started: "This MO has already started.",
    err_not_running: "This MO is not running.",
    err_missing_field: "A required field is empty.",
    err_invalid_field: "A field is not valid (a sticker code below the first code, say).",
    err_stale: "The command waited too long and was not applied. Send it as a new command.",
    err_invalid_json: "The gateway could not read this command.",
    err_too_large: "The command is too large for the gateway.",
    err_unknown_action: "The gateway does not know this command.",
    err_internal: "The gateway could not store the command (its storage is full or failing). It was NOT applied. Call a supervisor.",
    err_bad_response_topic: "This panel may not do that. Call a supervisor.",
    err_reserved_station: "This station's name is reserved. Call a supervisor.",
    err_signed_out: "This panel is not signed in as its station. Ask a supervisor for the station's password.",
    err_refused_by_broker: "The broker refused this station's command. Call a supervisor (the broker's ACL).",
    err_busy: "Too many commands at once. Wait a moment and send again.",
    err_broker_unreachable: "The broker cannot be reached. Try again in a moment.",
    err_wrong_password: "Wrong password: the broker did not accept it.",
    err_too_many_attempts: "Too many attempts. Wait a minute.",
    err_network: "No connection to the gateway.",
    err_other: "Refused: {message}",
  },
};

const LANG_KEY = "linegate.lang";

function lang() {
  let chosen = null;
  try { chosen = localStorage.getItem(LANG_KEY); } catch (_) { /* storage off */ }
  const l = chosen || document.documentElement.dataset.lang;
  return WORDS[l] ? l : "id";
}

// The text for `key` in the page's language, with {name} filled from `vars` (as text).
function t(key, vars) {
  let s = WORDS[lang()][key] ?? WORDS.en[key] ?? key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(v == null || v === "" ? "—" : String(v));
  }
  return s;
}

// An element; children and "text" become text nodes, never markup.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Anything from the gateway as a short text: "—" when missing.
function txt(v) {
  if (v == null || v === false || v === "") return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toLocaleString(lang() === "id" ? "id-ID" : "en-GB", { maximumFractionDigits: 2 });
  return String(v).slice(0, 200);
}

// The gateway's clock and time zone, as the server says them (a kiosk's own clock and zone
// may be anything).
const clock = {
  offset: 0,
  zone: null, // seconds east of UTC, the gateway's
  sync(serverNow, zone) {
    if (typeof serverNow === "number") this.offset = serverNow - Date.now();
    if (typeof zone === "number") this.zone = zone;
  },
  now() {
    return Date.now() + this.offset;
  },
};

// A time as HH:MM on the gateway's wall clock (the browser's, until the gateway has said).
function hhmm(ms) {
  if (ms == null || Number.isNaN(ms)) return "—";
  const local = clock.zone == null;
  const d = new Date(local ? ms : ms + clock.zone * 1000);
  const [h, m] = local ? [d.getHours(), d.getMinutes()] : [d.getUTCHours(), d.getUTCMinutes()];
  return String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0");
}

// An RFC 3339 time from the agent as HH:MM, and how long ago.
function timeOf(text) {
  const ms = Date.parse(text || "");
  return Number.isNaN(ms) ? null : ms;
}

function duration(ms) {
  const m = Math.max(0, Math.floor(ms / 60000));
  return m < 60 ? t("minutes", { m }) : t("hours", { h: Math.floor(m / 60), m: m % 60 });
}

// A live feed with a watchdog of its own: an EventSource reconnects after the server closes
// the stream, but not after a Wi-Fi drop that leaves the connection half open. The server
// ticks every 5 s; nothing for STALE and the page calls the link down and opens a new stream.
const STALE = 15000;
const HIDDEN_GRACE = 30000;

function live(url, onState, onLink) {
  let source = null;
  // The build the page came with: a new linegate on the gateway, and the page loads anew.
  let build = null;
  let last = Date.now();
  let up = false;
  let downSince = Date.now();
  const setUp = (value) => {
    if (value === up) return;
    up = value;
    if (!value) downSince = clock.now();
    onLink(up, downSince);
  };
  const heard = () => {
    last = Date.now();
    setUp(true);
  };
  const open = () => {
    if (source) source.close();
    last = Date.now();
    source = new EventSource(url);
    source.addEventListener("state", (e) => {
      let state;
      try { state = JSON.parse(e.data); } catch (_) { return; }
      clock.sync(state.now, state.utc_offset);
      heard();
      if (build && state.build && state.build !== build) {
        location.reload();
        return;
      }
      build = build || state.build;
      onState(state);
    });
    source.addEventListener("tick", (e) => {
      try { clock.sync(JSON.parse(e.data).now); } catch (_) { /* a tick is a tick */ }
      heard();
    });
    source.onerror = () => {
      setUp(false);
      // Refused (a 401, say): the browser gives up on it; try again after a while.
      if (source.readyState === EventSource.CLOSED) setTimeout(open, 3000);
    };
  };
  // A browser keeps six connections to one server, and each open stream holds one: a page
  // in a tab nobody looks at lets go of its stream after a while, and takes it again when
  // looked at, so a supervisor may keep every line open in tabs.
  let paused = false;
  let hiding = null;
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      hiding = setTimeout(() => {
        paused = true;
        if (source) source.close();
      }, HIDDEN_GRACE);
    } else {
      clearTimeout(hiding);
      if (paused) {
        paused = false;
        open();
      }
    }
  });
  setInterval(() => {
    if (!paused && Date.now() - last > STALE) {
      setUp(false);
      open();
    }
  }, 2000);
  open();
  return { reopen: open };
}

// Whether the screen shows the gateway as it is now; if not, why and since when.
// `seen` remembers when the page first saw the agent offline.
function offline(state, pageUp, pageDownSince, seen) {
  if (!pageUp) return { reason: "link", since: pageDownSince };
  if (!state) return null;
  if (!state.link || !state.link.up) return { reason: "broker", since: state.link ? state.link.since : clock.now() };
  // No status at all is an agent not heard from (never started, or gone with the broker's
  // memory): as much offline as one that said so.
  if (!state.status || state.status.state !== "online") {
    if (seen.agentOff == null) seen.agentOff = clock.now();
    return { reason: "agent", since: seen.agentOff };
  }
  seen.agentOff = null;
  return null;
}

function showBanner(off) {
  const banner = document.getElementById("banner");
  document.body.classList.toggle("is-offline", !!off);
  if (!off) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  banner.hidden = false;
  banner.replaceChildren(
    el("strong", { text: t("offline_since", { time: hhmm(off.since) }) }),
    el("span", { text: " — " + t("reason_" + off.reason) + ". " + t("showing_last") }),
  );
}

// The gateway's state as chips: online, Odoo, results waiting.
function chips(state, off) {
  const box = document.getElementById("chips");
  const out = [];
  if (!state) {
    out.push(el("span", { class: "chip", text: t("connecting") }));
  } else {
    out.push(el("span", { class: "chip " + (off ? "bad" : "good"), text: "● " + t(off ? "offline" : "online") }));
    // Offline, what the gateway last said of Odoo is no longer news.
    if (off) {
      box.replaceChildren(...out);
      return;
    }
    const status = state.status || {};
    const odoo = (status.uplink || {}).odoo;
    if (odoo) {
      if (odoo.state === "up") out.push(el("span", { class: "chip good", text: t("odoo_up") }));
      else if (odoo.state === "down") out.push(el("span", { class: "chip bad", text: t("odoo_down", { time: hhmm(timeOf(odoo.since)) }) }));
      else if (odoo.state === "refused") out.push(el("span", { class: "chip bad", text: t("odoo_refused", { error: txt(odoo.error).slice(0, 60) }) }));
      else out.push(el("span", { class: "chip", text: t("odoo_unknown") }));
    }
    const outbox = ((status.outbox || {}).odoo) || {};
    if (outbox.pending > 0) out.push(el("span", { class: "chip warn", text: t("waiting_odoo", { n: outbox.pending }) }));
    if (outbox.parked > 0) out.push(el("span", { class: "chip bad", text: t("parked", { n: outbox.parked }) }));
  }
  box.replaceChildren(...out);
}

// The language button: shows the other language, switches to it, and redraws the page.
function languageButton(redraw) {
  const button = document.getElementById("lang");
  const label = () => {
    button.textContent = t("lang_other");
    document.documentElement.lang = lang();
  };
  button.addEventListener("click", () => {
    try { localStorage.setItem(LANG_KEY, lang() === "id" ? "en" : "id"); } catch (_) { /* storage off */ }
    label();
    redraw();
  });
  label();
}

// The last segment of the page's address, decoded.
function pathName(index) {
  const parts = location.pathname.split("/");
  try { return decodeURIComponent(parts[index] || ""); } catch (_) { return ""; }
}
