//! The store semantics the domain relies on, checked on the embedded store
//! and, when DynamoDB Local runs (`PREMISES_TEST_DYNAMODB_ENDPOINT`), on DynamoDB.
//!
//! Each behaviour is one async fn taking a fresh [`Fixture`]; `conformance!`
//! runs it as `embedded::<behaviour>` (a new SQLite file) and as
//! `dynamodb::<behaviour>` (a new table). Both stores run on a manual clock,
//! which only decides what counts as expired: DynamoDB Local never deletes
//! expired items, so what these tests see is the stores' own filtering.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;
use shared::platform::clock::Clock;
use shared::platform::store::dynamo::DynamoStore;
use shared::platform::store::embedded::EmbeddedStore;
use shared::platform::store::{
    Cond, Index, Item, Key, Query, SkCond, Store, StoreError, Tx, TxError, Update, Value, Write, cursor_at, n, s,
};

const START_MILLIS: i64 = 1_700_000_000_000;

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(support::unique("premises-store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh store on a manual clock.
struct Fixture {
    store: Store,
    clock: Clock,
    _dir: Option<TempDir>,
}

fn open_embedded(path: &Path, clock: &Clock) -> Store {
    Store::Embedded(EmbeddedStore::open(path, clock.clone()).unwrap())
}

async fn embedded() -> Fixture {
    let dir = TempDir::new();
    let clock = Clock::manual(START_MILLIS);
    let store = open_embedded(&dir.0.join("store.sqlite"), &clock);
    store.ensure_table().await.unwrap();
    Fixture { store, clock, _dir: Some(dir) }
}

async fn dynamodb() -> Option<Fixture> {
    let endpoint = support::dynamodb_endpoint()?;
    let client = aws_sdk_dynamodb::Client::new(&support::sdk_config(&endpoint).await);
    let clock = Clock::manual(START_MILLIS);
    let store = Store::Dynamo(DynamoStore::new(client, support::unique("premises-store-test"), clock.clone()));
    store.ensure_table().await.unwrap();
    Some(Fixture { store, clock, _dir: None })
}

/// Runs each behaviour on both stores, as `embedded::name` and `dynamodb::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::embedded().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = super::dynamodb().await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    items_round_trip_with_every_value_type,
    numbers_read_back_in_canonical_form,
    invalid_values_are_refused,
    puts_refuse_items_without_string_keys,
    failed_conditions_change_nothing,
    every_condition_evaluates_as_in_dynamodb,
    ordering_against_a_value_that_has_no_order_is_invalid,
    every_update_action_applies_to_the_item_as_it_was,
    an_update_creates_an_absent_item,
    adding_to_a_non_number_is_invalid,
    updates_refuse_to_touch_key_attributes,
    a_transaction_with_failing_conditions_writes_nothing_and_names_them,
    a_transaction_reports_the_meaning_of_its_first_named_failed_write,
    a_successful_transaction_writes_everything,
    a_transaction_with_an_invalid_write_is_invalid_and_writes_nothing,
    twenty_concurrent_debits_spend_only_what_the_balance_has,
    twenty_concurrent_creates_of_one_item_have_one_winner,
    concurrent_transactions_on_one_item_apply_or_report_a_conflict,
    pages_visit_every_item_once_in_both_directions,
    pages_within_a_sort_key_range_visit_every_match_once,
    sort_key_conditions_select_in_byte_order,
    index_queries_read_only_items_with_both_index_keys,
    index_pages_with_duplicate_sort_keys_visit_every_item_once,
    expired_items_are_not_returned_by_get_query_or_delete,
    pages_skip_expired_items_without_losing_live_ones,
    conditions_still_see_expired_items_until_absent_or_expired_is_used,
    a_cursor_the_store_did_not_make_is_refused,
    a_cursor_at_an_item_continues_after_it_in_both_directions,
    malformed_queries_are_invalid,
    a_filter_keeps_only_matching_items_and_every_page_still_leads_on,
    counts_count_live_matching_items_in_the_store,
);

fn key(pk: &str, sk: &str) -> Key {
    Key::new(pk, sk)
}

fn item(pk: &str, sk: &str, attributes: impl IntoIterator<Item = (&'static str, Value)>) -> Item {
    let mut item = key(pk, sk).to_item();
    for (name, value) in attributes {
        item.insert(name.to_string(), value);
    }
    item
}

/// The item with its sets sorted: DynamoDB returns set members in any order.
fn sorted_sets(item: Item) -> Item {
    fn sort(value: Value) -> Value {
        match value {
            Value::Ss(mut v) => {
                v.sort();
                Value::Ss(v)
            }
            Value::Ns(mut v) => {
                v.sort();
                Value::Ns(v)
            }
            Value::Bs(mut v) => {
                v.sort();
                Value::Bs(v)
            }
            Value::M(m) => Value::M(m.into_iter().map(|(k, v)| (k, sort(v))).collect()),
            Value::L(l) => Value::L(l.into_iter().map(sort).collect()),
            other => other,
        }
    }
    item.inner().clone().into_iter().map(|(k, v)| (k, sort(v))).collect::<HashMap<_, _>>().into()
}

fn attr<'a>(item: &'a Item, name: &str) -> &'a Value {
    item.get(name).unwrap_or_else(|| panic!("{name} missing from {item:?}"))
}

