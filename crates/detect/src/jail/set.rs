//! Every configured jail behind one entry point: each line is read once and fans out to every
//! jail (fail2ban parses a line once per jail), and lines whose action no jail counts are
//! skipped before any jail is asked.

use std::collections::BTreeMap;

use vigil_event::{Ban, Value};
use vigil_parse::Action;

use super::{Jail, JailConfig};
use crate::{Error, Observation};

/// The configured jails.
#[derive(Debug, Default)]
pub struct JailSet {
    jails: Vec<Jail>,
    /// `wanted[action as usize]`: some built-in jail counts the action.
    wanted: Vec<bool>,
    /// Some jail runs a filter file, which reads every line.
    every_line: bool,
}

impl JailSet {
    /// The enabled jails of `configs`, in name order. Filter files are read here.
    pub fn build(configs: &BTreeMap<String, JailConfig>) -> Result<JailSet, Error> {
        let mut jails = Vec::new();
        for (name, config) in configs {
            if let Some(jail) = config.build(name)? {
                jails.push(jail);
            }
        }
        Ok(JailSet::new(jails))
    }

    /// A set of already built jails.
    pub fn new(jails: Vec<Jail>) -> JailSet {
        let wanted = Action::ALL
            .iter()
            .map(|action| jails.iter().any(|jail| jail.filter().counts_action(*action)))
            .collect();
        let every_line = jails.iter().any(|jail| jail.filter().needs_every_line());
        JailSet { jails, wanted, every_line }
    }

    /// Whether no jail is configured.
    pub fn is_empty(&self) -> bool {
        self.jails.is_empty()
    }

    /// The jails.
    pub fn jails(&self) -> &[Jail] {
        &self.jails
    }

    /// Whether a line with this action (or no action) can matter to any jail; the fast path
    /// skips the rest of a line's work when it cannot.
    pub fn wants(&self, action: Option<Action>) -> bool {
        self.every_line || action.is_some_and(|it| self.wanted[it as usize])
    }

    /// Reads one line in every jail; ban requests are pushed to `out`.
    pub fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Ban>) {
        if !self.wants(obs.action) {
            return;
        }
        for jail in &mut self.jails {
            jail.observe(obs, out);
        }
    }

    /// Statistics per jail.
    pub fn statistics(&self) -> Value {
        Value::Object(
            self.jails.iter().map(|jail| (jail.name().to_owned(), jail.statistics())).collect(),
        )
    }

    /// The state of every jail, by name.
    pub fn save(&self) -> Value {
        let jails: serde_json::Map<String, Value> =
            self.jails.iter().map(|jail| (jail.name().to_owned(), jail.save())).collect();
        serde_json::json!({ "version": 1, "jails": jails })
    }

    /// Restores what [`JailSet::save`] wrote; jails no longer configured are ignored and new
    /// ones start empty.
    pub fn restore(&mut self, state: &Value) -> Result<(), String> {
        if state.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("invalid jails state: expected version 1".into());
        }
        let Some(Value::Object(saved)) = state.get("jails") else {
            return Err("invalid jails state: no jails".into());
        };
        for jail in &mut self.jails {
            if let Some(it) = saved.get(jail.name()) {
                jail.restore(it.clone())
                    .map_err(|err| format!("invalid state of jail {}: {err}", jail.name()))?;
            }
        }
        Ok(())
    }
}
