//! The outbox: every durable outgoing event, and the tasks that deliver it. A message is queued
//! in the same transaction as what causes it (a permit reminder today: `store::permit`), kept in
//! SQLite until its receiver has it, and delivered oldest first per channel:
//!
//! - [`mqtt`]: reminder events on the broker (`…/permits/reminder`);
//! - [`webhook`]: the same reminders POSTed to a webhook, retried with backoff while it is down;
//! - [`odoo`]: operator results to Odoo, queued by the command that made them, in order per
//!   MO, exactly once.

pub(crate) mod mqtt;
pub(crate) mod odoo;
pub mod webhook;
