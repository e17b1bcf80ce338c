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

use crate::platform::function::Module;
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
};

/// The queue every bank transaction goes through before it is applied.
pub const QUEUE: QueueDef =
    QueueDef { name: "bank-transactions", visibility_timeout_secs: 60, max_receive_count: 5, fifo: false };
