//! The rules of locks: who may see a lock, how commands travel and are
//! acknowledged, and how telemetry moves a lock's state. A state transition
//! that raises an alert (battery dropping below 20 %, a jam, going offline)
//! is a conditional write on the state it was computed from, so concurrent
//! messages raise each alert once.

use ::http::StatusCode;
use serde_json::json;

use crate::App;
use crate::platform::clock::{UtcDateTime, new_id};
use crate::platform::devices::Credentials;
use crate::platform::http::ApiError;
use crate::platform::http::auth::Principal;
use crate::platform::store::{self, Cond, Item, StoreError, Update, Write, n, s};
use crate::security::alerts::{self, AlertDevice, AlertType};

use super::keys;
use super::model::{AccessLogEntry, Action, LOCK_STATES, LOW_BATTERY, Lock, LockSettings, PendingCommand};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// How long battery readings are kept.
const BATTERY_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long a command's correlation item is kept after it was sent.
const COMMAND_TTL_SECS: i64 = 7 * 24 * 3600;
/// Attempts of a telemetry write that lost a race with another message of the same lock.
const ATTEMPTS: u32 = 10;

pub fn not_found() -> ApiError {
    ApiError::not_found("device_not_found", "Not found.")
}

fn unreachable(e: impl Into<anyhow::Error>) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "device_gateway_unavailable",
        "The device gateway did not accept the message; retry.",
    );
    err.source = Some(e.into());
    err
}

pub fn iso(secs: i64) -> String {
    UtcDateTime::from_epoch_secs(secs).rfc3339()
}

pub fn command_topic(device_id: &str) -> String {
    format!("smartlock/{device_id}/command")
}

/// A hardware id: 12–20 letters or digits (seed: a MAC address or serial number).
pub fn valid_device_id(id: &str) -> bool {
    (12..=20).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

pub fn lock_item(lock: &Lock) -> Result<Item, StoreError> {
    let mut item = store::to_item(lock)?;
    let key = keys::lock(&lock.device_id);
    item.insert(store::TABLE.pk.into(), s(key.pk));
    item.insert(store::TABLE.sk.into(), s(key.sk));
    item.insert("type".into(), s("lock"));
    item.insert("GSI1PK".into(), s(keys::owner_locks_gsi1pk(&lock.owner_id)));
    item.insert("GSI1SK".into(), s(format!("{:013}#{}", lock.created_at * 1000, lock.device_id)));
    if lock.is_online {
        item.insert("GSI2PK".into(), s(keys::ONLINE_GSI2PK));
        item.insert(
            "GSI2SK".into(),
            s(keys::online_gsi2sk(lock.last_seen.unwrap_or(lock.created_at), &lock.device_id)),
        );
    }
    Ok(item)
}

pub async fn get_lock(app: &App, device_id: &str) -> Result<Option<Lock>, StoreError> {
    if !valid_device_id(device_id) {
        return Ok(None);
    }
    match app.store.get(&keys::lock(device_id)).await? {
        Some(item) => Ok(Some(store::from_item(item)?)),
        None => Ok(None),
    }
}

/// The lock, when the caller owns it or is an admin; 404 otherwise (another owner's lock does not exist for you).
pub async fn visible_lock(app: &App, caller: &Principal, id: &str) -> Result<Lock> {
    // No lock has an id of another shape: 404 before the store sees it.
    if !valid_device_id(id) {
        return Err(not_found());
    }
    let lock = get_lock(app, id).await?.ok_or_else(not_found)?;
    if lock.owner_id == caller.user_id || caller.role == "admin" { Ok(lock) } else { Err(not_found()) }
}

fn alert_device(lock: &Lock) -> AlertDevice<'_> {
    AlertDevice { device_id: &lock.device_id, name: &lock.name, owner_id: &lock.owner_id }
}

// ------------------------------------------------------------------ registry

pub struct NewLock {
    pub device_id: String,
    pub name: String,
    pub location: String,
    pub firmware_version: String,
}

