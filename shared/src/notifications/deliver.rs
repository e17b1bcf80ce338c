//! The `notifications` queue consumer. Each channel of a message is delivered
//! on its own and recorded (`keys::delivery`), so a redelivered message never
//! repeats a channel that went out, and one failing channel never blocks the
//! others. A transient failure is retried in place (3 tries with backoff),
//! then through the queue; a permanent one is recorded and not retried.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::App;
use crate::identity::service::get_user;
use crate::platform::function::{Function, Uses};
use crate::platform::queue::batch::{MessageError, MessageMeta, for_each_message};
use crate::platform::store::{self, Cond, StoreError, Update, n, s};

use super::keys;
use super::providers::{self, Outcome, Outgoing};
use super::{Channel, Notification, Recipient, sealed};

/// Seconds a consumer holds a channel while it sends.
const LEASE_SECS: i64 = 120;
/// Delivery records are kept this long (idempotency window).
const RECORD_TTL_SECS: i64 = 30 * 24 * 3600;
/// Waits (of 200 ms) for another consumer that holds a channel.
const BUSY_WAITS: u32 = 50;
/// In-place tries of a transient failure before the queue retries the message.
const TRIES: u32 = 3;
/// Time a message may spend in place: with one provider call (at most `PREMISES_NOTIFY_TIMEOUT_SECS`)
/// on top, delivery stays within the function's 60 s timeout (and the queue's visibility timeout);
/// channels left over go round the queue.
const BUDGET: Duration = Duration::from_secs(40);

pub const NOTIFICATIONS_DELIVER: Function = Function::queue(
    "notifications-deliver",
    "Deliver queued notifications on their channels",
    &super::QUEUE,
    10,
    |app, event| Box::pin(consume(app, event)),
)
.uses(&[Uses::TableWrite, Uses::Deliver])
.timeout(60);

pub async fn consume(app: &'static App, event: SqsEvent) -> SqsBatchResponse {
    for_each_message(event, |n: Notification, meta: MessageMeta| deliver(app, n, meta)).await
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Inbox => "inbox",
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Telegram => "telegram",
    }
}

/// Delivers every channel of one notification.
pub async fn deliver(app: &App, notification: Notification, meta: MessageMeta) -> Result<(), MessageError> {
    if notification.id.is_empty() || notification.id.len() > 100 {
        return Err(MessageError::permanent(anyhow::anyhow!("notification without a usable id")));
    }
    // Where each channel goes: (channel, address or None when the recipient has none).
    let mut targets: Vec<(Channel, Option<String>)> = Vec::new();
    let mut user_id = None;
    match &notification.recipient {
        Recipient::User(id) => {
            let user = get_user(app, id)
                .await
                .map_err(MessageError::retry)?
                .ok_or_else(|| MessageError::permanent(anyhow::anyhow!("user {id} does not exist")))?;
            user_id = Some(user.id.clone());
            targets.push((Channel::Inbox, Some(user.id.clone())));
            for channel in &notification.channels {
                let address = match channel {
                    Channel::Inbox => continue,
                    Channel::Email => user.email.clone(),
                    Channel::Sms => user.phone.clone(),
                    Channel::Telegram => user.telegram_chat_id.clone(),
                };
                targets.push((*channel, address));
            }
        }
        Recipient::Phone(phone) => targets.push((Channel::Sms, Some(phone.clone()))),
        Recipient::Email(email) => targets.push((Channel::Email, Some(email.clone()))),
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|(c, _)| seen.insert(*c));

    let mut transient = Vec::new();
    let started = std::time::Instant::now();
    for (channel, address) in targets {
        let name = channel_name(channel);
        if started.elapsed() > BUDGET {
            transient.push(format!("{name}: deferred, the message's time budget is spent"));
            continue;
        }
        let Some(address) = address else {
            record(app, &notification.id, name, "", "failed", Some("the recipient has no address for this channel"))
                .await
                .map_err(MessageError::retry)?;
            continue;
        };
        // Another consumer sending this channel (the same message delivered twice at once) usually
        // finishes within moments: wait for it rather than send the message around the queue again.
        let mut claimed = claim(app, &notification.id, name, &address).await.map_err(MessageError::retry)?;
        for _ in 0..BUSY_WAITS {
            if !matches!(claimed, Claim::Busy) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            claimed = claim(app, &notification.id, name, &address).await.map_err(MessageError::retry)?;
        }
        match claimed {
            Claim::Done => continue,
            Claim::Busy => {
                transient.push(format!("{name}: being delivered by another consumer"));
                continue;
            }
            Claim::Mine => {}
        }
        // The sealed secret is opened here, just before the provider call, and only for a provider.
        let body = match channel {
            Channel::Inbox => String::new(),
            _ => match sealed::open(app, &notification) {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(notification = %notification.id, channel = name, error = %e, "sealed secret refused");
                    record(app, &notification.id, name, &address, "failed", Some(&e.to_string()))
                        .await
                        .map_err(MessageError::retry)?;
                    continue;
                }
            },
        };
        let redacted = sealed::redacted(&notification);
        let outgoing = Outgoing {
            id: &notification.id,
            channel: name,
            to: &address,
            kind: &notification.kind,
            title: &notification.title,
            body: &body,
            redacted: &redacted,
        };
        let mut outcome = Outcome::Transient("not tried".into());
        for attempt in 0..TRIES {
            if attempt > 0 && started.elapsed() > BUDGET {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 * 4u64.pow(attempt - 1))).await;
            }
            outcome = match channel {
                Channel::Inbox => inbox(app, user_id.as_deref().unwrap_or(&address), &notification).await,
                Channel::Email => providers::email(app, &outgoing).await,
                Channel::Sms => providers::sms(app, &outgoing).await,
                Channel::Telegram => providers::telegram(app, &outgoing).await,
            };
            if !matches!(outcome, Outcome::Transient(_)) {
                break;
            }
        }
        let (status, error) = match &outcome {
            Outcome::Sent => ("delivered", None),
            Outcome::Permanent(e) => ("failed", Some(e.as_str())),
            Outcome::Transient(e) => ("retry", Some(e.as_str())),
        };
        if let Some(e) = error {
            tracing::warn!(notification = %notification.id, channel = name, status, error = e, "delivery did not succeed");
        }
        record(app, &notification.id, name, &address, status, error).await.map_err(MessageError::retry)?;
        if let Outcome::Transient(e) = outcome {
            transient.push(format!("{name}: {e}"));
        }
    }
    if transient.is_empty() {
        Ok(())
    } else {
        tracing::info!(receive_count = meta.receive_count, "notification retried through the queue");
        Err(MessageError::retry(anyhow::anyhow!("channels to retry: {}", transient.join("; "))))
    }
}

