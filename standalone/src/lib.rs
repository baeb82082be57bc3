//! The standalone Parley server: every service in one process, on the
//! embedded backends (in-process bus and cluster state, SQLite stores under
//! the data directory, keys generated on first run). Each can be pointed
//! at its production backend instead: `PARLEY_MONGODB_URI` (the stores),
//! `PARLEY_AMQP_URL` (the bus), `PARLEY_REDIS_URL` (cluster state and
//! broadcasts, so several standalone servers can serve one chat).
//!
//! [`Application::build`] takes [`Settings`] and binds; the binary and the
//! tests then call [`Application::run_until_stopped`]. Shutdown order:
//! disconnect sockets, stop HTTP, close the bus, let db-writer drain.

pub mod files;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use service_kit::bus::{Durability, EventBus};
use service_kit::config::{ConfigError, Env};
use service_kit::ops::Ops;
use socket_gateway::cluster::{ClusterPresence, ClusterState, InProcessCluster};
use socket_gateway::directory::EmbeddedDirectory;
use socket_gateway::{Gateway, GatewayConfig, GatewayDeps};
use tokio::net::TcpListener;

/// How long shutdown waits for in-flight HTTP requests.
pub const HTTP_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Largest HTTP request body the JSON APIs accept.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

/// Everything the standalone server is configured by.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (`PARLEY_ADDR`, default `127.0.0.1:8080`; port 0 picks one).
    pub addr: String,
    /// Data directory (`PARLEY_DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    /// auth's settings.
    pub auth: auth::AuthConfig,
    /// The gateway's limits.
    pub gateway: GatewayConfig,
    /// Web push (VAPID key, push limits).
    pub notifier: notifier::NotifierConfig,
    /// Attachments (backend, limits, allowed types).
    pub files: file_service::FilesConfig,
    /// RabbitMQ instead of the in-process bus.
    pub amqp: Option<service_kit::amqp::AmqpConfig>,
    /// Redis for cluster state and broadcasts instead of in-process ones.
    pub redis: Option<socket_gateway::redis::RedisConfig>,
}

impl Settings {
    /// Reads every `PARLEY_*` setting; errors name the variable.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let data_dir: PathBuf = env.string_or("PARLEY_DATA_DIR", "./data").into();
        let addr = env.string_or("PARLEY_ADDR", "127.0.0.1:8080");
        if addr.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "PARLEY_ADDR",
                &addr,
                "expected host:port, e.g. 127.0.0.1:8080",
            ));
        }
        Ok(Self {
            addr,
            auth: auth::AuthConfig::from_env(env, data_dir.clone())?,
            gateway: GatewayConfig::from_env(env)?,
            notifier: notifier::NotifierConfig::from_env(env, data_dir.clone())?,
            files: file_service::FilesConfig::from_env(env, data_dir.clone())?,
            amqp: service_kit::amqp::AmqpConfig::from_env(env)?,
            redis: socket_gateway::redis::RedisConfig::from_env(env)?,
            data_dir,
        })
    }

    /// Defaults on a given data directory and port 0 (tests).
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            addr: "127.0.0.1:0".into(),
            auth: auth::AuthConfig::with_data_dir(data_dir.clone()),
            gateway: GatewayConfig::default(),
            notifier: notifier::NotifierConfig::with_data_dir(data_dir.clone()),
            files: file_service::FilesConfig::with_data_dir(data_dir.clone()),
            amqp: None,
            redis: None,
            data_dir,
        }
    }
}

/// A built, bound server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    bus: Arc<dyn EventBus>,
    db_writer: db_writer::DbWriterApp,
    gateway: Gateway,
    auth: auth::AuthApp,
    notifier: notifier::NotifierApp,
}

impl Application {
    /// Opens the stores, starts the consumers and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
        let registry = prometheus::Registry::new();
        // The in-process bus makes a durable consumer part of the publish;
        // on a broker the gateway's membership feed dies with it instead.
        let feed = if settings.amqp.is_some() {
            Durability::Transient
        } else {
            Durability::Durable
        };
        let bus = service_kit::runtime::event_bus(settings.amqp.clone()).await?;
        let dyn_bus = bus.clone();
        let redis = match &settings.redis {
            Some(cfg) => {
                Some(socket_gateway::redis::connect(cfg, settings.gateway.replay_buffer).await?)
            }
            None => None,
        };

