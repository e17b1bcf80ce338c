//! The local stack: every catalog function in one process on embedded
//! defaults. HTTP routes are served through the same handlers Lambda runs,
//! MQTT messages dispatch IoT rules by their topic filters, queue consumers
//! and scheduled jobs run in-process. `premises` (src/main.rs) and the tests
//! start it the same way: [`Stack::start`].

pub mod apigw;
pub mod schedule;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as HyperBody;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use shared::App;
use shared::platform::app::LocalParts;
use shared::platform::clock::Clock;
use shared::platform::config::Config;
use shared::platform::devices::Devices;
use shared::platform::devices::local::DEVICE_SHADOW_FILTERS;
use shared::platform::devices::rules::IotRule;
use shared::platform::function::{Function, IotHandler, Trigger};
use shared::platform::http::router::{RouteMatch, Router};
use shared::platform::http::{self, ApiError};
use shared::platform::queue::{Queue, QueueDef};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a stop waits for in-flight HTTP requests before closing them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client has to send a request's headers, from the moment it connects (and between
/// requests on a kept-alive connection) unless `PREMISES_HTTP_HEADER_TIMEOUT_SECS` says otherwise.
/// API Gateway closes idle and half-sent connections too; without this, 300 clients that connect
/// and send nothing held 300 connections open for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `PREMISES_HTTP_HEADER_TIMEOUT_SECS` (1–300), or [`HEADER_READ_TIMEOUT`].
pub fn header_read_timeout() -> anyhow::Result<Duration> {
    match std::env::var("PREMISES_HTTP_HEADER_TIMEOUT_SECS") {
        Err(_) => Ok(HEADER_READ_TIMEOUT),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(secs @ 1..=300) => Ok(Duration::from_secs(secs)),
            _ => {
                anyhow::bail!("PREMISES_HTTP_HEADER_TIMEOUT_SECS: {v:?} is not a whole number of seconds from 1 to 300")
            }
        },
    }
}

/// A last adjustment of the state before anything is served.
pub type Configure = Box<dyn FnOnce(&mut App) + Send>;

/// What the stack runs: the catalog by default, a test catalog in tests.
pub struct Options {
    pub functions: &'static [Function],
    /// Queues known to the embedded queue (consumed or only produced to).
    pub queues: &'static [QueueDef],
    /// AWS SDK configuration instead of the environment's (tests point it at DynamoDB Local).
    pub sdk: Option<aws_config::SdkConfig>,
    /// Adjusts the state before anything is served (tests install a token verifier).
    pub configure: Option<Configure>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            functions: shared::catalog::functions(),
            queues: shared::catalog::queues(),
            sdk: None,
            configure: None,
        }
    }
}