/// Registers a lock and provisions its thing: one transaction (the lock and its directory entry,
/// both conditional on absence), then the provisioning call; a failed provisioning removes the lock.
pub async fn register(app: &App, owner_id: &str, new: NewLock) -> Result<(Lock, Credentials)> {
    let now = app.clock.now_secs();
    let lock = Lock {
        device_id: new.device_id.clone(),
        name: new.name,
        location: new.location,
        owner_id: owner_id.to_string(),
        is_online: false,
        battery_level: 100,
        lock_status: "locked".into(),
        signal_strength: None,
        firmware_version: new.firmware_version,
        last_seen: None,
        last_activity: None,
        battery_low: false,
        settings: LockSettings::default(),
        log_count: 0,
        created_at: now,
        updated_at: now,
    };
    let mut directory = keys::directory(&lock.device_id).to_item();
    directory.insert("type".into(), s("lock_directory"));
    directory.insert("owner_id".into(), s(owner_id));
    let writes = vec![
        Write::Put { item: lock_item(&lock)?, cond: Some(Cond::item_absent()) },
        Write::Put { item: directory, cond: Some(Cond::item_absent()) },
    ];
    match app.store.transact(writes).await {
        Ok(()) => {}
        Err(e) if e.is_condition_failed() || matches!(e, StoreError::Conflict) => {
            return Err(ApiError::invalid_field("device_id", "unique", "device with this device id already exists."));
        }
        Err(e) => return Err(e.into()),
    }
    match app.devices.provision(&lock.device_id).await {
        Ok(credentials) => Ok((lock, credentials)),
        Err(e) => {
            delete_items(app, &lock.device_id).await?;
            Err(unreachable(e))
        }
    }
}

async fn delete_items(app: &App, device_id: &str) -> Result<(), StoreError> {
    app.store
        .transact(vec![
            Write::Delete { key: keys::lock(device_id), cond: None },
            Write::Delete { key: keys::directory(device_id), cond: None },
        ])
        .await
}

/// Removes a lock: first the final unlock command (the seed's safety feature), then its thing and
/// credentials, then its items. One publish, one deprovisioning, one transaction.
pub async fn remove(app: &App, lock: &Lock) -> Result<()> {
    let command = json!({
        "command": "unlock", "request_id": new_id(), "timestamp": iso(app.clock.now_secs()), "reason": "device_removed",
    });
    app.devices.publish(&command_topic(&lock.device_id), command.to_string().as_bytes()).await.map_err(unreachable)?;
    app.devices.deprovision(&lock.device_id).await.map_err(unreachable)?;
    delete_items(app, &lock.device_id).await?;
    tracing::info!(device_id = %lock.device_id, "lock removed after its final unlock");
    Ok(())
}

// ------------------------------------------------------------------ commands

pub struct Sent {
    pub request_id: String,
    pub timestamp: i64,
    pub online: bool,
}

