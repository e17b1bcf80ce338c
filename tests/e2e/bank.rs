//! Bank ingestion (seed 000 `bank_module`) through the local stack's real
//! entry points: the `bank-import` schedule against a fake Fio API, statement
//! uploads over HTTP, the `bank-transactions` queue and its consumer, and the
//! reconciliation endpoints; on both stores. After every test, each room's
//! balance equals the sum of its ledger.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use premises_local::{Options, Stack};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shared::platform::clock::Clock;
use shared::platform::config::{AdminAccount, Config, Secret, StoreBackend};
use shared::platform::queue::OutMessage;

use crate::helpers::{Backend, Server, StandIn, data_dir, eventually, unique};

crate::on_both_stores!(
    a_fio_import_credits_each_valid_transaction_once_and_records_the_rest,
    a_camt053_upload_credits_like_a_fio_statement,
    a_failing_bank_fails_the_run_visibly_and_the_next_run_backfills_what_was_missed,
    a_poisoned_message_reaches_the_dlq_and_redrive_replays_it_once,
    four_concurrent_consumers_on_one_statement_credit_each_transaction_once,
    an_invalid_payment_is_assigned_to_a_room_once_and_payments_filter,
    uploads_that_are_not_statements_are_400_and_queue_nothing,
    stopping_the_stack_in_the_middle_of_an_import_loses_nothing_and_credits_nothing_twice,
    a_payment_above_the_maximum_is_recorded_out_of_range_and_credits_nothing,
    an_overlong_payment_id_is_404_and_an_overlong_statement_field_is_400_naming_it,
);

const ADMIN_EMAIL: &str = "bank-admin@example.com";
const ADMIN_PASSWORD: &str = "AdminPass123!";
const TOKEN: &str = "fio-secret-token-0123456789";
const PASSWORD: &str = "Resident123!";

/// One Fio transaction: (id, amount as the bank writes it, currency, variable symbol).
type Tx<'a> = (u64, &'a str, &'a str, Option<&'a str>);

