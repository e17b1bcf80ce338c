//! The rules of bank money: a transaction is applied exactly once per bank
//! transaction id, and a payment credits a room only inside the transaction
//! that records it (with the room's ledger entry).

use ::http::StatusCode;

use crate::App;
use crate::appliances::model::Room;
use crate::appliances::service::{backoff, balance_change, get_room, room_not_found};
use crate::notifications::{self, Channel, Notification, Recipient};
use crate::platform::http::ApiError;
use crate::platform::queue::{OutMessage, QueueError};
use crate::platform::store::{self, Cond, Item, StoreError, Tx, TxError, Update, Write, n, s};

use super::QUEUE;
use super::keys;
use super::model::{InvalidReason, Payment, PaymentStatus};
use super::parse::{BankTransaction, cents};

/// Attempts of a credit that lost a race with another change of the room's balance.
const ATTEMPTS: u32 = 40;
/// Longest bank transaction id accepted (Fio ids are ~11 digits, camt references at most 35 characters).
pub const MAX_TRANSACTION_ID_CHARS: usize = 100;

/// What applying a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded as valid; the room was credited.
    Credited { room: String, cents: i64, balance: i64 },
    /// Recorded as invalid; nothing was credited.
    Invalid(InvalidReason),
    /// This bank transaction id was applied before; nothing changed.
    AlreadyApplied,
}

/// The largest payment credited when `PREMISES_BANK_MAX_PAYMENT` is unset: 10,000,000.00.
pub const DEFAULT_MAX_PAYMENT_CENTS: i64 = 1_000_000_000;
/// Longest variable symbol that can name a room (room keys are at most 64 characters).
pub const MAX_VARIABLE_SYMBOL_CHARS: usize = 64;
/// Longest counterparty name or message kept from a statement (camt.053 allows 140).
pub const MAX_STATEMENT_TEXT_CHARS: usize = 255;
/// Longest amount and currency text kept from a statement.
pub const MAX_AMOUNT_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PREMISES_BANK_MAX_PAYMENT must be a positive amount with at most two decimals (like 10000000.00), got {0:?}")]
pub struct MaxPaymentError(String);

/// Parses `PREMISES_BANK_MAX_PAYMENT` (in the bank currency): unset or empty is the default.
pub fn parse_max_payment(value: Option<&str>) -> Result<i64, MaxPaymentError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_MAX_PAYMENT_CENTS),
        Some(v) => cents(v).filter(|c| *c > 0).ok_or_else(|| MaxPaymentError(v.to_string())),
    }
}

/// The largest payment credited, in cents: `PREMISES_BANK_MAX_PAYMENT`, read once per process.
pub fn max_payment_cents() -> Result<i64, MaxPaymentError> {
    static MAX: std::sync::OnceLock<Result<i64, MaxPaymentError>> = std::sync::OnceLock::new();
    MAX.get_or_init(|| parse_max_payment(std::env::var("PREMISES_BANK_MAX_PAYMENT").ok().as_deref())).clone()
}

/// At most `max` characters of `text`.
fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Whether `id` can key a payment.
pub fn valid_transaction_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_TRANSACTION_ID_CHARS && !id.chars().any(char::is_control)
}

/// The credit a transaction carries, or why it carries none (in this order: amount, direction, size,
/// currency, VS).
fn classify(tx: &BankTransaction, currency: &str, max_cents: i64) -> Result<(i64, String), InvalidReason> {
    let amount = cents(&tx.amount).ok_or(InvalidReason::BadAmount)?;
    if amount <= 0 {
        return Err(InvalidReason::NotACredit);
    }
    if amount > max_cents {
        return Err(InvalidReason::AmountOutOfRange);
    }
    if !tx.currency.trim().eq_ignore_ascii_case(currency) {
        return Err(InvalidReason::WrongCurrency);
    }
    let vs = tx.vs.as_deref().map(str::trim).filter(|v| !v.is_empty()).ok_or(InvalidReason::MissingVariableSymbol)?;
    // Payers' banks often pad the variable symbol with zeros; room keys are written without them.
    let vs = if vs.chars().all(|c| c.is_ascii_digit()) { vs.trim_start_matches('0') } else { vs };
    if vs.is_empty() {
        return Err(InvalidReason::MissingVariableSymbol);
    }
    if vs.chars().count() > MAX_VARIABLE_SYMBOL_CHARS {
        return Err(InvalidReason::UnknownRoom);
    }
    Ok((amount, vs.to_string()))
}

