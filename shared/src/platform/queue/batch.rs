//! Per-message handling of an SQS event with partial batch failures.
//!
//! Every queue consumer goes through [`for_each_message`]: it parses each body,
//! runs the handler inside a span carrying the message id, and reports the
//! messages that failed so that only they are delivered again (and, after
//! `max_receive_count` receives, dead-lettered), never the whole batch.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use futures::future::join_all;
use serde::de::DeserializeOwned;
use tracing::Instrument;

/// What a handler knows about the message besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub message_id: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// When the message was sent, in milliseconds since the Unix epoch.
    pub sent_at_millis: Option<i64>,
    /// The ARN of the queue it came from.
    pub queue_arn: Option<String>,
}

impl MessageMeta {
    fn of(record: &SqsMessage) -> Self {
        let attribute = |name: &str| record.attributes.get(name).cloned();
        MessageMeta {
            message_id: record.message_id.clone().unwrap_or_default(),
            receive_count: attribute("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
            group_id: attribute("MessageGroupId"),
            dedup_id: attribute("MessageDeduplicationId"),
            sent_at_millis: attribute("SentTimestamp").and_then(|t| t.parse().ok()),
            queue_arn: record.event_source_arn.clone(),
        }
    }
}

/// Why a handler did not process a message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Worth another try (a dependency was down, a conflict): the message is reported as failed,
    /// delivered again after the visibility timeout and dead-lettered after `max_receive_count`.
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// No retry can succeed (what it refers to is gone): logged as an error and acknowledged,
    /// so that it neither comes back nor holds up its FIFO group.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl MessageError {
    pub fn retry(e: impl Into<anyhow::Error>) -> Self {
        MessageError::Retry(e.into())
    }

    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        MessageError::Permanent(e.into())
    }
}

/// `?` on an `anyhow::Result` retries.
impl From<anyhow::Error> for MessageError {
    fn from(e: anyhow::Error) -> Self {
        MessageError::Retry(e)
    }
}

/// Parses each message's JSON body as `T` and hands it to `handle`, reporting the failures.
///
/// Messages are handled concurrently, unless they carry a `MessageGroupId` (a FIFO queue): then
/// each group's messages are handled one after the other in order, and after a failure the rest
/// of that group is reported as failed unhandled, so that it is redelivered behind the failed one.
/// A body that does not parse, or a handler that panics, fails that message alone.
pub async fn for_each_message<T, F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    T: DeserializeOwned,
    F: Fn(T, MessageMeta) -> Fut,
    Fut: Future<Output = Result<(), MessageError>>,
{
    let records = event.records;
    let ordered = records.iter().any(|r| r.attributes.contains_key("MessageGroupId"));
    let failed: Vec<String> = if ordered {
        let mut groups: Vec<Vec<SqsMessage>> = Vec::new();
        let mut group_index: HashMap<String, usize> = HashMap::new();
        for record in records {
            match record.attributes.get("MessageGroupId").cloned() {
                Some(group) => {
                    let index = *group_index.entry(group).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[index].push(record);
                }
                None => groups.push(vec![record]),
            }
        }
        let handle = &handle;
        let per_group = join_all(groups.into_iter().map(|group| async move {
            let mut failed = Vec::new();
            for record in group {
                let id = record.message_id.clone().unwrap_or_default();
                if !failed.is_empty() {
                    tracing::info!(message_id = id, "not handled: an earlier message of its group failed");
                    failed.push(id);
                } else if !handle_one(handle, record).await {
                    failed.push(id);
                }
            }
            failed
        }))
        .await;
        per_group.into_iter().flatten().collect()
    } else {
        let outcomes = join_all(records.into_iter().map(|record| {
            let id = record.message_id.clone().unwrap_or_default();
            handle_one(&handle, record).map(move |ok| (!ok).then_some(id))
        }))
        .await;
        outcomes.into_iter().flatten().collect()
    };
    let mut response = SqsBatchResponse::default();
    response.set_failures(failed);
    response
}

/// Handles one message; false when it is to be reported as failed.
async fn handle_one<T, F, Fut>(handle: &F, record: SqsMessage) -> bool
where
    T: DeserializeOwned,
    F: Fn(T, MessageMeta) -> Fut,
    Fut: Future<Output = Result<(), MessageError>>,
{
    let meta = MessageMeta::of(&record);
    let span = tracing::info_span!("message", message_id = %meta.message_id, receive_count = meta.receive_count);
    async move {
        if meta.message_id.is_empty() {
            // Reported with an empty identifier, which fails the whole batch: nothing is lost.
            tracing::error!("message without a message id");
            return false;
        }
        let body = record.body.as_deref().unwrap_or_default();
        let value: T = match parse(body) {
            Ok(value) => value,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    body_bytes = body.len(),
                    "message body does not parse; it will be retried and then dead-lettered"
                );
                return false;
            }
        };
        match AssertUnwindSafe(async { handle(value, meta).await }).catch_unwind().await {
            Ok(Ok(())) => true,
            Ok(Err(MessageError::Retry(e))) => {
                tracing::warn!(error = %format!("{e:#}"), "message failed; it will be retried");
                false
            }
            Ok(Err(MessageError::Permanent(e))) => {
                tracing::error!(error = %format!("{e:#}"), "message failed permanently; acknowledged without retry");
                true
            }
            Err(_) => {
                tracing::error!("message handler panicked; the message will be retried");
                false
            }
        }
    }
    .instrument(span)
    .await
}