/// Sends lock/unlock: logs it as pending and remembers the command (one transaction), publishes
/// `{command, pin?, request_id, timestamp}` on the lock's command topic, and records the desired
/// state in its shadow. An offline lock gets the command all the same (it applies on reconnect).
pub async fn send_command(
    app: &App,
    lock: &Lock,
    action: Action,
    pin: Option<String>,
    user: (&str, String),
    ip: Option<String>,
) -> Result<Sent> {
    // Time-ordered, so a lock's log entries of one millisecond keep their order.
    let request_id = new_id();
    let now_millis = app.clock.now_millis();
    let now = now_millis.div_euclid(1000);
    let log_key = keys::log(&lock.device_id, now_millis, &request_id);
    let entry = AccessLogEntry {
        request_id: request_id.clone(),
        device_id: lock.device_id.clone(),
        user_id: Some(user.0.to_string()),
        user: user.1,
        access_method: "app".into(),
        action,
        status: "pending".into(),
        success: None,
        failure_reason: None,
        ip_address: ip,
        timestamp_millis: now_millis,
        completed_at: None,
    };
    let mut log_item = store::to_item(&entry)?;
    log_item.insert(store::TABLE.pk.into(), s(log_key.pk.clone()));
    log_item.insert(store::TABLE.sk.into(), s(log_key.sk.clone()));
    log_item.insert("type".into(), s("access_log"));
    let deadline_millis = now_millis + app.config.command_timeout_secs * 1000;
    let pending = PendingCommand {
        request_id: request_id.clone(),
        device_id: lock.device_id.clone(),
        action,
        log_sk: log_key.sk.clone(),
        deadline_millis,
        done: false,
    };
    let mut command_item = store::to_item(&pending)?;
    let command_key = keys::command(&request_id);
    command_item.insert(store::TABLE.pk.into(), s(command_key.pk));
    command_item.insert(store::TABLE.sk.into(), s(command_key.sk));
    command_item.insert("type".into(), s("lock_command"));
    command_item.insert("GSI1PK".into(), s(keys::PENDING_GSI1PK));
    command_item.insert("GSI1SK".into(), s(keys::pending_gsi1sk(deadline_millis, &request_id)));
    command_item.insert(store::TABLE.ttl_attribute.into(), n(now + COMMAND_TTL_SECS));
    app.store
        .transact(vec![
            Write::Put { item: log_item, cond: Some(Cond::item_absent()) },
            Write::Put { item: command_item, cond: Some(Cond::item_absent()) },
            Write::Update {
                key: keys::lock(&lock.device_id),
                update: Update::new().set("last_activity", n(now)).add("log_count", 1),
                cond: Some(Cond::item_exists()),
            },
        ])
        .await
        .map_err(|e| if e.is_condition_failed() { not_found() } else { e.into() })?;

    let mut command = json!({"command": action.as_str(), "request_id": request_id, "timestamp": iso(now)});
    if let Some(pin) = pin {
        command["pin"] = pin.into();
    }
    if let Err(e) = app.devices.publish(&command_topic(&lock.device_id), command.to_string().as_bytes()).await {
        finish_command(app, &pending, false, None, Some("publish_failed".into())).await.ok();
        return Err(unreachable(e));
    }
    if let Err(e) = app.devices.update_desired(&lock.device_id, json!({"lock_state": action.state()})).await {
        tracing::warn!(device_id = %lock.device_id, error = %e, "the shadow's desired lock state was not recorded");
    }
    Ok(Sent { request_id, timestamp: now, online: lock.is_online })
}

