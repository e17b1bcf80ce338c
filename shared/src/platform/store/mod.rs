//! The store: a narrow, DynamoDB-shaped interface over one table.
//!
//! Domain code uses typed keys, conditions and updates; no expression strings
//! leave this module. Two implementations share the semantics checked by the
//! conformance suite (`shared/tests/store_conformance.rs`):
//! [`dynamo::DynamoStore`] on DynamoDB and [`embedded::EmbeddedStore`] on SQLite.
//!
//! Conventions:
//! - key attributes (`PK`, `SK`, `GSI1PK`, `GSI1SK`, `GSI2PK`, `GSI2SK`) are strings;
//!   sort order is byte order of their UTF-8 encoding, as in DynamoDB;
//! - the TTL attribute `expires_at` holds epoch seconds; reads (get, query)
//!   never return an item whose `expires_at` is at or before now, but
//!   conditions still see it until it is swept, as in DynamoDB. Use
//!   [`Cond::absent_or_expired`] when an expired item should count as absent.

pub mod dynamo;
#[cfg(feature = "local")]
pub mod embedded;

use std::collections::HashMap;

pub use serde_dynamo::{AttributeValue as Value, Item};

use crate::platform::clock::Clock;

/// The one table's shape. The local stack and the tests create it from this, and the
/// generated `template.yaml` declares it.
#[derive(Debug)]
pub struct TableDef {
    pub pk: &'static str,
    pub sk: &'static str,
    pub indexes: &'static [IndexDef],
    pub ttl_attribute: &'static str,
}

#[derive(Debug)]
pub struct IndexDef {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

pub const TABLE: TableDef = TableDef {
    pk: "PK",
    sk: "SK",
    indexes: &[
        IndexDef { name: "GSI1", pk: "GSI1PK", sk: "GSI1SK" },
        IndexDef { name: "GSI2", pk: "GSI2PK", sk: "GSI2SK" },
    ],
    ttl_attribute: "expires_at",
};

/// Most writes a transaction may carry (DynamoDB's limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// An item's primary key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key { pk: pk.into(), sk: sk.into() }
    }

    /// The key of an item, if it has string `PK` and `SK`.
    pub fn of(item: &Item) -> Option<Key> {
        match (item.get(TABLE.pk), item.get(TABLE.sk)) {
            (Some(Value::S(pk)), Some(Value::S(sk))) => Some(Key::new(pk.clone(), sk.clone())),
            _ => None,
        }
    }

    /// The key as item attributes, to start building an item.
    pub fn to_item(&self) -> Item {
        let mut item = Item::default();
        item.insert(TABLE.pk.to_string(), Value::S(self.pk.clone()));
        item.insert(TABLE.sk.to_string(), Value::S(self.sk.clone()));
        item
    }
}

/// Which key schema a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Index {
    #[default]
    Table,
    Gsi1,
    Gsi2,
}

impl Index {
    /// (partition attribute, sort attribute, DynamoDB index name)
    pub fn attributes(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            Index::Table => (TABLE.pk, TABLE.sk, None),
            Index::Gsi1 => (TABLE.indexes[0].pk, TABLE.indexes[0].sk, Some(TABLE.indexes[0].name)),
            Index::Gsi2 => (TABLE.indexes[1].pk, TABLE.indexes[1].sk, Some(TABLE.indexes[1].name)),
        }
    }
}

