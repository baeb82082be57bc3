//! `parley`: the standalone server. Reads `PARLEY_*` settings, binds, prints
//! where to point the browser, and runs until SIGTERM or Ctrl-C.

use service_kit::config::SystemEnv;
use standalone::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::telemetry::init(&SystemEnv)?;
    let settings = Settings::from_env(&SystemEnv)?;
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings).await?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "parley started");
    // The one line a person (and the end-to-end tests) read on stdout.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "Parley is listening on http://{addr}/ (open it in a browser; data in {})",
            data_dir.display()
        );
    }
    app.run_until_stopped(service_kit::shutdown::signal()).await
}