/// Completes a command once: marks it done, and its log entry succeeded or failed (with a reason).
/// `state` is the lock state the device reported. Returns false when it was completed already.
async fn finish_command(
    app: &App,
    command: &PendingCommand,
    success: bool,
    state: Option<&str>,
    reason: Option<String>,
) -> Result<bool, StoreError> {
    let now = app.clock.now_secs();
    let mut log_update = Update::new()
        .set("status", s(if success { "succeeded" } else { "failed" }))
        .set("success", store::Value::Bool(success))
        .set("completed_at", n(now));
    if let Some(reason) = reason {
        log_update = log_update.set("failure_reason", s(reason));
    }
    let mut writes = vec![
        Write::Update {
            key: keys::command(&command.request_id),
            update: Update::new().set("done", store::Value::Bool(true)).remove("GSI1PK").remove("GSI1SK"),
            cond: Some(Cond::eq("done", store::Value::Bool(false))),
        },
        Write::Update {
            key: store::Key::new(keys::lock_pk(&command.device_id), command.log_sk.clone()),
            update: log_update,
            cond: Some(Cond::eq("status", s("pending"))),
        },
    ];
    if let Some(state) = state {
        writes.push(Write::Update {
            key: keys::lock(&command.device_id),
            update: Update::new().set("lock_status", s(state)).set("updated_at", n(now)),
            cond: Some(Cond::item_exists()),
        });
    }
    match app.store.transact(writes).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_condition_failed() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The device's `response` `{request_id, success, status, reason?}` for one of its own commands.
pub async fn complete_command(
    app: &App,
    device_id: &str,
    request_id: &str,
    success: bool,
    status: Option<&str>,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let command_key = keys::command(request_id);
    let (command, lock) = tokio::try_join!(app.store.get(&command_key), get_lock(app, device_id))?;
    let Some(command) = command.map(store::from_item::<PendingCommand>).transpose()? else {
        tracing::warn!(device_id, request_id, "response to an unknown command");
        return Ok(());
    };
    let Some(lock) = lock.filter(|_| command.device_id == device_id) else {
        tracing::warn!(device_id, request_id, "response from a device the command was not sent to");
        return Ok(());
    };
    let state = status.filter(|s| LOCK_STATES.contains(s)).or(success.then(|| command.action.state()));
    let reason = if success { None } else { Some(reason.unwrap_or_else(|| "device_reported_failure".into())) };
    if !finish_command(app, &command, success, state, reason).await? {
        tracing::info!(device_id, request_id, "the command was completed already (duplicate response or timed out)");
        return Ok(());
    }
    if state == Some("jammed") && lock.lock_status != "jammed" {
        alerts::raise(
            app,
            alert_device(&lock),
            AlertType::DeviceJammed,
            format!("{} reported a jammed lock.", lock.name),
        )
        .await?;
    }
    Ok(())
}

/// Fails every command whose deadline passed without a response (`timeout`). One index query of
/// the pending commands due, then one transaction each.
pub async fn fail_timed_out_commands(app: &App) -> anyhow::Result<usize> {
    let now = app.clock.now_millis();
    let query = store::Query::partition(keys::PENDING_GSI1PK)
        .index(store::Index::Gsi1)
        .sk(store::SkCond::Le(keys::pending_gsi1sk(now, "~")));
    let due: Vec<PendingCommand> = app.store.query_all(query).await?;
    let mut failed = 0;
    for command in &due {
        if finish_command(app, command, false, None, Some("timeout".into())).await? {
            tracing::info!(device_id = %command.device_id, request_id = %command.request_id, "lock command timed out");
            failed += 1;
        }
    }
    Ok(failed)
}

// ----------------------------------------------------------------- telemetry

/// A validated `status` message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatusReport {
    pub online: bool,
    pub battery: Option<i64>,
    pub lock_status: Option<String>,
    pub signal_strength: Option<i64>,
}

