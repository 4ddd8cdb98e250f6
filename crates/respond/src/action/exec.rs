//! The exec action: any program, run with an argument template on every ban and unban.
//!
//! Placeholders are substituted inside each argument on its own, so a value (a jail name with
//! spaces, say) can never become two arguments, and no shell ever sees it. The address in
//! `{ip}` is a validated [`crate::BanTarget`].

use std::{ffi::OsString, path::PathBuf, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Action, run};
use crate::{Change, Entry, ExecConfig, RespondError};

/// A program with an argument template.
#[derive(Debug, Clone)]
pub struct ExecAction {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    unban_args: Vec<String>,
    timeout: Duration,
    restore: bool,
}

impl ExecAction {
    /// The action `exec.<name>` describes (validated by [`crate::BansConfig::validate`]).
    pub fn new(name: &str, config: &ExecConfig) -> ExecAction {
        ExecAction {
            name: format!("exec.{name}"),
            program: config.program.clone(),
            args: config.args.clone(),
            unban_args: config.unban_args.clone(),
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
            restore: config.restore,
        }
    }

    /// The argument vector for `template` and `entry`, program first.
    pub fn argv(&self, template: &[String], entry: &Entry) -> Vec<OsString> {
        let mut argv = vec![self.program.clone().into_os_string()];
        argv.extend(template.iter().map(|arg| OsString::from(substitute(arg, entry))));
        argv
    }

    fn run_one(&self, template: &[String], entry: &Entry) -> Result<(), RespondError> {
        run(&self.argv(template, entry), &[], self.timeout)
    }
}

/// `arg` with every known `{placeholder}` replaced by its value, in one left-to-right pass (a
/// value containing `{ip}` is not substituted again).
pub(crate) fn substitute(arg: &str, entry: &Entry) -> String {
    let mut out = String::with_capacity(arg.len() + 32);
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let value = after.find('}').and_then(|end| Some((value_of(&after[..end], entry)?, end)));
        match value {
            Some((value, end)) => {
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn value_of(name: &str, entry: &Entry) -> Option<String> {
    Some(match name {
        "ip" => entry.target.to_string(),
        "jail" => entry.jail.to_string(),
        "until" => {
            entry.until.map(|it| it.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default()
        }
        "bantime" => entry.bantime_seconds.to_string(),
        "failures" => entry.failures.to_string(),
        "family" => if entry.target.net().is_ipv4() { "inet" } else { "inet6" }.to_owned(),
        _ => return None,
    })
}

impl Action for ExecAction {
    fn name(&self) -> &str {
        &self.name
    }

    fn restores_on_failure(&self) -> bool {
        false
    }

    fn apply(&mut self, changes: &[Change], _now: DateTime<Utc>) -> Result<(), RespondError> {
        let mut first_error = None;
        let mut record = |result: Result<(), RespondError>| {
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        };
        for change in changes {
            match change {
                Change::Ban(entry) => record(self.run_one(&self.args, entry)),
                Change::Unban(entry) if !self.unban_args.is_empty() => {
                    record(self.run_one(&self.unban_args, entry));
                }
                Change::Unban(_) => {}
                Change::Restore(_) if !self.restore => {}
                Change::Restore(entries) => {
                    for entry in entries {
                        record(self.run_one(&self.args, entry));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
