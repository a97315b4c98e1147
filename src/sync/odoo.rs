//! One Odoo sync run: pages of MOs changed since the cursor, each page with its transfers in one
//! request and in one SQLite transaction; and, when due, a full reconcile of ids that notices
//! MOs that left the domain, then the retention purge.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Report, SyncError};
use crate::changes::{self, Change};
use crate::clock;
use crate::config::{InstanceFields, OdooConfig};
use crate::mo::UpstreamMo;
use crate::odoo::{mapping, FieldPlan, OdooClient, OdooError};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};

pub const SOURCE: &str = "odoo";

/// `write_date` is the transaction's start: a long transaction can commit rows stamped before
/// ones already seen. Every incremental run looks this far back and dedupes what it sees again.
pub const OVERLAP: i64 = 60;

const CURSOR: &str = "cursor";

pub struct OdooSync {
    client: OdooClient,
    store: Store,
    domain: Value,
    instance: InstanceFields,
    page_size: u32,
    reconcile_interval: Duration,
    /// When this process last reconciled. Kept in memory, not in the store, so that an idle
    /// run writes nothing; a restarted agent (or `sync --once`) reconciles on its first run.
    last_reconcile: Option<Instant>,
    retention: Duration,
    /// Learned from the server on the first run; dropped after a failure so it is asked again.
    plan: Option<FieldPlan>,
    /// To the displays: which MOs each page changed. None when nothing shows them.
    changes: Option<changes::Sender>,
}

/// Where the incremental sync stands: the newest (write_date, id) applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    write_date: String,
    id: i64,
}

impl Position {
    fn parse(text: &str) -> Option<Position> {
        let (write_date, id) = text.rsplit_once('|')?;
        Some(Position {
            write_date: write_date.to_string(),
            id: id.parse().ok()?,
        })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.write_date, self.id)
    }

    /// Rows after this one in `write_date asc, id asc` order: paging by key, not by offset, so
    /// a row that changes while we page cannot shift another one out of sight.
    fn after(&self) -> Value {
        json!([
            "|",
            ["write_date", ">", self.write_date],
            "&",
            ["write_date", "=", self.write_date],
            ["id", ">", self.id]
        ])
    }
}

impl OdooSync {
    pub fn new(config: &OdooConfig, store: Store, retention: Duration) -> Result<OdooSync, crate::config::ConfigError> {
        Ok(OdooSync {
            client: OdooClient::new(config)?,
            store,
            domain: config.domain()?,
            instance: config.fields.clone(),
            page_size: config.page_size,
            reconcile_interval: config.reconcile_interval,
            last_reconcile: None,
            changes: None,
            retention,
            plan: None,
        })
    }

    /// Tells `changes` about every MO a run writes.
    pub fn notify(&mut self, changes: changes::Sender) {
        self.changes = Some(changes);
    }

    pub fn client(&self) -> &OdooClient {
        &self.client
    }

    /// One run. Stops between pages when `shutdown` fires; what was committed stays committed.
    pub async fn run(&mut self, shutdown: &Shutdown) -> Result<Report, SyncError> {
        let started = Instant::now();
        let requests_before = self.client.requests();
        let mut report = Report::default();
        let result = self.run_inner(shutdown, &mut report).await;
        report.requests = self.client.requests() - requests_before;
        report.duration = started.elapsed();
        if result.is_err() {
            self.plan = None;
        }
        match result {
            Ok(()) => Ok(report),
            Err(SyncError::Odoo { error, .. }) => Err(SyncError::Odoo {
                error,
                partial: Box::new(report),
            }),
            Err(other) => Err(other),
        }
    }

    async fn run_inner(&mut self, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        let plan = match &self.plan {
            Some(plan) => plan.clone(),
            None => {
                let plan = self.client.field_plan(&self.instance).await.map_err(SyncError::from)?;
                self.plan = Some(plan.clone());
                plan
            }
        };
        self.incremental(&plan, shutdown, report).await?;
        let due = self
            .last_reconcile
            .is_none_or(|at| at.elapsed() >= self.reconcile_interval);
        if due && !shutdown.is_set() {
            let started = Instant::now();
            self.reconcile(&plan, shutdown, report).await?;
            self.last_reconcile = Some(started);
        }
        Ok(())
    }

    async fn state(&self, key: &'static str) -> Result<Option<String>, SyncError> {
        Ok(self.store.call(move |c| store::sync::get_state(c, SOURCE, key)).await?)
    }