fn string(value: &Value) -> &str {
    match value {
        Value::S(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn sks(items: &[Item]) -> Vec<String> {
    items.iter().map(|item| string(attr(item, "SK")).to_string()).collect()
}

/// Every page of `query`, following cursors to the end.
async fn pages(store: &Store, query: Query) -> Vec<Vec<Item>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(query.clone().after(cursor)).await.unwrap();
        if let Some(limit) = query.limit {
            assert!(
                page.items.len() <= limit as usize,
                "a page holds {} items, over the limit {limit}",
                page.items.len()
            );
        }
        pages.push(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
    pages
}

/// Every item of `query`, following cursors to the end.
async fn all(store: &Store, query: Query) -> Vec<Item> {
    pages(store, query).await.into_iter().flatten().collect()
}

/// Whether `cond` holds on the item at `key`, asked as a transaction's check.
async fn holds(store: &Store, key: &Key, cond: Cond) -> bool {
    match store.transact(vec![Write::Check { key: key.clone(), cond: cond.clone() }]).await {
        Ok(()) => true,
        Err(StoreError::TransactionCanceled { failed }) => {
            assert_eq!(failed, vec![0]);
            false
        }
        Err(e) => panic!("checking {cond:?}: {e:?}"),
    }
}

async fn items_round_trip_with_every_value_type(f: Fixture) {
    let stored = item(
        "round",
        "trip",
        [
            ("string", s("hello, wörld")),
            ("empty_string", s("")),
            ("integer", n(-42)),
            ("fraction", Value::N("3.25".into())),
            ("big", Value::N("12345678901234567890123456789012345678".into())),
            ("yes", Value::Bool(true)),
            ("no", Value::Bool(false)),
            ("nothing", Value::Null(true)),
            ("bytes", Value::B(vec![0, 1, 2, 254, 255])),
            ("strings", Value::Ss(vec!["b".into(), "a".into()])),
            ("numbers", Value::Ns(vec!["2".into(), "1.5".into()])),
            ("binaries", Value::Bs(vec![vec![1], vec![0, 0]])),
            ("list", Value::L(vec![s("x"), n(1), Value::L(vec![]), Value::M(HashMap::new())])),
            (
                "map",
                Value::M(HashMap::from([
                    ("nested".to_string(), Value::M(HashMap::from([("deep".to_string(), Value::Bool(true))]))),
                    ("list".to_string(), Value::L(vec![Value::Null(true), Value::B(vec![9])])),
                ])),
            ),
        ],
    );
    let k = key("round", "trip");
    assert_eq!(f.store.get(&k).await.unwrap(), None);
    f.store.put(stored.clone(), None).await.unwrap();
    assert_eq!(sorted_sets(f.store.get(&k).await.unwrap().unwrap()), sorted_sets(stored.clone()));

    let replacement = item("round", "trip", [("only", n(1))]);
    f.store.put(replacement.clone(), None).await.unwrap();
    assert_eq!(f.store.get(&k).await.unwrap(), Some(replacement.clone()), "a put replaces the whole item");

    assert_eq!(f.store.delete(&k, None).await.unwrap(), Some(replacement));
    assert_eq!(f.store.get(&k).await.unwrap(), None);
    assert_eq!(f.store.delete(&k, None).await.unwrap(), None, "deleting a missing item is not an error");
}

/// Top-level numbers come back canonical; DynamoDB Local keeps nested ones as written.
async fn numbers_read_back_in_canonical_form(f: Fixture) {
    let written = item(
        "numbers",
        "canonical",
        [
            ("a", Value::N("1.50".into())),
            ("b", Value::N("007".into())),
            ("c", Value::N("1E+2".into())),
            ("d", Value::N("-0".into())),
            ("e", Value::N("-.25".into())),
            ("nested", Value::L(vec![Value::N("2.0".into())])),
        ],
    );
    f.store.put(written, None).await.unwrap();
    let read = f.store.get(&key("numbers", "canonical")).await.unwrap().unwrap();
    let expected = item(
        "numbers",
        "canonical",
        [
            ("a", Value::N("1.5".into())),
            ("b", Value::N("7".into())),
            ("c", Value::N("100".into())),
            ("d", Value::N("0".into())),
            ("e", Value::N("-0.25".into())),
            ("nested", Value::L(vec![Value::N("2.0".into())])),
        ],
    );
    assert_eq!(read, expected);
}

async fn invalid_values_are_refused(f: Fixture) {
    for (what, value) in [
        ("a word as a number", Value::N("twelve".into())),
        ("a number of 39 digits", Value::N("123456789012345678901234567890123456789".into())),
        ("a number above the range", Value::N("1E+126".into())),
        ("an empty string set", Value::Ss(vec![])),
        ("a string set with duplicates", Value::Ss(vec!["a".into(), "a".into()])),
        ("a number set with equal numbers", Value::Ns(vec!["1".into(), "1.0".into()])),
    ] {
        let result = f.store.put(item("invalid", "value", [("v", value)]), None).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{what}: {result:?}");
    }
    let result = f.store.put(item("invalid", "value", [("GSI1PK", n(1)), ("GSI1SK", s("x"))]), None).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "a number as an index key: {result:?}");
    let result = f.store.get(&key("", "x")).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "an empty partition key: {result:?}");
    assert_eq!(f.store.get(&key("invalid", "value")).await.unwrap(), None);
}

async fn puts_refuse_items_without_string_keys(f: Fixture) {
    let mut no_sort_key = Item::default();
    no_sort_key.insert("PK".into(), s("p"));
    let mut numeric_key = key("p", "s").to_item();
    numeric_key.insert("PK".into(), n(1));
    for bad in [no_sort_key, numeric_key] {
        let result = f.store.put(bad.clone(), None).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{bad:?}: {result:?}");
    }
}

async fn failed_conditions_change_nothing(f: Fixture) {
    let k = key("account", "1");
    let original = item("account", "1", [("balance", n(100)), ("owner", s("ada"))]);
    f.store.put(original.clone(), Some(Cond::item_absent())).await.unwrap();

    let again = f.store.put(item("account", "1", [("balance", n(0))]), Some(Cond::item_absent())).await;
    assert!(matches!(again, Err(StoreError::ConditionFailed)), "{again:?}");
    let update = f.store.update(&k, Update::new().add("balance", -50), Some(Cond::eq("owner", s("bob")))).await;
    assert!(matches!(update, Err(StoreError::ConditionFailed)), "{update:?}");
    let delete = f.store.delete(&k, Some(Cond::lt("balance", n(100)))).await;
    assert!(matches!(delete, Err(StoreError::ConditionFailed)), "{delete:?}");
    assert_eq!(f.store.get(&k).await.unwrap(), Some(original));

    let absent = key("account", "2");
    let update = f.store.update(&absent, Update::new().set("balance", n(1)), Some(Cond::item_exists())).await;
    assert!(matches!(update, Err(StoreError::ConditionFailed)), "{update:?}");
    assert_eq!(f.store.get(&absent).await.unwrap(), None, "a failed update does not create the item");
    assert!(f.store.delete(&absent, Some(Cond::item_exists())).await.unwrap_err().is_condition_failed());
}

async fn every_condition_evaluates_as_in_dynamodb(f: Fixture) {
    let k = key("cond", "item");
    let map = Value::M(HashMap::from([("a".to_string(), n(1)), ("b".to_string(), Value::L(vec![s("x")]))]));
    f.store
        .put(
            item(
                "cond",
                "item",
                [
                    ("n", n(10)),
                    ("s", s("apple")),
                    ("flag", Value::Bool(true)),
                    ("none", Value::Null(true)),
                    ("bytes", Value::B(vec![1, 2])),
                    ("m", map.clone()),
                    ("tags", Value::Ss(vec!["x".into(), "y".into()])),
                ],
            ),
            None,
        )
        .await
        .unwrap();
    let cases = [
        ("exists", Cond::exists("n"), true),
        ("exists on a missing attribute", Cond::exists("missing"), false),
        ("not_exists", Cond::not_exists("missing"), true),
        ("not_exists on a present attribute", Cond::not_exists("n"), false),
        ("item_exists", Cond::item_exists(), true),
        ("item_absent", Cond::item_absent(), false),
        ("= on numbers", Cond::eq("n", n(10)), true),
        ("= compares numbers by value", Cond::eq("n", Value::N("10.0".into())), true),
        ("= across types", Cond::eq("n", s("10")), false),
        ("= on a missing attribute", Cond::eq("missing", n(1)), false),
        ("<> on numbers", Cond::ne("n", n(11)), true),
        ("<> on an equal number", Cond::ne("n", n(10)), false),
        ("<> on a missing attribute", Cond::ne("missing", n(1)), true),
        ("<> across types", Cond::ne("n", s("10")), true),
        ("> compares numbers by value, not as text", Cond::gt("n", n(9)), true),
        ("< compares numbers by value, not as text", Cond::lt("n", n(9)), false),
        ("<= on an equal number", Cond::le("n", n(10)), true),
        (">= on a larger number", Cond::ge("n", n(11)), false),
        ("< on a fraction", Cond::lt("n", Value::N("10.5".into())), true),
        ("< on strings", Cond::lt("s", s("banana")), true),
        ("> on strings is byte order", Cond::gt("s", s("Zebra")), true),
        ("<= on an equal string", Cond::le("s", s("apple")), true),
        (">= on a longer string", Cond::ge("s", s("apples")), false),
        ("< on binaries", Cond::lt("bytes", Value::B(vec![1, 3])), true),
        ("< across types", Cond::lt("n", s("zzz")), false),
        ("> across types", Cond::gt("s", n(0)), false),
        ("< on a missing attribute", Cond::lt("missing", n(100)), false),
        ("begins_with", Cond::begins_with("s", "app"), true),
        ("begins_with another prefix", Cond::begins_with("s", "b"), false),
        ("begins_with on a number", Cond::begins_with("n", "1"), false),
        ("begins_with on a missing attribute", Cond::begins_with("missing", "a"), false),
        ("= on booleans", Cond::eq("flag", Value::Bool(true)), true),
        ("= on null", Cond::eq("none", Value::Null(true)), true),
        ("= on maps", Cond::eq("m", map), true),
        ("= on sets ignores order", Cond::eq("tags", Value::Ss(vec!["y".into(), "x".into()])), true),
        ("and: all hold", Cond::exists("n").and(Cond::eq("s", s("apple"))), true),
        ("and: one fails", Cond::exists("n").and(Cond::exists("missing")), false),
        ("or: one holds", Cond::exists("missing").or(Cond::gt("n", n(5))), true),
        ("or: none holds", Cond::exists("missing").or(Cond::gt("n", n(50))), false),
        ("not", Cond::exists("missing").not(), true),
        ("not of a holding condition", Cond::exists("n").not(), false),
        (
            "nested",
            Cond::Or(vec![
                Cond::eq("s", s("pear")),
                Cond::And(vec![Cond::gt("n", n(1)), Cond::begins_with("s", "ap").not().not()]),
            ]),
            true,
        ),
    ];
    for (what, cond, expected) in cases {
        assert_eq!(holds(&f.store, &k, cond).await, expected, "{what}");
    }

    let absent = key("cond", "absent");
    for (what, cond, expected) in [
        ("item_absent on no item", Cond::item_absent(), true),
        ("item_exists on no item", Cond::item_exists(), false),
        ("= on no item", Cond::eq("n", n(10)), false),
        ("<> on no item", Cond::ne("n", n(10)), true),
        ("absent_or_expired on no item", Cond::absent_or_expired(f.clock.now_secs()), true),
    ] {
        assert_eq!(holds(&f.store, &absent, cond).await, expected, "{what}");
    }
}

async fn ordering_against_a_value_that_has_no_order_is_invalid(f: Fixture) {
    f.store.put(item("order", "x", [("flag", Value::Bool(true))]), None).await.unwrap();
    let result = f.store.put(item("order", "x", []), Some(Cond::lt("flag", Value::Bool(false)))).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    let result = f.store.put(item("order", "x", []), Some(Cond::And(vec![]))).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "an empty And: {result:?}");
}