/// `YYYY-MM-DD` of a bank date (`2026-11-30`, Fio's `2026-11-30+0100`, `2026-11-30T10:00:00`).
fn booking_date(date: Option<&str>) -> Option<String> {
    let d = date?.trim().get(..10)?;
    let b = d.as_bytes();
    let shape = b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    shape.then(|| d.to_string())
}

fn payment_item(p: &Payment) -> Result<Item, StoreError> {
    let mut item = store::to_item(p)?;
    let key = keys::payment(&p.id);
    let sk = keys::payment_sk(p.received_at, &p.id);
    item.insert(store::TABLE.pk.into(), s(key.pk));
    item.insert(store::TABLE.sk.into(), s(key.sk));
    item.insert("type".into(), s("payment"));
    item.insert("GSI1PK".into(), s(keys::payments_by_status_gsi1pk(p.status.as_str())));
    item.insert("GSI1SK".into(), s(sk.clone()));
    if let Some(room) = &p.room {
        item.insert("GSI2PK".into(), s(keys::room_payments_gsi2pk(room)));
        item.insert("GSI2SK".into(), s(sk));
    }
    Ok(item)
}

pub async fn get_payment(app: &App, id: &str) -> Result<Option<Payment>, StoreError> {
    match app.store.get(&keys::payment(id)).await? {
        Some(item) => Ok(Some(store::from_item(item)?)),
        None => Ok(None),
    }
}

/// Applies one bank transaction, exactly once per transaction id: records the payment and, when
/// valid, credits the room with a ledger entry, all in one transaction. One read (the room) and
/// one transaction; a duplicate costs one more read (to re-send its notification).
pub async fn apply_bank_transaction(app: &App, tx: &BankTransaction) -> anyhow::Result<Applied> {
    anyhow::ensure!(valid_transaction_id(&tx.id), "bank transaction id {:?} is not usable", tx.id);
    // A misconfigured cap credits nothing: the message is retried (and dead-lettered) until it is fixed.
    let max_cents = max_payment_cents()?;
    let currency = &app.config.bank.currency;
    // What the bank wrote is kept, within bounds (the statement is the bank's; an item stays small).
    let mut payment = Payment {
        id: tx.id.clone(),
        status: PaymentStatus::Invalid,
        reason: None,
        amount: bounded(tx.amount.trim(), MAX_AMOUNT_CHARS),
        amount_cents: cents(&tx.amount),
        currency: bounded(&tx.currency.trim().to_ascii_uppercase(), MAX_AMOUNT_CHARS),
        variable_symbol: tx.vs.as_deref().map(|v| bounded(v, MAX_STATEMENT_TEXT_CHARS)),
        room: None,
        date: booking_date(tx.date.as_deref()),
        counterparty: tx.counterparty.as_deref().map(|v| bounded(v, MAX_STATEMENT_TEXT_CHARS)),
        message: tx.message.as_deref().map(|v| bounded(v, MAX_STATEMENT_TEXT_CHARS)),
        source: tx.source.clone(),
        received_at: app.clock.now_millis(),
        ledger_id: None,
        assigned_by: None,
        assigned_at: None,
    };
    let (amount, room_key) = match classify(tx, currency, max_cents) {
        Ok(credit) => credit,
        Err(reason) => return record_invalid(app, payment, reason).await,
    };
    for attempt in 0..ATTEMPTS {
        let Some(room) = get_room(app, &room_key).await? else {
            return record_invalid(app, payment, InvalidReason::UnknownRoom).await;
        };
        let now = app.clock.now_millis();
        let (balance_writes, entry) = balance_change(&room.key, room.balance, amount, "bank_credit", &tx.id, now)?;
        payment.status = PaymentStatus::Valid;
        payment.room = Some(room.key.clone());
        payment.ledger_id = Some(entry.id.clone());
        /// Why the credit did not commit.
        #[derive(Clone, Copy)]
        enum Refused {
            /// The payment item exists: this transaction was applied before.
            Applied,
            /// The room's balance moved (a run started meanwhile).
            BalanceMoved,
        }
        let mut credit = Tx::new();
        credit
            .push_or(Write::Put { item: payment_item(&payment)?, cond: Some(Cond::item_absent()) }, Refused::Applied)
            .extend_or(balance_writes, Refused::BalanceMoved);
        match app.store.commit(credit).await {
            Ok(()) => {
                notify_credit(app, &room, &payment, entry.balance_after).await?;
                return Ok(Applied::Credited { room: room.key, cents: amount, balance: entry.balance_after });
            }
            Err(TxError::Failed(Refused::Applied)) => return already_applied(app, &tx.id).await,
            // The balance moved (a run started meanwhile): read it again.
            Err(
                TxError::Failed(Refused::BalanceMoved)
                | TxError::Store(StoreError::TransactionCanceled { .. } | StoreError::Conflict),
            ) => backoff(attempt).await,
            Err(TxError::Store(e)) => return Err(e.into()),
        }
    }
    anyhow::bail!("room {room_key} changed {ATTEMPTS} times while crediting bank transaction {}; retrying", tx.id)
}

