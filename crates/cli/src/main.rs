//! `vigil`: the command-line entry point of the Vigil host security agent.
//!
//! Only this crate knows clap, configuration files and exit codes (house style rule 1). Exit
//! codes are a contract with users' scripts: 0 success, 1 the command ran and found problems,
//! 2 usage or configuration error.

mod agent;
mod agent_detect;
mod commands;
mod config;
mod logging;
mod multiline;
mod paths;
mod settings;
mod stores;
mod tracer_stats;
mod tracers;

use std::{io::Write, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    config::{ConfigErrors, ConfigSource},
    settings::Config,
};

const EXIT_PROBLEMS: u8 = 1;
const EXIT_USAGE: u8 = 2;

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 the command ran and found problems, 2 usage or configuration error.

Configuration: one TOML file (`vigil config default` prints a commented example). Every key can
be overridden from the environment as VIGIL_<SECTION>__<KEY>, e.g.
VIGIL_RUNTIME__EVENT_BUFFER_SIZE=8192 or VIGIL_LISTENERS__JSON_LINES__STDOUT__ENABLED=true.
The agent's own log goes to standard error; VIGIL_LOG takes a tracing filter (e.g. debug).";

/// Vigil: host security monitoring agent.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply.
    #[arg(long, short, global = true, env = "VIGIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// More log output (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output (repeat for less).
    #[arg(long, short, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent until SIGINT or SIGTERM.
    ///
    /// Without --config the agent runs on built-in defaults, keeping state under
    /// $XDG_STATE_HOME/vigil (or ~/.local/state/vigil; /var/lib/vigil as root). The first signal
    /// shuts down gracefully within runtime.shutdown_timeout; a second one exits at once.
    Run {
        /// Also write every dispatched event as one JSON line on standard output.
        #[arg(long)]
        print: bool,
    },
    /// Print, check or show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show host metrics: CPU, memory, swap, load, filesystems, disk I/O, network.
    ///
    /// Tables by default; --json prints one object, --prometheus the text exposition format
    /// with node_exporter's metric names and labels.
    Metrics(commands::metrics::Args),
    /// List processes: CPU, memory, threads, open files, I/O.
    ///
    /// CPU percent is over each process's life, as ps prints it. Tables by default; --json
    /// prints an array of objects.
    Ps(commands::ps::Args),
    /// List TCP and UDP sockets with their owning processes.
    ///
    /// The owner (pid, process) is shown when this user can see the process's file
    /// descriptors. Tables by default; --json prints an array of objects.
    Conns(commands::conns::Args),
    /// Parse log lines with the built-in parsers and print what each one says.
    ///
    /// Prints one result per recognised line (text, or JSON with --json), or with --stats the
    /// number of lines per action. Formats: auth.log/sshd, RFC 3164 and RFC 5424 syslog, kernel
    /// firewall (UFW/iptables), fail2ban's log, nginx access and error logs, Django, and a
    /// generic timestamp + level fallback; `auto` detects the format line by line.
    Parse(commands::parse::Args),
    /// Test a fail2ban filter (unchanged) or a regex against a log, like fail2ban-regex.
    FilterTest(commands::filter_test::Args),
    /// List the active bans from the agent's persisted ban state.
    ///
    /// Reads <state_dir>/state/detector.bans.json, which a running agent saves every
    /// runtime.health_check_interval and on shutdown. Columns: ip, jail, at, until, failures,
    /// dry_run; --json prints an array of objects with those keys.
    Bans(commands::bans::Args),
    /// Lift a ban now: from the firewall (when enforcing) and from the agent's state.
    ///
    /// With the agent running, its ban manager is asked through <state_dir>/control/ and
    /// answers within a few seconds; otherwise the state file is edited (atomically) and the
    /// configured actions are applied directly. Exit 1 when the address is not banned.
    Unban(commands::bans::UnbanArgs),
    /// Show an address's class, activity and explained threat score (0–100), computed from
    /// logs, with its connections and their processes on this host.
    Ip(commands::ip::IpArgs),
    /// Rank the most threatening addresses of logs, with subnet patterns and sweeps, or export
    /// the reputation list (--export-reputation).
    Ips(commands::ip::IpsArgs),
    /// Find errors in logs: categories with severity, details, recurring signatures, root-cause
    /// hints and recovery suggestions. Multi-line Python tracebacks count as one error.
    Errors(commands::errors::Args),
    /// Replay historic log files through the parsers, detectors and jails (a dry run).
    ///
    /// Event-time clocks: the result depends only on the files and the configuration. Prints
    /// the bans and a summary (lines, events, findings, bans), or one JSON object with --json.
    /// Without --config the jail is fail2ban's default sshd jail (maxretry 5, findtime 10m,
    /// bantime 10m).
    Replay(commands::replay::Args),
    /// Show the sshd daily statistics and every detector's statistics, from the state the
    /// agent saved in its state directory.
    Report(commands::report::Args),
    /// Ask the agent's database a question in SQL (read-only).
    ///
    /// A table by default; --json prints an array of objects, --csv CSV with a header. Only
    /// statements that read are run: anything that would write is refused (exit 2). The tables
    /// are described in docs/schema.md, e.g.
    /// vigil query "SELECT ip, count(*) AS n FROM events WHERE action = 'failed_password' GROUP BY ip ORDER BY n DESC LIMIT 10"
    Query(commands::query::Args),
    /// Look after the agent's database: `info` (path, size, schema version, row counts) and
    /// `prune` (apply retention now).
    Db(commands::db::Args),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a complete, commented example configuration with every default.
    Default,
    /// Check a configuration file; `-` reads standard input. Exit 0 when valid, 2 when not.
    ///
    /// Unknown keys, wrong types and bad values are reported with file, line, column and a
    /// hint. VIGIL_* environment overrides are applied, as `vigil run` would.
    Check {
        /// The file to check, or `-` for standard input. Defaults to --config.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Print the effective configuration: the file (or defaults) with environment overrides.
    Show,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let verbosity = cli.verbose as i8 - cli.quiet as i8;
    match cli.command {
        Command::Run { print } => {
            let config = match load_config(cli.config.as_deref()) {
                Ok(it) => it,
                Err(code) => return Ok(code),
            };
            logging::init(&config.log, verbosity, config.runtime.debug_logging);
            let runtime = match agent::build(&config, &agent::RunOptions { print }) {
                Ok(it) => it,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            };
            let tokio = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("vigil")
                .build()?;
            let report = tokio.block_on(agent::run(runtime))?;
            // Abandoned tasks (a stuck listener) must not hold the process open.
            tokio.shutdown_timeout(std::time::Duration::from_millis(100));
            Ok(if report.timed_out { ExitCode::from(EXIT_PROBLEMS) } else { ExitCode::SUCCESS })
        }
        Command::Metrics(args) => commands::metrics::run(&args),
        Command::Ps(args) => commands::ps::run(&args),
        Command::Conns(args) => commands::conns::run(&args),
        Command::Parse(args) => commands::parse::run(&args),
        Command::Config(ConfigCommand::Default) => {
            let text = config::render_default::<Config>();
            write_stdout(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let Some(path) = file.or(cli.config) else {
                eprintln!(
                    "error: no file to check: give FILE (or `-` for standard input) or --config"
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            };
            match load_config(Some(&path)) {
                Ok(_) => {
                    let name = if path.as_os_str() == "-" {
                        "<stdin>".into()
                    } else {
                        path.display().to_string()
                    };
                    println!("{name}: configuration is valid");
                    Ok(ExitCode::SUCCESS)
                }
                Err(code) => Ok(code),
            }
        }
        Command::FilterTest(args) => commands::filter_test::run(&args),
        Command::Bans(args) => match load_config(cli.config.as_deref()) {
            Ok(config) => commands::bans::run(&config, &args),
            Err(code) => Ok(code),
        },
        Command::Unban(args) => match load_config(cli.config.as_deref()) {
            Ok(config) => commands::bans::unban(&config, &args),
            Err(code) => Ok(code),
        },
        Command::Ip(args) => commands::ip::run_ip(&args, cli.config.as_deref()),
        Command::Ips(args) => commands::ip::run_ips(&args, cli.config.as_deref()),
        Command::Errors(args) => commands::errors::run(&args),
        Command::Replay(args) => match load_config(cli.config.as_deref()) {
            Ok(config) => commands::replay::run(&args, &config),
            Err(code) => Ok(code),
        },
        Command::Report(args) => match load_config(cli.config.as_deref()) {
            Ok(config) => commands::report::run(&args, &config),
            Err(code) => Ok(code),
        },
        Command::Query(args) => commands::query::run(&args, cli.config.as_deref()),
        Command::Db(args) => commands::db::run(&args, cli.config.as_deref()),
        Command::Config(ConfigCommand::Show) => {
            let config = match load_config(cli.config.as_deref()) {
                Ok(it) => it,
                Err(code) => return Ok(code),
            };
            let mut shown = toml::Value::try_from(&config)?;
            config::redact(&mut shown);
            write_stdout(&toml::to_string_pretty(&shown)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the configuration (file or defaults, then environment overrides); on failure prints
/// every problem to standard error and returns the exit code.
fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let source = match path {
        None => ConfigSource::defaults(),
        Some(path) => match ConfigSource::read(path) {
            Ok(it) => it,
            Err(err) => {
                eprintln!("error: cannot read {}: {err}", path.display());
                return Err(ExitCode::from(EXIT_USAGE));
            }
        },
    };
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    config::load::<Config>(&source, &env).map_err(|errors: ConfigErrors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// Writes to standard output; a closed pipe (`vigil config default | head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
