//! The embedded store: the one table in a SQLite file, for the local stack and tests.
//!
//! Layout: one `items` table keyed by `(pk, sk)` holding each item as DynamoDB
//! JSON (`{"PK":{"S":"x"},"n":{"N":"5"}}`), with the index keys and the TTL
//! copied into columns. The GSI indexes are partial (sparse, as in DynamoDB):
//! an item is in GSI1 only when it has string `GSI1PK` and `GSI1SK`. SQLite's
//! BINARY collation compares text as bytes, which is DynamoDB's order for
//! string keys.
//!
//! Atomicity: one connection behind a mutex, and every write runs in one
//! `BEGIN IMMEDIATE` transaction that reads the item, evaluates the condition
//! in Rust and writes; writes are thereby serialized, within this process and
//! (through SQLite's lock and the busy timeout) with any other process sharing
//! the file.
//!
//! Durability: WAL with `synchronous=FULL`, so an acknowledged write survives a
//! power cut, as an acknowledged DynamoDB write does. `NORMAL` would be faster
//! but may lose the last commits.
//!
//! TTL: reads filter expired items at the store clock's now. Every write first
//! sweeps items expired for more than [`SWEEP_GRACE_SECS`] (and opening sweeps
//! too), so recently expired items stay visible to conditions, as they do in
//! DynamoDB until its sweeper runs, and old ones do not pile up.
//!
//! Numbers are validated with DynamoDB's limits (38 significant digits,
//! magnitudes 1E-130 to under 1E+126) and top-level ones are stored in its
//! canonical form (`"1.50"` is read back as `"1.5"`; DynamoDB Local leaves
//! numbers inside maps and lists as written, and so does this store).
//! Comparisons are exact.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use super::{
    Cond, Index, Item, Key, Page, Query, Result, SkCond, StoreError, TABLE, Update, UpdateAction, Value, Write,
    decode_cursor, encode_cursor, is_expired,
};
use crate::platform::clock::Clock;

/// `PRAGMA user_version` of the layout below; a file with another version is refused.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        gsi1pk TEXT,
        gsi1sk TEXT,
        gsi2pk TEXT,
        gsi2sk TEXT,
        expires_at REAL,
        data TEXT NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
    CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL;
    CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
";

/// How long another process may hold the write lock before a write fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an expired item stays (visible to conditions only) before writes sweep it.
pub const SWEEP_GRACE_SECS: i64 = 3600;

/// DynamoDB's limits on key attribute sizes, in bytes.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;

