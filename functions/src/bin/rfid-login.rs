#[tokio::main]
async fn main() -> Result<(), shared::Error> {
    shared::platform::lambda::run(&shared::identity::rfid::RFID_LOGIN).await
}
