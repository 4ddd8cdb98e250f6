//! `vigil bans` and `vigil unban`: the agent's bans from its persisted state, and lifting one.
//!
//! Both work on the state directory the configuration selects. `vigil unban` asks a running
//! agent through `<state_dir>/control/` (its ban manager holds `control/agent.lock`); with no
//! agent it edits the state file itself, atomically, and applies the configured actions so the
//! firewall forgets the address at once. `build_detector` is the wiring `vigil run` uses.

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vigil_respond::{
    BanDetector, BanManager, BanRecord, BanState, Control, IpNet, RespondError, build_actions,
    host_addresses, state_file, write_atomically,
};

use super::table;
use crate::{agent::state_dir, settings::Config};

/// Arguments of `vigil bans`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array of objects (ip, jail, at, until, failures, dry_run, aggregated).
    #[arg(long)]
    json: bool,
}

/// Arguments of `vigil unban`.
#[derive(Debug, clap::Args)]
pub struct UnbanArgs {
    /// The banned address or prefix (`203.0.113.9`, `2001:db8::1`, `203.0.113.0/24`).
    #[arg(value_name = "ADDR")]
    addr: String,
    /// How long to wait for a running agent's answer, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    wait: u64,
}

/// The ban manager `vigil run` registers, or `None` when `[bans] enabled = false`.
pub fn build_detector(config: &Config, state_dir: &Path) -> anyhow::Result<Option<BanDetector>> {
    let bans = &config.bans;
    if !bans.enabled {
        return Ok(None);
    }
    let manager = manager(config).context("bans")?;
    let actions = build_actions(bans).context("bans")?;
    let host = config.agent.host.clone().unwrap_or_else(vigil_runtime::default_host);
    let mut detector = BanDetector::new(manager, actions)
        .context("bans")?
        .with_host(host)
        .with_control(state_dir)
        .context("bans")?;
    if bans.detect_own_addresses {
        detector = detector.with_host_address_refresh("/proc");
    }
    if !bans.enforce {
        tracing::info!("Bans are dry-run: set bans.enforce = true to apply them");
    }
    Ok(Some(detector))
}

fn manager(config: &Config) -> Result<BanManager, RespondError> {
    let own = if config.bans.detect_own_addresses {
        host_addresses(Path::new("/proc"))
    } else {
        Vec::new()
    };
    BanManager::new(&config.bans, own)
}

/// The persisted state, or `None` when the agent never saved one.
fn load_state(path: &Path) -> anyhow::Result<Option<BanState>> {
    let text = match std::fs::read_to_string(path) {
        Ok(it) => it,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid ban state", path.display()))?;
    let state = BanState::from_value(value).with_context(|| path.display().to_string())?;
    Ok(Some(state))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn record_json(record: &BanRecord) -> Value {
    json!({
        "ip": record.ip.to_string(),
        "jail": &*record.jail,
        "at": time(record.at),
        "until": record.until.map(time),
        "failures": record.failures,
        "dry_run": record.dry_run,
        "aggregated": record.aggregated,
    })
}

/// Runs `vigil bans`.
pub fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let path = state_file(&state_dir(config));
    let mut active = load_state(&path)?.map(|it| it.active).unwrap_or_default();
    active.sort_by_key(|it| it.ip);
    if args.json {
        let rows: Vec<Value> = active.iter().map(record_json).collect();
        crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if active.is_empty() {
        crate::write_stdout("no active bans\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = active
        .iter()
        .map(|it| {
            vec![
                it.ip.to_string(),
                it.jail.to_string(),
                time(it.at),
                it.until.map_or_else(|| "permanent".to_owned(), time),
                it.failures.to_string(),
                it.dry_run.to_string(),
            ]
        })
        .collect();
    let headers = ["IP", "JAIL", "AT", "UNTIL", "FAILURES", "DRY_RUN"];
    let right = [false, false, false, false, true, false];
    crate::write_stdout(&table::render(&headers, &right, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `vigil unban`.
pub fn unban(config: &Config, args: &UnbanArgs) -> anyhow::Result<ExitCode> {
    let Ok(net) = args.addr.parse::<IpNet>() else {
        eprintln!("error: {:?} is not an address or prefix", args.addr);
        return Ok(ExitCode::from(crate::EXIT_USAGE));
    };
    let state_dir = state_dir(config);
    let control = Control::new(&state_dir);
    if control.agent_running() {
        let request = control.request_unban(&net.to_string())?;
        return Ok(match control.wait_answer(&request, Duration::from_secs(args.wait)) {
            Some(Ok(message)) => {
                println!("{message} (by the running agent)");
                ExitCode::SUCCESS
            }
            Some(Err(message)) => {
                eprintln!("error: {message}");
                ExitCode::from(crate::EXIT_PROBLEMS)
            }
            None => {
                eprintln!(
                    "error: the running agent did not answer within {} s; the request stays \
                     queued in {}",
                    args.wait,
                    control.dir().display()
                );
                ExitCode::from(crate::EXIT_PROBLEMS)
            }
        });
    }
    // No agent: lift it here, from the firewall and from the state file.
    let path = state_file(&state_dir);
    let Some(state) = load_state(&path)? else {
        eprintln!("error: {net} is not banned (no ban state in {})", state_dir.display());
        return Ok(ExitCode::from(crate::EXIT_PROBLEMS));
    };
    let mut manager = manager(config).context("bans")?;
    let now = Utc::now();
    manager.load_state(state, now);
    let outcome = match manager.unban(&net.to_string(), now) {
        Ok(it) => it,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(crate::EXIT_PROBLEMS));
        }
    };
    let mut failed = false;
    for mut action in build_actions(&config.bans).context("bans")? {
        if let Err(err) = action.apply(&outcome.changes, now) {
            eprintln!("error: {}: {err}", action.name());
            failed = true;
        }
    }
    let mut text = serde_json::to_vec(&manager.state().to_value())?;
    text.push(b'\n');
    write_atomically(&path, &text)?;
    println!("unbanned {net}");
    Ok(if failed { ExitCode::from(crate::EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
}