/// Applies a status report: state, last_seen, a battery reading and the alerts its transitions
/// raise in one transaction conditional on the state it was computed from (re-read on a race);
/// then the owner is told of each alert.
pub async fn record_status(app: &App, device_id: &str, report: StatusReport) -> anyhow::Result<()> {
    for _ in 0..ATTEMPTS {
        let Some(prev) = get_lock(app, device_id).await? else {
            tracing::warn!(device_id, "status from an unknown device");
            return Ok(());
        };
        let now_millis = app.clock.now_millis();
        let now = now_millis.div_euclid(1000);
        let battery = report.battery.unwrap_or(prev.battery_level);
        let battery_low = if report.battery.is_some() { battery < LOW_BATTERY } else { prev.battery_low };
        let lock_status = report.lock_status.clone().unwrap_or_else(|| prev.lock_status.clone());
        let mut update = Update::new()
            .set("is_online", store::Value::Bool(report.online))
            .set("battery_level", n(battery))
            .set("battery_low", store::Value::Bool(battery_low))
            .set("lock_status", s(lock_status.clone()))
            .set("last_seen", n(now))
            .set("updated_at", n(now));
        if let Some(signal) = report.signal_strength {
            update = update.set("signal_strength", n(signal));
        }
        update = online_index(update, report.online, now, device_id);
        let cond = Cond::eq("battery_low", store::Value::Bool(prev.battery_low))
            .and(Cond::eq("lock_status", s(prev.lock_status.clone())))
            .and(Cond::eq("is_online", store::Value::Bool(prev.is_online)));
        let mut writes = vec![Write::Update { key: keys::lock(device_id), update, cond: Some(cond) }];
        if let Some(level) = report.battery {
            let mut reading = keys::battery(device_id, now_millis, &new_id()).to_item();
            reading.insert("type".into(), s("battery_reading"));
            reading.insert("level".into(), n(level));
            reading.insert("at".into(), n(now));
            reading.insert(store::TABLE.ttl_attribute.into(), n(now + BATTERY_TTL_SECS));
            writes.push(Write::Put { item: reading, cond: None });
        }
        // The alerts the transitions raise are written with the state, so no reader sees one
        // without the other and a crash in between cannot lose an alert.
        let mut raised = Vec::new();
        if battery_low && !prev.battery_low {
            raised.push((AlertType::LowBattery, format!("{} battery at {battery}%.", prev.name)));
        }
        if lock_status == "jammed" && prev.lock_status != "jammed" {
            raised.push((AlertType::DeviceJammed, format!("{} reported a jammed lock.", prev.name)));
        }
        if !report.online && prev.is_online {
            raised.push((AlertType::Offline, format!("{} went offline.", prev.name)));
        }
        let mut alerts = Vec::new();
        for (alert_type, text) in raised {
            let (alert, write) = alerts::prepare(app, alert_device(&prev), alert_type, text)?;
            writes.push(write);
            alerts.push(alert);
        }
        match app.store.transact(writes).await {
            Ok(()) => {}
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
        for alert in &alerts {
            alerts::announce(app, alert).await?;
        }
        return Ok(());
    }
    anyhow::bail!("lock {device_id}: status lost {ATTEMPTS} races with other messages")
}

/// Sets the online index (GSI2, sorted by last_seen) while online, removes it when offline.
fn online_index(update: Update, online: bool, last_seen: i64, device_id: &str) -> Update {
    if online {
        update.set("GSI2PK", s(keys::ONLINE_GSI2PK)).set("GSI2SK", s(keys::online_gsi2sk(last_seen, device_id)))
    } else {
        update.remove("GSI2PK").remove("GSI2SK")
    }
}

/// A heartbeat (or a connection): the lock is online and seen now. One conditional update.
pub async fn record_heartbeat(app: &App, device_id: &str) -> anyhow::Result<()> {
    if !valid_device_id(device_id) {
        tracing::warn!(device_id, "heartbeat from an invalid device id");
        return Ok(());
    }
    let now = app.clock.now_secs();
    let update = online_index(
        Update::new().set("is_online", store::Value::Bool(true)).set("last_seen", n(now)),
        true,
        now,
        device_id,
    );
    match app.store.update(&keys::lock(device_id), update, Some(Cond::item_exists())).await {
        Ok(_) => Ok(()),
        Err(StoreError::ConditionFailed) => {
            tracing::warn!(device_id, "heartbeat from an unknown device");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Marks an online lock offline and raises `offline`, once: conditional on it being online (and,
/// from the connectivity job, on not having been seen since `seen_at`).
pub async fn mark_offline(app: &App, device_id: &str, seen_at: Option<i64>) -> anyhow::Result<bool> {
    let Some(lock) = get_lock(app, device_id).await? else { return Ok(false) };
    let mut cond = Cond::eq("is_online", store::Value::Bool(true));
    if let Some(seen) = seen_at {
        cond = cond.and(Cond::eq("last_seen", n(seen)));
    }
    let update = online_index(Update::new().set("is_online", store::Value::Bool(false)), false, 0, device_id)
        .set("updated_at", n(app.clock.now_secs()));
    let (alert, write) =
        alerts::prepare(app, alert_device(&lock), AlertType::Offline, format!("{} went offline.", lock.name))?;
    let writes = vec![Write::Update { key: keys::lock(device_id), update, cond: Some(cond) }, write];
    for _ in 0..ATTEMPTS {
        match app.store.transact(writes.clone()).await {
            Ok(()) => {
                alerts::announce(app, &alert).await?;
                return Ok(true);
            }
            Err(StoreError::TransactionCanceled { .. }) => return Ok(false),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("lock {device_id}: marking it offline lost {ATTEMPTS} races with other writes")
}