async fn every_update_action_applies_to_the_item_as_it_was(f: Fixture) {
    let k = key("update", "1");
    f.store
        .put(item("update", "1", [("a", s("x")), ("count", n(5)), ("keep", s("original")), ("gone", n(1))]), None)
        .await
        .unwrap();
    let update = Update::new()
        .set("a", s("y"))
        .add("count", -7)
        .add("fresh", 3)
        .set_if_not_exists("keep", s("overwritten"))
        .set_if_not_exists("new", s("set"))
        .remove("gone")
        .remove("never_there");
    let after = f.store.update(&k, update, Some(Cond::eq("count", n(5)))).await.unwrap();
    let expected = item(
        "update",
        "1",
        [("a", s("y")), ("count", n(-2)), ("fresh", n(3)), ("keep", s("original")), ("new", s("set"))],
    );
    assert_eq!(after, expected, "update returns the item as it is afterwards");
    assert_eq!(f.store.get(&k).await.unwrap(), Some(expected));

    let after = f.store.update(&k, Update::new().add("count", 2), None).await.unwrap();
    assert_eq!(attr(&after, "count"), &n(0));
    let after = f.store.update(&k, Update::new().set("fraction", Value::N("0.5".into())), None).await.unwrap();
    let after_add = f.store.update(&k, Update::new().add("fraction", 1), None).await.unwrap();
    assert_eq!(attr(&after, "fraction"), &Value::N("0.5".into()));
    assert_eq!(attr(&after_add, "fraction"), &Value::N("1.5".into()));
}

