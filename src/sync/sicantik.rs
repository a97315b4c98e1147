//! One SICANTIK run: permit types; the listing (from the newest, until a page holds nothing new,
//! or all of it when the full listing is due); expiry dates for the permits that lack one, as
//! many in flight as it takes to use the rate limit fully; then reminders, each produced once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{Report, SyncError};
use crate::backoff::Backoff;
use crate::changes::{self, Change};
use crate::clock;
use crate::config::{ConfigError, SicantikConfig};
use crate::permit::{expiry, reminder_payload, Detail, Listed, PermitType, Reminder};
use crate::shutdown::Shutdown;
use crate::sicantik::{normalise_phone, Row, SicantikClient, SicantikError};
use crate::store::Store;
use crate::store::{outbox, permit};

pub(crate) const SOURCE: &str = crate::uplink::SICANTIK;

/// Permits close to expiry are checked again this often (a renewal shows in the detail).
const RECHECK: Duration = Duration::from_secs(7 * 86_400);
/// A permit no endpoint knows is tried again after a day, doubling up to a week.
const UNKNOWN_RETRY: Backoff =
    Backoff::new(Duration::from_secs(86_400), Duration::from_secs(7 * 86_400)).with_jitter(0.0);
const PROGRESS_EVERY: u64 = 50;

pub struct SicantikSync {
    client: Arc<SicantikClient>,
    store: Store,
    page_size: u32,
    concurrency: usize,
    thresholds: Vec<u32>,
    zone: i64,
    full_listing_interval: Duration,
    /// When this process last read the whole listing; a restarted agent reads it once.
    last_full: Option<Instant>,
    /// Which channels reminders go out on (outbox rows are only made for those).
    pub(crate) mqtt: bool,
    pub webhook: bool,
    changes: Option<changes::Sender>,
    /// Rung when reminders were queued, for the outbox's delivery tasks.
    queued: Option<changes::Queued>,
    /// The wall clock (Unix seconds); tests move it to cross reminder thresholds.
    clock: Clock,
}

pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

impl SicantikSync {
    pub fn new(config: &SicantikConfig, store: Store) -> Result<SicantikSync, ConfigError> {
        let client = SicantikClient::new(config)?;
        Ok(SicantikSync {
            client: Arc::new(client),
            store,
            page_size: config.page_size,
            concurrency: config.concurrency,
            thresholds: config.reminder_days.clone(),
            zone: config.zone_offset()?,
            full_listing_interval: config.full_listing_interval,
            last_full: None,
            mqtt: false,
            webhook: config.webhook_url.is_some(),
            changes: None,
            queued: None,
            clock: Arc::new(clock::now_unix),
        })
    }

    /// The regency's date at `unix`, as `YYYY-MM-DD`.
    fn date(&self, unix: i64) -> String {
        clock::format_odoo(clock::today(unix, self.zone) * 86_400)[..10].to_string()
    }

    /// Replaces the wall clock (for tests that cross days).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Tells `changes` when permits or reminders changed, and rings `queued` when reminders
    /// were queued; they also go out over MQTT.
    pub(crate) fn notify(&mut self, changes: changes::Sender, queued: changes::Queued) {
        self.changes = Some(changes);
        self.queued = Some(queued);
        self.mqtt = true;
    }

    pub async fn run(&mut self, shutdown: &Shutdown) -> Result<Report, SyncError> {
        let started = Instant::now();
        let requests = self.client.requests();
        let mut report = Report::default();
        let result = self.run_inner(shutdown, &mut report).await;
        report.requests = self.client.requests() - requests;
        report.duration = started.elapsed();
        match result {
            Ok(()) => Ok(report),
            Err(SyncError::Sicantik { error, .. }) => Err(SyncError::Sicantik {
                error,
                partial: Box::new(report),
            }),
            Err(other) => Err(other),
        }
    }

