//! A durable SQLite-backed queue for the local stack with SQS's delivery semantics.
//!
//! Messages live in their own SQLite file (WAL), so the local stack keeps
//! unacknowledged work across restarts, as SQS does. What the handlers see is
//! what Lambda's SQS event source gives them: at-least-once delivery, a
//! visibility timeout after each receive, redrive to `<name>-dlq` once a
//! message has been received `max_receive_count` times, five-minute
//! deduplication and per-group ordering on FIFO queues, and partial batch
//! failures reported through [`SqsBatchResponse`].
//!
//! Every SQLite call runs on the blocking pool behind one connection, so the
//! async runtime never waits on the disk and transactions never interleave.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::Instrument;

use super::{OutMessage, QueueDef, QueueError};
use crate::platform::clock::Clock;

/// SQS drops a message whose deduplication id was sent to the queue within this window.
const DEDUP_WINDOW_MILLIS: i64 = 5 * 60 * 1000;
/// SQS's long-standing message size limit; larger bodies are refused here as they would be there.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// SQS limits deduplication and group ids to 128 characters.
const MAX_ID_CHARS: usize = 128;
/// How long the consumer waits before polling an empty queue again.
const POLL_INTERVAL: Duration = Duration::from_millis(75);
/// How long the consumer waits after the queue itself failed.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Rows examined per query while looking for deliverable messages.
const SCAN_PAGE: i64 = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    group_id TEXT,
    dedup_id TEXT,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at INTEGER,
    receipt_handle TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt_handle) WHERE receipt_handle IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
CREATE INDEX IF NOT EXISTS dedup_by_age ON dedup (sent_at);
";

/// A queue's behaviour, keyed by its name (the catalog's queues and their dead-letter queues).
#[derive(Debug, Clone)]
struct Spec {
    visibility_timeout_millis: i64,
    fifo: bool,
    /// The dead-letter queue and the receives after which a message moves there; `None` on a DLQ.
    redrive: Option<(String, u32)>,
}

/// The embedded queue: one SQLite connection shared by every clone.
#[derive(Clone)]
pub struct EmbeddedQueue {
    conn: Arc<Mutex<Connection>>,
    clock: Clock,
    queues: Arc<HashMap<String, Spec>>,
}

