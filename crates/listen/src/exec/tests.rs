//! Behaviour tests of the exec listener with a real program (`/usr/bin/python3`, which the test
//! set-up installs) that records exactly the argument vector and input it was given.

use std::{fs, path::Path, sync::Arc, time::Duration};

use vigil_core::Listener;
use vigil_event::{Event, Finding, FindingLevel, Payload};

use super::{ExecConfig, ExecStats};
use crate::Template;

const PYTHON: &str = "/usr/bin/python3";

/// Writes `{"argv": [...], "stdin": "...", "env": [...]}` to the file named by its first argument.
const RECORD: &str = "import json, os, sys\n\
                      data = {'argv': sys.argv[2:], 'stdin': sys.stdin.read(), 'env': sorted(os.environ)}\n\
                      open(sys.argv[1], 'w').write(json.dumps(data))";

fn templates(args: &[&str]) -> Vec<Template> {
    args.iter().map(|it| Template::new(*it).unwrap()).collect()
}

fn finding(user: &str) -> Arc<Event> {
    let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "6 tries")
        .with_data("ip", "203.0.113.9")
        .with_data("user", user);
    Arc::new(Event::new("web-1", "ssh", Payload::Finding(finding)))
}

fn python_available() -> bool {
    Path::new(PYTHON).exists()
}

#[tokio::test]
async fn each_template_is_exactly_one_literal_argument() {
    assert!(python_available(), "{PYTHON} is needed (scripts/test installs python3)");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let config = ExecConfig {
        program: PYTHON.into(),
        args: templates(&[
            "-c",
            RECORD,
            out.to_str().unwrap(),
            "{{ event.payload.data.user }}",
            "--ip={{ event.payload.data.ip }}",
            "{{ event.payload.data.missing }}",
            "$(touch {{ host }})",
            "{{ summary }}",
        ]),
        message: Some(Template::new("{{ name }} on {{ host }}\nsecond line").unwrap()),
        ..ExecConfig::default()
    };
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&[finding("root; rm -rf / `id` 'q' \"dq\"")]).await.unwrap();

    let run: serde_json::Value = serde_json::from_str(&fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        run["argv"],
        serde_json::json!([
            "root; rm -rf / `id` 'q' \"dq\"",
            "--ip=203.0.113.9",
            "",
            "$(touch web-1)",
            "SSHLoginTriesExceeded: 6 tries",
        ])
    );
    assert_eq!(run["stdin"], "SSHLoginTriesExceeded on web-1\nsecond line");
    let env: Vec<&str> =
        run["env"].as_array().unwrap().iter().map(|it| it.as_str().unwrap()).collect();
    assert!(
        env.contains(&"PATH") && env.iter().all(|it| ["PATH", "LANG", "LC_CTYPE"].contains(it)),
        "{env:?}"
    );
    assert!(!dir.path().join("web-1").exists());
    assert_eq!(listener.stats(), ExecStats { succeeded: 1, failed: 0, timed_out: 0 });
}

#[tokio::test]
async fn a_failing_program_is_an_error_with_its_status_and_stderr() {
    assert!(python_available());
    let config = ExecConfig {
        program: PYTHON.into(),
        args: templates(&[
            "-c",
            "import sys; sys.stderr.write('no such jail\\n' * 3); sys.exit(3)",
        ]),
        ..ExecConfig::default()
    };
    let mut listener = config.build().unwrap().unwrap();
    let err = listener.handle(&[finding("a"), finding("b")]).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "exec: 2 of 2 runs failed; first: /usr/bin/python3: exit status: 3: \
         no such jail no such jail no such jail"
    );
    assert_eq!(listener.stats(), ExecStats { succeeded: 0, failed: 2, timed_out: 0 });

    let missing = ExecConfig { program: "/nonexistent/program".into(), ..ExecConfig::default() };
    let err = missing.build().unwrap().unwrap().handle(&[finding("a")]).await.unwrap_err();
    assert!(err.to_string().contains("cannot start: "), "{err}");
}

#[tokio::test]
async fn a_program_that_outlives_the_timeout_is_killed() {
    assert!(python_available());
    let config = ExecConfig {
        program: PYTHON.into(),
        args: templates(&["-c", "import time; time.sleep(60)"]),
        timeout: Duration::from_millis(300),
        ..ExecConfig::default()
    };
    let mut listener = config.build().unwrap().unwrap();
    let err = listener.handle(&[finding("a")]).await.unwrap_err().to_string();
    assert!(err.ends_with("timed out after 300ms"), "{err}");
    assert_eq!(listener.stats(), ExecStats { succeeded: 0, failed: 1, timed_out: 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_never_exceed_max_concurrent() {
    assert!(python_available());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // Each run appends `start`, waits, then appends `end`: overlapping runs would interleave.
    let script = "import sys, time\n\
                  f = open(sys.argv[1], 'a'); f.write('start\\n'); f.flush()\n\
                  time.sleep(0.3)\n\
                  f.write('end\\n'); f.close()";
    let config = |max_concurrent| ExecConfig {
        program: PYTHON.into(),
        args: templates(&["-c", script, log.to_str().unwrap()]),
        max_concurrent,
        ..ExecConfig::default()
    };
    let mut listener = config(1).build().unwrap().unwrap();
    listener.handle(&[finding("a"), finding("b"), finding("c"), finding("d")]).await.unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text, "start\nend\n".repeat(4));

    // With room for all of them, the runs do overlap (the bound is what serialised them).
    fs::remove_file(&log).unwrap();
    let mut listener = config(4).build().unwrap().unwrap();
    listener.handle(&[finding("a"), finding("b"), finding("c"), finding("d")]).await.unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert_ne!(text, "start\nend\n".repeat(4), "runs should overlap with 4 slots");
    assert_eq!(listener.stats().succeeded, 4);
}

#[test]
fn the_listener_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<super::ExecListener>();
}