    async fn incremental(&self, plan: &FieldPlan, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        let saved = self.state(CURSOR).await?.as_deref().and_then(Position::parse);
        // Start a little before the cursor (see OVERLAP); unchanged rows seen again cost no write.
        let mut position = saved.as_ref().map(|p| {
            let back = clock::parse_odoo(&p.write_date).map_or(0, |t| t - OVERLAP);
            Position {
                write_date: clock::format_odoo(back),
                id: 0,
            }
        });
        let mut newest = saved;
        let fields = plan.fields();
        loop {
            if shutdown.is_set() {
                return Err(SyncError::Cancelled);
            }
            let mut domain = self.domain.as_array().cloned().unwrap_or_default();
            if let Some(p) = &position {
                domain.extend(p.after().as_array().cloned().unwrap_or_default());
            }
            let records = self
                .client
                .search_read(
                    "mrp.production",
                    &Value::Array(domain),
                    &fields,
                    "write_date asc, id asc",
                    Some(self.page_size),
                )
                .await?;
            let full_page = records.len() as u32 >= self.page_size;
            let mos = self.with_transfers(plan, &records).await?;
            let Some(last) = mos.last() else { break };
            let last = Position {
                write_date: last.write_date.clone(),
                id: last.id,
            };
            newest = newest.max(Some(last.clone()));
            let cursor = newest.as_ref().map(Position::encode).unwrap_or_default();
            report.fetched += mos.len() as u64;
            let counts = self
                .store
                .call(move |c| {
                    let now = clock::format_rfc3339(clock::now_unix());
                    store::mo::apply_page(c, &mos, &[(SOURCE, CURSOR, cursor)], &now)
                })
                .await?;
            self.tell_changed(&counts.changed);
            report.counts += counts;
            position = Some(last);
            if !full_page {
                break;
            }
        }
        Ok(())
    }

    /// Maps a page of records and finds their transfers with one request.
    async fn with_transfers(
        &self,
        plan: &FieldPlan,
        records: &[serde_json::Map<String, Value>],
    ) -> Result<Vec<UpstreamMo>, SyncError> {
        let mut mos = records
            .iter()
            .map(|r| plan.upstream_mo(r))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(domain) = mapping::picking_domain(&mos) {
            let fields = ["id", "name", "origin"].map(String::from);
            let pickings = self
                .client
                .search_read("stock.picking", &domain, &fields, "id desc", None)
                .await?;
            mapping::assign_transfers(&mut mos, &mapping::pickings(&pickings));
        }
        Ok(mos)
    }

    /// Compares every id in the domain with the store: fetches what the store lacks, records the
    /// final state of MOs that left and marks them gone, then purges old gone ones.
    async fn reconcile(&self, plan: &FieldPlan, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        let upstream = self.client.search("mrp.production", &self.domain).await?;
        let ids = upstream.clone();
        let missing = self.store.call(move |c| store::mo::not_present(c, &ids)).await?;
        self.fetch_ids(plan, &missing, shutdown, report).await?;
        let present: HashSet<i64> = upstream.into_iter().collect();
        let known = present.clone();
        let left = self
            .store
            .call(move |c| {
                Ok(store::mo::all_present_ids(c)?
                    .into_iter()
                    .filter(|id| !known.contains(id))
                    .collect::<Vec<_>>())
            })
            .await?;
        // Their last state (done, cancelled) is worth showing; deleted ones simply do not come back.
        self.fetch_ids(plan, &left, shutdown, report).await?;
        let retention = self.retention;
        let (gone, purged) = self
            .store
            .call(move |c| {
                let now_unix = clock::now_unix();
                let now = clock::format_rfc3339(now_unix);
                let gone = store::mo::mark_gone(c, &present, &now)?;
                let cutoff = clock::format_rfc3339(now_unix - retention.as_secs() as i64);
                let purged = store::mo::purge(c, &cutoff)?;
                Ok((gone, purged))
            })
            .await?;
        report.gone += gone.len() as u64;
        report.purged += purged.len() as u64;
        self.tell_changed(&gone);
        if !purged.is_empty() {
            changes::tell(&self.changes, Change::Purged(purged));
        }
        if !gone.is_empty() {
            tracing::info!(count = gone.len(), ids = ?gone, "MOs left the Odoo domain; kept as gone");
        }
        Ok(())
    }

    /// Fetches MOs by id, a page at a time, and applies them.
    async fn fetch_ids(
        &self,
        plan: &FieldPlan,
        ids: &[i64],
        shutdown: &Shutdown,
        report: &mut Report,
    ) -> Result<(), SyncError> {
        let fields = plan.fields();
        for chunk in ids.chunks(self.page_size as usize) {
            if shutdown.is_set() {
                return Err(SyncError::Cancelled);
            }
            let domain = json!([["id", "in", chunk]]);
            let records = self
                .client
                .search_read("mrp.production", &domain, &fields, "id asc", None)
                .await?;
            self.apply(plan, &records, report).await?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        plan: &FieldPlan,
        records: &[serde_json::Map<String, Value>],
        report: &mut Report,
    ) -> Result<(), SyncError> {
        let mos = self.with_transfers(plan, records).await?;
        report.fetched += mos.len() as u64;
        let now = clock::format_rfc3339(clock::now_unix());
        let counts = self
            .store
            .call(move |c| store::mo::apply_page(c, &mos, &[], &now))
            .await?;
        self.tell_changed(&counts.changed);
        report.counts += counts;
        Ok(())
    }

    fn tell_changed(&self, ids: &[i64]) {
        if !ids.is_empty() {
            changes::tell(&self.changes, Change::Mos(ids.to_vec()));
        }
    }
}

impl From<OdooError> for SyncError {
    fn from(error: OdooError) -> Self {
        SyncError::Odoo {
            error,
            partial: Box::default(),
        }
    }
}
