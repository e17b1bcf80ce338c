//! The local stack's MQTT broker: `rumqttd` behind a small MQTT-aware proxy.
//!
//! Why a proxy: rumqttd refuses subscriptions to filters starting with `$`
//! and never routes publishes on such topics, but AWS IoT devices live on
//! `$aws/things/<thing>/shadow/...`. The proxy is the only public listener. It
//! - speaks MQTT 3.1.1 and MQTT 5 on one port, as AWS IoT does, and relays
//!   each client to rumqttd's v4 or v5 listener on a loopback port;
//! - authenticates clients: devices with the username/password that
//!   [`LocalDevices::provision`](super::local::LocalDevices::provision) issued
//!   (checked against the store), the service's own clients with a per-process
//!   secret, and anonymous ones only when allowed (a dev switch); a refused
//!   client gets a CONNACK saying why;
//! - enforces the device policy of `template.yaml` on each device connection
//!   ([`super::policy`]), as AWS IoT does: a SUBSCRIBE to a filter outside the
//!   device's own topics gets a failure code in the SUBACK (0x80; MQTT 5:
//!   0x87 not authorized) and subscribes nothing, a PUBLISH (or a will) outside
//!   them, or retained, closes the connection, and messages on other topics are
//!   never delivered to it; nobody but the broker publishes `$aws/events/...`,
//!   and an anonymous client may not use a provisioned thing's client id;
//! - rewrites a leading `$` of topics and filters to `~$` towards rumqttd and
//!   back towards clients, and, as MQTT requires, delivers a `$` topic only to
//!   clients subscribed with a filter that itself starts with `$` (so `#` does
//!   not receive shadow traffic);
//! - like AWS IoT, closes a connection that publishes with QoS 2 and grants
//!   QoS 1 to QoS 2 subscriptions; it also closes a connection that uses the
//!   internal `~$` prefix itself.
//!
//! rumqttd's external auth handler accepts only the proxy's secret, so its
//! loopback ports are useless to anyone else.
//!
//! Stopping: [`BrokerHandle::shutdown`] closes the public port, every client
//! connection and the service's subscriptions. rumqttd itself has no stop: its
//! threads run until the process exits, which is what the local stack does
//! anyway. Dropping the handles does not stop the broker.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use rand::Rng;
use rand::distr::Alphanumeric;
use rumqttc::mqttbytes::{QoS, v4};
use rumqttc::v5::mqttbytes::{QoS as QoS5, v5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::local;
use super::policy::Principal;
use super::rules::{is_valid_filter, is_valid_topic, topic_matches};
use crate::platform::store::Store;

/// Largest MQTT packet a client may send or receive (AWS IoT allows 128 KiB
/// payloads; the headroom keeps the local stack from being the stricter one).
pub const MAX_PACKET_BYTES: usize = 256 * 1024;

/// Topic aliases an MQTT 5 client may set, as on AWS IoT (the proxy resolves them).
const MAX_TOPIC_ALIASES: u16 = 8;

/// rumqttd's limit: the proxy's topic rewriting adds a byte per topic.
const UPSTREAM_MAX_PACKET_BYTES: usize = MAX_PACKET_BYTES + 1024;

/// The username of the service's own connections; thing names cannot contain `$`.
const SERVICE_USERNAME: &str = "$premises-service";

/// The username the proxy presents to rumqttd.
const UPSTREAM_USERNAME: &str = "premises-proxy";

/// Client ids of the service's connections start with this.
const SERVICE_CLIENT_PREFIX: &str = "premises-service-";

/// What a topic starting with `$` becomes inside rumqttd.
const RESERVED_PREFIX: &str = "~$";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may connect.
#[derive(Clone)]
pub struct BrokerAuth {
    /// Where [`LocalDevices`](super::local::LocalDevices) keeps the device credentials.
    pub store: Store,
    /// Accept clients that send no username, with access to every topic
    /// (`PREMISES_MQTT_ALLOW_ANONYMOUS`, a dev switch; off by default).
    pub allow_anonymous: bool,
}

/// A message published on the broker, as a subscription receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub topic: String,
    pub payload: Bytes,
}

/// The running broker: its address, and how the service publishes and subscribes.
#[derive(Clone)]
pub struct BrokerHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    local_addr: SocketAddr,
    secret: String,
    /// The service's publishing connection; `None` until (re)connected. Taken
    /// out while a publish is under way, so a cancelled publish cannot leave a
    /// half-written packet on it.
    publisher: tokio::sync::Mutex<Option<ServiceConnection>>,
    shutdown: watch::Sender<bool>,
}

