//! What the end-to-end tests share: stores to run on, the binary, ports, polling.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Which store a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Embedded,
    /// DynamoDB Local at this endpoint, a fresh table per test.
    Dynamodb(String),
}

impl Backend {
    /// DynamoDB Local from `make test`; `None` (and a note) when it is not running.
    pub fn dynamodb() -> Option<Backend> {
        match std::env::var("PREMISES_TEST_DYNAMODB_ENDPOINT") {
            Ok(v) if !v.is_empty() => Some(Backend::Dynamodb(v)),
            _ => {
                let required = std::env::var("PREMISES_TEST_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
                    || std::env::var("CI").is_ok_and(|v| v == "true");
                assert!(
                    !required,
                    "PREMISES_TEST_DYNAMODB_ENDPOINT unset but PREMISES_TEST_REQUIRE_ENGINES=1 or CI=true"
                );
                eprintln!("skipping the DynamoDB run: PREMISES_TEST_DYNAMODB_ENDPOINT is not set (make test sets it)");
                None
            }
        }
    }

    /// Environment variables selecting this store for a `premises` process.
    pub fn env(&self, table: &str) -> Vec<(String, String)> {
        match self {
            Backend::Embedded => vec![("PREMISES_STORE".into(), "embedded".into())],
            Backend::Dynamodb(endpoint) => vec![
                ("PREMISES_STORE".into(), "dynamodb".into()),
                ("PREMISES_TABLE".into(), table.into()),
                ("AWS_ENDPOINT_URL_DYNAMODB".into(), endpoint.clone()),
                ("AWS_REGION".into(), "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID".into(), "test".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
                ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ],
        }
    }
}

/// Runs each listed `async fn(Backend)` as a test on the embedded store and on DynamoDB Local.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Embedded).await
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    premises_no_dynamodb,
                    ignore = "skipped: no DynamoDB Local (set PREMISES_TEST_DYNAMODB_ENDPOINT; make test does)"
                )]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::dynamodb() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// An AWS SDK configuration pointed at DynamoDB Local.
pub async fn dynamodb_sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("t", "t", None, None, "e2e"))
        .load()
        .await
}