/// A condition on the current item. Attribute names are top-level attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Exists(String),
    NotExists(String),
    Eq(String, Value),
    Ne(String, Value),
    Lt(String, Value),
    Le(String, Value),
    Gt(String, Value),
    Ge(String, Value),
    BeginsWith(String, String),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// The item exists.
    pub fn item_exists() -> Cond {
        Cond::Exists(TABLE.pk.to_string())
    }

    /// No item has this key.
    pub fn item_absent() -> Cond {
        Cond::NotExists(TABLE.pk.to_string())
    }

    /// No live item has this key: absent, or past its TTL at `now_secs`.
    pub fn absent_or_expired(now_secs: i64) -> Cond {
        Cond::Or(vec![Cond::item_absent(), Cond::Le(TABLE.ttl_attribute.to_string(), Value::N(now_secs.to_string()))])
    }

    pub fn exists(name: impl Into<String>) -> Cond {
        Cond::Exists(name.into())
    }
    pub fn not_exists(name: impl Into<String>) -> Cond {
        Cond::NotExists(name.into())
    }
    pub fn eq(name: impl Into<String>, v: Value) -> Cond {
        Cond::Eq(name.into(), v)
    }
    pub fn ne(name: impl Into<String>, v: Value) -> Cond {
        Cond::Ne(name.into(), v)
    }
    pub fn lt(name: impl Into<String>, v: Value) -> Cond {
        Cond::Lt(name.into(), v)
    }
    pub fn le(name: impl Into<String>, v: Value) -> Cond {
        Cond::Le(name.into(), v)
    }
    pub fn gt(name: impl Into<String>, v: Value) -> Cond {
        Cond::Gt(name.into(), v)
    }
    pub fn ge(name: impl Into<String>, v: Value) -> Cond {
        Cond::Ge(name.into(), v)
    }
    pub fn begins_with(name: impl Into<String>, prefix: impl Into<String>) -> Cond {
        Cond::BeginsWith(name.into(), prefix.into())
    }
    pub fn and(self, other: Cond) -> Cond {
        match self {
            Cond::And(mut all) => {
                all.push(other);
                Cond::And(all)
            }
            first => Cond::And(vec![first, other]),
        }
    }
    pub fn or(self, other: Cond) -> Cond {
        match self {
            Cond::Or(mut any) => {
                any.push(other);
                Cond::Or(any)
            }
            first => Cond::Or(vec![first, other]),
        }
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Cond {
        Cond::Not(Box::new(self))
    }
}

/// One action of an update.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateAction {
    Set(String, Value),
    /// Set only when the attribute is absent (`if_not_exists`).
    SetIfNotExists(String, Value),
    /// Add to a number (absent counts as 0). Negative to subtract.
    Add(String, i64),
    Remove(String),
}

/// A typed update: a list of actions applied together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    pub actions: Vec<UpdateAction>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, name: impl Into<String>, v: Value) -> Self {
        self.actions.push(UpdateAction::Set(name.into(), v));
        self
    }
    pub fn set_if_not_exists(mut self, name: impl Into<String>, v: Value) -> Self {
        self.actions.push(UpdateAction::SetIfNotExists(name.into(), v));
        self
    }
    pub fn add(mut self, name: impl Into<String>, by: i64) -> Self {
        self.actions.push(UpdateAction::Add(name.into(), by));
        self
    }
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.actions.push(UpdateAction::Remove(name.into()));
        self
    }
}

/// A condition on the sort key of a query.
#[derive(Clone, Debug, PartialEq)]
pub enum SkCond {
    Eq(String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
    /// Inclusive on both ends.
    Between(String, String),
    BeginsWith(String),
}

/// A query of one partition of the table or an index.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk: Option<SkCond>,
    /// Ascending sort-key order when true (the default), descending otherwise.
    pub descending: bool,
    /// Most items per page (the implementation may return fewer).
    pub limit: Option<u32>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only items where this holds (DynamoDB's `FilterExpression`): applied after `limit`, so a
    /// page may hold fewer items than the limit and still have a cursor, and the items it skips
    /// are read (and paid for) all the same.
    pub filter: Option<Cond>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Query { pk: pk.into(), ..Default::default() }
    }
    pub fn index(mut self, index: Index) -> Self {
        self.index = index;
        self
    }
    pub fn sk(mut self, cond: SkCond) -> Self {
        self.sk = Some(cond);
        self
    }
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
    /// Keeps only the items where `cond` holds (see [`Query::filter`]).
    pub fn filter(mut self, cond: Cond) -> Self {
        self.filter = Some(cond);
        self
    }
}

/// One page of a query; `cursor` is `Some` when more items may follow.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub cursor: Option<String>,
}

/// One write of a transaction.
#[derive(Clone, Debug)]
pub enum Write {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        update: Update,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    /// Writes nothing; the transaction fails unless the condition holds.
    Check {
        key: Key,
        cond: Cond,
    },
}

impl Write {
    pub fn key(&self) -> Option<Key> {
        match self {
            Write::Put { item, .. } => Key::of(item),
            Write::Update { key, .. } | Write::Delete { key, .. } | Write::Check { key, .. } => Some(key.clone()),
        }
    }
}

/// A transaction whose conditional writes each say what their condition failing means, so
/// that a cancelled transaction is read by meaning, never by position.
#[derive(Clone, Debug)]
pub struct Tx<F> {
    writes: Vec<Write>,
    meanings: Vec<Option<F>>,
}

impl<F> Default for Tx<F> {
    fn default() -> Self {
        Tx { writes: Vec::new(), meanings: Vec::new() }
    }
}