#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: &Path, clock: Clock) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("cannot open the store file {}", path.display()))?;
        let configure = || format!("cannot configure the store file {}", path.display());
        conn.busy_timeout(BUSY_TIMEOUT).with_context(configure)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).with_context(configure)?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("the store file {} cannot use write-ahead logging (journal mode {mode})", path.display());
        }
        conn.pragma_update(None, "synchronous", "FULL").with_context(configure)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).with_context(configure)?;
        match version {
            0 => conn
                .execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
                .with_context(|| format!("cannot create the store schema in {}", path.display()))?,
            SCHEMA_VERSION => {}
            other => bail!(
                "the store file {} has schema version {other}; this build reads version {SCHEMA_VERSION}",
                path.display()
            ),
        }
        sweep(&conn, clock.now_secs()).with_context(|| format!("cannot sweep expired items in {}", path.display()))?;
        Ok(EmbeddedStore { conn: Arc::new(Mutex::new(conn)), clock })
    }

    /// The schema is created by [`EmbeddedStore::open`]; nothing to do.
    pub async fn ensure_table(&self) -> Result<()> {
        Ok(())
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Item>> {
        check_key(key)?;
        let key = key.clone();
        let now = self.clock.now_secs();
        self.run(move |conn| {
            let data: Option<String> = conn
                .prepare_cached(
                    "SELECT data FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
                )
                .and_then(|mut stmt| stmt.query_row(params![key.pk, key.sk, now], |row| row.get(0)).optional())
                .map_err(sql("reading an item"))?;
            data.as_deref().map(decode).transpose()
        })
        .await
    }

    pub async fn put(&self, item: Item, cond: Option<Cond>) -> Result<()> {
        let item = check_item(item)?;
        let cond = cond.map(check_cond).transpose()?;
        self.write(move |tx, _now| {
            let key = item_key(&item)?;
            if let Some(cond) = &cond
                && !holds(cond, load(tx, &key)?.as_ref())
            {
                return Err(StoreError::ConditionFailed);
            }
            store(tx, &item)
        })
        .await
    }

    pub async fn update(&self, key: &Key, update: Update, cond: Option<Cond>) -> Result<Item> {
        check_key(key)?;
        let update = check_update(update)?;
        let cond = cond.map(check_cond).transpose()?;
        let key = key.clone();
        self.write(move |tx, _now| {
            let current = load(tx, &key)?;
            if let Some(cond) = &cond
                && !holds(cond, current.as_ref())
            {
                return Err(StoreError::ConditionFailed);
            }
            let item = apply_update(current, &key, &update)?;
            store(tx, &item)?;
            Ok(item)
        })
        .await
    }

    /// Deletes the item; returns it unless it had already expired (reads never see expired items).
    pub async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>> {
        check_key(key)?;
        let cond = cond.map(check_cond).transpose()?;
        let key = key.clone();
        self.write(move |tx, now| {
            let current = load(tx, &key)?;
            if let Some(cond) = &cond
                && !holds(cond, current.as_ref())
            {
                return Err(StoreError::ConditionFailed);
            }
            remove(tx, &key)?;
            Ok(current.filter(|item| !is_expired(item, now)))
        })
        .await
    }

    pub async fn query(&self, query: Query) -> Result<Page> {
        if query.pk.is_empty() {
            return Err(StoreError::Invalid("the partition key of a query must not be empty".into()));
        }
        if query.limit == Some(0) {
            return Err(StoreError::Invalid("the limit of a query must be at least 1".into()));
        }
        query.sk.as_ref().map(check_sk_cond).transpose()?;
        let filter = query.filter.clone().map(check_cond).transpose()?;
        let after = query.cursor.as_deref().map(|cursor| decode_cursor(cursor, &query)).transpose()?;
        let now = self.clock.now_secs();
        self.run(move |conn| {
            let (text, args) = query_sql(&query, after.as_ref(), now);
            let mut stmt = conn.prepare_cached(&text).map_err(sql("preparing a query"))?;
            let rows = stmt
                .query_map(params_from_iter(args), |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql("running a query"))?;
            let mut items = rows.iter().map(|data| decode(data)).collect::<Result<Vec<_>>>()?;
            let limit = query.limit.map_or(usize::MAX, |limit| limit as usize);
            // One row past the limit was asked for: its presence says more items follow.
            let cursor = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|last| encode_cursor(&key_attributes(last, query.index)))
            } else {
                None
            };
            // As DynamoDB: the limit counts the items read, the filter then drops some.
            if let Some(filter) = &filter {
                items.retain(|item| holds(filter, Some(item)));
            }
            Ok(Page { items, cursor })
        })
        .await
    }

    /// The items of the query's partition that pass its filter; `limit` and `cursor` are ignored.
    pub async fn count(&self, query: Query) -> Result<usize> {
        if query.pk.is_empty() {
            return Err(StoreError::Invalid("the partition key of a query must not be empty".into()));
        }
        query.sk.as_ref().map(check_sk_cond).transpose()?;
        let filter = query.filter.clone().map(check_cond).transpose()?;
        let query = Query { limit: None, cursor: None, ..query };
        let now = self.clock.now_secs();
        self.run(move |conn| {
            let (text, args) = query_sql(&query, None, now);
            let mut stmt = conn.prepare_cached(&text).map_err(sql("preparing a query"))?;
            let rows = stmt
                .query_map(params_from_iter(args), |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql("running a query"))?;
            match &filter {
                None => Ok(rows.len()),
                Some(filter) => {
                    let mut count = 0;
                    for data in &rows {
                        count += usize::from(holds(filter, Some(&decode(data)?)));
                    }
                    Ok(count)
                }
            }
        })
        .await
    }

    /// All or nothing: every condition is evaluated before anything is written.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        let writes = writes.into_iter().map(check_write).collect::<Result<Vec<_>>>()?;
        let mut keys = HashSet::new();
        for (i, (key, _)) in writes.iter().enumerate() {
            if !keys.insert(key.clone()) {
                return Err(StoreError::Invalid(format!("write {i} touches {key:?} a second time")));
            }
        }
        self.write(move |tx, _now| {
            let mut current = Vec::with_capacity(writes.len());
            let mut failed = Vec::new();
            for (i, (key, write)) in writes.iter().enumerate() {
                let item = load(tx, key)?;
                if write_cond(write).is_some_and(|cond| !holds(cond, item.as_ref())) {
                    failed.push(i);
                }
                current.push(item);
            }
            if !failed.is_empty() {
                return Err(StoreError::TransactionCanceled { failed });
            }
            for ((key, write), item) in writes.into_iter().zip(current) {
                match write {
                    Write::Put { item, .. } => store(tx, &item)?,
                    Write::Update { update, .. } => store(tx, &apply_update(item, &key, &update)?)?,
                    Write::Delete { .. } => remove(tx, &key)?,
                    Write::Check { .. } => {}
                }
            }
            Ok(())
        })
        .await
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Runs `f` on the connection, off the async runtime.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held leaves no open transaction behind
            // (dropping one rolls it back), so the connection is still sound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(anyhow::Error::new(e).context("the embedded store's worker failed")))?
    }

    /// Runs `f` in one immediate transaction, committed when `f` succeeds and
    /// rolled back otherwise. `f` gets the store clock's now.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, i64) -> Result<T> + Send + 'static,
    {
        let now = self.clock.now_secs();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql("starting a write"))?;
            sweep(&tx, now).map_err(sql("sweeping expired items"))?;
            let out = f(&tx, now)?;
            tx.commit().map_err(sql("committing a write"))?;
            Ok(out)
        })
        .await
    }
}

fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend(anyhow::Error::new(e).context(format!("embedded store: {context}")))
}

/// Deletes the items expired for more than [`SWEEP_GRACE_SECS`] at `now`.
fn sweep(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM items WHERE expires_at <= ?1")?.execute([now - SWEEP_GRACE_SECS])
}

fn decode(data: &str) -> Result<Item> {
    serde_json::from_str(data)
        .map_err(|e| StoreError::Backend(anyhow::Error::new(e).context("embedded store: a stored item does not parse")))
}

fn load(conn: &Connection, key: &Key) -> Result<Option<Item>> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut stmt| stmt.query_row(params![key.pk, key.sk], |row| row.get(0)).optional())
        .map_err(sql("reading an item"))?;
    data.as_deref().map(decode).transpose()
}

/// Writes a checked item (see [`check_item`]), replacing any item with its key.
fn store(conn: &Connection, item: &Item) -> Result<()> {
    let key = item_key(item)?;
    let index = |n: usize| match (item.get(TABLE.indexes[n].pk), item.get(TABLE.indexes[n].sk)) {
        (Some(Value::S(pk)), Some(Value::S(sk))) => (Some(pk.as_str()), Some(sk.as_str())),
        _ => (None, None),
    };
    let (gsi1pk, gsi1sk) = index(0);
    let (gsi2pk, gsi2sk) = index(1);
    let expires_at = match item.get(TABLE.ttl_attribute) {
        Some(Value::N(n)) => n.parse::<f64>().ok(),
        _ => None,
    };
    let data = serde_json::to_string(item)
        .map_err(|e| StoreError::Backend(anyhow::Error::new(e).context("embedded store: cannot encode an item")))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, expires_at, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| stmt.execute(params![key.pk, key.sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, expires_at, data]))
    .map_err(sql("writing an item"))?;
    Ok(())
}

fn remove(conn: &Connection, key: &Key) -> Result<()> {
    conn.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut stmt| stmt.execute(params![key.pk, key.sk]))
        .map_err(sql("deleting an item"))?;
    Ok(())
}

