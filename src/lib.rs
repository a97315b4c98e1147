//! linegate: the shop-floor gateway agent.
pub mod clock;
pub mod config;
pub mod mo;
pub mod store;