/// A message handed out by [`EmbeddedQueue::receive`]; invisible to other receives until
/// deleted or until the queue's visibility timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    /// Identifies this receive; [`EmbeddedQueue::delete`] needs the latest one.
    pub receipt_handle: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    pub sent_at_millis: i64,
    pub first_received_at_millis: i64,
    pub group_id: Option<String>,
    /// The deduplication id: the sender's, or the body's SHA-256 on a FIFO queue without one.
    pub dedup_id: Option<String>,
    /// Position in the queue, on FIFO queues only (SQS's `SequenceNumber`).
    pub sequence_number: Option<String>,
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue file serving `defs` and their dead-letter queues.
    pub fn open(path: &Path, clock: Clock, defs: &[QueueDef]) -> anyhow::Result<Self> {
        let mut queues = HashMap::new();
        for def in defs {
            anyhow::ensure!(
                def.max_receive_count >= 1,
                "queue {}: max_receive_count must be at least 1 (SQS's RedrivePolicy requires it)",
                def.name
            );
            let visibility_timeout_millis = i64::from(def.visibility_timeout_secs) * 1000;
            queues.insert(
                def.name.to_string(),
                Spec {
                    visibility_timeout_millis,
                    fifo: def.fifo,
                    redrive: Some((def.dlq_name(), def.max_receive_count)),
                },
            );
            queues.entry(def.dlq_name()).or_insert(Spec { visibility_timeout_millis, fifo: def.fifo, redrive: None });
        }

        let conn = Connection::open(path).with_context(|| format!("cannot open queue file {}", path.display()))?;
        // WAL lets readers and the writer proceed together; NORMAL sync in WAL mode survives a
        // process crash, which is the durability a local stack needs.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .with_context(|| format!("cannot enable WAL on {}", path.display()))?;
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "queue file {} refused WAL (mode {mode})", path.display());
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA).with_context(|| format!("cannot create the queue schema in {}", path.display()))?;

        Ok(EmbeddedQueue { conn: Arc::new(Mutex::new(conn)), clock, queues: Arc::new(queues) })
    }

    /// Sends one message; returns its message id (the original's when deduplicated).
    pub async fn send(&self, queue: &str, message: OutMessage) -> Result<String, QueueError> {
        let mut ids = self.send_batch(queue, vec![message]).await?;
        ids.pop().ok_or_else(|| QueueError::Backend(anyhow::anyhow!("send to {queue} returned no message id")))
    }

    /// Sends messages in one transaction: all are stored or none.
    pub async fn send_batch(&self, queue: &str, messages: Vec<OutMessage>) -> Result<Vec<String>, QueueError> {
        let spec = self.spec(queue)?.clone();
        for message in &messages {
            validate(queue, &spec, message)?;
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let queue = queue.to_string();
        let now = self.clock.now_millis();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            tx.execute("DELETE FROM dedup WHERE sent_at <= ?1", params![now - DEDUP_WINDOW_MILLIS]).map_err(db)?;
            let ids = messages
                .into_iter()
                .map(|message| insert(&tx, &queue, &spec, message, now))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().map_err(db)?;
            Ok(ids)
        })
        .await
    }

    /// Receives up to `max` messages, making them invisible for the queue's visibility timeout.
    ///
    /// A message already received `max_receive_count` times moves to the dead-letter queue
    /// instead of being delivered again. On a FIFO queue no message is delivered while another
    /// of its group is in flight, and a group's messages come in the order they were sent.
    pub async fn receive(&self, queue: &str, max: u32) -> Result<Vec<Received>, QueueError> {
        let spec = self.spec(queue)?.clone();
        if max == 0 {
            return Err(QueueError::Invalid("receive needs max of at least 1".into()));
        }
        let queue = queue.to_string();
        let now = self.clock.now_millis();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let received = receive_in(&tx, &queue, &spec, max as usize, now)?;
            tx.commit().map_err(db)?;
            Ok(received)
        })
        .await
    }

    /// Acknowledges a received message. A stale receipt handle (the message was received again
    /// since, or is already deleted) is ignored, as SQS does.
    pub async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        self.delete_batch(queue, vec![receipt_handle.to_string()]).await
    }

    /// Acknowledges several received messages in one transaction.
    pub async fn delete_batch(&self, queue: &str, receipt_handles: Vec<String>) -> Result<(), QueueError> {
        self.spec(queue)?;
        if receipt_handles.is_empty() {
            return Ok(());
        }
        let queue = queue.to_string();
        self.with_conn(move |conn| {
            let tx = conn.transaction().map_err(db)?;
            for handle in &receipt_handles {
                let deleted = tx
                    .execute("DELETE FROM messages WHERE queue = ?1 AND receipt_handle = ?2", params![queue, handle])
                    .map_err(db)?;
                if deleted == 0 {
                    tracing::debug!(queue, receipt_handle = handle, "stale receipt handle; nothing deleted");
                }
            }
            tx.commit().map_err(db)
        })
        .await
    }

    /// Messages in the queue, visible and in flight.
    pub async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        self.spec(queue)?;
        let queue = queue.to_string();
        self.with_conn(move |conn| {
            conn.query_row("SELECT COUNT(*) FROM messages WHERE queue = ?1", params![queue], |row| row.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(db)
        })
        .await
    }

    /// Moves every message of `def`'s dead-letter queue back to `def`'s queue in one
    /// transaction, visible at once and with its receive count reset, as SQS's redrive does.
    pub async fn redrive(&self, def: &QueueDef) -> Result<u64, QueueError> {
        let (dlq, queue) = (def.dlq_name(), def.name.to_string());
        self.spec(&dlq)?;
        self.spec(&queue)?;
        let now = self.clock.now_millis();
        self.with_conn(move |conn| {
            conn.execute(
                "UPDATE messages SET queue = ?1, visible_at = ?2, receive_count = 0, first_received_at = NULL, \
                 receipt_handle = NULL WHERE queue = ?3",
                params![queue, now, dlq],
            )
            .map(|n| n as u64)
            .map_err(db)
        })
        .await
    }

    /// Consumes `def`'s queue as Lambda's SQS event source would, until `shutdown` turns true.
    ///
    /// Each batch of up to `batch_size` messages goes to `handler` as an [`SqsEvent`]; the messages
    /// it does not list in `batch_item_failures` are deleted, the others reappear after the
    /// visibility timeout. A panicking handler fails the whole batch. On shutdown the batch in
    /// flight is finished (and acknowledged) before this returns.
    pub async fn run_consumer<F, Fut>(
        &self,
        def: &QueueDef,
        batch_size: u32,
        handler: F,
        mut shutdown: watch::Receiver<bool>,
    ) where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let queue = def.name;
        let batch_size = batch_size.max(1);
        tracing::info!(queue, batch_size, "queue consumer started");
        while !*shutdown.borrow() {
            match self.receive(queue, batch_size).await {
                Ok(batch) if batch.is_empty() => {
                    if sleep_or_shutdown(&mut shutdown, POLL_INTERVAL).await {
                        break;
                    }
                }
                Ok(batch) => {
                    let span = tracing::info_span!("queue_batch", queue, size = batch.len());
                    self.process_batch(queue, batch, &handler).instrument(span).await;
                }
                Err(e) => {
                    tracing::error!(queue, error = %format!("{:#}", anyhow::Error::new(e)), "receive failed");
                    if sleep_or_shutdown(&mut shutdown, ERROR_BACKOFF).await {
                        break;
                    }
                }
            }
        }
        tracing::info!(queue, "queue consumer stopped");
    }

    /// Hands one batch to the handler and acknowledges what it did not report as failed.
    async fn process_batch<F, Fut>(&self, queue: &str, batch: Vec<Received>, handler: &F)
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        let event = sqs_event(queue, &batch);
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(event))) {
            Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        let unacknowledged: HashSet<&str> = match &outcome {
            Ok(response) => match reported_failures(&batch, response) {
                Some(failed) => failed,
                None => {
                    tracing::error!(
                        "handler reported a batch item failure that names no message of the batch; \
                         failing the whole batch, as Lambda does"
                    );
                    batch.iter().map(|m| m.message_id.as_str()).collect()
                }
            },
            Err(panic) => {
                tracing::error!(panic = panic_message(panic.as_ref()), "handler panicked; failing the whole batch");
                batch.iter().map(|m| m.message_id.as_str()).collect()
            }
        };
        let acknowledged: Vec<String> = batch
            .iter()
            .filter(|m| !unacknowledged.contains(m.message_id.as_str()))
            .map(|m| m.receipt_handle.clone())
            .collect();
        let acknowledged_count = acknowledged.len();
        if let Err(e) = self.delete_batch(queue, acknowledged).await {
            // The messages reappear after the visibility timeout: delivered again, not lost.
            tracing::error!(error = %format!("{:#}", anyhow::Error::new(e)), "acknowledging the batch failed");
            return;
        }
        if unacknowledged.is_empty() {
            tracing::debug!(acknowledged = acknowledged_count, "batch handled");
        } else {
            let failed_ids: Vec<&str> = unacknowledged.iter().copied().collect();
            tracing::warn!(
                acknowledged = acknowledged_count,
                failed = ?failed_ids,
                "batch handled with failures; they reappear after the visibility timeout"
            );
        }
    }

    fn spec(&self, queue: &str) -> Result<&Spec, QueueError> {
        self.queues.get(queue).ok_or_else(|| QueueError::UnknownQueue(queue.to_string()))
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn with_conn<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, QueueError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| QueueError::Backend(anyhow::anyhow!("queue connection poisoned by an earlier panic")))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| QueueError::Backend(anyhow::Error::new(e).context("queue task failed")))?
    }
}