/// A running local stack.
pub struct Stack {
    pub app: &'static App,
    pub http_addr: SocketAddr,
    pub mqtt_addr: Option<SocketAddr>,
    functions: &'static [Function],
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Stack {
    /// Builds the state, creates the table if missing, and starts serving.
    pub async fn start(config: Config, clock: Clock, options: Options) -> anyhow::Result<Stack> {
        // The local stack serves the API reference too (`/api/schema/`, `/api/docs/`, `/api/redoc/`).
        shared::api_doc::install();
        let app = build_app(config, clock, options.queues, options.sdk, options.configure).await?;
        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let listener = TcpListener::bind(app.config.http_addr)
            .await
            .with_context(|| format!("PREMISES_HTTP_ADDR: cannot listen on {}", app.config.http_addr))?;
        let http_addr = listener.local_addr()?;
        let router: &'static Router<'static> = Box::leak(Box::new(Router::new(options.functions)));
        tasks.spawn(serve_http(app, router, listener, header_read_timeout()?, shutdown.subscribe()));

        let mqtt_addr = match &app.devices {
            Devices::Local(local) => {
                let rules = iot_rules(options.functions)?;
                let incoming = local.broker().subscribe(&subscriptions(&rules)).await?;
                tasks.spawn(dispatch_mqtt(app, rules, incoming, shutdown.subscribe()));
                Some(local.broker().local_addr())
            }
            Devices::Aws(_) => None,
        };

        for function in options.functions {
            match &function.trigger {
                Trigger::Queue { queue, batch_size, handler } => match &app.queue {
                    Queue::Embedded(q) => {
                        let (q, handler, rx) = (q.clone(), *handler, shutdown.subscribe());
                        let (def, batch_size) = (*queue, *batch_size);
                        tasks.spawn(async move {
                            q.run_consumer(def, batch_size, move |event| handler(app, event), rx).await
                        });
                    }
                    Queue::Sqs(_) => tracing::warn!(
                        function = function.name,
                        "PREMISES_QUEUE=sqs: the local stack does not consume SQS; Lambda does"
                    ),
                },
                Trigger::Schedule { expression, .. } if app.config.run_schedules => {
                    let period =
                        schedule::period(expression).map_err(|e| anyhow::anyhow!("function {}: {e}", function.name))?;
                    if let Some(period) = period {
                        tasks.spawn(run_schedule(app, function, period, shutdown.subscribe()));
                    }
                }
                _ => {}
            }
        }

        Ok(Stack { app, http_addr, mqtt_addr, functions: options.functions, shutdown, tasks })
    }

    /// Runs a scheduled job now, as its schedule would.
    pub async fn run_job(&self, name: &str) -> anyhow::Result<()> {
        run_job(self.app, self.functions, name).await
    }

    /// Stops accepting work, lets in-flight requests, batches and jobs finish, and returns.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Builds the process state the way the local stack runs it.
pub async fn build_app(
    config: Config,
    clock: Clock,
    queues: &'static [QueueDef],
    sdk: Option<aws_config::SdkConfig>,
    configure: Option<Configure>,
) -> anyhow::Result<&'static App> {
    let mut app = App::build(config, clock, LocalParts { start_broker: true, queues, sdk }).await?;
    app.store.ensure_table().await.context("creating the table")?;
    ensure_admin(&app).await?;
    if let Some(configure) = configure {
        configure(&mut app);
    }
    Ok(Box::leak(Box::new(app)))
}

/// Creates the admin of `PREMISES_ADMIN_EMAIL`/`PREMISES_ADMIN_PASSWORD` if
/// no user has that email yet; returns whether one was created.
pub async fn ensure_admin(app: &App) -> anyhow::Result<bool> {
    let Some(admin) = &app.config.admin else { return Ok(false) };
    let created = shared::identity::service::ensure_admin(app, &admin.email, &admin.password)
        .await
        .context("PREMISES_ADMIN_EMAIL/PREMISES_ADMIN_PASSWORD: cannot create the admin")?;
    if created {
        tracing::info!(email = %admin.email, "created the admin user");
    }
    Ok(created)
}

/// Runs the scheduled function `name` once.
pub async fn run_job(app: &'static App, functions: &'static [Function], name: &str) -> anyhow::Result<()> {
    let function = functions.iter().find(|f| f.name == name).with_context(|| format!("no function named {name:?}"))?;
    let Trigger::Schedule { handler, .. } = &function.trigger else {
        anyhow::bail!("{name} is not a scheduled job");
    };
    handler(app, schedule::scheduled_event(name, &app.clock)).await
}

async fn serve_http(
    app: &'static App,
    router: &'static Router<'static>,
    listener: TcpListener,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder: &'static _ = Box::leak(Box::new(builder));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let service = hyper::service::service_fn(move |req| handle(app, router, req, peer));
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // hyper times the headers of HTTP/1, but choosing HTTP/1 or HTTP/2 waits for the
                    // preface without a limit: a client must get that far within the same time.
                    if !preface_within(&stream, header_timeout).await {
                        tracing::debug!(%peer, "closed: nothing usable sent within {header_timeout:?}");
                        return;
                    }
                    let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}

/// Whether the client sent, within `timeout`, enough to tell HTTP/1 from HTTP/2: a byte that
/// departs from the HTTP/2 preface, or the whole preface.
async fn preface_within(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; PREFACE.len()];
        let mut seen = 0;
        loop {
            let n = match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            if buf[..n] != PREFACE[..n] || n == PREFACE.len() {
                return true;
            }
            if n == seen {
                // Peek returns at once with what is buffered; wait a little for more.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen = n;
        }
    };
    tokio::time::timeout(timeout, wait).await.unwrap_or(false)
}

