//! A complete custom pipeline against Vigil's public API: a source that reads login attempts, a
//! detector that flags an address after three failures, and a listener that prints findings.
//! Run it with `cargo run -p vigil --example custom_pipeline`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use vigil::event::{Event, EventKind, Finding, FindingLevel, LogEvent, Payload};
use vigil::{CancellationToken, ComponentError, Detector, DetectorContext, EventSource, Filter};
use vigil::{Listener, Runtime, RuntimeConfig, SourceCapabilities, SourceContext, Statistics};

/// Emits a fixed list of login attempts, as a log tailer would.
struct Logins;

#[vigil::async_trait]
impl EventSource for Logins {
    fn name(&self) -> &str {
        "logins"
    }
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::LOG
    }
    async fn start(&self, ctx: SourceContext) -> Result<(), ComponentError> {
        let (bad, good) = ("203.0.113.9", "198.51.100.4");
        for (ip, ok) in [(bad, false), (good, true), (bad, false), (bad, false)] {
            let action = if ok { "accepted_password" } else { "failed_password" };
            let (action, ip) = (Some(action.into()), ip.parse().ok());
            let log = LogEvent { action, ip, ..LogEvent::new("sshd", "login attempt") };
            ctx.send(Payload::Log(log)).await?;
        }
        ctx.shutdown.cancelled().await;
        Ok(())
    }
}

/// Counts failures per address; dispatches a finding at the third.
#[derive(Default)]
struct Failures(HashMap<String, u32>);

impl Detector for Failures {
    fn name(&self) -> &str {
        "failures"
    }
    fn handle(&mut self, event: &Event, ctx: &mut DetectorContext) -> Result<(), ComponentError> {
        let (Some(ip), Some(action)) = (event.ip(), event.field("action")) else { return Ok(()) };
        if action.matches("failed_password") {
            let n = self.0.entry(ip.to_string()).or_default();
            *n += 1;
            if *n == 3 {
                let summary = format!("{ip} failed 3 times");
                let finding = Finding::new(FindingLevel::Error, "TooManyFailures", "sshd", summary);
                ctx.finding(finding.with_data("ip", ip.to_string()).with_data("count", *n));
            }
        }
        Ok(())
    }
    fn statistics(&self) -> Statistics {
        [("addresses".to_owned(), self.0.len().into())].into_iter().collect()
    }
}

/// Prints every finding it receives.
struct Printer;

#[vigil::async_trait]
impl Listener for Printer {
    fn name(&self) -> &str {
        "printer"
    }
    async fn handle(&mut self, events: &[Arc<Event>]) -> Result<(), ComponentError> {
        for event in events {
            if let Payload::Finding(f) = &event.payload {
                println!("{} {}: {}", event.severity, f.name, f.summary);
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder =
        Runtime::builder(RuntimeConfig::new().with_shutdown_timeout(Duration::from_secs(2)));
    builder.register_source(Arc::new(Logins))?;
    builder.register_detector(Box::new(Failures::default()), Filter::source_events())?;
    builder.register_listener(Box::new(Printer), Filter::any().kinds([EventKind::Finding]))?;
    let runtime = builder.build();
    // Run for a moment, then shut down as SIGTERM would.
    let shutdown = CancellationToken::new();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
    };
    let (report, ()) = tokio::join!(runtime.run(shutdown.clone()), stop);
    println!("published {}; statistics: {:?}", report.published, report.detector_statistics);
    Ok(())
}