/// The event Lambda's SQS event source would deliver for `messages` received from `queue`.
pub fn sqs_event(queue: &str, messages: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(|m| sqs_message(queue, m)).collect();
    event
}

fn sqs_message(queue: &str, received: &Received) -> SqsMessage {
    let mut attributes = HashMap::from([
        ("ApproximateReceiveCount".to_string(), received.receive_count.to_string()),
        ("SentTimestamp".to_string(), received.sent_at_millis.to_string()),
        ("SenderId".to_string(), "000000000000".to_string()),
        ("ApproximateFirstReceiveTimestamp".to_string(), received.first_received_at_millis.to_string()),
    ]);
    if let Some(group) = &received.group_id {
        attributes.insert("MessageGroupId".into(), group.clone());
    }
    if let Some(dedup) = &received.dedup_id {
        attributes.insert("MessageDeduplicationId".into(), dedup.clone());
    }
    if let Some(sequence) = &received.sequence_number {
        attributes.insert("SequenceNumber".into(), sequence.clone());
    }
    let mut message = SqsMessage::default();
    message.message_id = Some(received.message_id.clone());
    message.receipt_handle = Some(received.receipt_handle.clone());
    message.body = Some(received.body.clone());
    // Lambda also sends md5OfBody; no MD5 implementation is in the dependency tree, and no
    // handler checks it.
    message.md5_of_body = None;
    message.attributes = attributes;
    message.event_source = Some("aws:sqs".into());
    message.event_source_arn = Some(format!("arn:aws:sqs:local:000000000000:{queue}"));
    message.aws_region = Some("local".into());
    message
}

