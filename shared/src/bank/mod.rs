//! Bank ingestion (seed 000 `bank_module`, and the Celery fetch it never
//! finished): residents pay by bank transfer with their room key as the
//! variable symbol, and the money reaches the room exactly once.
//!
//! - [`parse`]: Fio banka JSON and ISO 20022 camt.053 statements into [`BankTransaction`]s;
//! - [`keys`], [`model`]: the payment and import-state items;
//! - [`service`]: applying a transaction (once per bank transaction id), assigning an invalid payment;
//! - [`import`]: the scheduled fetch from the bank's API;
//! - [`handlers`]: the `bank-transactions` consumer and the admin endpoints.
//!
//! Every transaction travels as one message on the [`QUEUE`]; a payment item
//! keyed by the bank's transaction id is written in the same transaction as
//! the room's credit and its ledger entry, so redelivery, concurrent
//! consumers and statements imported twice credit nothing twice.

pub mod handlers;
pub mod import;
pub mod keys;
pub mod model;
pub mod parse;
pub mod service;

pub use parse::BankTransaction;

use crate::platform::function::{Module, Param};
use crate::platform::queue::QueueDef;

/// The bank module's functions, in catalog order.
pub static MODULE: Module = Module {
    name: "bank",
    description: "Bank top-ups: statements fetched or uploaded, each transaction credited to its room once (seed 000)",
    functions: &[
        handlers::BANK_IMPORT,
        handlers::BANK_APPLY,
        handlers::ADMIN_BANK_IMPORT,
        handlers::ADMIN_BANK_STATEMENTS,
        handlers::ADMIN_BANK_PAYMENTS,
        handlers::ADMIN_BANK_ASSIGN,
        handlers::ADMIN_BANK_STATUS,
        handlers::ADMIN_BANK_REDRIVE,
    ],
    queues: &[QUEUE],
    params: &[BASE_URL, BANK_TOKEN, CURRENCY, IMPORT_SCHEDULE],
};

/// `PREMISES_BANK_BASE_URL`.
pub const BASE_URL: Param = Param::global(
    "BankBaseUrl",
    "PREMISES_BANK_BASE_URL",
    "PREMISES_BANK_BASE_URL, the base URL of the bank's Fio-format statement API.",
)
.default("https://fioapi.fio.cz");

/// `PREMISES_BANK_TOKEN`, only where the bank is called.
pub const BANK_TOKEN: Param = Param::local(
    "BankToken",
    Some("PREMISES_BANK_TOKEN"),
    "PREMISES_BANK_TOKEN, the bank API token (a secret; empty disables the scheduled import).",
)
.default("")
.secret();

/// `PREMISES_BANK_CURRENCY`.
pub const CURRENCY: Param = Param::global(
    "BankCurrency",
    "PREMISES_BANK_CURRENCY",
    "PREMISES_BANK_CURRENCY, the only currency credited to rooms.",
)
.default("CZK")
.pattern("[A-Z]{3}");

/// When `bank-import` runs in a deployment.
pub const IMPORT_SCHEDULE: Param = Param::local(
    "BankImportSchedule",
    None,
    "When the bank-import function fetches new transactions (an EventBridge rate or cron expression).",
)
.default(import::IMPORT_SCHEDULE);

/// The queue every bank transaction goes through before it is applied.
pub const QUEUE: QueueDef = QueueDef {
    name: "bank-transactions",
    visibility_timeout_secs: 60,
    max_receive_count: 5,
    fifo: false,
    retention_secs: QueueDef::MAX_RETENTION_SECS,
};
