//! Where detectors' state is kept between runs.
//!
//! The runtime saves each detector's state under its name when it stops (and periodically) and
//! hands it back on start, so a restart forgets nothing. The default store writes one JSON file
//! per key into the agent's state directory; the storage crate can provide a database-backed one.

use std::{collections::HashMap, sync::Mutex};

use vigil_event::Value;

use crate::ComponentError;

/// A small key → JSON value store for component state.
pub trait StateStore: Send + Sync {
    /// The value saved under `key`, if any.
    fn load(&self, key: &str) -> Result<Option<Value>, ComponentError>;
    /// Saves `value` under `key`, replacing what was there; durable when it returns.
    fn save(&self, key: &str, value: &Value) -> Result<(), ComponentError>;
}

/// A store that keeps state in memory only: for tests and for `--no-state` runs.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    values: Mutex<HashMap<String, Value>>,
}

impl StateStore for MemoryStateStore {
    fn load(&self, key: &str) -> Result<Option<Value>, ComponentError> {
        Ok(self.values.lock().unwrap_or_else(|it| it.into_inner()).get(key).cloned())
    }

    fn save(&self, key: &str, value: &Value) -> Result<(), ComponentError> {
        self.values
            .lock()
            .unwrap_or_else(|it| it.into_inner())
            .insert(key.to_owned(), value.clone());
        Ok(())
    }
}
