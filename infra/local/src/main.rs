//! `premises`: the local stack (`cargo run`) and its operations.
//!
//! ```text
//! premises [serve]          serve every catalog function (HTTP, MQTT, queues, schedules)
//! premises run-job <name>   run a scheduled job now
//! premises functions        list the catalog
//! premises openapi          print the API document (OpenAPI 3.1 JSON; `> docs/openapi.json`)
//! premises create-admin     create the admin of PREMISES_ADMIN_EMAIL/PASSWORD if absent
//! ```

use std::process::ExitCode;

use premises_local::{Options, Stack, build_app, run_job};
use shared::catalog;
use shared::platform::clock::Clock;
use shared::platform::config::Config;
use shared::platform::function::Trigger;
use shared::platform::telemetry;

const USAGE: &str = "usage: premises [serve | run-job <name> | functions | openapi | create-admin | help]";

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_local();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => serve().await,
        ["run-job", name] => job(name).await,
        ["create-admin"] => create_admin().await,
        ["functions"] => {
            list();
            Ok(())
        }
        ["openapi"] => {
            print!("{}", shared::api_doc::document_json());
            Ok(())
        }
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("premises: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let shutdown = shutdown_signal()?;
    let warnings = config.dev_exposure_warnings();
    let stack = Stack::start(config, Clock::System, Options::default()).await?;
    let c = &stack.app.config;
    // Loud on purpose: dev mode on a reachable address hands out login codes and accepts a
    // published key. Printed to stderr (whatever RUST_LOG says) and logged.
    for warning in &warnings {
        eprintln!("WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    println!("premises {} (store: {:?}, data: {})", env!("CARGO_PKG_VERSION"), c.store, c.data_dir.display());
    if let Some(mqtt) = stack.mqtt_addr {
        println!("MQTT  mqtt://{mqtt}");
    }
    // The last line of the start, once everything listens: whoever started premises on port 0
    // (the tests) reads the addresses it bound from these lines.
    println!("HTTP  http://{}", stack.http_addr);
    shutdown.await;
    println!("stopping: draining in-flight work");
    stack.stop().await;
    println!("stopped");
    Ok(())
}

async fn job(name: &str) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    // A one-off job must not fight a running stack for its ports.
    config.mqtt_addr.set_port(0);
    let app = build_app(config, Clock::System, catalog::queues(), None, None).await?;
    run_job(app, catalog::functions(), name).await?;
    println!("{name}: done");
    Ok(())
}

async fn create_admin() -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    let Some(email) = config.admin.as_ref().map(|a| a.email.clone()) else {
        anyhow::bail!("PREMISES_ADMIN_EMAIL and PREMISES_ADMIN_PASSWORD must be set");
    };
    config.mqtt_addr.set_port(0);
    // build_app creates the admin when absent (as every start of the stack does).
    let app = build_app(config, Clock::System, catalog::queues(), None, None).await?;
    let existing = shared::identity::service::find_by_email(app, &email).await?;
    match existing {
        Some(user) => println!("admin {email}: present (id {}, role {})", user.id, user.role.as_str()),
        None => anyhow::bail!("admin {email} was not created"),
    }
    Ok(())
}

fn list() {
    for f in catalog::functions() {
        let trigger = match &f.trigger {
            Trigger::Http(route) => format!("{} {}", route.method, route.path),
            Trigger::Queue { queue, .. } => format!("queue {}", queue.name),
            Trigger::IotRule { sql, .. } => format!("iot {sql}"),
            Trigger::Schedule { expression, .. } => format!("schedule {expression}"),
        };
        println!("{:<32} {trigger}", f.name);
    }
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is
/// called, so a signal that arrives while the stack starts is not lost (and
/// does not kill the process before it can drain).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