/// One JSON request (`method path`, with a bearer token and a JSON body when given): the status and
/// the JSON answer (`null` when there is none).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = client.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Every item of a paginated admin list (`{count, next, previous, results}`), following `next`.
pub async fn all_pages(client: &reqwest::Client, base: &str, token: &str, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut next = Some(format!("{path}{sep}page_size=100"));
    while let Some(p) = next {
        let r = client.get(format!("{base}{p}")).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{p}: {}", r.status());
        let page: serde_json::Value = r.json().await.unwrap();
        items.extend(page["results"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_string);
    }
    items
}

/// The stores a measurement (an ignored test for docs/perf.md) runs on, with their names: the
/// embedded one, and DynamoDB Local when it runs.
pub fn measured_backends() -> Vec<(&'static str, Backend)> {
    let mut backends = vec![("embedded", Backend::Embedded)];
    backends.extend(Backend::dynamodb().map(|b| ("DynamoDB Local", b)));
    backends
}

/// The median of some timings.
pub fn median(mut timings: Vec<f64>) -> f64 {
    timings.sort_by(f64::total_cmp);
    timings[timings.len() / 2]
}

/// Walks a store-paged list (`{count, next, previous, results}` with cursors) `size` items a page
/// and checks it as a client sees it: `count` is `total` on every page, every page but the last
/// is full, `previous` from the last page walks back through the same pages, and `?page=2` is
/// the second page. Returns the items in list order.
pub async fn walk_pages(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    size: usize,
    total: usize,
) -> Vec<serde_json::Value> {
    let get = |p: String| async move {
        let r = client.get(format!("{base}{p}")).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success(), "{p}: {}", r.status());
        r.json::<serde_json::Value>().await.unwrap()
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let first = format!("{path}{sep}page_size={size}");
    let mut pages: Vec<serde_json::Value> = Vec::new();
    let mut next = Some(first.clone());
    while let Some(p) = next {
        let page = get(p.clone()).await;
        assert_eq!(page["count"].as_u64(), Some(total as u64), "{p}: {page}");
        assert!(pages.len() <= total, "{path}: more pages than items");
        next = page["next"].as_str().map(str::to_string);
        pages.push(page);
    }
    let results = |page: &serde_json::Value| page["results"].as_array().unwrap().clone();
    for (i, page) in pages.iter().enumerate() {
        let n = results(page).len();
        let last = i + 1 == pages.len();
        assert!(if last { n <= size && (n > 0 || total == 0) } else { n == size }, "{path} page {}: {n} items", i + 1);
    }
    assert!(pages[0]["previous"].is_null(), "{path}: {}", pages[0]);
    // Back from the last page, page by page.
    let mut at = pages.len() - 1;
    let mut previous = pages[at]["previous"].as_str().map(str::to_string);
    while let Some(p) = previous {
        let page = get(p.clone()).await;
        at -= 1;
        assert_eq!(results(&page), results(&pages[at]), "{p}");
        previous = page["previous"].as_str().map(str::to_string);
    }
    assert_eq!(at, 0, "{path}: previous walks back to the first page");
    if pages.len() >= 2 {
        assert_eq!(results(&get(format!("{first}&page=2")).await), results(&pages[1]), "{path}?page=2");
    }
    let items: Vec<serde_json::Value> = pages.iter().flat_map(results).collect();
    assert_eq!(items.len(), total, "{path}");
    items
}

/// Every room's balance is the sum of its ledger, and each entry's balance_after adds up.
pub async fn check_ledgers<'a>(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    rooms: impl IntoIterator<Item = &'a String>,
) {
    for room in rooms {
        let mut entries = all_pages(client, base, admin, &format!("/api/admin/rooms/{room}/ledger/")).await;
        entries.reverse();
        let mut running = 0;
        for e in &entries {
            running += e["amount"].as_i64().unwrap();
            assert_eq!(e["balance_after"].as_i64().unwrap(), running, "room {room}: {e}");
        }
        let r = client.get(format!("{base}/api/admin/rooms/{room}/")).bearer_auth(admin).send().await.unwrap();
        let detail: serde_json::Value = r.json().await.unwrap();
        assert_eq!(Some(running), detail["balance"].as_i64(), "room {room}: ledger sum vs balance");
    }
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A fresh data directory.
pub fn data_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(&format!("premises-{prefix}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `premises` binary running as `cargo run` runs it.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub mqtt: SocketAddr,
    pub data_dir: PathBuf,
    pub table: String,
}

impl Server {
    pub async fn start(backend: &Backend) -> Server {
        Self::start_in(backend, data_dir("server"), unique("e2e")).await
    }

    /// Starts with extra environment variables.
    pub async fn start_with_env(backend: &Backend, env: &[(&str, &str)]) -> Server {
        Self::start_in_with_env(backend, data_dir("server"), unique("e2e"), env).await
    }

    /// Starts on a given data directory and table (to test restarts).
    pub async fn start_in(backend: &Backend, data_dir: PathBuf, table: String) -> Server {
        Self::start_in_with_env(backend, data_dir, table, &[]).await
    }

    /// Starts on a given data directory and table with extra environment variables.
    pub async fn start_in_with_env(
        backend: &Backend,
        data_dir: PathBuf,
        table: String,
        env: &[(&str, &str)],
    ) -> Server {
        // Port 0: the child binds what the kernel gives it and prints the addresses (`MQTT  mqtt://…`,
        // then `HTTP  http://…` last), so no port is chosen here that another test could take first.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_premises"));
        cmd.env("PREMISES_HTTP_ADDR", "127.0.0.1:0")
            .env("PREMISES_MQTT_ADDR", "127.0.0.1:0")
            .env("PREMISES_DATA_DIR", &data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in backend.env(&table) {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start premises");
        let stdout = child.stdout.take().expect("piped stdout");
        // Reads the start lines, hands the addresses over, then keeps draining stdout so that the
        // child's later lines ("stopping", "stopped") never meet a closed pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut mqtt = None;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("MQTT  mqtt://") {
                    mqtt = addr.parse::<SocketAddr>().ok();
                } else if let Some(addr) = line.strip_prefix("HTTP  http://")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send((addr.to_string(), mqtt));
                }
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            mqtt: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            table,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let (http, mqtt) = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addrs) => break addrs,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("premises exited before listening"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let exited = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                    assert!(exited.is_none(), "premises exited before listening: {exited:?}");
                    assert!(Instant::now() < deadline, "premises did not listen within 60 s");
                }
            }
        };
        server.base = format!("http://{http}");
        if let Some(mqtt) = mqtt {
            server.mqtt = mqtt;
        }
        let client = reqwest::Client::new();
        loop {
            let health = client.get(format!("{}/health/", server.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "premises did not answer on {} within 60 s", server.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The stack in this process on `clock` rather than a child on the system clock: a manual
    /// clock moves the queue's visibility timeouts on demand instead of waiting them out. It gets
    /// the variables a child would; the `Server` names its addresses and data directory and the
    /// `Stack` keeps it running (drop both to stop it).
    pub async fn in_process(
        backend: &Backend,
        env: &[(&str, &str)],
        clock: shared::platform::clock::Clock,
    ) -> (premises_local::Stack, Server) {
        let (data_dir, table) = (data_dir("server"), unique("e2e"));
        let mut vars: Vec<(String, String)> = vec![
            ("PREMISES_HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("PREMISES_MQTT_ADDR".into(), "127.0.0.1:0".into()),
            ("PREMISES_DATA_DIR".into(), data_dir.display().to_string()),
        ];
        vars.extend(backend.env(&table));
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = shared::platform::config::Config::from_vars(vars).expect("the variables make a config");
        let sdk = match backend {
            Backend::Dynamodb(endpoint) => Some(dynamodb_sdk(endpoint).await),
            Backend::Embedded => None,
        };
        let options = premises_local::Options { sdk, ..premises_local::Options::default() };
        let stack = premises_local::Stack::start(config, clock, options).await.expect("the stack starts");
        let server = Server {
            child: None,
            base: format!("http://{}", stack.http_addr),
            mqtt: stack.mqtt_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir,
            table,
        };
        (stack, server)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "premises did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A request a [`StandIn`] received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A stand-in HTTP provider (Twilio, Telegram, the bank): answers each request with the
/// next scripted status and body (the last one repeats) and records what it received.
pub struct StandIn {
    pub base: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl StandIn {
    /// Answers `{}` with each status in turn.
    pub async fn start(statuses: &[u16]) -> StandIn {
        let replies: Vec<(u16, &str)> = statuses.iter().map(|s| (*s, "{}")).collect();
        Self::scripted(&replies, Duration::ZERO).await
    }

    /// Answers each request with the next (status, JSON body), after `delay`.
    pub async fn scripted(replies: &[(u16, &str)], delay: Duration) -> StandIn {
        let statuses: Vec<(u16, String)> = replies.iter().map(|(s, b)| (*s, b.to_string())).collect();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let statuses = std::sync::Arc::new(std::sync::Mutex::new(statuses.to_vec()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let (log, statuses) = (log.clone(), statuses.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_string();
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                                })
                                .unwrap_or(0usize);
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end - 4]).to_string();
                    let mut lines = head.lines();
                    let mut first = lines.next().unwrap_or("").split_whitespace();
                    let (method, path) =
                        (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
                    let headers = lines
                        .filter_map(|l| {
                            l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        })
                        .collect();
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    log.lock().unwrap().push(Received { method, path, headers, body });
                    let (status, body) = {
                        let mut s = statuses.lock().unwrap();
                        if s.len() > 1 { s.remove(0) } else { s.first().cloned().unwrap_or((200, "{}".into())) }
                    };
                    tokio::time::sleep(delay).await;
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        StandIn { base, received }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}
