//! `vigil conns`: TCP and UDP sockets with their owning processes, filtered by port, address,
//! service or state, as a table or JSON (what `ss -tunap` shows).

use std::{net::IpAddr, process::ExitCode};

use serde_json::{Value, json};
use vigil_collect::{ConnectionCollector, ConnectionFilter, ProcRoot, SERVICES, service_ports};
use vigil_core::event::ConnectionInfo;

use super::table;

/// Arguments of `vigil conns`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only sockets whose local or remote port is N.
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Only sockets whose local or remote address is ADDR.
    #[arg(long, value_name = "ADDR")]
    ip: Option<IpAddr>,
    /// Only sockets on a well-known service's ports (ssh, http, https, postgresql, mysql,
    /// redis, …).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Only sockets in STATE (ESTABLISHED, LISTEN, TIME_WAIT, UNCONN, …; any case).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// Only listening sockets: TCP LISTEN and unconnected UDP.
    #[arg(long)]
    listening: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let service = match &args.service {
        None => None,
        Some(name) => match service_ports(name) {
            Some(ports) => Some(ports),
            None => {
                let known: Vec<&str> = SERVICES.iter().map(|(it, _)| *it).collect();
                eprintln!("error: unknown service `{name}`; known: {}", known.join(", "));
                return Ok(ExitCode::from(crate::EXIT_USAGE));
            }
        },
    };
    let filter = ConnectionFilter {
        port: args.port,
        ip: args.ip,
        service,
        state: args.state.clone(),
        listening: args.listening,
    };
    let mut sockets: Vec<ConnectionInfo> = ConnectionCollector::new(ProcRoot::live())
        .collect()
        .into_iter()
        .filter(|it| filter.matches(it))
        .collect();
    sockets.sort_by(|a, b| {
        (&a.protocol, a.local.port(), a.local.ip()).cmp(&(
            &b.protocol,
            b.local.port(),
            b.local.ip(),
        ))
    });
    let text = if args.json {
        let items: Vec<Value> = sockets.iter().map(to_json).collect();
        let mut text = serde_json::to_string_pretty(&items)?;
        text.push('\n');
        text
    } else {
        to_table(&sockets)
    };
    crate::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// One element of the `--json` array: the keys are a contract (issue 4).
pub fn to_json(it: &ConnectionInfo) -> Value {
    json!({
        "proto": it.protocol,
        "local_addr": it.local.ip().to_string(),
        "local_port": it.local.port(),
        "remote_addr": it.remote.ip().to_string(),
        "remote_port": it.remote.port(),
        "state": it.state,
        "pid": it.pid,
        "process": it.process_name,
    })
}

fn to_table(sockets: &[ConnectionInfo]) -> String {
    let rows: Vec<Vec<String>> = sockets
        .iter()
        .map(|it| {
            vec![
                it.protocol.clone(),
                it.state.clone(),
                it.local.to_string(),
                it.remote.to_string(),
                it.pid.map_or("-".to_owned(), |p| p.to_string()),
                it.process_name.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    table::render(
        &["PROTO", "STATE", "LOCAL", "REMOTE", "PID", "PROCESS"],
        &[false, false, false, false, true, false],
        &rows,
    )
}