async fn an_update_creates_an_absent_item(f: Fixture) {
    let k = key("counter", "visits");
    let created = f.store.update(&k, Update::new().add("visits", 1).set("label", s("home")), None).await.unwrap();
    assert_eq!(created, item("counter", "visits", [("visits", n(1)), ("label", s("home"))]));
    let again = f.store.update(&k, Update::new().add("visits", 1), None).await.unwrap();
    assert_eq!(attr(&again, "visits"), &n(2));
    assert_eq!(f.store.get(&k).await.unwrap(), Some(again));
}

async fn adding_to_a_non_number_is_invalid(f: Fixture) {
    let k = key("add", "text");
    f.store.put(item("add", "text", [("v", s("seven"))]), None).await.unwrap();
    let result = f.store.update(&k, Update::new().add("v", 1), None).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_eq!(attr(&f.store.get(&k).await.unwrap().unwrap(), "v"), &s("seven"));
}

async fn updates_refuse_to_touch_key_attributes(f: Fixture) {
    let k = key("keys", "1");
    for update in [Update::new().set("PK", s("other")), Update::new().remove("SK"), Update::new()] {
        let result = f.store.update(&k, update.clone(), None).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{update:?}: {result:?}");
    }
    assert_eq!(f.store.get(&k).await.unwrap(), None);
}

async fn a_transaction_with_failing_conditions_writes_nothing_and_names_them(f: Fixture) {
    f.store.put(item("tx", "existing", [("n", n(1))]), None).await.unwrap();
    f.store.put(item("tx", "doomed", [("n", n(2))]), None).await.unwrap();
    f.store.put(item("tx", "guard", [("open", Value::Bool(false))]), None).await.unwrap();
    let before = all(&f.store, Query::partition("tx")).await;

    let writes = |guard: Cond| {
        vec![
            Write::Put { item: item("tx", "new", [("n", n(3))]), cond: Some(Cond::item_absent()) },
            Write::Update { key: key("tx", "existing"), update: Update::new().add("n", 10), cond: None },
            Write::Delete { key: key("tx", "doomed"), cond: Some(Cond::item_exists()) },
            Write::Check { key: key("tx", "guard"), cond: guard },
        ]
    };
    let result = f.store.transact(writes(Cond::eq("open", Value::Bool(true)))).await;
    assert!(matches!(&result, Err(StoreError::TransactionCanceled { failed }) if *failed == vec![3]), "{result:?}");
    assert!(result.unwrap_err().is_condition_failed());
    assert_eq!(all(&f.store, Query::partition("tx")).await, before);

    let mut two_failing = writes(Cond::eq("open", Value::Bool(true)));
    two_failing[1] = Write::Update {
        key: key("tx", "existing"),
        update: Update::new().add("n", 10),
        cond: Some(Cond::gt("n", n(5))),
    };
    let result = f.store.transact(two_failing).await;
    assert!(matches!(&result, Err(StoreError::TransactionCanceled { failed }) if *failed == vec![1, 3]), "{result:?}");
    assert_eq!(all(&f.store, Query::partition("tx")).await, before);
}

async fn a_transaction_reports_the_meaning_of_its_first_named_failed_write(f: Fixture) {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Why {
        Taken,
        Closed,
    }
    f.store.put(item("named", "taken", [("n", n(1))]), None).await.unwrap();
    f.store.put(item("named", "guard", [("open", Value::Bool(false))]), None).await.unwrap();
    let before = all(&f.store, Query::partition("named")).await;
    let tx = |taken: &str, unnamed_fails: bool| {
        let mut tx = Tx::new();
        let unnamed = if unnamed_fails { Cond::item_exists() } else { Cond::item_absent() };
        tx.push(Write::Put { item: item("named", "free", [("n", n(2))]), cond: Some(unnamed) })
            .push_or(
                Write::Put { item: item("named", taken, [("n", n(3))]), cond: Some(Cond::item_absent()) },
                Why::Taken,
            )
            .push_or(
                Write::Check { key: key("named", "guard"), cond: Cond::eq("open", Value::Bool(true)) },
                Why::Closed,
            );
        tx
    };
    // Two named writes fail: the first in write order is the answer; commit_all names both.
    let result = f.store.commit(tx("taken", false)).await;
    assert!(matches!(result, Err(TxError::Failed(Why::Taken))), "{result:?}");
    let result = f.store.commit_all(tx("taken", false)).await;
    assert!(matches!(&result, Err(TxError::Failed(all)) if *all == [Why::Taken, Why::Closed]), "{result:?}");
    // One named write fails.
    let result = f.store.commit(tx("other", false)).await;
    assert!(matches!(result, Err(TxError::Failed(Why::Closed))), "{result:?}");
    // Only an unnamed write fails: the store's cancellation, by position.
    f.store.put(item("named", "guard", [("open", Value::Bool(true))]), None).await.unwrap();
    let result = f.store.commit(tx("other", true)).await;
    assert!(
        matches!(&result, Err(TxError::Store(StoreError::TransactionCanceled { failed })) if *failed == vec![0]),
        "{result:?}"
    );
    f.store.put(item("named", "guard", [("open", Value::Bool(false))]), None).await.unwrap();
    assert_eq!(all(&f.store, Query::partition("named")).await, before, "nothing was written");
    // Every condition holds: everything is written.
    f.store.put(item("named", "guard", [("open", Value::Bool(true))]), None).await.unwrap();
    f.store.commit(tx("other", false)).await.unwrap();
    assert!(f.store.get(&key("named", "other")).await.unwrap().is_some());
}

