//! Results back to Odoo: what the floor did reaches the simulated Odoo's chatter and fields,
//! in order per MO, once, whatever happens to the uplink or the answers in between; and the
//! displays say what has not gone up yet.

mod common;

use std::time::Duration;

use common::bin::{linegate, output, text, write_config};
use common::{config, count, mo_count, odoo_config, sim, wait_until, Agent, Display, Mosquitto, Panel};
use linegate::config::{MqttConfig, OdooConfig};
use linegate_sim::odoo::SimOdoo;
use serde_json::{json, Value};

const GATEWAY: &str = "gw-push";
const PREFIX: &str = "linegate/gw-push";

/// An agent on `sim` and the broker at `port`, with `odoo`'s settings.
async fn agent(odoo: OdooConfig, port: u16, db: &std::path::Path) -> Agent {
    let mut config = config(odoo, db);
    config.mqtt = Some(MqttConfig::new("127.0.0.1", port, GATEWAY));
    Agent::start_online(config, port, PREFIX).await
}

/// A floor: a broker, a simulated Odoo with `mos` MOs, the agent (synced once), a panel.
struct Floor {
    broker: Mosquitto,
    sim: SimOdoo,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    /// The agent's Odoo settings, to start it again with.
    odoo: OdooConfig,
    agent: Agent,
    panel: Panel,
}

impl Floor {
    async fn start(mos: usize) -> Floor {
        Floor::with(mos, |_| {}, |_| {}).await
    }

    /// A floor whose Odoo `odoo_side` prepares before the agent starts, with the agent's
    /// Odoo settings as `settings` changes them.
    async fn with(mos: usize, odoo_side: impl FnOnce(&SimOdoo), settings: impl FnOnce(&mut OdooConfig)) -> Floor {
        let broker = Mosquitto::start().await;
        let sim = sim(19, mos).await;
        odoo_side(&sim);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("linegate.db");
        let mut odoo = odoo_config(&sim);
        settings(&mut odoo);
        let agent = agent(odoo.clone(), broker.port(), &db).await;
        let panel = Panel::start(broker.port(), PREFIX, "ws-1").await;
        wait_until("the first sync", Duration::from_secs(10), || {
            mo_count(&db) == mos as i64
        })
        .await;
        Floor {
            broker,
            sim,
            _dir: dir,
            db,
            odoo,
            agent,
            panel,
        }
    }

    async fn display(&self) -> Display {
        Display::start(self.broker.port(), PREFIX).await
    }

    fn undelivered(&self) -> i64 {
        undelivered(&self.db)
    }
}

fn undelivered(db: &std::path::Path) -> i64 {
    count(
        db,
        "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND delivered_at IS NULL",
    )
}

