//! The DynamoDB store: the one table, through `aws-sdk-dynamodb`.
//!
//! This is the only place that writes DynamoDB expressions. Every attribute
//! name and value goes through a placeholder (`#n0`, `:v0`), so no caller
//! string is ever parsed as expression syntax.
//!
//! Reads filter items past their TTL at the store clock's now (DynamoDB, and
//! DynamoDB Local even more so, deletes expired items late or never). Query
//! cursors are the `LastEvaluatedKey` as DynamoDB JSON in base64url.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    self as sdk, AttributeDefinition, AttributeValue as SdkValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType, Select, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
};

use super::{
    Cond, Item, Key, Page, Query, Result, SkCond, StoreError, TABLE, Update, UpdateAction, Value, Write, decode_cursor,
    encode_cursor, is_expired,
};
use crate::platform::clock::Clock;

/// How long `ensure_table` waits for a new table (and its indexes) to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Most DynamoDB requests one `query` makes to fill a page that its filter
/// (expired items) thinned out; after that the page is returned short.
const MAX_QUERY_ROUNDS: usize = 8;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    clock: Clock,
}

impl DynamoStore {
    pub fn new(client: Client, table: String, clock: Clock) -> Self {
        DynamoStore { client, table: table.into(), clock }
    }

    /// Creates the table as [`TABLE`] declares it when missing, waits until it
    /// is active and enables TTL. An existing table must have the declared keys.
    pub async fn ensure_table(&self) -> Result<()> {
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(build_error)
        };
        let mut create = self
            .client
            .create_table()
            .table_name(&*self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute(TABLE.pk)?)
            .attribute_definitions(string_attribute(TABLE.sk)?)
            .key_schema(key(TABLE.pk, KeyType::Hash)?)
            .key_schema(key(TABLE.sk, KeyType::Range)?);
        for index in TABLE.indexes {
            create = create
                .attribute_definitions(string_attribute(index.pk)?)
                .attribute_definitions(string_attribute(index.sk)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index.name)
                        .key_schema(key(index.pk, KeyType::Hash)?)
                        .key_schema(key(index.sk, KeyType::Range)?)
                        .projection(Projection::builder().projection_type(ProjectionType::All).build())
                        .build()
                        .map_err(build_error)?,
                );
        }
        match create.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(self.sdk_error("CreateTable", e)),
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    async fn wait_until_active(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&*self.table)
                .send()
                .await
                .map_err(|e| self.sdk_error("DescribeTable", e))?;
            let table =
                out.table.ok_or_else(|| backend(format!("DescribeTable on {} returned no table", self.table)))?;
            let has_key = |schema: &[KeySchemaElement], name: &str, key_type: KeyType| {
                schema.iter().any(|k| k.attribute_name() == name && *k.key_type() == key_type)
            };
            let keys_match = has_key(table.key_schema(), TABLE.pk, KeyType::Hash)
                && has_key(table.key_schema(), TABLE.sk, KeyType::Range);
            let indexes = table.global_secondary_indexes();
            let missing = TABLE
                .indexes
                .iter()
                .filter(|def| {
                    !indexes.iter().any(|index| {
                        index.index_name() == Some(def.name)
                            && has_key(index.key_schema(), def.pk, KeyType::Hash)
                            && has_key(index.key_schema(), def.sk, KeyType::Range)
                    })
                })
                .map(|def| def.name)
                .collect::<Vec<_>>();
            if !keys_match || !missing.is_empty() {
                return Err(backend(format!(
                    "table {} exists with another shape (key schema as declared: {keys_match}, indexes missing or \
                     different: {missing:?})",
                    self.table
                )));
            }
            let active = table.table_status() == Some(&TableStatus::Active)
                && indexes.iter().all(|index| index.index_status() == Some(&IndexStatus::Active));
            if active {
                return Ok(());
            }
            if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
                return Err(backend(format!("table {} is not active after {TABLE_ACTIVE_TIMEOUT:?}", self.table)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Enables TTL on [`TABLE`]'s attribute unless it already is (DynamoDB
    /// refuses to enable it twice, and allows one change per hour).
    async fn enable_ttl(&self) -> Result<()> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&*self.table)
            .send()
            .await
            .map_err(|e| self.sdk_error("DescribeTimeToLive", e))?;
        if let Some(ttl) = described.time_to_live_description()
            && matches!(ttl.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
        {
            return match ttl.attribute_name() {
                Some(name) if name == TABLE.ttl_attribute => Ok(()),
                other => {
                    Err(backend(format!("table {} has TTL on {other:?}, not on {}", self.table, TABLE.ttl_attribute)))
                }
            };
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(TABLE.ttl_attribute)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        match self.client.update_time_to_live().table_name(&*self.table).time_to_live_specification(spec).send().await {
            Ok(_) => Ok(()),
            // Another process enabled it between the two calls.
            Err(e) if e.as_service_error().and_then(|e| e.message()).is_some_and(|m| m.contains("already enabled")) => {
                Ok(())
            }
            Err(e) => Err(self.sdk_error("UpdateTimeToLive", e)),
        }
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e))?;
        let now = self.clock.now_secs();
        Ok(out.item.map(item_from_sdk).transpose()?.filter(|item| !is_expired(item, now)))
    }

    pub async fn put(&self, item: Item, cond: Option<Cond>) -> Result<()> {
        check_item_key(&item)?;
        let mut expr = Expr::default();
        let cond = cond.map(|c| expr.cond(&c)).transpose()?;
        let (names, values) = expr.into_parts();
        self.client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item.into()))
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| self.sdk_error("PutItem", e))?;
        Ok(())
    }

    pub async fn update(&self, key: &Key, update: Update, cond: Option<Cond>) -> Result<Item> {
        let mut expr = Expr::default();
        let update = expr.update(&update)?;
        let cond = cond.map(|c| expr.cond(&c)).transpose()?;
        let (names, values) = expr.into_parts();
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key_map(key)))
            .update_expression(update)
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateItem", e))?;
        item_from_sdk(out.attributes.unwrap_or_default())
    }

    /// Deletes the item; returns it unless it had already expired (reads never see expired items).
    pub async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>> {
        let mut expr = Expr::default();
        let cond = cond.map(|c| expr.cond(&c)).transpose()?;
        let (names, values) = expr.into_parts();
        let out = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key_map(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.sdk_error("DeleteItem", e))?;
        let now = self.clock.now_secs();
        Ok(out.attributes.map(item_from_sdk).transpose()?.filter(|item| !is_expired(item, now)))
    }

    /// The Query request of `query`: its table or index, key condition and filter (the query's own
    /// and the TTL's), strongly consistent on the table (GSIs refuse it).
    fn query_request(&self, query: &Query) -> Result<QueryFluentBuilder> {
        let (pk_name, sk_name, index_name) = query.index.attributes();
        let mut expr = Expr::default();
        let pk = format!("{} = {}", expr.name(pk_name), expr.value(&Value::S(query.pk.clone())));
        let key_condition = match &query.sk {
            None => pk,
            Some(cond) => {
                let sk = expr.name(sk_name);
                let mut value = |v: &String| expr.value(&Value::S(v.clone()));
                let sk = match cond {
                    SkCond::Eq(v) => format!("{sk} = {}", value(v)),
                    SkCond::Lt(v) => format!("{sk} < {}", value(v)),
                    SkCond::Le(v) => format!("{sk} <= {}", value(v)),
                    SkCond::Gt(v) => format!("{sk} > {}", value(v)),
                    SkCond::Ge(v) => format!("{sk} >= {}", value(v)),
                    SkCond::Between(low, high) => format!("{sk} BETWEEN {} AND {}", value(low), value(high)),
                    SkCond::BeginsWith(prefix) => format!("begins_with({sk}, {})", value(prefix)),
                };
                format!("{pk} AND {sk}")
            }
        };
        // Hides items past their TTL as `is_expired` does: a TTL that is not a number never expires.
        let ttl = expr.name(TABLE.ttl_attribute);
        let number_type = expr.value(&Value::S("N".into()));
        let now = expr.value(&Value::N(self.clock.now_secs().to_string()));
        let mut filter =
            format!("(attribute_not_exists({ttl}) OR NOT attribute_type({ttl}, {number_type}) OR {ttl} > {now})");
        if let Some(cond) = &query.filter {
            filter = format!("{filter} AND {}", expr.cond(cond)?);
        }
        let (names, values) = expr.into_parts();
        Ok(self
            .client
            .query()
            .table_name(&*self.table)
            .set_index_name(index_name.map(str::to_string))
            .key_condition_expression(key_condition)
            .filter_expression(filter)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .consistent_read(index_name.is_none()))
    }

    /// One page; when the filter (the query's own, and expired items) thins a page out, asks
    /// DynamoDB again (up to [`MAX_QUERY_ROUNDS`] times) to fill it up to the limit.
    pub async fn query(&self, query: Query) -> Result<Page> {
        let mut start = query.cursor.as_deref().map(|cursor| decode_cursor(cursor, &query)).transpose()?;
        let request = self.query_request(&query)?.scan_index_forward(!query.descending);

        let mut items = Vec::new();
        for _ in 0..MAX_QUERY_ROUNDS {
            let remaining = query.limit.map(|limit| limit.saturating_sub(items.len() as u32));
            let out = request
                .clone()
                .set_limit(remaining.map(|n| i32::try_from(n).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take().map(|key| key.into_iter().map(|(k, v)| (k, v.into())).collect()))
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", e))?;
            for item in out.items.unwrap_or_default() {
                items.push(item_from_sdk(item)?);
            }
            start = out
                .last_evaluated_key
                .map(|key| key.into_iter().map(|(k, v)| Ok((k, value_from_sdk(v)?))).collect::<Result<_>>())
                .transpose()?;
            let full = query.limit.is_none_or(|limit| items.len() >= limit as usize);
            if start.is_none() || full {
                break;
            }
        }
        Ok(Page { items, cursor: start.as_ref().map(encode_cursor) })
    }

    /// `Select=COUNT`, page after page (1 MB of items read each).
    pub async fn count(&self, query: Query) -> Result<usize> {
        let request = self.query_request(&query)?.select(Select::Count);
        let mut total = 0usize;
        let mut start = None;
        loop {
            let out =
                request.clone().set_exclusive_start_key(start).send().await.map_err(|e| self.sdk_error("Query", e))?;
            total += usize::try_from(out.count).unwrap_or_default();
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }

    /// `TransactWriteItems`: all or nothing.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        let items = writes.into_iter().map(|write| self.transact_item(write)).collect::<Result<Vec<_>>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // Makes the SDK's retries idempotent: DynamoDB applies a token's transaction once.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) = err.as_service_error() {
            let reasons = canceled.cancellation_reasons();
            let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
            let failed = (0..reasons.len()).filter(|&i| code(i) == "ConditionalCheckFailed").collect::<Vec<_>>();
            if !failed.is_empty() {
                return Err(StoreError::TransactionCanceled { failed });
            }
            if (0..reasons.len()).any(|i| code(i) == "TransactionConflict")
                && (0..reasons.len()).all(|i| matches!(code(i), "TransactionConflict" | "None"))
            {
                return Err(StoreError::Conflict);
            }
            if let Some(reason) = reasons.iter().find(|r| r.code() == Some("ValidationError")) {
                return Err(StoreError::Invalid(format!(
                    "TransactWriteItems: {}",
                    reason.message().unwrap_or("a write is not valid")
                )));
            }
        }
        if err.as_service_error().is_some_and(|e| e.is_transaction_in_progress_exception()) {
            return Err(StoreError::Conflict);
        }
        Err(self.sdk_error("TransactWriteItems", err))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem> {
        let mut expr = Expr::default();
        let item = match write {
            Write::Put { item, cond } => {
                check_item_key(&item)?;
                let cond = cond.map(|c| expr.cond(&c)).transpose()?;
                let (names, values) = expr.into_parts();
                let put = sdk::Put::builder()
                    .table_name(&*self.table)
                    .set_item(Some(item.into()))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put)
            }
            Write::Update { key, update, cond } => {
                let update = expr.update(&update)?;
                let cond = cond.map(|c| expr.cond(&c)).transpose()?;
                let (names, values) = expr.into_parts();
                let update = sdk::Update::builder()
                    .table_name(&*self.table)
                    .set_key(Some(key_map(&key)))
                    .update_expression(update)
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update)
            }
            Write::Delete { key, cond } => {
                let cond = cond.map(|c| expr.cond(&c)).transpose()?;
                let (names, values) = expr.into_parts();
                let delete = sdk::Delete::builder()
                    .table_name(&*self.table)
                    .set_key(Some(key_map(&key)))
                    .set_condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().delete(delete)
            }
            Write::Check { key, cond } => {
                let cond = expr.cond(&cond)?;
                let (names, values) = expr.into_parts();
                let check = sdk::ConditionCheck::builder()
                    .table_name(&*self.table)
                    .set_key(Some(key_map(&key)))
                    .condition_expression(cond)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check)
            }
        };
        Ok(item.build())
    }

    /// Maps an SDK error: failed conditions, conflicts and validation errors
    /// to their variants, anything else to `Backend` with the whole cause.
    fn sdk_error<E, R>(&self, operation: &str, err: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        if let Some(service) = err.as_service_error() {
            match service.code() {
                Some("ConditionalCheckFailedException") => return StoreError::ConditionFailed,
                Some("TransactionConflictException") => return StoreError::Conflict,
                Some("ValidationException") => {
                    return StoreError::Invalid(format!(
                        "{operation}: {}",
                        service.message().unwrap_or("the request is not valid")
                    ));
                }
                _ => {}
            }
        }
        let context = format!("DynamoDB {operation} on table {}: {}", self.table, DisplayErrorContext(&err));
        StoreError::Backend(anyhow::Error::new(err).context(context))
    }
}