async fn a_successful_transaction_writes_everything(f: Fixture) {
    f.store.put(item("tx", "existing", [("n", n(1))]), None).await.unwrap();
    f.store.put(item("tx", "doomed", [("n", n(2))]), None).await.unwrap();
    f.store.put(item("tx", "guard", [("open", Value::Bool(true))]), None).await.unwrap();
    f.store
        .transact(vec![
            Write::Put { item: item("tx", "new", [("n", n(3))]), cond: Some(Cond::item_absent()) },
            Write::Update { key: key("tx", "existing"), update: Update::new().add("n", 10), cond: None },
            Write::Update { key: key("tx", "created"), update: Update::new().set("n", n(4)), cond: None },
            Write::Delete { key: key("tx", "doomed"), cond: Some(Cond::item_exists()) },
            Write::Check { key: key("tx", "guard"), cond: Cond::eq("open", Value::Bool(true)) },
        ])
        .await
        .unwrap();
    let after = all(&f.store, Query::partition("tx")).await;
    assert_eq!(
        after,
        vec![
            item("tx", "created", [("n", n(4))]),
            item("tx", "existing", [("n", n(11))]),
            item("tx", "guard", [("open", Value::Bool(true))]),
            item("tx", "new", [("n", n(3))]),
        ]
    );
    let duplicate = f
        .store
        .transact(vec![
            Write::Check { key: key("tx", "guard"), cond: Cond::item_exists() },
            Write::Delete { key: key("tx", "guard"), cond: None },
        ])
        .await;
    assert!(matches!(duplicate, Err(StoreError::Invalid(_))), "{duplicate:?}");
}

async fn a_transaction_with_an_invalid_write_is_invalid_and_writes_nothing(f: Fixture) {
    f.store.put(item("tx", "text", [("v", s("seven"))]), None).await.unwrap();
    let result = f
        .store
        .transact(vec![
            Write::Put { item: item("tx", "new", []), cond: None },
            Write::Update { key: key("tx", "text"), update: Update::new().add("v", 1), cond: None },
        ])
        .await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_eq!(sks(&all(&f.store, Query::partition("tx")).await), ["text"]);
}

async fn twenty_concurrent_debits_spend_only_what_the_balance_has(f: Fixture) {
    let k = key("wallet", "w1");
    f.store.put(item("wallet", "w1", [("balance", n(150))]), None).await.unwrap();
    let debits = (0..20).map(|_| {
        let store = f.store.clone();
        let k = k.clone();
        tokio::spawn(async move {
            store.update(&k, Update::new().add("balance", -10), Some(Cond::ge("balance", n(10)))).await
        })
    });
    let results = futures::future::join_all(debits).await;
    let mut won = 0;
    for result in results {
        match result.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::ConditionFailed) => {}
            Err(e) => panic!("a debit failed otherwise: {e:?}"),
        }
    }
    assert_eq!(won, 15);
    assert_eq!(attr(&f.store.get(&k).await.unwrap().unwrap(), "balance"), &n(0));
}

async fn twenty_concurrent_creates_of_one_item_have_one_winner(f: Fixture) {
    let creates = (0..20).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move { store.put(item("claim", "name", [("by", n(i))]), Some(Cond::item_absent())).await })
    });
    let results = futures::future::join_all(creates).await;
    let winners = results.into_iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
    assert_eq!(winners, 1);
}

async fn concurrent_transactions_on_one_item_apply_or_report_a_conflict(f: Fixture) {
    f.store.put(item("shared", "counter", [("n", n(0))]), None).await.unwrap();
    let transactions = (0..10).map(|i| {
        let store = f.store.clone();
        tokio::spawn(async move {
            store
                .transact(vec![
                    Write::Update { key: key("shared", "counter"), update: Update::new().add("n", 1), cond: None },
                    Write::Put { item: item("shared", &format!("mark#{i}"), []), cond: Some(Cond::item_absent()) },
                ])
                .await
        })
    });
    let mut applied = 0;
    for result in futures::future::join_all(transactions).await {
        match result.unwrap() {
            Ok(()) => applied += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("a transaction failed otherwise: {e:?}"),
        }
    }
    assert!(applied >= 1);
    let counter = f.store.get(&key("shared", "counter")).await.unwrap().unwrap();
    assert_eq!(attr(&counter, "n"), &n(applied));
    let marks = all(&f.store, Query::partition("shared").sk(SkCond::BeginsWith("mark#".into()))).await;
    assert_eq!(marks.len() as i64, applied);
}

/// Puts `count` items `item#00`… in partition `pk`, and some in a neighbouring partition.
async fn put_numbered(store: &Store, pk: &str, count: usize) {
    for i in 0..count {
        store.put(item(pk, &format!("item#{i:02}"), [("i", n(i as i64))]), None).await.unwrap();
    }
    for neighbour in [format!("{pk}-"), format!("{pk}x")] {
        store.put(item(&neighbour, "item#00", []), None).await.unwrap();
    }
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("item#{i:02}")).collect()
}

async fn pages_visit_every_item_once_in_both_directions(f: Fixture) {
    put_numbered(&f.store, "list", 25).await;
    let ascending = pages(&f.store, Query::partition("list").limit(7)).await;
    assert!(ascending.len() >= 4, "{} pages", ascending.len());
    assert!(ascending[..3].iter().all(|page| page.len() == 7), "full pages while more items follow");
    assert_eq!(sks(&ascending.concat()), numbered(0..25));

    let descending = pages(&f.store, Query::partition("list").descending().limit(7)).await;
    let mut expected = numbered(0..25);
    expected.reverse();
    assert_eq!(sks(&descending.concat()), expected);

    assert_eq!(sks(&all(&f.store, Query::partition("list")).await), numbered(0..25), "no limit: every item");
    let page = f.store.query(Query::partition("list").limit(25)).await.unwrap();
    assert_eq!(page.items.len(), 25);
}

async fn pages_within_a_sort_key_range_visit_every_match_once(f: Fixture) {
    put_numbered(&f.store, "range", 25).await;
    let between = Query::partition("range").sk(SkCond::Between("item#05".into(), "item#19".into())).limit(4);
    assert_eq!(sks(&all(&f.store, between.clone()).await), numbered(5..20));
    let mut expected = numbered(5..20);
    expected.reverse();
    assert_eq!(sks(&all(&f.store, between.descending()).await), expected);

    let prefix = Query::partition("range").sk(SkCond::BeginsWith("item#1".into())).limit(3);
    assert_eq!(sks(&all(&f.store, prefix).await), numbered(10..20));
    let after = Query::partition("range").sk(SkCond::Gt("item#20".into())).descending().limit(2);
    assert_eq!(sks(&all(&f.store, after).await), vec!["item#24", "item#23", "item#22", "item#21"]);
}

