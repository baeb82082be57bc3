//! Sending: the push queue, its workers, and what each answer of a push
//! service means.
//!
//! The bus consumer only *queues* pushes (a bounded channel) and settles its
//! delivery at once; the dispatcher here runs each push as its own task,
//! with at most `concurrency` requests in flight overall and
//! `concurrency_per_service` per push-service origin. Retries sleep without
//! holding either limit. One `reqwest` client keeps connections alive per
//! push service.
//!
//! Answers (RFC 8030 and the push services' documentation): 2xx → done;
//! 404/410 → the subscription is gone, delete it; 429 → retry after
//! `Retry-After`; 5xx, timeouts and connection errors → retry with
//! exponential backoff and jitter; other 4xx (400, 401, 403, 413) → our
//! request is wrong, log it and do not retry. A push that runs out of
//! attempts is dead-lettered: counted, logged, and kept in a bounded
//! in-memory list ([`Pusher::dead_letters`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared_models::MessageId;
use tokio::sync::{Semaphore, broadcast, mpsc};
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, WebPushMessageBuilder};

use crate::metrics::Metrics;
use crate::store::{StoredSubscription, SubscriptionId, SubscriptionStore};
use crate::vapid::{VapidError, VapidSigner, audience};

/// Dead letters kept for inspection; the oldest go first.
pub const MAX_DEAD_LETTERS: usize = 1000;

/// One push to one subscription.
#[derive(Debug, Clone)]
pub struct PushJob {
    /// Where to.
    pub subscription: StoredSubscription,
    /// The message it announces.
    pub message: MessageId,
    /// The plaintext JSON payload.
    pub payload: Arc<[u8]>,
    /// The `Topic` header (pushes with one topic replace each other).
    pub topic: String,
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The push service took it.
    Delivered,
    /// The subscription was gone (404/410) and has been deleted.
    Expired,
    /// The push service refused the request for good (its status).
    Rejected(u16),
    /// Retries ran out (the last status, or 0 for a network error).
    GaveUp(u16),
    /// The request could not be built (bad keys; logged).
    Invalid,
}

/// A finished push, as reported to [`Pusher::events`] listeners.
#[derive(Debug, Clone)]
pub struct PushEvent {
    /// The subscription.
    pub subscription: SubscriptionId,
    /// The message.
    pub message: MessageId,
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
}

/// Sending knobs (part of [`crate::config::NotifierConfig`]).
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Pushes in flight at once (`PARLEY_PUSH_CONCURRENCY`, default 64).
    pub concurrency: usize,
    /// Pushes in flight to one push service (`PARLEY_PUSH_CONCURRENCY_PER_SERVICE`, default 16).
    pub concurrency_per_service: usize,
    /// Attempts per push before it is dead-lettered (`PARLEY_PUSH_MAX_ATTEMPTS`, default 5).
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter (`PARLEY_PUSH_RETRY_BASE_MS`, default 500).
    pub retry_base: Duration,
    /// Longest wait before a retry, `Retry-After` included (`PARLEY_PUSH_RETRY_MAX_SECS`, default 300).
    pub retry_max: Duration,
    /// One request's timeout (`PARLEY_PUSH_TIMEOUT_SECS`, default 10).
    pub request_timeout: Duration,
    /// How long a push service keeps an undelivered push (`PARLEY_PUSH_TTL_SECS`, default 86400).
    pub ttl: Duration,
    /// Pushes waiting to be sent before new ones are dropped (`PARLEY_PUSH_QUEUE`, default 10000).
    pub queue_capacity: usize,
}

