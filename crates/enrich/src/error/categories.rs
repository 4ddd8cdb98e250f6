//! Error categories: what a message says went wrong, the details it carries, and what to do.
//!
//! Patterns follow the messages programs document: Python's traceback and `XxxError: msg`
//! lines, PostgreSQL/MySQL/SQLite client errors, the kernel's OOM killer and segfault lines,
//! glibc's assertion message, errno texts (`strerror`) as nginx, Python and C programs print
//! them (`(111: Connection refused)`, `[Errno 28] No space left on device`).

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::Serialize;

/// What kind of error a message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// The process was killed for memory, or could not allocate.
    Memory,
    /// No space left on a filesystem (or quota exceeded).
    DiskFull,
    /// A storage I/O error.
    IoError,
    /// Segmentation fault, bus error, core dump.
    Segfault,
    /// A failed assertion.
    Assertion,
    /// A database deadlock or lock timeout.
    DatabaseDeadlock,
    /// The database could not be reached.
    DatabaseConnection,
    /// A query failed (syntax, constraint, missing relation).
    DatabaseQuery,
    /// Too many open files (per process or system).
    TooManyOpenFiles,
    /// A network operation timed out.
    NetworkTimeout,
    /// A connection was refused.
    NetworkRefused,
    /// A host or network was unreachable, or a name did not resolve.
    NetworkUnreachable,
    /// Permission denied or operation not permitted.
    Permission,
    /// A missing file, a read-only filesystem, a path problem.
    Filesystem,
    /// A Python exception or traceback not covered above.
    PythonException,
}

/// Every category, in matching priority (the first match wins).
pub const ALL: [ErrorCategory; 15] = [
    ErrorCategory::Memory,
    ErrorCategory::DiskFull,
    ErrorCategory::IoError,
    ErrorCategory::Segfault,
    ErrorCategory::Assertion,
    ErrorCategory::DatabaseDeadlock,
    ErrorCategory::DatabaseConnection,
    ErrorCategory::DatabaseQuery,
    ErrorCategory::TooManyOpenFiles,
    ErrorCategory::NetworkTimeout,
    ErrorCategory::NetworkRefused,
    ErrorCategory::NetworkUnreachable,
    ErrorCategory::Permission,
    ErrorCategory::Filesystem,
    ErrorCategory::PythonException,
];

