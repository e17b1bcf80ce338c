#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::bank::handlers::ADMIN_BANK_IMPORT).await
}