/// An encrypted, signed request, ready to (re)send.
#[derive(Debug, Clone)]
pub struct BuiltPush {
    /// The endpoint.
    pub endpoint: String,
    /// Headers (`TTL`, `Urgency`, `Topic`, `Content-Encoding`, `Authorization`).
    pub headers: Vec<(&'static str, String)>,
    /// The aes128gcm body.
    pub body: Vec<u8>,
}

/// Builds the request for a push: RFC 8291 encryption and the VAPID header.
pub fn build_push(
    signer: &VapidSigner,
    sub: &StoredSubscription,
    payload: &[u8],
    topic: &str,
    ttl: Duration,
    cached_jwt: bool,
) -> Result<BuiltPush, BuildError> {
    let info = SubscriptionInfo::new(
        sub.endpoint.as_str(),
        sub.p256dh.as_str(),
        sub.auth.as_str(),
    );
    let sig = if cached_jwt {
        signer.signature_for(&info)?
    } else {
        signer.sign_uncached(&info)?
    };
    let mut b = WebPushMessageBuilder::new(&info);
    b.set_payload(ContentEncoding::Aes128Gcm, payload);
    b.set_ttl(u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX));
    b.set_urgency(Urgency::Normal);
    b.set_topic(topic.to_owned());
    b.set_vapid_signature(sig);
    let msg = b.build().map_err(|e| BuildError::WebPush(e.to_string()))?;
    let payload = msg
        .payload
        .ok_or_else(|| BuildError::WebPush("no payload".into()))?;
    let mut headers = vec![
        ("TTL", msg.ttl.to_string()),
        (
            "Content-Encoding",
            payload.content_encoding.to_str().to_owned(),
        ),
        ("Content-Type", "application/octet-stream".to_owned()),
    ];
    if let Some(u) = msg.urgency {
        headers.push(("Urgency", u.to_string()));
    }
    if let Some(t) = msg.topic {
        headers.push(("Topic", t));
    }
    headers.extend(payload.crypto_headers);
    Ok(BuiltPush {
        endpoint: sub.endpoint.clone(),
        headers,
        body: payload.content,
    })
}

/// A push request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Signing failed.
    #[error(transparent)]
    Vapid(#[from] VapidError),
    /// Encryption or message building failed (e.g. bad subscription keys).
    #[error("web push: {0}")]
    WebPush(String),
}

/// The sender: a queue, its dispatcher, and the HTTP client.
pub struct Pusher {
    tx: mpsc::Sender<PushJob>,
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    signer: VapidSigner,
    store: Arc<dyn SubscriptionStore>,
    config: SendConfig,
    metrics: Metrics,
    global: Arc<Semaphore>,
    per_service: Mutex<HashMap<String, Arc<Semaphore>>>,
    dead: Mutex<VecDeque<PushEvent>>,
    events: broadcast::Sender<PushEvent>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pusher")
    }
}

impl Pusher {
    /// Starts the dispatcher; it stops when the `Pusher` is dropped and
    /// the queue has drained.
    pub fn start(
        signer: VapidSigner,
        store: Arc<dyn SubscriptionStore>,
        config: SendConfig,
        metrics: Metrics,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(config.concurrency_per_service)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            client,
            signer,
            store,
            global: Arc::new(Semaphore::new(config.concurrency)),
            config,
            metrics,
            per_service: Mutex::new(HashMap::new()),
            dead: Mutex::new(VecDeque::new()),
            events,
        });
        let task = tokio::spawn(dispatch(rx, inner.clone()));
        Ok((Self { tx, inner }, task))
    }

    /// Queues a push without waiting; false (and counted) when the queue is full.
    pub fn enqueue(&self, job: PushJob) -> bool {
        match self.tx.try_send(job) {
            Ok(()) => {
                self.inner.metrics.queued.inc();
                true
            }
            Err(e) => {
                self.inner.metrics.dropped.inc();
                tracing::warn!(error = %e, "push queue full, dropping a push");
                false
            }
        }
    }

    /// Finished pushes, as they finish (tests and the benchmark listen).
    pub fn events(&self) -> broadcast::Receiver<PushEvent> {
        self.inner.events.subscribe()
    }

    /// The most recent pushes that ran out of retries.
    pub fn dead_letters(&self) -> Vec<PushEvent> {
        self.inner
            .dead
            .lock()
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The signer (the benchmark measures its cost).
    pub fn signer(&self) -> &VapidSigner {
        &self.inner.signer
    }
}

async fn dispatch(mut rx: mpsc::Receiver<PushJob>, inner: Arc<Inner>) {
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(job) = rx.recv().await {
        // Each push is a task; the semaphores inside bound the requests in
        // flight, and the channel's capacity bounds what waits.
        tasks.spawn(send_job(inner.clone(), job));
        while tasks.try_join_next().is_some() {}
    }
    // The queue closed (shutdown): let the pushes in flight finish.
    while tasks.join_next().await.is_some() {}
}

fn service_limit(inner: &Inner, origin: &str) -> Arc<Semaphore> {
    let mut map = match inner.per_service.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(origin.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(inner.config.concurrency_per_service)))
        .clone()
}

enum Attempt {
    Done(Outcome),
    Retry {
        after: Option<Duration>,
        status: u16,
    },
}

