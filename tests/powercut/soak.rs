//! The power-cut soak, beside the `kill -9` one (tests/faults.rs): two panels (MQTT 5 and
//! 3.1.1) take MOs through the four write commands, Odoo goes away and comes back so that the
//! outbox is busy, and the power is cut at random moments and at chosen ones: during the first
//! sync, inside a checkpoint, right after a reply, right after Odoo answered a step. After each
//! cut: the store opens (nothing kept aside), every command answered `ok` is in it, a repeated
//! request_id gets its first reply. At the end every result is in Odoo once, step by step.
//!
//! The default run is short; `SOAK_CUTS=1000 cargo test --release --test powercut -- --nocapture`
//! is the long one, and prints the figures (README, "Power cuts").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linegate_sim::odoo::SimOdoo;
use linegate_sim::powercut::{Cut, Random};
use serde_json::{json, Value};

use crate::common::{sim, wait_until, Display, Mosquitto, Panel};
use crate::gateway::{Gateway, PREFIX};

/// Every reply a panel got, by request_id, in order.
type Replies = Arc<Mutex<HashMap<String, Vec<Value>>>>;

/// An MQTT 3.1.1 panel (what small panel firmware speaks): replies on the station's topic.
struct Panel311 {
    client: rumqttc::AsyncClient,
    station: String,
    replies: Replies,
}

