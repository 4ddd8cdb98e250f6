//! Behaviour tests of the JSON-lines listener: its output format, files and errors.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::PermissionsExt,
    path::Path,
    sync::Arc,
};

use vigil_core::{ComponentError, Listener};
use vigil_event::{Event, Finding, FindingLevel, LogEvent, Payload, Severity};

use super::{JsonLinesConfig, JsonLinesListener};

fn events() -> Vec<Arc<Event>> {
    let log = LogEvent {
        action: Some("failed_password".into()),
        ip: Some("203.0.113.9".parse().unwrap()),
        ..LogEvent::new("sshd", "Failed password for root")
    };
    let finding = Finding::new(FindingLevel::Error, "SSHLoginTriesExceeded", "sshd", "6 tries")
        .with_data("count", 6);
    vec![
        Arc::new(Event::new("web-1", "auth_log", Payload::Log(log))),
        Arc::new(Event::new("web-1", "sshd", Payload::Finding(finding))),
        Arc::new(
            Event::new("web-1", "app", Payload::Log(LogEvent::new("app", "plain")))
                .with_severity(Severity::Debug),
        ),
    ]
}

fn file_config(path: &Path) -> JsonLinesConfig {
    JsonLinesConfig { path: path.to_owned(), ..JsonLinesConfig::default() }
}

fn read_events(path: &Path) -> Vec<Event> {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn events_are_written_as_json_lines_that_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut listener = file_config(&path).build().unwrap().unwrap();
    let events = events();
    listener.handle(&events[..2]).await.unwrap();
    // Each batch reaches the file when `handle` returns, before any `flush`.
    assert_eq!(read_events(&path).len(), 2);
    listener.handle(&events[2..]).await.unwrap();
    listener.handle(&[]).await.unwrap();
    listener.flush().await.unwrap();

    let back = read_events(&path);
    let expected: Vec<Event> = events.iter().map(|it| (**it).clone()).collect();
    assert_eq!(back, expected);
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[tokio::test]
async fn append_keeps_earlier_lines_and_truncate_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let events = events();
    for _ in 0..2 {
        let mut listener = file_config(&path).build().unwrap().unwrap();
        listener.handle(&events[..1]).await.unwrap();
    }
    assert_eq!(read_events(&path).len(), 2);

    let config = JsonLinesConfig { append: false, ..file_config(&path) };
    let mut listener = config.build().unwrap().unwrap();
    listener.handle(&events[..1]).await.unwrap();
    assert_eq!(read_events(&path).len(), 1);
}

#[tokio::test]
async fn line_breaks_inside_strings_stay_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let log = LogEvent {
        raw: Some("first\r\nsecond\u{2028}third".into()),
        ..LogEvent::new("app", "Traceback:\n  File \"x.py\"\n\tboom")
    };
    let event = Arc::new(Event::new("web-1", "app", Payload::Log(log)));
    let mut listener = file_config(&path).build().unwrap().unwrap();
    listener.handle(std::slice::from_ref(&event)).await.unwrap();

    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert_eq!(read_events(&path), [(*event).clone()]);
}

#[tokio::test]
async fn a_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/events.jsonl");
    let mut listener = file_config(&path).build().unwrap().unwrap();
    listener.handle(&events()).await.unwrap();
    assert_eq!(read_events(&path).len(), 3);
}

#[test]
fn an_unusable_path_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    fs::write(&blocker, "").unwrap();

    // The parent "directory" is a file: it can be neither created nor entered, even by root.
    let path = blocker.join("events.jsonl");
    let err = file_config(&path).build().unwrap_err();
    assert!(matches!(&err, ComponentError::Io { path: it, .. } if *it == blocker), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{}: ", blocker.display())), "{err}");

    // The path is a directory: it cannot be opened as a file.
    let err = file_config(dir.path()).build().unwrap_err();
    assert!(matches!(&err, ComponentError::Io { path: it, .. } if it == dir.path()), "{err:?}");

    let err = file_config(Path::new("")).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid configuration: json_lines path is empty");
}

#[tokio::test]
async fn a_failed_write_is_an_error_that_names_the_path() {
    // Writes to /dev/full fail with "no space left on device", whoever runs the test.
    let path = Path::new("/dev/full");
    if !path.exists() {
        return;
    }
    let mut listener = file_config(path).build().unwrap().unwrap();
    let err = listener.handle(&events()).await.unwrap_err();
    let ComponentError::Io { path: it, source } = &err else { panic!("{err:?}") };
    assert_eq!(it, path);
    assert_eq!(source.raw_os_error(), Some(28), "{source}");
    assert!(listener.flush().await.is_err());
}

#[tokio::test]
async fn a_closed_pipe_is_an_error_not_a_panic() {
    let (reader, writer) = io::pipe().unwrap();
    drop(reader);
    let mut listener = JsonLinesListener::from_writer(writer);
    let err = listener.handle(&events()).await.unwrap_err();
    let ComponentError::Io { path, source } = &err else { panic!("{err:?}") };
    assert_eq!(path, Path::new("writer"));
    assert_eq!(source.kind(), io::ErrorKind::BrokenPipe);
    // The listener stays usable: later batches fail the same way rather than panicking.
    assert!(listener.handle(&events()).await.is_err());
    assert!(listener.flush().await.is_err());
}

#[tokio::test]
async fn a_writer_receives_whole_lines() {
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let shared = Shared::default();
    let mut listener = JsonLinesListener::from_writer(shared.clone());
    listener.handle(&events()).await.unwrap();
    let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|line| line.starts_with("{\"schema_version\":1,")));
}

#[test]
fn the_listener_is_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<JsonLinesListener>();
}
