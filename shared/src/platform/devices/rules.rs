//! AWS IoT SQL, the subset the local stack needs to dispatch topic rules as
//! AWS IoT would.
//!
//! On AWS a topic rule (`template.yaml`) selects from an MQTT topic filter and
//! invokes a Lambda with the selected JSON. The local stack parses the same
//! SQL with [`IotRule::parse`] and applies it to every message of the
//! embedded broker with [`IotRule::apply`], so handlers see the same event.
//!
//! Supported:
//! - `SELECT <projection> FROM '<topic filter>' [WHERE <condition>]`;
//! - projection items: `*`; `field` / `field.nested` (named by the last
//!   segment unless `AS alias`); `topic()`, `topic(n)` (1-based segment),
//!   `timestamp()` (epoch milliseconds), `clientid()` (empty locally: the
//!   broker does not tell subscribers who published) and string, number,
//!   `true`/`false`/`null` literals, each of them `AS alias`;
//! - conditions: `=`, `<>` (or `!=`), `<`, `>`, `<=`, `>=` between those
//!   operands, `AND`, `OR`, `NOT` and parentheses; a bare operand is true when
//!   it is the boolean `true`.
//!
//! As in AWS, a missing field is *undefined*: it is left out of the result,
//! and a comparison involving it (or values of different types) is undefined,
//! which a `WHERE` treats as false. Anything else (other functions, arithmetic,
//! `CASE`, array indexing, nested `SELECT`) is rejected by `parse` with
//! [`RuleError::Unsupported`], so a rule never silently behaves differently.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule SQL syntax error at byte {at}: {message}")]
    Syntax { at: usize, message: String },
    #[error("rule SQL uses {0}, which the local rule engine does not support")]
    Unsupported(String),
    #[error("rule SQL has an invalid topic filter {0:?}")]
    InvalidTopicFilter(String),
}

/// A parsed topic rule.
#[derive(Debug, Clone, PartialEq)]
pub struct IotRule {
    sql: String,
    projection: Vec<Projection>,
    topic_filter: String,
    condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
enum Projection {
    /// `*`: every attribute of the payload.
    All,
    Named {
        operand: Operand,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(Vec<String>),
    /// `topic()` (whole topic) or `topic(n)` (1-based segment).
    Topic(Option<usize>),
    Timestamp,
    ClientId,
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Compare(Operand, CmpOp, Operand),
    /// A bare operand: true when it is the boolean `true`.
    Truthy(Operand),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

impl IotRule {
    pub fn parse(sql: &str) -> Result<IotRule, RuleError> {
        let tokens = lex(sql)?;
        let mut parser = Parser { tokens, pos: 0, end: sql.len() };
        parser.keyword("SELECT")?;
        let projection = parser.projection()?;
        parser.keyword("FROM")?;
        let topic_filter = match parser.next() {
            Some(Token { tok: Tok::Str(s), .. }) => s,
            other => return Err(parser.unexpected(other.as_ref(), "a quoted topic filter after FROM")),
        };
        if !is_valid_filter(&topic_filter) {
            return Err(RuleError::InvalidTopicFilter(topic_filter));
        }
        let condition = if parser.eat_keyword("WHERE") { Some(parser.or_expr()?) } else { None };
        if let Some(tok) = parser.next() {
            return Err(parser.unexpected(Some(&tok), "the end of the statement"));
        }
        Ok(IotRule { sql: sql.to_string(), projection, topic_filter, condition })
    }

    /// The SQL the rule was parsed from.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The MQTT topic filter of the `FROM` clause.
    pub fn topic_filter(&self) -> &str {
        &self.topic_filter
    }

    /// Whether a message on `topic` is selected by the `FROM` clause.
    pub fn matches(&self, topic: &str) -> bool {
        topic_matches(&self.topic_filter, topic)
    }

    /// What AWS IoT would deliver to the rule's action for this message:
    /// `None` when the topic does not match, the `WHERE` condition is not
    /// true, or the payload is not a JSON object.
    pub fn apply(&self, topic: &str, payload: &[u8], now_millis: i64) -> Option<Value> {
        if !self.matches(topic) {
            return None;
        }
        let payload = match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => {
                // AWS passes other payloads only through special functions (encode(*, 'base64')),
                // which this engine does not support; skip the message as such a rule would.
                tracing::warn!(rule = %self.sql, topic, "skipping a message whose payload is not a JSON object");
                return None;
            }
        };
        let ctx = Context { topic, payload: &payload, now_millis };
        if let Some(condition) = &self.condition
            && ctx.condition(condition) != Some(true)
        {
            return None;
        }
        let mut out = Map::new();
        for item in &self.projection {
            match item {
                Projection::All => out.extend(payload.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Projection::Named { operand, name } => {
                    if let Some(value) = ctx.value(operand) {
                        out.insert(name.clone(), value);
                    }
                }
            }
        }
        Some(Value::Object(out))
    }
}

impl fmt::Display for IotRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

/// MQTT topic matching: `+` matches one level, a trailing `#` the parent level
/// and everything below; a wildcard in the first level does not match topics
/// starting with `$` (such as `$aws/...`), as the MQTT specification requires.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if f == "+" || f == level => continue,
            _ => return false,
        }
    }
    levels.next().is_none()
}