        // auth announces users on the bus: db-writer subscribes during its
        // build, before the server accepts a single request.
        let auth_cfg = settings.auth.clone();
        let auth = auth::AuthApp::build(auth_cfg, dyn_bus.clone(), &registry).await?;
        let verifier = auth.verifier();
        let jwks_path = settings.data_dir.join("jwks.json");
        std::fs::write(
            &jwks_path,
            serde_json::to_vec_pretty(&auth.service().keys().jwks())?,
        )
        .with_context(|| format!("cannot write {}", jwks_path.display()))?;
        let db_writer = db_writer::DbWriterApp::build(
            db_writer::DbWriterConfig {
                data_dir: settings.data_dir.clone(),
                batch: Default::default(),
                mongo: settings.auth.mongo.clone(),
            },
            dyn_bus.clone(),
            verifier.clone(),
            &registry,
        )
        .await?;
        // One cluster state: the gateway writes presence, the notifier reads it.
        let cluster: Arc<dyn ClusterState> = match &redis {
            Some(r) => r.cluster.clone(),
            None => Arc::new(InProcessCluster::new(settings.gateway.replay_buffer)),
        };
        let notifier = notifier::NotifierApp::build(
            settings.notifier.clone(),
            notifier::NotifierDeps {
                bus: dyn_bus.clone(),
                verifier: verifier.clone(),
                presence: Arc::new(ClusterPresence(cluster.clone())),
            },
            &registry,
        )
        .await?;
        // Subscribes to membership events before any room can be created.
        let files = file_service::FileServiceApp::build(
            settings.files.clone(),
            file_service::FileServiceDeps {
                bus: dyn_bus.clone(),
                verifier: verifier.clone(),
            },
            &registry,
        )
        .await?;
        let deps = GatewayDeps {
            bus: dyn_bus.clone(),
            verifier,
            directory: Arc::new(EmbeddedDirectory(db_writer.store())),
            attachments: Arc::new(files::EmbeddedAttachments(files.resolver())),
            cluster,
            feed,
        };
        let gateway = match redis {
            Some(redis) => {
                Gateway::build_clustered(settings.gateway.clone(), deps, &registry, redis).await?
            }
            None => Gateway::build(settings.gateway.clone(), deps, &registry).await?,
        };

        let ops = Ops::new(registry.clone())
            .check(auth.ready_check())
            .check(db_writer.ready_check())
            .check(notifier.ready_check())
            .check(files.ready_check())
            .check(Arc::new(service_kit::ops::BusCheck(dyn_bus)));
        let api = auth
            .router()
            .merge(db_writer.router())
            .merge(notifier.router())
            .layer(DefaultBodyLimit::max(MAX_HTTP_BODY));
        // Uploads stream under their own limit, outside the JSON body limit.
        let routes = api
            .merge(files.router())
            .merge(web::router())
            .merge(ops.router());
        let router = gateway
            .wrap(service_kit::ops::with_error_handling(routes, &registry))
            .layer(tower_http::trace::TraceLayer::new_for_http());

        let listener = TcpListener::bind(&settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        Ok(Self {
            listener,
            router,
            bus,
            db_writer,
            gateway,
            auth,
            notifier,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The auth service (tests mint tokens with it).
    pub fn auth(&self) -> &auth::AuthApp {
        &self.auth
    }

    /// Serves until `shutdown` resolves, then drains: sockets are
    /// disconnected, HTTP stops, the bus closes and db-writer finishes
    /// every event it was handed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            bus,
            db_writer,
            gateway,
            auth: _,
            notifier,
        } = self;
        let gateway = Arc::new(gateway);
        let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
        let closer = {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!("shutting down: disconnecting sockets");
                gateway.close().await;
                let _ = stop_http.send(true);
            })
        };
        let mut stopping = http_stopped.clone();
        let server = service_kit::serve(listener, router, async move {
            let _ = stopping.wait_for(|s| *s).await;
        });
        // In-flight requests get a bounded drain: a long-poll whose client
        // vanished would otherwise hold the shutdown until its ping timeout.
        let mut stopping = http_stopped;
        let deadline = async move {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(HTTP_DRAIN).await;
        };
        tokio::select! {
            res = server => res.context("HTTP server failed")?,
            () = deadline => tracing::warn!("HTTP drain timed out; closing remaining connections"),
        }
        closer.abort();
        bus.close().await;
        db_writer.drained().await;
        notifier.drained().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
