#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run("security-alerts-resolve").await
}
