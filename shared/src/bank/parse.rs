//! Bank statements into transactions: the Fio banka JSON format and ISO 20022
//! camt.053 XML. Amounts stay decimal text until [`cents`] parses them exactly;
//! nothing here goes through floating point.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One bank transaction as it travels on the `bank-transactions` queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankTransaction {
    /// The bank's id of the transaction (Fio `ID pohybu`; camt `AcctSvcrRef`, else `NtryRef`).
    pub id: String,
    /// Decimal text as the bank wrote it, negative for outgoing payments.
    pub amount: String,
    pub currency: String,
    /// The variable symbol: the room key the payer meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `import` (the scheduled fetch) or `upload` (an admin's statement).
    pub source: String,
}

/// Exact cents of a decimal amount with at most two decimals (`19.99` → 1999, `-5` → -500); `None` otherwise.
pub fn cents(amount: &str) -> Option<i64> {
    let amount = amount.trim();
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount.strip_prefix('+').unwrap_or(amount)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || whole.len() > 13 || !all_digits(whole) || fraction.len() > 2 || !all_digits(fraction) {
        return None;
    }
    if digits.ends_with('.') {
        return None;
    }
    let mut value: i64 = whole.parse().ok()?;
    value = value.checked_mul(100)?;
    let fraction_cents = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse::<i64>().ok()?,
    };
    value = value.checked_add(fraction_cents)?;
    Some(if negative { -value } else { value })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not a Fio statement: {0}")]
    Fio(String),
    #[error("not a camt.053 statement: {0}")]
    Camt(String),
}

// ------------------------------------------------------------------------ Fio

#[derive(Deserialize)]
struct FioDocument {
    #[serde(rename = "accountStatement")]
    account_statement: FioStatement,
}

#[derive(Deserialize)]
struct FioStatement {
    #[serde(default)]
    info: Option<FioInfo>,
    #[serde(rename = "transactionList")]
    transaction_list: Option<FioList>,
}

#[derive(Deserialize)]
pub struct FioInfo {
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(rename = "idTo", default)]
    pub id_to: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct FioList {
    #[serde(default)]
    transaction: Vec<std::collections::HashMap<String, Option<FioColumn>>>,
}

#[derive(Deserialize)]
struct FioColumn {
    value: Box<RawValue>,
}

/// A column's value as text: strings unquoted, numbers exactly as written, null as `None`.
fn column_text(tx: &std::collections::HashMap<String, Option<FioColumn>>, column: &str) -> Option<String> {
    let raw = tx.get(column)?.as_ref()?.value.get().trim();
    if raw == "null" {
        return None;
    }
    if raw.starts_with('"') {
        return serde_json::from_str::<String>(raw).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    }
    Some(raw.to_string())
}

/// A parsed Fio statement: its transactions and the last id it covers.
pub struct FioParsed {
    pub transactions: Vec<BankTransaction>,
    pub id_to: Option<String>,
}

/// The Fio banka JSON statement (`/v1/rest/last|periods/…/transactions.json`).
pub fn fio(body: &[u8], source: &str) -> Result<FioParsed, ParseError> {
    let doc: FioDocument = serde_json::from_slice(body).map_err(|e| ParseError::Fio(e.to_string()))?;
    let statement = doc.account_statement;
    let default_currency = statement.info.as_ref().and_then(|i| i.currency.clone()).unwrap_or_default();
    let id_to = statement.info.as_ref().and_then(|i| i.id_to.as_ref()).map(|r| r.get().trim_matches('"').to_string());
    let mut transactions = Vec::new();
    for (i, tx) in statement.transaction_list.map(|l| l.transaction).unwrap_or_default().iter().enumerate() {
        let id = column_text(tx, "column22")
            .ok_or_else(|| ParseError::Fio(format!("transaction {i} has no column22 (ID pohybu)")))?;
        let amount = column_text(tx, "column1")
            .ok_or_else(|| ParseError::Fio(format!("transaction {id} has no column1 (Objem)")))?;
        transactions.push(BankTransaction {
            id,
            amount,
            currency: column_text(tx, "column14").unwrap_or_else(|| default_currency.clone()),
            vs: column_text(tx, "column5"),
            date: column_text(tx, "column0"),
            counterparty: column_text(tx, "column10").or_else(|| column_text(tx, "column2")),
            message: column_text(tx, "column16"),
            source: source.to_string(),
        });
    }
    Ok(FioParsed { transactions, id_to })
}

// ------------------------------------------------------------------ camt.053

/// The variable symbol in an `EndToEndId`: `VS<digits>` or plain digits.
fn vs_from_end_to_end(id: &str) -> Option<String> {
    let id = id.trim();
    let digits = id.strip_prefix("VS").or_else(|| id.strip_prefix("vs")).unwrap_or(id);
    (!digits.is_empty() && digits.len() <= 10 && digits.chars().all(|c| c.is_ascii_digit())).then(|| digits.to_string())
}

#[derive(Default)]
struct Entry {
    amount: Option<String>,
    currency: Option<String>,
    credit: Option<bool>,
    acct_svcr_ref: Option<String>,
    ntry_ref: Option<String>,
    creditor_ref: Option<String>,
    end_to_end: Option<String>,
    date: Option<String>,
    counterparty: Option<String>,
    message: Option<String>,
}