enum Claim {
    /// This consumer sends it.
    Mine,
    /// Already delivered or failed for good.
    Done,
    /// Another consumer holds the lease.
    Busy,
}

/// Takes the channel for sending: absent, waiting for a retry, or a lease that ran out.
async fn claim(app: &App, id: &str, channel: &str, to: &str) -> anyhow::Result<Claim> {
    let now = app.clock.now_secs();
    let update = Update::new()
        .set("status", s("sending"))
        .set("lease_until", n(now + LEASE_SECS))
        .set("to", s(to))
        .set("type", s("delivery"))
        .set("expires_at", n(now + RECORD_TTL_SECS))
        .add("attempts", 1);
    let free = Cond::item_absent()
        .or(Cond::eq("status", s("retry")))
        .or(Cond::eq("status", s("sending")).and(Cond::lt("lease_until", n(now))));
    match app.store.update(&keys::delivery(id, channel), update, Some(free)).await {
        Ok(_) => Ok(Claim::Mine),
        Err(StoreError::ConditionFailed) => {
            let item = app.store.get(&keys::delivery(id, channel)).await?;
            let status = item.as_ref().and_then(|i| match i.get("status") {
                Some(store::Value::S(s)) => Some(s.clone()),
                _ => None,
            });
            Ok(if status.as_deref() == Some("sending") { Claim::Busy } else { Claim::Done })
        }
        Err(e) => Err(e.into()),
    }
}

async fn record(app: &App, id: &str, channel: &str, to: &str, status: &str, error: Option<&str>) -> anyhow::Result<()> {
    let now = app.clock.now_secs();
    let mut update = Update::new()
        .set("status", s(status))
        .set("type", s("delivery"))
        .set("updated_at", n(now))
        .set("expires_at", n(now + RECORD_TTL_SECS))
        .remove("lease_until");
    if !to.is_empty() {
        update = update.set("to", s(to));
    }
    update = match error {
        Some(e) => update.set("error", s(e)),
        None => update.remove("error"),
    };
    app.store.update(&keys::delivery(id, channel), update, None).await?;
    Ok(())
}

/// The user's inbox item, written once per notification id.
async fn inbox(app: &App, user_id: &str, notification: &Notification) -> Outcome {
    let item = match super::inbox::item(user_id, notification, app.clock.now_secs()) {
        Ok(item) => item,
        Err(e) => return Outcome::Permanent(format!("inbox item: {e}")),
    };
    match app.store.put(item, Some(Cond::item_absent())).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Outcome::Sent,
        Err(e) => Outcome::Transient(format!("inbox write failed: {e}")),
    }
}
