//! Amazon SQS producer.
//!
//! Queue URLs come from configuration (`PREMISES_QUEUE_URL_<NAME>`); a queue
//! missing there is looked up once by name with GetQueueUrl and remembered.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};
use tokio::sync::RwLock;

use super::{OutMessage, QueueError};

/// SendMessageBatch takes at most 10 entries.
const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's long-standing limit on a batch's total payload; a batch is split before reaching it.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Receives one redrive makes at most (10 messages each).
const MAX_REDRIVE_ROUNDS: usize = 1000;

#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    /// Logical queue name to queue URL; shared by clones so that a lookup is done once.
    urls: Arc<RwLock<HashMap<String, String>>>,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, urls: HashMap<String, String>) -> Self {
        SqsQueue { client, urls: Arc::new(RwLock::new(urls)) }
    }

    /// Sends one message; returns its message id.
    pub async fn send(&self, queue: &str, message: OutMessage) -> Result<String, QueueError> {
        let url = self.url(queue).await?;
        let out = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(message.body)
            .set_message_deduplication_id(message.dedup_id)
            .set_message_group_id(message.group_id)
            .send()
            .await
            .map_err(|e| backend(&format!("SendMessage to {queue}"), e))?;
        out.message_id
            .ok_or_else(|| QueueError::Backend(anyhow::anyhow!("SendMessage to {queue} returned no message id")))
    }

    /// Sends messages in SendMessageBatch calls of up to 10, returning their ids in order.
    ///
    /// Entries SQS failed on its side are retried once. An error means some messages may have
    /// been sent already: delivery is at-least-once, and dedup ids make a re-send harmless.
    pub async fn send_batch(&self, queue: &str, messages: Vec<OutMessage>) -> Result<Vec<String>, QueueError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let url = self.url(queue).await?;
        let mut ids: Vec<Option<String>> = vec![None; messages.len()];
        for chunk in chunks(&messages) {
            let mut pending: Vec<usize> = chunk.collect();
            for attempt in 1..=2 {
                let entries = pending
                    .iter()
                    .map(|&i| {
                        let message = &messages[i];
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(message.body.clone())
                            .set_message_deduplication_id(message.dedup_id.clone())
                            .set_message_group_id(message.group_id.clone())
                            .build()
                            .map_err(|e| QueueError::Invalid(format!("message #{i} for {queue}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| backend(&format!("SendMessageBatch to {queue}"), e))?;
                for sent in out.successful {
                    if let Some(slot) = sent.id.parse::<usize>().ok().and_then(|i| ids.get_mut(i)) {
                        *slot = Some(sent.message_id);
                    }
                }
                if out.failed.is_empty() {
                    break;
                }
                // The sender's faults (a bad body, a missing group id) fail again the same way.
                if attempt == 2 || out.failed.iter().any(|f| f.sender_fault) {
                    return Err(QueueError::Backend(anyhow::anyhow!(
                        "SendMessageBatch to {queue}: {} of {} messages failed ({}); the others were sent",
                        out.failed.len(),
                        messages.len(),
                        describe(&out.failed)
                    )));
                }
                tracing::warn!(queue, failed = %describe(&out.failed), "SendMessageBatch entries failed; retrying them");
                pending = out.failed.iter().filter_map(|f| f.id.parse().ok()).collect();
            }
        }
        ids.into_iter()
            .enumerate()
            .map(|(i, id)| {
                id.ok_or_else(|| {
                    QueueError::Backend(anyhow::anyhow!(
                        "SendMessageBatch to {queue} returned no result for message #{i}"
                    ))
                })
            })
            .collect()
    }

    /// Visible plus in-flight messages (`ApproximateNumberOfMessages` + `…NotVisible`).
    pub async fn depth(&self, queue: &str) -> Result<u64, QueueError> {
        let url = self.url(queue).await?;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| backend(&format!("GetQueueAttributes of {queue}"), e))?;
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| attributes.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        Ok(count(&QueueAttributeName::ApproximateNumberOfMessages)
            + count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Moves the dead-letter queue's messages back: receive up to 10, send them to the queue,
    /// then delete them from the DLQ; until the DLQ answers empty. A crash between send and
    /// delete redelivers a message twice (consumers are idempotent); none is lost.
    pub async fn redrive(&self, def: &super::QueueDef) -> Result<u64, QueueError> {
        let dlq = def.dlq_name();
        let dlq_url = self.url(&dlq).await?;
        let mut moved = 0u64;
        for _ in 0..MAX_REDRIVE_ROUNDS {
            let out = self
                .client
                .receive_message()
                .queue_url(&dlq_url)
                .max_number_of_messages(MAX_BATCH_ENTRIES as i32)
                .visibility_timeout(60)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| backend(&format!("ReceiveMessage from {dlq}"), e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            let outgoing = messages.iter().map(|m| OutMessage::new(m.body.clone().unwrap_or_default())).collect();
            self.send_batch(def.name, outgoing).await?;
            let entries = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle.clone())
                        .build()
                        .ok()
                })
                .collect();
            self.client
                .delete_message_batch()
                .queue_url(&dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| backend(&format!("DeleteMessageBatch from {dlq}"), e))?;
            moved += messages.len() as u64;
        }
        Ok(moved)
    }

    /// The queue's URL: configured, or looked up by name once.
    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.urls.read().await.get(queue) {
            return Ok(url.clone());
        }
        let out = match self.client.get_queue_url().queue_name(queue).send().await {
            Ok(out) => out,
            Err(e) if queue_does_not_exist(&e) => return Err(QueueError::UnknownQueue(queue.to_string())),
            Err(e) => return Err(backend(&format!("GetQueueUrl {queue}"), e)),
        };
        let url =
            out.queue_url.ok_or_else(|| QueueError::Backend(anyhow::anyhow!("GetQueueUrl {queue} returned no URL")))?;
        tracing::debug!(queue, url, "queue URL looked up");
        self.urls.write().await.insert(queue.to_string(), url.clone());
        Ok(url)
    }
}

fn queue_does_not_exist<R>(e: &SdkError<aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError, R>) -> bool {
    e.as_service_error().is_some_and(|s| {
        // Older endpoints (and emulators) speaking the query protocol report the legacy code.
        s.is_queue_does_not_exist() || s.code() == Some("AWS.SimpleQueueService.NonExistentQueue")
    })
}

/// Index ranges of `messages` that fit one SendMessageBatch call.
fn chunks(messages: &[OutMessage]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message.body.len();
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    ranges.push(start..messages.len());
    ranges
}

fn describe(failed: &[BatchResultErrorEntry]) -> String {
    failed
        .iter()
        .map(|f| format!("#{} {}: {}", f.id, f.code, f.message.as_deref().unwrap_or("no message")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn backend<E, R>(what: &str, e: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    QueueError::Backend(anyhow::Error::new(e).context(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages() {
        let messages = vec![OutMessage::new("x"); 25];
        assert_eq!(chunks(&messages), vec![0..10, 10..20, 20..25]);
    }

    #[test]
    fn batches_stay_under_the_payload_limit() {
        let big = OutMessage::new("x".repeat(100 * 1024));
        let messages = vec![big.clone(), big.clone(), big.clone(), OutMessage::new("small")];
        assert_eq!(chunks(&messages), vec![0..2, 2..4]);
    }

    #[test]
    fn an_oversized_message_goes_alone() {
        let messages = vec![OutMessage::new("a"), OutMessage::new("x".repeat(300 * 1024)), OutMessage::new("b")];
        assert_eq!(chunks(&messages), vec![0..1, 1..2, 2..3]);
    }
}
