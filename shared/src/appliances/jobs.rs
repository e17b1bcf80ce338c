//! Scheduled jobs of the appliances module.

use crate::App;
use crate::platform::function::{Function, Uses};

use super::admin::runs_with_status;
use super::model::RunStatus;
use super::service;

pub const STUCK_RUNS_SCHEDULE: &str = "rate(5 minutes)";

pub const APPLIANCE_STUCK_RUNS: Function = Function::schedule(
    "appliance-stuck-runs",
    "Abort runs running too long (appliances)",
    STUCK_RUNS_SCHEDULE,
    |app, _| Box::pin(abort_stuck_runs(app)),
)
.uses(&[Uses::TableWrite, Uses::Publish("appliance")]);

/// Aborts runs running longer than `PREMISES_MAX_RUN_MINUTES` (full refund,
/// abort command). Reads only the `running` partition of GSI2, oldest first,
/// and stops at the first run that is young enough.
pub async fn abort_stuck_runs(app: &'static App) -> anyhow::Result<()> {
    let cutoff = app.clock.now_secs() - app.config.max_run_minutes * 60;
    let running = runs_with_status(app, RunStatus::Running).await?;
    let mut aborted = 0;
    for run in running.iter().take_while(|r| r.started_at <= cutoff) {
        match service::abort(app, run, "stuck_run_job").await {
            Ok(()) => aborted += 1,
            // Finished meanwhile: nothing to do.
            Err(e) if e.code == "run_not_running" => {}
            Err(e) => anyhow::bail!("aborting run {}: {} ({})", run.run_id, e.message, e.code),
        }
    }
    tracing::info!(aborted, "stuck runs aborted");
    Ok(())
}