/// The SQL and arguments of a query, asking for one item past the limit.
fn query_sql(query: &Query, after: Option<&HashMap<String, Value>>, now: i64) -> (String, Vec<SqlValue>) {
    // Column names come from this fixed table, never from the caller.
    let (pk_col, sk_col) = match query.index {
        Index::Table => ("pk", "sk"),
        Index::Gsi1 => ("gsi1pk", "gsi1sk"),
        Index::Gsi2 => ("gsi2pk", "gsi2sk"),
    };
    let mut sql = format!("SELECT data FROM items WHERE {pk_col} = ? AND (expires_at IS NULL OR expires_at > ?)");
    let mut args = vec![SqlValue::Text(query.pk.clone()), SqlValue::Integer(now)];
    let mut arg = |sql: &mut String, clause: &str, value: &str| {
        sql.push_str(clause);
        args.push(SqlValue::Text(value.to_string()));
    };
    match &query.sk {
        None => {}
        Some(SkCond::Eq(v)) => arg(&mut sql, &format!(" AND {sk_col} = ?"), v),
        Some(SkCond::Lt(v)) => arg(&mut sql, &format!(" AND {sk_col} < ?"), v),
        Some(SkCond::Le(v)) => arg(&mut sql, &format!(" AND {sk_col} <= ?"), v),
        Some(SkCond::Gt(v)) => arg(&mut sql, &format!(" AND {sk_col} > ?"), v),
        Some(SkCond::Ge(v)) => arg(&mut sql, &format!(" AND {sk_col} >= ?"), v),
        Some(SkCond::Between(low, high)) => {
            arg(&mut sql, &format!(" AND {sk_col} >= ?"), low);
            arg(&mut sql, &format!(" AND {sk_col} <= ?"), high);
        }
        Some(SkCond::BeginsWith(prefix)) => {
            arg(&mut sql, &format!(" AND {sk_col} >= ?"), prefix);
            match successor(prefix) {
                Some(bound) => arg(&mut sql, &format!(" AND {sk_col} < ?"), &bound),
                // Only for prefixes of U+10FFFF alone: compare the prefix itself.
                None => arg(&mut sql, &format!(" AND substr({sk_col}, 1, {}) = ?", prefix.chars().count()), prefix),
            }
        }
    }
    // Index sort keys are not unique: the table key breaks ties, as in the cursor.
    let order: &[&str] = match query.index {
        Index::Table => &["sk"],
        Index::Gsi1 | Index::Gsi2 => &[sk_col, "pk", "sk"],
    };
    let direction = if query.descending { "DESC" } else { "ASC" };
    if let Some(after) = after {
        let (_, index_sk, _) = query.index.attributes();
        let names: &[&str] = match query.index {
            Index::Table => &[TABLE.sk],
            Index::Gsi1 | Index::Gsi2 => &[index_sk, TABLE.pk, TABLE.sk],
        };
        let placeholders = vec!["?"; order.len()].join(", ");
        let op = if query.descending { "<" } else { ">" };
        sql.push_str(&format!(" AND ({}) {op} ({placeholders})", order.join(", ")));
        for name in names {
            // decode_cursor checked that each is a string.
            if let Some(Value::S(v)) = after.get(*name) {
                args.push(SqlValue::Text(v.clone()));
            }
        }
    }
    let order_by = order.iter().map(|col| format!("{col} {direction}")).collect::<Vec<_>>().join(", ");
    sql.push_str(&format!(" ORDER BY {order_by}"));
    if let Some(limit) = query.limit {
        sql.push_str(" LIMIT ?");
        args.push(SqlValue::Integer(i64::from(limit) + 1));
    }
    (sql, args)
}

/// The least string greater than every string starting with `prefix`, if any.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // UTF-8 byte order is code point order, so the next code point sorts next.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The attributes a cursor records for the last item of a page.
fn key_attributes(item: &Item, index: Index) -> HashMap<String, Value> {
    let (index_pk, index_sk, _) = index.attributes();
    [TABLE.pk, TABLE.sk, index_pk, index_sk]
        .into_iter()
        .filter_map(|name| item.get(name).map(|v| (name.to_string(), v.clone())))
        .collect()
}

fn item_key(item: &Item) -> Result<Key> {
    Key::of(item).ok_or_else(|| StoreError::Invalid("an item needs string PK and SK attributes".into()))
}

fn check_key_value(name: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("the key attribute {name} must not be empty")));
    }
    if value.len() > max {
        return Err(StoreError::Invalid(format!("the key attribute {name} exceeds {max} bytes")));
    }
    Ok(())
}

fn check_key(key: &Key) -> Result<()> {
    check_key_value(TABLE.pk, &key.pk, MAX_PARTITION_KEY_BYTES)?;
    check_key_value(TABLE.sk, &key.sk, MAX_SORT_KEY_BYTES)
}

/// Validates an item as DynamoDB would and brings its numbers to canonical form.
fn check_item(item: Item) -> Result<Item> {
    check_key(&item_key(&item)?)?;
    let item: Item = item
        .inner()
        .iter()
        .map(|(name, value)| {
            check_name(name)?;
            Ok((name.clone(), normalize(value.clone())?))
        })
        .collect::<Result<HashMap<_, _>>>()?
        .into();
    check_index_keys(&item)?;
    Ok(item)
}

/// Index key attributes, when present, must be non-empty strings.
fn check_index_keys(item: &Item) -> Result<()> {
    for index in TABLE.indexes {
        for (name, max) in [(index.pk, MAX_PARTITION_KEY_BYTES), (index.sk, MAX_SORT_KEY_BYTES)] {
            match item.get(name) {
                None => {}
                Some(Value::S(v)) => check_key_value(name, v, max)?,
                Some(_) => return Err(StoreError::Invalid(format!("the index key attribute {name} must be a string"))),
            }
        }
    }
    Ok(())
}

