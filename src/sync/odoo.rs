//! One Odoo sync run: pages of MOs changed since the cursor, each page with its transfers in one
//! request and in one SQLite transaction; and, when due, a full reconcile of ids and write dates
//! that repairs what the incremental sync cannot see (MOs that left the domain, changes that
//! committed too late for the overlap, transfers created after their MO), then the retention
//! purge.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Report, SyncError};
use crate::changes::{self, Change};
use crate::clock;
use crate::config::{InstanceFields, OdooConfig};
use crate::mo::UpstreamMo;
use crate::odoo::mapping::WriteStamp;
use crate::odoo::{mapping, FieldPlan, OdooClient, OdooError};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};

pub(crate) const SOURCE: &str = crate::uplink::ODOO;

/// `write_date` is the transaction's start: a long transaction can commit rows stamped before
/// ones already seen. Every incremental run looks this far back and dedupes what it sees again.
pub(crate) const OVERLAP: i64 = 60;

const CURSOR: &str = "cursor";
/// Odoo's time (Odoo's form) before which no MO can still appear in the incremental query: the
/// latest complete pass began after Odoo said it was OVERLAP later than this.
const SETTLED: &str = "settled";
/// When the latest full reconcile began (RFC 3339), so that a new process knows.
const RECONCILED: &str = "reconciled_at";
/// `settled` is stored at most this often (and with each reconcile): an idle interval writes
/// nothing, and a new process starts at most this far behind.
const SETTLED_SAVED_EVERY: Duration = Duration::from_secs(3600);