impl ErrorCategory {
    /// The category's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Memory => "memory",
            ErrorCategory::DiskFull => "disk_full",
            ErrorCategory::IoError => "io_error",
            ErrorCategory::Segfault => "segfault",
            ErrorCategory::Assertion => "assertion",
            ErrorCategory::DatabaseDeadlock => "database_deadlock",
            ErrorCategory::DatabaseConnection => "database_connection",
            ErrorCategory::DatabaseQuery => "database_query",
            ErrorCategory::TooManyOpenFiles => "too_many_open_files",
            ErrorCategory::NetworkTimeout => "network_timeout",
            ErrorCategory::NetworkRefused => "network_refused",
            ErrorCategory::NetworkUnreachable => "network_unreachable",
            ErrorCategory::Permission => "permission",
            ErrorCategory::Filesystem => "filesystem",
            ErrorCategory::PythonException => "python_exception",
        }
    }

    /// Points added to the level's base severity.
    pub fn weight(self) -> u8 {
        match self {
            ErrorCategory::Memory | ErrorCategory::Segfault => 25,
            ErrorCategory::DiskFull | ErrorCategory::IoError => 20,
            ErrorCategory::DatabaseConnection | ErrorCategory::TooManyOpenFiles => 15,
            ErrorCategory::Assertion | ErrorCategory::DatabaseDeadlock => 15,
            ErrorCategory::DatabaseQuery | ErrorCategory::Permission => 10,
            ErrorCategory::NetworkUnreachable | ErrorCategory::NetworkRefused => 10,
            ErrorCategory::NetworkTimeout => 8,
            ErrorCategory::Filesystem | ErrorCategory::PythonException => 5,
        }
    }

    /// Where the cause usually lies.
    pub fn hint(self) -> &'static str {
        match self {
            ErrorCategory::Memory => {
                "the process or the host ran out of memory: a leak, a load spike, or limits (cgroup, ulimit) set too low"
            }
            ErrorCategory::DiskFull => {
                "a filesystem is full: logs, temporary files or data grew without rotation or cleanup"
            }
            ErrorCategory::IoError => {
                "the storage device or its driver reported a failure: a failing disk, a bad cable, a lost network volume"
            }
            ErrorCategory::Segfault => {
                "the program accessed invalid memory: a bug, a corrupt binary or library, or a mismatched library version"
            }
            ErrorCategory::Assertion => {
                "an internal consistency check failed: a bug or corrupt input/state"
            }
            ErrorCategory::DatabaseDeadlock => {
                "transactions lock the same rows in different orders, or a transaction holds locks too long"
            }
            ErrorCategory::DatabaseConnection => {
                "the database is down, unreachable, refusing connections (max_connections), or the credentials are wrong"
            }
            ErrorCategory::DatabaseQuery => {
                "a query is invalid for the schema: a migration not applied, a constraint violated, a syntax error"
            }
            ErrorCategory::TooManyOpenFiles => {
                "the process hit its file-descriptor limit: a descriptor leak or a limit too low for the load"
            }
            ErrorCategory::NetworkTimeout => {
                "the peer is overloaded or slow, or packets are dropped on the way (firewall, congestion)"
            }
            ErrorCategory::NetworkRefused => {
                "nothing listens on the target port: the service is down or restarting, or the address/port is wrong"
            }
            ErrorCategory::NetworkUnreachable => {
                "routing or name resolution failed: the network, DNS or the peer host is down"
            }
            ErrorCategory::Permission => {
                "the process's user lacks rights on a file, socket or operation (ownership, mode, SELinux/AppArmor)"
            }
            ErrorCategory::Filesystem => {
                "a path does not exist or cannot be written: a missing file, a wrong path, a read-only mount"
            }
            ErrorCategory::PythonException => {
                "the application raised an exception it did not handle: read the innermost frame of the traceback"
            }
        }
    }

    /// What to do about it.
    pub fn suggestion(self) -> &'static str {
        match self {
            ErrorCategory::Memory => {
                "check `dmesg` for the OOM killer's victim, the service's memory use over time and its limits; restart it and fix the leak or raise the limit"
            }
            ErrorCategory::DiskFull => {
                "find what grew (`du -xh / | sort -h`), rotate or delete old logs, clear temporary files, then add monitoring on free space"
            }
            ErrorCategory::IoError => {
                "check `dmesg` and SMART (`smartctl -a`), move data off the device, and replace it if errors recur"
            }
            ErrorCategory::Segfault => {
                "collect the core dump (`coredumpctl`), check the binary's and libraries' versions, and update or report the crash"
            }
            ErrorCategory::Assertion => {
                "keep the input that triggered it, report the failing check with its file and line, and update the program"
            }
            ErrorCategory::DatabaseDeadlock => {
                "retry the transaction, take locks in one consistent order, and keep transactions short"
            }
            ErrorCategory::DatabaseConnection => {
                "check the database service is up and listening, its connection limit, the network path and the credentials"
            }
            ErrorCategory::DatabaseQuery => {
                "apply pending migrations, check the failing statement against the schema, and validate input before writing"
            }
            ErrorCategory::TooManyOpenFiles => {
                "list the process's descriptors (`ls /proc/PID/fd | wc -l`), fix leaks, and raise LimitNOFILE/ulimit -n if the load needs it"
            }
            ErrorCategory::NetworkTimeout => {
                "check the peer's load and latency, firewalls on the path, and the timeouts configured on both sides"
            }
            ErrorCategory::NetworkRefused => {
                "start or restart the target service, and check it listens on the address and port the client uses (`ss -ltnp`)"
            }
            ErrorCategory::NetworkUnreachable => {
                "check routes, DNS resolution and the peer host; retry once the network is back"
            }
            ErrorCategory::Permission => {
                "check ownership and mode of the path, the service's user, and MAC policies; grant the least rights needed"
            }
            ErrorCategory::Filesystem => {
                "create the missing path or fix the configured one, and remount read-write if the filesystem went read-only"
            }
            ErrorCategory::PythonException => {
                "fix the code at the innermost frame, or handle the exception where it is expected"
            }
        }
    }
}

