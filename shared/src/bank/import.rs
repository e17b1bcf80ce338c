//! The scheduled import from the bank's API (Fio banka's REST API, JSON
//! statements): the "last" statement since the previous download, or a
//! by-period backfill. The token sits in the URL, so no URL is ever logged.
//!
//! Fio moves its "last" cursor as soon as it serves a statement. A run marks
//! the state unfinished before it asks and clears the mark only once every
//! transaction is queued; a run that finds the mark (the previous one failed
//! or was stopped in between) backfills by period from the last success
//! instead, so nothing downloaded is ever lost. Applying is idempotent, so a
//! backfill that repeats transactions credits nothing twice.

use std::sync::OnceLock;
use std::time::Duration;

use crate::App;
use crate::platform::clock::UtcDateTime;
use crate::platform::store::{self, Cond, Update, n, s};

use super::keys;
use super::model::ImportState;
use super::parse;
use super::service::enqueue_transactions;

/// Fio serves one request per token every 30 seconds.
pub const MIN_REQUEST_INTERVAL_MILLIS: i64 = 30_000;
/// The catalog's schedule of `bank-import`.
pub const IMPORT_SCHEDULE: &str = "rate(10 minutes)";
/// Longest error text kept in the import state.
const MAX_ERROR_CHARS: usize = 500;

/// What to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// What is new since the previous download (or a backfill, when the previous run did not finish).
    Last,
    /// Every transaction booked between two dates (`YYYY-MM-DD`, inclusive).
    Period { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// `last` or `period`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Transactions in the statement.
    pub fetched: usize,
    /// Messages queued (a statement's repeats once).
    pub queued: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transaction_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the bank import is not configured (PREMISES_BANK_TOKEN is not set)")]
    NotConfigured,
    #[error("the bank allows one request per 30 s; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: i64 },
    /// The bank's answer was an error, late, or not a statement; recorded in the import state.
    #[error("bank import failed: {0}")]
    Bank(String),
    #[error("bank import failed")]
    Internal(#[source] anyhow::Error),
}

impl From<store::StoreError> for ImportError {
    fn from(e: store::StoreError) -> Self {
        ImportError::Internal(e.into())
    }
}

fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| reqwest::Client::builder().build().unwrap_or_else(|_| reqwest::Client::new()))
}

pub async fn state(app: &App) -> Result<ImportState, store::StoreError> {
    match app.store.get(&keys::import_state()).await? {
        Some(item) => store::from_item(item),
        None => Ok(ImportState::default()),
    }
}