    async fn run_inner(&mut self, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        match self.client.permit_types().await {
            Ok(rows) => {
                let types: Vec<PermitType> = rows.iter().filter_map(permit_type).collect();
                self.store.call(move |c| permit::upsert_types(c, &types)).await?;
            }
            // The same outage stops the listing below, after which reminders still run.
            Err(e) => tracing::debug!(source = SOURCE, error = %e, "permit types not fetched"),
        }
        let full = self
            .last_full
            .is_none_or(|at| at.elapsed() >= self.full_listing_interval);
        let listing_started = Instant::now();
        let fetched = async {
            self.list(full, shutdown, report).await?;
            if full {
                self.last_full = Some(listing_started);
            }
            self.details(shutdown, report).await
        }
        .await;
        // Reminders come from the expiry dates already stored: SICANTIK being down today is
        // no reason to miss one.
        if !matches!(fetched, Err(SyncError::Cancelled)) {
            report.reminders = self.reminders().await?;
        }
        if report.counts.inserted + report.counts.updated + report.details + report.reminders > 0 {
            changes::tell(&self.changes, Change::Permits);
        }
        if report.reminders > 0 {
            if let Some(queued) = &self.queued {
                queued.ring();
            }
        }
        fetched
    }

    /// Pages from the newest. The listing has no "changed since": an incremental run stops
    /// after a page with nothing new; rows that shifted between pages are caught by the full
    /// listing on its own interval.
    async fn list(&self, full: bool, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        let mut offset = 0;
        let mut junk = 0;
        while let Some(rows) = self.client.issued(self.page_size, offset).await? {
            if shutdown.is_set() {
                return Err(SyncError::Cancelled);
            }
            report.fetched += rows.len() as u64;
            let listed: Vec<Listed> = rows.iter().filter_map(listed).collect();
            junk += rows.len() - listed.len();
            let now = clock::format_rfc3339(clock::now_unix());
            let counts = self
                .store
                .call(move |c| permit::upsert_listed(c, &listed, &now))
                .await?;
            report.counts.inserted += counts.new;
            report.counts.updated += counts.changed;
            report.counts.unchanged += counts.unchanged;
            offset += rows.len() as u32;
            if !full && counts.new == 0 && counts.changed == 0 {
                break;
            }
        }
        if junk > 0 {
            tracing::debug!(source = SOURCE, junk, "listing rows without an applicant skipped");
        }
        Ok(())
    }

    /// Expiry dates for the permits that need one, `concurrency` requests in flight, all
    /// through the client's one rate limiter.
    async fn details(&self, shutdown: &Shutdown, report: &mut Report) -> Result<(), SyncError> {
        let now_unix = (self.clock)();
        let now = clock::format_rfc3339(now_unix);
        let soon = clock::format_odoo((clock::today(now_unix, self.zone) + 31) * 86_400)[..10].to_string();
        let recheck_before = clock::format_rfc3339(now_unix - RECHECK.as_secs() as i64);
        // Long-expired permits are not checked for a renewal again and again.
        let not_before = clock::format_odoo((clock::today(now_unix, self.zone) - 90) * 86_400)[..10].to_string();
        let due = self
            .store
            .call(move |c| permit::due_for_detail(c, &now, &soon, &recheck_before, &not_before))
            .await?;
        let total = due.len() as u64;
        if total == 0 {
            return Ok(());
        }
        tracing::info!(source = SOURCE, permits = total, "fetching permit details");
        let mut queue = due.into_iter();
        let mut running: JoinSet<(String, Result<Option<Row>, SicantikError>)> = JoinSet::new();
        let mut done = 0u64;
        let mut failure: Option<SicantikError> = None;
        loop {
            while failure.is_none() && !shutdown.is_set() && running.len() < self.concurrency {
                let Some((id, no_surat)) = queue.next() else { break };
                let client = self.client.clone();
                running.spawn(async move { (id, client.detail(&no_surat).await) });
            }
            let Some(joined) = running.join_next().await else { break };
            let (id, outcome) = joined.expect("detail tasks do not panic");
            match outcome.map(|found| found.map(|row| detail(&row))) {
                Ok(Some(detail)) if detail.expiry.is_some() => {
                    let unix = (self.clock)();
                    let (now, today) = (clock::format_rfc3339(unix), self.date(unix));
                    self.store
                        .call(move |c| permit::set_detail(c, &id, &detail, &now, &today))
                        .await?;
                    report.details += 1;
                }
                // Not found (permits without a company record are not, although they exist),
                // found without an expiry date, or an answer that cannot be read: keep the
                // permit, count it, try again on a later day (not every run).
                Ok(_) | Err(SicantikError::Parse { .. }) | Err(SicantikError::Status { .. }) => {
                    let unix = (self.clock)();
                    self.store
                        .call(move |c| {
                            let attempts = permit::detail_attempts(c, &id)?;
                            let wait = UNKNOWN_RETRY.delay(attempts.saturating_add(1)).as_secs() as i64;
                            let retry_at = clock::format_rfc3339(unix + wait);
                            permit::set_unknown(c, &id, &clock::format_rfc3339(unix), &retry_at)
                        })
                        .await?;
                    report.unknown += 1;
                }
                // The server is unreachable: the rest would fail the same way.
                Err(e) => {
                    if failure.is_none() {
                        failure = Some(e);
                    }
                }
            }
            done += 1;
            if done.is_multiple_of(PROGRESS_EVERY) || done == total {
                tracing::info!(source = SOURCE, done, total, "permit details");
                let progress = Change::Progress {
                    source: SOURCE,
                    step: "expiry",
                    done,
                    total,
                };
                changes::tell(&self.changes, progress);
            }
        }
        if let Some(error) = failure {
            return Err(error.into());
        }
        if shutdown.is_set() {
            return Err(SyncError::Cancelled);
        }
        Ok(())
    }

