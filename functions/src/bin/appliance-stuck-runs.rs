#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::catalog::APPLIANCE_STUCK_RUNS).await
}