/// Sort key conditions compare with non-empty strings; BETWEEN needs its bounds in order.
fn check_sk_cond(cond: &SkCond) -> Result<()> {
    let values = match cond {
        SkCond::Eq(v) | SkCond::Lt(v) | SkCond::Le(v) | SkCond::Gt(v) | SkCond::Ge(v) | SkCond::BeginsWith(v) => {
            vec![v]
        }
        SkCond::Between(low, high) if low > high => {
            return Err(StoreError::Invalid(format!("BETWEEN needs low <= high, got {low:?} and {high:?}")));
        }
        SkCond::Between(low, high) => vec![low, high],
    };
    if values.iter().any(|v| v.is_empty()) {
        return Err(StoreError::Invalid("a sort key condition cannot compare with an empty string".into()));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::Invalid("attribute names must not be empty".into()));
    }
    Ok(())
}

/// Validates a condition's names and values (as DynamoDB does before evaluating).
fn check_cond(cond: Cond) -> Result<Cond> {
    fn check(cond: &Cond) -> Result<()> {
        match cond {
            Cond::Exists(name) | Cond::NotExists(name) | Cond::BeginsWith(name, _) => check_name(name),
            Cond::Eq(name, v) | Cond::Ne(name, v) => {
                check_name(name)?;
                normalize(v.clone()).map(drop)
            }
            Cond::Lt(name, v) | Cond::Le(name, v) | Cond::Gt(name, v) | Cond::Ge(name, v) => {
                check_name(name)?;
                if !matches!(v, Value::N(_) | Value::S(_) | Value::B(_)) {
                    return Err(StoreError::Invalid(format!(
                        "{name} can only be ordered against a number, string or binary"
                    )));
                }
                normalize(v.clone()).map(drop)
            }
            Cond::And(all) | Cond::Or(all) if all.is_empty() => {
                Err(StoreError::Invalid("an And or Or condition needs at least one operand".into()))
            }
            Cond::And(all) | Cond::Or(all) => all.iter().try_for_each(check),
            Cond::Not(inner) => check(inner),
        }
    }
    check(&cond)?;
    Ok(cond)
}