fn backend(message: String) -> StoreError {
    StoreError::Backend(anyhow::Error::msg(message))
}

fn build_error(e: BuildError) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("cannot build a DynamoDB request"))
}

fn check_item_key(item: &Item) -> Result<()> {
    match Key::of(item) {
        Some(_) => Ok(()),
        None => Err(StoreError::Invalid("an item needs string PK and SK attributes".into())),
    }
}

fn key_map(key: &Key) -> HashMap<String, SdkValue> {
    HashMap::from([
        (TABLE.pk.to_string(), SdkValue::S(key.pk.clone())),
        (TABLE.sk.to_string(), SdkValue::S(key.sk.clone())),
    ])
}

fn item_from_sdk(item: HashMap<String, SdkValue>) -> Result<Item> {
    Ok(item.into_iter().map(|(k, v)| Ok((k, value_from_sdk(v)?))).collect::<Result<HashMap<_, _>>>()?.into())
}

/// The SDK's value as ours. Unlike `serde_dynamo`'s `From`, which panics on
/// a type the SDK does not know, this returns an error.
fn value_from_sdk(value: SdkValue) -> Result<Value> {
    Ok(match value {
        SdkValue::N(n) => Value::N(n),
        SdkValue::S(s) => Value::S(s),
        SdkValue::Bool(b) => Value::Bool(b),
        SdkValue::B(b) => Value::B(b.into_inner()),
        SdkValue::Null(null) => Value::Null(null),
        SdkValue::M(m) => Value::M(m.into_iter().map(|(k, v)| Ok((k, value_from_sdk(v)?))).collect::<Result<_>>()?),
        SdkValue::L(l) => Value::L(l.into_iter().map(value_from_sdk).collect::<Result<_>>()?),
        SdkValue::Ss(ss) => Value::Ss(ss),
        SdkValue::Ns(ns) => Value::Ns(ns),
        SdkValue::Bs(bs) => Value::Bs(bs.into_iter().map(Blob::into_inner).collect()),
        other => return Err(backend(format!("DynamoDB returned a value of an unknown type: {other:?}"))),
    })
}

