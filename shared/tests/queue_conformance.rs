//! The queue behaviours the functions rely on, checked on the embedded queue
//! and, when moto server runs (`PREMISES_TEST_MOTO_ENDPOINT`), on SQS.
//!
//! The same behaviour bodies run on both through [`Backend`], a test-side
//! adapter: on SQS, "consuming" is ReceiveMessage / DeleteMessage directly and
//! waiting out a visibility timeout is sleeping (the queues use 1 s), while the
//! embedded queue's manual clock is moved instead.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use shared::platform::clock::Clock;
use shared::platform::queue::batch::{MessageError, for_each_message};
use shared::platform::queue::embedded::{EmbeddedQueue, sqs_event};
use shared::platform::queue::sqs::SqsQueue;
use shared::platform::queue::{OutMessage, Queue, QueueDef, QueueError};
use tokio::sync::watch;

const START_MILLIS: i64 = 1_700_000_000_000;

/// A queue definition with a name no other test uses (SQS queues on moto outlive the test).
fn def(prefix: &str, visibility_timeout_secs: u32, max_receive_count: u32, fifo: bool) -> QueueDef {
    let name: &'static str = Box::leak(support::unique(prefix).into_boxed_str());
    QueueDef {
        name,
        visibility_timeout_secs,
        max_receive_count,
        fifo,
        retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
    }
}

/// A queue file removed when the test ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new() -> Self {
        TempFile(std::env::temp_dir().join(format!("{}.sqlite", support::unique("premises-queue-test"))))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// A message as a test consumer sees it.
#[derive(Debug, Clone)]
struct Delivered {
    id: String,
    handle: String,
    body: String,
    receive_count: u32,
}

/// One queue backend holding the queues of one test.
enum Backend {
    Embedded { queue: EmbeddedQueue, clock: Clock, _file: TempFile },
    Sqs { client: aws_sdk_sqs::Client, queue: SqsQueue, urls: HashMap<String, String> },
}

/// The embedded backend always; SQS on moto too when it runs.
async fn backends(defs: &[QueueDef]) -> Vec<Backend> {
    let mut backends = vec![embedded(defs)];
    if let Some(endpoint) = support::moto_endpoint() {
        backends.push(sqs(&endpoint, defs).await);
    }
    backends
}

fn embedded(defs: &[QueueDef]) -> Backend {
    let file = TempFile::new();
    let clock = Clock::manual(START_MILLIS);
    let queue = EmbeddedQueue::open(&file.0, clock.clone(), defs).unwrap();
    Backend::Embedded { queue, clock, _file: file }
}