/// A topic name a client may publish to: non-empty, no wildcards, no NUL.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// A topic filter: non-empty, `+` only as a whole level, `#` only as the whole last level.
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "+" => true,
        "#" => i == levels.len() - 1,
        other => !other.contains(['+', '#']),
    })
}

struct Context<'a> {
    topic: &'a str,
    payload: &'a Map<String, Value>,
    now_millis: i64,
}

impl Context<'_> {
    /// The operand's value; `None` is AWS's *undefined*.
    fn value(&self, operand: &Operand) -> Option<Value> {
        match operand {
            Operand::Field(path) => {
                let (first, rest) = path.split_first()?;
                let mut value = self.payload.get(first)?;
                for segment in rest {
                    value = value.as_object()?.get(segment)?;
                }
                Some(value.clone())
            }
            Operand::Topic(None) => Some(Value::String(self.topic.to_string())),
            Operand::Topic(Some(n)) => self.topic.split('/').nth(n - 1).map(|s| Value::String(s.to_string())),
            Operand::Timestamp => Some(Value::from(self.now_millis)),
            Operand::ClientId => Some(Value::String(String::new())),
            Operand::Literal(value) => Some(value.clone()),
        }
    }

    /// Three-valued logic: `None` is undefined.
    fn condition(&self, expr: &Expr) -> Option<bool> {
        match expr {
            Expr::Compare(a, op, b) => compare(&self.value(a)?, *op, &self.value(b)?),
            Expr::Truthy(a) => self.value(a)?.as_bool(),
            Expr::Not(e) => self.condition(e).map(|b| !b),
            Expr::And(a, b) => match (self.condition(a), self.condition(b)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (self.condition(a), self.condition(b)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
        }
    }
}

/// Compares values of the same type; other combinations are undefined.
fn compare(a: &Value, op: CmpOp, b: &Value) -> Option<bool> {
    let ordering = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?)?,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null)
        | (Value::Array(_), Value::Array(_))
        | (Value::Object(_), Value::Object(_)) => {
            return match op {
                CmpOp::Eq => Some(a == b),
                CmpOp::Ne => Some(a != b),
                _ => None,
            };
        }
        _ => return None,
    };
    Some(match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Number),
    Star,
    Comma,
    Dot,
    LParen,
    RParen,
    Cmp(CmpOp),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    tok: Tok,
    at: usize,
}

fn syntax(at: usize, message: impl Into<String>) -> RuleError {
    RuleError::Syntax { at, message: message.into() }
}