/// Serves one request from the socket through the catalog function's Lambda path.
async fn handle(
    app: &'static App,
    router: &'static Router<'static>,
    req: hyper::Request<HyperBody>,
    peer: SocketAddr,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let origin = parts.headers.get(::http::header::ORIGIN).cloned();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();

    let response = match router.find(parts.method.as_str(), &path) {
        RouteMatch::Found { function, params } => {
            let body = read_body(body, app.config.max_body_bytes).await;
            let route_key = match &function.trigger {
                Trigger::Http(route) => format!("{} {}", route.method, route.path),
                _ => String::new(),
            };
            let incoming = apigw::Incoming {
                method: parts.method.as_str(),
                raw_path: &path,
                raw_query: &query,
                headers: &parts.headers,
                body: &body,
                peer,
                route_key,
                path_params: &params,
            };
            match apigw::to_lambda_request(&incoming, &app.clock) {
                Ok(req) => return Ok(to_hyper(http::dispatch(app, function, req).await)),
                Err(e) => ApiError::internal(e).into_response(),
            }
        }
        RouteMatch::MethodNotAllowed(_) if parts.method == ::http::Method::OPTIONS => http::preflight(),
        RouteMatch::MethodNotAllowed(allowed) => {
            let mut r = ApiError::new(
                ::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("Method \"{}\" not allowed.", parts.method),
            )
            .into_response();
            if let Ok(v) = allowed.join(", ").parse() {
                r.headers_mut().insert(::http::header::ALLOW, v);
            }
            r
        }
        RouteMatch::NotFound => ApiError::not_found("not_found", "Not found.").into_response(),
    };
    let mut response = response;
    http::decorate(&app.config.cors_origin, origin, &mut response);
    Ok(to_hyper(response))
}

/// Reads at most `limit + 1` bytes: enough for the pipeline to see an
/// oversized body and answer 413 without holding all of it.
async fn read_body(mut body: HyperBody, limit: usize) -> Bytes {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = (limit + 1).saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
            if buf.len() > limit {
                break;
            }
        }
    }
    Bytes::from(buf)
}

fn to_hyper(response: http::Response) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(t) => Bytes::from(t),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

type Rule = (IotRule, &'static Function, IotHandler);

fn iot_rules(functions: &'static [Function]) -> anyhow::Result<Vec<Rule>> {
    functions
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::IotRule { sql, handler } => Some((f, *sql, *handler)),
            _ => None,
        })
        .map(|(f, sql, handler)| {
            IotRule::parse(sql).map(|rule| (rule, f, handler)).with_context(|| format!("function {}", f.name))
        })
        .collect()
}

/// The rules' topic filters, and the device shadow requests the local stack
/// answers itself, as AWS IoT would.
fn subscriptions(rules: &[Rule]) -> Vec<String> {
    let mut filters: Vec<String> = rules.iter().map(|(r, _, _)| r.topic_filter().to_string()).collect();
    filters.extend(DEVICE_SHADOW_FILTERS.iter().map(|f| f.to_string()));
    filters.sort();
    filters.dedup();
    filters
}

async fn dispatch_mqtt(
    app: &'static App,
    rules: Vec<Rule>,
    mut incoming: tokio::sync::mpsc::Receiver<shared::platform::devices::broker::Incoming>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running = JoinSet::new();
    loop {
        let message = tokio::select! {
            m = incoming.recv() => match m { Some(m) => m, None => break },
            _ = shutdown.changed() => break,
        };
        if let Devices::Local(local) = &app.devices {
            match local.handle_device_shadow_message(&message.topic, &message.payload).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(topic = %message.topic, error = %e, "shadow request rejected");
                    continue;
                }
            }
        }
        for (rule, function, handler) in &rules {
            let Some(event) = rule.apply(&message.topic, &message.payload, app.clock.now_millis()) else { continue };
            let (name, handler) = (function.name, *handler);
            running.spawn(async move {
                if let Err(e) = handler(app, event).await {
                    tracing::error!(function = name, error = %format!("{e:#}"), "IoT rule target failed");
                }
            });
        }
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

async fn run_schedule(
    app: &'static App,
    function: &'static Function,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(e) = run_job(app, std::slice::from_ref(function), function.name).await {
                    tracing::error!(function = function.name, error = %format!("{e:#}"), "scheduled job failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}