/// Creates each queue and its dead-letter queue (with a RedrivePolicy) on moto.
async fn sqs(endpoint: &str, defs: &[QueueDef]) -> Backend {
    let client = aws_sdk_sqs::Client::new(&support::sdk_config(endpoint).await);
    let mut urls = HashMap::new();
    for def in defs {
        let sqs_name = |logical: &str| if def.fifo { format!("{logical}.fifo") } else { logical.to_string() };
        let mut attributes = HashMap::new();
        if def.fifo {
            attributes.insert(QueueAttributeName::FifoQueue, "true".to_string());
            attributes.insert(QueueAttributeName::ContentBasedDeduplication, "true".to_string());
        }
        let dlq_url = create_queue(&client, &sqs_name(&def.dlq_name()), attributes.clone()).await;
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap();
        attributes.insert(QueueAttributeName::VisibilityTimeout, def.visibility_timeout_secs.to_string());
        attributes.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": def.max_receive_count.to_string() })
                .to_string(),
        );
        let url = create_queue(&client, &sqs_name(def.name), attributes).await;
        urls.insert(def.name.to_string(), url);
        urls.insert(def.dlq_name(), dlq_url);
    }
    Backend::Sqs { queue: SqsQueue::new(client.clone(), urls.clone()), client, urls }
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> String {
    client.create_queue().queue_name(name).set_attributes(Some(attributes)).send().await.unwrap().queue_url.unwrap()
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Embedded { .. } => "embedded",
            Backend::Sqs { .. } => "sqs",
        }
    }

    /// The producer the functions use.
    fn producer(&self) -> Queue {
        match self {
            Backend::Embedded { queue, .. } => Queue::Embedded(queue.clone()),
            Backend::Sqs { queue, .. } => Queue::Sqs(queue.clone()),
        }
    }

    async fn send(&self, queue: &str, message: OutMessage) -> String {
        self.producer().send(queue, message).await.unwrap_or_else(|e| panic!("{}: send: {e:?}", self.name()))
    }

    async fn receive(&self, queue: &str, max: u32) -> Vec<Delivered> {
        self.receive_event(queue, max)
            .await
            .records
            .into_iter()
            .map(|m| Delivered {
                id: m.message_id.unwrap(),
                handle: m.receipt_handle.unwrap(),
                body: m.body.unwrap(),
                receive_count: m.attributes["ApproximateReceiveCount"].parse().unwrap(),
            })
            .collect()
    }

    /// Up to `max` messages as the SQS event Lambda would build from them.
    async fn receive_event(&self, queue: &str, max: u32) -> SqsEvent {
        match self {
            Backend::Embedded { queue: q, .. } => sqs_event(queue, &q.receive(queue, max).await.unwrap()),
            Backend::Sqs { client, urls, .. } => {
                let out = client
                    .receive_message()
                    .queue_url(&urls[queue])
                    .max_number_of_messages(max.min(10) as i32)
                    .wait_time_seconds(0)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .send()
                    .await
                    .unwrap();
                let mut event = SqsEvent::default();
                event.records = out
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| {
                        let mut record = SqsMessage::default();
                        record.message_id = m.message_id;
                        record.receipt_handle = m.receipt_handle;
                        record.body = m.body;
                        record.attributes = m
                            .attributes
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k.as_str().to_string(), v))
                            .collect();
                        record.event_source = Some("aws:sqs".into());
                        record
                    })
                    .collect();
                event
            }
        }
    }

    async fn delete(&self, queue: &str, handle: &str) {
        match self {
            Backend::Embedded { queue: q, .. } => q.delete(queue, handle).await.unwrap(),
            Backend::Sqs { client, urls, .. } => {
                client.delete_message().queue_url(&urls[queue]).receipt_handle(handle).send().await.unwrap();
            }
        }
    }

    /// Receives until the queue stays empty, deleting what it got.
    async fn drain(&self, queue: &str) -> Vec<Delivered> {
        let mut all = Vec::new();
        let mut empty_polls = 0;
        while empty_polls < 2 {
            let batch = self.receive(queue, 10).await;
            if batch.is_empty() {
                empty_polls += 1;
                continue;
            }
            empty_polls = 0;
            for message in &batch {
                self.delete(queue, &message.handle).await;
            }
            all.extend(batch);
        }
        all
    }

    /// Lets received, undeleted messages become visible again.
    async fn wait_out_visibility(&self, def: &QueueDef) {
        match self {
            Backend::Embedded { clock, .. } => clock.advance_millis(i64::from(def.visibility_timeout_secs) * 1000 + 1),
            Backend::Sqs { .. } => {
                tokio::time::sleep(Duration::from_millis(u64::from(def.visibility_timeout_secs) * 1000 + 600)).await
            }
        }
    }

    /// One poll as Lambda's event source makes it: the handler's non-failures are deleted.
    async fn consume_once<F, Fut>(&self, queue: &str, handler: F) -> SqsBatchResponse
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let event = self.receive_event(queue, 10).await;
        let handles: Vec<(String, String)> =
            event.records.iter().map(|m| (m.message_id.clone().unwrap(), m.receipt_handle.clone().unwrap())).collect();
        let response = handler(event).await;
        let failures: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for (id, handle) in &handles {
            if !failures.contains(id.as_str()) {
                self.delete(queue, handle).await;
            }
        }
        response
    }
}