fn lex(sql: &str) -> Result<Vec<Token>, RuleError> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let at = i;
        let single = |tok| Token { tok, at };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'*' => {
                tokens.push(single(Tok::Star));
                i += 1;
            }
            b',' => {
                tokens.push(single(Tok::Comma));
                i += 1;
            }
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                tokens.push(single(Tok::Dot));
                i += 1;
            }
            b'(' => {
                tokens.push(single(Tok::LParen));
                i += 1;
            }
            b')' => {
                tokens.push(single(Tok::RParen));
                i += 1;
            }
            b'=' => {
                tokens.push(single(Tok::Cmp(CmpOp::Eq)));
                i += 1;
            }
            b'<' | b'>' | b'!' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'<', Some(b'>')) | (b'!', Some(b'=')) => (CmpOp::Ne, 2),
                    (b'<', Some(b'=')) => (CmpOp::Le, 2),
                    (b'>', Some(b'=')) => (CmpOp::Ge, 2),
                    (b'<', _) => (CmpOp::Lt, 1),
                    (b'>', _) => (CmpOp::Gt, 1),
                    _ => return Err(syntax(at, "`!` must be followed by `=`")),
                };
                tokens.push(single(Tok::Cmp(op)));
                i += len;
            }
            b'\'' => {
                let mut value = String::new();
                let mut chars = sql[i + 1..].char_indices();
                let mut closed = None;
                while let Some((offset, ch)) = chars.next() {
                    match ch {
                        '\'' => {
                            closed = Some(i + 1 + offset + 1);
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => break,
                        },
                        other => value.push(other),
                    }
                }
                let Some(end) = closed else {
                    return Err(syntax(at, "unterminated string literal"));
                };
                tokens.push(Token { tok: Tok::Str(value), at });
                i = end;
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_digit()
                        || matches!(bytes[end], b'.' | b'e' | b'E')
                        || (matches!(bytes[end], b'+' | b'-') && matches!(bytes[end - 1], b'e' | b'E')))
                {
                    end += 1;
                }
                let text = &sql[i..end];
                // JSON's grammar covers integers and most decimals; `.5` and `1.` go through f64.
                let number = serde_json::from_str::<Number>(text)
                    .or_else(|_| text.parse::<f64>().ok().and_then(Number::from_f64).ok_or(()))
                    .map_err(|()| syntax(at, format!("invalid number {text:?}")))?;
                tokens.push(Token { tok: Tok::Num(number), at });
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i + 1;
                while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                    end += 1;
                }
                tokens.push(Token { tok: Tok::Ident(sql[i..end].to_string()), at });
                i = end;
            }
            b'"' | b'`' => return Err(RuleError::Unsupported(format!("a quoted identifier (at byte {at})"))),
            b'+' | b'/' | b'%' | b'[' | b'|' => {
                return Err(RuleError::Unsupported(format!("the operator {:?} (at byte {at})", c as char)));
            }
            _ => {
                let ch = sql[i..].chars().next().unwrap_or('?');
                return Err(syntax(at, format!("unexpected character {ch:?}")));
            }
        }
    }
    Ok(tokens)
}

const KEYWORDS: &[&str] = &["SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL"];

