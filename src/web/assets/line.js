// The line display (/line/<line>): what runs on the line and what is ready next, for a TV or a
// kiosk across the floor. No interaction: it follows the gateway by itself, and keeps the last
// state under an "offline since" banner while the gateway or the link is away.
"use strict";

const lineName = pathName(2);
// Running MOs shown in full, ready MOs listed; the rest are counted.
const MAX_RUNNING = 3;
const MAX_READY = 6;

let state = null;
let pageUp = false;
let pageDownSince = Date.now();
const seen = {};

function field(label, value, cls, sub) {
  return el("div", { class: "field" + (cls ? " " + cls : "") },
    el("span", { class: "label", text: label }),
    el("span", { class: "value", text: value }),
    sub ? el("span", { class: "sub", text: sub }) : null);
}

function codes(r) {
  return r.auth_last ? txt(r.auth_first) + " – " + txt(r.auth_last) : txt(r.auth_first) + " →";
}

function quantity(r) {
  return txt(r.product_qty) + (r.uom ? " " + txt(r.uom) : "");
}

function runningCard(r) {
  const started = timeOf(r.date_start);
  const operator = r.last_write ? r.last_write.operator : null;
  return el("article", { class: "mo-card", "data-mo": r.id },
    el("div", { class: "mo-head" },
      el("div", { class: "mo-name", text: txt(r.name) }),
      el("div", { class: "mo-qty", text: quantity(r) })),
    el("div", { class: "mo-product", text: txt(r.product) }),
    el("div", { class: "fields" },
      field(t("operator"), txt(operator), "operator"),
      field(t("leader"), txt(r.leader_id), "leader"),
      field(t("roll"), txt(r.roll_number), "roll"),
      field(t("since"), started == null ? "—" : hhmm(started), "since", started == null ? null : duration(clock.now() - started)),
      field(t("codes"), codes(r), "codes"),
      field(t("produced"), txt(r.produced), "produced"),
      field(t("loss"), txt(r.loss), "loss"),
    ),
  );
}

function draw() {
  document.getElementById("line-name").textContent = t("line") + " " + lineName;
  document.title = t("line") + " " + lineName + " · linegate";
  document.getElementById("ready-title").textContent = t("ready_next");
  document.getElementById("clock").textContent = hhmm(clock.now());
  const off = offline(state, pageUp, pageDownSince, seen);
  showBanner(off);
  chips(state, off);
  const view = (state && state.line) || { running: [], ready: [] };
  const running = Array.isArray(view.running) ? view.running : [];
  const ready = Array.isArray(view.ready) ? view.ready : [];
  const box = document.getElementById("running");
  box.dataset.count = String(Math.min(running.length, MAX_RUNNING));
  if (running.length === 0) {
    box.replaceChildren(el("div", { class: "empty", text: state ? t("nothing_running") : t("connecting") }));
  } else {
    const cards = running.slice(0, MAX_RUNNING).map(runningCard);
    if (running.length > MAX_RUNNING) cards.push(el("div", { class: "more", text: t("more", { n: running.length - MAX_RUNNING }) }));
    box.replaceChildren(...cards);
  }
  // What the line made last: produced and loss are known once an MO's last code is.
  const ended = Array.isArray(view.ended) ? view.ended[0] : null;
  const endedBox = document.getElementById("ended");
  endedBox.hidden = !ended;
  endedBox.replaceChildren(...(ended ? [
    el("span", { class: "e-title", text: t("last_ended") }),
    el("span", { class: "e-name", text: txt(ended.name) }),
    el("span", { class: "e-figure", text: t("produced") + " " + txt(ended.produced) }),
    el("span", { class: "e-figure", text: t("loss") + " " + txt(ended.loss) }),
    el("span", { class: "e-when", text: t("ended_at", { time: hhmm(timeOf(ended.date_finished)) }) }),
  ] : []));
  endedBox.dataset.mo = ended ? ended.id : "";
  const list = document.getElementById("ready");
  if (ready.length === 0) {
    list.replaceChildren(el("li", { class: "empty", text: t("none_ready") }));
  } else {
    const items = ready.slice(0, MAX_READY).map((r) =>
      el("li", { "data-mo": r.id },
        el("span", { class: "r-name", text: txt(r.name) }),
        el("span", { class: "r-qty", text: quantity(r) }),
        el("span", { class: "r-product", text: txt(r.product) }),
        el("span", { class: "r-roll", text: r.roll_number ? t("roll") + " " + txt(r.roll_number) : "" }),
      ));
    if (ready.length > MAX_READY) items.push(el("li", { class: "more", text: t("more", { n: ready.length - MAX_READY }) }));
    list.replaceChildren(...items);
  }
}

languageButton(draw);
live("/events/line/" + encodeURIComponent(lineName),
  (s) => { state = s; draw(); },
  (up, since) => { pageUp = up; pageDownSince = since; draw(); });
// The clock and the "since" durations move on their own.
setInterval(draw, 15000);
draw();