    /// Records every threshold reached since last time, and queues the ones to send.
    async fn reminders(&self) -> Result<u64, SyncError> {
        let thresholds = self.thresholds.clone();
        let zone = self.zone;
        let now_unix = (self.clock)();
        let channels: Vec<&'static str> = [(self.mqtt, outbox::MQTT), (self.webhook, outbox::WEBHOOK)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| c)
            .collect();
        Ok(self
            .store
            .call(move |c| {
                let today = clock::today(now_unix, zone);
                let recorded = permit::recorded_reminders(c)?;
                let mut reminders = Vec::new();
                for p in permit::with_expiry(c)? {
                    let Some(days_left) = expiry::days_left(&p.expiry, today) else {
                        continue;
                    };
                    let already = recorded
                        .get(&(p.pendaftaran_id.clone(), p.expiry.clone()))
                        .map_or(&[][..], Vec::as_slice);
                    // Days left on the day this expiry was learned (today, for older rows).
                    let learned = p
                        .learned
                        .as_deref()
                        .and_then(clock::parse_odoo)
                        .and_then(|day| expiry::days_left(&p.expiry, day.div_euclid(86_400)))
                        .unwrap_or(days_left);
                    for (threshold, sent) in expiry::due(days_left, learned, &thresholds, already) {
                        let payload = reminder_payload(&p, threshold, days_left).to_string();
                        reminders.push(Reminder {
                            pendaftaran_id: p.pendaftaran_id.clone(),
                            expiry: p.expiry.clone(),
                            threshold,
                            sent,
                            messages: channels.iter().map(|ch| (*ch, payload.clone())).collect(),
                        });
                    }
                }
                permit::record_reminders(c, &reminders, &clock::format_rfc3339(now_unix))
            })
            .await?)
    }
}