fn bodies(messages: &[Delivered]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

#[tokio::test]
async fn a_sent_message_is_received_once_and_is_gone_after_delete() {
    let q = def("roundtrip", 1, 3, false);
    for b in backends(&[q]).await {
        let id = b.send(q.name, OutMessage::new("hello")).await;
        let got = b.receive(q.name, 10).await;
        assert_eq!(got.len(), 1, "{}", b.name());
        assert_eq!((got[0].id.as_str(), got[0].body.as_str(), got[0].receive_count), (id.as_str(), "hello", 1));
        assert!(b.receive(q.name, 10).await.is_empty(), "{}: in flight, so invisible", b.name());
        b.delete(q.name, &got[0].handle).await;
        b.wait_out_visibility(&q).await;
        assert!(b.receive(q.name, 10).await.is_empty(), "{}: deleted for good", b.name());
    }
}

#[tokio::test]
async fn twenty_five_messages_sent_in_a_batch_are_each_delivered_once() {
    let q = def("batch", 30, 3, false);
    for b in backends(&[q]).await {
        let messages: Vec<OutMessage> = (0..25).map(|i| OutMessage::new(format!("m{i:02}"))).collect();
        let ids = b.producer().send_batch(q.name, messages).await.unwrap();
        assert_eq!(ids.len(), 25, "{}", b.name());
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25, "{}: distinct ids", b.name());

        let got = b.drain(q.name).await;
        let mut got_bodies = bodies(&got);
        got_bodies.sort_unstable();
        let expected: Vec<String> = (0..25).map(|i| format!("m{i:02}")).collect();
        assert_eq!(got_bodies, expected, "{}", b.name());
        let got_ids: HashSet<&String> = got.iter().map(|m| &m.id).collect();
        assert_eq!(got_ids, ids.iter().collect(), "{}", b.name());
    }
}

#[tokio::test]
async fn an_unacknowledged_message_reappears_after_the_visibility_timeout() {
    let q = def("visibility", 1, 5, false);
    for b in backends(&[q]).await {
        let id = b.send(q.name, OutMessage::new("again")).await;
        let first = b.receive(q.name, 10).await;
        assert_eq!(first.len(), 1, "{}", b.name());
        assert!(b.receive(q.name, 10).await.is_empty(), "{}: invisible while in flight", b.name());

        b.wait_out_visibility(&q).await;
        let second = b.receive(q.name, 10).await;
        assert_eq!(second.len(), 1, "{}", b.name());
        assert_eq!((second[0].id.as_str(), second[0].receive_count), (id.as_str(), 2), "{}", b.name());
        assert_ne!(first[0].handle, second[0].handle, "{}: a new receipt handle per receive", b.name());
        b.delete(q.name, &second[0].handle).await;
    }
}

#[tokio::test]
async fn a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue() {
    let q = def("redrive", 1, 2, false);
    for b in backends(&[q]).await {
        let id = b.send(q.name, OutMessage::new("poison")).await;
        for attempt in 1..=2 {
            let got = b.receive(q.name, 10).await;
            assert_eq!(got.len(), 1, "{}: receive {attempt}", b.name());
            assert_eq!(got[0].receive_count, attempt, "{}", b.name());
            b.wait_out_visibility(&q).await;
        }
        assert!(b.receive(q.name, 10).await.is_empty(), "{}: moved instead of delivered a third time", b.name());
        let dead = b.receive(&q.dlq_name(), 10).await;
        assert_eq!(dead.len(), 1, "{}", b.name());
        assert_eq!((dead[0].id.as_str(), dead[0].body.as_str()), (id.as_str(), "poison"), "{}", b.name());
    }
}

#[tokio::test]
async fn a_redrive_moves_the_dead_letter_queue_back_once_and_depth_counts_what_waits() {
    let q = def("redrive-back", 1, 1, false);
    for b in backends(&[q]).await {
        let queue = b.producer();
        assert_eq!(queue.depth(q.name).await.unwrap(), 0, "{}", b.name());
        b.send(q.name, OutMessage::new("first")).await;
        b.send(q.name, OutMessage::new("second")).await;
        assert_eq!(queue.depth(q.name).await.unwrap(), 2, "{}", b.name());
        // One receive each (max_receive_count 1), then both are dead-lettered.
        assert_eq!(b.receive(q.name, 10).await.len() + b.receive(q.name, 10).await.len(), 2, "{}", b.name());
        b.wait_out_visibility(&q).await;
        assert!(b.receive(q.name, 10).await.is_empty(), "{}", b.name());
        assert_eq!(queue.depth(&q.dlq_name()).await.unwrap(), 2, "{}", b.name());

        assert_eq!(queue.redrive(&q).await.unwrap(), 2, "{}", b.name());
        assert_eq!(queue.depth(&q.dlq_name()).await.unwrap(), 0, "{}", b.name());
        let mut back: Vec<String> = b.drain(q.name).await.into_iter().map(|m| m.body).collect();
        back.sort();
        assert_eq!(back, ["first", "second"], "{}: each redriven message comes back once", b.name());
        assert_eq!(queue.redrive(&q).await.unwrap(), 0, "{}: nothing left to move", b.name());
        assert_eq!(queue.depth(q.name).await.unwrap(), 0, "{}", b.name());
    }
}