/// The chatter notes linegate left on `mo`, oldest first, as their first lines.
fn notes(sim: &SimOdoo, mo: i64) -> Vec<String> {
    sim.messages(mo)
        .iter()
        .filter_map(|m| m["body"].as_str())
        .filter(|b| b.contains("linegate: "))
        .map(|b| {
            b.trim_start_matches("<p>")
                .split("<br>")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn run_an_mo(panel: &Panel, mo: i64, tag: &str) {
    begin_an_mo(panel, mo, tag).await;
    end_an_mo(panel, mo, tag, "000220").await;
}

/// Registers and starts MO `mo` (first sticker 000100).
async fn begin_an_mo(panel: &Panel, mo: i64, tag: &str) {
    let steps = [
        ("register-mo", json!({"auth_first": "000100", "roll_number": "R-1"})),
        ("start-production", json!({"leader_id": "0042"})),
    ];
    send_steps(panel, mo, tag, steps.into_iter().enumerate()).await;
}

/// Ends MO `mo` with `authenticity` as the next sticker code.
async fn end_an_mo(panel: &Panel, mo: i64, tag: &str, authenticity: &str) {
    let end = ("end-production", json!({ "authenticity": authenticity }));
    send_steps(panel, mo, tag, [(2, end)].into_iter()).await;
}

async fn send_steps(panel: &Panel, mo: i64, tag: &str, steps: impl Iterator<Item = (usize, (&str, Value))>) {
    for (n, (action, fields)) in steps {
        let mut body = json!({"request_id": format!("{tag}-{mo}-{n}"), "operator": "ana", "mo": mo});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let reply = panel.send(action, body).await;
        assert_eq!(reply["ok"], true, "{action} on MO {mo}: {reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_made_while_odoo_is_away_reach_it_once_and_in_order_when_it_returns() {
    // Given an agent with three MOs, a display and a panel, and then Odoo unreachable
    let f = Floor::start(3).await;
    let display = f.display().await;
    f.sim.set_down(true);

    // When the floor registers, starts and ends two MOs meanwhile
    for mo in [1, 2] {
        run_an_mo(&f.panel, mo, "away").await;
    }

    // Then the displays say what has not gone up yet
    let shown = display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 pending", |v| {
            v["pending_upload"]["count"] == 3
        })
        .await;
    assert!(shown["pending_upload"]["oldest_at"].is_string(), "{shown}");
    assert!(shown["pending_upload"]["parked"].is_null(), "{shown}");
    display
        .wait(&format!("{PREFIX}/status"), "six pending", |v| {
            v["outbox"]["odoo"]["pending"] == 6
        })
        .await;
    assert!(notes(&f.sim, 1).is_empty());

    // When Odoo is back
    f.sim.set_down(false);

    // Then every result reaches its MO's chatter once, in the order it happened
    wait_until("the outbox drained", Duration::from_secs(20), || f.undelivered() == 0).await;
    for mo in [1, 2] {
        let name = format!("WH/MO/{mo:05}");
        assert_eq!(
            notes(&f.sim, mo),
            [
                format!("linegate: {name} registered"),
                format!("linegate: {name} started"),
                format!("linegate: {name} ended")
            ],
            "MO {mo}"
        );
    }
    assert!(notes(&f.sim, 3).is_empty());
    // And the note of the end says what was made, line by line in Odoo's web client, and Odoo
    // logged no warning for it
    let end = f.sim.messages(1).last().unwrap()["body"].as_str().unwrap().to_string();
    let lines: Vec<&str> = end
        .trim_start_matches("<p>")
        .trim_end_matches("</p>")
        .split("<br>")
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stickers 000100 to 000219, roll R-1, produced 120, loss ")),
        "{end}"
    );
    assert!(lines.last().unwrap().starts_with("event lg-"), "{end}");
    assert_eq!(f.sim.log_warnings(), Vec::<String>::new());
    // And the displays show nothing pending any more
    display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 uploaded", |v| {
            v["pending_upload"].is_null()
        })
        .await;
    display
        .wait(&format!("{PREFIX}/status"), "nothing pending", |v| {
            v["outbox"]["odoo"]["pending"] == 0
        })
        .await;
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_whose_answer_was_lost_is_not_posted_twice() {
    // Given an Odoo that carries out the next note but loses its answer
    let f = Floor::start(2).await;
    f.sim.lose_answer_to("create");

    // When an MO is registered
    let reply = f
        .panel
        .send(
            "register-mo",
            json!({"request_id": "lost-1", "operator": "ana", "mo": 1, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");

    // Then the result is delivered after the lost answer, and Odoo holds its note once
    wait_until("the result delivered", Duration::from_secs(30), || f.undelivered() == 0).await;
    assert_eq!(notes(&f.sim, 1), ["linegate: WH/MO/00001 registered"]);
    let attempts = count(&f.db, "SELECT attempts FROM outbox WHERE channel = 'odoo'");
    assert_eq!(attempts, 2, "the lost answer, then the look that found the note");
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_whose_answer_was_lost_before_a_restart_is_not_posted_twice() {
    // Given an Odoo that carries out the next note but loses its answer, and an
    // agent that lets an unanswered call settle for two seconds
    let f = Floor::with(1, |_| {}, |odoo| odoo.push.settle_time = Duration::from_secs(2)).await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    sim.lose_answer_to("create");

    // When an MO is registered, its note's answer is lost, and the agent is restarted
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "restart-1", "operator": "ana", "mo": 1, "auth_first": "1", "roll_number": "R"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    wait_until("the lost answer", Duration::from_secs(10), || {
        count(
            db,
            "SELECT count(*) FROM outbox WHERE channel = 'odoo' AND last_error IS NOT NULL",
        ) == 1
    })
    .await;
    f.agent.stop().await;
    let second = agent(f.odoo.clone(), f.broker.port(), db).await;

    // Then the new run finds the note in Odoo rather than posting it again
    wait_until("the result delivered", Duration::from_secs(30), || undelivered(db) == 0).await;
    assert_eq!(notes(sim, 1), ["linegate: WH/MO/00001 registered"]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_odoo_refuses_waits_with_its_reason_while_other_mos_go_up() {
    // Given an agent with two MOs, and a display
    let f = Floor::start(2).await;
    let display = f.display().await;

    // When MO 1 is deleted in Odoo before the floor's results reach it, and both MOs run
    f.sim.set_down(true);
    run_an_mo(&f.panel, 1, "gone").await;
    run_an_mo(&f.panel, 2, "gone").await;
    f.sim.delete_mo(1);
    f.sim.set_down(false);

    // Then MO 2's results go up, and MO 1's first one waits with the reason, the rest behind it
    wait_until("MO 2 delivered", Duration::from_secs(20), || {
        notes(&f.sim, 2).len() == 3
    })
    .await;
    let shown: Value = display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 parked", |v| {
            v["pending_upload"]["parked"].is_string()
        })
        .await;
    let reason = shown["pending_upload"]["parked"].as_str().unwrap();
    assert!(reason.contains("no longer exists in Odoo"), "{reason}");
    assert_eq!(shown["pending_upload"]["count"], 3, "{shown}");
    display
        .wait(&format!("{PREFIX}/status"), "one parked", |v| {
            v["outbox"]["odoo"]["parked"] == 1
        })
        .await;

    // And `linegate outbox` lists it with its reason, retries it, and drops it only with --yes
    let config = write_config(f._dir.path(), &f.sim, "");
    let outbox = |args: &[&str]| {
        let mut all = vec!["outbox"];
        all.extend(args);
        output(linegate(&config, &all))
    };
    let listed = outbox(&["list"]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    let shown = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(shown.contains("PARKED: the MO no longer exists in Odoo"), "{shown}");
    let head = count(&f.db, "SELECT id FROM outbox WHERE parked_at IS NOT NULL");
    // Its attempts once parked again (0 while it is not).
    let tried = || {
        count(
            &f.db,
            &format!("SELECT coalesce(max(attempts), 0) FROM outbox WHERE id = {head} AND parked_at IS NOT NULL"),
        )
    };
    let before = tried();
    let retried = outbox(&["retry", "--all"]).await;
    assert_eq!(retried.status.code(), Some(0), "{}", text(&retried));
    wait_until("tried again, and parked again", Duration::from_secs(90), || {
        tried() > before
    })
    .await;
    let refused = outbox(&["drop", &head.to_string()]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));
    // (one that waits behind it, not parked, may be on its way to Odoo: it is not dropped)
    let behind = count(
        &f.db,
        &format!("SELECT min(id) FROM outbox WHERE key = 1 AND id > {head} AND delivered_at IS NULL"),
    );
    let not_parked = outbox(&["drop", &behind.to_string(), "--yes"]).await;
    assert_eq!(not_parked.status.code(), Some(1), "{}", text(&not_parked));
    assert!(text(&not_parked).contains("is not parked"), "{}", text(&not_parked));
    let dropped = outbox(&["drop", &head.to_string(), "--yes"]).await;
    assert_eq!(dropped.status.code(), Some(0), "{}", text(&dropped));
    assert_eq!(
        count(&f.db, &format!("SELECT count(*) FROM outbox WHERE id = {head}")),
        0
    );
    display
        .wait(&format!("{PREFIX}/status"), "one dropped", |v| {
            v["outbox"]["odoo"]["dropped"] == 1
        })
        .await;
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_bound_the_outbox_drops_the_oldest_results_and_says_so() {
    // Given results queued while Odoo is away: one MO run, three results
    let f = Floor::start(2).await;
    f.sim.set_down(true);
    run_an_mo(&f.panel, 1, "bound").await;
    let Floor {
        broker,
        sim,
        db,
        agent,
        _dir,
        ..
    } = f;
    agent.stop().await;

    // When the agent starts again allowing two results to wait
    let mut odoo = odoo_config(&sim);
    odoo.push.max_pending = 2;
    let display = Display::start(broker.port(), PREFIX).await;
    let agent = self::agent(odoo, broker.port(), &db).await;

    // Then the oldest is dropped and counted, and the two newest still wait
    let status = display
        .wait(&format!("{PREFIX}/status"), "one dropped", |v| {
            v["outbox"]["odoo"]["dropped"] == 1
        })
        .await;
    assert_eq!(status["outbox"]["odoo"]["pending"], 2, "{status}");
    // And once Odoo is back, they go up: the start and the end, not the registration
    sim.set_down(false);
    wait_until("the outbox drained", Duration::from_secs(20), || undelivered(&db) == 0).await;
    assert_eq!(
        notes(&sim, 1),
        ["linegate: WH/MO/00001 started", "linegate: WH/MO/00001 ended"]
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backorder_that_renames_the_mo_meanwhile_changes_nothing() {
    // Given results for MO 1 waiting while Odoo is away
    let f = Floor::start(2).await;
    f.sim.set_down(true);
    run_an_mo(&f.panel, 1, "renamed").await;

    // When Odoo backorders it meanwhile (WH/MO/00001 becomes WH/MO/00001-001) and returns
    f.sim.backorder(1, 1.0);
    f.sim.set_down(false);

    // Then the results reach the MO by its id, renamed or not
    wait_until("the outbox drained", Duration::from_secs(20), || f.undelivered() == 0).await;
    assert_eq!(f.sim.mo(1).unwrap()["name"], "WH/MO/00001-001");
    assert_eq!(
        notes(&f.sim, 1),
        [
            "linegate: WH/MO/00001 registered",
            "linegate: WH/MO/00001 started",
            "linegate: WH/MO/00001 ended"
        ]
    );
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_progress_and_time_tracking_odoo_closes_the_mo_once_with_a_backorder_and_floor_times() {
    // Given Odoo's progress and time tracking pushed too, MO 1 planned for 500 with a work
    // order, and MO 2 planned for 3
    let mut workorder = 0;
    let odoo_side = |sim: &SimOdoo| {
        sim.write_mo(
            1,
            serde_json::Map::from_iter([("product_qty".to_string(), json!(500.0))]),
        );
        workorder = sim.add_workorder(1, 1).unwrap();
    };
    let f = Floor::with(2, odoo_side, |odoo| {
        odoo.push.progress = true;
        odoo.push.time_tracking = true;
    })
    .await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    // (and the answer to the first mark-done lost: it must not close anything twice)
    sim.lose_answer_to("button_mark_done");

    // When both run on the floor for a second or more: 120 made on each
    begin_an_mo(panel, 1, "progress").await;
    begin_an_mo(panel, 2, "progress").await;
    a_second_passes().await;
    end_an_mo(panel, 1, "progress", "000220").await;
    end_an_mo(panel, 2, "progress", "000220").await;

    // Then MO 1 is done with the 120 made, and a backorder holds the other 380
    wait_until("the outbox drained", Duration::from_secs(40), || undelivered(db) == 0).await;
    let mo1 = sim.mo(1).unwrap();
    assert_eq!(
        (mo1["state"].as_str(), mo1["name"].as_str()),
        (Some("done"), Some("WH/MO/00001-001")),
        "{mo1}"
    );
    assert_eq!(mo1["qty_producing"], 120.0);
    let backorders: Vec<Value> = sim
        .mo_ids()
        .into_iter()
        .filter_map(|id| sim.mo(id))
        .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("WH/MO/00001-")))
        .collect();
    assert_eq!(
        backorders.len(),
        2,
        "one closed, one backorder, no second split: {backorders:?}"
    );
    assert!(
        backorders
            .iter()
            .any(|m| m["product_qty"] == 380.0 && m["state"] == "confirmed"),
        "{backorders:?}"
    );
    // And MO 2, which made more than planned, is simply done
    assert_eq!(sim.mo(2).unwrap()["state"], "done");
    // And each end went as Odoo's form does it: the quantity, onto the moves, then done (the
    // lost answer's mark-done found done, not sent again)
    let calls: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.model.as_deref() == Some("mrp.production") && r.status == 200)
        .filter_map(|r| r.method)
        .filter(|m| ["write", "set_qty_producing", "button_mark_done"].contains(&m.as_str()))
        .collect();
    let count = |m: &str| calls.iter().filter(|c| *c == m).count();
    assert_eq!(
        (count("write"), count("set_qty_producing"), count("button_mark_done")),
        (2, 2, 2),
        "{calls:?}"
    );
    let first = |m: &str| calls.iter().position(|c| c == m).unwrap();
    assert!(first("write") < first("set_qty_producing") && first("set_qty_producing") < first("button_mark_done"));
    // And MO 1's work order has one productive entry, with the floor's times: Odoo's close
    // found time on it and booked no estimate of its own
    let entries = sim.productivity();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["workorder_id"][0], workorder);
    assert_eq!(entries[0]["loss_type"], "productive");
    assert!(
        entries[0]["description"].as_str().unwrap().contains("lg-"),
        "{entries:?}"
    );
    let floor_start: String = common::reader(db)
        .query_row("SELECT date_start FROM mo WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    let odoo_start = linegate::clock::format_odoo(linegate::clock::parse_rfc3339(&floor_start).unwrap());
    assert_eq!(entries[0]["date_start"], odoo_start);
    // And the end's note, made after the close, names what Odoo holds, and so does the
    // result's record
    let backorder = backorders.iter().find(|m| m["state"] == "confirmed").unwrap()["name"].clone();
    let said = format!(
        "Odoo: closed as WH/MO/00001-001 with 120; backorder {} for the rest",
        backorder.as_str().unwrap()
    );
    let end = sim.messages(1).last().unwrap()["body"].as_str().unwrap().to_string();
    assert!(
        end.contains("ended<br>") && end.contains(&format!("<br>{said}<br>")),
        "{end}"
    );
    let recorded: String = common::reader(db)
        .query_row(
            "SELECT outcome FROM outbox WHERE key = 1 AND json_extract(payload, '$.happened') = 'ended'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(recorded, said);
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_below_plan_is_delivered_when_odoo_answers_the_backorder_it_opened() {
    // Given the MO's progress pushed, and MO 1 planned for 500
    let odoo_side = |sim: &SimOdoo| {
        sim.write_mo(
            1,
            serde_json::Map::from_iter([("product_qty".to_string(), json!(500.0))]),
        );
    };
    let f = Floor::with(1, odoo_side, |odoo| odoo.push.progress = true).await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    let display = f.display().await;

    // When it runs on the floor with 120 made
    run_an_mo(panel, 1, "below").await;

    // Then Odoo closes it as -001 and answers the backorder it made, and the result is
    // delivered, not parked: Odoo holds what the floor did
    wait_until("the outbox drained", Duration::from_secs(20), || undelivered(db) == 0).await;
    assert_eq!(count(db, "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"), 0);
    assert_eq!(sim.mo(1).unwrap()["state"], "done");
    let backorder = sim.mo(2).unwrap();
    assert_eq!(
        (backorder["name"].as_str(), backorder["product_qty"].as_f64()),
        (Some("WH/MO/00001-002"), Some(380.0))
    );
    let end = sim.messages(1).last().unwrap()["body"].as_str().unwrap().to_string();
    assert!(
        end.contains("<br>Odoo: closed as WH/MO/00001-001 with 120; backorder WH/MO/00001-002 for the rest<br>"),
        "{end}"
    );
    display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 all up", |v| {
            v["pending_upload"].is_null()
        })
        .await;
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_holds_the_floors_time_on_the_work_order_and_its_estimate_on_the_others() {
    // Given progress and time tracking pushed, and MO 1 with two work orders expecting 60 and
    // 120 minutes
    let mut orders = Vec::new();
    let odoo_side = |sim: &SimOdoo| {
        orders.push(sim.add_workorder_expecting(1, 1, 60.0).unwrap());
        orders.push(sim.add_workorder_expecting(1, 2, 120.0).unwrap());
    };
    let f = Floor::with(1, odoo_side, |odoo| {
        odoo.push.progress = true;
        odoo.push.time_tracking = true;
    })
    .await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);

    // When the floor runs it, the answer to its time tracking lost on the way back
    begin_an_mo(panel, 1, "time").await;
    a_second_passes().await;
    wait_until("register and start delivered", Duration::from_secs(20), || {
        undelivered(db) == 0
    })
    .await;
    sim.lose_answer_to("create");
    end_an_mo(panel, 1, "time", "000220").await;
    wait_until("the end delivered", Duration::from_secs(30), || undelivered(db) == 0).await;
    assert_eq!(
        count(db, "SELECT max(attempts) FROM outbox"),
        2,
        "the lost answer, then the look that found the row"
    );

    // Then the first work order holds the floor's time alone, not Odoo's 60 minutes besides
    let floor = floor_minutes(db, 1);
    let first = sim.workorder(orders[0]).unwrap();
    assert!(
        (first["duration"].as_f64().unwrap() - floor).abs() < 0.01,
        "{first} vs {floor}"
    );
    let rows = |wo: i64| -> Vec<Value> {
        sim.productivity()
            .into_iter()
            .filter(|r| r["workorder_id"][0] == wo)
            .collect()
    };
    assert_eq!(rows(orders[0]).len(), 1, "{:?}", rows(orders[0]));
    assert!(rows(orders[0])[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("linegate lg-"));
    // And the second, which the floor does not track, holds Odoo's estimate (docs say so)
    assert_eq!(sim.workorder(orders[1]).unwrap()["duration"], 120.0);
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_closed_in_odoo_before_the_floors_time_reached_it_holds_the_floors_time_not_the_estimate() {
    // Given time tracking pushed (not the progress), and MO 1 with a work order expecting an
    // hour
    let mut order = 0;
    let f = Floor::with(
        1,
        |sim| order = sim.add_workorder_expecting(1, 1, 60.0).unwrap(),
        |odoo| odoo.push.time_tracking = true,
    )
    .await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);

    // When Odoo is away while the floor runs the MO, and a person closes it in Odoo meanwhile
    // (Odoo books its hour on the work order)
    sim.set_down(true);
    run_an_mo(panel, 1, "closed").await;
    sim.write_mo(
        1,
        serde_json::Map::from_iter([("product_qty".to_string(), json!(120.0))]),
    );
    assert_eq!(sim.mark_done(1), json!(true));
    assert_eq!(sim.workorder(order).unwrap()["duration"], 60.0);
    sim.set_down(false);

    // Then the work order holds the floor's time, in place of Odoo's estimate
    wait_until("the outbox drained", Duration::from_secs(30), || undelivered(db) == 0).await;
    let floor = floor_minutes(db, 1);
    let held = sim.workorder(order).unwrap();
    assert!(
        (held["duration"].as_f64().unwrap() - floor).abs() < 0.01,
        "{held} vs {floor}"
    );
    let rows = sim.productivity();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["description"].as_str().unwrap().starts_with("linegate lg-"),
        "{rows:?}"
    );
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_odoo_closed_by_a_backorder_before_the_floors_end_waits_for_a_person_with_both_sides() {
    // Given the MO's progress pushed, and MO 1 planned for 5
    let f = Floor::with(
        1,
        |sim| sim.write_mo(1, serde_json::Map::from_iter([("product_qty".to_string(), json!(5.0))])),
        |odoo| odoo.push.progress = true,
    )
    .await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    let display = f.display().await;

    // When the floor registers and starts it, and it reaches Odoo started
    begin_an_mo(panel, 1, "bo").await;
    wait_until("started in Odoo", Duration::from_secs(20), || undelivered(db) == 0).await;
    // And Odoo closes it meanwhile with 2 and a backorder for 3, and the floor ends it with 4
    sim.backorder(1, 2.0);
    end_an_mo(panel, 1, "bo", "000104").await;

    // Then the end waits for a person with what the floor made, what Odoo holds, and the
    // backorder's name, on the MO's display
    let shown = display
        .wait(&format!("{PREFIX}/mo/1"), "the end parked", |v| {
            v["pending_upload"]["parked"].is_string()
        })
        .await;
    let reason = shown["pending_upload"]["parked"].as_str().unwrap();
    for said in [
        "the floor made 4",
        "as WH/MO/00001-001 with 2",
        "its backorder WH/MO/00001-002",
        "the other 2 are booked nowhere",
    ] {
        assert!(reason.contains(said), "{said:?} in {reason}");
    }
    // And in `linegate outbox list`
    let config = write_config(f._dir.path(), sim, "");
    let listed = output(linegate(&config, &["outbox", "list"])).await;
    assert!(text(&listed).contains("PARKED: the floor made 4"), "{}", text(&listed));
    // And Odoo was not changed: -001 still holds 2
    assert_eq!(sim.mo(1).unwrap()["qty_producing"], 2.0);
    f.agent.stop().await;
}

/// Until the clock has passed into the second after the next: a span the floor tracks from
/// now lasts a second at least (Odoo takes a work order whose time is 0 for one without any).
async fn a_second_passes() {
    let now = linegate::clock::now_unix();
    wait_until("a second on the floor", Duration::from_secs(5), || {
        linegate::clock::now_unix() > now + 1
    })
    .await;
}

/// The floor's start to end of MO `mo`, in minutes, as the store has them.
fn floor_minutes(db: &std::path::Path, mo: i64) -> f64 {
    let (start, end): (String, String) = common::reader(db)
        .query_row(
            &format!("SELECT date_start, date_finished FROM mo WHERE id = {mo}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let secs = |t: &str| linegate::clock::parse_rfc3339(t).unwrap();
    (secs(&end) - secs(&start)) as f64 / 60.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_gone_between_syncs_is_noticed_by_the_delivery_and_everything_goes_up_when_it_returns() {
    // Given an agent that syncs only hourly, synced once, and then Odoo unreachable
    let f = Floor::with(2, |_| {}, |odoo| odoo.sync_interval = Duration::from_secs(3600)).await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    let display = f.display().await;
    display
        .wait(&format!("{PREFIX}/status"), "Odoo up", |v| {
            v["uplink"]["odoo"]["state"] == "up"
        })
        .await;
    sim.set_down(true);

    // When the floor runs an MO: its first delivery fails
    run_an_mo(panel, 1, "gone").await;

    // Then the displays learn that Odoo is down long before the next hourly sync
    display
        .wait(&format!("{PREFIX}/status"), "Odoo down", |v| {
            v["uplink"]["odoo"]["state"] == "down"
        })
        .await;

    // And when Odoo returns, all three results go up at once, not at their own retry times
    sim.set_down(false);
    wait_until("the outbox drained", Duration::from_secs(15), || undelivered(db) == 0).await;
    assert_eq!(notes(sim, 1).len(), 3, "{:?}", notes(sim, 1));
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_with_odoo_says_which_step_odoo_would_refuse_and_why() {
    // Given a simulated Odoo whose API user may not read the chatter, and that lacks a field
    let sim = sim(19, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let push = "[odoo.push]\ntime_tracking = true\n[odoo.push.fields]\nroll_number = \"x_roll\"\n";
    let config = write_config(dir.path(), &sim, push);

    // When the configuration is checked without asking Odoo, it is fine and says what goes up
    let offline = output(linegate(&config, &["check-config"])).await;
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));
    assert!(
        text(&offline).contains("results to Odoo: a chatter note, fields roll_number → x_roll, time tracking"),
        "{}",
        text(&offline)
    );

    // When Odoo is asked while it grants everything but lacks the field
    let asked = output(linegate(&config, &["check-config", "--odoo"])).await;
    let said = text(&asked);
    assert_eq!(asked.status.code(), Some(78), "{said}");
    assert!(said.contains("Odoo 19 (JSON-2): the sync's fields: ok"), "{said}");
    assert!(said.contains("results to Odoo, chatter: ok"), "{said}");
    assert!(
        said.contains(
            "results to Odoo, fields: REFUSED: odoo.push.fields.roll_number: Odoo has no field `x_roll` on mrp.production"
        ),
        "{said}"
    );
    assert!(said.contains("results to Odoo, time_tracking: ok"), "{said}");

    // When the API user loses its rights on the chatter's messages and the work orders
    sim.deny("mail.message");
    sim.deny("mrp.workorder");
    let asked = output(linegate(&config, &["check-config", "--odoo"])).await;
    let said = text(&asked);
    assert_eq!(asked.status.code(), Some(78), "{said}");
    assert!(
        said.contains("results to Odoo, chatter: REFUSED: the API user may not create mail.message: You are not allowed to create 'Message' (mail.message) records."),
        "{said}"
    );
    assert!(
        said.contains("results to Odoo, time_tracking: REFUSED: the API user may not read mrp.workorder: You are not allowed to access 'Work Order' (mrp.workorder)"),
        "{said}"
    );

    // And a configuration Odoo serves in full passes; an unreachable Odoo is not a verdict
    let fine = write_config(dir.path(), &sim, "[odoo.push]\nchatter = false\nprogress = true\n");
    let asked = output(linegate(&fine, &["check-config", "--odoo"])).await;
    assert_eq!(asked.status.code(), Some(0), "{}", text(&asked));
    assert!(
        text(&asked).contains("results to Odoo, progress: ok"),
        "{}",
        text(&asked)
    );
    sim.set_down(true);
    let asked = output(linegate(&fine, &["check-config", "--odoo"])).await;
    assert_eq!(asked.status.code(), Some(1), "{}", text(&asked));
    assert!(
        text(&asked).contains("Odoo: FAILED: cannot reach Odoo"),
        "{}",
        text(&asked)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_refuses_a_user_without_manufacturing_rights_naming_each_part_and_right() {
    // Given an API user without Manufacturing rights (it may call fields_get and read the
    // chatter's messages, nothing on MOs), and every step configured
    let sim = sim(19, 1).await;
    sim.without_manufacturing_rights();
    let dir = tempfile::tempdir().unwrap();
    let push = "[odoo.push]\nprogress = true\ntime_tracking = true\n";
    let config = write_config(dir.path(), &sim, push);

    // When Odoo is asked, then 78, the sync and each step named with the right it lacks
    let asked = output(linegate(&config, &["check-config", "--odoo"])).await;
    let said = text(&asked);
    assert_eq!(asked.status.code(), Some(78), "{said}");
    for refused in [
        "Odoo 19 (JSON-2): the sync's rights: REFUSED: the API user may not read mrp.production: You are not \
         allowed to access 'Manufacturing Order' (mrp.production) records. This operation is allowed for the \
         following groups: - Inventory/User - Manufacturing/Administrator - Manufacturing/User",
        "results to Odoo, chatter: REFUSED: the API user may not write mrp.production: You are not allowed to modify",
        "results to Odoo, progress: REFUSED: the API user may not read mrp.production",
        "results to Odoo, time_tracking: REFUSED: ",
    ] {
        assert!(said.contains(refused), "{refused:?} in {said}");
    }

    // When a user who may read MOs but not change them is asked on Odoo 17 (/jsonrpc, where
    // only check_access_rights tells), then the sync passes and the progress is refused
    let sim17 = self::sim(17, 1).await;
    sim17.deny_writes("mrp.production");
    let dir17 = tempfile::tempdir().unwrap();
    let config17 = write_config(
        dir17.path(),
        &sim17,
        "login = \"admin\"\n[odoo.push]\nchatter = false\nprogress = true\n",
    );
    let asked = output(linegate(&config17, &["check-config", "--odoo"])).await;
    let said = text(&asked);
    assert_eq!(asked.status.code(), Some(78), "{said}");
    assert!(said.contains("Odoo 17 (/jsonrpc): the sync's rights: ok"), "{said}");
    assert!(
        said.contains("results to Odoo, progress: REFUSED: the API user may not write mrp.production: You are not allowed to modify 'Manufacturing Order'"),
        "{said}"
    );
    let asked_for: Vec<String> = sim17.requests().into_iter().filter_map(|r| r.method).collect();
    assert!(!asked_for.iter().any(|m| m == "has_access"), "{asked_for:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_says_what_odoo_refuses_at_start_and_again_when_odoo_returns() {
    // Given an API user without Manufacturing rights, and every step configured
    let broker = Mosquitto::start().await;
    let sim = sim(19, 1).await;
    sim.without_manufacturing_rights();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("linegate.db");
    let mut odoo = odoo_config(&sim);
    odoo.push.progress = true;
    odoo.push.time_tracking = true;
    let display = Display::start(broker.port(), PREFIX).await;

    // When the agent starts
    let agent = agent(odoo, broker.port(), &db).await;

    // Then the status topic names each part Odoo refuses, with the missing right
    let status = display
        .wait(&format!("{PREFIX}/status"), "the refusals shown", |v| {
            v["odoo_refuses"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    let refused = status["odoo_refuses"].as_array().unwrap();
    let steps: Vec<&str> = refused.iter().filter_map(|r| r["step"].as_str()).collect();
    assert_eq!(steps, ["sync", "chatter", "progress", "time_tracking"], "{status}");
    assert!(
        refused[0]["why"]
            .as_str()
            .unwrap()
            .starts_with("the API user may not read mrp.production: You are not allowed to access"),
        "{status}"
    );

    // When Odoo goes away, the user is given its rights meanwhile, and Odoo returns
    sim.set_down(true);
    display
        .wait(&format!("{PREFIX}/status"), "Odoo down", |v| {
            v["uplink"]["odoo"]["state"] == "down"
        })
        .await;
    sim.grant_all();
    sim.set_down(false);

    // Then the status says Odoo refuses nothing any more
    display
        .wait(&format!("{PREFIX}/status"), "nothing refused", |v| {
            v["odoo_refuses"] == json!([])
        })
        .await;
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_odoo_denies_the_api_user_parks_with_odoos_words_on_one_line() {
    // Given time tracking pushed, MO 1 with a work order, and an API user that may not book
    // time on it
    let odoo_side = |sim: &SimOdoo| {
        sim.add_workorder(1, 1).unwrap();
        sim.deny("mrp.workcenter.productivity");
    };
    let f = Floor::with(1, odoo_side, |odoo| odoo.push.time_tracking = true).await;
    let (sim, panel) = (&f.sim, &f.panel);
    let display = f.display().await;

    // When the MO runs on the floor
    run_an_mo(panel, 1, "denied").await;

    // Then the notes go up, and the end waits with Odoo's refusal, on one line
    let shown = display
        .wait(&format!("{PREFIX}/mo/1"), "the end parked", |v| {
            v["pending_upload"]["parked"].is_string()
        })
        .await;
    let reason = shown["pending_upload"]["parked"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "Odoo refused access: You are not allowed to create 'Workcenter Productivity Log' \
             (mrp.workcenter.productivity) records. This operation is allowed for the following groups:"
        ),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "{reason}");
    assert_eq!(shown["pending_upload"]["count"], 1, "{shown}");
    assert_eq!(notes(sim, 1).len(), 3, "every note went up before the refused step");
    assert!(sim.productivity().is_empty());
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_odoo_commits_after_the_agent_gave_up_on_it_is_not_posted_again() {
    // Given an agent that waits a second for an answer and lets an unanswered call settle
    // for twelve, and an Odoo whose next note waits eight seconds on a lock
    let f = Floor::with(
        1,
        |_| {},
        |odoo| {
            odoo.sync_interval = Duration::from_secs(3600);
            odoo.request_timeout = Duration::from_secs(1);
            odoo.push.settle_time = Duration::from_secs(12);
        },
    )
    .await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    sim.apply_late("create", Duration::from_secs(8));

    // When the MO is registered: its note times out, and Odoo commits it seven seconds later
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "late-1", "operator": "ana", "mo": 1, "auth_first": "000100", "roll_number": "R-1"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");

    // Then the agent, having looked only once the call had surely settled, finds it there
    wait_until(
        "the outbox drained and the late note in",
        Duration::from_secs(30),
        || undelivered(db) == 0 && sim.late_calls_running() == 0,
    )
    .await;
    assert_eq!(notes(sim, 1).len(), 1, "{:?}", sim.messages(1));
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_added_in_odoo_after_its_results_parked_takes_them_on_retry() {
    // Given results mapped into a field Odoo lacks: the MO's first one parks on it
    let f = Floor::with(1, |_| {}, |odoo| odoo.push.fields.roll_number = Some("x_roll".into())).await;
    let (sim, db, panel) = (&f.sim, &f.db, &f.panel);
    run_an_mo(panel, 1, "field").await;
    wait_until("the first result parked", Duration::from_secs(10), || {
        count(db, "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL") == 1
    })
    .await;
    let reason: String = common::reader(db)
        .query_row("SELECT park_reason FROM outbox WHERE parked_at IS NOT NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        reason.contains("odoo.push.fields.roll_number: Odoo has no field `x_roll`")
            && reason.contains("run `linegate odoo-setup`"),
        "{reason}"
    );

    // When an administrator adds the field in Odoo and the results are retried
    sim.add_custom_field("x_roll");
    let config = write_config(f._dir.path(), sim, "");
    let retried = output(linegate(&config, &["outbox", "retry", "--all"])).await;
    assert_eq!(retried.status.code(), Some(0), "{}", text(&retried));

    // Then all three go up, the roll in the new field
    wait_until("the outbox drained", Duration::from_secs(90), || undelivered(db) == 0).await;
    assert_eq!(sim.mo(1).unwrap()["x_roll"], "R-1");
    assert_eq!(notes(sim, 1).len(), 3);
    f.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_odoo_refuses_parks_that_mos_results_with_odoos_words_while_the_others_go_up() {
    // Given results mapped into the site's x_roll, which a constraint of the site guards
    let f = Floor::with(
        2,
        |sim| sim.add_custom_field("x_roll"),
        |odoo| odoo.push.fields.roll_number = Some("x_roll".into()),
    )
    .await;
    let (sim, panel) = (&f.sim, &f.panel);
    let display = f.display().await;

    // When MO 1 runs with a roll the constraint refuses, and MO 2 is registered with another
    sim.constrain("x_roll", json!("R-1"), "Roll numbers look like R-0000.");
    run_an_mo(panel, 1, "refused").await;
    let reply = panel
        .send(
            "register-mo",
            json!({"request_id": "fine-2", "operator": "ana", "mo": 2, "auth_first": "000300", "roll_number": "R-0002"}),
        )
        .await;
    assert_eq!(reply["ok"], true, "{reply}");

    // Then MO 1 waits with Odoo's reason, all three of its results behind it, while MO 2's
    // result goes up in full
    let shown = display
        .wait(&format!("{PREFIX}/mo/1"), "MO 1 parked", |v| {
            v["pending_upload"]["parked"].is_string()
        })
        .await;
    let reason = shown["pending_upload"]["parked"].as_str().unwrap();
    assert!(
        reason.contains("odoo.exceptions.ValidationError") && reason.contains("Roll numbers look like R-0000."),
        "{reason}"
    );
    assert_eq!(shown["pending_upload"]["count"], 3, "{shown}");
    assert_eq!(
        notes(sim, 1).len(),
        1,
        "the first note went up before the refused write"
    );
    wait_until("MO 2 in Odoo", Duration::from_secs(10), || {
        sim.mo(2).unwrap()["x_roll"] == "R-0002"
    })
    .await;
    assert_eq!(notes(sim, 2).len(), 1);
    display
        .wait(&format!("{PREFIX}/mo/2"), "MO 2 all up", |v| {
            v["pending_upload"].is_null()
        })
        .await;
    f.agent.stop().await;
}