/// A field's text, trimmed; None when null or blank.
fn text(row: &Row, field: &str) -> Option<String> {
    row.get(field)
        .cloned()
        .flatten()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A listing row worth keeping: it has an id, a number and a real applicant.
fn listed(row: &Row) -> Option<Listed> {
    let field = |k: &str| text(row, k);
    let applicant = field("n_pemohon").filter(|a| a != "0")?;
    Some(Listed {
        pendaftaran_id: field("pendaftaran_id")?,
        no_surat: field("no_surat")?,
        applicant: Some(applicant),
        permit_name: field("n_perizinan"),
    })
}

fn detail(row: &Row) -> Detail {
    let field = |k: &str| text(row, k);
    // MySQL's zero date means none.
    let date = |k: &str| field(k).filter(|d| expiry::days_left(d, 0).is_some());
    Detail {
        expiry: date("d_berlaku_izin"),
        issued: date("tgl_surat"),
        received: date("d_terima_berkas"),
        phone: field("telp_pemohon").and_then(|p| normalise_phone(&p)),
        address: field("a_pemohon"),
        company: field("n_perusahaan"),
    }
}

/// A permit type from its catalogue row; one without an id or a name is no type.
fn permit_type(row: &Row) -> Option<PermitType> {
    const KNOWN: [&str; 4] = ["id", "jenis_perizinan", "kelompok_izin", "v_hari"];
    let field = |k: &str| row.get(k).cloned().flatten();
    let extra = row
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.clone(),
                v.clone().map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    Some(PermitType {
        id: field("id")?,
        name: field("jenis_perizinan")?,
        group: field("kelompok_izin"),
        sla_days: field("v_hari"),
        extra,
    })
}

impl super::scheduler::Source for SicantikSync {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn progress(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.client.request_counter()
    }

    fn run(&mut self, shutdown: &Shutdown) -> impl std::future::Future<Output = Result<Report, SyncError>> + Send {
        SicantikSync::run(self, shutdown)
    }
}

impl From<SicantikError> for SyncError {
    fn from(error: SicantikError) -> Self {
        SyncError::Sicantik {
            error,
            partial: Box::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(fields: &[(&str, Option<&str>)]) -> Row {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn listing_rows_need_an_id_a_number_and_a_real_applicant() {
        let good = row(&[
            ("pendaftaran_id", Some(" 17 ")),
            ("no_surat", Some("503/17/IMB/2026")),
            ("n_pemohon", Some("Budi")),
            ("n_perizinan", None),
        ]);
        assert_eq!(
            listed(&good),
            Some(Listed {
                pendaftaran_id: "17".into(),
                no_surat: "503/17/IMB/2026".into(),
                applicant: Some("Budi".into()),
                permit_name: None,
            })
        );
        for junk in [("n_pemohon", Some("0")), ("n_pemohon", Some("  ")), ("no_surat", None)] {
            let mut r = good.clone();
            r.insert(junk.0.into(), junk.1.map(str::to_string));
            assert_eq!(listed(&r), None, "{junk:?}");
        }
    }

    #[test]
    fn details_drop_mysqls_zero_dates_and_normalise_the_phone() {
        let d = detail(&row(&[
            ("d_berlaku_izin", Some("2027-03-01")),
            ("tgl_surat", Some("0000-00-00")),
            ("telp_pemohon", Some("0812-3456-789")),
            ("n_perusahaan", Some(" CV Maju ")),
        ]));
        assert_eq!(d.expiry.as_deref(), Some("2027-03-01"));
        assert_eq!(d.issued, None);
        assert_eq!(d.phone.as_deref(), Some("+628123456789"));
        assert_eq!(d.company.as_deref(), Some("CV Maju"));
    }

    #[test]
    fn a_permit_type_keeps_the_fields_linegate_does_not_use() {
        let t = permit_type(&row(&[
            ("id", Some("4")),
            ("jenis_perizinan", Some("IMB")),
            ("v_hari", Some("14")),
            ("c_show", Some("1")),
            ("keterangan", None),
        ]))
        .unwrap();
        assert_eq!(
            (t.id.as_str(), t.name.as_str(), t.sla_days.as_deref()),
            ("4", "IMB", Some("14"))
        );
        assert_eq!(
            t.extra,
            serde_json::json!({"c_show": "1", "keterangan": null})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(permit_type(&row(&[("id", Some("4"))])), None, "no name, no type");
    }

    proptest! {
        /// Whatever SICANTIK's rows hold, mapping them never panics, and what is kept is trimmed
        /// and non-empty.
        #[test]
        fn any_row_maps_or_is_skipped(fields in proptest::collection::btree_map(
            prop_oneof!["pendaftaran_id|no_surat|n_pemohon|n_perizinan|id|jenis_perizinan|d_berlaku_izin|telp_pemohon",
                        "[a-z_]{1,8}"],
            proptest::option::of("\\PC{0,20}"), 0..10)) {
            let row: Row = fields.into_iter().collect();
            if let Some(l) = listed(&row) {
                prop_assert!(!l.pendaftaran_id.is_empty() && l.pendaftaran_id.trim() == l.pendaftaran_id);
                prop_assert!(!l.no_surat.is_empty());
            }
            let d = detail(&row);
            if let Some(expiry) = &d.expiry {
                prop_assert!(expiry::days_left(expiry, 0).is_some());
            }
            let _ = permit_type(&row);
        }
    }
}
