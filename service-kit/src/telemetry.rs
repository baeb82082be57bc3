//! Structured logs with `tracing`.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, Env};

/// Installs the global subscriber: `RUST_LOG` filters (default `info`);
/// `PARLEY_LOG_FORMAT` is `text` (default) or `json` (JSON lines for log
/// shippers). Logs go to stderr.
pub fn init(env: &impl Env) -> Result<(), ConfigError> {
    let json = match env.get("PARLEY_LOG_FORMAT").as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ConfigError::new(
                "PARLEY_LOG_FORMAT",
                other,
                "must be text or json",
            ));
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests composing several services) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}
