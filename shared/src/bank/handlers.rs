//! The `bank-transactions` consumer, the scheduled import, and the admin
//! endpoints (role `admin`): import now, upload a statement, reconcile
//! payments, status, DLQ redrive.

use ::http::StatusCode;
use ::http::header::{CONTENT_TYPE, RETRY_AFTER};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::App;
use crate::appliances::service::id_of;
use crate::platform::clock::UtcDateTime;
use crate::platform::doc::{Body, Op, QueryParam, any_object, date, enum_schema, page_of, schema_of, string, xml_text};
use crate::platform::function::{Auth, Function, Uses};
use crate::platform::http::auth::principal;
use crate::platform::http::page::{self, Keyset};
use crate::platform::http::{self, ApiError, Request, Response, json_body, json_response, path_param, query_param};
use crate::platform::queue::batch::{MessageError, MessageMeta, for_each_message};
use crate::platform::store::{Cond, Index, Query, n, s};

use super::QUEUE;
use super::import::{self, Fetch, ImportError};
use super::keys;
use super::model::{InvalidReason, Payment, PaymentStatus};
use super::parse::{self, BankTransaction};
use super::service;

const PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

// ------------------------------------------------------------------ consumer

pub const BANK_APPLY: Function = Function::queue(
    "bank-apply",
    "Apply queued bank transactions to rooms, once each (bank)",
    &super::QUEUE,
    10,
    |app, event| Box::pin(consume(app, event)),
)
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)])
.timeout(30);

/// `bank-apply`: applies each queued transaction, with partial batch failures. Nothing is
/// acknowledged before it is recorded; a message that keeps failing goes to the DLQ.
pub async fn consume(app: &'static App, event: SqsEvent) -> SqsBatchResponse {
    for_each_message(event, |tx: BankTransaction, meta: MessageMeta| async move {
        match service::apply_bank_transaction(app, &tx).await {
            Ok(applied) => {
                tracing::debug!(transaction = %tx.id, receive_count = meta.receive_count, ?applied, "bank transaction applied");
                Ok(())
            }
            // Money is never dropped: every failure is retried and, in the end, dead-lettered for a human.
            Err(e) => Err(MessageError::retry(e.context(format!("bank transaction {}", tx.id)))),
        }
    })
    .await
}

pub const BANK_IMPORT: Function = Function::schedule(
    "bank-import",
    "Fetch new transactions from the bank and queue them (bank)",
    super::import::IMPORT_SCHEDULE,
    |app, _| Box::pin(scheduled_import(app)),
)
.schedule_param(&super::IMPORT_SCHEDULE)
.uses(&[Uses::TableWrite, Uses::Send(&crate::bank::QUEUE), Uses::Param(&crate::bank::BANK_TOKEN)])
.timeout(60);

