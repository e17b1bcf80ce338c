//! SQS batch handling (stub).
