//! The ceiling for Parley's persisted message rate: a bare `lapin`
//! publisher with publisher confirms and a consumer with manual acks, on
//! the same broker, with the same persistence (durable queue, persistent
//! messages) and a similar payload size.
//!
//! `broker-raw [messages] [in-flight]` prints one line of JSON:
//! `{"messages":…,"publish_per_sec":…,"end_to_end_per_sec":…}`.
//! The AMQP URL comes from `PARLEY_AMQP_URL` (default local guest).

use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let window: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let url = std::env::var("PARLEY_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let queue = format!("bench-raw-{}", uuid::Uuid::new_v4().simple());
    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let publisher = conn.create_channel().await?;
    publisher
        .queue_declare(
            queue.clone().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let consumer_ch = conn.create_channel().await?;
    consumer_ch
        .basic_qos(512, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_ch
        .basic_consume(
            queue.clone().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // A chat envelope's size: ~400 bytes of JSON.
    let payload = vec![b'x'; 400];
    let started = Instant::now();
    let consume = tokio::spawn(async move {
        let mut seen = 0usize;
        while let Some(d) = consumer.next().await {
            let d = d?;
            seen += 1;
            // Batched acks (`multiple`), as db-writer settles a batch.
            if seen.is_multiple_of(64) || seen == n {
                d.acker.ack(BasicAckOptions { multiple: true }).await?;
            }
            if seen == n {
                break;
            }
        }
        anyhow::Ok(started.elapsed())
    });
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    for _ in 0..n {
        if in_flight.len() >= window
            && let Some(res) = in_flight.next().await
        {
            let confirm: lapin::Confirmation = res?;
            anyhow::ensure!(confirm.is_ack(), "broker refused a publish");
        }
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.clone().into(),
                BasicPublishOptions::default(),
                &payload,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        in_flight.push(confirm);
    }
    while let Some(res) = in_flight.next().await {
        anyhow::ensure!(res?.is_ack(), "broker refused a publish");
    }
    let published = started.elapsed();
    let consumed = consume.await??;
    publisher
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await?;
    let rate = |d: std::time::Duration| (n as f64 / d.as_secs_f64()).round();
    let line = format!(
        "{{\"messages\":{n},\"publish_per_sec\":{},\"end_to_end_per_sec\":{}}}",
        rate(published),
        rate(consumed)
    );
    // The benchmark's output is its result.
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    Ok(())
}