/// A Fio banka JSON statement (`/v1/rest/…/transactions.json`).
fn fio(txs: &[Tx]) -> String {
    let list: Vec<String> = txs
        .iter()
        .map(|(id, amount, currency, vs)| {
            let vs = match vs {
                Some(vs) => format!(r#"{{"value":"{vs}","name":"VS","id":5}}"#),
                None => "null".into(),
            };
            format!(
                r#"{{"column22":{{"value":{id},"name":"ID pohybu","id":22}},"column0":{{"value":"2026-11-30+0100","name":"Datum","id":0}},"column1":{{"value":{amount},"name":"Objem","id":1}},"column14":{{"value":"{currency}","name":"Měna","id":14}},"column5":{vs},"column10":{{"value":"Jan Novák","name":"Název protiúčtu","id":10}},"column16":null}}"#
            )
        })
        .collect();
    let id_to = txs.iter().map(|t| t.0).max().unwrap_or(0);
    format!(
        r#"{{"accountStatement":{{"info":{{"accountId":"2000000000","bankId":"2010","currency":"CZK","idTo":{id_to}}},"transactionList":{{"transaction":[{}]}}}}}}"#,
        list.join(",")
    )
}

/// One camt.053 entry: (AcctSvcrRef, amount, currency, CRDT/DBIT, creditor reference, EndToEndId).
type Entry<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// An ISO 20022 camt.053 statement.
fn camt(entries: &[Entry]) -> String {
    let ntry: Vec<String> = entries
        .iter()
        .map(|(id, amount, ccy, ind, cref, e2e)| {
            let strd = cref.map_or(String::new(), |r| format!("<Strd><CdtrRefInf><Ref>{r}</Ref></CdtrRefInf></Strd>"));
            let e2e = e2e.map_or(String::new(), |e| format!("<Refs><EndToEndId>{e}</EndToEndId></Refs>"));
            format!(
                "<Ntry><Amt Ccy=\"{ccy}\">{amount}</Amt><CdtDbtInd>{ind}</CdtDbtInd><Sts>BOOK</Sts>\
                 <BookgDt><Dt>2026-11-30</Dt></BookgDt><AcctSvcrRef>{id}</AcctSvcrRef>\
                 <NtryDtls><TxDtls>{e2e}<RltdPties><Dbtr><Nm>Eva Svobodová</Nm></Dbtr></RltdPties>\
                 <RmtInf>{strd}<Ustrd>rent</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>S1</MsgId><CreDtTm>2026-11-30T18:00:00</CreDtTm></GrpHdr>\
         <Stmt><Id>1</Id><Acct><Id><IBAN>CZ6508000000192000145399</IBAN></Id></Acct>{}</Stmt>\
         </BkToCstmrStmt></Document>",
        ntry.join("")
    )
}

struct T {
    stack: Stack,
    base: String,
    clock: Clock,
    client: Client,
    admin: String,
    rooms: Vec<String>,
}

impl T {
    async fn start(backend: &Backend, bank: Option<&StandIn>) -> T {
        let mut config = Config::for_tests(data_dir("bank"));
        config.admin = Some(AdminAccount { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() });
        if let Some(bank) = bank {
            config.bank.base_url = bank.base.clone();
            config.bank.token = Secret(TOKEN.into());
            config.bank.timeout_secs = 5;
        }
        let mut sdk = None;
        if let Backend::Dynamodb(endpoint) = backend {
            config.store = StoreBackend::Dynamodb;
            config.table_name = unique("bank");
            sdk = Some(crate::helpers::dynamodb_sdk(endpoint).await);
        }
        let clock = Clock::manual(Clock::System.now_millis());
        let stack =
            Stack::start(config, clock.clone(), Options { sdk, ..Options::default() }).await.expect("stack starts");
        let base = format!("http://{}", stack.http_addr);
        let client = Client::new();
        let mut t = T { stack, base, clock, client, admin: String::new(), rooms: Vec::new() };
        t.admin = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        t
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let (status, out) =
            self.call("POST", "/api/v1/auth/login/", None, Some(json!({"email": email, "password": password}))).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["tokens"]["access"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        crate::helpers::call(&self.client, &self.base, method, path, token, body).await
    }

    async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(&self.admin.clone()), None).await
    }

    async fn admin_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(&self.admin.clone()), Some(body)).await
    }

    async fn upload(&self, content_type: &str, body: String) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/api/admin/bank/statements/", self.base))
            .bearer_auth(&self.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A room; with `resident`, a registered user the room's credits are told to.
    async fn room(&mut self, key: &str, resident: Option<&str>) -> Option<String> {
        let mut body = json!({"key": key});
        let mut token = None;
        if let Some(email) = resident {
            let reg = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD});
            let (status, out) = self.call("POST", "/api/v1/auth/register/", None, Some(reg)).await;
            assert_eq!(status, StatusCode::CREATED, "{out}");
            body["resident_id"] = out["user"]["id"].clone();
            token = Some(out["tokens"]["access"].as_str().unwrap().to_string());
        }
        let (status, out) = self.admin_post("/api/admin/rooms/", body).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
        self.rooms.push(key.to_string());
        token
    }

    async fn balance(&self, room: &str) -> i64 {
        let (status, out) = self.admin_get(&format!("/api/admin/rooms/{room}/")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out["balance"].as_i64().unwrap()
    }

    async fn all(&self, path: &str) -> Vec<Value> {
        crate::helpers::all_pages(&self.client, &self.base, &self.admin, path).await
    }

    async fn status(&self) -> Value {
        let (status, out) = self.admin_get("/api/admin/bank/status/").await;
        assert_eq!(status, StatusCode::OK, "{out}");
        out
    }

    /// Waits until `n` payments are recorded and the queue is empty.
    async fn settled(&self, n: usize) -> Vec<Value> {
        let done = eventually(Duration::from_secs(30), || async {
            let payments = self.all("/api/admin/bank/payments/").await;
            let waiting = self.status().await["messages_waiting"].as_u64();
            (payments.len() == n && waiting == Some(0)).then_some(payments)
        })
        .await;
        match done {
            Some(payments) => payments,
            None => panic!("{n} payments were not recorded: {}", self.status().await),
        }
    }

    /// Every room's balance is the sum of its ledger, and each entry's balance_after adds up.
    async fn check_ledgers(&self) {
        crate::helpers::check_ledgers(&self.client, &self.base, &self.admin, &self.rooms).await;
    }

    async fn ledger_kinds(&self, room: &str) -> Vec<(String, i64)> {
        let entries = self.all(&format!("/api/admin/rooms/{room}/ledger/")).await;
        let mut kinds: Vec<(String, i64)> = entries
            .iter()
            .map(|e| (e["reference"].as_str().unwrap().to_string(), e["amount"].as_i64().unwrap()))
            .collect();
        kinds.sort();
        kinds
    }
}