/// The failed message ids of a handler's response, or `None` when it names a message that is
/// not in the batch (or none at all), which Lambda treats as the whole batch failing.
fn reported_failures<'a>(batch: &'a [Received], response: &SqsBatchResponse) -> Option<HashSet<&'a str>> {
    response
        .batch_item_failures
        .iter()
        .map(|f| batch.iter().find(|m| m.message_id == f.item_identifier).map(|m| m.message_id.as_str()))
        .collect()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

/// Sleeps, waking early on shutdown; true when the consumer should stop.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *shutdown.borrow(),
        // A dropped sender can never ask again, so it means stop.
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

/// Refuses what SQS would refuse, so that the local stack fails where production would.
fn validate(queue: &str, spec: &Spec, message: &OutMessage) -> Result<(), QueueError> {
    let invalid = |why: String| Err(QueueError::Invalid(format!("queue {queue}: {why}")));
    if message.body.is_empty() {
        return invalid("the body is empty; SQS requires at least one character".into());
    }
    if message.body.len() > MAX_BODY_BYTES {
        return invalid(format!("the body has {} bytes; SQS accepts at most {MAX_BODY_BYTES}", message.body.len()));
    }
    if let Some(c) = message.body.chars().find(|&c| !sqs_body_char(c)) {
        return invalid(format!("the body contains U+{:04X}, which SQS does not accept", c as u32));
    }
    for (what, id) in [("dedup_id", &message.dedup_id), ("group_id", &message.group_id)] {
        if let Some(id) = id
            && (id.is_empty() || id.chars().count() > MAX_ID_CHARS || !id.chars().all(|c| c.is_ascii_graphic()))
        {
            return invalid(format!("{what} {id:?} is not 1 to {MAX_ID_CHARS} printable ASCII characters"));
        }
    }
    if spec.fifo && message.group_id.is_none() {
        return invalid("a FIFO queue needs a group_id on every message".into());
    }
    if !spec.fifo && message.dedup_id.is_some() {
        return invalid("dedup_id needs a FIFO queue; SQS rejects it on a standard queue".into());
    }
    Ok(())
}

