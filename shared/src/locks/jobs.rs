//! The locks' scheduled jobs: connectivity (offline after 5 minutes of
//! silence), command timeouts, and the daily time sync.

use serde_json::json;

use crate::App;
use crate::platform::function::{Function, Uses};
use crate::platform::store::{Index, Query, SkCond};

use super::keys;
use super::model::OFFLINE_AFTER_SECS;
use super::service::{self, command_topic, iso};

pub const CONNECTIVITY_SCHEDULE: &str = "rate(5 minutes)";
pub const COMMAND_TIMEOUTS_SCHEDULE: &str = "rate(1 minute)";
/// Daily at 03:00 UTC (seed: `sync_device_time`).
pub const TIME_SYNC_SCHEDULE: &str = "cron(0 3 * * ? *)";

pub const LOCKS_CONNECTIVITY: Function = Function::schedule(
    "locks-connectivity",
    "Mark locks silent for 5 minutes offline (locks)",
    CONNECTIVITY_SCHEDULE,
    |app, _| Box::pin(check_connectivity(app)),
)
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)])
.timeout(60);

/// Marks locks silent for more than 5 minutes offline (and raises `offline`). It reads only the
/// online index below the threshold (GSI2 `LOCKSONLINE`, sorted by last_seen): never the table.
pub async fn check_connectivity(app: &App) -> anyhow::Result<()> {
    let threshold = app.clock.now_secs() - OFFLINE_AFTER_SECS;
    let query =
        Query::partition(keys::ONLINE_GSI2PK).index(Index::Gsi2).sk(SkCond::Lt(keys::online_gsi2sk(threshold, "")));
    let silent: Vec<super::model::Lock> = app.store.query_all(query).await?;
    let mut offline = 0;
    for lock in &silent {
        if service::mark_offline(app, &lock.device_id, lock.last_seen).await? {
            offline += 1;
        }
    }
    tracing::info!(checked = silent.len(), offline, "lock connectivity checked");
    Ok(())
}

pub const LOCKS_COMMAND_TIMEOUTS: Function = Function::schedule(
    "locks-command-timeouts",
    "Fail lock commands the device never answered (locks)",
    COMMAND_TIMEOUTS_SCHEDULE,
    |app, _| Box::pin(fail_timed_out_commands(app)),
)
.uses(&[Uses::TableWrite])
.timeout(60);

/// Fails lock commands the device never answered (`PREMISES_COMMAND_TIMEOUT_SECONDS`).
pub async fn fail_timed_out_commands(app: &App) -> anyhow::Result<()> {
    let failed = service::fail_timed_out_commands(app).await?;
    if failed > 0 {
        tracing::info!(failed, "lock commands timed out");
    }
    Ok(())
}

pub const LOCKS_TIME_SYNC: Function =
    Function::schedule("locks-time-sync", "Publish the time to every lock (locks)", TIME_SYNC_SCHEDULE, |app, _| {
        Box::pin(sync_time(app))
    })
    .uses(&[Uses::TableWrite, Uses::Publish("smartlock")])
    .timeout(60);

/// Publishes the current time to every lock (`{command: "sync_time", timestamp, epoch}`).
pub async fn sync_time(app: &App) -> anyhow::Result<()> {
    let now = app.clock.now_secs();
    let body = json!({"command": "sync_time", "timestamp": iso(now), "epoch": now}).to_string();
    let mut cursor = None;
    let mut sent = 0;
    loop {
        let page = app.store.query(Query::partition(keys::DIRECTORY_PK).after(cursor)).await?;
        for item in &page.items {
            if let Some(crate::platform::store::Value::S(device_id)) = item.get(crate::platform::store::TABLE.sk) {
                app.devices.publish(&command_topic(device_id), body.as_bytes()).await?;
                sent += 1;
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    tracing::info!(sent, "lock clocks synchronised");
    Ok(())
}
