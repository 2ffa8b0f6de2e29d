//! Serves the example application.
//!
//! - `DATABASE_URL`: default `sqlite://example-app.db?mode=rwc`.
//! - `HMAC_KEY`, `DATA_ENCRYPTION_KEY`: required whenever `DATABASE_URL` is
//!   set. With neither `DATABASE_URL` nor the keys set (the local SQLite
//!   default), development keys are generated once into
//!   `example-app.dev-keys` (mode 0600) and reused on later starts, and the
//!   app says so on every start. They are for trying the app on your machine
//!   only.
//! - `PORT`: default 3000. `RUST_LOG` filters the logs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use gatehouse::{Config, Gatehouse};
use gatehouse_example_app::{AppState, prepare, serve};

const DEFAULT_DATABASE_URL: &str = "sqlite://example-app.db?mode=rwc";
const DEV_KEYS_FILE: &str = "example-app.dev-keys";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();

    let url = std::env::var("DATABASE_URL").ok();
    let keys_set = std::env::var_os(gatehouse::config::HMAC_KEY_VAR).is_some()
        || std::env::var_os(gatehouse::config::DATA_KEY_VAR).is_some();
    let config = if url.is_none() && !keys_set {
        dev_keys(Path::new(DEV_KEYS_FILE))?
    } else {
        Config::from_env()?
    };
    let url = url.as_deref().unwrap_or(DEFAULT_DATABASE_URL);

    let db = gatehouse::db::connect(url).await?;
    prepare(&db).await.context("migrating the database")?;
    let gate = Gatehouse::from_config(db, &config).await?;

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().context("PORT must be a port number")?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("binding port {port}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, AppState { gate }).await?;
    Ok(())
}

/// Development keys from `path`, generated into it on the first start.
fn dev_keys(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() {
        let hmac = random_hex();
        let data = random_hex();
        write_private(
            path,
            &format!("HMAC_KEY={hmac}\nDATA_ENCRYPTION_KEY={data}\n"),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "WARNING: HMAC_KEY and DATA_ENCRYPTION_KEY are not set: using DEVELOPMENT keys from {} \
         (generated on the first start). Never use them for real data; set both keys \
         (and DATABASE_URL) to run this app anywhere but your machine.",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
            .with_context(|| {
                format!(
                    "{} has no {name}; delete it to make new keys",
                    path.display()
                )
            })
    };
    Ok(Config::from_values(
        value(gatehouse::config::HMAC_KEY_VAR)?,
        value(gatehouse::config::DATA_KEY_VAR)?,
    )?)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    data_encoding::HEXLOWER.encode(&bytes)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