async fn sort_key_conditions_select_in_byte_order(f: Fixture) {
    // Byte order of UTF-8: upper case before lower case, non-ASCII last.
    for sk in ["B", "a", "ab", "abc", "b", "z", "é", "日本"] {
        f.store.put(item("sk", sk, []), None).await.unwrap();
    }
    f.store.put(item("sk-other", "a", []), None).await.unwrap();
    let select = |cond: Option<SkCond>| {
        let store = f.store.clone();
        async move {
            let query = Query { sk: cond, ..Query::partition("sk") };
            sks(&all(&store, query).await)
        }
    };
    assert_eq!(select(None).await, ["B", "a", "ab", "abc", "b", "z", "é", "日本"]);
    assert_eq!(select(Some(SkCond::Eq("ab".into()))).await, ["ab"]);
    assert_eq!(select(Some(SkCond::Lt("ab".into()))).await, ["B", "a"]);
    assert_eq!(select(Some(SkCond::Le("ab".into()))).await, ["B", "a", "ab"]);
    assert_eq!(select(Some(SkCond::Gt("b".into()))).await, ["z", "é", "日本"]);
    assert_eq!(select(Some(SkCond::Ge("b".into()))).await, ["b", "z", "é", "日本"]);
    assert_eq!(select(Some(SkCond::Between("a".into(), "b".into()))).await, ["a", "ab", "abc", "b"]);
    assert_eq!(select(Some(SkCond::BeginsWith("ab".into()))).await, ["ab", "abc"]);
    assert_eq!(select(Some(SkCond::BeginsWith("é".into()))).await, ["é"]);
    assert_eq!(select(Some(SkCond::BeginsWith("x".into()))).await, Vec::<String>::new());
    assert!(select(Some(SkCond::Eq("missing".into()))).await.is_empty());
}

async fn index_queries_read_only_items_with_both_index_keys(f: Fixture) {
    let indexed = |sk: &'static str, gsi1: Option<(&str, &str)>, gsi2: Option<(&str, &str)>| {
        let mut it = item("device", sk, []);
        if let Some((pk, sk)) = gsi1 {
            it.insert("GSI1PK".into(), s(pk));
            it.insert("GSI1SK".into(), s(sk));
        }
        if let Some((pk, sk)) = gsi2 {
            it.insert("GSI2PK".into(), s(pk));
            it.insert("GSI2SK".into(), s(sk));
        }
        it
    };
    let writes = [
        indexed("d1", Some(("owner#ada", "2024-03")), Some(("site#1", "d1"))),
        indexed("d2", Some(("owner#ada", "2024-01")), None),
        indexed("d3", Some(("owner#bob", "2024-02")), Some(("site#1", "d3"))),
        indexed("d4", None, Some(("site#2", "d4"))),
        indexed("d5", Some(("owner#ada", "2024-02")), None),
    ];
    for write in writes {
        f.store.put(write, None).await.unwrap();
    }
    // Half an index key: in no index.
    f.store.put(item("device", "d6", [("GSI1PK", s("owner#ada"))]), None).await.unwrap();
    f.store.put(item("device", "d7", [("GSI2SK", s("d7"))]), None).await.unwrap();

    let ada = Query::partition("owner#ada").index(Index::Gsi1);
    assert_eq!(sks(&all(&f.store, ada.clone()).await), ["d2", "d5", "d1"]);
    assert_eq!(sks(&all(&f.store, ada.clone().descending()).await), ["d1", "d5", "d2"]);
    assert_eq!(sks(&all(&f.store, ada.clone().sk(SkCond::Ge("2024-02".into())).limit(1)).await), ["d5", "d1"]);
    let items = all(&f.store, ada).await;
    assert_eq!(attr(&items[0], "GSI1SK"), &s("2024-01"), "index queries return whole items");
    assert_eq!(sks(&all(&f.store, Query::partition("site#1").index(Index::Gsi2)).await), ["d1", "d3"]);
    assert_eq!(sks(&all(&f.store, Query::partition("site#2").index(Index::Gsi2)).await), ["d4"]);
    assert!(all(&f.store, Query::partition("d7").index(Index::Gsi2)).await.is_empty());

    // Leaving an index by an update, joining one by another.
    let k = key("device", "d1");
    f.store.update(&k, Update::new().remove("GSI1SK"), None).await.unwrap();
    f.store.update(&key("device", "d7"), Update::new().set("GSI2PK", s("site#2")), None).await.unwrap();
    assert_eq!(sks(&all(&f.store, Query::partition("owner#ada").index(Index::Gsi1)).await), ["d2", "d5"]);
    assert_eq!(sks(&all(&f.store, Query::partition("site#2").index(Index::Gsi2)).await), ["d4", "d7"]);
}

async fn index_pages_with_duplicate_sort_keys_visit_every_item_once(f: Fixture) {
    for i in 0..14 {
        let gsi_sk = if i % 3 == 0 { "b-later" } else { "a-same" };
        let sk = format!("item#{i:02}");
        let it = item(if i % 2 == 0 { "left" } else { "right" }, &sk, [("GSI1PK", s("group")), ("GSI1SK", s(gsi_sk))]);
        f.store.put(it, None).await.unwrap();
    }
    for query in [
        Query::partition("group").index(Index::Gsi1).limit(4),
        Query::partition("group").index(Index::Gsi1).descending().limit(3),
    ] {
        let descending = query.descending;
        let items = all(&f.store, query).await;
        let mut seen = sks(&items);
        let distinct: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 14, "descending {descending}: {seen:?}");
        assert_eq!(distinct.len(), 14, "descending {descending}: every item once: {seen:?}");
        let order: Vec<_> = items.iter().map(|it| string(attr(it, "GSI1SK")).to_string()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        assert_eq!(order, sorted, "items in index sort key order");
        seen.sort();
        assert_eq!(seen, numbered(0..14));
    }
}

