//! The agent's main loop: connect, enroll once, run sessions, reconnect with back-off.

use crate::backoff::{self, Backoff};
use crate::config::Options;
use crate::conn::{self, Error};
use crate::files::runtime::Files;
use crate::identity::Identity;
use crate::tasks::Tasks;
use anyhow::Context as _;
use shoal_proto::RejectCode;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::time::Instant;

/// Runs the agent until `shutdown` resolves. Returns an error only for problems found at
/// start (unreadable CA, unusable state directory, no identity and no token); everything
/// after that is retried.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let state_dir = opts.conn.state_dir.clone();
    prepare_state_dir(&state_dir)?;
    let tls = conn::tls_config(&opts.conn.ca)?;
    let identity_path = opts.conn.identity_path();
    if Identity::load(&identity_path)?.is_none() && opts.conn.enroll_token.is_none() {
        anyhow::bail!(
            "{} does not exist and no enrollment token was given (--enroll-token-file)",
            identity_path.display()
        );
    }
    let tasks = Tasks::open(&state_dir, opts.output_cap)?;
    let files = Files::open(&opts.files, &state_dir, &opts.conn.ca).await?;
    tracing::info!(
        server = %opts.conn.server,
        state_dir = %state_dir.display(),
        spooled = tasks.known().len(),
        peer_addr = ?files.peer_addr().ok(),
        cached_chunks = files.cache().len(),
        "shoal-agent starting"
    );

    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        let began = Instant::now();
        let result = tokio::select! {
            r = session(&opts, &tasks, &files, tls.clone()) => r,
            () = &mut shutdown => break,
        };
        if began.elapsed() > backoff::HEALTHY_SESSION {
            backoff.reset();
        }
        let delay = match result {
            Ok(()) => {
                // Enrolled: say hello right away.
                backoff.reset();
                continue;
            }
            Err(Error::Rejected {
                code: RejectCode::UnknownAgent,
                ..
            }) if opts.conn.enroll_token.is_some() => {
                // The server has no record of this identity (its database was replaced, or this
                // is another server): enroll again. Revoked agents get `Revoked`, never this.
                re_enroll(&opts.conn.identity_path(), &tasks)?;
                backoff.reset();
                continue;
            }
            Err(e) if e.needs_operator() => {
                tracing::error!(error = %e, "the server refuses this agent; retrying slowly");
                backoff.slow_delay()
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "disconnected");
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shoal-agent stopping");
    tasks.kill_all_now().await;
    Ok(())
}

/// Moves an identity the server does not know aside (kept for the operator, never used again)
/// and forgets the tasks spooled under it: their keys name a host of the other database.
fn re_enroll(identity_path: &std::path::Path, tasks: &Tasks) -> anyhow::Result<()> {
    let stale = identity_path.with_extension(format!("json.unknown-{}", crate::exec::now_ms()));
    std::fs::rename(identity_path, &stale)
        .with_context(|| format!("moving the unknown identity to {}", stale.display()))?;
    for key in tasks.known() {
        tasks.forget(&key);
    }
    tracing::warn!(old_identity = %stale.display(), "the server does not know this agent; enrolling again");
    Ok(())
}

/// One connection. `Ok(())` means "enrolled, reconnect now"; a served session ends in `Err`.
async fn session(
    opts: &Options,
    tasks: &Tasks,
    files: &Files,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(), Error> {
    let identity_path = opts.conn.identity_path();
    let identity = Identity::load(&identity_path)?;
    let facts = tokio::task::spawn_blocking(crate::facts::gather)
        .await
        .unwrap_or_default();
    let token = match (&identity, &opts.conn.enroll_token) {
        (Some(_), _) => None,
        (None, Some(source)) => Some(source.read().map_err(|e| Error::Token(e.to_string()))?.0),
        (None, None) => return Err(Error::Token("none configured".into())),
    };
    let stream = conn::connect(&opts.conn.server, &opts.conn.server_name, tls).await?;
    let mut facts = facts;
    facts.containment = Some(tasks.containment().name().to_owned());
    if let Ok(local) = stream.get_ref().0.local_addr() {
        crate::facts::prefer(&mut facts.ips, local.ip());
    }
    let Some(identity) = identity else {
        let token = token.unwrap_or_default();
        let identity = conn::enroll(stream, token, facts, opts.labels.clone()).await?;
        tokio::task::spawn_blocking(move || identity.save(&identity_path).map(|()| identity))
            .await
            .map_err(std::io::Error::other)??;
        tracing::info!("enrolled");
        return Ok(());
    };
    Err(conn::serve(
        stream,
        &identity,
        facts,
        opts.labels.clone(),
        tasks,
        Some(files),
        |w| {
            tracing::info!(
                host_id = w.host_id,
                generation = w.generation,
                heartbeat_secs = w.heartbeat.as_secs(),
                "connected"
            );
        },
    )
    .await)
}

/// Creates the state directory (0711). Scripts that run as another account live in
/// `scripts/` below it, so when the agent runs as root the directory must be searchable (not
/// listable) by others: an existing directory without that bit gets it, with a notice.
/// `identity.json` (0600) and `spool/` (0700) stay private.
pub fn prepare_state_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if nix::unistd::geteuid().is_root() && mode & 0o001 == 0 {
        tracing::info!(state_dir = %dir.display(), "making the state directory searchable so other accounts can read their scripts");
        std::fs::set_permissions(
            dir,
            std::fs::Permissions::from_mode((mode & 0o7777) | 0o011),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Pins that the state directory lets other accounts reach their script files when the
    // agent runs as root.
    use super::*;

    #[test]
    fn state_dir_is_searchable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("a/b");
        prepare_state_dir(&fresh).expect("create");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o711);
        if nix::unistd::geteuid().is_root() {
            let private = dir.path().join("private");
            std::fs::create_dir(&private).expect("mkdir");
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
                .expect("chmod");
            prepare_state_dir(&private).expect("prepare");
            let mode = std::fs::metadata(&private)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o711);
        }
    }
}