pub struct OdooSync {
    client: OdooClient,
    store: Store,
    domain: Value,
    instance: InstanceFields,
    page_size: u32,
    reconcile_interval: Duration,
    /// When the latest reconcile began (Unix, the gateway's clock); read from the store on the
    /// first run, so that `sync --once` does not reconcile each time.
    last_reconcile: Option<i64>,
    /// The incremental query's floor as the latest complete pass left it (Odoo's form), and
    /// when it was last stored.
    settled: Option<String>,
    settled_saved: Option<Instant>,
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
            settled: None,
            settled_saved: None,
            changes: None,
            retention,
            plan: None,
        })
    }

    /// Tells `changes` about every MO a run writes.
    pub(crate) fn notify(&mut self, changes: changes::Sender) {
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
        // Every MO this run read from Odoo, with its transfers: the reconcile need not ask again.
        let mut fetched = HashSet::new();
        self.incremental(&plan, shutdown, report, &mut fetched).await?;
        if self.last_reconcile.is_none() {
            let stored = self.state(RECONCILED).await?;
            self.last_reconcile = stored.as_deref().and_then(clock::parse_rfc3339);
        }
        let now = clock::now_unix();
        let interval = i64::try_from(self.reconcile_interval.as_secs()).unwrap_or(i64::MAX);
        // (one dated in the future was dated by a clock since put back: due)
        let due = self
            .last_reconcile
            .is_none_or(|at| now.saturating_sub(at) >= interval || at > now.saturating_add(60));
        if due && !shutdown.is_set() {
            self.reconcile(&plan, shutdown, report, &mut fetched).await?;
            self.last_reconcile = Some(now);
            // For a new process (`sync --once`): not worth a write when every run reconciles.
            if interval > 0 {
                self.save_state(&[(RECONCILED, clock::format_rfc3339(now))]).await?;
            }
        }
        Ok(())
    }

    async fn state(&self, key: &'static str) -> Result<Option<String>, SyncError> {
        Ok(self.store.call(move |c| store::sync::get_state(c, SOURCE, key)).await?)
    }

    async fn incremental(
        &mut self,
        plan: &FieldPlan,
        shutdown: &Shutdown,
        report: &mut Report,
        fetched: &mut HashSet<i64>,
    ) -> Result<(), SyncError> {
        // Odoo's time at an answer that came before this pass's first query: once the pass is
        // complete, no MO stamped OVERLAP before it can still commit (see OVERLAP). The `Date`
        // may come from another clock than write_date's (a proxy's, a host's): no later than
        // the gateway's own, so that a miss would take both clocks ahead of Odoo's database.
        let settles = self
            .client
            .server_time()
            .map(|t| clock::format_odoo(t.min(clock::now_unix()) - OVERLAP));
        let saved = self.state(CURSOR).await?.as_deref().and_then(Position::parse);
        if self.settled.is_none() {
            self.settled = self.state(SETTLED).await?;
        }
        // Start a little before the cursor (see OVERLAP), or where the latest complete pass
        // left nothing more to come, whichever is later; unchanged rows seen again cost no write.
        let mut position = saved.as_ref().map(|p| {
            let back = clock::parse_odoo(&p.write_date).map_or(0, |t| t - OVERLAP);
            let settled = self.settled.as_deref().and_then(clock::parse_odoo).unwrap_or(0);
            Position {
                write_date: clock::format_odoo(back.max(settled)),
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
            fetched.extend(mos.iter().map(|m| m.id));
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
        // Complete: the next pass need not look behind `settles`. Kept in memory; stored now
        // and then (and with each reconcile) for a new process, so an idle interval writes
        // nothing.
        // (the latest, not the highest: a clock put back makes it lower, which only reads more)
        if settles.is_some() {
            self.settled = settles;
        }
        if self.settled_saved.is_none_or(|at| at.elapsed() >= SETTLED_SAVED_EVERY) {
            self.save_state(&[]).await?;
        }
        Ok(())
    }

    /// Stores the floor the incremental pass reached, with `more`.
    async fn save_state(&mut self, more: &[(&'static str, String)]) -> Result<(), SyncError> {
        let mut state: Vec<(&str, &str, String)> = more.iter().map(|(k, v)| (SOURCE, *k, v.clone())).collect();
        if let Some(settled) = &self.settled {
            state.push((SOURCE, SETTLED, settled.clone()));
        }
        if !state.is_empty() {
            self.store.call(move |c| store::sync::set_states(c, &state)).await?;
        }
        self.settled_saved = Some(Instant::now());
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
        self.find_transfers(&mut mos).await?;
        Ok(mos)
    }

    /// Sets the transfer of every MO in `mos` that has one, with one `stock.picking` request.
    async fn find_transfers(&self, mos: &mut [UpstreamMo]) -> Result<(), SyncError> {
        if let Some(domain) = mapping::picking_domain(mos) {
            let fields = ["id", "name", "origin"].map(String::from);
            let pickings = self
                .client
                .search_read("stock.picking", &domain, &fields, "id desc", None)
                .await?;
            mapping::assign_transfers(mos, &mapping::pickings(&pickings));
        }
        Ok(())
    }

    /// Compares every id and write date in the domain with the store: fetches what the store
    /// lacks or holds at another write date (a change committed too late for [`OVERLAP`]),
    /// records the final state of MOs that left and marks them gone, links transfers created
    /// since, then purges old gone MOs.
    async fn reconcile(
        &self,
        plan: &FieldPlan,
        shutdown: &Shutdown,
        report: &mut Report,
        fetched: &mut HashSet<i64>,
    ) -> Result<(), SyncError> {
        let upstream = self.upstream_write_dates().await?;
        let stored: HashMap<i64, String> = self
            .store
            .call(|c| Ok(store::mo::present_write_dates(c)?.into_iter().collect()))
            .await?;
        let stale: Vec<i64> = upstream
            .iter()
            .filter(|(id, write_date)| stored.get(id) != Some(write_date))
            .map(|(id, _)| *id)
            .collect();
        self.fetch_ids(plan, &stale, shutdown, report, fetched).await?;
        let present: HashSet<i64> = upstream.into_iter().map(|(id, _)| id).collect();
        let mut left: Vec<i64> = stored.into_keys().filter(|id| !present.contains(id)).collect();
        left.sort_unstable();
        // Their last state (done, cancelled) is worth showing; deleted ones simply do not come back.
        self.fetch_ids(plan, &left, shutdown, report, fetched).await?;
        self.link_transfers(&present, fetched, shutdown, report).await?;
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

    /// (id, write_date) of every MO in the domain, in one request: two short fields per MO, so
    /// even thousands of MOs make a small answer.
    async fn upstream_write_dates(&self) -> Result<Vec<(i64, String)>, SyncError> {
        let fields = ["id", "write_date"].map(String::from);
        let stamps: Vec<WriteStamp> = self
            .client
            .search_read_as("mrp.production", &self.domain, &fields, "id asc", None)
            .await?;
        Ok(stamps
            .into_iter()
            .map(|s| (s.id, s.write_date.unwrap_or_default()))
            .collect())
    }

    /// A transfer created after its MO was synced changes nothing on the MO, so no sync reads
    /// the MO again: look it up for present MOs that have none and were not read this run, one
    /// `stock.picking` request per page, and write only the MOs that got one.
    async fn link_transfers(
        &self,
        present: &HashSet<i64>,
        fetched: &HashSet<i64>,
        shutdown: &Shutdown,
        report: &mut Report,
    ) -> Result<(), SyncError> {
        let mut ids = self.store.call(|c| store::mo::present_without_transfer(c)).await?;
        ids.retain(|id| present.contains(id) && !fetched.contains(id));
        for chunk in ids.chunks(self.page_size as usize) {
            if shutdown.is_set() {
                return Err(SyncError::Cancelled);
            }
            let chunk = chunk.to_vec();
            let mut mos: Vec<UpstreamMo> = self
                .store
                .call(move |c| {
                    Ok(store::mo::get_many(c, &chunk)?
                        .into_iter()
                        .map(|r| r.upstream)
                        .collect())
                })
                .await?;
            self.find_transfers(&mut mos).await?;
            mos.retain(|m| m.transfer_id.is_some());
            if mos.is_empty() {
                continue;
            }
            self.store_page(mos, report).await?;
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
        fetched: &mut HashSet<i64>,
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
            let mos = self.with_transfers(plan, &records).await?;
            fetched.extend(mos.iter().map(|m| m.id));
            self.apply(mos, report).await?;
        }
        Ok(())
    }

    async fn apply(&self, mos: Vec<UpstreamMo>, report: &mut Report) -> Result<(), SyncError> {
        report.fetched += mos.len() as u64;
        self.store_page(mos, report).await
    }

    /// Writes MOs in one transaction and tells the displays which changed.
    async fn store_page(&self, mos: Vec<UpstreamMo>, report: &mut Report) -> Result<(), SyncError> {
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

impl super::scheduler::Source for OdooSync {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn progress(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.client.request_counter()
    }

    fn run(&mut self, shutdown: &Shutdown) -> impl std::future::Future<Output = Result<Report, SyncError>> + Send {
        OdooSync::run(self, shutdown)
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