async fn expired_items_are_not_returned_by_get_query_or_delete(f: Fixture) {
    let now = f.clock.now_secs();
    let index = [("GSI1PK", s("ttl-index")), ("GSI1SK", s("x"))];
    f.store
        .put(item("ttl", "a-short", [("expires_at", n(now + 10))].into_iter().chain(index.clone())), None)
        .await
        .unwrap();
    f.store
        .put(item("ttl", "b-long", [("expires_at", n(now + 1000))].into_iter().chain(index.clone())), None)
        .await
        .unwrap();
    f.store.put(item("ttl", "c-forever", index.clone()), None).await.unwrap();
    f.store.put(item("ttl", "d-not-a-number", [("expires_at", s("soon"))]), None).await.unwrap();
    f.store.put(item("ttl", "e-short", [("expires_at", n(now + 10))]), None).await.unwrap();
    assert_eq!(
        sks(&all(&f.store, Query::partition("ttl")).await),
        ["a-short", "b-long", "c-forever", "d-not-a-number", "e-short"]
    );

    f.clock.advance_millis(9_999);
    assert!(f.store.get(&key("ttl", "a-short")).await.unwrap().is_some(), "alive until its second");
    f.clock.advance_millis(1);
    assert_eq!(f.store.get(&key("ttl", "a-short")).await.unwrap(), None, "expired at expires_at");
    assert_eq!(sks(&all(&f.store, Query::partition("ttl")).await), ["b-long", "c-forever", "d-not-a-number"]);
    let mut indexed = sks(&all(&f.store, Query::partition("ttl-index").index(Index::Gsi1)).await);
    indexed.sort(); // equal index sort keys come in no particular order
    assert_eq!(indexed, ["b-long", "c-forever"]);
    assert_eq!(
        f.store.delete(&key("ttl", "e-short"), None).await.unwrap(),
        None,
        "delete does not hand out expired items"
    );
    assert!(f.store.get(&key("ttl", "b-long")).await.unwrap().is_some());
}

async fn pages_skip_expired_items_without_losing_live_ones(f: Fixture) {
    let now = f.clock.now_secs();
    for i in 0..12 {
        let expires = if i % 3 == 0 { now + 1000 } else { now + 5 };
        f.store.put(item("mixed", &format!("item#{i:02}"), [("expires_at", n(expires))]), None).await.unwrap();
    }
    f.clock.advance_millis(6_000);
    let live = vec!["item#00", "item#03", "item#06", "item#09"];
    assert_eq!(sks(&all(&f.store, Query::partition("mixed").limit(2)).await), live);
    let mut reversed = live.clone();
    reversed.reverse();
    assert_eq!(sks(&all(&f.store, Query::partition("mixed").descending().limit(3)).await), reversed);
}

async fn conditions_still_see_expired_items_until_absent_or_expired_is_used(f: Fixture) {
    let k = key("lock", "job");
    let now = f.clock.now_secs();
    f.store
        .put(item("lock", "job", [("holder", s("first")), ("expires_at", n(now + 5))]), Some(Cond::item_absent()))
        .await
        .unwrap();
    f.clock.advance_millis(10_000);
    assert_eq!(f.store.get(&k).await.unwrap(), None);

    let naive = f.store.put(item("lock", "job", [("holder", s("second"))]), Some(Cond::item_absent())).await;
    assert!(matches!(naive, Err(StoreError::ConditionFailed)), "item_absent still sees the expired item: {naive:?}");
    assert!(holds(&f.store, &k, Cond::eq("holder", s("first"))).await);

    let now = f.clock.now_secs();
    let second = item("lock", "job", [("holder", s("second")), ("expires_at", n(now + 5))]);
    f.store.put(second.clone(), Some(Cond::absent_or_expired(now))).await.unwrap();
    assert_eq!(f.store.get(&k).await.unwrap(), Some(second));
    let third = f.store.put(item("lock", "job", [("holder", s("third"))]), Some(Cond::absent_or_expired(now))).await;
    assert!(matches!(third, Err(StoreError::ConditionFailed)), "a live item is not replaced: {third:?}");
}