/// Parses a body, naming the path to the offending field when it does not fit `T`.
fn parse<T: DeserializeOwned>(body: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Job {
        n: u32,
    }

    fn record(id: &str, body: &str, group: Option<&str>) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(body.into());
        message.attributes.insert("ApproximateReceiveCount".into(), "2".into());
        if let Some(group) = group {
            message.attributes.insert("MessageGroupId".into(), group.into());
        }
        message
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn failures(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn a_batch_that_succeeds_reports_no_failures() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let response = for_each_message(event(vec![record("a", r#"{"n":1}"#, None)]), |job: Job, meta| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((job.n, meta.message_id, meta.receive_count));
                Ok(())
            }
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*seen.lock().unwrap(), vec![(1, "a".to_string(), 2)]);
    }

    #[tokio::test]
    async fn only_the_failing_message_is_reported() {
        let records = vec![record("a", r#"{"n":1}"#, None), record("b", r#"{"n":2}"#, None)];
        let response = for_each_message(event(records), |job: Job, _| async move {
            if job.n == 2 { Err(anyhow::anyhow!("boom").into()) } else { Ok(()) }
        })
        .await;
        assert_eq!(failures(&response), ["b"]);
    }

    #[tokio::test]
    async fn a_body_that_does_not_parse_fails_alone() {
        let records = vec![record("a", "not json", None), record("b", r#"{"n":2}"#, None), record("c", "{}", None)];
        let response = for_each_message(event(records), |_: Job, _| async { Ok(()) }).await;
        assert_eq!(failures(&response), ["a", "c"]);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_acknowledged() {
        let records = vec![record("a", r#"{"n":1}"#, None)];
        let response = for_each_message(event(records), |_: Job, _| async {
            Err(MessageError::permanent(anyhow::anyhow!("gone")))
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_only_its_message() {
        let records = vec![record("a", r#"{"n":1}"#, None), record("b", r#"{"n":2}"#, None)];
        let response = for_each_message(event(records), |job: Job, _| async move {
            assert_ne!(job.n, 1, "deliberate panic");
            Ok(())
        })
        .await;
        assert_eq!(failures(&response), ["a"]);
    }

    #[tokio::test]
    async fn messages_without_a_group_are_handled_concurrently() {
        // Each handler waits for all three: handled one after the other, they would never finish.
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let records = (1..=3).map(|n| record(&format!("m{n}"), &format!(r#"{{"n":{n}}}"#), None)).collect();
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            for_each_message(event(records), |_: Job, _| {
                let barrier = barrier.clone();
                async move {
                    barrier.wait().await;
                    Ok(())
                }
            }),
        )
        .await
        .expect("handled concurrently");
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn after_a_failure_the_rest_of_its_group_fails_unhandled_and_other_groups_go_on() {
        let records = vec![
            record("a1", r#"{"n":1}"#, Some("a")),
            record("b1", r#"{"n":10}"#, Some("b")),
            record("a2", r#"{"n":2}"#, Some("a")),
            record("a3", r#"{"n":3}"#, Some("a")),
            record("b2", r#"{"n":11}"#, Some("b")),
        ];
        let seen = Arc::new(Mutex::new(Vec::new()));
        let response = for_each_message(event(records), |job: Job, meta| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(job.n);
                assert!(meta.group_id.is_some());
                if job.n == 2 { Err(MessageError::retry(anyhow::anyhow!("conflict"))) } else { Ok(()) }
            }
        })
        .await;
        assert_eq!(failures(&response), ["a2", "a3"]);
        let seen = seen.lock().unwrap();
        assert!(!seen.contains(&3), "a3 must not be handled after a2 failed");
        let order = |a: u32, b: u32| seen.iter().position(|&n| n == a) < seen.iter().position(|&n| n == b);
        assert!(order(1, 2) && order(10, 11), "each group in order: {seen:?}");
    }

    #[tokio::test]
    async fn a_message_without_id_fails_the_whole_batch() {
        let mut nameless = record("x", r#"{"n":1}"#, None);
        nameless.message_id = None;
        let response = for_each_message(event(vec![nameless]), |_: Job, _| async { Ok(()) }).await;
        assert_eq!(failures(&response), [""]);
    }
}
