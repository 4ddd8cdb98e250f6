//! `vigil conns`: TCP and UDP sockets with their owning processes, filtered by port, address,
//! service or state, as a table or JSON (what `ss -tunap` shows).

use std::{collections::HashMap, net::IpAddr, process::ExitCode, time::Duration};

use serde_json::{Value, json};
use vigil_collect::{
    ConnectionCollector, ConnectionFilter, ProcRoot, ReverseDns, SERVICES, service_ports,
};
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
    /// Look up the names of remote addresses (/etc/hosts, then DNS; 2 s for all of them). Adds
    /// a `remote_host` key to the JSON.
    #[arg(long)]
    resolve: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// How long `--resolve` waits for all its lookups together.
const RESOLVE_DEADLINE: Duration = Duration::from_secs(2);

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
    let names = if args.resolve {
        let mut remotes: Vec<IpAddr> =
            sockets.iter().map(|it| it.remote.ip()).filter(|ip| !ip.is_unspecified()).collect();
        remotes.sort_unstable();
        remotes.dedup();
        Some(ReverseDns::system(1024, RESOLVE_DEADLINE).lookup_many(&remotes))
    } else {
        None
    };
    let text = if args.json {
        let items: Vec<Value> = sockets
            .iter()
            .map(|it| {
                let mut item = to_json(it);
                if let (Some(names), Some(object)) = (&names, item.as_object_mut()) {
                    let host = names.get(&it.remote.ip()).cloned();
                    object.insert("remote_host".into(), host.into());
                }
                item
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&items)?;
        text.push('\n');
        text
    } else {
        to_table(&sockets, names.as_ref())
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

fn to_table(sockets: &[ConnectionInfo], names: Option<&HashMap<IpAddr, String>>) -> String {
    let rows: Vec<Vec<String>> = sockets
        .iter()
        .map(|it| {
            let remote = match names.and_then(|names| names.get(&it.remote.ip())) {
                Some(name) => format!("{name}:{}", it.remote.port()),
                None => it.remote.to_string(),
            };
            vec![
                it.protocol.clone(),
                it.state.clone(),
                it.local.to_string(),
                remote,
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
