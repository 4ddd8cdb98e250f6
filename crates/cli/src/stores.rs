//! Wiring of the storage destinations (`[stores]`): one store listener per destination, the
//! acknowledgement gate between them and the file tail sources, and the database path the
//! `query` and `db` commands use.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use vigil_runtime::{ListenerOptions, RuntimeBuilder};
use vigil_store::{AckGate, Acknowledge, PassThrough, StoreError};
use vigil_tail::{AckHandle, AckMode};

use crate::settings::Config;

/// The database the configuration selects.
pub fn database_path(config: &Config) -> PathBuf {
    config.stores.sqlite.path(&crate::agent::state_dir(config))
}

/// The database `--db` names, or the one the configuration selects (exit code on a bad
/// configuration).
pub fn database_arg(db: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, ExitCode> {
    match db {
        Some(it) => Ok(it.to_path_buf()),
        None => crate::load_config(config).map(|it| database_path(&it)),
    }
}

/// Prints a store error and returns its exit code: 2 for a refused or invalid query, 1 for the
/// rest.
pub fn report(err: &StoreError) -> ExitCode {
    eprintln!("error: {err}");
    match err {
        StoreError::NotReadOnly(_) | StoreError::InvalidQuery(_) | StoreError::Config(_) => {
            ExitCode::from(2)
        }
        _ => ExitCode::from(1),
    }
}

/// Whether any destination stores events: the file sources then wait for its commits.
pub fn any_enabled(config: &Config) -> bool {
    config.stores.sqlite.enabled || config.stores.json_files.values().any(|it| it.enabled)
}

/// The acknowledgement handles of the file tail sources, collected while they are registered.
#[derive(Debug, Default)]
pub struct TailAcks {
    enabled: bool,
    handles: Vec<(String, AckHandle)>,
}

impl TailAcks {
    /// Handles for `config`: sources acknowledge on publish when no store is enabled.
    pub fn new(config: &Config) -> TailAcks {
        TailAcks { enabled: any_enabled(config), handles: Vec::new() }
    }

    /// The acknowledgement mode of the tail source `name`.
    pub fn mode_for(&mut self, name: &str) -> AckMode {
        if !self.enabled {
            return AckMode::OnPublish;
        }
        let handle = AckHandle::new();
        self.handles.push((name.to_owned(), handle.clone()));
        AckMode::External(handle)
    }

    /// Forwards a committed line to the handle of the source that read it.
    fn acknowledge(self) -> Acknowledge {
        let handles: Vec<(Arc<str>, AckHandle)> =
            self.handles.into_iter().map(|(name, handle)| (name.into(), handle)).collect();
        Arc::new(move |event| {
            if let Some((_, handle)) = handles.iter().find(|(name, _)| *name == event.source) {
                handle.ack_event(event);
            }
        })
    }
}

/// Registers one store listener per enabled destination.
pub fn register(
    builder: &mut RuntimeBuilder,
    config: &Config,
    state_dir: &Path,
    acks: TailAcks,
) -> anyhow::Result<()> {
    let stores = &config.stores;
    let gate = AckGate::new(acks.acknowledge());
    if let Some(listener) = stores.sqlite.build(state_dir).context("store sqlite")? {
        let settings = listener.settings().clone();
        let listener = listener.with_ack(gate.register(stores.sqlite.filter.clone()));
        builder.register_listener_with(
            Box::new(listener),
            stores.sqlite.filter.clone(),
            ListenerOptions {
                batch_size: Some(settings.batch_size),
                flush_interval: Some(settings.flush_interval),
            },
        )?;
    }
    for (name, it) in &stores.json_files {
        let built =
            it.build(name, state_dir).with_context(|| format!("store json_files.{name}"))?;
        if let Some(listener) = built {
            let settings = listener.settings().clone();
            let listener = listener.with_ack(gate.register(it.filter.clone()));
            builder.register_listener_with(
                Box::new(listener),
                it.filter.clone(),
                ListenerOptions {
                    batch_size: Some(settings.batch_size),
                    flush_interval: Some(settings.flush_interval),
                },
            )?;
        }
    }
    if gate.destinations() > 0 {
        // Lines no destination's filter accepts are acknowledged as they pass.
        builder.register_listener(Box::new(gate.passthrough()), PassThrough::filter())?;
    }
    Ok(())
}