/// Builds expressions: each attribute name and value becomes a placeholder.
#[derive(Default)]
struct Expr {
    /// placeholder → attribute name, as DynamoDB wants it.
    names: HashMap<String, String>,
    /// attribute name → placeholder, so a name used twice has one placeholder.
    placeholders: HashMap<String, String>,
    values: HashMap<String, SdkValue>,
}

type Placeholders = (Option<HashMap<String, String>>, Option<HashMap<String, SdkValue>>);

impl Expr {
    fn name(&mut self, name: &str) -> String {
        if let Some(placeholder) = self.placeholders.get(name) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.placeholders.len());
        self.placeholders.insert(name.to_string(), placeholder.clone());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }

    fn value(&mut self, value: &Value) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value.clone().into());
        placeholder
    }

    fn cond(&mut self, cond: &Cond) -> Result<String> {
        let mut compare =
            |name: &str, op: &str, value: &Value| format!("{} {op} {}", self.name(name), self.value(value));
        Ok(match cond {
            Cond::Exists(name) => format!("attribute_exists({})", self.name(name)),
            Cond::NotExists(name) => format!("attribute_not_exists({})", self.name(name)),
            Cond::Eq(name, v) => compare(name, "=", v),
            Cond::Ne(name, v) => compare(name, "<>", v),
            Cond::Lt(name, v) => compare(name, "<", v),
            Cond::Le(name, v) => compare(name, "<=", v),
            Cond::Gt(name, v) => compare(name, ">", v),
            Cond::Ge(name, v) => compare(name, ">=", v),
            Cond::BeginsWith(name, prefix) => {
                format!("begins_with({}, {})", self.name(name), self.value(&Value::S(prefix.clone())))
            }
            Cond::And(all) | Cond::Or(all) if all.is_empty() => {
                return Err(StoreError::Invalid("an And or Or condition needs at least one operand".into()));
            }
            Cond::And(all) => self.join(all, " AND ")?,
            Cond::Or(any) => self.join(any, " OR ")?,
            Cond::Not(inner) => format!("(NOT {})", self.cond(inner)?),
        })
    }

    fn join(&mut self, conds: &[Cond], op: &str) -> Result<String> {
        let parts = conds.iter().map(|c| self.cond(c)).collect::<Result<Vec<_>>>()?;
        Ok(format!("({})", parts.join(op)))
    }

    fn update(&mut self, update: &Update) -> Result<String> {
        if update.actions.is_empty() {
            return Err(StoreError::Invalid("an update needs at least one action".into()));
        }
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for action in &update.actions {
            match action {
                UpdateAction::Set(name, _)
                | UpdateAction::SetIfNotExists(name, _)
                | UpdateAction::Add(name, _)
                | UpdateAction::Remove(name)
                    if name == TABLE.pk || name == TABLE.sk =>
                {
                    return Err(StoreError::Invalid(format!("an update cannot change the key attribute {name}")));
                }
                UpdateAction::Set(name, v) => set.push(format!("{} = {}", self.name(name), self.value(v))),
                UpdateAction::SetIfNotExists(name, v) => {
                    let name = self.name(name);
                    set.push(format!("{name} = if_not_exists({name}, {})", self.value(v)));
                }
                UpdateAction::Add(name, by) => add.push(format!("{} {}", self.name(name), self.value(&super::n(*by)))),
                UpdateAction::Remove(name) => remove.push(self.name(name)),
            }
        }
        let clauses = [("SET", set), ("ADD", add), ("REMOVE", remove)]
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(keyword, parts)| format!("{keyword} {}", parts.join(", ")))
            .collect::<Vec<_>>();
        Ok(clauses.join(" "))
    }

    /// The placeholder maps, `None` when empty (DynamoDB refuses empty maps).
    fn into_parts(self) -> Placeholders {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_carry_names_and_values_only_as_placeholders() {
        let mut expr = Expr::default();
        let cond = Cond::eq("a) OR (b", Value::S("x' OR 1=1".into()))
            .and(Cond::not_exists("a) OR (b").or(Cond::ge("n", super::super::n(5))).not());
        let text = expr.cond(&cond).unwrap();
        assert_eq!(text, "(#n0 = :v0 AND (NOT (attribute_not_exists(#n0) OR #n1 >= :v1)))");
        let (names, values) = expr.into_parts();
        assert_eq!(names.unwrap().len(), 2);
        assert_eq!(values.unwrap().len(), 2);
    }

    #[test]
    fn updates_group_actions_by_clause() {
        let mut expr = Expr::default();
        let update = Update::new()
            .set("a", Value::S("x".into()))
            .add("n", -3)
            .set_if_not_exists("c", Value::Bool(true))
            .remove("d");
        assert_eq!(
            expr.update(&update).unwrap(),
            "SET #n0 = :v0, #n2 = if_not_exists(#n2, :v2) ADD #n1 :v1 REMOVE #n3"
        );
        assert!(matches!(
            Expr::default().update(&Update::new().set("PK", Value::S("x".into()))),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(Expr::default().update(&Update::new()), Err(StoreError::Invalid(_))));
    }
}