/// Starts rumqttd and the proxy on `addr` (port 0 picks a free port) and
/// returns once the broker accepts connections.
pub async fn start(addr: SocketAddr, auth: BrokerAuth) -> anyhow::Result<BrokerHandle> {
    let secret = random_secret();
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local_addr = listener.local_addr()?;

    // rumqttd needs concrete ports: take free ones and release them just before it binds them.
    let v4_probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let v5_probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let (v4_addr, v5_addr) = (v4_probe.local_addr()?, v5_probe.local_addr()?);
    let mut broker = rumqttd::Broker::new(rumqttd_config(v4_addr, v5_addr, &secret));
    drop((v4_probe, v5_probe));
    std::thread::Builder::new().name("mqtt-broker".to_string()).spawn(move || {
        // Blocks for the life of the broker; it only returns on a configuration error.
        if let Err(e) = broker.start() {
            tracing::error!(error = %e, "the MQTT broker stopped");
        }
    })?;

    let (shutdown, _) = watch::channel(false);
    let (presence, presence_events) = mpsc::unbounded_channel();
    let proxy = Arc::new(Proxy {
        auth,
        secret: secret.clone(),
        v4_addr,
        v5_addr,
        sessions: Mutex::new(std::collections::HashMap::new()),
        shutdown: shutdown.subscribe(),
        presence,
    });
    tokio::spawn(accept_loop(listener, proxy));

    let handle = BrokerHandle {
        inner: Arc::new(HandleInner { local_addr, secret, publisher: tokio::sync::Mutex::new(None), shutdown }),
    };
    // Ready when the service connects through the proxy to rumqttd.
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let publisher = loop {
        match ServiceConnection::connect(handle.connect_addr(), &handle.inner.secret).await {
            Ok(connection) => break connection,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                handle.shutdown();
                return Err(e.context(format!("the MQTT broker on {local_addr} did not become ready")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    *handle.inner.publisher.lock().await = Some(publisher);
    tokio::spawn(publish_presence(handle.clone(), presence_events));
    info!(addr = %local_addr, "MQTT broker listening (MQTT 3.1.1 and 5)");
    Ok(handle)
}

impl BrokerHandle {
    /// The address the broker listens on (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// `host:port` a client on this machine connects to (loopback when the
    /// broker listens on all interfaces).
    pub fn endpoint(&self) -> String {
        self.connect_addr().to_string()
    }

    fn connect_addr(&self) -> SocketAddr {
        let addr = self.inner.local_addr;
        match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
            IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
            _ => addr,
        }
    }

    /// Publishes with QoS 1 and returns once the broker acknowledged (PUBACK).
    pub async fn publish(&self, topic: &str, payload: Bytes) -> anyhow::Result<()> {
        if !is_valid_topic(topic) || topic.starts_with(RESERVED_PREFIX) {
            bail!("cannot publish to {topic:?}: not a valid topic name");
        }
        if payload.len() + topic.len() + 16 > MAX_PACKET_BYTES {
            bail!("cannot publish {} bytes: the broker accepts packets up to {MAX_PACKET_BYTES} bytes", payload.len());
        }
        let mut slot = self.inner.publisher.lock().await;
        // One retry on a fresh connection: the previous one may have been closed
        // (idle, or a cancelled publish). QoS 1 allows the duplicate this may cause.
        for attempt in 0..2 {
            let mut connection = match slot.take() {
                Some(connection) => connection,
                None => ServiceConnection::connect(self.connect_addr(), &self.inner.secret).await?,
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, connection.publish(topic, payload.clone())).await {
                Ok(Ok(())) => {
                    *slot = Some(connection);
                    return Ok(());
                }
                Ok(Err(e)) if attempt == 0 => debug!(error = %e, "MQTT publish failed; reconnecting"),
                Ok(Err(e)) => return Err(e.context(format!("MQTT publish to {topic:?} failed"))),
                Err(_) => bail!("MQTT publish to {topic:?} was not acknowledged within {REQUEST_TIMEOUT:?}"),
            }
        }
        bail!("MQTT publish to {topic:?} failed")
    }

    /// Subscribes (QoS 1) to `filters` and returns once the broker granted
    /// them: every message published on a matching topic by any client
    /// (service publishes included) arrives on the receiver. The subscription
    /// ends when the receiver is dropped or the broker shuts down; a lost
    /// connection is re-established and re-subscribed.
    pub async fn subscribe(&self, filters: &[String]) -> anyhow::Result<mpsc::Receiver<Incoming>> {
        if filters.is_empty() {
            bail!("subscribe needs at least one topic filter");
        }
        if let Some(bad) = filters.iter().find(|f| !is_valid_filter(f) || f.starts_with(RESERVED_PREFIX)) {
            bail!("cannot subscribe to {bad:?}: not a valid topic filter");
        }
        let addr = self.connect_addr();
        let mut options = rumqttc::MqttOptions::new(service_client_id(), addr.ip().to_string(), addr.port());
        options
            .set_credentials(SERVICE_USERNAME, self.inner.secret.clone())
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 64);
        let subscription: Vec<v4::SubscribeFilter> =
            filters.iter().map(|f| v4::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)).collect();
        client.subscribe_many(subscription.clone()).await?;

        let mut early = Vec::new();
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            loop {
                match eventloop.poll().await? {
                    rumqttc::Event::Incoming(v4::Packet::SubAck(ack)) => {
                        if ack.return_codes.iter().any(|c| matches!(c, v4::SubscribeReasonCode::Failure)) {
                            bail!("the broker refused the subscription to {filters:?}");
                        }
                        return Ok(());
                    }
                    rumqttc::Event::Incoming(v4::Packet::Publish(p)) => {
                        early.push(Incoming { topic: p.topic, payload: p.payload })
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow!("the broker did not confirm the subscription within {REQUEST_TIMEOUT:?}"))??;

        let (tx, rx) = mpsc::channel(1024);
        let shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            for message in early {
                if tx.send(message).await.is_err() {
                    return;
                }
            }
            let stopped = stopped(shutdown);
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tx.closed() => break,
                    event = eventloop.poll() => match event {
                        Ok(rumqttc::Event::Incoming(v4::Packet::Publish(p))) => {
                            if tx.send(Incoming { topic: p.topic, payload: p.payload }).await.is_err() {
                                break;
                            }
                        }
                        // A reconnection: the clean session forgot the subscription.
                        Ok(rumqttc::Event::Incoming(v4::Packet::ConnAck(_))) => {
                            if let Err(e) = client.subscribe_many(subscription.clone()).await {
                                warn!(error = %e, "cannot renew an MQTT subscription");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            warn!(error = %e, "an MQTT subscription lost its connection; reconnecting");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                }
            }
            let _ = client.try_disconnect();
        });
        Ok(rx)
    }

    /// Closes the public port, all client connections and subscriptions.
    /// rumqttd's threads stay until the process exits (it has no stop).
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

fn rumqttd_config(v4_addr: SocketAddr, v5_addr: SocketAddr, secret: &str) -> rumqttd::Config {
    let mut connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: UPSTREAM_MAX_PACKET_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let secret = secret.to_string();
    connections.set_auth_handler(move |_client_id: String, username: String, password: String| {
        let ok = username == UPSTREAM_USERNAME && constant_time_eq(password.as_bytes(), secret.as_bytes());
        async move { ok }
    });
    let server = |name: &str, listen| rumqttd::ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            // Each filter keeps up to 16 MiB of messages for subscribers that lag.
            max_segment_size: 1024 * 1024,
            max_segment_count: 16,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some([("v4".to_string(), server("premises-mqtt-v4", v4_addr))].into()),
        v5: Some([("v5".to_string(), server("premises-mqtt-v5", v5_addr))].into()),
        ..Default::default()
    }
}

/// AWS IoT treats a keep-alive of 0 as 1200 seconds; rumqttd refuses 0.
fn upstream_keep_alive(keep_alive: u16) -> u16 {
    if keep_alive == 0 { 1200 } else { keep_alive }
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_secret() -> String {
    rand::rng().sample_iter(Alphanumeric).take(40).map(char::from).collect()
}

fn service_client_id() -> String {
    format!("{SERVICE_CLIENT_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Resolves when the broker is shut down; never when every handle is merely dropped.
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    if shutdown.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

// ---------------------------------------------------------------------------
// Topic rewriting

/// A client's topic as rumqttd sees it; `None` when the client used the reserved prefix.
fn topic_to_broker(topic: &str) -> Option<String> {
    if topic.starts_with(RESERVED_PREFIX) {
        None
    } else if topic.starts_with('$') {
        Some(format!("~{topic}"))
    } else {
        Some(topic.to_string())
    }
}

/// A client's filter as rumqttd sees it (shared subscriptions keep their `$share/<group>/`).
fn filter_to_broker(filter: &str) -> Option<String> {
    match filter.strip_prefix("$share/") {
        Some(rest) => {
            let (group, inner) = rest.split_once('/')?;
            Some(format!("$share/{group}/{}", topic_to_broker(inner)?))
        }
        None => topic_to_broker(filter),
    }
}

/// The part of a (possibly shared) filter that selects topics.
fn filter_selector(filter: &str) -> &str {
    filter.strip_prefix("$share/").and_then(|rest| rest.split_once('/')).map_or(filter, |(_, inner)| inner)
}

fn topic_from_broker(topic: &str) -> &str {
    topic.strip_prefix('~').filter(|t| t.starts_with('$')).unwrap_or(topic)
}

fn bytes_topic_to_broker(topic: &Bytes) -> Option<Bytes> {
    if topic.starts_with(RESERVED_PREFIX.as_bytes()) {
        None
    } else if topic.starts_with(b"$") {
        let mut mapped = BytesMut::with_capacity(topic.len() + 1);
        mapped.extend_from_slice(b"~");
        mapped.extend_from_slice(topic);
        Some(mapped.freeze())
    } else {
        Some(topic.clone())
    }
}

fn bytes_topic_from_broker(topic: &Bytes) -> Bytes {
    if topic.starts_with(RESERVED_PREFIX.as_bytes()) { topic.slice(1..) } else { topic.clone() }
}

/// The filters a client session subscribed to, in the client's terms; used
/// only to decide whether a `$` topic may be delivered to it.
#[derive(Default)]
struct Filters(Mutex<HashSet<String>>);

impl Filters {
    fn add(&self, filter: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(filter_selector(filter).to_string());
    }

    fn remove(&self, filter: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(filter_selector(filter));
    }

    /// MQTT: wildcards in the first level do not match `$` topics.
    fn permits(&self, topic: &str) -> bool {
        !topic.starts_with('$')
            || self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|f| f.starts_with('$') && topic_matches(f, topic))
    }
}

/// What the two directions of one client connection share.
struct Session {
    client_id: String,
    principal: Principal,
    filters: Arc<Filters>,
    /// SUBSCRIBE packet ids with filters the policy refused, and those
    /// filters' positions: their SUBACK codes become failures.
    refused: Mutex<HashMap<u16, Vec<usize>>>,
    /// The MQTT 5 topic aliases the client set, to check an aliased PUBLISH's topic.
    aliases: Mutex<HashMap<u16, Bytes>>,
}

impl Session {
    fn new(client_id: String, principal: Principal, filters: Arc<Filters>) -> Self {
        Session { client_id, principal, filters, refused: Mutex::default(), aliases: Mutex::default() }
    }

    /// A SUBSCRIBE's filter as rumqttd gets it; `None` for the reserved prefix.
    /// A filter the policy refuses becomes a placeholder that nothing is ever
    /// delivered on, and its position is noted in `refused`.
    fn subscription(&self, filter: &str, position: usize, refused: &mut Vec<usize>) -> Option<String> {
        let mapped = filter_to_broker(filter)?;
        if self.principal.may_subscribe(filter) {
            self.filters.add(filter);
            return Some(mapped);
        }
        info!(client_id = %self.client_id, filter, "MQTT subscription refused: outside the client's policy");
        refused.push(position);
        Some(format!("{RESERVED_PREFIX}premises/refused/{position}"))
    }

    /// Notes which codes of the SUBACK for `pkid` must say failure.
    fn expect_suback(&self, pkid: u16, refused: Vec<usize>) {
        let mut pending = lock(&self.refused);
        if refused.is_empty() {
            pending.remove(&pkid);
        } else {
            pending.insert(pkid, refused);
        }
    }

    /// The positions of refused filters in the SUBACK for `pkid`.
    fn refused_positions(&self, pkid: u16) -> Vec<usize> {
        lock(&self.refused).remove(&pkid).unwrap_or_default()
    }

    /// `Err` (the connection closes, as on AWS IoT) when the policy does not allow this publish.
    fn check_publish(&self, topic: &str, retain: bool) -> Result<(), &'static str> {
        if self.principal.may_publish(topic, retain) {
            return Ok(());
        }
        info!(client_id = %self.client_id, topic, retain, "MQTT publish refused: outside the client's policy");
        Err("publish outside the client's policy")
    }

    /// Whether a message on `topic` may be delivered to this client.
    fn delivers(&self, topic: &str) -> bool {
        self.filters.permits(topic) && self.principal.may_receive(topic)
    }

    /// The topic of an MQTT 5 PUBLISH: its own, or the one its alias was set to.
    fn resolve_alias(&self, topic: &Bytes, alias: Option<u16>) -> Option<Bytes> {
        let mut aliases = lock(&self.aliases);
        match alias {
            Some(alias) if alias == 0 || alias > MAX_TOPIC_ALIASES => None,
            Some(alias) if !topic.is_empty() => {
                aliases.insert(alias, topic.clone());
                Some(topic.clone())
            }
            Some(alias) => aliases.get(&alias).cloned(),
            None => (!topic.is_empty()).then(|| topic.clone()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client connected (`true`) or went away (`false`).
type PresenceEvent = (String, bool);

/// Publishes AWS IoT's lifecycle events, `$aws/events/presence/connected|disconnected/<clientId>`
/// with its JSON body, for every client but the service's own.
async fn publish_presence(handle: BrokerHandle, mut events: mpsc::UnboundedReceiver<PresenceEvent>) {
    while let Some((client_id, connected)) = events.recv().await {
        let event = if connected { "connected" } else { "disconnected" };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut body = serde_json::json!({
            "clientId": client_id, "timestamp": timestamp, "eventType": event,
            "sessionIdentifier": uuid::Uuid::new_v4().to_string(), "principalIdentifier": client_id,
            "versionNumber": 0,
        });
        if !connected {
            body["disconnectReason"] = "CLIENT_INITIATED_DISCONNECT".into();
        }
        let topic = format!("$aws/events/presence/{event}/{client_id}");
        if let Err(e) = handle.publish(&topic, Bytes::from(body.to_string())).await {
            debug!(error = %format!("{e:#}"), topic, "presence event not published");
        }
    }
}

// ---------------------------------------------------------------------------
// The proxy

struct Proxy {
    auth: BrokerAuth,
    secret: String,
    v4_addr: SocketAddr,
    v5_addr: SocketAddr,
    /// Subscribed filters of persistent sessions by client id, which outlive
    /// a connection as rumqttd's sessions do.
    sessions: Mutex<std::collections::HashMap<String, Arc<Filters>>>,
    shutdown: watch::Receiver<bool>,
    /// Lifecycle events of clients, published by [`publish_presence`].
    presence: mpsc::UnboundedSender<PresenceEvent>,
}

/// What the proxy needs to know of a CONNECT.
struct ConnectInfo {
    client_id: String,
    persistent: bool,
    login: Option<(String, String)>,
    /// The will's topic and retain flag.
    will: Option<(String, bool)>,
}

#[derive(Debug, Clone, Copy)]
enum Refusal {
    BadCredentials,
    NotAuthorized,
    Unavailable,
}

enum Inbound<P> {
    Forward(P),
    /// Close the connection, for this reason.
    Violation(&'static str),
}

enum Outbound<P> {
    Forward(P),
    /// Do not deliver; answer rumqttd with this acknowledgement, if any.
    Drop(Option<P>),
}

/// The per-version parts of the proxy (MQTT 3.1.1 and 5 packets differ).
trait Dialect: 'static {
    type Packet: Send + 'static;
    const UNSUPPORTED_PACKET: &'static str;

    /// The next complete packet of `buf`, if any.
    fn read(buf: &mut BytesMut, max: usize) -> anyhow::Result<Option<Self::Packet>>;
    fn write(packet: &Self::Packet, buf: &mut BytesMut) -> anyhow::Result<()>;
    fn connect_info(packet: &Self::Packet) -> Option<ConnectInfo>;
    /// The CONNECT for rumqttd: the proxy's login, rewritten will topic;
    /// `None` when the client used the reserved prefix.
    fn upstream_connect(packet: Self::Packet, secret: &str) -> Option<Self::Packet>;
    fn refusal(refusal: Refusal) -> Self::Packet;
    fn inbound(packet: Self::Packet, session: &Session) -> Inbound<Self::Packet>;
    fn outbound(packet: Self::Packet, session: &Session) -> Outbound<Self::Packet>;
}

async fn accept_loop(listener: TcpListener, proxy: Arc<Proxy>) {
    let stopped = stopped(proxy.shutdown.clone());
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let proxy = proxy.clone();
                    tokio::spawn(async move {
                        if let Err(e) = proxy.serve(stream).await {
                            debug!(%peer, error = %format!("{e:#}"), "MQTT connection ended");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "cannot accept an MQTT connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    debug!("MQTT broker stopped accepting connections");
}

impl Proxy {
    async fn serve(self: Arc<Self>, mut client: TcpStream) -> anyhow::Result<()> {
        client.set_nodelay(true)?;
        let mut buf = BytesMut::with_capacity(4096);
        let level = tokio::time::timeout(CONNECT_TIMEOUT, read_protocol_level(&mut client, &mut buf))
            .await
            .map_err(|_| anyhow!("no CONNECT within {CONNECT_TIMEOUT:?}"))??;
        match level {
            4 => self.relay::<V4>(client, buf, self.v4_addr).await,
            5 => self.relay::<V5>(client, buf, self.v5_addr).await,
            other => {
                let mut out = BytesMut::new();
                V4::write(
                    &v4::Packet::ConnAck(v4::ConnAck::new(v4::ConnectReturnCode::RefusedProtocolVersion, false)),
                    &mut out,
                )?;
                client.write_all(&out).await?;
                bail!("unsupported MQTT protocol level {other}")
            }
        }
    }

    async fn relay<D: Dialect>(
        &self,
        mut client: TcpStream,
        mut buf: BytesMut,
        upstream: SocketAddr,
    ) -> anyhow::Result<()> {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, read_packet::<D>(&mut client, &mut buf, MAX_PACKET_BYTES))
            .await
            .map_err(|_| anyhow!("no complete CONNECT within {CONNECT_TIMEOUT:?}"))??
            .context("closed before CONNECT")?;
        let info = D::connect_info(&connect).context("the first packet is not CONNECT")?;
        let principal = match self.authenticate(&info).await {
            Ok(principal) => principal,
            Err(refusal) => {
                info!(client_id = %info.client_id, ?refusal, "MQTT connection refused");
                return refuse::<D>(&mut client, refusal).await;
            }
        };
        // AWS IoT checks the will's topic against the policy at CONNECT.
        if let Some((topic, retain)) = &info.will
            && !principal.may_publish(topic, *retain)
        {
            info!(client_id = %info.client_id, topic, "MQTT connection refused: a will outside the client's policy");
            return refuse::<D>(&mut client, Refusal::NotAuthorized).await;
        }
        let Some(connect) = D::upstream_connect(connect, &self.secret) else {
            return refuse::<D>(&mut client, Refusal::NotAuthorized).await;
        };
        let upstream = match TcpStream::connect(upstream).await {
            Ok(stream) => stream,
            Err(e) => {
                refuse::<D>(&mut client, Refusal::Unavailable).await?;
                return Err(anyhow::Error::new(e).context("cannot reach rumqttd"));
            }
        };
        upstream.set_nodelay(true)?;
        let session = Arc::new(Session::new(info.client_id.clone(), principal, self.session_filters(&info)));
        let (client_rd, client_wr) = client.into_split();
        let (upstream_rd, mut upstream_wr) = upstream.into_split();
        let mut out = BytesMut::new();
        D::write(&connect, &mut out)?;
        upstream_wr.write_all(&out).await?;

        // Two independent directions, so that neither waits on the other's
        // writes; the acknowledgements the proxy itself owes rumqttd (for `$`
        // messages it does not deliver) go from the second to the first.
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let to_broker = client_to_broker::<D>(client_rd, upstream_wr, buf, acks_rx, session.clone());
        let to_client = broker_to_client::<D>(upstream_rd, client_wr, acks_tx, session);
        let stopped = stopped(self.shutdown.clone());
        // AWS IoT reports every client's connection and disconnection (not the service's own).
        let announce = !info.client_id.is_empty() && !info.client_id.starts_with(SERVICE_CLIENT_PREFIX);
        if announce {
            let _ = self.presence.send((info.client_id.clone(), true));
        }
        let outcome = tokio::select! {
            r = to_broker => r,
            r = to_client => r,
            _ = stopped => Ok(()),
        };
        if announce {
            let _ = self.presence.send((info.client_id.clone(), false));
        }
        outcome
    }

    /// Who the client is; an unauthenticated client gets nothing, as on AWS IoT
    /// (unless anonymous clients are allowed).
    async fn authenticate(&self, info: &ConnectInfo) -> Result<Principal, Refusal> {
        let service_login = matches!(&info.login, Some((username, _)) if username == SERVICE_USERNAME);
        // Nobody else may take over (and so disconnect) one of the service's sessions.
        if info.client_id.starts_with(SERVICE_CLIENT_PREFIX) && !service_login {
            return Err(Refusal::NotAuthorized);
        }
        let Some((username, password)) = &info.login else {
            if !self.auth.allow_anonymous {
                return Err(Refusal::NotAuthorized);
            }
            // Even then, a device's client id is its own: taking it over would
            // disconnect the device and speak (and report presence) in its name.
            return match local::is_provisioned(&self.auth.store, &info.client_id).await {
                Ok(false) => Ok(Principal::Anonymous),
                Ok(true) => Err(Refusal::NotAuthorized),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "cannot check an MQTT client id");
                    Err(Refusal::Unavailable)
                }
            };
        };
        if service_login {
            return if constant_time_eq(password.as_bytes(), self.secret.as_bytes()) {
                Ok(Principal::Service)
            } else {
                Err(Refusal::BadCredentials)
            };
        }
        match local::verify_device_password(&self.auth.store, username, password).await {
            // Devices connect as their thing, as an AWS IoT policy on `client/${iot:Connection.Thing.ThingName}` requires.
            Ok(true) if info.client_id == *username => Ok(Principal::Device(username.clone())),
            Ok(true) => Err(Refusal::NotAuthorized),
            Ok(false) => Err(Refusal::BadCredentials),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot check MQTT credentials");
                Err(Refusal::Unavailable)
            }
        }
    }

    fn session_filters(&self, info: &ConnectInfo) -> Arc<Filters> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if info.persistent && !info.client_id.is_empty() {
            sessions.entry(info.client_id.clone()).or_default().clone()
        } else {
            sessions.remove(&info.client_id);
            Arc::default()
        }
    }
}

async fn client_to_broker<D: Dialect>(
    mut client: tokio::net::tcp::OwnedReadHalf,
    mut upstream: tokio::net::tcp::OwnedWriteHalf,
    mut buf: BytesMut,
    mut acks: mpsc::UnboundedReceiver<D::Packet>,
    session: Arc<Session>,
) -> anyhow::Result<()> {
    let mut out = BytesMut::with_capacity(4096);
    loop {
        while let Some(packet) = D::read(&mut buf, MAX_PACKET_BYTES)? {
            match D::inbound(packet, &session) {
                Inbound::Forward(packet) => D::write(&packet, &mut out)?,
                Inbound::Violation(why) => bail!("closing the connection: {why}"),
            }
        }
        if !out.is_empty() {
            upstream.write_all(&out).await?;
            out.clear();
        }
        tokio::select! {
            read = client.read_buf(&mut buf) => if read? == 0 {
                return Ok(());
            },
            Some(ack) = acks.recv() => {
                D::write(&ack, &mut out)?;
            }
        }
    }
}

async fn broker_to_client<D: Dialect>(
    mut upstream: tokio::net::tcp::OwnedReadHalf,
    mut client: tokio::net::tcp::OwnedWriteHalf,
    acks: mpsc::UnboundedSender<D::Packet>,
    session: Arc<Session>,
) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        if upstream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        while let Some(packet) = D::read(&mut buf, UPSTREAM_MAX_PACKET_BYTES)? {
            match D::outbound(packet, &session) {
                Outbound::Forward(packet) => D::write(&packet, &mut out)?,
                Outbound::Drop(Some(ack)) => acks.send(ack).map_err(|_| anyhow!("the connection is closing"))?,
                Outbound::Drop(None) => {}
            }
        }
        if !out.is_empty() {
            client.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Answers the CONNECT with a refusal and closes the connection.
async fn refuse<D: Dialect>(client: &mut TcpStream, refusal: Refusal) -> anyhow::Result<()> {
    let mut out = BytesMut::new();
    D::write(&D::refusal(refusal), &mut out)?;
    client.write_all(&out).await?;
    client.shutdown().await?;
    Ok(())
}

/// Reads until the protocol level of the CONNECT at the start of `buf` is known.
async fn read_protocol_level(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<u8> {
    loop {
        if let Some(level) = peek_protocol_level(buf)? {
            return Ok(level);
        }
        if buf.len() > MAX_PACKET_BYTES {
            bail!("CONNECT too large");
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("closed before CONNECT");
        }
    }
}

/// The protocol level byte of a CONNECT: fixed header, remaining length
/// (1-4 bytes), protocol name (length-prefixed), level.
fn peek_protocol_level(buf: &[u8]) -> anyhow::Result<Option<u8>> {
    let Some(&first) = buf.first() else { return Ok(None) };
    if first >> 4 != 1 {
        bail!("the first packet is not CONNECT");
    }
    let mut at = 1;
    loop {
        let Some(&byte) = buf.get(at) else { return Ok(None) };
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            bail!("malformed remaining length");
        }
    }
    let (Some(&hi), Some(&lo)) = (buf.get(at), buf.get(at + 1)) else { return Ok(None) };
    let name_len = usize::from(u16::from_be_bytes([hi, lo]));
    Ok(buf.get(at + 2 + name_len).copied())
}

async fn read_packet<D: Dialect>(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> anyhow::Result<Option<D::Packet>> {
    loop {
        if let Some(packet) = D::read(buf, max)? {
            return Ok(Some(packet));
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

// ---------------------------------------------------------------------------
// MQTT 3.1.1

struct V4;

impl Dialect for V4 {
    type Packet = v4::Packet;
    const UNSUPPORTED_PACKET: &'static str = "a second CONNECT";

    fn read(buf: &mut BytesMut, max: usize) -> anyhow::Result<Option<v4::Packet>> {
        match v4::Packet::read(buf, max) {
            Ok(packet) => Ok(Some(packet)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("malformed MQTT 3.1.1 packet")),
        }
    }

    fn write(packet: &v4::Packet, buf: &mut BytesMut) -> anyhow::Result<()> {
        packet
            .write(buf, usize::MAX)
            .map_err(|e| anyhow::Error::new(e).context("cannot encode an MQTT 3.1.1 packet"))?;
        Ok(())
    }

    fn connect_info(packet: &v4::Packet) -> Option<ConnectInfo> {
        let v4::Packet::Connect(connect) = packet else { return None };
        Some(ConnectInfo {
            client_id: connect.client_id.clone(),
            persistent: !connect.clean_session,
            login: connect.login.as_ref().map(|l| (l.username.clone(), l.password.clone())),
            will: connect.last_will.as_ref().map(|w| (w.topic.clone(), w.retain)),
        })
    }

    fn upstream_connect(packet: v4::Packet, secret: &str) -> Option<v4::Packet> {
        let v4::Packet::Connect(mut connect) = packet else { return None };
        connect.login = Some(v4::Login::new(UPSTREAM_USERNAME, secret));
        connect.keep_alive = upstream_keep_alive(connect.keep_alive);
        if let Some(will) = &mut connect.last_will {
            will.topic = topic_to_broker(&will.topic)?;
        }
        Some(v4::Packet::Connect(connect))
    }

    fn refusal(refusal: Refusal) -> v4::Packet {
        let code = match refusal {
            Refusal::BadCredentials => v4::ConnectReturnCode::BadUserNamePassword,
            Refusal::NotAuthorized => v4::ConnectReturnCode::NotAuthorized,
            Refusal::Unavailable => v4::ConnectReturnCode::ServiceUnavailable,
        };
        v4::Packet::ConnAck(v4::ConnAck::new(code, false))
    }

    fn inbound(packet: v4::Packet, session: &Session) -> Inbound<v4::Packet> {
        match packet {
            v4::Packet::Publish(mut publish) => {
                if publish.qos == QoS::ExactlyOnce {
                    return Inbound::Violation("QoS 2 is not supported (as on AWS IoT)");
                }
                let Some(topic) = topic_to_broker(&publish.topic) else {
                    return Inbound::Violation("publish to the reserved ~$ prefix");
                };
                if let Err(why) = session.check_publish(&publish.topic, publish.retain) {
                    return Inbound::Violation(why);
                }
                publish.topic = topic;
                Inbound::Forward(v4::Packet::Publish(publish))
            }
            v4::Packet::Subscribe(mut subscribe) => {
                let mut refused = Vec::new();
                for (position, filter) in subscribe.filters.iter_mut().enumerate() {
                    let Some(mapped) = session.subscription(&filter.path, position, &mut refused) else {
                        return Inbound::Violation("subscription to the reserved ~$ prefix");
                    };
                    filter.path = mapped;
                    if filter.qos == QoS::ExactlyOnce {
                        filter.qos = QoS::AtLeastOnce;
                    }
                }
                session.expect_suback(subscribe.pkid, refused);
                Inbound::Forward(v4::Packet::Subscribe(subscribe))
            }
            v4::Packet::Unsubscribe(mut unsubscribe) => {
                for topic in &mut unsubscribe.topics {
                    session.filters.remove(topic);
                    let Some(mapped) = filter_to_broker(topic) else {
                        return Inbound::Violation("unsubscription from the reserved ~$ prefix");
                    };
                    *topic = mapped;
                }
                Inbound::Forward(v4::Packet::Unsubscribe(unsubscribe))
            }
            v4::Packet::Connect(_) => Inbound::Violation(Self::UNSUPPORTED_PACKET),
            other => Inbound::Forward(other),
        }
    }

    fn outbound(packet: v4::Packet, session: &Session) -> Outbound<v4::Packet> {
        match packet {
            v4::Packet::SubAck(mut ack) => {
                for position in session.refused_positions(ack.pkid) {
                    if let Some(code) = ack.return_codes.get_mut(position) {
                        *code = v4::SubscribeReasonCode::Failure;
                    }
                }
                Outbound::Forward(v4::Packet::SubAck(ack))
            }
            v4::Packet::Publish(mut publish) => {
                let topic = topic_from_broker(&publish.topic);
                if !session.delivers(topic) {
                    let ack =
                        (publish.qos == QoS::AtLeastOnce).then(|| v4::Packet::PubAck(v4::PubAck::new(publish.pkid)));
                    return Outbound::Drop(ack);
                }
                publish.topic = topic.to_string();
                Outbound::Forward(v4::Packet::Publish(publish))
            }
            other => Outbound::Forward(other),
        }
    }
}

// ---------------------------------------------------------------------------
// MQTT 5

struct V5;

impl Dialect for V5 {
    type Packet = v5::Packet;
    const UNSUPPORTED_PACKET: &'static str = "a second CONNECT or an AUTH exchange";

    fn read(buf: &mut BytesMut, max: usize) -> anyhow::Result<Option<v5::Packet>> {
        // A DISCONNECT without reason code (normal disconnection) has no body,
        // which rumqttc's decoder does not accept.
        if buf.starts_with(&[0xE0, 0x00]) {
            buf.advance(2);
            return Ok(Some(v5::Packet::Disconnect(v5::Disconnect::new(
                v5::DisconnectReasonCode::NormalDisconnection,
            ))));
        }
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        match v5::Packet::read(buf, Some(max)) {
            Ok(packet) => Ok(Some(packet)),
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("malformed MQTT 5 packet")),
        }
    }

    fn write(packet: &v5::Packet, buf: &mut BytesMut) -> anyhow::Result<()> {
        packet.write(buf, None).map_err(|e| anyhow::Error::new(e).context("cannot encode an MQTT 5 packet"))?;
        Ok(())
    }

    fn connect_info(packet: &v5::Packet) -> Option<ConnectInfo> {
        let v5::Packet::Connect(connect, will, login) = packet else { return None };
        Some(ConnectInfo {
            client_id: connect.client_id.clone(),
            persistent: !connect.clean_start,
            login: login.as_ref().map(|l| (l.username.clone(), l.password.clone())),
            will: will.as_ref().map(|w| (String::from_utf8_lossy(&w.topic).into_owned(), w.retain)),
        })
    }

    fn upstream_connect(packet: v5::Packet, secret: &str) -> Option<v5::Packet> {
        let v5::Packet::Connect(mut connect, mut will, _) = packet else { return None };
        connect.keep_alive = upstream_keep_alive(connect.keep_alive);
        if let Some(will) = &mut will {
            will.topic = bytes_topic_to_broker(&will.topic)?;
            // Not relayed, as a publish's properties are not (see `inbound`).
            will.properties = None;
        }
        // Topic aliases towards the client would hide the topics the proxy rewrites.
        if let Some(properties) = &mut connect.properties {
            properties.topic_alias_max = None;
        }
        Some(v5::Packet::Connect(connect, will, Some(v5::Login::new(UPSTREAM_USERNAME, secret))))
    }

    fn refusal(refusal: Refusal) -> v5::Packet {
        let code = match refusal {
            Refusal::BadCredentials => v5::ConnectReturnCode::BadUserNamePassword,
            Refusal::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
            Refusal::Unavailable => v5::ConnectReturnCode::ServerUnavailable,
        };
        v5::Packet::ConnAck(v5::ConnAck { session_present: false, code, properties: None })
    }

    fn inbound(packet: v5::Packet, session: &Session) -> Inbound<v5::Packet> {
        match packet {
            v5::Packet::Publish(mut publish) => {
                if publish.qos == QoS5::ExactlyOnce {
                    return Inbound::Violation("QoS 2 is not supported (as on AWS IoT)");
                }
                let alias = publish.properties.as_ref().and_then(|p| p.topic_alias);
                let Some(topic) = session.resolve_alias(&publish.topic, alias) else {
                    return Inbound::Violation("a publish with neither a topic nor a known topic alias");
                };
                let Ok(topic) = std::str::from_utf8(&topic) else {
                    return Inbound::Violation("a topic that is not UTF-8");
                };
                if let Err(why) = session.check_publish(topic, publish.retain) {
                    return Inbound::Violation(why);
                }
                let Some(topic) = topic_to_broker(topic) else {
                    return Inbound::Violation("publish to the reserved ~$ prefix");
                };
                publish.topic = Bytes::from(topic);
                // rumqttd 0.20 hands a publish's properties to MQTT 3.1.1
                // subscribers too (the service's among them), whose writer then
                // panics and takes the listener down: none are relayed, and the
                // topic alias was resolved above.
                publish.properties = None;
                Inbound::Forward(v5::Packet::Publish(publish))
            }
            v5::Packet::Subscribe(mut subscribe) => {
                let mut refused = Vec::new();
                for (position, filter) in subscribe.filters.iter_mut().enumerate() {
                    let Some(mapped) = session.subscription(&filter.path, position, &mut refused) else {
                        return Inbound::Violation("subscription to the reserved ~$ prefix");
                    };
                    filter.path = mapped;
                    if filter.qos == QoS5::ExactlyOnce {
                        filter.qos = QoS5::AtLeastOnce;
                    }
                }
                session.expect_suback(subscribe.pkid, refused);
                Inbound::Forward(v5::Packet::Subscribe(subscribe))
            }
            v5::Packet::Unsubscribe(mut unsubscribe) => {
                for filter in &mut unsubscribe.filters {
                    session.filters.remove(filter);
                    let Some(mapped) = filter_to_broker(filter) else {
                        return Inbound::Violation("unsubscription from the reserved ~$ prefix");
                    };
                    *filter = mapped;
                }
                Inbound::Forward(v5::Packet::Unsubscribe(unsubscribe))
            }
            v5::Packet::Connect(..) | v5::Packet::Auth(_) => Inbound::Violation(Self::UNSUPPORTED_PACKET),
            other => Inbound::Forward(other),
        }
    }

    fn outbound(packet: v5::Packet, session: &Session) -> Outbound<v5::Packet> {
        match packet {
            v5::Packet::ConnAck(mut ack) => {
                if let Some(properties) = &mut ack.properties {
                    properties.topic_alias_max = Some(MAX_TOPIC_ALIASES);
                }
                Outbound::Forward(v5::Packet::ConnAck(ack))
            }
            v5::Packet::SubAck(mut ack) => {
                for position in session.refused_positions(ack.pkid) {
                    if let Some(code) = ack.return_codes.get_mut(position) {
                        *code = v5::SubscribeReasonCode::NotAuthorized;
                    }
                }
                Outbound::Forward(v5::Packet::SubAck(ack))
            }
            v5::Packet::Publish(mut publish) => {
                publish.topic = bytes_topic_from_broker(&publish.topic);
                let permitted = std::str::from_utf8(&publish.topic).is_ok_and(|topic| session.delivers(topic));
                if !permitted {
                    let ack = (publish.qos == QoS5::AtLeastOnce).then(|| {
                        v5::Packet::PubAck(v5::PubAck {
                            pkid: publish.pkid,
                            reason: v5::PubAckReason::Success,
                            properties: None,
                        })
                    });
                    return Outbound::Drop(ack);
                }
                if let Some(properties) = &mut publish.properties
                    && let Some(response) = &mut properties.response_topic
                {
                    *response = topic_from_broker(response).to_string();
                }
                Outbound::Forward(v5::Packet::Publish(publish))
            }
            other => Outbound::Forward(other),
        }
    }
}

// ---------------------------------------------------------------------------
// The service's publishing connection

/// A minimal MQTT 3.1.1 client: one publish at a time, each awaited to its PUBACK.
struct ServiceConnection {
    stream: TcpStream,
    buf: BytesMut,
    next_pkid: u16,
}

impl ServiceConnection {
    async fn connect(addr: SocketAddr, secret: &str) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let connect = v4::Connect {
            protocol: rumqttc::mqttbytes::Protocol::V4,
            // rumqttd refuses 0 (no keep-alive); the longest allowed keeps an idle
            // connection for ~27 hours, and `publish` reconnects after that.
            keep_alive: u16::MAX,
            client_id: service_client_id(),
            clean_session: true,
            last_will: None,
            login: Some(v4::Login::new(SERVICE_USERNAME, secret)),
        };
        let mut out = BytesMut::new();
        V4::write(&v4::Packet::Connect(connect), &mut out)?;
        stream.write_all(&out).await?;
        let mut buf = BytesMut::with_capacity(1024);
        let ack = tokio::time::timeout(CONNECT_TIMEOUT, read_packet::<V4>(&mut stream, &mut buf, MAX_PACKET_BYTES))
            .await
            .map_err(|_| anyhow!("no CONNACK within {CONNECT_TIMEOUT:?}"))??;
        match ack {
            Some(v4::Packet::ConnAck(ack)) if ack.code == v4::ConnectReturnCode::Success => {
                Ok(ServiceConnection { stream, buf, next_pkid: 0 })
            }
            Some(v4::Packet::ConnAck(ack)) => bail!("the broker refused the service connection: {:?}", ack.code),
            Some(other) => bail!("expected CONNACK, got {other:?}"),
            None => bail!("the broker closed the service connection"),
        }
    }

    async fn publish(&mut self, topic: &str, payload: Bytes) -> anyhow::Result<()> {
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        let pkid = self.next_pkid;
        let publish =
            v4::Publish { dup: false, qos: QoS::AtLeastOnce, retain: false, topic: topic.to_string(), pkid, payload };
        let mut out = BytesMut::with_capacity(publish.size());
        V4::write(&v4::Packet::Publish(publish), &mut out)?;
        self.stream.write_all(&out).await?;
        loop {
            match read_packet::<V4>(&mut self.stream, &mut self.buf, MAX_PACKET_BYTES).await? {
                Some(v4::Packet::PubAck(ack)) if ack.pkid == pkid => return Ok(()),
                Some(v4::Packet::Disconnect) | None => bail!("the broker closed the service connection"),
                Some(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_topics_are_rewritten_both_ways_and_the_reserved_prefix_is_refused() {
        assert_eq!(topic_to_broker("$aws/things/a/shadow/update").as_deref(), Some("~$aws/things/a/shadow/update"));
        assert_eq!(topic_to_broker("plain/topic").as_deref(), Some("plain/topic"));
        assert_eq!(topic_to_broker("~$aws/x"), None);
        assert_eq!(topic_from_broker("~$aws/things/a"), "$aws/things/a");
        assert_eq!(topic_from_broker("~plain"), "~plain");
        assert_eq!(
            filter_to_broker("$share/g/$aws/things/+/shadow/update").as_deref(),
            Some("$share/g/~$aws/things/+/shadow/update")
        );
        assert_eq!(filter_to_broker("$share/g/a/#").as_deref(), Some("$share/g/a/#"));
        assert_eq!(filter_to_broker("$share/nogroup"), None);
        assert_eq!(bytes_topic_to_broker(&Bytes::from_static(b"$aws/x")), Some(Bytes::from_static(b"~$aws/x")));
        assert_eq!(bytes_topic_from_broker(&Bytes::from_static(b"~$aws/x")), Bytes::from_static(b"$aws/x"));
    }

    #[test]
    fn dollar_topics_reach_only_sessions_with_a_dollar_filter() {
        let filters = Filters::default();
        filters.add("#");
        assert!(filters.permits("a/b"));
        assert!(!filters.permits("$aws/things/a/shadow/update/delta"));
        filters.add("$share/g/$aws/things/+/shadow/update/delta");
        assert!(filters.permits("$aws/things/a/shadow/update/delta"));
        filters.remove("$share/g/$aws/things/+/shadow/update/delta");
        assert!(!filters.permits("$aws/things/a/shadow/update/delta"));
    }

    #[test]
    fn the_protocol_level_is_read_from_a_partial_connect() {
        // CONNECT, remaining length 16, "MQTT", level 5, ...
        let connect = [0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60];
        assert_eq!(peek_protocol_level(&connect[..8]).unwrap(), None);
        assert_eq!(peek_protocol_level(&connect).unwrap(), Some(5));
        // A two-byte remaining length.
        let long = [0x10, 0x80, 0x01, 0, 4, b'M', b'Q', b'T', b'T', 4];
        assert_eq!(peek_protocol_level(&long).unwrap(), Some(4));
        assert!(peek_protocol_level(&[0x30, 0]).is_err());
    }

    #[test]
    fn constant_time_eq_compares_whole_inputs() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
