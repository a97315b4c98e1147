//! linegate: the shop-floor gateway agent.
//!
//! # Layout
//!
//! Rooms by layer, top to bottom. A room uses rooms on its own layer or below, never above,
//! never in a circle (`tests/layers.rs` holds the code to this table).
//!
//! | layer    | rooms                                                                    |
//! |----------|--------------------------------------------------------------------------|
//! | binary   | cli, app, demo                                                           |
//! | tasks    | mqtt, sync, outbox, health, housekeeping, watch, panel, web              |
//! | rules    | command                                                                  |
//! | adapters | store, odoo, sicantik                                                    |
//! | domain   | mo, permit                                                               |
//! | leaves   | config, clock, backoff, heartbeat, uplink, shutdown, changes, http, lock, wear |
//!
//! - **binary**: `cli` runs each command of the command line, `app` wires the agent's tasks
//!   (reading it tells the architecture), `demo` runs it against the simulators (the `demo`
//!   feature; not in the packages).
//! - **tasks**: `mqtt` (the broker link, the displays' publisher, the panels' command server),
//!   `sync` (Odoo and SICANTIK runs and their scheduler), `outbox` (every durable outgoing
//!   event), `health` (systemd's READY, WATCHDOG and STATUS), `housekeeping` (pruning the
//!   logs), `watch` (`linegate watch`: the displays' view, as an MQTT client like them),
//!   `panel` (`linegate send`: one command as a station's panel sends it, and its reply),
//!   `web` (`linegate web`: the floor's screens in a browser, as an MQTT client like `watch`
//!   and `send`; its own process, never the store).
//! - **rules**: `command`, the floor's rules as pure functions (parse, decide, reply).
//! - **adapters**: `store` (all SQL; the only writer of protected columns is a command's own
//!   transaction), the `odoo` and `sicantik` HTTP clients.
//! - **domain**: what an MO (`mo`, its phases and hologram codes) and a permit (`permit`, its
//!   expiry and reminders) are, in the agent's own types.
//! - **leaves**: vocabulary several rooms share, depending on nothing of ours but each other.

pub mod app;
mod backoff;
mod changes;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
mod health;
pub mod heartbeat;
pub mod housekeeping;
mod http;
pub mod lock;
pub mod mo;
mod mqtt;
mod odoo;
pub mod outbox;
pub mod panel;
mod permit;
pub mod shutdown;
mod sicantik;
pub mod store;
pub mod sync;
pub mod uplink;
pub mod watch;
pub mod wear;
pub mod web;