/// One pattern per category, in [`ALL`]'s order (case-insensitive).
static PATTERNS: [&str; 15] = [
    r"out of memory|oom-kill|oom_reaper|killed process \d+|memoryerror|cannot allocate memory|\benomem\b|memory exhausted|allowed memory size",
    r"no space left on device|\benospc\b|disk full|disk quota exceeded|\bedquot\b|could not extend file",
    r"input/output error|\beio\b|i/o error|buffer i/o error|medium error",
    r"segfault|segmentation fault|sigsegv|signal 11\b|bus error|sigbus|core dumped",
    r"assertion .* failed|assertionerror|assert(ion)? failed",
    r"deadlock|lock wait timeout exceeded|could not obtain lock|database is locked",
    r"could not connect to server|connection to server .* failed|operationalerror|can't connect to (local )?mysql server|too many connections|too many clients|remaining connection slots are reserved|server closed the connection unexpectedly|interfaceerror|password authentication failed for user|sqlstate\[hy000\] \[2002\]",
    r"programmingerror|integrityerror|dataerror|syntax error at or near|duplicate key value|violates (unique|foreign key|not-null|check) constraint|relation .* does not exist|column .* does not exist|you have an error in your sql syntax|sqlstate",
    r"too many open files|\bemfile\b|\benfile\b|worker_connections are not enough",
    r"timed out|timeout|\betimedout\b|deadline exceeded",
    r"connection refused|\beconnrefused\b|connectionrefusederror",
    r"network is unreachable|no route to host|host not found|host is unreachable|\benetunreach\b|\behostunreach\b|name or service not known|temporary failure in name resolution|could not resolve|nodename nor servname",
    r"permission denied|operation not permitted|\beacces\b|\beperm\b|permissionerror|access denied",
    r"no such file or directory|\benoent\b|filenotfounderror|read-only file system|remounting filesystem read-only|\berofs\b|is a directory|not a directory|isadirectoryerror|notadirectoryerror|file exists",
    r"traceback \(most recent call last\)|\b[a-z_][a-z0-9_.]*(error|exception)\b\s*:",
];

static SET: LazyLock<RegexSet> = LazyLock::new(|| {
    regex::RegexSetBuilder::new(PATTERNS)
        .case_insensitive(true)
        .build()
        .expect("the category patterns are valid")
});

/// Every category `text` matches, in priority order.
pub fn categories(text: &str) -> Vec<ErrorCategory> {
    SET.matches(text).iter().map(|idx| ALL[idx]).collect()
}

/// The details an error message carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    /// The exception or error type (`ValueError`, `psycopg2.OperationalError`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<String>,
    /// The exception's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception_message: Option<String>,
    /// The source file of the innermost frame or the failing check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The function of the innermost frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// An error code: errno (`111`, `ECONNREFUSED`), SQLSTATE, a MySQL error number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

macro_rules! re {
    ($name:ident, $pattern:literal) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pattern).expect("the pattern is valid"));
    };
}

