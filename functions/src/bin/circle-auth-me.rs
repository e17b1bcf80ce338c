#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::circle::CIRCLE_AUTH_ME).await
}
