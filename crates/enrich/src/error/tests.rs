//! The error tracer on messages written in the formats nginx, Django/Python, PostgreSQL, glibc
//! and the Linux kernel document.

use chrono::{DateTime, Utc};
use vigil_core::Enricher;
use vigil_event::{Event, LogEvent, Payload};

use super::*;

fn category(text: &str) -> Option<&'static str> {
    analyse(text, Some("error")).map(|it| it.category.as_str())
}

#[test]
fn categories_of_documented_messages() {
    let cases = [
        // nginx error log: `YYYY/MM/DD HH:MM:SS [level] pid#tid: *cid message`.
        (
            "connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.9, server: example.com, request: \"GET /api HTTP/1.1\", upstream: \"http://127.0.0.1:8000/api\"",
            "network_refused",
        ),
        (
            "upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.9",
            "network_timeout",
        ),
        (
            "open() \"/var/cache/nginx/proxy_temp/1/00/0000000001\" failed (28: No space left on device)",
            "disk_full",
        ),
        ("1024 worker_connections are not enough", "too_many_open_files"),
        (
            "socket() failed (24: Too many open files) while connecting to upstream",
            "too_many_open_files",
        ),
        (
            "connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream",
            "permission",
        ),
        (
            "open() \"/usr/share/nginx/html/favicon.ico\" failed (2: No such file or directory)",
            "filesystem",
        ),
        ("host not found in upstream \"backend.internal\"", "network_unreachable"),
        // Django / Python.
        (
            "django.db.utils.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"db\" (10.0.0.5) and accepting\n\tTCP/IP connections on port 5432?",
            "database_connection",
        ),
        (
            "django.db.utils.OperationalError: deadlock detected\nDETAIL:  Process 4242 waits for ShareLock on transaction 1234; blocked by process 4243.",
            "database_deadlock",
        ),
        (
            "django.db.utils.IntegrityError: duplicate key value violates unique constraint \"users_email_key\"",
            "database_query",
        ),
        (
            "django.db.utils.ProgrammingError: relation \"orders_order\" does not exist",
            "database_query",
        ),
        ("MemoryError", "memory"),
        ("PermissionError: [Errno 13] Permission denied: '/var/lib/app/state.json'", "permission"),
        ("OSError: [Errno 5] Input/output error", "io_error"),
        ("KeyError: 'user_id'", "python_exception"),
        (
            "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded (Caused by NewConnectionError('Failed to establish a new connection: [Errno -3] Temporary failure in name resolution'))",
            "network_unreachable",
        ),
        // PostgreSQL server log.
        ("ERROR:  deadlock detected", "database_deadlock"),
        ("FATAL:  sorry, too many clients already", "database_connection"),
        ("FATAL:  password authentication failed for user \"app\"", "database_connection"),
        // Kernel and glibc.
        (
            "Out of memory: Killed process 4242 (python3) total-vm:2048000kB, anon-rss:1024000kB, file-rss:0kB",
            "memory",
        ),
        (
            "python3[4242]: segfault at 0 ip 00007f3a2b1c4d5e sp 00007ffd1a2b3c40 error 4 in libc.so.6[7f3a2b000000+195000]",
            "segfault",
        ),
        (
            "blk_update_request: I/O error, dev sda, sector 123456 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
            "io_error",
        ),
        ("EXT4-fs (sda1): Remounting filesystem read-only", "filesystem"),
        ("a.out: main.c:42: main: Assertion `count > 0' failed.", "assertion"),
        (
            "nf_conntrack: table full, dropping packet; Network is unreachable",
            "network_unreachable",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(category(text), Some(want), "{text}");
    }
    assert_eq!(category("Accepted publickey for alice from 192.0.2.10 port 50000 ssh2"), None);
    assert_eq!(category("GET / HTTP/1.1 200 512"), None);
}

#[test]
fn details_hints_and_severity() {
    let traceback = "Internal Server Error: /orders/42\n\
        Traceback (most recent call last):\n  \
        File \"/srv/app/venv/lib/python3.11/site-packages/django/core/handlers/exception.py\", line 55, in inner\n    \
        response = get_response(request)\n  \
        File \"/srv/app/orders/views.py\", line 17, in detail\n    \
        total = order.total / order.count\n\
        ZeroDivisionError: division by zero";
    let it = analyse(traceback, Some("error")).unwrap();
    assert_eq!(it.category, ErrorCategory::PythonException);
    assert_eq!(it.details.exception_type.as_deref(), Some("ZeroDivisionError"));
    assert_eq!(it.details.exception_message.as_deref(), Some("division by zero"));
    assert_eq!(it.details.file.as_deref(), Some("/srv/app/orders/views.py"), "innermost frame");
    assert_eq!(it.details.line, Some(17));
    assert_eq!(it.details.function.as_deref(), Some("detail"));
    assert!(it.hint.contains("innermost frame"));
    assert_eq!(it.severity, 60);

    let it = analyse("a.out: main.c:42: main: Assertion `count > 0' failed.", None).unwrap();
    assert_eq!((it.details.file.as_deref(), it.details.line), (Some("main.c"), Some(42)));
    assert_eq!(it.details.exception_message.as_deref(), Some("count > 0"));

    let nginx = "connect() failed (111: Connection refused) while connecting to upstream";
    let it = analyse(nginx, Some("error")).unwrap();
    assert_eq!(it.details.error_code.as_deref(), Some("111"));
    assert!(it.suggestion.contains("ss -ltnp"));
    let it = analyse("PermissionError: [Errno 13] Permission denied: '/x'", Some("error")).unwrap();
    assert_eq!(it.details.error_code.as_deref(), Some("13"));
    let it = analyse("SQLSTATE[40001]: Serialization failure: 1213 Deadlock found", None).unwrap();
    assert_eq!(it.category, ErrorCategory::DatabaseDeadlock);
    assert_eq!(it.details.error_code.as_deref(), Some("40001"));
    let oom = "Out of memory: Killed process 4242 (python3)";
    let critical = analyse(oom, Some("critical")).unwrap().severity;
    let warning = analyse(oom, Some("warning")).unwrap().severity;
    assert_eq!(critical, 100);
    assert!(warning < critical && warning >= 50, "{warning}");
    assert!(analyse("KeyError: 'x'", Some("warning")).unwrap().severity < 50);
}

#[test]
fn recurring_errors_share_a_signature_whatever_the_numbers() {
    let tracer = ErrorTracerConfig::default().build_always();
    let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    for (n, ip) in ["203.0.113.9", "198.51.100.7", "192.0.2.1"].iter().enumerate() {
        let text = format!(
            "*{} connect() failed (111: Connection refused) while connecting to upstream, client: \
             {ip}, server: example.com, upstream: \"http://127.0.0.1:{}/api\"",
            1000 + n,
            8000 + n
        );
        let (_, count) = tracer.observe(&text, Some("error"), at).unwrap();
        assert_eq!(count, n as u64 + 1);
    }
    tracer.observe("KeyError: 'user_id'", Some("error"), at + chrono::Duration::hours(2)).unwrap();
    tracer.observe("KeyError: 'order_id'", Some("error"), at + chrono::Duration::hours(2)).unwrap();
    tracer.observe("TypeError: bad operand", Some("error"), at).unwrap();
    let recurring = tracer.recurring(2);
    assert_eq!(recurring.len(), 2, "{recurring:#?}");
    assert_eq!(recurring[0].count, 3);
    assert_eq!(recurring[0].category, ErrorCategory::NetworkRefused);
    assert!(!recurring[0].normalised.contains("203.0.113.9"), "{}", recurring[0].normalised);
    assert_eq!(recurring[1].exception_type.as_deref(), Some("KeyError"));
    let history = tracer.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].counts["network_refused"], 3);
    assert_eq!(history[1].counts["python_exception"], 2);
    assert_eq!(tracer.by_category()["python_exception"], 3);
    assert_eq!(
        normalise("pid 4242 at 0x7ffd1a2b uuid 3f2b8c1e-1d2a-4c3b-9a8e-0123456789ab"),
        "pid # at # uuid #"
    );
    assert_eq!(normalise("can't connect to 'db-1'"), "can't connect to '?'");
}

