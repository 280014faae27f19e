//! `analytics serve`: the long-running service (analytics-serve), started from its config file.

use std::io::Read;

use analytics_serve::{hash_token, ServeConfig, Service, EXAMPLE_CONFIG};
use anyhow::{bail, Context, Result};

use crate::output::emit;
use crate::ServeArgs;

pub(crate) fn run(args: &ServeArgs) -> Result<()> {
    if args.example_config {
        return emit(EXAMPLE_CONFIG);
    }
    if args.hash_token {
        let mut token = String::new();
        std::io::stdin().read_to_string(&mut token).context("cannot read the token from stdin")?;
        let token = token.trim();
        if token.is_empty() {
            bail!("no token on stdin (echo -n TOKEN | analytics serve --hash-token)");
        }
        return emit(&format!("{}\n", hash_token(token)));
    }
    let Some(path) = &args.config else {
        bail!("--config FILE is required (analytics serve --example-config prints one to start from)");
    };
    let cfg = ServeConfig::load(path)?;
    if args.check {
        return emit(&format!("{}: OK ({} source(s), engine {})\n", path.display(), cfg.sources.len(), cfg.engine));
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (service, started) = Service::start(cfg)?;
        log(&format!("resumed {} series from checkpoints", started.restored));
        for refused in &started.refused {
            log(&format!("starting afresh: {refused}"));
        }
        service.run(shutdown(), log).await?;
        Ok(())
    })
}

/// One line on stderr, stamped.
fn log(line: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{} {line}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => log("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => log("interrupt received"),
    }
}