/// `bank-import` (EventBridge): the scheduled fetch. Not configured or rate limited is not a
/// failure; the bank failing is (logged, recorded in the import state, retried by the next run).
pub async fn scheduled_import(app: &'static App) -> anyhow::Result<()> {
    match import::run_import(app, Fetch::Last).await {
        Ok(_) => Ok(()),
        Err(ImportError::NotConfigured) => {
            tracing::debug!("bank import skipped: PREMISES_BANK_TOKEN is not set");
            Ok(())
        }
        Err(ImportError::RateLimited { retry_after_secs }) => {
            tracing::info!(retry_after_secs, "bank import skipped: another request to the bank was made recently");
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

// --------------------------------------------------------------------- admin

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportBody {
    from: Option<String>,
    to: Option<String>,
}

pub const ADMIN_BANK_IMPORT: Function = Function::http(
    "admin-bank-import",
    "POST",
    "/api/admin/bank/import/",
    "Run the bank import now, or backfill a period (admin)",
    |app, req| Box::pin(import_now(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe("Without a body, the transactions since the last import; with `from` and `to`, a backfill by period.")
        .body(Body { required: false, content: vec![("application/json", schema_of::<ImportBody>)], example: None })
        .example(json!({"from": "2026-01-01", "to": "2026-01-31"}))
        .reply(200, "What was fetched and queued", schema_of::<super::import::ImportReport>)
        .errors(&[409, 429, 502])
})
.uses(&[Uses::TableWrite, Uses::Send(&crate::bank::QUEUE), Uses::Param(&crate::bank::BANK_TOKEN)])
.timeout(29);

/// `POST /api/admin/bank/import/` `{from?, to?}` → 200 with what was fetched and queued; with both
/// dates, a by-period backfill. 409 not configured, 429 rate limited, 502 the bank failed.
pub async fn import_now(app: &'static App, req: Request) -> http::Result<Response> {
    let empty = req.body().as_ref().iter().all(u8::is_ascii_whitespace);
    let body: ImportBody = if empty { ImportBody::default() } else { json_body(&req)? };
    let fetch = match (body.from, body.to) {
        (None, None) => Fetch::Last,
        (Some(from), Some(to)) => {
            for (field, value) in [("from", &from), ("to", &to)] {
                if !import::is_date(value) {
                    return Err(ApiError::invalid_field(field, "invalid_date", format!("{field} must be YYYY-MM-DD.")));
                }
            }
            if from > to {
                return Err(ApiError::invalid_field("from", "invalid_period", "from must not be after to."));
            }
            Fetch::Period { from, to }
        }
        (None, Some(_)) => return Err(ApiError::invalid_field("from", "required", "A period needs from and to.")),
        (Some(_), None) => return Err(ApiError::invalid_field("to", "required", "A period needs from and to.")),
    };
    match import::run_import(app, fetch).await {
        Ok(report) => http::ok(&report),
        Err(ImportError::NotConfigured) => {
            Err(ApiError::conflict("bank_not_configured", "The bank import is not configured (PREMISES_BANK_TOKEN)."))
        }
        Err(ImportError::RateLimited { retry_after_secs }) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("The bank allows one request per 30 s; retry in {retry_after_secs} s."),
            )
            .into_response();
            if let Ok(v) = retry_after_secs.to_string().parse() {
                response.headers_mut().insert(RETRY_AFTER, v);
            }
            Ok(response)
        }
        Err(ImportError::Bank(message)) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "bank_unavailable", message)),
        Err(e @ ImportError::Internal(_)) => Err(ApiError::internal(e)),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Queued {
    queued: usize,
}

pub const ADMIN_BANK_STATEMENTS: Function = Function::http(
    "admin-bank-statements",
    "POST",
    "/api/admin/bank/statements/",
    "Upload a Fio JSON or camt.053 statement (admin)",
    |app, req| Box::pin(upload_statement(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe("A Fio JSON statement (`application/json`) or a camt.053 statement (`application/xml`).")
        .body(Body {
            required: true,
            content: vec![("application/json", any_object), ("application/xml", xml_text)],
            example: None,
        })
        .reply(202, "Queued for crediting", schema_of::<Queued>)
})
.uses(&[Uses::TableWrite, Uses::Send(&crate::bank::QUEUE)])
.timeout(29);

/// `POST /api/admin/bank/statements/`: a Fio JSON (`application/json`) or camt.053 XML
/// (`application/xml`, `text/xml`) statement → 202 `{queued}`. Anything else is 400 and queues nothing.
pub async fn upload_statement(app: &'static App, req: Request) -> http::Result<Response> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body: &[u8] = req.body().as_ref();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("empty_body", "A statement is required."));
    }
    let transactions = match content_type.as_str() {
        "application/json" => parse::fio(body, "upload").map(|p| p.transactions),
        "application/xml" | "text/xml" => parse::camt053(body, "upload"),
        other => {
            let got = if other.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type {other}") };
            return Err(ApiError::bad_request(
                "unsupported_statement",
                format!(
                    "Send a Fio JSON statement (application/json) or a camt.053 statement (application/xml); got {got}."
                ),
            ));
        }
    }
    .map_err(|e| ApiError::bad_request("invalid_statement", e.to_string()))?;
    if let Some(bad) = transactions.iter().find(|t| !service::valid_transaction_id(&t.id)) {
        return Err(ApiError::bad_request(
            "invalid_statement",
            format!(
                "transaction id {:?} is empty or longer than {} characters",
                bad.id,
                service::MAX_TRANSACTION_ID_CHARS
            ),
        ));
    }
    for t in &transactions {
        let texts = [
            ("amount", Some(t.amount.as_str()), service::MAX_AMOUNT_CHARS),
            ("currency", Some(t.currency.as_str()), service::MAX_AMOUNT_CHARS),
            ("variable_symbol", t.vs.as_deref(), service::MAX_STATEMENT_TEXT_CHARS),
            ("counterparty", t.counterparty.as_deref(), service::MAX_STATEMENT_TEXT_CHARS),
            ("message", t.message.as_deref(), service::MAX_STATEMENT_TEXT_CHARS),
        ];
        if let Some(&(field, _, max)) = texts.iter().find(|(_, v, max)| v.is_some_and(|v| v.chars().count() > *max)) {
            return Err(ApiError::invalid_field(
                field,
                "too_long",
                format!("transaction {:?}: {field} must be at most {max} characters", t.id),
            ));
        }
    }
    let queued = service::enqueue_transactions(app, transactions).await.map_err(ApiError::internal)?;
    Ok(json_response(StatusCode::ACCEPTED, &Queued { queued }))
}

/// A payment as the reconciliation API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PaymentView {
    id: String,
    status: PaymentStatus,
    reason: Option<InvalidReason>,
    amount: Option<i64>,
    amount_text: String,
    currency: String,
    variable_symbol: Option<String>,
    room: Option<String>,
    date: Option<String>,
    counterparty: Option<String>,
    message: Option<String>,
    source: String,
    received_at: i64,
    assigned_by: Option<String>,
    assigned_at: Option<i64>,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        PaymentView {
            id: p.id,
            status: p.status,
            reason: p.reason,
            amount: p.amount_cents,
            amount_text: p.amount,
            currency: p.currency,
            variable_symbol: p.variable_symbol,
            room: p.room,
            date: p.date,
            counterparty: p.counterparty,
            message: p.message,
            source: p.source,
            received_at: p.received_at,
            assigned_by: p.assigned_by,
            assigned_at: p.assigned_at,
        }
    }
}