fn by_id(payments: &[Value]) -> std::collections::BTreeMap<String, Value> {
    payments.iter().map(|p| (p["id"].as_str().unwrap().to_string(), p.clone())).collect()
}

async fn a_fio_import_credits_each_valid_transaction_once_and_records_the_rest(backend: Backend) {
    let first = fio(&[
        (1001, "19.99", "CZK", Some("201")),
        (1002, "0.10", "CZK", Some("201")),
        (1003, "1000.0", "CZK", Some("202")),
        (1002, "0.10", "CZK", Some("201")),
        (1004, "50.00", "EUR", Some("201")),
        (1005, "-130.00", "CZK", Some("201")),
        (1006, "10", "CZK", Some("999")),
        (1007, "10", "CZK", None),
        (1008, "1.999", "CZK", Some("201")),
    ]);
    let second = fio(&[(1001, "19.99", "CZK", Some("201")), (1009, "5", "CZK", Some("0202"))]);
    let bank = StandIn::scripted(&[(200, &first), (200, &second)], Duration::ZERO).await;
    let mut t = T::start(&backend, Some(&bank)).await;
    let resident = t.room("201", Some(&format!("{}@example.com", unique("resident")))).await.unwrap();
    t.room("202", None).await;

    t.stack.run_job("bank-import").await.expect("first import");
    t.settled(8).await;
    t.clock.advance_millis(31_000);
    t.stack.run_job("bank-import").await.expect("second import");
    let payments = by_id(&t.settled(9).await);

    assert_eq!(t.balance("201").await, 1999 + 10);
    assert_eq!(t.balance("202").await, 100_000 + 500);
    let valid = |id: &str, room: &str, cents: i64| {
        let p = &payments[id];
        assert_eq!(
            (p["status"].as_str(), p["room"].as_str(), p["amount"].as_i64()),
            (Some("valid"), Some(room), Some(cents)),
            "{p}"
        );
    };
    valid("1001", "201", 1999);
    valid("1002", "201", 10);
    valid("1003", "202", 100_000);
    valid("1009", "202", 500);
    for (id, reason) in [
        ("1004", "wrong_currency"),
        ("1005", "not_a_credit"),
        ("1006", "unknown_room"),
        ("1007", "missing_variable_symbol"),
        ("1008", "bad_amount"),
    ] {
        assert_eq!(payments[id]["status"], "invalid", "{id}");
        assert_eq!(payments[id]["reason"], reason, "{id}");
    }
    assert_eq!(payments["1008"]["amount_text"], "1.999");
    assert_eq!(payments["1001"]["date"], "2026-11-30");
    assert_eq!(t.ledger_kinds("201").await, vec![("1001".into(), 1999), ("1002".into(), 10)]);
    assert_eq!(t.ledger_kinds("202").await, vec![("1003".into(), 100_000), ("1009".into(), 500)]);

    // The fake bank saw the token in the path (and nothing else does).
    let requests = bank.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.path == format!("/v1/rest/last/{TOKEN}/transactions.json")), "{requests:?}");
    let status = t.status().await;
    assert_eq!(status["last_transaction_id"], "1009");
    assert_eq!(status["last_error"], Value::Null);
    assert_eq!(status["unfinished"], false);
    assert!(!status.to_string().contains(TOKEN));

    // The resident heard of both credits of room 201 once each.
    let count = eventually(Duration::from_secs(20), || async {
        let (_, out) = t.call("GET", "/api/v1/notifications/unread-count/", Some(&resident), None).await;
        (out["count"] == 2).then_some(())
    })
    .await;
    assert!(count.is_some(), "the resident was not told of two credits");
    let (_, inbox) = t.call("GET", "/api/v1/notifications/", Some(&resident), None).await;
    assert!(inbox["results"].as_array().unwrap().iter().all(|n| n["kind"] == "room_credited"), "{inbox}");
    t.check_ledgers().await;
}