/// An ISO 20022 camt.053 statement: one transaction per `Ntry`. See docs/data-model.md for the mapping.
pub fn camt053(body: &[u8], source: &str) -> Result<Vec<BankTransaction>, ParseError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut entry: Option<Entry> = None;
    let mut out = Vec::new();
    let mut saw_statement = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Err(e) => return Err(ParseError::Camt(format!("XML error at byte {}: {e}", reader.buffer_position()))),
            Ok(Event::Eof) => break,
            Ok(Event::Start(start)) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).to_string();
                if name == "Stmt" {
                    saw_statement = true;
                }
                if name == "Ntry" {
                    entry = Some(Entry::default());
                }
                if name == "Amt"
                    && path.last().map(String::as_str) == Some("Ntry")
                    && let Some(e) = entry.as_mut()
                {
                    for attr in start.attributes().flatten() {
                        if attr.key.local_name().as_ref() == b"Ccy" {
                            e.currency = Some(String::from_utf8_lossy(&attr.value).to_string());
                        }
                    }
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                if path.pop().as_deref() == Some("Ntry") {
                    let e = entry.take().unwrap_or_default();
                    let id = e
                        .acct_svcr_ref
                        .or(e.ntry_ref)
                        .ok_or_else(|| ParseError::Camt("an Ntry has neither AcctSvcrRef nor NtryRef".into()))?;
                    let amount = e.amount.ok_or_else(|| ParseError::Camt(format!("entry {id} has no Amt")))?;
                    let credit = e.credit.ok_or_else(|| ParseError::Camt(format!("entry {id} has no CdtDbtInd")))?;
                    out.push(BankTransaction {
                        amount: if credit { amount } else { format!("-{amount}") },
                        currency: e.currency.unwrap_or_default(),
                        vs: e.creditor_ref.or_else(|| e.end_to_end.as_deref().and_then(vs_from_end_to_end)),
                        date: e.date,
                        counterparty: e.counterparty,
                        message: e.message,
                        source: source.to_string(),
                        id,
                    });
                }
            }
            Ok(Event::Text(text)) => {
                let Some(e) = entry.as_mut() else { continue };
                let value = text.unescape().map(|t| t.trim().to_string()).unwrap_or_default();
                if value.is_empty() {
                    continue;
                }
                let tail: Vec<&str> = path.iter().rev().take(4).map(String::as_str).collect();
                let parent = path.iter().rev().nth(1).map(String::as_str);
                match tail.first().copied() {
                    Some("Amt") if parent == Some("Ntry") => e.amount = Some(value),
                    Some("CdtDbtInd") if parent == Some("Ntry") => e.credit = Some(value == "CRDT"),
                    Some("AcctSvcrRef") if parent == Some("Ntry") => e.acct_svcr_ref = Some(value),
                    Some("NtryRef") => e.ntry_ref = Some(value),
                    Some("Ref") if tail.get(1) == Some(&"CdtrRefInf") => e.creditor_ref = Some(value),
                    Some("EndToEndId") => e.end_to_end = Some(value),
                    Some("Dt") | Some("DtTm") if path.iter().any(|p| p == "BookgDt") => e.date = Some(value),
                    Some("Nm") if path.iter().any(|p| p == "Dbtr") => e.counterparty = Some(value),
                    Some("Ustrd") => e.message = Some(value),
                    _ => {}
                }
            }
            Ok(_) => {}
        }
        buf.clear();
    }
    if !saw_statement {
        return Err(ParseError::Camt("no BkToCstmrStmt/Stmt element".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents() {
        for (text, want) in [("19.99", Some(1999)), ("0.10", Some(10)), ("0.1", Some(10)), ("1000", Some(100_000))] {
            assert_eq!(cents(text), want, "{text}");
        }
        assert_eq!(cents("-130.00"), Some(-13_000));
        for bad in ["1.999", "1e3", "", "-", "1.", ".5", "abc", "1,50", "99999999999999"] {
            assert_eq!(cents(bad), None, "{bad}");
        }
    }

    #[test]
    fn end_to_end_ids_carry_a_variable_symbol() {
        assert_eq!(vs_from_end_to_end("VS12345").as_deref(), Some("12345"));
        assert_eq!(vs_from_end_to_end("12345").as_deref(), Some("12345"));
        assert_eq!(vs_from_end_to_end("NOTPROVIDED"), None);
    }

    #[test]
    fn a_fio_statement_keeps_amounts_as_written() {
        let body = br#"{"accountStatement":{"info":{"currency":"CZK","idTo":1003},"transactionList":{"transaction":[
            {"column22":{"value":1001,"name":"ID pohybu","id":22},"column1":{"value":19.99,"name":"Objem","id":1},
             "column14":{"value":"CZK","name":"Mena","id":14},"column5":{"value":"12345","name":"VS","id":5},"column16":null},
            {"column22":{"value":1002,"name":"ID pohybu","id":22},"column1":{"value":-130.00,"name":"Objem","id":1}}]}}}"#;
        let parsed = fio(body, "upload").unwrap();
        assert_eq!(parsed.id_to.as_deref(), Some("1003"));
        let t = &parsed.transactions;
        assert_eq!((t[0].id.as_str(), t[0].amount.as_str(), t[0].vs.as_deref()), ("1001", "19.99", Some("12345")));
        assert_eq!((t[1].amount.as_str(), t[1].currency.as_str(), t[1].vs.as_deref()), ("-130.00", "CZK", None));
        assert!(fio(b"{\"x\":1}", "upload").is_err());
    }
}