#[tokio::test]
async fn a_duplicate_dedup_id_within_five_minutes_is_dropped() {
    let q = def("dedup", 30, 3, true);
    for b in backends(&[q]).await {
        let original = b.send(q.name, OutMessage::new("first").group_id("g").dedup_id("d-1")).await;
        let duplicate = b.send(q.name, OutMessage::new("second").group_id("g").dedup_id("d-1")).await;
        b.send(q.name, OutMessage::new("third").group_id("g").dedup_id("d-2")).await;
        if let Backend::Embedded { .. } = b {
            assert_eq!(duplicate, original, "the duplicate reports the original's id");
        }
        let got = b.drain(q.name).await;
        assert_eq!(bodies(&got), ["first", "third"], "{}", b.name());
    }
}

#[tokio::test]
async fn a_fifo_group_is_delivered_in_order_and_waits_while_a_message_is_in_flight() {
    let q = def("fifo", 1, 5, true);
    for b in backends(&[q]).await {
        for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("a3", "a")] {
            b.send(q.name, OutMessage::new(body).group_id(group).dedup_id(body)).await;
        }
        let first = b.receive(q.name, 1).await;
        assert_eq!(bodies(&first), ["a1"], "{}", b.name());
        let others = b.receive(q.name, 10).await;
        assert_eq!(bodies(&others), ["b1"], "{}: group a waits for a1", b.name());
        b.delete(q.name, &others[0].handle).await;

        b.wait_out_visibility(&q).await;
        let again = b.receive(q.name, 10).await;
        assert_eq!(bodies(&again), ["a1", "a2", "a3"], "{}: a1 again, then the rest in order", b.name());
        for m in &again {
            b.delete(q.name, &m.handle).await;
        }
    }
}

#[tokio::test]
async fn sending_to_an_unknown_queue_fails() {
    let q = def("known", 30, 3, false);
    for b in backends(&[q]).await {
        let missing = support::unique("missing");
        let result = b.producer().send(&missing, OutMessage::new("x")).await;
        assert!(
            matches!(result, Err(QueueError::UnknownQueue(ref name)) if *name == missing),
            "{}: {result:?}",
            b.name()
        );
    }
}

