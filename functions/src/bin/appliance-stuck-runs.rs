#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("appliance-stuck-runs").await
}
