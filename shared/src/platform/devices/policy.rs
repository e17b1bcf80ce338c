//! Who may do what on the local MQTT broker: the device policy `template.yaml`
//! attaches to every device certificate on AWS IoT, applied by the local
//! broker's proxy ([`super::broker`]) to each connection.
//!
//! The AWS policy (`DevicePolicy`), with `T` the thing the certificate is
//! attached to (`${iot:Connection.Thing.ThingName}`):
//! - `iot:Connect` on `client/T`: the client id must be the thing name;
//! - `iot:Publish` and `iot:Receive` on `topic/smartlock/T/*`,
//!   `topic/appliance/T/*` and `topic/$aws/things/T/shadow/*`;
//! - `iot:Subscribe` on `topicfilter/` of the same three.
//!
//! Policy resources are matched literally, `*` standing for any characters
//! (`/`, `+` and `#` included): a topic filter is allowed when it starts with
//! one of the three prefixes (`smartlock/T/#` and `smartlock/T/+` are,
//! `smartlock/+/command`, `#` and `$share/g/smartlock/T/#` are not). No
//! `iot:RetainPublish` is granted, so a device may not publish retained
//! messages. Lifecycle events (`$aws/events/...`) are published by the broker
//! only, never by a client.
//!
//! [`Principal`] is who a connection authenticated as: the service (its own
//! connections, full access), a device (the policy above), or an anonymous
//! client, which exists only with `PREMISES_MQTT_ALLOW_ANONYMOUS=true` (a dev
//! switch; refused in prod) and may do anything but publish broker-only topics.

/// Topics only the broker itself publishes (AWS IoT's lifecycle events).
pub const BROKER_ONLY_PREFIX: &str = "$aws/events/";

/// Who a connection to the local broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The service's own connections: every topic.
    Service,
    /// A client without credentials, accepted only when anonymous clients are allowed.
    Anonymous,
    /// A provisioned device, logged in as this thing.
    Device(String),
}

impl Principal {
    /// `iot:Publish` on `topic` (retained or not).
    pub fn may_publish(&self, topic: &str, retain: bool) -> bool {
        match self {
            Principal::Service => true,
            Principal::Anonymous => !is_broker_only(topic),
            // The policy grants no iot:RetainPublish.
            Principal::Device(thing) => !retain && within_thing(thing, topic),
        }
    }

    /// `iot:Receive` of a message published on `topic`.
    pub fn may_receive(&self, topic: &str) -> bool {
        match self {
            Principal::Service | Principal::Anonymous => true,
            Principal::Device(thing) => within_thing(thing, topic),
        }
    }

    /// `iot:Subscribe` to `filter` (as the client sent it, `$share/...` included).
    pub fn may_subscribe(&self, filter: &str) -> bool {
        match self {
            Principal::Service | Principal::Anonymous => true,
            Principal::Device(thing) => within_thing(thing, filter),
        }
    }

    /// Whether this principal is subject to the device policy.
    pub fn is_device(&self) -> bool {
        matches!(self, Principal::Device(_))
    }
}

/// Whether `topic` is one only the broker publishes.
pub fn is_broker_only(topic: &str) -> bool {
    topic.starts_with(BROKER_ONLY_PREFIX)
}

/// The policy's three resources for `thing`, `*` being "anything after the prefix".
fn within_thing(thing: &str, topic_or_filter: &str) -> bool {
    let under = |prefix: &str| {
        topic_or_filter
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(thing))
            .is_some_and(|rest| rest.starts_with('/'))
    };
    under("smartlock/") || under("appliance/") || {
        topic_or_filter
            .strip_prefix("$aws/things/")
            .and_then(|rest| rest.strip_prefix(thing))
            .is_some_and(|rest| rest.starts_with("/shadow/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(thing: &str) -> Principal {
        Principal::Device(thing.to_string())
    }

    #[test]
    fn a_device_publishes_and_receives_only_under_its_own_three_prefixes() {
        let a = device("A");
        for topic in ["smartlock/A/status", "smartlock/A/x/y", "appliance/A/request", "$aws/things/A/shadow/update"] {
            assert!(a.may_publish(topic, false), "{topic}");
            assert!(a.may_receive(topic), "{topic}");
        }
        for topic in [
            "smartlock/B/response",
            "smartlock/AB/status",
            "smartlock/A",
            "appliance/B/reply",
            "$aws/things/B/shadow/update",
            "$aws/things/A/jobs/notify",
            "$aws/events/presence/connected/A",
            "other/A/x",
        ] {
            assert!(!a.may_publish(topic, false), "{topic}");
            assert!(!a.may_receive(topic), "{topic}");
        }
    }

    #[test]
    fn a_device_may_not_publish_retained_messages() {
        assert!(!device("A").may_publish("smartlock/A/status", true));
    }

    #[test]
    fn a_device_subscribes_only_to_filters_within_its_own_prefixes() {
        let a = device("A");
        for filter in ["smartlock/A/#", "smartlock/A/+", "smartlock/A/command", "$aws/things/A/shadow/update/+"] {
            assert!(a.may_subscribe(filter), "{filter}");
        }
        for filter in [
            "#",
            "+/A/command",
            "smartlock/+/command",
            "smartlock/#",
            "smartlock/B/command",
            "smartlock/A",
            "$aws/things/+/shadow/update",
            "$aws/events/#",
            "$share/g/smartlock/A/#",
            "appliance/+/reply",
        ] {
            assert!(!a.may_subscribe(filter), "{filter}");
        }
    }

    #[test]
    fn anonymous_clients_do_anything_but_publish_lifecycle_events() {
        let anonymous = Principal::Anonymous;
        assert!(anonymous.may_subscribe("#") && anonymous.may_receive("smartlock/A/command"));
        assert!(anonymous.may_publish("smartlock/A/status", true));
        assert!(!anonymous.may_publish("$aws/events/presence/disconnected/A", false));
        assert!(Principal::Service.may_publish("$aws/events/presence/disconnected/A", false));
    }
}
