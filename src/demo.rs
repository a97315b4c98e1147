//! `linegate demo`: the agent against a simulated Odoo and SICANTIK (the protocol-faithful
//! servers the tests use), with a local database and an MQTT broker on loopback — the system's
//! mosquitto when installed, else one in this process — while a simulated planner works in
//! Odoo: so a newcomer sees it all flow with one command and nothing installed.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, OdooConfig, StoreConfig};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use linegate_sim::odoo::{NewMo, SimOdoo, SimOdooConfig};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The demo's database (created if missing).
    #[arg(long, default_value = "linegate-demo.db")]
    pub(crate) db: PathBuf,
    /// MOs the simulated Odoo starts with.
    #[arg(long, default_value_t = 40)]
    pub(crate) mos: usize,
    /// Seconds between syncs.
    #[arg(long, default_value_t = 5)]
    pub(crate) interval: u64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
    /// The MQTT broker for the displays and panels: `auto` is mosquitto when installed, else
    /// `embedded` (one in this process, on loopback).
    #[arg(long, value_enum, default_value_t = BrokerChoice::Auto)]
    pub(crate) broker: BrokerChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerChoice {
    Auto,
    Mosquitto,
    Embedded,
}

/// The demo's broker, kept for as long as the demo runs.
enum Broker {
    Mosquitto(linegate_sim::mosquitto::Mosquitto),
    Embedded(linegate_sim::broker::EmbeddedBroker),
}

impl Broker {
    async fn start(choice: BrokerChoice) -> anyhow::Result<Broker> {
        use linegate_sim::broker::EmbeddedBroker;
        // It waits for the broker to listen: off the runtime's threads.
        let mosquitto = || async {
            tokio::task::spawn_blocking(linegate_sim::mosquitto::Mosquitto::start)
                .await
                .map_err(std::io::Error::other)?
        };
        Ok(match choice {
            BrokerChoice::Mosquitto => Broker::Mosquitto(mosquitto().await?),
            BrokerChoice::Embedded => Broker::Embedded(EmbeddedBroker::start().await?),
            BrokerChoice::Auto => match mosquitto().await {
                Ok(broker) => Broker::Mosquitto(broker),
                Err(e) => {
                    println!("mosquitto: {e}; the demo brings its own broker");
                    Broker::Embedded(EmbeddedBroker::start().await?)
                }
            },
        })
    }

    fn port(&self) -> u16 {
        match self {
            Broker::Mosquitto(b) => b.port,
            Broker::Embedded(b) => b.port,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Broker::Mosquitto(_) => "mosquitto",
            Broker::Embedded(_) => "embedded MQTT broker (no mosquitto needed)",
        }
    }
}

pub async fn run(args: DemoArgs, shutdown: Shutdown) -> u8 {
    match demo(args, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("linegate demo: {e}");
            crate::cli::EXIT_FAILURE
        }
    }
}