/// Keywords of SQL that this engine does not implement; named in the error.
const UNSUPPORTED_KEYWORDS: &[&str] =
    &["CASE", "WHEN", "THEN", "ELSE", "END", "IN", "IS", "LIKE", "BETWEEN", "GROUP", "ORDER", "LIMIT", "VALUE"];

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn unexpected(&self, token: Option<&Token>, expected: &str) -> RuleError {
        match token {
            Some(Token { tok: Tok::Ident(word), at })
                if UNSUPPORTED_KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) =>
            {
                RuleError::Unsupported(format!("{} (at byte {at})", word.to_ascii_uppercase()))
            }
            Some(Token { tok, at }) => syntax(*at, format!("expected {expected}, found {}", describe(tok))),
            None => syntax(self.end, format!("expected {expected}, found the end of the statement")),
        }
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(word), .. }) if word.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), RuleError> {
        if self.eat_keyword(keyword) {
            return Ok(());
        }
        let token = self.peek().cloned();
        Err(self.unexpected(token.as_ref(), keyword))
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let found = self.peek().is_some_and(|t| &t.tok == tok);
        if found {
            self.pos += 1;
        }
        found
    }

    fn projection(&mut self) -> Result<Vec<Projection>, RuleError> {
        let mut items = Vec::new();
        loop {
            if self.eat(&Tok::Star) {
                items.push(Projection::All);
            } else {
                let at = self.peek().map_or(self.end, |t| t.at);
                let operand = self.operand()?;
                let name = if self.eat_keyword("AS") {
                    match self.next() {
                        Some(Token { tok: Tok::Ident(name), .. }) if !is_keyword(&name) => name,
                        other => return Err(self.unexpected(other.as_ref(), "a name after AS")),
                    }
                } else {
                    match &operand {
                        Operand::Field(path) => path.last().cloned().unwrap_or_default(),
                        _ => return Err(syntax(at, "functions and literals in SELECT need `AS <name>`")),
                    }
                };
                items.push(Projection::Named { operand, name });
            }
            if !self.eat(&Tok::Comma) {
                return Ok(items);
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, RuleError> {
        let token = self.next();
        let Some(Token { tok, at }) = token else {
            return Err(self.unexpected(None, "a field, function or literal"));
        };
        match tok {
            Tok::Str(s) => Ok(Operand::Literal(Value::String(s))),
            Tok::Num(n) => Ok(Operand::Literal(Value::Number(n))),
            Tok::Ident(word) if self.peek().is_some_and(|t| t.tok == Tok::LParen) => {
                self.pos += 1;
                self.function(&word, at)
            }
            Tok::Ident(word) if word.eq_ignore_ascii_case("TRUE") => Ok(Operand::Literal(Value::Bool(true))),
            Tok::Ident(word) if word.eq_ignore_ascii_case("FALSE") => Ok(Operand::Literal(Value::Bool(false))),
            Tok::Ident(word) if word.eq_ignore_ascii_case("NULL") => Ok(Operand::Literal(Value::Null)),
            Tok::Ident(word) if UNSUPPORTED_KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) => {
                Err(RuleError::Unsupported(format!("{} (at byte {at})", word.to_ascii_uppercase())))
            }
            Tok::Ident(word) if !is_keyword(&word) => {
                let mut path = vec![word];
                while self.eat(&Tok::Dot) {
                    match self.next() {
                        Some(Token { tok: Tok::Ident(segment), .. }) => path.push(segment),
                        Some(Token { tok: Tok::Star, at }) => {
                            return Err(RuleError::Unsupported(format!("`.*` (at byte {at})")));
                        }
                        other => return Err(self.unexpected(other.as_ref(), "a field name after `.`")),
                    }
                }
                Ok(Operand::Field(path))
            }
            other => Err(self.unexpected(Some(&Token { tok: other, at }), "a field, function or literal")),
        }
    }

    /// After `name(`: the supported functions.
    fn function(&mut self, name: &str, at: usize) -> Result<Operand, RuleError> {
        let operand = match name.to_ascii_lowercase().as_str() {
            "topic" => match self.next() {
                Some(Token { tok: Tok::RParen, .. }) => return Ok(Operand::Topic(None)),
                Some(Token { tok: Tok::Num(n), at }) => match n.as_u64() {
                    Some(n @ 1..) => Operand::Topic(usize::try_from(n).ok()),
                    _ => return Err(syntax(at, "topic(n) takes a segment number from 1")),
                },
                other => return Err(self.unexpected(other.as_ref(), "a segment number or `)`")),
            },
            "timestamp" => Operand::Timestamp,
            "clientid" => Operand::ClientId,
            _ => return Err(RuleError::Unsupported(format!("the function {name}() (at byte {at})"))),
        };
        if !self.eat(&Tok::RParen) {
            let token = self.peek().cloned();
            return Err(self.unexpected(token.as_ref(), "`)`"));
        }
        Ok(operand)
    }

    fn or_expr(&mut self) -> Result<Expr, RuleError> {
        let mut expr = self.and_expr()?;
        while self.eat_keyword("OR") {
            expr = Expr::Or(Box::new(expr), Box::new(self.and_expr()?));
        }
        Ok(expr)
    }

    fn and_expr(&mut self) -> Result<Expr, RuleError> {
        let mut expr = self.not_expr()?;
        while self.eat_keyword("AND") {
            expr = Expr::And(Box::new(expr), Box::new(self.not_expr()?));
        }
        Ok(expr)
    }

    fn not_expr(&mut self) -> Result<Expr, RuleError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        if self.eat(&Tok::LParen) {
            let expr = self.or_expr()?;
            if !self.eat(&Tok::RParen) {
                let token = self.peek().cloned();
                return Err(self.unexpected(token.as_ref(), "`)`"));
            }
            return Ok(expr);
        }
        let left = self.operand()?;
        match self.peek() {
            Some(Token { tok: Tok::Cmp(op), .. }) => {
                let op = *op;
                self.pos += 1;
                Ok(Expr::Compare(left, op, self.operand()?))
            }
            _ => Ok(Expr::Truthy(left)),
        }
    }
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k))
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(word) => format!("{word:?}"),
        Tok::Str(s) => format!("the string '{s}'"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::Star => "`*`".to_string(),
        Tok::Comma => "`,`".to_string(),
        Tok::Dot => "`.`".to_string(),
        Tok::LParen => "`(`".to_string(),
        Tok::RParen => "`)`".to_string(),
        Tok::Cmp(op) => format!("{op:?}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000_123;

    fn apply(sql: &str, topic: &str, payload: Value) -> Option<Value> {
        IotRule::parse(sql).unwrap().apply(topic, payload.to_string().as_bytes(), NOW)
    }

    #[test]
    fn star_with_a_topic_segment_adds_the_device_id() {
        let out = apply(
            "SELECT *, topic(2) AS device_id FROM 'smartlock/+/status'",
            "smartlock/abc/status",
            json!({"battery": 80}),
        );
        assert_eq!(out, Some(json!({"battery": 80, "device_id": "abc"})));
    }

    #[test]
    fn the_rule_exposes_its_topic_filter_and_sql() {
        let sql = "select * from 'a/#'";
        let rule = IotRule::parse(sql).unwrap();
        assert_eq!(rule.topic_filter(), "a/#");
        assert_eq!(rule.sql(), sql);
        assert_eq!(rule.to_string(), sql);
    }

    #[test]
    fn a_non_matching_topic_yields_nothing() {
        assert_eq!(apply("SELECT * FROM 'smartlock/+/status'", "smartlock/abc/other", json!({"a": 1})), None);
        assert_eq!(apply("SELECT * FROM 'smartlock/+/status'", "smartlock/abc/status/x", json!({"a": 1})), None);
    }

    #[test]
    fn fields_nested_fields_and_aliases_are_projected() {
        let out = apply(
            "SELECT state.reported.battery AS level, state.reported.lock, missing, a.b.c FROM 't'",
            "t",
            json!({"state": {"reported": {"battery": 7, "lock": "open"}}, "a": {"b": 1}}),
        );
        assert_eq!(out, Some(json!({"level": 7, "lock": "open"})));
    }

    #[test]
    fn functions_and_literals_are_projected_with_their_alias() {
        let out = apply(
            "SELECT topic() AS t, topic(1) AS first, topic(9) AS none, timestamp() AS ts, clientid() AS cid, \
             'v1' AS version, 2.5 AS ratio, -3 AS neg, true AS yes, null AS nothing FROM 'a/+'",
            "a/b",
            json!({}),
        );
        assert_eq!(
            out,
            Some(
                json!({"t": "a/b", "first": "a", "ts": NOW, "cid": "", "version": "v1", "ratio": 2.5, "neg": -3, "yes": true, "nothing": null})
            )
        );
    }

    #[test]
    fn later_projection_items_override_star() {
        let out = apply("SELECT *, 'x' AS battery FROM 't'", "t", json!({"battery": 80, "k": 1}));
        assert_eq!(out, Some(json!({"battery": "x", "k": 1})));
    }

    #[test]
    fn where_compares_numbers_strings_and_topic_segments() {
        let sql = "SELECT * FROM 'lock/+/status' WHERE battery < 20 AND topic(2) <> 'test' AND state = 'low'";
        assert!(apply(sql, "lock/a/status", json!({"battery": 10, "state": "low"})).is_some());
        assert!(apply(sql, "lock/a/status", json!({"battery": 20, "state": "low"})).is_none());
        assert!(apply(sql, "lock/test/status", json!({"battery": 10, "state": "low"})).is_none());
        assert!(apply(sql, "lock/a/status", json!({"battery": 10, "state": "ok"})).is_none());
        let ops =
            [("=", 5, true), ("<>", 5, false), ("!=", 4, true), ("<=", 5, true), (">=", 6, false), (">", 4, true)];
        for (op, rhs, expected) in ops {
            let sql = format!("SELECT * FROM 't' WHERE n {op} {rhs}");
            assert_eq!(apply(&sql, "t", json!({"n": 5})).is_some(), expected, "{sql}");
        }
        assert!(apply("SELECT * FROM 't' WHERE n = 5", "t", json!({"n": 5.0})).is_some());
        assert!(apply("SELECT * FROM 't' WHERE s > 'abc'", "t", json!({"s": "abd"})).is_some());
    }

    #[test]
    fn or_not_and_parentheses_combine_conditions() {
        let sql = "SELECT * FROM 't' WHERE NOT (a = 1 OR b = 2) AND (c = 3 OR (d = 4))";
        assert!(apply(sql, "t", json!({"a": 0, "b": 0, "c": 3})).is_some());
        assert!(apply(sql, "t", json!({"a": 0, "b": 0, "d": 4})).is_some());
        assert!(apply(sql, "t", json!({"a": 1, "b": 0, "c": 3})).is_none());
        assert!(apply(sql, "t", json!({"a": 0, "b": 2, "c": 3})).is_none());
        assert!(apply(sql, "t", json!({"a": 0, "b": 0, "c": 0})).is_none());
        // AND binds tighter than OR.
        let sql = "SELECT * FROM 't' WHERE a = 1 OR b = 1 AND c = 1";
        assert!(apply(sql, "t", json!({"a": 1, "b": 0, "c": 0})).is_some());
        assert!(apply(sql, "t", json!({"a": 0, "b": 1, "c": 0})).is_none());
    }

    #[test]
    fn undefined_values_make_a_condition_false_even_under_not() {
        assert!(apply("SELECT * FROM 't' WHERE missing = 1", "t", json!({})).is_none());
        assert!(apply("SELECT * FROM 't' WHERE NOT missing = 1", "t", json!({})).is_none());
        assert!(apply("SELECT * FROM 't' WHERE n = '5'", "t", json!({"n": 5})).is_none());
        assert!(apply("SELECT * FROM 't' WHERE NOT n = '5'", "t", json!({"n": 5})).is_none());
        // ... but OR with a true side is true, as in SQL.
        assert!(apply("SELECT * FROM 't' WHERE missing = 1 OR n = 5", "t", json!({"n": 5})).is_some());
        assert!(apply("SELECT * FROM 't' WHERE missing = 1 AND n = 6", "t", json!({"n": 5})).is_none());
    }

    #[test]
    fn booleans_compare_for_equality_and_stand_alone() {
        assert!(apply("SELECT * FROM 't' WHERE open = true", "t", json!({"open": true})).is_some());
        assert!(apply("SELECT * FROM 't' WHERE open", "t", json!({"open": true})).is_some());
        assert!(apply("SELECT * FROM 't' WHERE open", "t", json!({"open": "yes"})).is_none());
        assert!(apply("SELECT * FROM 't' WHERE NOT open", "t", json!({"open": false})).is_some());
        assert!(apply("SELECT * FROM 't' WHERE open < true", "t", json!({"open": false})).is_none());
    }

    #[test]
    fn keywords_and_functions_are_case_insensitive() {
        let out = apply("select *, TOPIC(2) as id from 'a/+' where n >= 1 and not n = 3", "a/b", json!({"n": 1}));
        assert_eq!(out, Some(json!({"n": 1, "id": "b"})));
    }

    #[test]
    fn payloads_that_are_not_json_objects_are_skipped() {
        let rule = IotRule::parse("SELECT * FROM 't'").unwrap();
        assert_eq!(rule.apply("t", b"not json", NOW), None);
        assert_eq!(rule.apply("t", b"[1,2]", NOW), None);
        assert_eq!(rule.apply("t", b"42", NOW), None);
        assert_eq!(rule.apply("t", b"{}", NOW), Some(json!({})));
    }

    #[test]
    fn string_literals_unescape_quotes() {
        let out = apply(r"SELECT 'it\'s' AS s FROM 't' WHERE name = 'O\'Brien'", "t", json!({"name": "O'Brien"}));
        assert_eq!(out, Some(json!({"s": "it's"})));
    }

    #[test]
    fn unsupported_sql_is_rejected_with_a_clear_error() {
        for sql in [
            "SELECT upper(name) AS n FROM 't'",
            "SELECT * FROM 't' WHERE a IN (1, 2)",
            "SELECT CASE a WHEN 1 THEN 2 END AS x FROM 't'",
            "SELECT a + 1 AS b FROM 't'",
            "SELECT a[0] AS b FROM 't'",
            "SELECT \"a-b\" FROM 't'",
            "SELECT a.* FROM 't'",
            "SELECT * FROM 't' WHERE a LIKE 'x%'",
        ] {
            assert!(matches!(IotRule::parse(sql), Err(RuleError::Unsupported(_))), "{sql}: {:?}", IotRule::parse(sql));
        }
    }

    #[test]
    fn malformed_sql_is_a_syntax_error() {
        for sql in [
            "",
            "SELECT",
            "SELECT * 't'",
            "SELECT * FROM t",
            "SELECT * FROM 't' WHERE",
            "SELECT * FROM 't' WHERE (a = 1",
            "SELECT * FROM 't' extra",
            "SELECT topic(2) FROM 't'",
            "SELECT timestamp() FROM 't'",
            "SELECT 'x' FROM 't'",
            "SELECT topic(0) AS x FROM 't'",
            "SELECT a AS FROM 't'",
            "SELECT * FROM 'unterminated",
            "SELECT * FROM 't' WHERE a ! 1",
            "SELECT a, FROM 't'",
        ] {
            assert!(matches!(IotRule::parse(sql), Err(RuleError::Syntax { .. })), "{sql}: {:?}", IotRule::parse(sql));
        }
        let err = IotRule::parse("SELECT * FROM 't' extra").unwrap_err().to_string();
        assert!(err.contains("byte 18") && err.contains("extra"), "{err}");
    }

    #[test]
    fn an_invalid_topic_filter_is_rejected() {
        for sql in ["SELECT * FROM ''", "SELECT * FROM 'a/#/b'", "SELECT * FROM 'a/b+'", "SELECT * FROM 'a#'"] {
            assert!(matches!(IotRule::parse(sql), Err(RuleError::InvalidTopicFilter(_))), "{sql}");
        }
    }

    #[test]
    fn topic_filters_follow_mqtt_wildcard_rules() {
        let cases = [
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a//c", true),
            ("a/+/c", "a/b/c/d", false),
            ("a/+", "a", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("+/+", "a/b", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/", false),
            ("#", "$aws/things/x/shadow/update", false),
            ("+/things/#", "$aws/things/x", false),
            ("$aws/things/+/shadow/update", "$aws/things/x/shadow/update", true),
            ("$aws/things/#", "$aws/things/x/shadow/update/delta", true),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(topic_matches(filter, topic), expected, "{filter} vs {topic}");
        }
        assert!(is_valid_topic("a/b") && !is_valid_topic("a/+") && !is_valid_topic("") && !is_valid_topic("a/#"));
        assert!(is_valid_filter("+/a/#") && is_valid_filter("#") && !is_valid_filter("a#") && !is_valid_filter(""));
    }
}
