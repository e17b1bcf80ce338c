#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::rfid::ADMIN_RFID_BLACKLIST).await
}