impl<F> Tx<F> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A write whose condition (if any) failing has no meaning of its own: the transaction
    /// then fails with [`TxError::Store`].
    pub fn push(&mut self, write: Write) -> &mut Self {
        self.writes.push(write);
        self.meanings.push(None);
        self
    }

    /// A write whose condition failing cancels the transaction as `failure`.
    pub fn push_or(&mut self, write: Write, failure: F) -> &mut Self {
        self.writes.push(write);
        self.meanings.push(Some(failure));
        self
    }

    /// Writes whose conditions failing all mean `failure`.
    pub fn extend_or(&mut self, writes: impl IntoIterator<Item = Write>, failure: F) -> &mut Self
    where
        F: Clone,
    {
        for w in writes {
            self.push_or(w, failure.clone());
        }
        self
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// What a cancellation with these failed writes means: those that name a failure, in write
/// order, else the store's error.
fn every_meaning<F>(meanings: Vec<Option<F>>, err: StoreError) -> TxError<Vec<F>> {
    let StoreError::TransactionCanceled { failed: cancelled } = err else {
        return TxError::Store(err);
    };
    let named: Vec<F> =
        meanings.into_iter().enumerate().filter(|(i, _)| cancelled.contains(i)).filter_map(|(_, m)| m).collect();
    if named.is_empty() {
        TxError::Store(StoreError::TransactionCanceled { failed: cancelled })
    } else {
        TxError::Failed(named)
    }
}

/// Why a [`Tx`] did not commit: a named condition failed, or the store said no for another
/// reason (a conflict with a concurrent transaction, an unnamed condition, a backend error).
#[derive(Debug, thiserror::Error)]
pub enum TxError<F> {
    #[error("a condition of the transaction did not hold")]
    Failed(F),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A single write's condition did not hold; nothing changed.
    #[error("the condition of the write did not hold")]
    ConditionFailed,
    /// A transaction was cancelled because these writes' conditions did not
    /// hold (indexes into the transaction's writes); nothing was written.
    #[error("transaction cancelled: the condition of write(s) {failed:?} did not hold")]
    TransactionCanceled { failed: Vec<usize> },
    /// Another transaction touched the same items; retrying may succeed.
    #[error("transaction conflicted with a concurrent write")]
    Conflict,
    /// The request itself is malformed (missing keys, too many writes, the same item twice).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// A cursor that this store did not produce.
    #[error("the pagination cursor is not valid")]
    BadCursor,
    #[error("store backend failed")]
    Backend(#[source] anyhow::Error),
}

impl StoreError {
    /// True when a condition (single or in a transaction) failed.
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed | StoreError::TransactionCanceled { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store used by the process, chosen by configuration.
#[derive(Clone)]
pub enum Store {
    #[cfg(feature = "local")]
    Embedded(embedded::EmbeddedStore),
    Dynamo(dynamo::DynamoStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "local")]
            Store::Embedded($s) => $call,
            Store::Dynamo($s) => $call,
        }
    };
}

impl Store {
    /// Creates the table (and its indexes and TTL) when missing.
    pub async fn ensure_table(&self) -> Result<()> {
        dispatch!(self, s => s.ensure_table().await)
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Item>> {
        dispatch!(self, s => s.get(key).await)
    }

    /// Writes the whole item (it must carry `PK` and `SK`).
    pub async fn put(&self, item: Item, cond: Option<Cond>) -> Result<()> {
        dispatch!(self, s => s.put(item, cond).await)
    }

    /// Applies the update (creating the item if absent, as DynamoDB does) and
    /// returns the item as it is afterwards.
    pub async fn update(&self, key: &Key, update: Update, cond: Option<Cond>) -> Result<Item> {
        dispatch!(self, s => s.update(key, update, cond).await)
    }

    /// Deletes the item and returns it as it was, if it existed.
    pub async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>> {
        dispatch!(self, s => s.delete(key, cond).await)
    }

    pub async fn query(&self, query: Query) -> Result<Page> {
        dispatch!(self, s => s.query(query).await)
    }

    /// How many items the query's partition holds (that pass its filter), counted in the store:
    /// DynamoDB's `Select=COUNT`, one request per 1 MB of items read, none of them returned.
    /// `limit` and `cursor` are ignored.
    pub async fn count(&self, query: Query) -> Result<usize> {
        dispatch!(self, s => s.count(query).await)
    }

    /// Every item of the query's partition, page after page, read into `T`.
    pub async fn query_all<T: serde::de::DeserializeOwned>(&self, query: Query) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.query(query.clone().after(cursor)).await?;
            for item in page.items {
                out.push(from_item(item)?);
            }
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok(out);
            }
        }
    }

    /// A [`Tx`]: all or nothing, a failed condition reported as what that write said it means.
    pub async fn commit<F>(&self, tx: Tx<F>) -> std::result::Result<(), TxError<F>> {
        let Tx { writes, meanings } = tx;
        self.transact(writes).await.map_err(|e| match every_meaning(meanings, e) {
            TxError::Failed(mut all) => TxError::Failed(all.swap_remove(0)),
            TxError::Store(e) => TxError::Store(e),
        })
    }

    /// [`Store::commit`] reporting every named failure, in write order (never empty).
    pub async fn commit_all<F>(&self, tx: Tx<F>) -> std::result::Result<(), TxError<Vec<F>>> {
        let Tx { writes, meanings } = tx;
        self.transact(writes).await.map_err(|e| every_meaning(meanings, e))
    }

    /// Up to [`MAX_TRANSACTION_ITEMS`] writes on distinct items: all or nothing.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if writes.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Invalid(format!(
                "a transaction holds at most {MAX_TRANSACTION_ITEMS} writes, got {}",
                writes.len()
            )));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, w) in writes.iter().enumerate() {
            let key = w.key().ok_or_else(|| StoreError::Invalid(format!("write {i} has no PK/SK")))?;
            if !keys.insert(key.clone()) {
                return Err(StoreError::Invalid(format!("write {i} touches {key:?} a second time")));
            }
        }
        dispatch!(self, s => s.transact(writes).await)
    }

    pub fn clock(&self) -> &Clock {
        dispatch!(self, s => s.clock())
    }
}