#[tokio::test]
async fn an_sqs_queue_missing_from_the_configuration_is_looked_up_by_name() {
    let q = def("lookup", 30, 3, false);
    let Some(endpoint) = support::moto_endpoint() else { return };
    let Backend::Sqs { client, urls, .. } = sqs(&endpoint, &[q]).await else { unreachable!() };
    let producer = SqsQueue::new(client.clone(), HashMap::new());
    let id = producer.send(q.name, OutMessage::new("found")).await.unwrap();
    let ids = producer.send_batch(q.name, vec![OutMessage::new("again")]).await.unwrap();
    assert_eq!(ids.len(), 1);
    let b = Backend::Sqs { client, queue: producer, urls };
    let got = b.drain(q.name).await;
    assert!(got.iter().any(|m| m.id == id));
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn a_body_that_does_not_parse_fails_alone_and_the_rest_is_acknowledged() {
    #[derive(serde::Deserialize)]
    struct Job {
        n: u32,
    }
    let q = def("parse", 1, 5, false);
    for b in backends(&[q]).await {
        b.send(q.name, OutMessage::new(r#"{"n":1}"#)).await;
        let garbage = b.send(q.name, OutMessage::new("not json")).await;
        b.send(q.name, OutMessage::new(r#"{"n":2}"#)).await;

        let handled = Arc::new(Mutex::new(Vec::new()));
        let response = b
            .consume_once(q.name, |event| {
                for_each_message(event, |job: Job, _| {
                    let handled = handled.clone();
                    async move {
                        handled.lock().unwrap().push(job.n);
                        Ok::<_, MessageError>(())
                    }
                })
            })
            .await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, [garbage.as_str()], "{}", b.name());
        let mut handled = handled.lock().unwrap().clone();
        handled.sort_unstable();
        assert_eq!(handled, [1, 2], "{}", b.name());

        b.wait_out_visibility(&q).await;
        let again = b.receive(q.name, 10).await;
        assert_eq!(bodies(&again), ["not json"], "{}: only the failed one comes back", b.name());
    }
}

#[tokio::test]
async fn embedded_messages_survive_reopening_the_file() {
    let q = def("durable", 30, 3, false);
    let file = TempFile::new();
    let clock = Clock::manual(START_MILLIS);
    {
        let queue = EmbeddedQueue::open(&file.0, clock.clone(), &[q]).unwrap();
        queue.send(q.name, OutMessage::new("one")).await.unwrap();
        queue.send(q.name, OutMessage::new("two")).await.unwrap();
        let got = queue.receive(q.name, 1).await.unwrap();
        assert_eq!(got[0].body, "one");
    }
    let queue = EmbeddedQueue::open(&file.0, clock.clone(), &[q]).unwrap();
    assert_eq!(queue.depth(q.name).await.unwrap(), 2);
    let got = queue.receive(q.name, 10).await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["two"], "one is still in flight");
    clock.advance_millis(30_001);
    let got = queue.receive(q.name, 10).await.unwrap();
    assert_eq!(got.iter().map(|m| (m.body.as_str(), m.receive_count)).collect::<Vec<_>>(), [("one", 2), ("two", 2)]);
}

/// Polls `check` until it holds, for at most five seconds.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn open_embedded(defs: &[QueueDef]) -> (EmbeddedQueue, Clock, TempFile) {
    let file = TempFile::new();
    let clock = Clock::manual(START_MILLIS);
    (EmbeddedQueue::open(&file.0, clock.clone(), defs).unwrap(), clock, file)
}

#[tokio::test]
async fn the_consumer_acknowledges_all_but_the_failed_message_which_returns_and_is_then_dead_lettered() {
    let q = def("consumer", 30, 2, false);
    let (queue, clock, _file) = open_embedded(&[q]);
    for body in ["ok-1", "bad", "ok-2"] {
        queue.send(q.name, OutMessage::json(&body).unwrap()).await.unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::<(String, u32)>::new()));
    let (stop, shutdown) = watch::channel(false);
    let consumer = {
        let (queue, seen) = (queue.clone(), seen.clone());
        tokio::spawn(async move {
            let handler = move |event| {
                let seen = seen.clone();
                for_each_message(event, move |body: String, meta| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push((body.clone(), meta.receive_count));
                        if body == "bad" { Err(anyhow::anyhow!("cannot handle {body}").into()) } else { Ok(()) }
                    }
                })
            };
            queue.run_consumer(&q, 10, handler, shutdown).await;
        })
    };

    let depth = |name: String| {
        let queue = queue.clone();
        move || {
            let (queue, name) = (queue.clone(), name.clone());
            async move { queue.depth(&name).await.unwrap() }
        }
    };
    let main_depth = depth(q.name.to_string());
    let dlq_depth = depth(q.dlq_name());
    eventually("the two good messages are deleted", || async { main_depth().await == 1 }).await;
    let receives_of_bad = || seen.lock().unwrap().iter().filter(|(b, _)| b == "bad").count();
    assert_eq!(receives_of_bad(), 1);

    clock.advance_millis(30_001);
    eventually("the failed message is delivered again", || async { receives_of_bad() == 2 }).await;
    clock.advance_millis(30_001);
    eventually("it lands in the dead-letter queue", || async { dlq_depth().await == 1 && main_depth().await == 0 })
        .await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(b, _)| b.starts_with("ok")).count(), 2, "good ones handled once: {seen:?}");
    assert_eq!(seen.iter().filter(|(b, _)| b == "bad").map(|(_, n)| *n).collect::<Vec<_>>(), [1, 2]);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_consumer_finishes_its_in_flight_batch_before_shutting_down() {
    let q = def("shutdown", 30, 3, false);
    let (queue, _clock, _file) = open_embedded(&[q]);
    queue.send(q.name, OutMessage::new("slow")).await.unwrap();

    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let (stop, shutdown) = watch::channel(false);
    let consumer = {
        let (queue, release) = (queue.clone(), release.clone());
        tokio::spawn(async move {
            let handler = move |_event: SqsEvent| {
                let (started_tx, release) = (started_tx.clone(), release.clone());
                async move {
                    let _ = started_tx.send(());
                    release.notified().await;
                    SqsBatchResponse::default()
                }
            };
            queue.run_consumer(&q, 10, handler, shutdown).await;
        })
    };

    tokio::time::timeout(Duration::from_secs(5), started.recv()).await.unwrap().unwrap();
    stop.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!consumer.is_finished(), "the consumer waits for the batch in flight");
    assert_eq!(queue.depth(q.name).await.unwrap(), 1, "nothing acknowledged before the handler returns");

    release.notify_one();
    tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap().unwrap();
    assert_eq!(queue.depth(q.name).await.unwrap(), 0, "the finished batch was acknowledged");
}

