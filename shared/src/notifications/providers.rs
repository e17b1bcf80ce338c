//! The ways a notification leaves: SES, SNS, Twilio, the Telegram bot API, and
//! the dev outbox. Each call ends as [`Outcome::Sent`], [`Outcome::Transient`]
//! (5xx, timeouts: worth retrying) or [`Outcome::Permanent`] (4xx: a bad
//! number or address; retrying cannot help). Credentials are never logged.

use std::time::Duration;

use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::App;
use crate::platform::config::{EmailProvider, Env, SmsProvider, TelegramProvider};
use crate::platform::store::{n, s};

use super::keys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Transient(String),
    Permanent(String),
}

/// Clients built once per process.
struct Clients {
    http: reqwest::Client,
    ses: Option<aws_sdk_sesv2::Client>,
    sns: Option<aws_sdk_sns::Client>,
}

static CLIENTS: OnceCell<Clients> = OnceCell::const_new();

async fn clients(app: &App) -> &'static Clients {
    CLIENTS
        .get_or_init(|| async {
            let notify = &app.config.notify;
            let needs_aws = notify.email == EmailProvider::Ses || notify.sms == SmsProvider::Sns;
            let sdk = match (&app.sdk, needs_aws) {
                (Some(sdk), _) => Some(sdk.clone()),
                (None, true) => Some(aws_config::load_from_env().await),
                (None, false) => None,
            };
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(notify.timeout_secs))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new());
            Clients {
                http,
                ses: sdk.as_ref().filter(|_| notify.email == EmailProvider::Ses).map(aws_sdk_sesv2::Client::new),
                sns: sdk.as_ref().filter(|_| notify.sms == SmsProvider::Sns).map(aws_sdk_sns::Client::new),
            }
        })
        .await
}

/// One message on one channel to one address.
pub struct Outgoing<'a> {
    pub id: &'a str,
    pub channel: &'a str,
    pub to: &'a str,
    pub kind: &'a str,
    pub title: &'a str,
    /// The body with a secret opened ([`super::sealed`]): only for the provider call.
    pub body: &'a str,
    /// The body with the secret's place marked: what the outbox stores outside dev mode.
    pub redacted: &'a str,
}

/// How long the dev outbox keeps a message.
const OUTBOX_TTL_SECS: i64 = 7 * 24 * 3600;

/// The dev outbox (`GET /api/dev/outbox/`): idempotent per message and channel. Only in dev mode
/// does it store (and log) a secret opened; elsewhere it keeps the body with the secret's place marked.
async fn outbox(app: &App, m: &Outgoing<'_>) -> Outcome {
    let now = app.clock.now_secs();
    let body = if app.config.env == Env::Dev { m.body } else { m.redacted };
    let mut item = keys::outbox(m.id, m.channel).to_item();
    for (k, v) in [("channel", m.channel), ("to", m.to), ("kind", m.kind), ("title", m.title), ("body", body)] {
        item.insert(k.into(), s(v));
    }
    item.insert("type".into(), s("outbox"));
    item.insert("created_at".into(), n(now));
    item.insert("expires_at".into(), n(now + OUTBOX_TTL_SECS));
    tracing::info!(channel = m.channel, to = m.to, kind = m.kind, "dev outbox: {}", body);
    match app.store.put(item, None).await {
        Ok(()) => Outcome::Sent,
        Err(e) => Outcome::Transient(format!("outbox write failed: {e}")),
    }
}

/// Classifies an HTTP status of a provider.
fn by_status(status: u16, what: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Sent,
        408 | 429 => Outcome::Transient(format!("{what}: HTTP {status}")),
        400..=499 => Outcome::Permanent(format!("{what}: HTTP {status}")),
        _ => Outcome::Transient(format!("{what}: HTTP {status}")),
    }
}

/// Classifies an AWS SDK error: a 4xx service error is permanent, anything else (5xx, timeouts, I/O) transient.
fn sdk_outcome<E: std::fmt::Debug>(what: &str, e: &SdkError<E, HttpResponse>) -> Outcome {
    match e {
        SdkError::ServiceError(service) => by_status(service.raw().status().as_u16(), what),
        other => Outcome::Transient(format!("{what}: {}", short(other))),
    }
}

fn short(e: &impl std::fmt::Debug) -> String {
    format!("{e:?}").chars().take(300).collect()
}

pub async fn email(app: &App, m: &Outgoing<'_>) -> Outcome {
    match app.config.notify.email {
        EmailProvider::Log => outbox(app, m).await,
        EmailProvider::Ses => {
            let Some(ses) = &clients(app).await.ses else { return Outcome::Transient("SES client missing".into()) };
            let content = |text: &str| Content::builder().data(text).charset("UTF-8").build();
            let (Ok(subject), Ok(text)) = (content(m.title), content(m.body)) else {
                return Outcome::Permanent("email content rejected".into());
            };
            let message = Message::builder().subject(subject).body(Body::builder().text(text).build()).build();
            let result = ses
                .send_email()
                .from_email_address(&app.config.notify.email_from)
                .destination(Destination::builder().to_addresses(m.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await;
            match result {
                Ok(_) => Outcome::Sent,
                Err(e) => sdk_outcome("SES", &e),
            }
        }
    }
}

pub async fn sms(app: &App, m: &Outgoing<'_>) -> Outcome {
    let notify = &app.config.notify;
    match notify.sms {
        SmsProvider::Log => outbox(app, m).await,
        SmsProvider::Sns => {
            let Some(sns) = &clients(app).await.sns else { return Outcome::Transient("SNS client missing".into()) };
            match sns.publish().phone_number(m.to).message(m.body).send().await {
                Ok(_) => Outcome::Sent,
                Err(e) => sdk_outcome("SNS", &e),
            }
        }
        SmsProvider::Twilio => {
            let url =
                format!("{}/2010-04-01/Accounts/{}/Messages.json", notify.twilio_base_url, notify.twilio_account_sid);
            let form = [("To", m.to), ("From", notify.twilio_from.as_str()), ("Body", m.body)];
            let request = clients(app)
                .await
                .http
                .post(url)
                .basic_auth(&notify.twilio_account_sid, Some(&notify.twilio_auth_token.0))
                .form(&form);
            match request.send().await {
                Ok(r) => by_status(r.status().as_u16(), "Twilio"),
                Err(e) => Outcome::Transient(format!("Twilio: {}", e.without_url())),
            }
        }
    }
}

pub async fn telegram(app: &App, m: &Outgoing<'_>) -> Outcome {
    let notify = &app.config.notify;
    match notify.telegram {
        TelegramProvider::Log => outbox(app, m).await,
        TelegramProvider::Off => Outcome::Permanent("Telegram is not configured".into()),
        TelegramProvider::Bot => {
            // The token is part of the URL: errors are reported without it.
            let url = format!("{}/bot{}/sendMessage", notify.telegram_base_url, notify.telegram_bot_token.0);
            let text = if m.title.is_empty() { m.body.to_string() } else { format!("{}\n{}", m.title, m.body) };
            let request = clients(app).await.http.post(url).json(&json!({"chat_id": m.to, "text": text}));
            match request.send().await {
                Ok(r) => by_status(r.status().as_u16(), "Telegram"),
                Err(e) => Outcome::Transient(format!("Telegram: {}", e.without_url())),
            }
        }
    }
}
