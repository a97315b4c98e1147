//! Simulated upstream servers that behave like the real ones on the wire, so `linegate demo` and
//! the integration tests exercise the production clients unchanged.
pub mod mosquitto;
pub mod odoo;
pub mod sicantik;