async fn demo(args: DemoArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let sim = SimOdoo::start(SimOdooConfig {
        latency: Duration::from_millis(20),
        ..Default::default()
    })
    .await?;
    sim.seed(args.mos);
    println!(
        "simulated Odoo {} serving {} MOs at {}",
        sim.config().version,
        args.mos,
        sim.url()
    );

    // A regency's licensing office too: 200 permits, its expiry dates fetched at 10 requests/s.
    let permits = linegate_sim::sicantik::SimSicantik::start(Default::default()).await?;
    permits.seed(200);
    println!("simulated SICANTIK serving 200 permits at {}", permits.url());
    let mut sicantik = crate::config::SicantikConfig::new(permits.url());
    sicantik.list_interval = Duration::from_secs(args.interval.max(1) * 6);
    sicantik.expiry_interval = sicantik.list_interval;

    let mut odoo = OdooConfig::with_api_key(sim.url(), sim.config().database.clone(), sim.config().api_key.clone());
    odoo.sync_interval = Duration::from_secs(args.interval.max(1));
    odoo.reconcile_interval = Duration::from_secs(args.interval.max(1) * 3);
    let config = Config {
        store: StoreConfig {
            path: args.db.clone(),
            ..Default::default()
        },
        odoo: Some(odoo),
        mqtt: None,
        sicantik: Some(sicantik),
        web: None,
        log: Default::default(),
    };
    let mut config = config;
    let broker = Broker::start(args.broker).await?;
    let port = broker.port();
    let mut mqtt = crate::config::MqttConfig::new("127.0.0.1", port, "demo");
    mqtt.command_max_age = Duration::from_secs(300);
    let prefix = mqtt.topic_prefix();
    config.mqtt = Some(mqtt);
    // A config file for the other commands, so `linegate status` can look at the demo's store,
    // `linegate watch` at its displays, and `linegate send` act as a panel.
    let config_path = args.db.with_extension("toml");
    let mut toml = format!(
        "[store]\npath = {:?}\n",
        std::path::absolute(&args.db)
            .unwrap_or(args.db.clone())
            .display()
            .to_string()
    );
    toml.push_str(&format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ngateway_id = \"demo\"\n"
    ));
    std::fs::write(&config_path, toml)?;
    // This very binary and file, absolute and quoted, so the lines paste into any terminal.
    let me = std::env::current_exe().unwrap_or_else(|_| "linegate".into());
    let config_shown = std::path::absolute(&config_path).unwrap_or(config_path.clone());
    let me = format!("{} --config {}", quoted(&me), quoted(&config_shown));
    println!("{} on 127.0.0.1:{port}", broker.name());
    println!("database {}", args.db.display());
    println!();
    println!("In another terminal, what the line displays show, live:");
    println!("  {me} watch");
    println!("act as a panel at station ws-1 (register MO 1, then start it):");
    println!(
        "  {me} send ws-1 register-mo '{{\"operator\":\"ana\",\"mo\":1,\"auth_first\":\"000100\",\"roll_number\":\"R-1\",\"line\":\"L1\"}}'"
    );
    println!("  {me} send ws-1 start-production '{{\"operator\":\"ana\",\"mo\":1,\"leader_id\":\"007\"}}'");
    println!("and look into the store: {me} status");
    println!("The same with mosquitto's clients, on the raw topics:");
    println!("  mosquitto_sub -h 127.0.0.1 -p {port} -t '{prefix}/#' -v");
    println!(
        "  mosquitto_pub -h 127.0.0.1 -p {port} -t {prefix}/cmd/ws-1/register-mo -m '{{\"request_id\":\"d1\",\"operator\":\"ana\",\"mo\":1,\"auth_first\":\"000100\",\"roll_number\":\"R-1\",\"line\":\"L1\"}}'"
    );
    println!(
        "  mosquitto_pub -h 127.0.0.1 -p {port} -t {prefix}/cmd/ws-1/start-production -m '{{\"request_id\":\"d2\",\"operator\":\"ana\",\"mo\":1,\"leader_id\":\"007\"}}'"
    );
    println!("  (permits expiring soon: {prefix}/permits/expiring; reminders: {prefix}/permits/reminder)");
    println!();

    // The floor's screens: two stations on two lines, on port 8080 when it is free; on this
    // machine only (its broker takes any password).
    let mut web_config = config.clone();
    let listen = std::net::TcpListener::bind("127.0.0.1:8080")
        .map(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut web = crate::config::WebConfig::new(listen, args.db.with_extension("web"));
    web.add_station("ws-1", "L1");
    web.add_station("ws-2", "L2");
    web_config.web = Some(web);
    let (web_trigger, web_shutdown) = crate::shutdown::channel();
    let (bound_tx, bound) = tokio::sync::oneshot::channel();
    let web = tokio::spawn(async move { crate::web::run(&web_config, web_shutdown, Some(bound_tx)).await });
    let at = match bound.await {
        Ok(bound) => bound.addr,
        Err(_) => anyhow::bail!("the screens did not start: {:?}", web.await),
    };
    let url = format!("http://{at}");
    println!("The floor's screens, in a browser:");
    println!("  {url}/              the gateway, its lines and stations, permits expiring");
    println!("  {url}/line/L1       line L1's display (for a TV)");
    println!("  {url}/panel/ws-1    station ws-1's panel (this demo's broker takes any password;");
    println!("                      a plant's broker checks the station's own: docs/web.md)");
    println!();

    let (trigger, agent_shutdown) = crate::shutdown::channel();
    let agent = tokio::spawn(crate::app::run(config, agent_shutdown));
    let store = Store::open(&args.db)?;
    let deadline = args
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut step = 0u64;
    loop {
        let tick = tokio::time::sleep(Duration::from_secs(args.interval.max(1)));
        tokio::select! {
            _ = tick => {}
            _ = shutdown.wait() => break,
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
        }
        step += 1;
        plan_something(&sim, step);
        let status = store.call(|c| store::sync::status(c)).await?;
        let states: Vec<String> = status.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!(
            "store: {} MOs ({}), {} gone",
            status.mos,
            states.join(", "),
            status.gone
        );
    }
    trigger.fire();
    agent.await??;
    web_trigger.fire();
    web.await??;
    if let Broker::Embedded(broker) = broker {
        broker.stop().await;
    }
    Ok(())
}

/// `path` as a POSIX shell reads it back: bare when it is plain, else in single quotes.
fn quoted(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What a planner does in Odoo between two syncs, in turn.
fn plan_something(sim: &SimOdoo, step: u64) {
    let ids: Vec<i64> = sim.mo_ids();
    let pick = |k: u64| ids.get((step * 7 + k) as usize % ids.len().max(1)).copied();
    match step % 4 {
        1 => {
            let id = sim.create_mo(NewMo {
                qty: 10.0 + step as f64,
                ..Default::default()
            });
            println!("odoo:  planner created MO {id}");
        }
        2 => {
            if let Some(id) = pick(0) {
                sim.set_state(id, "progress");
                println!("odoo:  MO {id} started in Odoo");
            }
        }
        3 => {
            if let Some(id) = pick(1) {
                let new = sim.backorder(id, 1.0);
                println!("odoo:  MO {id} partly done: backorder {new} created, {id} renamed");
            }
        }
        _ => {
            if let Some(id) = pick(2) {
                sim.set_state(id, "cancel");
                println!("odoo:  MO {id} cancelled (it will show as gone after the next reconcile)");
            }
        }
    }
}