async fn record_invalid(app: &App, mut payment: Payment, reason: InvalidReason) -> anyhow::Result<Applied> {
    payment.status = PaymentStatus::Invalid;
    payment.reason = Some(reason);
    payment.room = None;
    payment.ledger_id = None;
    match app.store.put(payment_item(&payment)?, Some(Cond::item_absent())).await {
        Ok(()) => {
            tracing::info!(transaction = %payment.id, reason = reason.as_str(), "bank transaction recorded as invalid");
            Ok(Applied::Invalid(reason))
        }
        Err(StoreError::ConditionFailed) => already_applied(app, &payment.id).await,
        Err(e) => Err(e.into()),
    }
}

/// A redelivered transaction changes nothing, but the notification of its credit may not have
/// been queued the first time (the process stopped in between): queue it again (it is idempotent).
async fn already_applied(app: &App, id: &str) -> anyhow::Result<Applied> {
    tracing::info!(transaction = %id, "bank transaction applied before; nothing to do");
    if let Some(payment) = get_payment(app, id).await?
        && payment.status == PaymentStatus::Valid
        && let Some(room_key) = &payment.room
        && let Some(room) = get_room(app, room_key).await?
    {
        notify_credit(app, &room, &payment, room.balance).await?;
    }
    Ok(Applied::AlreadyApplied)
}

/// Tells the room's resident (when the room has one) that money arrived. The notification id is
/// derived from the payment, so however often this runs, the resident hears of it once.
async fn notify_credit(app: &App, room: &Room, payment: &Payment, balance: i64) -> anyhow::Result<()> {
    let Some(resident) = &room.resident_id else { return Ok(()) };
    let cents = payment.amount_cents.unwrap_or_default();
    let notification = Notification {
        id: notification_id(payment),
        recipient: Recipient::User(resident.clone()),
        kind: "room_credited".into(),
        title: format!("Room {} credited", room.key),
        body: format!("{} {} arrived by bank transfer for room {}.", money(cents), payment.currency, room.key),
        data: serde_json::json!({
            "room": room.key, "amount": cents, "currency": payment.currency,
            "transaction_id": payment.id, "balance": balance,
        }),
        channels: vec![Channel::Inbox, Channel::Email],
        sealed_secret: None,
    };
    notifications::enqueue(app, &notification).await?;
    Ok(())
}

