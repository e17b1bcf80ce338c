//! Local devices: the embedded MQTT broker for messages, the store for
//! shadows and device credentials.
//!
//! Shadows follow the AWS IoT Device Shadow service for the classic (unnamed)
//! shadow: updates merge into `desired`/`reported` (a `null` deletes a key, a
//! `null` section deletes the section, an emptied section disappears), every
//! accepted update increments `version` and is announced on
//! `$aws/things/<thing>/shadow/update/accepted`, and an update that touches
//! `desired` while it differs from `reported` is followed by the difference on
//! `.../update/delta`. Devices update their shadow by publishing to
//! `$aws/things/<thing>/shadow/update` and read it with `.../shadow/get`; the
//! local stack subscribes to [`DEVICE_SHADOW_FILTERS`] and hands every message
//! to [`LocalDevices::handle_device_shadow_message`]. Not implemented:
//! `.../update/documents`, `.../delete` over MQTT, named shadows, per-field
//! metadata timestamps (every field carries the last update's).
//!
//! Credentials are a username (the thing name) and a random password, of
//! which only the SHA-256 hash is stored; the broker checks connecting devices
//! against it ([`verify_device_password`]).

use std::fmt::Write as _;

use bytes::Bytes;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::broker::{BrokerHandle, constant_time_eq};
use super::{Credentials, DevicesError, Shadow, validate_publish, validate_thing_name};
use crate::platform::store::{self, Cond, Item, Key, Store, StoreError};

/// The topics on which devices make shadow requests (update, get).
pub const DEVICE_SHADOW_FILTERS: [&str; 2] = ["$aws/things/+/shadow/update", "$aws/things/+/shadow/get"];

/// Attempts of a shadow update that races with others before giving up.
const MAX_SHADOW_ATTEMPTS: usize = 10;

const ATTR_PASSWORD_HASH: &str = "password_sha256";
const ATTR_CREATED_AT: &str = "created_at";
const ATTR_DESIRED: &str = "desired";
const ATTR_REPORTED: &str = "reported";
const ATTR_VERSION: &str = "version";
const ATTR_UPDATED_AT: &str = "updated_at";

#[derive(Clone)]
pub struct LocalDevices {
    broker: BrokerHandle,
    store: Store,
}

/// The store items of a thing.
#[derive(Clone, Copy)]
enum ThingItem {
    /// The shadow: `desired` and `reported` as JSON text, `version`, `updated_at`.
    Shadow,
    /// The MQTT password hash.
    Credentials,
}

/// Every key of this module is built here.
fn thing_key(thing: &str, item: ThingItem) -> Key {
    let sk = match item {
        ThingItem::Shadow => "SHADOW",
        ThingItem::Credentials => "CREDENTIALS",
    };
    Key::new(format!("THING#{thing}"), sk)
}

impl LocalDevices {
    pub fn new(broker: BrokerHandle, store: Store) -> Self {
        LocalDevices { broker, store }
    }

    /// The broker this gateway publishes on.
    pub fn broker(&self) -> &BrokerHandle {
        &self.broker
    }