/// Validates an update: at least one action, each on a distinct non-key attribute.
fn check_update(update: Update) -> Result<Update> {
    if update.actions.is_empty() {
        return Err(StoreError::Invalid("an update needs at least one action".into()));
    }
    let mut names = HashSet::new();
    let actions = update
        .actions
        .into_iter()
        .map(|action| {
            let name = match &action {
                UpdateAction::Set(name, _)
                | UpdateAction::SetIfNotExists(name, _)
                | UpdateAction::Add(name, _)
                | UpdateAction::Remove(name) => name.clone(),
            };
            check_name(&name)?;
            if name == TABLE.pk || name == TABLE.sk {
                return Err(StoreError::Invalid(format!("an update cannot change the key attribute {name}")));
            }
            if !names.insert(name.clone()) {
                return Err(StoreError::Invalid(format!("an update touches {name} twice")));
            }
            Ok(match action {
                UpdateAction::Set(name, v) => UpdateAction::Set(name, normalize(v)?),
                UpdateAction::SetIfNotExists(name, v) => UpdateAction::SetIfNotExists(name, normalize(v)?),
                other => other,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Update { actions })
}

/// Checks one transaction write, returning it with its key.
fn check_write(write: Write) -> Result<(Key, Write)> {
    let write = match write {
        Write::Put { item, cond } => Write::Put { item: check_item(item)?, cond: cond.map(check_cond).transpose()? },
        Write::Update { key, update, cond } => {
            check_key(&key)?;
            Write::Update { key, update: check_update(update)?, cond: cond.map(check_cond).transpose()? }
        }
        Write::Delete { key, cond } => {
            check_key(&key)?;
            Write::Delete { key, cond: cond.map(check_cond).transpose()? }
        }
        Write::Check { key, cond } => {
            check_key(&key)?;
            Write::Check { key, cond: check_cond(cond)? }
        }
    };
    let key = write.key().ok_or_else(|| StoreError::Invalid("a write has no PK/SK".into()))?;
    Ok((key, write))
}

fn write_cond(write: &Write) -> Option<&Cond> {
    match write {
        Write::Put { cond, .. } | Write::Update { cond, .. } | Write::Delete { cond, .. } => cond.as_ref(),
        Write::Check { cond, .. } => Some(cond),
    }
}

/// The item after a checked update (see [`check_update`]); every action reads the item as it was.
fn apply_update(current: Option<Item>, key: &Key, update: &Update) -> Result<Item> {
    let old = current.unwrap_or_else(|| key.to_item());
    let mut new = old.clone();
    for action in &update.actions {
        match action {
            UpdateAction::Set(name, v) => {
                new.insert(name.clone(), v.clone());
            }
            UpdateAction::SetIfNotExists(name, v) => {
                if !old.contains_key(name) {
                    new.insert(name.clone(), v.clone());
                }
            }
            UpdateAction::Add(name, by) => {
                let by = Number::from(*by);
                let sum = match old.get(name) {
                    None => by,
                    Some(Value::N(n)) => number(n)?.add(&by),
                    Some(_) => return Err(StoreError::Invalid(format!("cannot add to {name}: it is not a number"))),
                };
                sum.check_range().map_err(|e| StoreError::Invalid(format!("adding to {name}: {e}")))?;
                new.insert(name.clone(), Value::N(sum.to_string()));
            }
            UpdateAction::Remove(name) => {
                new.remove(name);
            }
        }
    }
    check_index_keys(&new)?;
    Ok(new)
}

/// Whether `cond` holds on `item` (`None`: no item, so every attribute is absent).
fn holds(cond: &Cond, item: Option<&Item>) -> bool {
    let get = |name: &str| item.and_then(|item| item.get(name));
    let ordered = |name: &str, v: &Value, accept: fn(Ordering) -> bool| {
        get(name).and_then(|current| order(current, v)).is_some_and(accept)
    };
    match cond {
        Cond::Exists(name) => get(name).is_some(),
        Cond::NotExists(name) => get(name).is_none(),
        Cond::Eq(name, v) => get(name).is_some_and(|current| equal(current, v)),
        Cond::Ne(name, v) => !get(name).is_some_and(|current| equal(current, v)),
        Cond::Lt(name, v) => ordered(name, v, Ordering::is_lt),
        Cond::Le(name, v) => ordered(name, v, Ordering::is_le),
        Cond::Gt(name, v) => ordered(name, v, Ordering::is_gt),
        Cond::Ge(name, v) => ordered(name, v, Ordering::is_ge),
        Cond::BeginsWith(name, prefix) => matches!(get(name), Some(Value::S(s)) if s.starts_with(prefix.as_str())),
        Cond::And(all) => all.iter().all(|c| holds(c, item)),
        Cond::Or(any) => any.iter().any(|c| holds(c, item)),
        Cond::Not(inner) => !holds(inner, item),
    }
}

/// DynamoDB's `=`: same type and value; numbers by value, sets regardless of order.
fn equal(a: &Value, b: &Value) -> bool {
    fn same_set<T: Eq + std::hash::Hash>(a: impl IntoIterator<Item = T>, b: impl IntoIterator<Item = T>) -> bool {
        a.into_iter().collect::<HashSet<_>>() == b.into_iter().collect::<HashSet<_>>()
    }
    let canonical = |ns: &[String]| ns.iter().map(|n| Number::parse(n).map(|n| n.to_string())).collect::<Vec<_>>();
    match (a, b) {
        (Value::N(x), Value::N(y)) => order(a, b) == Some(Ordering::Equal) || x == y,
        (Value::S(x), Value::S(y)) => x == y,
        (Value::B(x), Value::B(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null(_), Value::Null(_)) => true,
        (Value::Ss(x), Value::Ss(y)) => same_set(x, y),
        (Value::Ns(x), Value::Ns(y)) => same_set(canonical(x), canonical(y)),
        (Value::Bs(x), Value::Bs(y)) => same_set(x, y),
        (Value::M(x), Value::M(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        (Value::L(x), Value::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| equal(v, w)),
        _ => false,
    }
}

/// DynamoDB's `<` family: numbers by value, strings and binaries by bytes; other pairs do not compare.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::N(x), Value::N(y)) => Some(Number::parse(x)?.cmp(&Number::parse(y)?)),
        (Value::S(x), Value::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::B(x), Value::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Validates a value as DynamoDB does (numbers, non-empty sets without
/// duplicates, `NULL` true) and brings its numbers to canonical form.
fn normalize(value: Value) -> Result<Value> {
    normalize_at(value, true)
}

/// As [`normalize`]; inside maps and lists (`top` false) numbers are only
/// validated and keep their spelling, as DynamoDB Local keeps them.
fn normalize_at(value: Value, top: bool) -> Result<Value> {
    fn distinct<T: Eq + std::hash::Hash>(kind: &str, items: impl ExactSizeIterator<Item = T>) -> Result<()> {
        let len = items.len();
        if len == 0 {
            return Err(StoreError::Invalid(format!("a {kind} set must not be empty")));
        }
        if items.collect::<HashSet<_>>().len() != len {
            return Err(StoreError::Invalid(format!("a {kind} set contains duplicates")));
        }
        Ok(())
    }
    let spell = |n: String| -> Result<String> {
        let parsed = number(&n)?;
        Ok(if top { parsed.to_string() } else { n })
    };
    Ok(match value {
        Value::N(n) => Value::N(spell(n)?),
        Value::Null(false) => return Err(StoreError::Invalid("a NULL value must be true".into())),
        Value::Ss(ss) => {
            distinct("string", ss.iter())?;
            Value::Ss(ss)
        }
        Value::Bs(bs) => {
            distinct("binary", bs.iter())?;
            Value::Bs(bs)
        }
        Value::Ns(ns) => {
            // Duplicates by value: 1 and 1.0 are the same member.
            distinct(
                "number",
                ns.iter().map(|n| number(n).map(|n| n.to_string())).collect::<Result<Vec<_>>>()?.into_iter(),
            )?;
            Value::Ns(ns.into_iter().map(spell).collect::<Result<_>>()?)
        }
        Value::M(m) => Value::M(m.into_iter().map(|(k, v)| Ok((k, normalize_at(v, false)?))).collect::<Result<_>>()?),
        Value::L(l) => Value::L(l.into_iter().map(|v| normalize_at(v, false)).collect::<Result<_>>()?),
        other => other,
    })
}

/// Parses a number that DynamoDB would accept.
fn number(n: &str) -> Result<Number> {
    let parsed =
        Number::parse(n).ok_or_else(|| StoreError::Invalid(format!("{n:?} cannot be converted into a number")))?;
    parsed.check_range().map_err(|e| StoreError::Invalid(format!("{n:?}: {e}")))?;
    Ok(parsed)
}

/// A DynamoDB number, exactly: `±0.d₁d₂…dₙ × 10^exp` with digits free of
/// leading and trailing zeros (no digits: zero, which is never negative).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Number {
    negative: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Number {
    const MAX_DIGITS: usize = 38;
    /// Every magnitude is in `[1E-130, 1E+126)`.
    const MIN_EXP: i64 = -129;
    const MAX_EXP: i64 = 126;

    fn zero() -> Number {
        Number { negative: false, digits: Vec::new(), exp: 0 }
    }

    /// Decimal notation with optional sign, fraction and exponent (`-1.5E+3`).
    fn parse(s: &str) -> Option<Number> {
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, Some(exponent)),
            None => (rest, None),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let shift = match exponent {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                // Longer exponents are far out of range anyway.
                if digits.is_empty() || digits.len() > 9 || !all_digits(digits) {
                    return None;
                }
                let value: i64 = digits.parse().ok()?;
                if e.starts_with('-') { -value } else { value }
            }
        };
        let digits = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        Some(Number::from_digits(negative, digits, i64::try_from(int.len()).ok()? + shift))
    }

    /// `±0.digits × 10^exp` in canonical form.
    fn from_digits(negative: bool, mut digits: Vec<u8>, mut exp: i64) -> Number {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        exp -= leading as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() { Number::zero() } else { Number { negative, digits, exp } }
    }

    fn check_range(&self) -> Result<(), &'static str> {
        if self.digits.is_empty() {
            Ok(())
        } else if self.digits.len() > Self::MAX_DIGITS {
            Err("DynamoDB numbers have at most 38 significant digits")
        } else if self.exp > Self::MAX_EXP {
            Err("number overflow: the magnitude is above DynamoDB's range")
        } else if self.exp < Self::MIN_EXP {
            Err("number underflow: the magnitude is below DynamoDB's range")
        } else {
            Ok(())
        }
    }

    fn add(&self, other: &Number) -> Number {
        if self.digits.is_empty() {
            return other.clone();
        }
        if other.digits.is_empty() {
            return self.clone();
        }
        // Both as integers of the same power of ten: value = int × 10^low.
        let scale = |n: &Number| n.exp - n.digits.len() as i64;
        let low = scale(self).min(scale(other));
        let integer = |n: &Number| {
            let mut digits = n.digits.clone();
            digits.resize(n.digits.len() + (scale(n) - low) as usize, 0);
            digits
        };
        let (a, b) = (integer(self), integer(other));
        let (negative, sum) = if self.negative == other.negative {
            (self.negative, add_digits(&a, &b))
        } else {
            match compare_digits(&a, &b) {
                Ordering::Equal => return Number::zero(),
                Ordering::Greater => (self.negative, sub_digits(&a, &b)),
                Ordering::Less => (other.negative, sub_digits(&b, &a)),
            }
        };
        let exp = sum.len() as i64 + low;
        Number::from_digits(negative, sum, exp)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        let digits = n.unsigned_abs().to_string().bytes().map(|b| b - b'0').collect::<Vec<_>>();
        let exp = digits.len() as i64;
        Number::from_digits(n < 0, digits, exp)
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        let sign = |n: &Number| match (n.digits.is_empty(), n.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let magnitude = self.exp.cmp(&other.exp).then_with(|| self.digits.cmp(&other.digits));
        sign(self).cmp(&sign(other)).then(if self.negative { magnitude.reverse() } else { magnitude })
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation, as DynamoDB returns numbers (`100`, `0.001`, never `1E+2`).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let sign = if self.negative { "-" } else { "" };
        let len = digits.len() as i64;
        if self.exp <= 0 {
            write!(f, "{sign}0.{}{digits}", "0".repeat(self.exp.unsigned_abs() as usize))
        } else if self.exp >= len {
            write!(f, "{sign}{digits}{}", "0".repeat((self.exp - len) as usize))
        } else {
            let (int, frac) = digits.split_at(self.exp as usize);
            write!(f, "{sign}{int}.{frac}")
        }
    }
}

/// Compares unsigned big-endian digit strings by value.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |d: &[u8]| d.iter().position(|&x| x != 0).map_or(0, |start| d.len() - start);
    let (a, b) = (&a[a.len() - trim(a)..], &b[b.len() - trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut a, mut b, mut carry) = (a.iter().rev(), b.iter().rev(), 0);
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        let sum = x.copied().unwrap_or(0) + y.copied().unwrap_or(0) + carry;
        out.push(sum % 10);
        carry = sum / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    out.reverse();
    out
}

/// `a - b` for `a >= b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut b = b.iter().rev();
    let mut borrow = 0;
    for &x in a.iter().rev() {
        let y = b.next().copied().unwrap_or(0) + borrow;
        if x >= y {
            out.push(x - y);
            borrow = 0;
        } else {
            out.push(x + 10 - y);
            borrow = 1;
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Number::parse(s).map(|n| n.to_string()).unwrap_or_else(|| "invalid".into())
    }

    #[test]
    fn numbers_read_back_in_dynamodb_canonical_form() {
        for (input, expected) in [
            ("1E+2", "100"),
            ("1.50", "1.5"),
            ("-0", "0"),
            ("007", "7"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+3", "3"),
            ("0.000123", "0.000123"),
            ("-12.3400e-2", "-0.1234"),
            ("1e-3", "0.001"),
        ] {
            assert_eq!(canon(input), expected, "{input}");
        }
        for invalid in ["", "-", ".", "1e", "NaN", "Infinity", "0x10", "1_0", " 5", "--1", "1e+"] {
            assert!(Number::parse(invalid).is_none(), "{invalid:?} parsed");
        }
    }

    #[test]
    fn numbers_outside_dynamodb_limits_are_refused() {
        assert!(number("1E+126").is_err());
        assert!(number("9.9999999999999999999999999999999999999E+125").is_ok());
        assert!(number("1E-130").is_ok());
        assert!(number("1E-131").is_err());
        assert!(number("12345678901234567890123456789012345678").is_ok());
        assert!(number("123456789012345678901234567890123456789").is_err());
        assert!(number("1234567890123456789012345678901234567800").is_ok());
    }

    #[test]
    fn numbers_compare_and_add_exactly() {
        let n = |s: &str| Number::parse(s).unwrap();
        assert!(n("9") < n("10"));
        assert!(n("-10") < n("-9"));
        assert!(n("-0.5") < n("0"));
        assert!(n("0.1") < n("0.10000000000000000000000000001"));
        assert_eq!(n("1.0").cmp(&n("1")), Ordering::Equal);
        assert_eq!(n("0.1").add(&Number::from(2)).to_string(), "2.1");
        assert_eq!(n("5").add(&Number::from(-7)).to_string(), "-2");
        assert_eq!(n("-5").add(&Number::from(5)).to_string(), "0");
        assert_eq!(n("99999999999999999999").add(&Number::from(1)).to_string(), "100000000000000000000");
        assert_eq!(n("1000").add(&Number::from(-1)).to_string(), "999");
        assert_eq!(n("-1.25").add(&Number::from(1)).to_string(), "-0.25");
        assert_eq!(Number::from(i64::MIN).to_string(), i64::MIN.to_string());
    }

    #[test]
    fn prefix_successors_bound_every_string_with_the_prefix() {
        assert_eq!(successor("ab").as_deref(), Some("ac"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        assert_eq!(successor(""), None);
    }
}
