//! The file service's configuration, read from `PARLEY_*` variables.
//!
//! Every error names the variable; nothing is bound before the whole
//! configuration parsed.

use std::path::PathBuf;
use std::time::Duration;

use service_kit::config::{ConfigError, Env};

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// Files under a local directory (the standalone default).
    Local {
        /// The directory (`PARLEY_FILES_DIR`, default `<data dir>/files`).
        dir: PathBuf,
    },
    /// An S3-compatible bucket (MinIO in production).
    S3(S3Config),
}

/// How to reach the bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://minio:9000` (`PARLEY_S3_ENDPOINT`).
    pub endpoint: String,
    /// Bucket (`PARLEY_S3_BUCKET`).
    pub bucket: String,
    /// Region (`PARLEY_S3_REGION`, default `us-east-1`).
    pub region: String,
    /// Access key id (`PARLEY_S3_ACCESS_KEY`).
    pub access_key: String,
    /// Secret key (`PARLEY_S3_SECRET_KEY`).
    pub secret_key: String,
    /// Part size of multipart uploads; bodies up to one part go in one PUT.
    pub part_size: usize,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// S3's smallest part (except the last); also our default part size floor.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// The default part size of multipart uploads.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// The default upload limit: 25 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 25 * 1024 * 1024;

/// Content types accepted by default. An entry ending in `*` is a prefix.
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "application/pdf",
    "text/plain",
    "application/zip",
    "application/gzip",
    "application/x-7z-compressed",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.oasis.opendocument.*",
    "application/rtf",
];

/// Everything the file service is configured by.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Directory of the embedded metadata database (`PARLEY_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The blob backend (`PARLEY_FILES_BACKEND`: `local` or `s3`).
    pub backend: BackendConfig,
    /// Largest upload in bytes (`PARLEY_FILES_MAX_BYTES`).
    pub max_bytes: u64,
    /// Allowed sniffed content types (`PARLEY_FILES_ALLOWED_TYPES`, comma-separated).
    pub allowed_types: Vec<String>,
    /// Lifetime of presigned download URLs (`PARLEY_FILES_PRESIGN_TTL_SECS`).
    pub presign_ttl: Duration,
    /// MongoDB for the metadata instead of the embedded database
    /// (`PARLEY_MONGODB_URI`, `PARLEY_MONGODB_DATABASE`).
    pub mongo: Option<service_kit::mongo::MongoConfig>,
}

impl FilesConfig {
    /// Defaults on a data directory: local blobs under `<data_dir>/files`.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            backend: BackendConfig::Local {
                dir: data_dir.join("files"),
            },
            data_dir,
            max_bytes: DEFAULT_MAX_BYTES,
            allowed_types: DEFAULT_ALLOWED_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            presign_ttl: Duration::from_secs(300),
            mongo: None,
        }
    }

    /// Reads the configuration; `data_dir` is the process's data directory.
    pub fn from_env(env: &impl Env, data_dir: PathBuf) -> Result<Self, ConfigError> {
        let mut cfg = Self::with_data_dir(data_dir);
        let backend = env.string_or("PARLEY_FILES_BACKEND", "local");
        cfg.backend = match backend.as_str() {
            "local" => BackendConfig::Local {
                dir: env
                    .get("PARLEY_FILES_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| cfg.data_dir.join("files")),
            },
            "s3" => {
                let required = |key: &str| {
                    env.get(key).ok_or_else(|| {
                        ConfigError::new(key, "", "required when PARLEY_FILES_BACKEND=s3")
                    })
                };
                let endpoint = required("PARLEY_S3_ENDPOINT")?;
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(ConfigError::new(
                        "PARLEY_S3_ENDPOINT",
                        &endpoint,
                        "expected an http:// or https:// URL",
                    ));
                }
                let part_size: usize = env.parse_or("PARLEY_S3_PART_SIZE", DEFAULT_PART_SIZE)?;
                if part_size < MIN_PART_SIZE {
                    return Err(ConfigError::new(
                        "PARLEY_S3_PART_SIZE",
                        &part_size.to_string(),
                        format!("S3 parts are at least {MIN_PART_SIZE} bytes"),
                    ));
                }
                BackendConfig::S3(S3Config {
                    endpoint,
                    bucket: required("PARLEY_S3_BUCKET")?,
                    region: env.string_or("PARLEY_S3_REGION", "us-east-1"),
                    access_key: required("PARLEY_S3_ACCESS_KEY")?,
                    secret_key: required("PARLEY_S3_SECRET_KEY")?,
                    part_size,
                })
            }
            other => {
                return Err(ConfigError::new(
                    "PARLEY_FILES_BACKEND",
                    other,
                    "expected local or s3",
                ));
            }
        };
        cfg.max_bytes = env.parse_or("PARLEY_FILES_MAX_BYTES", DEFAULT_MAX_BYTES)?;
        if cfg.max_bytes == 0 {
            return Err(ConfigError::new(
                "PARLEY_FILES_MAX_BYTES",
                "0",
                "must be at least 1",
            ));
        }
        if let Some(list) = env.get("PARLEY_FILES_ALLOWED_TYPES") {
            let types: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if types.is_empty() || types.iter().any(|t| !t.contains('/')) {
                return Err(ConfigError::new(
                    "PARLEY_FILES_ALLOWED_TYPES",
                    &list,
                    "expected comma-separated content types like image/png or application/vnd.*",
                ));
            }
            cfg.allowed_types = types;
        }
        let ttl: u64 = env.parse_or("PARLEY_FILES_PRESIGN_TTL_SECS", 300)?;
        if !(1..=7 * 24 * 3600).contains(&ttl) {
            return Err(ConfigError::new(
                "PARLEY_FILES_PRESIGN_TTL_SECS",
                &ttl.to_string(),
                "expected 1 to 604800 seconds",
            ));
        }
        cfg.presign_ttl = Duration::from_secs(ttl);
        cfg.mongo = service_kit::mongo::MongoConfig::from_env(env)?;
        Ok(cfg)
    }
}
