//! The bank items as stored. Money is integer cents; times are epoch milliseconds.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Credited to a room (on arrival, or later by an admin's assignment).
    Valid,
    /// Recorded with a reason and credited nowhere (yet).
    Invalid,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Valid => "valid",
            PaymentStatus::Invalid => "invalid",
        }
    }
}

/// Why a transaction credited nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvalidReason {
    /// The amount is not a decimal with at most two decimals.
    BadAmount,
    /// A credit above the largest payment accepted (`PREMISES_BANK_MAX_PAYMENT`).
    AmountOutOfRange,
    /// Outgoing (or zero) amount.
    NotACredit,
    WrongCurrency,
    MissingVariableSymbol,
    /// The variable symbol is no room's key.
    UnknownRoom,
}

impl InvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::BadAmount => "bad_amount",
            InvalidReason::AmountOutOfRange => "amount_out_of_range",
            InvalidReason::NotACredit => "not_a_credit",
            InvalidReason::WrongCurrency => "wrong_currency",
            InvalidReason::MissingVariableSymbol => "missing_variable_symbol",
            InvalidReason::UnknownRoom => "unknown_room",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::BadAmount,
            Self::AmountOutOfRange,
            Self::NotACredit,
            Self::WrongCurrency,
            Self::MissingVariableSymbol,
            Self::UnknownRoom,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// An admin may credit such a payment to a room: its money is a credit in the right currency.
    pub fn assignable(self) -> bool {
        matches!(self, InvalidReason::MissingVariableSymbol | InvalidReason::UnknownRoom)
    }
}

/// One bank transaction as recorded: valid (credited) or invalid (with its reason).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Payment {
    /// The bank's transaction id.
    pub id: String,
    pub status: PaymentStatus,
    /// Why it credited nothing on arrival; kept after an admin assigns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<InvalidReason>,
    /// The amount as the bank wrote it.
    pub amount: String,
    /// The amount in cents, when it parses exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable_symbol: Option<String>,
    /// The room credited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The booking date (`YYYY-MM-DD`) when the bank gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `import` or `upload`.
    pub source: String,
    pub received_at: i64,
    /// The ledger entry of the credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_id: Option<String>,
    /// The admin who credited an invalid payment to `room`, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<i64>,
}

/// The scheduled import's state. Times are epoch milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImportState {
    /// The last request to the bank's API (the bank allows one per 30 s per token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<i64>,
    /// The newest bank transaction id the last successful import covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<i64>,
    /// Set when a run starts and cleared when it has queued everything: a run that finds it set
    /// knows the previous one may have lost a downloaded statement, and backfills by period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished_since: Option<i64>,
    /// Transactions queued by the last successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_queued: Option<u64>,
}