async fn a_cursor_the_store_did_not_make_is_refused(f: Fixture) {
    put_numbered(&f.store, "cursor", 5).await;
    let page = f.store.query(Query::partition("cursor").limit(2)).await.unwrap();
    let cursor = page.cursor.expect("more items follow");
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let bad = [
        "not a cursor!".to_string(),
        b64("not json"),
        b64(r#"{"PK":{"S":"cursor"}}"#),
        b64(r#"{"PK":{"S":"cursor"},"SK":{"N":"1"}}"#),
        b64(r#"{"PK":{"S":"cursor"},"SK":{"S":"item#01"},"extra":{"S":"x"}}"#),
    ];
    for cursor in bad {
        let result = f.store.query(Query::partition("cursor").after(Some(cursor.clone()))).await;
        assert!(matches!(result, Err(StoreError::BadCursor)), "{cursor}: {result:?}");
    }
    let other_partition = f.store.query(Query::partition("cursorx").after(Some(cursor.clone()))).await;
    assert!(matches!(other_partition, Err(StoreError::BadCursor)), "{other_partition:?}");
    let other_index = f.store.query(Query::partition("cursor").index(Index::Gsi1).after(Some(cursor.clone()))).await;
    assert!(matches!(other_index, Err(StoreError::BadCursor)), "{other_index:?}");
    let rest = f.store.query(Query::partition("cursor").after(Some(cursor))).await.unwrap();
    assert_eq!(sks(&rest.items), numbered(2..5));
}

async fn malformed_queries_are_invalid(f: Fixture) {
    for query in [
        Query::partition("q").limit(0),
        Query::partition("q").sk(SkCond::Between("b".into(), "a".into())),
        Query::partition(""),
        Query::partition("q").sk(SkCond::BeginsWith("".into())),
        Query::partition("q").sk(SkCond::Between("".into(), "a".into())),
    ] {
        let result = f.store.query(query.clone()).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{query:?}: {result:?}");
    }
}

#[tokio::test]
async fn the_embedded_store_keeps_its_items_across_reopening() {
    let dir = TempDir::new();
    let path = dir.0.join("store.sqlite");
    let clock = Clock::manual(START_MILLIS);
    let now = clock.now_secs();
    {
        let store = open_embedded(&path, &clock);
        store.put(item("persist", "a", [("n", n(1)), ("GSI1PK", s("g")), ("GSI1SK", s("1"))]), None).await.unwrap();
        store.put(item("persist", "b", [("expires_at", n(now + 10))]), None).await.unwrap();
        store.update(&key("persist", "a"), Update::new().add("n", 1), None).await.unwrap();
    }
    let store = open_embedded(&path, &clock);
    assert_eq!(attr(&store.get(&key("persist", "a")).await.unwrap().unwrap(), "n"), &n(2));
    assert_eq!(sks(&all(&store, Query::partition("g").index(Index::Gsi1)).await), ["a"]);
    assert_eq!(sks(&all(&store, Query::partition("persist")).await), ["a", "b"]);
}

#[tokio::test]
async fn the_embedded_store_sweeps_long_expired_items_but_conditions_see_recent_ones() {
    let dir = TempDir::new();
    let path = dir.0.join("store.sqlite");
    let clock = Clock::manual(START_MILLIS);
    let store = open_embedded(&path, &clock);
    let now = clock.now_secs();
    store.put(item("sweep", "a", [("expires_at", n(now))]), None).await.unwrap();
    clock.advance_millis(60_000);
    let recent = store.put(item("sweep", "a", []), Some(Cond::item_absent())).await;
    assert!(matches!(recent, Err(StoreError::ConditionFailed)), "{recent:?}");

    clock.advance_millis(shared::platform::store::embedded::SWEEP_GRACE_SECS * 1000);
    store.put(item("sweep", "a", []), Some(Cond::item_absent())).await.unwrap();
    assert_eq!(store.get(&key("sweep", "a")).await.unwrap(), Some(item("sweep", "a", [])));
}

async fn a_cursor_at_an_item_continues_after_it_in_both_directions(f: Fixture) {
    put_numbered(&f.store, "at", 6).await;
    let items = all(&f.store, Query::partition("at")).await;
    let at = cursor_at(&items[2], Index::Table).expect("a table item has its keys");
    let after = f.store.query(Query::partition("at").after(Some(at.clone())).limit(2)).await.unwrap();
    assert_eq!(sks(&after.items), numbered(3..5));
    let before = f.store.query(Query::partition("at").descending().after(Some(at)).limit(5)).await.unwrap();
    assert_eq!(sks(&before.items), ["item#01", "item#00"]);
    // On an index: the cursor carries the index keys too.
    for i in 0..4 {
        let it = item("idx", &format!("item#{i:02}"), [("GSI1PK", s("owner")), ("GSI1SK", s(format!("2024-0{i}")))]);
        f.store.put(it, None).await.unwrap();
    }
    let by_owner = Query::partition("owner").index(Index::Gsi1).descending();
    let items = all(&f.store, by_owner.clone()).await;
    assert_eq!(cursor_at(&items[0], Index::Gsi2), None, "no GSI2 keys");
    let at = cursor_at(&items[1], Index::Gsi1).unwrap();
    let rest = f.store.query(by_owner.clone().after(Some(at.clone()))).await.unwrap();
    assert_eq!(sks(&rest.items), ["item#01", "item#00"]);
    let mut reverse = by_owner.after(Some(at));
    reverse.descending = false;
    assert_eq!(sks(&f.store.query(reverse).await.unwrap().items), ["item#03"]);
}

async fn a_filter_keeps_only_matching_items_and_every_page_still_leads_on(f: Fixture) {
    put_numbered(&f.store, "filtered", 20).await;
    let threes = Cond::eq("i", n(0)).or(Cond::eq("i", n(3))).or(Cond::eq("i", n(6))).or(Cond::eq("i", n(9)));
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let query = Query::partition("filtered").filter(threes.clone()).limit(4).after(cursor);
        let page = f.store.query(query).await.unwrap();
        assert!(page.items.len() <= 4, "the limit counts items read");
        pages.push(sks(&page.items));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages.concat(), ["item#00", "item#03", "item#06", "item#09"], "{pages:?}");
    // A filter on an attribute some items lack; descending; within a sort-key range.
    let ranged = Query::partition("filtered").sk(SkCond::Between("item#05".into(), "item#15".into())).descending();
    let high = all(&f.store, ranged.filter(Cond::ge("i", n(12)))).await;
    assert_eq!(sks(&high), ["item#15", "item#14", "item#13", "item#12"]);
    assert!(all(&f.store, Query::partition("filtered").filter(Cond::exists("missing"))).await.is_empty());
    let invalid = f.store.query(Query::partition("filtered").filter(Cond::And(vec![]))).await;
    assert!(matches!(invalid, Err(StoreError::Invalid(_))), "{invalid:?}");
}

async fn counts_count_live_matching_items_in_the_store(f: Fixture) {
    put_numbered(&f.store, "counted", 30).await;
    let expiring = item("counted", "item#99", [("i", n(99)), ("expires_at", n(START_MILLIS / 1000 + 60))]);
    f.store.put(expiring, None).await.unwrap();
    let count = |q: Query| async { f.store.count(q).await.unwrap() };
    assert_eq!(count(Query::partition("counted")).await, 31);
    assert_eq!(count(Query::partition("counted").limit(2)).await, 31, "the limit is not the count");
    assert_eq!(count(Query::partition("counted").filter(Cond::lt("i", n(10)))).await, 10);
    assert_eq!(count(Query::partition("counted").sk(SkCond::BeginsWith("item#2".into()))).await, 10);
    assert_eq!(count(Query::partition("nobody")).await, 0);
    f.clock.advance_millis(61_000);
    assert_eq!(count(Query::partition("counted")).await, 30, "an expired item is not counted");
    // Past one DynamoDB response (1 MB read): items of 100 KB each.
    let big = "x".repeat(100_000);
    for i in 0..14 {
        f.store.put(item("big", &format!("item#{i:02}"), [("blob", s(big.clone()))]), None).await.unwrap();
    }
    assert_eq!(count(Query::partition("big")).await, 14);
}