re!(FRAME, r#"File "([^"\n]{1,512})", line (\d{1,9})(?:, in ([^\s\n]{1,256}))?"#);
re!(
    EXCEPTION_LINE,
    r"(?m)^\s*((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*(?:Error|Exception|Exit|Interrupt|Warning|Fault))(?::[ \t]*([^\n]*))?\s*$"
);
re!(
    EXCEPTION_INLINE,
    r"\b((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*(?:Error|Exception))\b(?::[ \t]*([^\n]{0,512}))?"
);
re!(ASSERTION, r"([^\s:]{1,512}):(\d{1,9}): ([^\s:]{1,256}): Assertion `([^\n]{0,512})' failed");
re!(ERRNO_PAREN, r"\((\d{1,5}): [A-Za-z][^)\n]{0,128}\)");
re!(ERRNO_BRACKET, r"\[Errno (\d{1,5})\]");
re!(
    ERRNO_NAME,
    r"\b(E(?:ACCES|PERM|NOENT|NOSPC|NOMEM|MFILE|NFILE|CONNREFUSED|TIMEDOUT|HOSTUNREACH|NETUNREACH|IO|ROFS|DQUOT|PIPE|CONNRESET|AGAIN))\b"
);
re!(SQLSTATE, r"(?i)sqlstate\[?\s*([0-9A-Z]{5})\]?");
re!(MYSQL_CODE, r"\((\d{4}),|ERROR (\d{4}) \(");
re!(
    SEGFAULT_AT,
    r"segfault at ([0-9a-fA-F]+) ip ([0-9a-fA-F]+) .* error (\d+)(?: in ([^\[\s]{1,256}))?"
);

/// Extracts the details of `text` (a line or a joined traceback).
pub fn details(text: &str) -> Details {
    let mut out = Details::default();
    if let Some(frame) = FRAME.captures_iter(text).last() {
        out.file = frame.get(1).map(|it| it.as_str().to_owned());
        out.line = frame.get(2).and_then(|it| it.as_str().parse().ok());
        out.function = frame.get(3).map(|it| it.as_str().to_owned());
    }
    let exception = if text.contains('\n') {
        EXCEPTION_LINE.captures_iter(text).last().or_else(|| EXCEPTION_INLINE.captures(text))
    } else {
        EXCEPTION_INLINE.captures(text)
    };
    if let Some(it) = exception {
        out.exception_type = it.get(1).map(|it| it.as_str().to_owned());
        out.exception_message =
            it.get(2).map(|it| it.as_str().trim().to_owned()).filter(|it| !it.is_empty());
    }
    if let Some(it) = ASSERTION.captures(text) {
        out.file = it.get(1).map(|it| it.as_str().to_owned());
        out.line = it.get(2).and_then(|it| it.as_str().parse().ok());
        out.function = it.get(3).map(|it| it.as_str().to_owned());
        out.exception_type.get_or_insert_with(|| "assertion".to_owned());
        out.exception_message = it.get(4).map(|it| it.as_str().to_owned());
    }
    if let Some(it) = SEGFAULT_AT.captures(text) {
        out.error_code = it.get(3).map(|it| format!("segfault error {}", it.as_str()));
        out.file = out.file.or_else(|| it.get(4).map(|it| it.as_str().to_owned()));
    }
    out.error_code = out
        .error_code
        .or_else(|| SQLSTATE.captures(text).and_then(|it| Some(it.get(1)?.as_str().to_owned())))
        .or_else(|| {
            MYSQL_CODE
                .captures(text)
                .and_then(|it| Some(it.get(1).or_else(|| it.get(2))?.as_str().to_owned()))
        })
        .or_else(|| {
            ERRNO_BRACKET.captures(text).and_then(|it| Some(it.get(1)?.as_str().to_owned()))
        })
        .or_else(|| ERRNO_PAREN.captures(text).and_then(|it| Some(it.get(1)?.as_str().to_owned())))
        .or_else(|| ERRNO_NAME.captures(text).and_then(|it| Some(it.get(1)?.as_str().to_owned())));
    out
}

/// The text with numbers, ids, addresses and quoted values taken out, so the same error with
/// another pid, address or id has the same signature.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(512));
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.is_empty() {
            return;
        }
        let has_digit = token.bytes().any(|it| it.is_ascii_digit());
        let numberish = token.bytes().all(|it| it.is_ascii_hexdigit() || b"-:.x_".contains(&it));
        if has_digit && numberish {
            out.push('#');
        } else if has_digit && token.len() >= 16 {
            // Session ids, hashes, request ids mixed with letters.
            out.push('#');
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    let mut quote: Option<char> = None;
    for c in text.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
                out.push('?');
                out.push(c);
            }
            continue;
        }
        if c.is_alphanumeric() || "-:.x_".contains(c) {
            token.push(c);
            continue;
        }
        flush(&mut token, &mut out);
        let opens = out.is_empty() || out.ends_with([' ', '=', '(', ':', '[', ',']);
        if (c == '\'' || c == '"') && opens {
            quote = Some(c);
            out.push(c);
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        if out.len() > 400 {
            break;
        }
    }
    flush(&mut token, &mut out);
    out.trim().to_owned()
}