impl Panel311 {
    async fn start(port: u16, station: &str) -> Panel311 {
        use rumqttc::{Event, Packet};
        let mut options = rumqttc::MqttOptions::new(format!("panel311-{station}"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
        let replies: Replies = Arc::default();
        let (sink, sub) = (replies.clone(), client.clone());
        let filter = format!("{PREFIX}/reply/{station}");
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub.try_subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice::<Value>(&p.payload) {
                            let id = v["request_id"].as_str().unwrap_or_default().to_string();
                            sink.lock().unwrap().entry(id).or_default().push(v);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("the 3.1.1 panel subscribed")
            .unwrap();
        Panel311 {
            client,
            station: station.to_string(),
            replies,
        }
    }
}

/// A panel of either protocol, as the soak drives it.
enum Station {
    V5(Panel),
    V311(Panel311),
}

impl Station {
    async fn publish(&self, action: &str, body: &Value) {
        match self {
            Station::V5(panel) => panel.publish(action, body.to_string()).await,
            Station::V311(panel) => panel
                .client
                .publish(
                    format!("{PREFIX}/cmd/{}/{action}", panel.station),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    body.to_string(),
                )
                .await
                .unwrap(),
        }
    }

    fn replies(&self) -> HashMap<String, Vec<Value>> {
        match self {
            Station::V5(panel) => {
                let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
                for r in panel.replies() {
                    let id = r["request_id"].as_str().unwrap_or_default().to_string();
                    by_id.entry(id).or_default().push(r);
                }
                by_id
            }
            Station::V311(panel) => panel.replies.lock().unwrap().clone(),
        }
    }

    fn count(&self, id: &str) -> usize {
        self.replies().get(id).map_or(0, Vec::len)
    }
}

/// The commands that take a pair of MOs through the four write commands: register both,
/// start the first, change over to the second, end it. `n` numbers the request_ids.
fn pair(station: &str, line: &str, [a, b]: [i64; 2], n: usize) -> Vec<(String, &'static str, Value)> {
    let commands = [
        (
            "register-mo",
            json!({"mo": a, "auth_first": "000100", "roll_number": format!("R-{a}"), "line": line}),
        ),
        (
            "register-mo",
            json!({"mo": b, "auth_first": "000100", "roll_number": format!("R-{b}"), "line": line}),
        ),
        ("start-production", json!({"mo": a, "leader_id": "0042", "line": line})),
        (
            "changeover",
            json!({"current_mo": a, "next_mo": b, "new_auth": "000130"}),
        ),
        ("end-production", json!({"mo": b, "authenticity": "000160"})),
    ];
    commands
        .into_iter()
        .enumerate()
        .map(|(k, (action, mut body))| {
            let id = format!("{station}-{}", n + k);
            body["request_id"] = json!(id);
            body["operator"] = json!("ana");
            (id, action, body)
        })
        .collect()
}

/// A panel at work: takes its MOs through [`pair`]'s commands, two at a time, until `stop`
/// (or its MOs run out). Each command is sent until it gets a final reply (`internal` is not
/// one: nothing was stored, docs/mqtt.md), again with the same request_id when no reply comes
/// (the agent was cut before it answered). Returns the commands sent and their final replies.
async fn drive(
    station: Arc<Station>,
    (name, line): (&'static str, &'static str),
    mos: Vec<i64>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<(String, Value)> {
    let mut pace = Random::new(seed);
    let mut finals = Vec::new();
    for two in mos.chunks_exact(2) {
        for (id, action, body) in pair(name, line, [two[0], two[1]], finals.len()) {
            if stop.load(Ordering::Relaxed) {
                return finals;
            }
            // An operator's pace between two commands, not a wait for a condition
            tokio::time::sleep(pace.millis(150, 400)).await;
            let give_up = Instant::now() + Duration::from_secs(120);
            let reply = loop {
                assert!(Instant::now() < give_up, "{id}: no final reply in 120 s");
                let before = station.count(&id);
                station.publish(action, &body).await;
                let answered = Instant::now() + Duration::from_secs(3);
                while station.count(&id) == before && Instant::now() < answered {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let last = station.replies().get(&id).and_then(|r| r.last().cloned());
                match last {
                    Some(r) if r["error"]["code"] != "internal" && station.count(&id) > before => break r,
                    // No reply (the agent is down or was cut), or `internal`: again, same request_id.
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            finals.push((id, reply));
        }
    }
    finals
}

/// Where a cut falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Moment {
    FirstSync,
    Random,
    AfterReply,
    AfterOdooStep,
    InCheckpoint,
}

/// Calls of Odoo that carry a step out (and were answered).
fn step_calls(sim: &SimOdoo) -> usize {
    sim.requests()
        .iter()
        .filter(|r| {
            r.status == 200
                && matches!(
                    r.method.as_deref(),
                    Some("message_post" | "write" | "action_start" | "button_mark_done" | "create")
                )
        })
        .count()
}

/// What the soak counted.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    cuts: BTreeMap<String, usize>,
    exact: usize,
    torn: usize,
    commands: usize,
    acknowledged: usize,
    acknowledged_lost: usize,
    doubled: usize,
    internal_replies: usize,
    kept_aside_exact: usize,
    kept_aside_torn: usize,
    /// Per step: (expected, lost, doubled).
    steps: BTreeMap<&'static str, (usize, usize, usize)>,
    fsyncs_per_command: f64,
    fsyncs_per_result: f64,
    wal_fsyncs_per_command: f64,
    wal_fsyncs_per_result: f64,
    /// Fsyncs while the sync asked Odoo this many times, nothing changed and nothing to deliver.
    idle_syncs: usize,
    idle_fsyncs: u64,
}

/// Waits until `changed` says something happened, at most `limit`; polls every millisecond, so
/// that the cut follows it at once.
async fn soon_after(limit: Duration, mut changed: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !changed() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs the soak: `cuts` power cuts (every other one torn) while two panels stream commands.
pub(crate) async fn soak(cuts: usize, seed: u64) -> Figures {
    let mut random = Random::new(seed);
    let mut figures = Figures::default();
    // Given a broker, an Odoo with the MOs the panels work on, each with a work order (so that
    // time tracking applies), a custom field for the roll, and the agent on a power-cut disk
    // with every step of [odoo.push] on
    let broker = Mosquitto::start().await;
    // Enough MOs for the panels' pace: about 20 commands a cut (the wait for a checkpoint is
    // the longest), five commands a pair
    let worked = 2 * (1000.max(8 * cuts) as i64 / 2);
    let spare = 10;
    let sim = Arc::new(sim(19, worked as usize + spare).await);
    sim.add_custom_field("x_roll");
    for mo in 1..=worked + spare as i64 {
        sim.add_workorder(mo, 1).unwrap();
    }
    let push = "progress = true\ntime_tracking = true\n[odoo.push.fields]\nroll_number = \"x_roll\"";
    let mut gw = Gateway::new(&sim, broker.port(), push);
    let display = Display::start(broker.port(), PREFIX).await;
    let status = format!("{PREFIX}/status");
    let instance = || {
        display
            .json(&status)
            .filter(|s| s["state"] == "online")
            .map(|s| s["instance"].clone())
    };
    let cut = |gw: &mut Gateway, moment: Moment, figures: &mut Figures, random: &mut Random| {
        let mode = if figures.exact == figures.torn {
            figures.exact += 1;
            Cut::Exact
        } else {
            figures.torn += 1;
            Cut::Torn {
                seed: random.next_u64(),
            }
        };
        *figures.cuts.entry(format!("{moment:?}")).or_default() += 1;
        gw.cut(mode);
        gw.start();
        mode
    };
    // Stores kept aside since the last look, counted against exact cuts when one came since
    // (the goal there is none), else against torn ones.
    let mut seen_aside = 0;
    let mut count_aside = |gw: &Gateway, figures: &mut Figures, exact_since: bool| {
        let now = gw.kept_aside();
        if exact_since {
            figures.kept_aside_exact += now - seen_aside;
        } else {
            figures.kept_aside_torn += now - seen_aside;
        }
        seen_aside = now;
    };

    // When the power is cut during the first sync (twice: the first cut may leave no store)
    gw.start();
    for _ in 0..2.min(cuts) {
        tokio::time::sleep(random.millis(200, 500)).await; // a random moment of the first sync
        cut(&mut gw, Moment::FirstSync, &mut figures, &mut random);
    }
    gw.wait_online("after the first sync's cuts", || instance().is_some())
        .await;
    count_aside(&gw, &mut figures, cuts > 0);
    // (the panels start once the store knows their MOs, as an operator picks one shown)
    let all = worked + spare as i64;
    wait_until("the first sync", Duration::from_secs(120), || {
        gw.count("SELECT count(*) FROM mo") == all
    })
    .await;

    // And two panels stream their commands while Odoo comes and goes and the power is cut at
    // random moments, right after a reply, right after Odoo answered a step, in a checkpoint
    let v5 = Arc::new(Station::V5(Panel::start(broker.port(), PREFIX, "ws-5").await));
    let v311 = Arc::new(Station::V311(Panel311::start(broker.port(), "ws-3").await));
    let stop = Arc::new(AtomicBool::new(false));
    let driving = [
        tokio::spawn(drive(
            v5.clone(),
            ("ws-5", "L1"),
            (1..=worked / 2).collect(),
            random.next_u64(),
            stop.clone(),
        )),
        tokio::spawn(drive(
            v311.clone(),
            ("ws-3", "L2"),
            (worked / 2 + 1..=worked).collect(),
            random.next_u64(),
            stop.clone(),
        )),
    ];
    let flapping = Arc::new(AtomicBool::new(true));
    let odoo = {
        let (flapping, sim, mut random) = (flapping.clone(), sim.clone(), Random::new(random.next_u64()));
        tokio::spawn(async move {
            while flapping.load(Ordering::Relaxed) {
                // Odoo's own rhythm, not a wait for a condition
                tokio::time::sleep(random.millis(300, 1500)).await;
                sim.set_down(true);
                tokio::time::sleep(random.millis(300, 1500)).await;
                sim.set_down(false);
            }
        })
    };
    let replies = || -> usize {
        [&v5, &v311]
            .iter()
            .map(|s| s.replies().values().map(Vec::len).sum::<usize>())
            .sum()
    };
    let moments = [
        Moment::Random,
        Moment::AfterReply,
        Moment::AfterOdooStep,
        Moment::InCheckpoint,
    ];
    for k in 2..cuts {
        let mut moment = moments[(k - 2) % moments.len()];
        match moment {
            Moment::Random | Moment::FirstSync => tokio::time::sleep(random.millis(100, 900)).await,
            // (once the panels are done, a random moment)
            Moment::AfterReply | Moment::AfterOdooStep if driving.iter().all(|d| d.is_finished()) => {
                moment = Moment::Random;
                tokio::time::sleep(random.millis(100, 900)).await;
            }
            Moment::AfterReply => {
                let seen = replies();
                soon_after(Duration::from_secs(10), || replies() != seen).await;
            }
            Moment::AfterOdooStep => {
                let seen = step_calls(&sim);
                soon_after(Duration::from_secs(10), || step_calls(&sim) != seen).await;
            }
            Moment::InCheckpoint => {
                // Just before one of the first pages a checkpoint copies into the database
                gw.disk.cut_at_write("linegate.db", 1 + random.next_u64() % 8);
                soon_after(Duration::from_secs(15), || gw.disk.is_cut()).await;
                if !gw.disk.is_cut() {
                    moment = Moment::Random;
                }
            }
        }
        let before = instance();
        let mode = cut(&mut gw, moment, &mut figures, &mut random);
        // Then the store opens: the agent is back online (and says if it kept one aside)
        gw.wait_online(&format!("cut {k} ({moment:?}, {mode:?})"), || {
            instance().is_some_and(|i| Some(&i) != before.as_ref())
        })
        .await;
        count_aside(&gw, &mut figures, mode == Cut::Exact);
        // And every command answered `ok` so far is in it
        figures.acknowledged_lost += acknowledged_but_lost(&gw, &[(&v5, "ws-5"), (&v311, "ws-3")], k);
        // And a request_id answered before gets its first reply again
        repeat_the_last(&v5, k).await;
    }
    stop.store(true, Ordering::Relaxed);
    flapping.store(false, Ordering::Relaxed);
    odoo.await.unwrap();
    sim.set_down(false);
    let mut finals = Vec::new();
    for d in driving {
        finals.extend(d.await.unwrap());
    }
    figures.commands = finals.len();

    // Then every command got a final reply, the same however often it was asked
    figures.acknowledged = finals.iter().filter(|(_, r)| r["ok"] == true).count();
    for station in [&v5, &v311] {
        for replies in station.replies().values() {
            let answers: Vec<&Value> = replies.iter().filter(|r| r["error"]["code"] != "internal").collect();
            figures.internal_replies += replies.len() - answers.len();
            if answers.iter().any(|r| *r != answers[0]) {
                figures.doubled += 1;
                eprintln!("two answers to one request_id: {answers:?}");
            }
        }
    }
    figures.acknowledged_lost += acknowledged_but_lost(&gw, &[(&v5, "ws-5"), (&v311, "ws-3")], cuts);
    // And every result is in Odoo once, step by step
    wait_until("every result in Odoo", Duration::from_secs(120), || {
        gw.undelivered() == 0
    })
    .await;
    figures.steps = in_odoo(&gw, &sim);

    // And, on a steady line (no cut), the fsyncs a command and a delivered result cost
    let Station::V5(panel) = &*v5 else { unreachable!() };
    sim.set_down(true);
    display
        .wait(&status, "Odoo down", |v| v["uplink"]["odoo"]["state"] == "down")
        .await;
    let before = gw.disk.counts();
    for mo in worked + 1..=worked + spare as i64 {
        let body = json!({"request_id": format!("fsync-{mo}"), "operator": "ana", "mo": mo, "auth_first": "1", "roll_number": "R"});
        assert_eq!(panel.send("register-mo", body).await["ok"], true);
    }
    let queued = gw.disk.counts();
    sim.set_down(false);
    wait_until("the last results in Odoo", Duration::from_secs(60), || {
        gw.undelivered() == 0
    })
    .await;
    let delivered = gw.disk.counts();
    let per = |a: &linegate_sim::powercut::Counts, b: &linegate_sim::powercut::Counts, wal: bool| {
        let n = |c: &linegate_sim::powercut::Counts| {
            if wal {
                c.fsyncs.get("linegate.db-wal").copied().unwrap_or(0)
            } else {
                c.file_fsyncs() + c.dir_fsyncs
            }
        };
        (n(b) - n(a)) as f64 / spare as f64
    };
    figures.fsyncs_per_command = per(&before, &queued, false);
    figures.wal_fsyncs_per_command = per(&before, &queued, true);
    figures.fsyncs_per_result = per(&queued, &delivered, false);
    figures.wal_fsyncs_per_result = per(&queued, &delivered, true);
    // And an idle line's syncs cost none (each asks Odoo for changed MOs at least once)
    let syncs = || {
        sim.requests()
            .iter()
            .filter(|r| r.model.as_deref() == Some("mrp.production") && r.method.as_deref() == Some("search_read"))
            .count()
    };
    let (idle, seen) = (gw.disk.counts(), syncs());
    figures.idle_syncs = 5;
    wait_until("five idle syncs", Duration::from_secs(60), || {
        syncs() >= seen + figures.idle_syncs
    })
    .await;
    figures.idle_fsyncs =
        gw.disk.counts().file_fsyncs() + gw.disk.counts().dir_fsyncs - idle.file_fsyncs() - idle.dir_fsyncs;
    figures
}

/// Commands a panel was answered `ok` that the store does not hold.
fn acknowledged_but_lost(gw: &Gateway, stations: &[(&Arc<Station>, &str)], cut: usize) -> usize {
    // The answers first, then the store: a command answered meanwhile is in both
    let answered: Vec<(String, HashMap<String, Vec<Value>>)> = stations
        .iter()
        .map(|(s, name)| (name.to_string(), s.replies()))
        .collect();
    let stored: HashSet<String> = gw
        .texts("SELECT station || ' ' || request_id FROM command_log WHERE ok")
        .into_iter()
        .collect();
    let mut lost = 0;
    for (name, replies) in answered {
        for (id, replies) in replies {
            if replies.iter().any(|r| r["ok"] == true) && !stored.contains(&format!("{name} {id}")) {
                eprintln!("{name} {id} was answered ok and is not in the store after cut {cut}");
                lost += 1;
            }
        }
    }
    lost
}

/// Sends the MQTT 5 panel's last answered command again, with its request_id alone: the reply
/// must be the first one.
async fn repeat_the_last(v5: &Station, cut: usize) {
    let Station::V5(panel) = v5 else { unreachable!() };
    let answered = v5
        .replies()
        .into_iter()
        .filter_map(|(id, r)| {
            r.into_iter()
                .find(|r| r["error"]["code"] != "internal")
                .map(|r| (id, r))
        })
        .max_by_key(|(id, _)| id.trim_start_matches("ws-5-").parse::<u32>().unwrap_or(0));
    let Some((id, first)) = answered else { return };
    let seen = v5.count(&id);
    // (the stored reply answers a known request_id before its body is looked at)
    panel
        .publish(first["action"].as_str().unwrap(), json!({"request_id": id}).to_string())
        .await;
    wait_until("the repeated request's reply", Duration::from_secs(15), || {
        v5.count(&id) > seen
    })
    .await;
    let again = v5.replies()[&id].last().cloned().unwrap();
    assert_eq!(again, first, "{id} asked again after cut {cut}");
}

/// Per step, (results that needed it, lost, doubled): what Odoo holds against the results the
/// store queued.
fn in_odoo(gw: &Gateway, sim: &SimOdoo) -> BTreeMap<&'static str, (usize, usize, usize)> {
    let results: Vec<Value> = gw
        .texts("SELECT payload FROM outbox WHERE channel = 'odoo' ORDER BY id")
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let mos: HashSet<i64> = results.iter().map(|r| r["mo"].as_i64().unwrap()).collect();
    let mut steps = BTreeMap::new();
    let mut tally = |step: &'static str, found: usize| {
        let entry: &mut (usize, usize, usize) = steps.entry(step).or_default();
        entry.0 += 1;
        entry.1 += usize::from(found == 0);
        entry.2 += found.saturating_sub(1);
    };
    let notes: Vec<String> = mos
        .iter()
        .flat_map(|mo| sim.messages(*mo))
        .filter_map(|m| m["body"].as_str().map(str::to_string))
        .filter(|b| b.contains("linegate: "))
        .collect();
    let time_rows: Vec<String> = sim
        .productivity()
        .iter()
        .filter_map(|r| r["description"].as_str().map(str::to_string))
        .collect();
    let calls = |method: &str| {
        sim.requests()
            .iter()
            .filter(|r| r.status == 200 && r.method.as_deref() == Some(method))
            .count()
    };
    let (mut started, mut ended) = (0, 0);
    for r in &results {
        let event = r["event_id"].as_str().unwrap();
        tally(
            "chatter",
            notes.iter().filter(|b| b.contains(&format!("event {event}"))).count(),
        );
        let mo = sim.mo(r["mo"].as_i64().unwrap()).unwrap();
        match r["happened"].as_str().unwrap() {
            "started" => {
                started += 1;
                let state = mo["state"].as_str().unwrap();
                tally(
                    "progress",
                    usize::from(["progress", "to_close", "done"].contains(&state)),
                );
            }
            "ended" => {
                ended += 1;
                tally("progress", usize::from(mo["state"] == "done"));
                tally("time_tracking", time_rows.iter().filter(|d| d.contains(event)).count());
            }
            _ => {}
        }
        tally("fields", usize::from(mo["x_roll"] == r["protected"]["roll_number"]));
    }
    // A step made twice on an MO already in its state shows only in the calls Odoo carried out
    let progress = steps.entry("progress").or_default();
    progress.2 += calls("action_start").saturating_sub(started) + calls("button_mark_done").saturating_sub(ended);
    // And a note of no queued result would be one too many
    let events: HashSet<&str> = results.iter().filter_map(|r| r["event_id"].as_str()).collect();
    let strays = notes
        .iter()
        .filter(|b| !events.iter().any(|e| b.contains(&format!("event {e}"))))
        .count();
    steps.entry("chatter").or_default().2 += strays;
    steps
}

impl Figures {
    pub(crate) fn print(&self) {
        eprintln!("power-cut soak");
        eprintln!(
            "  cuts: {} exact, {} torn; by moment: {:?}",
            self.exact, self.torn, self.cuts
        );
        eprintln!(
            "  commands: {} sent, {} acknowledged, {} acknowledged but lost, {} doubled ({} `internal` replies, each followed by a final one)",
            self.commands, self.acknowledged, self.acknowledged_lost, self.doubled, self.internal_replies
        );
        eprintln!(
            "  stores kept aside: {} after exact cuts, {} after torn ones",
            self.kept_aside_exact, self.kept_aside_torn
        );
        for (step, (needed, lost, doubled)) in &self.steps {
            eprintln!("  Odoo, {step}: {needed} results, {lost} lost, {doubled} doubled");
        }
        eprintln!(
            "  fsyncs per command: {:.2} ({:.2} of the WAL); per delivered result: {:.2} ({:.2} of the WAL); the floor is 1, one durable commit",
            self.fsyncs_per_command, self.wal_fsyncs_per_command, self.fsyncs_per_result, self.wal_fsyncs_per_result
        );
        eprintln!(
            "  fsyncs while the sync asked Odoo {} times with nothing changed (an idle sync asks once): {}",
            self.idle_syncs, self.idle_fsyncs
        );
    }

    /// The soak's goals: nothing acknowledged lost, nothing doubled, no store kept aside after
    /// an exact cut, every result in Odoo once.
    pub(crate) fn assert_goals(&self) {
        assert_eq!(self.acknowledged, self.commands, "every command applied in the end");
        assert_eq!((self.acknowledged_lost, self.doubled), (0, 0));
        assert_eq!(self.kept_aside_exact, 0, "a store kept aside after an exact cut");
        for (step, (_, lost, doubled)) in &self.steps {
            assert_eq!((*lost, *doubled), (0, 0), "{step}");
        }
    }
}
