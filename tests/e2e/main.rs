//! End-to-end tests: start the local stack and talk to it with real clients.
//!
//! `server` tests run the `premises` binary as a user would (`cargo run`);
//! `stack` tests start [`premises_local::Stack`] in-process with a test
//! catalog that exercises every trigger kind. Both run on the embedded store
//! and, when `make test` provides DynamoDB Local, again on DynamoDB.

mod api_docs;
mod appliances;
mod bank;
mod helpers;
mod identity;
mod identity_attacks;
mod locks;
mod long_ids;
mod mqtt_policy;
mod notifications;
mod phone_and_rfid;
mod privileges;
mod server;
mod stack;