#[test]
fn enriches_error_lines_and_skips_security_events() {
    let tracer = ErrorTracerConfig::default().build_always();
    let mut line = LogEvent::new("nginx", "open() \"/srv/x\" failed (28: No space left on device)");
    line.level = Some("critical".into());
    let mut event = Event::new("h", "files.nginx", Payload::Log(line));
    assert!(tracer.wants(&event));
    tracer.enrich(&mut event, &mut Vec::new());
    assert_eq!(event.enrichment.fields["error_category"], "disk_full");
    let trace = event.enrichment.trace.as_ref().unwrap();
    assert_eq!(trace.tracers[0].tracer, "error");
    let found = trace.tracers[0].found.to_value();
    assert_eq!(found["error_code"], "28");
    assert_eq!(found["occurrences"], 1);

    let mut ssh = LogEvent::new("sshd", "Failed password for root from 203.0.113.9 port 22 ssh2");
    ssh.action = Some("failed_password".into());
    assert!(!tracer.wants(&Event::new("h", "auth", Payload::Log(ssh))));
    let mut info = LogEvent::new("app", "request failed");
    info.level = Some("info".into());
    assert!(!tracer.wants(&Event::new("h", "app", Payload::Log(info))));
}

#[test]
fn signatures_stay_bounded() {
    let tracer = ErrorTracerConfig { max_signatures: 50, ..Default::default() }.build_always();
    let at: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    for n in 0..1000 {
        // Distinct words make distinct signatures.
        let word: String = format!("{n:x}")
            .chars()
            .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
            .collect();
        tracer.observe(&format!("ValueError: bad {word}"), None, at).unwrap();
    }
    let (held, evicted) = tracer.signature_stats();
    assert!(held <= 50 && evicted >= 950, "{held} {evicted}");
    assert!(held >= 40, "{held}");
}
