//! Per-line cost of each built-in parser on representative lines (`bench/parse.sh` measures the
//! whole `vigil parse` command beside its peers). Run with
//! `cargo bench -p vigil-parse --bench parsers`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_parse::{Clock, Format};

const CASES: &[(Format, &[&str])] = &[
    (
        Format::Sshd,
        &[
            "Nov  1 00:00:03 web1 sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2",
            "Nov  1 00:00:03 web1 sshd[4242]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
            "Nov  1 00:00:04 web1 sshd[4242]: Received disconnect from 203.0.113.7 port 51234:11: Bye Bye [preauth]",
            "Nov  1 00:00:04 web1 sshd[4242]: Disconnected from invalid user admin 203.0.113.7 port 51234 [preauth]",
        ],
    ),
    (
        Format::Firewall,
        &[
            "Nov  1 00:00:09 web1 kernel: [1234567.123456] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:fe:54:00:ab:cd:ef:08:00 SRC=85.235.68.121 DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=243 ID=5403 PROTO=TCP SPT=56297 DPT=27017 WINDOW=1024 RES=0x00 SYN URGP=0",
        ],
    ),
    (
        Format::Fail2ban,
        &["2026-11-01 00:00:10,456 fail2ban.actions        [812]: NOTICE  [sshd] Ban 203.0.113.7"],
    ),
    (
        Format::NginxAccess,
        &[
            r#"203.0.113.7 - - [01/Nov/2026:00:00:03 +0100] "GET /wp-login.php HTTP/1.1" 404 153 "-" "Mozilla/5.0 (X11; Linux x86_64)""#,
        ],
    ),
    (
        Format::NginxError,
        &[
            r#"2026/11/01 00:00:05 [error] 812#812: *7 open() "/var/www/html/.env" failed (2: No such file or directory), client: 2001:db8::9, server: _, request: "GET /.env HTTP/1.1", host: "203.0.113.1""#,
        ],
    ),
    (Format::Django, &["2026-11-23 11:58:06,003 WARNING django.request Not Found: /wp-admin/"]),
    (Format::Generic, &["2026-11-23T11:00:00.5Z ERROR worker 3: queue full"]),
];

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (case, lines) in CASES {
        // Each case with its own parser, then with format detection.
        for format in [*case, Format::Auto] {
            let parser = format.parser(Clock::utc_at("2026-11-23T12:00:00Z".parse().unwrap()));
            group.throughput(Throughput::Elements(lines.len() as u64));
            group.bench_function(format!("{case}/{format}"), |b| {
                b.iter(|| {
                    lines
                        .iter()
                        .filter(|it| parser.parse(std::hint::black_box(it)).is_some())
                        .count()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