fn date_of(millis: i64) -> String {
    let d = UtcDateTime::from_epoch_secs(millis.div_euclid(1000));
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Whether `s` is a `YYYY-MM-DD` date.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

/// Runs one import: takes the request slot, fetches, queues every transaction, records the outcome.
/// Two reads and three writes of the import state around one bank request and the queue sends.
pub async fn run_import(app: &App, fetch: Fetch) -> Result<ImportReport, ImportError> {
    let bank = &app.config.bank;
    if bank.token.0.is_empty() {
        return Err(ImportError::NotConfigured);
    }
    let before = state(app).await?;
    let now = app.clock.now_millis();
    take_request_slot(app, &before, now).await?;

    let fetch = match (fetch, before.unfinished_since) {
        // The previous run may have downloaded a statement it never queued: backfill instead.
        (Fetch::Last, Some(since)) => {
            let from_millis = before.last_success_at.unwrap_or(since).min(since) - 86_400_000;
            Fetch::Period { from: date_of(from_millis), to: date_of(now) }
        }
        (fetch, _) => fetch,
    };
    let outcome = fetch_and_queue(app, &fetch).await;
    let key = keys::import_state();
    match outcome {
        Ok(mut report) => {
            let mut update = Update::new()
                .set("last_success_at", n(app.clock.now_millis()))
                .set("last_queued", n(report.queued as i64))
                .remove("last_error")
                .remove("last_error_at")
                .remove("unfinished_since");
            match &report.last_transaction_id {
                Some(id) => update = update.set("last_transaction_id", s(id.clone())),
                None => report.last_transaction_id = before.last_transaction_id.clone(),
            }
            app.store.update(&key, update, None).await?;
            tracing::info!(mode = report.mode, fetched = report.fetched, queued = report.queued, "bank import done");
            Ok(report)
        }
        Err(e) => {
            let message: String = e.to_string().chars().take(MAX_ERROR_CHARS).collect();
            let update =
                Update::new().set("last_error", s(message.clone())).set("last_error_at", n(app.clock.now_millis()));
            app.store.update(&key, update, None).await?;
            tracing::error!(error = %message, "bank import failed; the next run retries (by period)");
            Err(e)
        }
    }
}

/// Claims the one request per 30 s: a conditional write of `last_request_at`, which also marks
/// the run unfinished until it has queued everything.
async fn take_request_slot(app: &App, before: &ImportState, now: i64) -> Result<(), ImportError> {
    let earliest = before.last_request_at.map_or(now, |t| t + MIN_REQUEST_INTERVAL_MILLIS);
    if earliest > now {
        return Err(ImportError::RateLimited { retry_after_secs: (earliest - now + 999) / 1000 });
    }
    // Someone else took the slot since we read the state when `last_request_at` moved.
    let cond = match before.last_request_at {
        Some(t) => Cond::eq("last_request_at", n(t)),
        None => Cond::not_exists("last_request_at"),
    };
    let update = Update::new().set("last_request_at", n(now)).set_if_not_exists("unfinished_since", n(now));
    match app.store.update(&keys::import_state(), update, Some(cond)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_condition_failed() => {
            Err(ImportError::RateLimited { retry_after_secs: MIN_REQUEST_INTERVAL_MILLIS / 1000 })
        }
        Err(e) => Err(e.into()),
    }
}

async fn fetch_and_queue(app: &App, fetch: &Fetch) -> Result<ImportReport, ImportError> {
    let bank = &app.config.bank;
    let token = &bank.token.0;
    let (mode, from, to, path) = match fetch {
        Fetch::Last => ("last", None, None, format!("/v1/rest/last/{token}/transactions.json")),
        Fetch::Period { from, to } => (
            "period",
            Some(from.clone()),
            Some(to.clone()),
            format!("/v1/rest/periods/{token}/{from}/{to}/transactions.json"),
        ),
    };
    let response = http_client()
        .get(format!("{}{path}", bank.base_url))
        .timeout(Duration::from_secs(bank.timeout_secs))
        .send()
        .await
        // The URL carries the token: drop it from the error before it goes anywhere.
        .map_err(|e| ImportError::Bank(format!("the bank's API did not answer: {}", e.without_url())))?;
    let status = response.status();
    let body =
        response.bytes().await.map_err(|e| ImportError::Bank(format!("reading the statement: {}", e.without_url())))?;
    if !status.is_success() {
        let hint = if status.as_u16() == 409 { " (the bank's rate limit)" } else { "" };
        return Err(ImportError::Bank(format!("the bank's API answered HTTP {}{hint}", status.as_u16())));
    }
    let parsed = parse::fio(&body, "import").map_err(|e| ImportError::Bank(format!("malformed statement: {e}")))?;
    let fetched = parsed.transactions.len();
    let last_transaction_id = parsed.id_to.or_else(|| parsed.transactions.last().map(|t| t.id.clone()));
    let queued = enqueue_transactions(app, parsed.transactions)
        .await
        .map_err(|e| ImportError::Internal(anyhow::Error::new(e).context("queueing the statement")))?;
    Ok(ImportReport { mode, from, to, fetched, queued, last_transaction_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_and_made_from_epoch_millis() {
        assert!(is_date("2026-11-30"));
        for bad in ["2026-13-01", "2026-11-32", "2026/11/30", "26-11-30", "2026-11-3x"] {
            assert!(!is_date(bad), "{bad}");
        }
        assert_eq!(date_of(1_795_318_860_000), "2026-11-22");
    }
}
