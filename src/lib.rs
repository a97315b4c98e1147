//! linegate: the shop-floor gateway agent.
pub mod app;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod http;
pub mod mo;
pub mod odoo;
pub mod shutdown;
pub mod sim;
pub mod status;
pub mod store;
pub mod sync;