/// A string value.
pub fn s(v: impl Into<String>) -> Value {
    Value::S(v.into())
}

/// A number value (money and counters are integers).
pub fn n(v: i64) -> Value {
    Value::N(v.to_string())
}

/// Converts a serializable value into an item (`serde_dynamo`).
pub fn to_item<T: serde::Serialize>(value: &T) -> Result<Item> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Invalid(format!("cannot store value: {e}")))
}

/// Reads an item back into its type (`serde_dynamo`).
pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item)
        .map_err(|e| StoreError::Backend(anyhow::Error::new(e).context("stored item does not parse")))
}

/// Whether an item has passed its TTL at `now_secs`.
pub fn is_expired(item: &HashMap<String, Value>, now_secs: i64) -> bool {
    match item.get(TABLE.ttl_attribute) {
        Some(Value::N(n)) => n.parse::<f64>().map(|t| t <= now_secs as f64).unwrap_or(false),
        _ => false,
    }
}

/// The cursor that continues a query of `index` right after `item` (an item that query returned),
/// in either direction: what a page that stops at `item` hands on. `None` when the item lacks the
/// index's key attributes.
pub fn cursor_at(item: &Item, index: Index) -> Option<String> {
    let (index_pk, index_sk, _) = index.attributes();
    let mut key = HashMap::new();
    for name in [TABLE.pk, TABLE.sk, index_pk, index_sk] {
        match item.get(name) {
            Some(Value::S(v)) => key.insert(name.to_string(), Value::S(v.clone())),
            _ => return None,
        };
    }
    Some(encode_cursor(&key))
}

/// A query cursor, shared by both stores: the last evaluated key (table keys,
/// plus the index keys for an index query) as DynamoDB JSON, base64url
/// without padding. It is what DynamoDB calls `LastEvaluatedKey`.
fn encode_cursor(key: &HashMap<String, Value>) -> String {
    use base64::Engine;
    // A map of strings to attribute values always serializes.
    let json = serde_json::to_vec(key).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Reads a cursor back for `query`: exactly the key attributes of the queried
/// index, all strings, in the queried partition; anything else is [`StoreError::BadCursor`].
fn decode_cursor(cursor: &str, query: &Query) -> Result<HashMap<String, Value>> {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let key: HashMap<String, Value> = serde_json::from_slice(&json).map_err(|_| StoreError::BadCursor)?;
    let (index_pk, index_sk, _) = query.index.attributes();
    let expected = [TABLE.pk, TABLE.sk, index_pk, index_sk];
    let well_formed = key.keys().all(|name| expected.contains(&name.as_str()))
        && expected.iter().all(|name| matches!(key.get(*name), Some(Value::S(_))))
        && matches!(key.get(index_pk), Some(Value::S(pk)) if *pk == query.pk);
    if well_formed { Ok(key) } else { Err(StoreError::BadCursor) }
}