/// The characters SQS allows in a message body.
fn sqs_body_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn insert(tx: &Transaction<'_>, queue: &str, spec: &Spec, message: OutMessage, now: i64) -> Result<String, QueueError> {
    // A FIFO queue without a sender's id deduplicates by content, as SQS's
    // ContentBasedDeduplication does.
    let dedup_id = match message.dedup_id {
        Some(id) => Some(id),
        None if spec.fifo => Some(hex(&Sha256::digest(message.body.as_bytes()))),
        None => None,
    };
    if let Some(dedup_id) = &dedup_id {
        let original: Option<String> = tx
            .query_row(
                "SELECT message_id FROM dedup WHERE queue = ?1 AND dedup_id = ?2 AND sent_at > ?3",
                params![queue, dedup_id, now - DEDUP_WINDOW_MILLIS],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(original) = original {
            tracing::debug!(queue, dedup_id, message_id = original, "duplicate message dropped");
            return Ok(original);
        }
    }
    let message_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO messages (queue, message_id, body, group_id, dedup_id, sent_at, visible_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![queue, message_id, message.body, message.group_id, dedup_id, now],
    )
    .map_err(db)?;
    if let Some(dedup_id) = &dedup_id {
        tx.execute(
            "INSERT OR REPLACE INTO dedup (queue, dedup_id, message_id, sent_at) VALUES (?1, ?2, ?3, ?4)",
            params![queue, dedup_id, message_id, now],
        )
        .map_err(db)?;
    }
    Ok(message_id)
}

/// A stored message as `receive_in` scans it.
struct Row {
    seq: i64,
    message_id: String,
    body: String,
    group_id: Option<String>,
    dedup_id: Option<String>,
    sent_at: i64,
    receive_count: u32,
    first_received_at: Option<i64>,
}

fn receive_in(
    tx: &Transaction<'_>,
    queue: &str,
    spec: &Spec,
    max: usize,
    now: i64,
) -> Result<Vec<Received>, QueueError> {
    // Groups with a message in flight wait until it is deleted or becomes visible again.
    let mut blocked_groups = HashSet::new();
    if spec.fifo {
        let mut stmt = tx
            .prepare(
                "SELECT DISTINCT group_id FROM messages WHERE queue = ?1 AND visible_at > ?2 AND group_id IS NOT NULL",
            )
            .map_err(db)?;
        let groups = stmt.query_map(params![queue, now], |row| row.get::<_, String>(0)).map_err(db)?;
        for group in groups {
            blocked_groups.insert(group.map_err(db)?);
        }
    }

    let mut scan = tx
        .prepare(
            "SELECT seq, message_id, body, group_id, dedup_id, sent_at, receive_count, first_received_at
             FROM messages WHERE queue = ?1 AND visible_at <= ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        )
        .map_err(db)?;
    let mut received = Vec::new();
    let mut after = 0_i64;
    while received.len() < max {
        let page = scan
            .query_map(params![queue, now, after, SCAN_PAGE], |row| {
                Ok(Row {
                    seq: row.get(0)?,
                    message_id: row.get(1)?,
                    body: row.get(2)?,
                    group_id: row.get(3)?,
                    dedup_id: row.get(4)?,
                    sent_at: row.get(5)?,
                    receive_count: row.get(6)?,
                    first_received_at: row.get(7)?,
                })
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        let Some(last) = page.last() else { break };
        after = last.seq;

        for row in page {
            if row.group_id.as_ref().is_some_and(|g| blocked_groups.contains(g)) {
                continue;
            }
            if let Some((dlq, max_receive_count)) = &spec.redrive
                && row.receive_count >= *max_receive_count
            {
                tx.execute(
                    "UPDATE messages SET queue = ?1, visible_at = ?2, receipt_handle = NULL WHERE seq = ?3",
                    params![dlq, now, row.seq],
                )
                .map_err(db)?;
                tracing::warn!(
                    queue,
                    dlq,
                    message_id = row.message_id,
                    receive_count = row.receive_count,
                    "message moved to the dead-letter queue"
                );
                continue;
            }
            let receipt_handle = uuid::Uuid::new_v4().to_string();
            let receive_count = row.receive_count.saturating_add(1);
            let first_received_at = row.first_received_at.unwrap_or(now);
            tx.execute(
                "UPDATE messages SET visible_at = ?1, receive_count = ?2, first_received_at = ?3, receipt_handle = ?4
                 WHERE seq = ?5",
                params![
                    now + spec.visibility_timeout_millis,
                    receive_count,
                    first_received_at,
                    receipt_handle,
                    row.seq
                ],
            )
            .map_err(db)?;
            received.push(Received {
                message_id: row.message_id,
                receipt_handle,
                body: row.body,
                receive_count,
                sent_at_millis: row.sent_at,
                first_received_at_millis: first_received_at,
                group_id: row.group_id,
                dedup_id: row.dedup_id,
                sequence_number: spec.fifo.then(|| format!("{:020}", row.seq)),
            });
            if received.len() == max {
                break;
            }
        }
    }
    Ok(received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn db(e: rusqlite::Error) -> QueueError {
    QueueError::Backend(anyhow::Error::new(e).context("queue database"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: QueueDef = QueueDef {
        name: "work",
        visibility_timeout_secs: 30,
        max_receive_count: 2,
        fifo: false,
        retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
    };
    const FIFO: QueueDef = QueueDef {
        name: "ordered",
        visibility_timeout_secs: 30,
        max_receive_count: 2,
        fifo: true,
        retention_secs: QueueDef::DEFAULT_RETENTION_SECS,
    };

    /// Removes a test's queue file when the test ends.
    struct Cleanup(std::path::PathBuf);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn open() -> (EmbeddedQueue, Clock, Cleanup) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("premises-queue-unit-{}-{n}.sqlite", std::process::id()));
        let clock = Clock::manual(1_700_000_000_000);
        (EmbeddedQueue::open(&path, clock.clone(), &[DEF, FIFO]).unwrap(), clock, Cleanup(path))
    }

    #[tokio::test]
    async fn what_sqs_refuses_is_refused() {
        let (q, _, _file) = open();
        assert!(matches!(q.send("work", OutMessage::new("")).await, Err(QueueError::Invalid(_))));
        assert!(matches!(q.send("work", OutMessage::new("x").dedup_id("d")).await, Err(QueueError::Invalid(_))));
        assert!(matches!(q.send("ordered", OutMessage::new("x")).await, Err(QueueError::Invalid(_))));
        assert!(matches!(q.send("work", OutMessage::new("\u{1}")).await, Err(QueueError::Invalid(_))));
        assert!(matches!(q.send("nope", OutMessage::new("x")).await, Err(QueueError::UnknownQueue(_))));
        assert!(q.send("work-dlq", OutMessage::new("x")).await.is_ok());
    }

    #[tokio::test]
    async fn a_fifo_group_waits_while_one_of_its_messages_is_in_flight() {
        let (q, clock, _file) = open();
        for (body, group) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
            q.send("ordered", OutMessage::new(body).group_id(group)).await.unwrap();
        }
        let first = q.receive("ordered", 1).await.unwrap();
        assert_eq!(first[0].body, "a1");
        let rest = q.receive("ordered", 10).await.unwrap();
        assert_eq!(rest.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["b1"]);
        clock.advance_millis(30_001);
        let again = q.receive("ordered", 10).await.unwrap();
        assert_eq!(again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["a1", "b1", "a2"]);
        assert!(again.iter().all(|m| m.sequence_number.is_some()));
    }

    #[tokio::test]
    async fn a_fifo_message_without_dedup_id_is_deduplicated_by_content() {
        let (q, _, _file) = open();
        let a = q.send("ordered", OutMessage::new("same").group_id("g")).await.unwrap();
        let b = q.send("ordered", OutMessage::new("same").group_id("g")).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(q.depth("ordered").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_dedup_id_expires_after_five_minutes() {
        let (q, clock, _file) = open();
        let a = q.send("ordered", OutMessage::new("one").group_id("g").dedup_id("d")).await.unwrap();
        clock.advance_millis(DEDUP_WINDOW_MILLIS + 1);
        let b = q.send("ordered", OutMessage::new("two").group_id("g").dedup_id("d")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_event_carries_what_lambda_delivers() {
        let (q, _, _file) = open();
        let id = q.send("ordered", OutMessage::new("{}").group_id("g").dedup_id("d")).await.unwrap();
        let received = q.receive("ordered", 10).await.unwrap();
        let event = sqs_event("ordered", &received);
        let json = serde_json::to_value(&event).unwrap();
        let record = &json["Records"][0];
        assert_eq!(record["messageId"], id.as_str());
        assert_eq!(record["eventSource"], "aws:sqs");
        assert_eq!(record["eventSourceARN"], "arn:aws:sqs:local:000000000000:ordered");
        assert_eq!(record["awsRegion"], "local");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(record["attributes"]["SentTimestamp"], "1700000000000");
        assert_eq!(record["attributes"]["ApproximateFirstReceiveTimestamp"], "1700000000000");
        assert_eq!(record["attributes"]["MessageGroupId"], "g");
        assert_eq!(record["attributes"]["MessageDeduplicationId"], "d");
    }
}
