//! The gateway as its own process.
//!
//! A gateway needs an event bus and a chat directory shared with db-writer;
//! until their production implementations (RabbitMQ, db-writer's HTTP read
//! API, Redis) are configured, there is nothing for a lone gateway to
//! share, so this binary says so and exits. The standalone server runs the
//! same gateway library in one process with every other service.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "socket-gateway cannot run alone yet: it needs the event bus and chat store it \
         shares with db-writer. Run the standalone server (`cargo run --release`), \
         which includes the gateway"
    )
}
