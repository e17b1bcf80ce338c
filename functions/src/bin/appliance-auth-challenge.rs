#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::appliances::handlers::APPLIANCE_AUTH_CHALLENGE).await
}