/// A UUIDv7 made of the payment's time and a hash of its id: the same for every delivery.
fn notification_id(payment: &Payment) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("bank-credit:{}", payment.id).as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let at = u64::try_from(payment.assigned_at.unwrap_or(payment.received_at)).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(at, &random).into_uuid().to_string()
}

/// `19.99` for 1999 cents.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// Puts transactions on the queue, one message each (a statement's repeats once). Returns how many.
pub async fn enqueue_transactions(app: &App, transactions: Vec<BankTransaction>) -> Result<usize, QueueError> {
    let mut seen = std::collections::HashSet::new();
    let messages = transactions
        .into_iter()
        .filter(|t| seen.insert(t.id.clone()))
        .map(|t| OutMessage::json(&t))
        .collect::<Result<Vec<_>, _>>()?;
    let count = messages.len();
    app.queue.send_batch(QUEUE.name, messages).await?;
    Ok(count)
}

// ----------------------------------------------------------------- assignment

fn payment_not_found() -> ApiError {
    ApiError::not_found("payment_not_found", "No payment has this id.")
}

/// Credits an invalid payment to `room_key`, once; records who and when. One read of the payment and
/// the room, then one transaction (re-read when the room's balance moved meanwhile).
pub async fn assign_payment(app: &App, id: &str, room_key: &str, admin: &str) -> Result<Payment, ApiError> {
    for attempt in 0..ATTEMPTS {
        let (payment, room) = tokio::try_join!(get_payment(app, id), async {
            get_room(app, room_key).await.map_err(|e| StoreError::Backend(e.into()))
        })?;
        let mut payment = payment.ok_or_else(payment_not_found)?;
        if payment.status == PaymentStatus::Valid {
            let message = match &payment.assigned_by {
                Some(_) => "This payment was already assigned to a room.",
                None => "This payment was credited to its room on arrival.",
            };
            return Err(ApiError::conflict("payment_already_credited", message));
        }
        let reason = payment.reason.unwrap_or(InvalidReason::UnknownRoom);
        let amount = payment.amount_cents.filter(|c| *c > 0 && reason.assignable()).ok_or_else(|| {
            ApiError::bad_request(
                "payment_not_assignable",
                format!("A payment that is invalid for {} cannot be credited to a room.", reason.as_str()),
            )
        })?;
        let room = room.ok_or_else(room_not_found)?;
        let now = app.clock.now_millis();
        let (mut writes, entry) = balance_change(&room.key, room.balance, amount, "bank_assigned", id, now)?;
        payment.status = PaymentStatus::Valid;
        payment.room = Some(room.key.clone());
        payment.ledger_id = Some(entry.id.clone());
        payment.assigned_by = Some(admin.to_string());
        payment.assigned_at = Some(now);
        let sk = keys::payment_sk(payment.received_at, id);
        let update = Update::new()
            .set("status", s(PaymentStatus::Valid.as_str()))
            .set("room", s(room.key.clone()))
            .set("ledger_id", s(entry.id.clone()))
            .set("assigned_by", s(admin))
            .set("assigned_at", n(now))
            .set("GSI1PK", s(keys::payments_by_status_gsi1pk(PaymentStatus::Valid.as_str())))
            .set("GSI2PK", s(keys::room_payments_gsi2pk(&room.key)))
            .set("GSI2SK", s(sk));
        let cond = Cond::eq("status", s(PaymentStatus::Invalid.as_str())).and(Cond::not_exists("assigned_at"));
        writes.insert(0, Write::Update { key: keys::payment(id), update, cond: Some(cond) });
        match app.store.transact(writes).await {
            Ok(()) => {
                notify_credit(app, &room, &payment, entry.balance_after).await.map_err(ApiError::internal)?;
                return Ok(payment);
            }
            // Assigned meanwhile (the next read answers 409), or the balance moved.
            Err(StoreError::TransactionCanceled { .. } | StoreError::Conflict) => backoff(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy_retry",
        "Too many concurrent changes to this room; retry.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(amount: &str, currency: &str, vs: Option<&str>) -> BankTransaction {
        BankTransaction {
            id: "1".into(),
            amount: amount.into(),
            currency: currency.into(),
            vs: vs.map(str::to_string),
            date: None,
            counterparty: None,
            message: None,
            source: "upload".into(),
        }
    }

    fn classify_default(tx: &BankTransaction, currency: &str) -> Result<(i64, String), InvalidReason> {
        classify(tx, currency, DEFAULT_MAX_PAYMENT_CENTS)
    }

    #[test]
    fn a_credit_above_the_cap_is_out_of_range_and_the_cap_parses_with_a_clear_error() {
        assert_eq!(classify_default(&tx("10000000.00", "CZK", Some("101")), "CZK"), Ok((1_000_000_000, "101".into())));
        assert_eq!(
            classify_default(&tx("10000000.01", "CZK", Some("101")), "CZK"),
            Err(InvalidReason::AmountOutOfRange)
        );
        assert_eq!(classify(&tx("5.01", "CZK", Some("101")), "CZK", 500), Err(InvalidReason::AmountOutOfRange));
        assert_eq!(
            classify_default(&tx("99999999999999999999", "CZK", Some("101")), "CZK"),
            Err(InvalidReason::BadAmount)
        );
        assert_eq!(classify_default(&tx("5", "CZK", Some(&"1".repeat(65))), "CZK"), Err(InvalidReason::UnknownRoom));
        assert_eq!(parse_max_payment(None), Ok(DEFAULT_MAX_PAYMENT_CENTS));
        assert_eq!(parse_max_payment(Some(" ")), Ok(DEFAULT_MAX_PAYMENT_CENTS));
        assert_eq!(parse_max_payment(Some("2500.50")), Ok(250_050));
        for bad in ["0", "-5", "ten", "1.999", "99999999999999999999"] {
            let err = parse_max_payment(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("PREMISES_BANK_MAX_PAYMENT") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn transactions_are_classified_in_the_documented_order() {
        assert_eq!(classify_default(&tx("19.99", "CZK", Some("101")), "CZK"), Ok((1999, "101".into())));
        assert_eq!(classify_default(&tx("19.99", "czk", Some("000101")), "CZK"), Ok((1999, "101".into())));
        assert_eq!(classify_default(&tx("1.999", "EUR", None), "CZK"), Err(InvalidReason::BadAmount));
        assert_eq!(classify_default(&tx("-5", "EUR", None), "CZK"), Err(InvalidReason::NotACredit));
        assert_eq!(classify_default(&tx("0.00", "CZK", Some("101")), "CZK"), Err(InvalidReason::NotACredit));
        assert_eq!(classify_default(&tx("5", "EUR", None), "CZK"), Err(InvalidReason::WrongCurrency));
        assert_eq!(classify_default(&tx("5", "CZK", Some(" ")), "CZK"), Err(InvalidReason::MissingVariableSymbol));
        assert_eq!(classify_default(&tx("5", "CZK", Some("000")), "CZK"), Err(InvalidReason::MissingVariableSymbol));
    }

    #[test]
    fn booking_dates_are_calendar_days() {
        assert_eq!(booking_date(Some("2026-11-30+0100")).as_deref(), Some("2026-11-30"));
        assert_eq!(booking_date(Some("2026-11-30")).as_deref(), Some("2026-11-30"));
        assert_eq!(booking_date(Some("30.11.2026")), None);
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(10), "0.10");
    }
}