pub const ADMIN_BANK_PAYMENTS: Function = Function::http(
    "admin-bank-payments",
    "GET",
    "/api/admin/bank/payments/",
    "List bank payments for reconciliation (admin)",
    |app, req| Box::pin(list_payments(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .query(&[
            QueryParam {
                name: "status",
                description: "valid or invalid.",
                schema: enum_schema::<super::model::PaymentStatus>,
            },
            QueryParam { name: "room", description: "Only this room's payments.", schema: string },
            QueryParam {
                name: "reason",
                description: "Only invalid payments with this reason.",
                schema: enum_schema::<super::model::InvalidReason>,
            },
            QueryParam { name: "from", description: "Booked on or after (YYYY-MM-DD).", schema: date },
            QueryParam { name: "to", description: "Booked on or before (YYYY-MM-DD).", schema: date },
        ])
        .store_page(page_of::<PaymentView>)
})
.uses(&[Uses::TableRead]);

/// `GET /api/admin/bank/payments/?status=valid|invalid&room=&reason=&from=&to=`: newest first,
/// paged in the store, the filters applied there. One index query of at most `page_size + 1`
/// payments (by room, else by status; both statuses merged without one), more when the filters
/// drop some, and count queries unless the first page holds them all.
pub async fn list_payments(app: &'static App, req: Request) -> http::Result<Response> {
    let keyset = Keyset::from_query(&req, PAGE_SIZE, MAX_PAGE_SIZE)?;
    let status = match query_param(&req, "status").filter(|s| !s.is_empty()) {
        None => None,
        Some("valid") => Some(PaymentStatus::Valid),
        Some("invalid") => Some(PaymentStatus::Invalid),
        Some(_) => return Err(ApiError::invalid_field("status", "invalid", "status must be valid or invalid.")),
    };
    let reason = match query_param(&req, "reason").filter(|s| !s.is_empty()) {
        None => None,
        Some(r) => Some(InvalidReason::parse(r).ok_or_else(|| {
            ApiError::invalid_field(
                "reason",
                "invalid",
                "reason must be one of bad_amount, amount_out_of_range, not_a_credit, wrong_currency, missing_variable_symbol, unknown_room.",
            )
        })?),
    };
    let room = query_param(&req, "room")
        .filter(|s| !s.is_empty())
        .map(|r| id_of("room", &Json::String(r.into())))
        .transpose()?;
    let mut filters = Vec::new();
    if let (Some(status), Some(_)) = (status, &room) {
        filters.push(Cond::eq("status", s(status.as_str())));
    }
    if let Some(reason) = reason {
        filters.push(Cond::eq("reason", s(reason.as_str())));
    }
    // A payment's day is its booking date, or the day it was received when the bank gave none.
    for field in ["from", "to"] {
        let Some(day) = query_param(&req, field).filter(|s| !s.is_empty()) else { continue };
        let midnight = UtcDateTime::midnight_of(day)
            .ok_or_else(|| ApiError::invalid_field(field, "invalid_date", format!("{field} must be YYYY-MM-DD.")))?;
        let (on_date, on_received) = if field == "from" {
            (Cond::ge("date", s(day)), Cond::ge("received_at", n(midnight * 1000)))
        } else {
            (Cond::le("date", s(day)), Cond::lt("received_at", n((midnight + 86_400) * 1000)))
        };
        filters.push(Cond::exists("date").and(on_date).or(Cond::not_exists("date").and(on_received)));
    }
    let queries: Vec<Query> = match &room {
        Some(room) => vec![Query::partition(keys::room_payments_gsi2pk(room)).index(Index::Gsi2)],
        None => status
            .map_or(vec![PaymentStatus::Valid, PaymentStatus::Invalid], |s| vec![s])
            .into_iter()
            .map(|s| Query::partition(keys::payments_by_status_gsi1pk(s.as_str())).index(Index::Gsi1))
            .collect(),
    };
    let queries = queries
        .into_iter()
        .map(|q| {
            let q = q.descending();
            match filters.as_slice() {
                [] => q,
                [one] => q.filter(one.clone()),
                _ => q.filter(Cond::And(filters.clone())),
            }
        })
        .collect();
    let payments = page::from_store::<Payment>(&app.store, &req, queries, &keyset, None).await?;
    http::ok(&payments.map(PaymentView::from))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AssignBody {
    #[schema(value_type = String, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "101")]
    room: Json,
}

pub const ADMIN_BANK_ASSIGN: Function = Function::http(
    "admin-bank-assign",
    "POST",
    "/api/admin/bank/payments/{id}/assign/",
    "Credit an invalid payment to a room, once (admin)",
    |app, req| Box::pin(assign(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| {
    Op::new()
        .describe("Credits an invalid payment to a room, once.")
        .json(schema_of::<AssignBody>)
        .example(json!({"room": "12345"}))
        .reply(200, "The payment", schema_of::<PaymentView>)
        .errors(&[409])
})
.uses(&[Uses::TableWrite, Uses::Send(&crate::notifications::QUEUE)]);

/// `POST /api/admin/bank/payments/{id}/assign/` `{room}` → 200 the payment, credited to the room once;
/// 409 when it is credited already. Two reads in parallel and one transaction.
pub async fn assign(app: &'static App, req: Request) -> http::Result<Response> {
    let id = path_param(&req, "id")?.to_string();
    // No payment has an id a bank transaction id cannot be.
    if !service::valid_transaction_id(&id) {
        return Err(ApiError::not_found("payment_not_found", "No payment has this id."));
    }
    let body: AssignBody = json_body(&req)?;
    let room = id_of("room", &body.room)?;
    let admin = principal(&req)?.user_id.clone();
    let payment = service::assign_payment(app, &id, &room, &admin).await?;
    http::ok(&PaymentView::from(payment))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatusView {
    configured: bool,
    last_success_at: Option<i64>,
    last_transaction_id: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    last_request_at: Option<i64>,
    /// The last run stopped before it queued everything; the next one backfills by period.
    unfinished: bool,
    last_queued: Option<u64>,
    /// Messages in the queue (visible and in flight), and in its dead-letter queue.
    messages_waiting: Option<u64>,
    messages_in_dlq: Option<u64>,
}

pub const ADMIN_BANK_STATUS: Function = Function::http(
    "admin-bank-status",
    "GET",
    "/api/admin/bank/status/",
    "The bank import's state and queue depths (admin)",
    |app, req| Box::pin(status(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "Import state and queue depths", schema_of::<StatusView>))
.uses(&[Uses::TableRead, Uses::QueueDepth(&crate::bank::QUEUE)]);

/// `GET /api/admin/bank/status/`: the import state and the queue depths. One read and two queue calls.
pub async fn status(app: &'static App, _req: Request) -> http::Result<Response> {
    let dlq_name = QUEUE.dlq_name();
    let (state, waiting, dlq) =
        tokio::join!(import::state(app), app.queue.depth(QUEUE.name), app.queue.depth(&dlq_name));
    let state = state?;
    let known = |d: Result<u64, _>, name: &str| match d {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(queue = name, error = %format!("{:#}", anyhow::Error::new(e)), "queue depth unknown");
            None
        }
    };
    http::ok(&StatusView {
        configured: !app.config.bank.token.0.is_empty(),
        last_success_at: state.last_success_at,
        last_transaction_id: state.last_transaction_id,
        last_error: state.last_error,
        last_error_at: state.last_error_at,
        last_request_at: state.last_request_at,
        unfinished: state.unfinished_since.is_some(),
        last_queued: state.last_queued,
        messages_waiting: known(waiting, QUEUE.name),
        messages_in_dlq: known(dlq, &QUEUE.dlq_name()),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Moved {
    moved: u64,
}

pub const ADMIN_BANK_REDRIVE: Function = Function::http(
    "admin-bank-redrive",
    "POST",
    "/api/admin/bank/dlq/redrive/",
    "Move dead-lettered bank transactions back to the queue (admin)",
    |app, req| Box::pin(redrive(app, req)),
)
.auth(Auth::ADMIN)
.doc(|| Op::new().reply(200, "Dead-lettered transactions moved back to the queue", schema_of::<Moved>))
.uses(&[Uses::TableWrite, Uses::Send(&crate::bank::QUEUE), Uses::DrainDeadLetters(&crate::bank::QUEUE)])
.timeout(29);

/// `POST /api/admin/bank/dlq/redrive/` → 200 `{moved}`: every dead-lettered transaction back on the queue.
pub async fn redrive(app: &'static App, _req: Request) -> http::Result<Response> {
    let moved = app.queue.redrive(&QUEUE).await.map_err(ApiError::internal)?;
    tracing::info!(moved, "bank DLQ redriven");
    http::ok(&Moved { moved })
}