async fn a_camt053_upload_credits_like_a_fio_statement(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("301", None).await;
    t.room("302", None).await;
    let statement = camt(&[
        ("C1", "19.99", "CZK", "CRDT", Some("301"), None),
        ("C2", "0.10", "CZK", "CRDT", None, Some("VS302")),
        ("C3", "1000.00", "CZK", "CRDT", None, Some("302")),
        ("C1", "19.99", "CZK", "CRDT", Some("301"), None),
        ("C4", "50.00", "EUR", "CRDT", Some("301"), None),
        ("C5", "130.00", "CZK", "DBIT", Some("301"), None),
        ("C6", "10.00", "CZK", "CRDT", Some("999"), None),
        ("C7", "10.00", "CZK", "CRDT", None, Some("NOTPROVIDED")),
    ]);
    let (status, out) = t.upload("application/xml", statement.clone()).await;
    assert_eq!((status, &out), (StatusCode::ACCEPTED, &json!({"queued": 7})));
    t.settled(7).await;
    // The same statement again (and as text/xml): nothing more.
    let (status, _) = t.upload("text/xml; charset=utf-8", statement).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let payments = by_id(&t.settled(7).await);
    assert_eq!(t.balance("301").await, 1999);
    assert_eq!(t.balance("302").await, 10 + 100_000);
    for (id, reason) in
        [("C4", "wrong_currency"), ("C5", "not_a_credit"), ("C6", "unknown_room"), ("C7", "missing_variable_symbol")]
    {
        assert_eq!(
            (payments[id]["status"].as_str(), payments[id]["reason"].as_str()),
            (Some("invalid"), Some(reason)),
            "{id}"
        );
    }
    assert_eq!(payments["C5"]["amount"], -13_000);
    assert_eq!(payments["C1"]["counterparty"], "Eva Svobodová");
    t.check_ledgers().await;
}

