//! The gateway as its own process: see the standalone server for the
//! composed deployment. Until the distributed backends exist, a lone
//! gateway runs on embedded ones (`PARLEY_DATA_DIR`, `PARLEY_GATEWAY_ADDR`).

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "socket-gateway needs a chat store and an event bus shared with db-writer; \
         run the standalone server (`cargo run --release`) until the distributed \
         deployment is configured"
    )
}