    /// Publishes with QoS 1; returns once the broker acknowledged.
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), DevicesError> {
        validate_publish(topic, payload)?;
        self.broker.publish(topic, Bytes::copy_from_slice(payload)).await.map_err(DevicesError::Backend)
    }

    /// Merges `desired` (an object, or `null` to clear) into the shadow's
    /// desired state, then announces the update and the resulting delta.
    pub async fn update_desired(&self, thing: &str, desired: Value) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        if !(desired.is_object() || desired.is_null()) {
            return Err(DevicesError::Invalid("the desired state must be a JSON object or null".to_string()));
        }
        let request = ShadowRequest { desired: Some(desired), ..ShadowRequest::default() };
        match self.write_shadow(thing, &request).await {
            Ok(stored) => self.announce(thing, &request, &stored).await,
            Err(WriteError::VersionConflict) => {
                Err(DevicesError::Backend(anyhow::anyhow!("unexpected version conflict on the shadow of {thing}")))
            }
            Err(WriteError::Backend(e)) => Err(e),
        }
    }

    /// Applies an update a device published on `$aws/things/<thing>/shadow/update`
    /// (`{"state": {"reported": {...}, "desired": {...}}, "version"?: n, "clientToken"?: "..."}`),
    /// answering on `.../update/accepted` (and `.../update/delta` when the
    /// update touched `desired`) as AWS IoT does. A malformed update or a
    /// stale `version` is answered on `.../update/rejected` (codes 400 and
    /// 409, as AWS) and returned as [`DevicesError::Invalid`].
    pub async fn apply_device_shadow_update(&self, thing: &str, payload: &[u8]) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        let request = match ShadowRequest::parse(payload) {
            Ok(request) => request,
            Err(message) => {
                self.reject(thing, 400, &message, client_token_of(payload)).await?;
                return Err(DevicesError::Invalid(format!("shadow update of {thing}: {message}")));
            }
        };
        match self.write_shadow(thing, &request).await {
            Ok(stored) => self.announce(thing, &request, &stored).await,
            Err(WriteError::VersionConflict) => {
                self.reject(thing, 409, "Version conflict", request.client_token.clone()).await?;
                Err(DevicesError::Invalid(format!("shadow update of {thing}: version conflict")))
            }
            Err(WriteError::Backend(e)) => {
                // Best effort: the device learns that the update failed.
                let _ = self.reject(thing, 500, "Internal service failure", request.client_token.clone()).await;
                Err(e)
            }
        }
    }

    /// Handles a device's message on one of [`DEVICE_SHADOW_FILTERS`]: an
    /// update ([`Self::apply_device_shadow_update`]) or a get
    /// ([`Self::answer_device_shadow_get`]). `Ok(false)` when the topic is
    /// not a shadow request.
    pub async fn handle_device_shadow_message(&self, topic: &str, payload: &[u8]) -> Result<bool, DevicesError> {
        let request = topic.strip_prefix("$aws/things/").and_then(|rest| rest.split_once("/shadow/"));
        match request {
            Some((thing, "update")) => self.apply_device_shadow_update(thing, payload).await.map(|()| true),
            Some((thing, "get")) => self.answer_device_shadow_get(thing, payload).await.map(|()| true),
            _ => Ok(false),
        }
    }

    /// Answers a device's `$aws/things/<thing>/shadow/get` on `.../get/accepted`
    /// with the whole document (`state.desired`, `state.reported`, `state.delta`),
    /// or on `.../get/rejected` with code 404 when the thing has no shadow.
    pub async fn answer_device_shadow_get(&self, thing: &str, payload: &[u8]) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        let client_token = client_token_of(payload);
        let Some(stored) = self.stored_shadow(thing).await? else {
            let message = format!("No shadow exists with name: '{thing}'");
            let document = json!({"code": 404, "message": message, "timestamp": self.store.clock().now_secs()});
            return self.publish_document(thing, "get/rejected", document, &client_token).await;
        };
        let ts = stored.timestamp;
        let mut state = Map::new();
        let mut metadata = Map::new();
        for (name, section) in [(ATTR_DESIRED, &stored.desired), (ATTR_REPORTED, &stored.reported)] {
            if let Some(section) = section {
                let section = Value::Object(section.clone());
                metadata.insert(name.to_string(), metadata_of(&section, ts));
                state.insert(name.to_string(), section);
            }
        }
        if let Some(desired) = &stored.desired {
            let delta = delta(desired, stored.reported.as_ref());
            if !delta.is_empty() {
                state.insert("delta".to_string(), Value::Object(delta));
            }
        }
        let document = json!({"state": state, "metadata": metadata, "version": stored.version, "timestamp": ts});
        self.publish_document(thing, "get/accepted", document, &client_token).await
    }

    pub async fn shadow(&self, thing: &str) -> Result<Option<Shadow>, DevicesError> {
        validate_thing_name(thing)?;
        let Some(stored) = self.stored_shadow(thing).await? else { return Ok(None) };
        let section = |s: Option<Map<String, Value>>| s.map_or(Value::Null, Value::Object);
        Ok(Some(Shadow {
            reported: section(stored.reported),
            desired: section(stored.desired),
            version: stored.version,
        }))
    }

    async fn stored_shadow(&self, thing: &str) -> Result<Option<StoredShadow>, DevicesError> {
        let item = self.store.get(&thing_key(thing, ThingItem::Shadow)).await.map_err(store_error)?;
        item.map(|item| StoredShadow::from_item(&item)).transpose()
    }

    /// Issues a fresh password for the thing; an earlier one stops working
    /// for new connections (provisioning again is how keys are rotated).
    pub async fn provision(&self, thing: &str) -> Result<Credentials, DevicesError> {
        validate_thing_name(thing)?;
        let password: String = rand::rng().sample_iter(Alphanumeric).take(32).map(char::from).collect();
        let mut item = thing_key(thing, ThingItem::Credentials).to_item();
        item.insert(ATTR_PASSWORD_HASH.to_string(), store::s(password_hash(&password)));
        item.insert(ATTR_CREATED_AT.to_string(), store::n(self.store.clock().now_secs()));
        self.store.put(item, None).await.map_err(store_error)?;
        Ok(Credentials {
            thing_name: thing.to_string(),
            client_id: thing.to_string(),
            endpoint: self.broker.endpoint(),
            certificate_pem: None,
            private_key: None,
            certificate_id: None,
            username: Some(thing.to_string()),
            password: Some(password),
        })
    }

    /// Removes the thing's credentials and shadow; unknown things are fine.
    /// Connections already open stay open (as on AWS until they reconnect).
    pub async fn deprovision(&self, thing: &str) -> Result<(), DevicesError> {
        validate_thing_name(thing)?;
        for item in [ThingItem::Credentials, ThingItem::Shadow] {
            self.store.delete(&thing_key(thing, item), None).await.map_err(store_error)?;
        }
        Ok(())
    }

    /// Read-merge-write with a condition on the version read, retried when
    /// another update got in between.
    async fn write_shadow(&self, thing: &str, request: &ShadowRequest) -> Result<StoredShadow, WriteError> {
        let key = thing_key(thing, ThingItem::Shadow);
        for _ in 0..MAX_SHADOW_ATTEMPTS {
            let current = self.store.get(&key).await.map_err(store_error)?;
            let (mut shadow, cond) = match current {
                Some(item) => {
                    let shadow = StoredShadow::from_item(&item)?;
                    let cond = Cond::eq(ATTR_VERSION, store::n(version_number(shadow.version)));
                    (shadow, cond)
                }
                None => (StoredShadow::default(), Cond::item_absent()),
            };
            if request.version.is_some_and(|expected| expected != shadow.version) {
                return Err(WriteError::VersionConflict);
            }
            if let Some(desired) = &request.desired {
                shadow.desired = merge_section(shadow.desired.take(), desired);
            }
            if let Some(reported) = &request.reported {
                shadow.reported = merge_section(shadow.reported.take(), reported);
            }
            shadow.version += 1;
            shadow.timestamp = self.store.clock().now_secs();
            match self.store.put(shadow.to_item(&key)?, Some(cond)).await {
                Ok(()) => return Ok(shadow),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(store_error(e).into()),
            }
        }
        Err(DevicesError::Backend(anyhow::anyhow!(
            "the shadow of {thing} kept changing; gave up after {MAX_SHADOW_ATTEMPTS} attempts"
        ))
        .into())
    }

    /// Publishes `update/accepted`, then `update/delta` when the update touched
    /// `desired` and it differs from `reported`.
    async fn announce(&self, thing: &str, request: &ShadowRequest, stored: &StoredShadow) -> Result<(), DevicesError> {
        let ts = stored.timestamp;
        let mut state = Map::new();
        let mut metadata = Map::new();
        for (name, section) in [(ATTR_DESIRED, &request.desired), (ATTR_REPORTED, &request.reported)] {
            if let Some(section) = section {
                state.insert(name.to_string(), section.clone());
                metadata.insert(name.to_string(), metadata_of(section, ts));
            }
        }
        let accepted = json!({"state": state, "metadata": metadata, "version": stored.version, "timestamp": ts});
        self.publish_document(thing, "update/accepted", accepted, &request.client_token).await?;

        if request.desired.is_some()
            && let Some(desired) = &stored.desired
        {
            let delta = delta(desired, stored.reported.as_ref());
            if !delta.is_empty() {
                let metadata = metadata_of(&Value::Object(delta.clone()), ts);
                let document =
                    json!({"state": delta, "metadata": metadata, "version": stored.version, "timestamp": ts});
                self.publish_document(thing, "update/delta", document, &request.client_token).await?;
            }
        }
        Ok(())
    }

    async fn reject(
        &self,
        thing: &str,
        code: u16,
        message: &str,
        client_token: Option<String>,
    ) -> Result<(), DevicesError> {
        let document = json!({"code": code, "message": message, "timestamp": self.store.clock().now_secs()});
        self.publish_document(thing, "update/rejected", document, &client_token).await
    }

    async fn publish_document(
        &self,
        thing: &str,
        suffix: &str,
        mut document: Value,
        client_token: &Option<String>,
    ) -> Result<(), DevicesError> {
        if let (Some(token), Value::Object(map)) = (client_token, &mut document) {
            map.insert("clientToken".to_string(), Value::String(token.clone()));
        }
        let topic = format!("$aws/things/{thing}/shadow/{suffix}");
        self.publish(&topic, document.to_string().as_bytes()).await
    }
}

