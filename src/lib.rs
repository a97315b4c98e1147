//! linegate: the shop-floor gateway agent.
pub mod app;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod demo;
pub mod http;
pub mod mo;
pub mod mqtt;
pub mod odoo;
pub mod shutdown;
pub mod sim;
pub mod status;
pub mod store;
pub mod sync;
