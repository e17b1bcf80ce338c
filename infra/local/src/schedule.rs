//! Scheduled jobs in the local stack: the catalog's EventBridge expressions
//! run on their period, and on demand (`premises run-job <name>`).

use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::json;
use shared::platform::clock::{Clock, UtcDateTime};

/// The period of an EventBridge `rate(…)` expression.
///
/// `cron(…)` expressions are accepted by EventBridge but not run on a timer
/// locally; they can still be run with `premises run-job`.
pub fn period(expression: &str) -> Result<Option<Duration>, String> {
    if expression.starts_with("cron(") && expression.ends_with(')') {
        return Ok(None);
    }
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("{expression:?} is neither rate(…) nor cron(…)"))?;
    let (value, unit) =
        inner.trim().split_once(' ').ok_or_else(|| format!("{expression:?}: expected rate(<n> <unit>)"))?;
    let n: u64 = value.parse().map_err(|_| format!("{expression:?}: {value:?} is not a positive whole number"))?;
    let seconds = match (n, unit.trim()) {
        (0, _) => return Err(format!("{expression:?}: the rate must be positive")),
        (1, "minute") | (2.., "minutes") => 60,
        (1, "hour") | (2.., "hours") => 3600,
        (1, "day") | (2.., "days") => 86_400,
        (_, unit) => return Err(format!("{expression:?}: unit {unit:?} does not agree with {n} (EventBridge rules)")),
    };
    Ok(Some(Duration::from_secs(n * seconds)))
}

/// The event EventBridge sends for a scheduled rule.
pub fn scheduled_event(function: &str, clock: &Clock) -> EventBridgeEvent {
    let now = clock.now_secs();
    let event = json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": UtcDateTime::from_epoch_secs(now).rfc3339(),
        "region": "local",
        "resources": [format!("arn:aws:events:local:000000000000:rule/{function}")],
        "detail": {},
    });
    // The shape is fixed above; a failure here is a programming error caught by the tests.
    serde_json::from_value(event).unwrap_or_else(|e| unreachable!("scheduled event shape: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_eventbridge_grammar() {
        assert_eq!(period("rate(10 minutes)"), Ok(Some(Duration::from_secs(600))));
        assert_eq!(period("rate(1 hour)"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(period("rate(2 days)"), Ok(Some(Duration::from_secs(172_800))));
        assert_eq!(period("cron(0 3 * * ? *)"), Ok(None));
        assert!(period("rate(1 minutes)").is_err());
        assert!(period("rate(0 minutes)").is_err());
        assert!(period("every 5 minutes").is_err());
    }

    #[test]
    fn the_scheduled_event_parses_as_eventbridge_sends_it() {
        let e = scheduled_event("bank-import", &Clock::manual(1_795_318_860_000));
        assert_eq!(e.detail_type, "Scheduled Event");
        assert_eq!(e.source, "aws.events");
        assert_eq!(e.time.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-22T03:41:00+00:00"));
    }
}
