//! Tests of the JSON files destination: template expansion (midnight included), the document
//! and JSON-lines shapes, and atomic writes into real directories.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use vigil_event::{Event, LogEvent, Payload};

use super::*;

fn vars(time: DateTime<Utc>) -> TemplateVars<'static> {
    TemplateVars { tag: "crowdstrike", tenancy: "company", uuid: "0190-abc", time }
}

#[test]
fn every_variable_expands_as_in_the_seed() {
    let time = Utc.with_ymd_and_hms(2024, 7, 15, 14, 30, 45).unwrap();
    assert_eq!(
        expand("data/%TAG/%YYYY/%MM/%DD/%UUID.json", &vars(time)),
        "data/crowdstrike/2024/07/15/0190-abc.json"
    );
    assert_eq!(
        expand("../data/source/%TAG/%TENANCY.json", &vars(time)),
        "../data/source/crowdstrike/company.json"
    );
    assert_eq!(expand("%hh-%mm-%ss", &vars(time)), "14-30-45");
    assert_eq!(expand("100%-%X%%TAG", &vars(time)), "100%-%X%crowdstrike");
    let odd = TemplateVars { tag: "../etc", tenancy: "a/b", uuid: "", time };
    assert_eq!(expand("/d/%TAG/%TENANCY/%UUID", &odd), "/d/_.._etc/a_b/_");
    assert_eq!(VARIABLES.len(), 9);
}

#[test]
fn midnight_takes_every_field_from_one_instant() {
    let before = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
        + chrono::Duration::milliseconds(999);
    let after = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let template = "%YYYY/%MM/%DD/%hh%mm%ss";
    assert_eq!(expand(template, &vars(before)), "2026/12/31/235959");
    assert_eq!(expand(template, &vars(after)), "2027/01/01/000000");
    let leap = Utc.with_ymd_and_hms(2028, 2, 29, 0, 0, 0).unwrap();
    assert_eq!(expand(template, &vars(leap)), "2028/02/29/000000");
}

fn log(message: &str) -> Arc<Event> {
    Arc::new(Event::new("web-1", "files.auth", Payload::Log(LogEvent::new("sshd", message))))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    out
}

#[test]
fn documents_carry_the_seed_metadata_and_land_whole_across_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let times = Arc::new(Mutex::new(vec![
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap(),
    ]));
    let clock_times = times.clone();
    let template = format!("{}/%TENANCY/%TAG/%YYYY/%MM/%DD/%UUID.json", dir.path().display());
    let mut sink = JsonFilesSink::new(
        "json_files.t".into(),
        template,
        None,
        "company".into(),
        JsonMode::Document,
    )
    .with_clock(Arc::new(move || clock_times.lock().unwrap().pop().unwrap()));
    let finding = Arc::new(Event::new(
        "web-1",
        "report",
        Payload::Finding(vigil_event::Finding::new(
            vigil_event::FindingLevel::Notice,
            "Report",
            "sshd",
            "one",
        )),
    ));
    // Two groups (log, finding): one file each, the first before midnight.
    sink.write_batch(&[log("a"), finding, log("b")]).unwrap();
    let written = files(dir.path());
    assert_eq!(written.len(), 2, "{written:?}");
    let rel: Vec<String> = written
        .iter()
        .map(|it| it.strip_prefix(dir.path()).unwrap().parent().unwrap().display().to_string())
        .collect();
    assert!(rel.contains(&"company/log/2026/12/31".to_owned()), "{rel:?}");
    assert!(rel.contains(&"company/finding/2027/01/01".to_owned()), "{rel:?}");
    let log_file = written.iter().find(|it| it.to_string_lossy().contains("/log/")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(log_file).unwrap()).unwrap();
    let meta = &doc["metadata"];
    assert_eq!(meta["records"], 2);
    assert_eq!(meta["tag"], "log");
    assert_eq!(meta["tenancy"], "company");
    assert_eq!(meta["timestamp"], "2026-12-31T23:59:59Z");
    let upload_id = meta["upload_id"].as_str().unwrap();
    assert_eq!(log_file.file_stem().unwrap().to_str().unwrap(), upload_id);
    assert_eq!(doc["data"][1]["payload"]["message"], "b");
    assert!(times.lock().unwrap().is_empty());
}

#[test]
fn json_lines_add_to_an_existing_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{}/%TAG-%YYYY%MM%DD.jsonl", dir.path().display());
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
    let mut sink = JsonFilesSink::new(
        "json_files.lines".into(),
        template,
        Some("auth".into()),
        "company".into(),
        JsonMode::Lines,
    )
    .with_clock(Arc::new(move || at));
    sink.write_batch(&[log("a"), log("b")]).unwrap();
    sink.write_batch(&[log("c")]).unwrap();
    let written = files(dir.path());
    assert_eq!(written, [dir.path().join("auth-20261123.jsonl")], "no temporary file is left");
    let text = std::fs::read_to_string(&written[0]).unwrap();
    let messages: Vec<String> = text
        .lines()
        .map(|it| serde_json::from_str::<Event>(it).unwrap())
        .map(|it| match it.payload {
            Payload::Log(log) => log.message,
            _ => String::new(),
        })
        .collect();
    assert_eq!(messages, ["a", "b", "c"]);
}

#[test]
fn a_directory_that_cannot_be_made_is_an_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let template = format!("{}/file/%UUID.json", dir.path().display());
    let mut sink = JsonFilesSink::new("j".into(), template, None, "c".into(), JsonMode::Document);
    let err = sink.write_batch(&[log("a")]).unwrap_err();
    assert!(err.to_string().contains("/file"), "{err}");
}

#[test]
fn config_defaults_and_relative_paths() {
    let config: JsonFilesConfig =
        toml::from_str("tenancy = \"company\"\nmode = \"lines\"").unwrap();
    assert_eq!(config.mode, JsonMode::Lines);
    assert_eq!(
        config.resolved_path(Path::new("/var/lib/vigil")),
        "/var/lib/vigil/json/%TAG/%YYYY/%MM/%DD/%UUID.json"
    );
    let err = toml::from_str::<JsonFilesConfig>("mode = \"csv\"").unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
    let listener = config.build("archive", Path::new("/tmp")).unwrap().unwrap();
    assert_eq!(vigil_core::Listener::name(&listener), "store.json_files.archive");
}
