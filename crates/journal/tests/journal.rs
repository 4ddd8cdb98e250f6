//! Reads real journal files made without a running journald: entries are written in journal
//! export format and turned into a `.journal` file by `systemd-journal-remote`, then the source
//! reads the directory; checks filtering, fields, and exactly-once delivery across a restart.

use std::{path::Path, sync::Arc, time::Duration};

use vigil_core::{Event, EventSource, SourceContext};
use vigil_event::Payload;
use vigil_journal::{AckMode, JournalConfig, StartAt};

const BOOT: &str = "0123456789abcdef0123456789abcdef";

/// One export-format entry.
fn entry(seq: u64, identifier: &str, pid: u32, message: &str) -> String {
    let usec = 1_700_000_000_000_000 + seq * 1_000_000;
    format!(
        "__CURSOR=s=00000000000000000000000000000000;i={seq}\n\
         __REALTIME_TIMESTAMP={usec}\n\
         __MONOTONIC_TIMESTAMP={seq}000000\n\
         _BOOT_ID={BOOT}\n\
         _MACHINE_ID=fedcba9876543210fedcba9876543210\n\
         _HOSTNAME=testhost\n\
         SYSLOG_IDENTIFIER={identifier}\n\
         _PID={pid}\n\
         _SYSTEMD_UNIT={identifier}.service\n\
         MESSAGE={message}\n\n"
    )
}

/// Writes `entries` to an export file and converts it to `dir/<file>` with journal-remote.
fn make_journal(dir: &Path, file: &str, entries: &[String]) {
    let export = dir.join(format!("{file}.export"));
    std::fs::write(&export, entries.concat()).unwrap();
    // Tests may start helper programs: journal-remote builds journal files without journald.
    #[allow(clippy::disallowed_methods)]
    let out = std::process::Command::new("/lib/systemd/systemd-journal-remote")
        .arg(format!("--output={}", dir.join(file).display()))
        .arg(&export)
        .output()
        .expect("systemd-journal-remote (Debian package systemd-journal-remote) runs");
    assert!(
        out.status.success(),
        "journal-remote failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&export).unwrap();
}

fn config(dir: &Path) -> JournalConfig {
    JournalConfig {
        enabled: true,
        directory: Some(dir.to_owned()),
        start_at: StartAt::Beginning,
        ..JournalConfig::default()
    }
}

/// Runs the source until it has sent `want` events, then stops it and returns them.
async fn run(dir: &Path, state: &Path, want: usize) -> Vec<Arc<Event>> {
    let cursor = state.join("sshd.journal.json");
    let before = std::fs::read_to_string(&cursor).ok();
    let source = config(dir).build("sshd", state.to_owned(), AckMode::OnPublish).unwrap();
    source.validate().await.unwrap();
    let (ctx, mut rx) = SourceContext::for_test("sshd", 64);
    let shutdown = ctx.shutdown.clone();
    let source = Arc::new(source);
    let task = tokio::spawn({
        let source = source.clone();
        async move { source.start(ctx).await }
    });
    let mut events = Vec::new();
    while events.len() < want {
        let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("events arrive")
            .expect("channel open");
        events.push(event);
    }
    // Stop once the cursor moved (the batch was acknowledged), then collect anything else
    // that was sent: a duplicate would show up there.
    while std::fs::read_to_string(&cursor).ok() == before {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

fn messages(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .map(|it| match &it.payload {
            Payload::Log(log) => log.message.clone(),
            other => panic!("not a log event: {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_only_sshd_entries_with_their_fields_and_resumes_after_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    make_journal(
        dir.path(),
        "remote.journal",
        &[
            entry(1, "sshd", 100, "Failed password for root from 203.0.113.9 port 4711 ssh2"),
            entry(2, "cron", 200, "(root) CMD (run-parts /etc/cron.hourly)"),
            entry(3, "sshd", 101, "Accepted publickey for alice from 198.51.100.7 port 5000 ssh2"),
            entry(4, "sshd", 102, "Invalid user admin from 192.0.2.1 port 6000"),
        ],
    );

    let first = run(dir.path(), state.path(), 3).await;
    assert_eq!(
        messages(&first),
        [
            "Failed password for root from 203.0.113.9 port 4711 ssh2",
            "Accepted publickey for alice from 198.51.100.7 port 5000 ssh2",
            "Invalid user admin from 192.0.2.1 port 6000",
        ]
    );
    let Payload::Log(log) = &first[0].payload else { unreachable!() };
    assert_eq!(log.service.as_deref(), Some("sshd"));
    assert_eq!(log.pid, Some(100));
    assert_eq!(log.timestamp.map(|it| it.timestamp()), Some(1_700_000_001));
    let origin = log.origin.as_ref().expect("origin set");
    assert_eq!(origin.stream, format!("journal:{BOOT}"));
    assert_eq!(origin.offset, 1_700_000_001_000_000);
    assert_eq!(origin.end, origin.offset + 1);

    // More entries arrive in a new file of the same directory; a restart delivers only them.
    make_journal(
        dir.path(),
        "remote-2.journal",
        &[
            entry(
                5,
                "sshd",
                103,
                "Failed password for invalid user bob from 192.0.2.2 port 7000 ssh2",
            ),
            entry(6, "systemd", 1, "Started something."),
            entry(7, "sshd", 104, "Connection closed by 192.0.2.3 port 8000 [preauth]"),
        ],
    );
    let second = run(dir.path(), state.path(), 2).await;
    assert_eq!(
        messages(&second),
        [
            "Failed password for invalid user bob from 192.0.2.2 port 7000 ssh2",
            "Connection closed by 192.0.2.3 port 8000 [preauth]",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_directory_is_an_error_not_a_panic() {
    let state = tempfile::tempdir().unwrap();
    let source = config(Path::new("/nonexistent/vigil-journal"))
        .build("sshd", state.path().to_owned(), AckMode::OnPublish)
        .unwrap();
    let (ctx, _rx) = SourceContext::for_test("sshd", 4);
    let result = tokio::time::timeout(Duration::from_secs(30), source.start(ctx)).await;
    assert!(result.expect("start returns").is_err());
}