async fn send_job(inner: Arc<Inner>, job: PushJob) {
    let started = Instant::now();
    let built = match build_push(
        &inner.signer,
        &job.subscription,
        &job.payload,
        &job.topic,
        inner.config.ttl,
        true,
    ) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(subscription = %job.subscription.id, error = %e, "cannot build push");
            inner.metrics.failed.inc();
            finish(&inner, &job, Outcome::Invalid, 0);
            return;
        }
    };
    let origin = audience(&built.endpoint).unwrap_or_default();
    let limit = service_limit(&inner, &origin);
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let result = {
            let Ok(_global) = inner.global.acquire().await else {
                return;
            };
            let Ok(_service) = limit.acquire().await else {
                return;
            };
            attempt(&inner, &built).await
        };
        match result {
            Attempt::Done(o) => break o,
            Attempt::Retry { after, status } => {
                if attempts >= inner.config.max_attempts {
                    break Outcome::GaveUp(status);
                }
                inner.metrics.retried.inc();
                let wait = after
                    .unwrap_or_else(|| backoff(inner.config.retry_base, attempts))
                    .min(inner.config.retry_max);
                tracing::debug!(subscription = %job.subscription.id, status, wait_ms = wait.as_millis() as u64, "push will be retried");
                tokio::time::sleep(wait).await;
            }
        }
    };
    inner
        .metrics
        .send_seconds
        .observe(started.elapsed().as_secs_f64());
    match &outcome {
        Outcome::Delivered => inner.metrics.sent.inc(),
        Outcome::Expired => {
            inner.metrics.expired.inc();
            if let Err(e) = inner.store.delete_expired(job.subscription.id).await {
                tracing::error!(subscription = %job.subscription.id, error = %e, "cannot delete expired subscription");
            }
        }
        Outcome::Rejected(status) => {
            inner.metrics.failed.inc();
            tracing::warn!(subscription = %job.subscription.id, origin = %origin, status, "push service refused the push");
        }
        Outcome::GaveUp(status) => {
            inner.metrics.failed.inc();
            inner.metrics.dead_lettered.inc();
            tracing::warn!(subscription = %job.subscription.id, origin = %origin, status, attempts, "push dead-lettered after its last retry");
        }
        Outcome::Invalid => inner.metrics.failed.inc(),
    }
    finish(&inner, &job, outcome, attempts);
}

fn finish(inner: &Inner, job: &PushJob, outcome: Outcome, attempts: u32) {
    let ev = PushEvent {
        subscription: job.subscription.id,
        message: job.message,
        outcome,
        attempts,
    };
    if matches!(ev.outcome, Outcome::GaveUp(_))
        && let Ok(mut d) = inner.dead.lock()
    {
        if d.len() >= MAX_DEAD_LETTERS {
            d.pop_front();
        }
        d.push_back(ev.clone());
    }
    // Nobody listening is the normal case.
    let _ = inner.events.send(ev);
}

/// Exponential backoff with jitter: half the doubled delay fixed, half random.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let half = exp / 2;
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.0..=1.0);
    half + half.mul_f64(jitter)
}

/// `Retry-After`: delta-seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono_like_http_date(v)?;
    Some(
        when.saturating_sub(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?,
        ),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into time since the epoch.
fn chrono_like_http_date(s: &str) -> Option<Duration> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == mon)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs).ok().map(Duration::from_secs)
}

async fn attempt(inner: &Inner, built: &BuiltPush) -> Attempt {
    let mut req = inner.client.post(&built.endpoint);
    for (k, v) in &built.headers {
        req = req.header(*k, v);
    }
    match req.body(built.body.clone()).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let after = retry_after(res.headers());
            // Read the (small) body so the connection goes back to the pool.
            let _ = res.bytes().await;
            match status {
                200..=299 => Attempt::Done(Outcome::Delivered),
                404 | 410 => Attempt::Done(Outcome::Expired),
                429 => Attempt::Retry { after, status },
                500..=599 => Attempt::Retry { after, status },
                _ => Attempt::Done(Outcome::Rejected(status)),
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "push request failed");
            Attempt::Retry {
                after: None,
                status: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_backoff() {
        assert_eq!(
            chrono_like_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::from_secs(784_111_777))
        );
        assert_eq!(chrono_like_http_date("yesterday"), None);
        for attempt in 1..6 {
            let b = backoff(Duration::from_millis(100), attempt);
            let full = Duration::from_millis(100) * (1 << (attempt - 1));
            assert!(b >= full / 2 && b <= full, "{b:?}");
        }
    }
}