/// Whether `password` is the current password of `thing`'s credentials.
/// Unknown and malformed thing names are simply not valid.
pub async fn verify_device_password(store: &Store, thing: &str, password: &str) -> Result<bool, StoreError> {
    if validate_thing_name(thing).is_err() {
        return Ok(false);
    }
    let presented = password_hash(password);
    let Some(item) = store.get(&thing_key(thing, ThingItem::Credentials)).await? else {
        return Ok(false);
    };
    Ok(match item.get(ATTR_PASSWORD_HASH) {
        Some(store::Value::S(stored)) => constant_time_eq(presented.as_bytes(), stored.as_bytes()),
        _ => false,
    })
}

/// Whether `thing` has device credentials (a malformed name never has).
pub async fn is_provisioned(store: &Store, thing: &str) -> Result<bool, StoreError> {
    if validate_thing_name(thing).is_err() {
        return Ok(false);
    }
    Ok(store.get(&thing_key(thing, ThingItem::Credentials)).await?.is_some())
}

/// Hex SHA-256. Passwords are 32 random alphanumerics (~190 bits), so a
/// fast unsalted hash is enough: there is nothing to brute-force.
fn password_hash(password: &str) -> String {
    let digest = Sha256::digest(password.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

fn store_error(e: StoreError) -> DevicesError {
    DevicesError::Backend(anyhow::Error::new(e).context("device store"))
}

fn version_number(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

enum WriteError {
    VersionConflict,
    Backend(DevicesError),
}

impl From<DevicesError> for WriteError {
    fn from(e: DevicesError) -> Self {
        WriteError::Backend(e)
    }
}

/// A shadow update: each section is an object to merge or `null` to delete.
#[derive(Debug, Default)]
struct ShadowRequest {
    desired: Option<Value>,
    reported: Option<Value>,
    /// The version the update applies to, when the device sent one.
    version: Option<u64>,
    client_token: Option<String>,
}

impl ShadowRequest {
    /// Parses a device's update document; the error is the message AWS would send.
    fn parse(payload: &[u8]) -> Result<ShadowRequest, String> {
        let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(payload) else {
            return Err("Invalid JSON".to_string());
        };
        let client_token = match document.remove("clientToken") {
            None => None,
            Some(Value::String(token)) => Some(token),
            Some(_) => return Err("Invalid clientToken".to_string()),
        };
        let version = match document.remove("version") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or("Invalid version")?),
        };
        let mut state = match document.remove("state") {
            Some(Value::Object(state)) => state,
            Some(_) => return Err("State node must be an object".to_string()),
            None => return Err("Missing required node: state".to_string()),
        };
        let mut section = |name: &str| match state.remove(name) {
            Some(value @ (Value::Object(_) | Value::Null)) => Ok(Some(value)),
            Some(_) => Err(format!("{name} node must be an object")),
            None => Ok(None),
        };
        let desired = section(ATTR_DESIRED)?;
        let reported = section(ATTR_REPORTED)?;
        if desired.is_none() && reported.is_none() {
            return Err("State contains neither desired nor reported".to_string());
        }
        Ok(ShadowRequest { desired, reported, version, client_token })
    }
}

fn client_token_of(payload: &[u8]) -> Option<String> {
    let document: Value = serde_json::from_slice(payload).ok()?;
    document.get("clientToken")?.as_str().map(str::to_string)
}

/// A shadow as stored: sections absent when empty, as AWS shows them.
#[derive(Debug, Default)]
struct StoredShadow {
    desired: Option<Map<String, Value>>,
    reported: Option<Map<String, Value>>,
    version: u64,
    /// Epoch seconds of the last update.
    timestamp: i64,
}

impl StoredShadow {
    fn from_item(item: &Item) -> Result<StoredShadow, DevicesError> {
        let corrupt = |what: &str| DevicesError::Backend(anyhow::anyhow!("stored shadow has an invalid {what}"));
        let section = |name: &str| -> Result<Option<Map<String, Value>>, DevicesError> {
            match item.get(name) {
                None => Ok(None),
                Some(store::Value::S(text)) => match serde_json::from_str(text) {
                    Ok(Value::Object(map)) => Ok(Some(map)),
                    _ => Err(corrupt(name)),
                },
                Some(_) => Err(corrupt(name)),
            }
        };
        let number = |name: &str| match item.get(name) {
            Some(store::Value::N(n)) => n.parse::<i64>().map_err(|_| corrupt(name)),
            _ => Err(corrupt(name)),
        };
        Ok(StoredShadow {
            desired: section(ATTR_DESIRED)?,
            reported: section(ATTR_REPORTED)?,
            version: u64::try_from(number(ATTR_VERSION)?).map_err(|_| corrupt(ATTR_VERSION))?,
            timestamp: number(ATTR_UPDATED_AT)?,
        })
    }

    fn to_item(&self, key: &Key) -> Result<Item, DevicesError> {
        let mut item = key.to_item();
        for (name, section) in [(ATTR_DESIRED, &self.desired), (ATTR_REPORTED, &self.reported)] {
            if let Some(section) = section {
                let text = serde_json::to_string(section)
                    .map_err(|e| DevicesError::Backend(anyhow::Error::new(e).context("cannot encode a shadow")))?;
                item.insert(name.to_string(), store::s(text));
            }
        }
        item.insert(ATTR_VERSION.to_string(), store::n(version_number(self.version)));
        item.insert(ATTR_UPDATED_AT.to_string(), store::n(self.timestamp));
        Ok(item)
    }
}

/// Applies an update section: `null` deletes the section, an object merges.
fn merge_section(current: Option<Map<String, Value>>, update: &Value) -> Option<Map<String, Value>> {
    match update {
        Value::Object(patch) => {
            let mut merged = current.unwrap_or_default();
            merge_into(&mut merged, patch);
            (!merged.is_empty()).then_some(merged)
        }
        _ => None,
    }
}

/// JSON merge as shadows do it: nested objects merge, `null` removes, anything else replaces.
fn merge_into(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => match target.get_mut(key) {
                Some(Value::Object(existing)) => merge_into(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge_into(&mut fresh, inner);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

/// The desired attributes that differ from the reported ones (recursively for objects).
fn delta(desired: &Map<String, Value>, reported: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, want) in desired {
        match (want, reported.and_then(|r| r.get(key))) {
            (want, Some(have)) if want == have => {}
            (Value::Object(want), Some(Value::Object(have))) => {
                let inner = delta(want, Some(have));
                if !inner.is_empty() {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (want, _) => {
                out.insert(key.clone(), want.clone());
            }
        }
    }
    out
}

/// AWS's metadata: the document's shape with `{"timestamp": ts}` at the leaves.
fn metadata_of(value: &Value, ts: i64) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), metadata_of(v, ts))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| metadata_of(v, ts)).collect()),
        _ => json!({"timestamp": ts}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn merging_replaces_values_merges_objects_and_deletes_nulls() {
        let current = map(json!({"lock": "open", "led": {"color": "red", "on": true}, "gone": 1}));
        let merged = merge_section(
            Some(current),
            &json!({"lock": "closed", "led": {"on": null, "level": 3}, "gone": null, "new": {"a": null, "b": 1}}),
        );
        assert_eq!(merged, Some(map(json!({"lock": "closed", "led": {"color": "red", "level": 3}, "new": {"b": 1}}))));
    }

    #[test]
    fn a_null_section_or_an_emptied_one_disappears() {
        assert_eq!(merge_section(Some(map(json!({"a": 1}))), &Value::Null), None);
        assert_eq!(merge_section(Some(map(json!({"a": 1}))), &json!({"a": null})), None);
        assert_eq!(merge_section(None, &json!({"a": 1})), Some(map(json!({"a": 1}))));
    }

    #[test]
    fn the_delta_holds_the_desired_values_that_differ_from_reported() {
        let desired = map(json!({"lock": "closed", "led": {"color": "red", "on": true}, "same": 1, "list": [1, 2]}));
        let reported = map(json!({"lock": "open", "led": {"color": "red", "on": false}, "same": 1, "list": [1]}));
        assert_eq!(
            delta(&desired, Some(&reported)),
            map(json!({"lock": "closed", "led": {"on": true}, "list": [1, 2]}))
        );
        assert_eq!(delta(&desired, None), desired);
        assert!(delta(&desired, Some(&desired)).is_empty());
    }

    #[test]
    fn device_updates_parse_as_aws_documents() {
        let request =
            ShadowRequest::parse(br#"{"state":{"reported":{"a":1},"desired":null},"version":3,"clientToken":"t"}"#)
                .unwrap();
        assert_eq!(request.reported, Some(json!({"a": 1})));
        assert_eq!(request.desired, Some(Value::Null));
        assert_eq!(request.version, Some(3));
        assert_eq!(request.client_token.as_deref(), Some("t"));
        for bad in [
            &b"nope"[..],
            br#"[1]"#,
            br#"{"reported":{}}"#,
            br#"{"state":1}"#,
            br#"{"state":{}}"#,
            br#"{"state":{"reported":5}}"#,
            br#"{"state":{"reported":{}},"version":"x"}"#,
        ] {
            assert!(ShadowRequest::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(client_token_of(br#"{"clientToken":"abc","state":1}"#).as_deref(), Some("abc"));
    }

    #[test]
    fn metadata_mirrors_the_document_with_timestamps() {
        assert_eq!(
            metadata_of(&json!({"a": 1, "b": {"c": [true]}}), 7),
            json!({"a": {"timestamp": 7}, "b": {"c": [{"timestamp": 7}]}})
        );
    }

    #[test]
    fn thing_names_and_publishes_follow_aws_limits() {
        assert!(validate_thing_name("lock-1:a_b").is_ok());
        for bad in ["", "a/b", "a b", "$aws", "a+", &"x".repeat(129)] {
            assert!(validate_thing_name(bad).is_err(), "{bad}");
        }
        assert!(validate_publish("a/b", b"{}").is_ok());
        assert!(validate_publish("a/+", b"{}").is_err());
        assert!(validate_publish(&"t".repeat(257), b"{}").is_err());
        assert!(validate_publish("a", &vec![0; super::super::MAX_PAYLOAD_BYTES + 1]).is_err());
    }

    #[test]
    fn passwords_are_stored_as_hex_sha256() {
        assert_eq!(password_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn shadows_round_trip_through_store_items() {
        let key = thing_key("t", ThingItem::Shadow);
        let shadow = StoredShadow { desired: Some(map(json!({"a": 1}))), reported: None, version: 4, timestamp: 99 };
        let item = shadow.to_item(&key).unwrap();
        assert_eq!(Key::of(&item), Some(Key::new("THING#t", "SHADOW")));
        let back = StoredShadow::from_item(&item).unwrap();
        assert_eq!((back.desired, back.reported, back.version, back.timestamp), (shadow.desired, None, 4, 99));
    }
}
