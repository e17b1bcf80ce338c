#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::appliances::jobs::APPLIANCE_STUCK_RUNS).await
}