#[tokio::test]
async fn a_panicking_handler_fails_the_whole_batch() {
    let q = def("panic", 30, 3, false);
    let (queue, clock, _file) = open_embedded(&[q]);
    queue.send_batch(q.name, vec![OutMessage::new("a"), OutMessage::new("b")]).await.unwrap();

    let calls = Arc::new(AtomicUsize::new(0));
    let (stop, shutdown) = watch::channel(false);
    let consumer = {
        let (queue, calls) = (queue.clone(), calls.clone());
        tokio::spawn(async move {
            let handler = move |event: SqsEvent| {
                let call = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(call > 0, "deliberate panic on the first batch");
                    assert_eq!(event.records.len(), 2);
                    SqsBatchResponse::default()
                }
            };
            queue.run_consumer(&q, 10, handler, shutdown).await;
        })
    };

    eventually("the first batch was handled", || async { calls.load(Ordering::SeqCst) == 1 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queue.depth(q.name).await.unwrap(), 2, "nothing acknowledged after the panic");
    clock.advance_millis(30_001);
    eventually("both come back and are acknowledged", || async { queue.depth(q.name).await.unwrap() == 0 }).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_consumer_keeps_a_fifo_group_in_order_across_a_failure() {
    let q = def("fifo-consumer", 30, 5, true);
    let (queue, clock, _file) = open_embedded(&[q]);
    for body in ["1", "2", "3"] {
        queue.send(q.name, OutMessage::new(body).group_id("g")).await.unwrap();
    }
    let handled = Arc::new(Mutex::new(Vec::<u32>::new()));
    let fail_two_once = Arc::new(AtomicUsize::new(0));
    let (stop, shutdown) = watch::channel(false);
    let consumer = {
        let (queue, handled) = (queue.clone(), handled.clone());
        tokio::spawn(async move {
            let handler = move |event| {
                let (handled, fail_two_once) = (handled.clone(), fail_two_once.clone());
                for_each_message(event, move |n: u32, _| {
                    let (handled, fail_two_once) = (handled.clone(), fail_two_once.clone());
                    async move {
                        if n == 2 && fail_two_once.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err(MessageError::retry(anyhow::anyhow!("not yet")));
                        }
                        handled.lock().unwrap().push(n);
                        Ok(())
                    }
                })
            };
            queue.run_consumer(&q, 10, handler, shutdown).await;
        })
    };

    eventually("1 is handled and 2, 3 wait", || async { queue.depth(q.name).await.unwrap() == 2 }).await;
    clock.advance_millis(30_001);
    eventually("2 and 3 follow", || async { queue.depth(q.name).await.unwrap() == 0 }).await;
    assert_eq!(*handled.lock().unwrap(), [1, 2, 3]);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap().unwrap();
}

#[test]
fn a_queue_definition_needs_a_positive_max_receive_count() {
    let file = TempFile::new();
    let q = QueueDef {
        name: "zero",
        visibility_timeout_secs: 30,
        max_receive_count: 0,
        fifo: false,
        retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
    };
    assert!(EmbeddedQueue::open(&file.0, Clock::manual(START_MILLIS), &[q]).is_err());
}