async fn a_failing_bank_fails_the_run_visibly_and_the_next_run_backfills_what_was_missed(backend: Backend) {
    let statement = fio(&[(2001, "250", "CZK", Some("401"))]);
    let bank =
        StandIn::scripted(&[(500, "{}"), (200, "<html>maintenance</html>"), (200, &statement)], Duration::ZERO).await;
    let mut t = T::start(&backend, Some(&bank)).await;
    t.room("401", None).await;

    let error = t.stack.run_job("bank-import").await.expect_err("an HTTP 500 fails the run");
    assert!(format!("{error:#}").contains("HTTP 500"), "{error:#}");
    let status = t.status().await;
    assert!(status["last_error"].as_str().unwrap().contains("HTTP 500"), "{status}");
    assert_eq!(status["unfinished"], true);
    assert!(!status.to_string().contains(TOKEN));

    // One request per 30 s: asking again at once is refused without calling the bank.
    let (code, out) = t.admin_post("/api/admin/bank/import/", json!({})).await;
    assert_eq!((code, out["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")), "{out}");
    assert_eq!(bank.requests().len(), 1);

    t.clock.advance_millis(31_000);
    let (code, out) = t.admin_post("/api/admin/bank/import/", json!({})).await;
    assert_eq!((code, out["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("bank_unavailable")), "{out}");
    assert!(out["detail"].as_str().unwrap().contains("malformed statement"), "{out}");
    assert!(!out.to_string().contains(TOKEN));

    t.clock.advance_millis(31_000);
    t.stack.run_job("bank-import").await.expect("the third run succeeds");
    t.settled(1).await;
    assert_eq!(t.balance("401").await, 25_000);
    let requests = bank.requests();
    // The runs after a failure backfill by period instead of asking for "last" again.
    assert!(requests[0].path.starts_with(&format!("/v1/rest/last/{TOKEN}/")), "{requests:?}");
    for r in &requests[1..] {
        assert!(r.path.starts_with(&format!("/v1/rest/periods/{TOKEN}/")), "{requests:?}");
    }
    let status = t.status().await;
    assert_eq!((status["last_error"].clone(), status["unfinished"].clone()), (Value::Null, json!(false)), "{status}");
    assert_eq!(status["last_transaction_id"], "2001");

    // A by-period backfill on request; bad periods are 400 naming the field.
    let (code, out) = t.admin_post("/api/admin/bank/import/", json!({"from": "2026-11-01"})).await;
    assert_eq!((code, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("to")), "{out}");
    let (code, out) = t.admin_post("/api/admin/bank/import/", json!({"from": "2026-11-31x", "to": "2026-11-30"})).await;
    assert_eq!((code, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("from")), "{out}");
    t.check_ledgers().await;
}

async fn a_poisoned_message_reaches_the_dlq_and_redrive_replays_it_once(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("501", None).await;
    let queue = &t.stack.app.queue;
    queue.send("bank-transactions", OutMessage::new(r#"{"id": 5, "not": "a transaction"}"#)).await.unwrap();
    // Five receives (the catalog's max_receive_count), each after the 60 s visibility timeout.
    let dead = eventually(Duration::from_secs(30), || async {
        t.clock.advance_millis(61_000);
        tokio::time::sleep(Duration::from_millis(150)).await;
        (t.status().await["messages_in_dlq"] == 1).then_some(())
    })
    .await;
    assert!(dead.is_some(), "the poisoned message never reached the DLQ: {}", t.status().await);
    assert_eq!(t.status().await["messages_waiting"], 0);

    // A good transaction that was dead-lettered during an outage waits there too.
    let good = json!({"id": "5001", "amount": "42.00", "currency": "CZK", "vs": "501", "source": "import"});
    queue.send("bank-transactions-dlq", OutMessage::json(&good).unwrap()).await.unwrap();
    let (status, out) = t.admin_post("/api/admin/bank/dlq/redrive/", json!({})).await;
    assert_eq!((status, out), (StatusCode::OK, json!({"moved": 2})));
    let credited =
        eventually(Duration::from_secs(20), || async { (t.balance("501").await == 4_200).then_some(()) }).await;
    assert!(credited.is_some(), "the redriven transaction was not applied: {}", t.status().await);
    // The poisoned one fails its five receives again and is back in the DLQ, once.
    let dead = eventually(Duration::from_secs(30), || async {
        t.clock.advance_millis(61_000);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let s = t.status().await;
        (s["messages_in_dlq"] == 1 && s["messages_waiting"] == 0).then_some(())
    })
    .await;
    assert!(dead.is_some(), "{}", t.status().await);
    let (status, out) = t.admin_post("/api/admin/bank/dlq/redrive/", json!({})).await;
    assert_eq!((status, out), (StatusCode::OK, json!({"moved": 1})));
    assert_eq!(t.balance("501").await, 4_200);
    t.check_ledgers().await;
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(body.clone());
            m
        })
        .collect();
    event
}

async fn four_concurrent_consumers_on_one_statement_credit_each_transaction_once(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    let rooms = ["601", "602", "603", "604", "605"];
    for room in rooms {
        t.room(room, None).await;
    }
    let txs: Vec<(u64, String, &str, Option<&str>)> =
        (0..40u64).map(|i| (7000 + i, format!("{}.25", i + 1), "CZK", Some(rooms[i as usize % 5]))).collect();
    let bodies: Vec<String> = txs
        .iter()
        .map(|(id, amount, currency, vs)| {
            json!({"id": id.to_string(), "amount": amount, "currency": currency, "vs": vs, "source": "import"})
                .to_string()
        })
        .collect();
    // The stack's own consumer gets the statement through the queue while four more consumers
    // (as four Lambda instances given the same messages) apply every transaction at once.
    let refs: Vec<Tx> = txs.iter().map(|(id, a, c, v)| (*id, a.as_str(), *c, *v)).collect();
    let app = t.stack.app;
    let upload = t.upload("application/json", fio(&refs));
    let consumers = (0..4).map(|_| shared::bank::handlers::consume(app, sqs_event(&bodies)));
    let ((status, out), responses) = tokio::join!(upload, futures::future::join_all(consumers));
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    for r in responses {
        assert!(r.batch_item_failures.is_empty(), "{:?}", r.batch_item_failures);
    }
    t.settled(40).await;
    for (r, room) in rooms.iter().enumerate() {
        let want: i64 = (0..40).filter(|i| i % 5 == r).map(|i| (i as i64 + 1) * 100 + 25).sum();
        assert_eq!(t.balance(room).await, want, "room {room}");
        assert_eq!(t.ledger_kinds(room).await.len(), 8, "room {room}");
    }
    t.check_ledgers().await;
}

async fn an_invalid_payment_is_assigned_to_a_room_once_and_payments_filter(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("701", None).await;
    let statement = fio(&[
        (8001, "100", "CZK", Some("999")),
        (8002, "20", "CZK", None),
        (8003, "30", "EUR", Some("701")),
        (8004, "7.5", "CZK", Some("701")),
    ]);
    assert_eq!(t.upload("application/json; charset=utf-8", statement).await.0, StatusCode::ACCEPTED);
    t.settled(4).await;
    assert_eq!(t.balance("701").await, 750);

    let ids = |v: Vec<Value>| -> Vec<String> {
        let mut ids: Vec<String> = v.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(t.all("/api/admin/bank/payments/?status=invalid").await), ["8001", "8002", "8003"]);
    assert_eq!(ids(t.all("/api/admin/bank/payments/?status=valid").await), ["8004"]);
    assert_eq!(ids(t.all("/api/admin/bank/payments/?reason=unknown_room").await), ["8001"]);
    assert_eq!(ids(t.all("/api/admin/bank/payments/?room=701").await), ["8004"]);
    assert_eq!(ids(t.all("/api/admin/bank/payments/?from=2026-11-30&to=2026-11-30").await).len(), 4);
    assert!(t.all("/api/admin/bank/payments/?from=2026-12-01").await.is_empty());
    // Paged in the store: both status partitions merged, newest first; filters applied there.
    let walk = |path: &'static str, size: usize, total: usize| {
        crate::helpers::walk_pages(&t.client, &t.base, &t.admin, path, size, total)
    };
    let all = walk("/api/admin/bank/payments/", 1, 4).await;
    let received: Vec<i64> = all.iter().map(|p| p["received_at"].as_i64().unwrap()).collect();
    assert!(received.windows(2).all(|w| w[0] >= w[1]), "{received:?}");
    assert_eq!(ids(all), ["8001", "8002", "8003", "8004"]);
    assert_eq!(ids(walk("/api/admin/bank/payments/?from=2026-11-30&to=2026-11-30", 3, 4).await).len(), 4);
    assert_eq!(ids(walk("/api/admin/bank/payments/?status=invalid&to=2026-11-30", 2, 3).await).len(), 3);
    assert_eq!(ids(walk("/api/admin/bank/payments/?reason=wrong_currency", 1, 1).await), ["8003"]);
    assert!(walk("/api/admin/bank/payments/?room=701&status=invalid", 1, 0).await.is_empty());
    for bad in ["?status=maybe", "?reason=whatever", "?from=yesterday", "?to=2026-02-31", "?room=a%20b", "?page=0"] {
        let (status, out) = t.admin_get(&format!("/api/admin/bank/payments/{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {out}");
        assert!(out["field"].is_string(), "{bad}: {out}");
    }

    // Concurrent assignments of one payment: exactly one credits.
    let t = &t;
    let assign = |id: &str, room: &str| {
        let path = format!("/api/admin/bank/payments/{id}/assign/");
        let body = json!({"room": room});
        async move { t.admin_post(&path, body).await }
    };
    let results = futures::future::join_all((0..5).map(|_| assign("8001", "701"))).await;
    let ok: Vec<&Value> = results.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, v)| v).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert_eq!((ok[0]["status"].as_str(), ok[0]["room"].as_str()), (Some("valid"), Some("701")));
    assert!(ok[0]["assigned_by"].is_string() && ok[0]["assigned_at"].is_i64(), "{}", ok[0]);
    for (status, out) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!((*status, out["code"].as_str()), (StatusCode::CONFLICT, Some("payment_already_credited")), "{out}");
    }
    assert_eq!(t.balance("701").await, 750 + 10_000);
    // The others: a wrong currency cannot be assigned; unknown payment or room is 404; a valid one is 409.
    let (status, out) = assign("8003", "701").await;
    assert_eq!((status, out["code"].as_str()), (StatusCode::BAD_REQUEST, Some("payment_not_assignable")), "{out}");
    assert_eq!(assign("9999", "701").await.0, StatusCode::NOT_FOUND);
    assert_eq!(assign("8002", "no-such-room").await.0, StatusCode::NOT_FOUND);
    assert_eq!(assign("8004", "701").await.0, StatusCode::CONFLICT);
    let (status, out) = t.admin_post("/api/admin/bank/payments/8002/assign/", json!({})).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("room")), "{out}");
    assert_eq!(ids(t.all("/api/admin/bank/payments/?status=invalid").await), ["8002", "8003"]);
    assert_eq!(t.ledger_kinds("701").await, vec![("8001".into(), 10_000), ("8004".into(), 750)]);

    // Admins only.
    let reg = json!({"email": unique("m").replace('-', "") + "@example.com", "password": PASSWORD, "password_confirm": PASSWORD});
    let (_, member) = t.call("POST", "/api/v1/auth/register/", None, Some(reg)).await;
    let member = member["tokens"]["access"].as_str().unwrap().to_string();
    for (method, path) in [
        ("GET", "/api/admin/bank/payments/"),
        ("GET", "/api/admin/bank/status/"),
        ("POST", "/api/admin/bank/import/"),
        ("POST", "/api/admin/bank/statements/"),
        ("POST", "/api/admin/bank/dlq/redrive/"),
        ("POST", "/api/admin/bank/payments/8002/assign/"),
    ] {
        assert_eq!(t.call(method, path, Some(&member), Some(json!({}))).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(t.call(method, path, None, Some(json!({}))).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
    t.check_ledgers().await;
}

async fn uploads_that_are_not_statements_are_400_and_queue_nothing(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("801", None).await;
    for (content_type, body, code) in [
        ("text/plain", fio(&[(1, "1", "CZK", Some("801"))]), "unsupported_statement"),
        ("application/json", "{\"accountStatement\": 5}".to_string(), "invalid_statement"),
        ("application/json", "not json".to_string(), "invalid_statement"),
        ("application/xml", "<Document><BkToCstmrStmt></BkToCstmrStmt></Document>".to_string(), "invalid_statement"),
        (
            "application/xml",
            "<Document><Stmt><Ntry><Amt Ccy=\"CZK\">5</Amt></Ntry></Stmt>".to_string(),
            "invalid_statement",
        ),
        ("application/json", "   ".to_string(), "empty_body"),
    ] {
        let (status, out) = t.upload(content_type, body).await;
        assert_eq!((status, out["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{content_type}: {out}");
    }
    // Without a token configured the import says so.
    let (status, out) = t.admin_post("/api/admin/bank/import/", json!({})).await;
    assert_eq!((status, out["code"].as_str()), (StatusCode::CONFLICT, Some("bank_not_configured")), "{out}");
    let status = t.status().await;
    assert_eq!(
        (status["configured"].clone(), status["messages_waiting"].clone()),
        (json!(false), json!(0)),
        "{status}"
    );
    assert!(t.all("/api/admin/bank/payments/").await.is_empty());
    assert_eq!(t.balance("801").await, 0);
}

async fn stopping_the_stack_in_the_middle_of_an_import_loses_nothing_and_credits_nothing_twice(backend: Backend) {
    let txs: Vec<(u64, String)> = (0..300u64).map(|i| (90_000 + i, format!("{}.{:02}", 1 + i % 7, i % 100))).collect();
    let refs: Vec<Tx> = txs
        .iter()
        .map(|(id, amount)| (*id, amount.as_str(), "CZK", Some(if id % 2 == 0 { "901" } else { "902" })))
        .collect();
    let statement = fio(&refs);
    // The bank takes a second to answer, so the stop arrives while the import is in flight.
    let bank = StandIn::scripted(&[(200, &statement)], Duration::from_millis(1500)).await;
    let env = [
        ("PREMISES_ADMIN_EMAIL", ADMIN_EMAIL),
        ("PREMISES_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("PREMISES_BANK_BASE_URL", bank.base.as_str()),
        ("PREMISES_BANK_TOKEN", TOKEN),
    ];
    let (dir, table) = (data_dir("bank-restart"), unique("bank-restart"));
    let server = Server::start_in_with_env(&backend, dir.clone(), table.clone(), &env).await;
    let client = Client::new();
    let login = client
        .post(server.url("/api/v1/auth/login/"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let admin = login.json::<Value>().await.unwrap()["tokens"]["access"].as_str().unwrap().to_string();
    for room in ["901", "902"] {
        let r = client
            .post(server.url("/api/admin/rooms/"))
            .bearer_auth(&admin)
            .json(&json!({"key": room}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let import = tokio::spawn({
        let (client, url, admin) = (client.clone(), server.url("/api/admin/bank/import/"), admin.clone());
        async move { client.post(url).bearer_auth(admin).send().await.map(|r| r.status()) }
    });
    let asked = eventually(Duration::from_secs(10), || async { (!bank.requests().is_empty()).then_some(()) }).await;
    assert!(asked.is_some(), "the import never reached the bank");
    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}");
    // The stop let the in-flight import finish: it queued the statement before the process exited.
    assert_eq!(import.await.unwrap().ok(), Some(StatusCode::OK));

    let server = Server::start_in_with_env(&backend, dir, table, &env).await;
    let get = |path: String| {
        let (client, admin) = (client.clone(), admin.clone());
        async move { client.get(path).bearer_auth(admin).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let settled = eventually(Duration::from_secs(60), || async {
        let payments = get(server.url("/api/admin/bank/payments/?page_size=1")).await;
        let status = get(server.url("/api/admin/bank/status/")).await;
        (payments["count"] == 300 && status["messages_waiting"] == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "{}", get(server.url("/api/admin/bank/status/")).await);
    // The same statement uploaded again credits nothing.
    let r = client
        .post(server.url("/api/admin/bank/statements/"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(statement)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drained = eventually(Duration::from_secs(30), || async {
        (get(server.url("/api/admin/bank/status/")).await["messages_waiting"] == 0).then_some(())
    })
    .await;
    assert!(drained.is_some());
    for room in ["901", "902"] {
        let want: i64 = txs
            .iter()
            .filter(|(id, _)| (id % 2 == 0) == (room == "901"))
            .map(|(_, a)| shared::bank::parse::cents(a).unwrap())
            .sum();
        let detail = get(server.url(&format!("/api/admin/rooms/{room}/"))).await;
        assert_eq!(detail["balance"].as_i64(), Some(want), "room {room}");
        let ledger = get(server.url(&format!("/api/admin/rooms/{room}/ledger/?page_size=1"))).await;
        assert_eq!(ledger["count"], 150, "room {room}");
    }
}

async fn a_payment_above_the_maximum_is_recorded_out_of_range_and_credits_nothing(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("1101", None).await;
    // The default maximum is 10,000,000.00: one cent more is refused, an amount past i64 cents does not wrap.
    let statement = fio(&[
        (11001, "10000000.00", "CZK", Some("1101")),
        (11002, "10000000.01", "CZK", Some("1101")),
        (11003, "92233720368547758.07", "CZK", Some("1101")),
        (11004, "99999999999999999999999.99", "CZK", Some("1101")),
    ]);
    assert_eq!(t.upload("application/json", statement).await.0, StatusCode::ACCEPTED);
    let payments = by_id(&t.settled(4).await);
    assert_eq!(t.balance("1101").await, 1_000_000_000);
    assert_eq!(payments["11001"]["status"], "valid", "{:?}", payments["11001"]);
    assert_eq!(
        (payments["11002"]["status"].as_str(), payments["11002"]["reason"].as_str()),
        (Some("invalid"), Some("amount_out_of_range")),
        "{:?}",
        payments["11002"]
    );
    for id in ["11003", "11004"] {
        assert_eq!(payments[id]["status"], "invalid", "{:?}", payments[id]);
        assert!(payments[id]["reason"] == "bad_amount" || payments[id]["reason"] == "amount_out_of_range");
    }
    // An out-of-range payment cannot be assigned to a room either.
    let (status, out) = t.admin_post("/api/admin/bank/payments/11002/assign/", json!({"room": "1101"})).await;
    assert_eq!((status, out["code"].as_str()), (StatusCode::BAD_REQUEST, Some("payment_not_assignable")), "{out}");
    let (status, out) = t.admin_get("/api/admin/bank/payments/?reason=amount_out_of_range").await;
    assert_eq!((status, out["count"].as_u64()), (StatusCode::OK, Some(1)), "{out}");
    assert_eq!(t.balance("1101").await, 1_000_000_000);
    t.check_ledgers().await;
}

async fn an_overlong_payment_id_is_404_and_an_overlong_statement_field_is_400_naming_it(backend: Backend) {
    let mut t = T::start(&backend, None).await;
    t.room("1201", None).await;
    for id in ["9".repeat(3000), "9".repeat(101)] {
        let (status, out) =
            t.admin_post(&format!("/api/admin/bank/payments/{id}/assign/"), json!({"room": "1201"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{out}");
    }
    let (status, out) = t.admin_post("/api/admin/bank/payments/12001/assign/", json!({"room": "r".repeat(3000)})).await;
    assert_eq!((status, out["field"].as_str()), (StatusCode::BAD_REQUEST, Some("room")), "{out}");
    // A camt.053 creditor reference (the variable symbol) of 300 characters.
    let long = "7".repeat(300);
    let statement = camt(&[("L1", "10.00", "CZK", "CRDT", Some(long.as_str()), None)]);
    let (status, out) = t.upload("application/xml", statement).await;
    assert_eq!(
        (status, out["code"].as_str(), out["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_long"), Some("variable_symbol")),
        "{out}"
    );
    assert!(t.all("/api/admin/bank/payments/").await.is_empty(), "nothing was queued");
    assert_eq!(t.balance("1201").await, 0);
}
