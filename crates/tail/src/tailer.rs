//! The synchronous heart of the tail source: which files are watched, how far each is read,
//! how rotation is recognised, and how bytes become lines.
//!
//! Files are grouped by the watched path they were found at. A group has at most one *active*
//! instance (the file the path names now) and a queue of *finishing* instances: files rotated
//! away that still hold unread or unacknowledged lines. Finishing files are read before the
//! active one, so lines come out in the order they were written. Each instance is identified by
//! device, inode and fingerprint ([`crate::fingerprint`]):
//!
//! - the path names another inode, or none: rotation by rename or delete (and recreate). The old
//!   file stays open and is read to its end; once a poll finds nothing more in it, its last
//!   unterminated line (which its writer will never finish) is delivered as it is.
//! - same inode, but shorter than what was read or with other first bytes: copy-and-truncate or
//!   inode reuse. The lines not yet read are looked for in the rotated copy (`<path>.1`, then
//!   `<path>.1.gz`), recognised by fingerprint; the path's new content is read from its start.
//!
//! The async loop in [`crate::source`] calls [`Tailer::poll`] and [`Tailer::commit`] on a
//! blocking thread.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    fs::{self, File},
    io::{self, ErrorKind, Read, Seek, SeekFrom},
    os::unix::fs::{FileExt, MetadataExt},
    path::Path,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use flate2::read::GzDecoder;

use crate::{
    StartAt, TailConfig, TailError,
    ack::AckShared,
    checkpoint::{CheckpointStore, FileCheckpoint},
    events::{RotationKind, TailEvent, Telemetry},
    fingerprint::{FINGERPRINT_MAX, Fingerprint, stream_name},
    multiline::{LineJoiner, Multiline},
};

/// Size of the reused read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// One line read from a file.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The watched path the file was found at.
    pub(crate) path: Arc<Path>,
    pub(crate) stream: Arc<str>,
    pub(crate) offset: u64,
    pub(crate) end: u64,
    pub(crate) text: String,
    pub(crate) truncated: bool,
    pub(crate) invalid_utf8: bool,
}

enum Input {
    Plain(File),
    Gz(Box<GzDecoder<File>>),
    /// Nothing more can be read (the content was truncated away with no copy found).
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The file the watched path names now.
    Active,
    /// Rotated away (renamed or deleted) but possibly still written: read until a poll finds
    /// nothing new.
    Draining { polled_since: bool },
    /// A file that no longer grows (a rotated copy, a compressed file): read to its end.
    Final,
    /// Read completely; waits until every line sent is acknowledged.
    Done,
}

/// A multi-line record being joined: its first line, grown by the lines that continue it.
struct Held {
    line: Line,
    lines: usize,
    /// When its last line was read.
    last: Instant,
}

struct Instance {
    path: Arc<Path>,
    dev: u64,
    ino: u64,
    fp: Fingerprint,
    stream: Option<Arc<str>>,
    input: Input,
    phase: Phase,
    /// Bytes consumed from the input.
    read_offset: u64,
    /// Offset of the pending unterminated line.
    line_start: u64,
    /// The pending line's bytes, at most `max_line_bytes`.
    partial: Vec<u8>,
    /// Acknowledged up to here: where reading resumes after a restart.
    committed: u64,
    /// Size at the last check.
    last_size: u64,
    /// The joining rule, made at the first line when the source joins lines.
    joiner: Option<Box<dyn LineJoiner>>,
    /// The record being joined: not sent, so never acknowledged.
    held: Option<Held>,
    /// Record ends after `committed` that the multi-line timeout decided (kept in the
    /// checkpoint, so a restart joins the same records again).
    cuts: Vec<u64>,
}

impl Instance {
    /// The plain file `file` (at `path`), read from `offset`.
    fn plain(
        path: Arc<Path>,
        mut file: File,
        meta: &fs::Metadata,
        offset: u64,
    ) -> io::Result<Self> {
        let fp = Fingerprint::read_at(&file, meta.len())?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Instance {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            fp,
            stream: None,
            input: Input::Plain(file),
            phase: Phase::Active,
            read_offset: offset,
            line_start: offset,
            partial: Vec::new(),
            committed: offset,
            last_size: meta.len(),
            joiner: None,
            held: None,
            cuts: Vec::new(),
        })
    }

    /// The stream name, fixing it at first use. An active plain file's fingerprint is refreshed
    /// first, so the name covers as many first bytes as possible.
    fn stream(&mut self, acks: &AckShared) -> Arc<str> {
        if let Some(stream) = &self.stream {
            return stream.clone();
        }
        if let (Phase::Active, Input::Plain(file)) = (self.phase, &self.input)
            && let Ok(fp) = Fingerprint::read_len(file, FINGERPRINT_MAX)
            && fp.len >= self.fp.len
        {
            self.fp = fp;
        }
        let stream: Arc<str> = stream_name(self.dev, self.ino, &self.fp).into();
        acks.register(&stream, self.committed);
        self.stream = Some(stream.clone());
        stream
    }

    fn checkpoint(&self) -> FileCheckpoint {
        FileCheckpoint {
            path: self.path.to_path_buf(),
            stream: self.stream.as_deref().map(str::to_owned),
            dev: self.dev,
            ino: self.ino,
            fingerprint_len: self.fp.len,
            fingerprint: self.fp.hex(),
            offset: self.committed,
            cuts: self.cuts.iter().copied().filter(|it| *it > self.committed).collect(),
        }
    }

    /// Reads until the end of the input or until `out` holds `limit` lines.
    fn read(
        &mut self,
        buf: &mut [u8],
        ctx: &ReadCtx<'_>,
        out: &mut Vec<Line>,
        limit: usize,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        let mut lines = 0u64;
        while out.len() < limit {
            let n = match &mut self.input {
                Input::Plain(file) => read_retrying(file, buf)?,
                Input::Gz(gz) => read_retrying(gz, buf)?,
                Input::Gone => 0,
            };
            if n == 0 {
                break;
            }
            total += n as u64;
            let mut pos = self.read_offset;
            self.read_offset += n as u64;
            let mut chunk = &buf[..n];
            while let Some(idx) = memchr::memchr(b'\n', chunk) {
                self.push_partial(&chunk[..idx], ctx.max_line);
                pos += idx as u64 + 1;
                self.emit(ctx, out, pos, true);
                lines += 1;
                chunk = &chunk[idx + 1..];
                if out.len() >= limit
                    && !chunk.is_empty()
                    && let Input::Plain(file) = &mut self.input
                {
                    // Give back what was read past the cap; it is read again next time.
                    file.seek(SeekFrom::Start(pos))?;
                    total -= chunk.len() as u64;
                    self.read_offset = pos;
                    chunk = &[];
                    break;
                }
            }
            self.push_partial(chunk, ctx.max_line);
        }
        if total > 0 {
            ctx.tel.emit(&TailEvent::LinesRead { path: &self.path, lines, bytes: total });
        }
        Ok(total)
    }

    fn push_partial(&mut self, bytes: &[u8], max: usize) {
        let room = max.saturating_sub(self.partial.len());
        self.partial.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Turns the pending bytes into the line `line_start..end`; `newline` says whether the
    /// line ends with one (all do but a finished file's unterminated last line).
    fn emit(&mut self, ctx: &ReadCtx<'_>, out: &mut Vec<Line>, end: u64, newline: bool) {
        let offset = self.line_start;
        let full_len = end - offset - u64::from(newline);
        let truncated = full_len > self.partial.len() as u64;
        let (text, invalid_utf8) = decode(&self.partial, truncated);
        if truncated {
            ctx.tel.emit(&TailEvent::LineTruncated { path: &self.path, offset, len: full_len });
        }
        if invalid_utf8 {
            ctx.tel.emit(&TailEvent::InvalidUtf8 { path: &self.path, offset });
        }
        let stream = self.stream(ctx.acks);
        let line =
            Line { path: self.path.clone(), stream, offset, end, text, truncated, invalid_utf8 };
        self.partial.clear();
        self.line_start = end;
        match ctx.multiline {
            None => send(ctx, out, line),
            Some(multi) => self.join(ctx, multi, out, line),
        }
    }

    /// Adds `line` to the record held, or sends that record and holds `line` as the start of
    /// the next one.
    fn join(&mut self, ctx: &ReadCtx<'_>, multi: &Multiline, out: &mut Vec<Line>, line: Line) {
        if let Some(held) = &self.held {
            let full = held.lines >= multi.max_lines
                || held.line.text.len() + 1 + line.text.len() > multi.max_bytes;
            if full || self.cuts.contains(&line.offset) {
                self.flush(ctx, out);
            }
        }
        let joiner = self.joiner.get_or_insert_with(|| (multi.factory)());
        let now = Instant::now();
        match &mut self.held {
            Some(held) if joiner.continues(&line.text, true) => {
                held.line.text.push('\n');
                held.line.text.push_str(&line.text);
                held.line.end = line.end;
                held.line.truncated |= line.truncated;
                held.line.invalid_utf8 |= line.invalid_utf8;
                held.lines += 1;
                held.last = now;
            }
            Some(_) => {
                self.flush(ctx, out);
                self.held = Some(Held { line, lines: 1, last: now });
            }
            None => {
                joiner.continues(&line.text, false);
                self.held = Some(Held { line, lines: 1, last: now });
            }
        }
    }

    /// Sends the record held, if any.
    fn flush(&mut self, ctx: &ReadCtx<'_>, out: &mut Vec<Line>) {
        if let Some(Held { mut line, lines, .. }) = self.held.take() {
            if lines > 1 {
                // Blank lines that continued a traceback do not end the record's text.
                line.text.truncate(line.text.trim_end().len());
            }
            send(ctx, out, line);
        }
    }

    /// Sends the record held once `timeout` passed since its last line; the cut is remembered
    /// for the checkpoint. Returns whether it cut.
    fn flush_stale(&mut self, ctx: &ReadCtx<'_>, out: &mut Vec<Line>) -> bool {
        let Some(multi) = ctx.multiline else { return false };
        let Some(held) = &self.held else { return false };
        if held.last.elapsed() < multi.timeout {
            return false;
        }
        let end = held.line.end;
        self.flush(ctx, out);
        self.cuts.push(end);
        true
    }

    /// Delivers the unterminated last line of a file that will not grow any more.
    fn finish(&mut self, ctx: &ReadCtx<'_>, out: &mut Vec<Line>) {
        if self.read_offset > self.line_start {
            let end = self.read_offset;
            self.emit(ctx, out, end, false);
            ctx.tel.emit(&TailEvent::LinesRead { path: &self.path, lines: 1, bytes: 0 });
        }
        self.flush(ctx, out);
        self.phase = Phase::Done;
        self.input = Input::Gone;
    }

    /// Whether everything sent from this instance is acknowledged.
    fn settled(&self, acks: &AckShared) -> bool {
        match &self.stream {
            None => true,
            Some(stream) => acks.committed(stream).is_none_or(|(_, in_flight)| in_flight == 0),
        }
    }
}

/// Sends one line or record: registered as in flight, then handed out.
fn send(ctx: &ReadCtx<'_>, out: &mut Vec<Line>, line: Line) {
    ctx.acks.sent(&line.stream, line.offset, line.end);
    out.push(line);
}

fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// A line's text: valid UTF-8 as is, anything else with replacement characters. A line cut to
/// its maximum may end inside a character; that tail is dropped rather than counted as invalid.
fn decode(bytes: &[u8], truncated: bool) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), false),
        Err(err) if truncated && err.error_len().is_none() => {
            (String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned(), false)
        }
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    }
}

struct ReadCtx<'a> {
    max_line: usize,
    multiline: Option<&'a Multiline>,
    acks: &'a AckShared,
    tel: &'a Telemetry,
}

#[derive(Default)]
struct Group {
    finishing: VecDeque<Instance>,
    active: Option<Instance>,
}

impl Group {
    fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.finishing.iter().chain(self.active.as_ref())
    }
}

/// Every watched file of one source, and its checkpoint.
pub(crate) struct Tailer {
    config: TailConfig,
    store: CheckpointStore,
    acks: Arc<AckShared>,
    tel: Telemetry,
    groups: BTreeMap<Arc<Path>, Group>,
    buf: Vec<u8>,
    /// No checkpoint existed: `start_at` applies to the files found by the first discovery.
    fresh: bool,
    discovered_once: bool,
    saved: Option<Vec<FileCheckpoint>>,
    errors: ErrorLog,
    multiline: Option<Multiline>,
}

/// Reports a problem once while it persists, not at every poll (an unreadable file, a full
/// disk).
#[derive(Default)]
struct ErrorLog {
    before: HashSet<String>,
    now: HashSet<String>,
}

impl ErrorLog {
    fn next_poll(&mut self) {
        std::mem::swap(&mut self.before, &mut self.now);
        self.now.clear();
    }

    fn report(&mut self, tel: &Telemetry, error: &TailError) {
        let key = error.to_string();
        let new = !self.before.contains(&key);
        if self.now.insert(key) && new {
            tel.emit(&TailEvent::Error { error });
        }
    }
}

impl Tailer {
    /// Loads the checkpoint and reopens the files it names.
    pub(crate) fn open(
        config: TailConfig,
        store: CheckpointStore,
        acks: Arc<AckShared>,
        tel: Telemetry,
        multiline: Option<Multiline>,
    ) -> Tailer {
        let (entries, fresh) = match store.load() {
            Ok(Some(entries)) => (entries, false),
            Ok(None) => (Vec::new(), true),
            Err(error) => {
                // Reading everything again risks duplicates (which stores deduplicate by
                // origin) rather than losing lines.
                tel.emit(&TailEvent::Error { error: &error });
                (Vec::new(), false)
            }
        };
        let mut tailer = Tailer {
            config,
            store,
            acks,
            tel,
            groups: BTreeMap::new(),
            buf: vec![0; READ_BUFFER],
            fresh,
            discovered_once: false,
            saved: None,
            errors: ErrorLog::default(),
            multiline,
        };
        for entry in entries {
            // A path no longer configured is no longer followed.
            if tailer.is_wanted(&entry.path) {
                tailer.restore(&entry);
            }
        }
        tailer
    }

    /// Whether `path` matches a configured glob and no exclusion.
    fn is_wanted(&self, path: &Path) -> bool {
        let any = |patterns: &[String]| {
            patterns.iter().any(|it| glob::Pattern::new(it).is_ok_and(|it| it.matches_path(path)))
        };
        any(&self.config.paths) && !any(&self.config.exclude)
    }

    /// Reopens the file a checkpoint entry names: at its path, or rotated to `.1`/`.1.gz`.
    fn restore(&mut self, entry: &FileCheckpoint) {
        let path: Arc<Path> = entry.path.as_path().into();
        let Some(fp) = entry.fingerprint() else {
            let error = TailError::Checkpoint {
                path: self.store.path().to_owned(),
                message: format!("bad fingerprint {:?}", entry.fingerprint),
            };
            self.tel.emit(&TailEvent::Error { error: &error });
            return;
        };
        let has_active = self.groups.get(&path).is_some_and(|it| it.active.is_some());
        let mut found = None;
        if !has_active
            && let Ok(file) = File::open(&path)
            && let Ok(meta) = file.metadata()
            && (meta.dev(), meta.ino()) == (entry.dev, entry.ino)
            && meta.len() >= entry.offset
            && fp.matches(&file).unwrap_or(false)
        {
            found = Instance::plain(path.clone(), file, &meta, entry.offset).ok();
        }
        if found.is_none() && self.config.read_rotated {
            found = find_rotated(&path, fp, entry.offset).map(|copy| Instance {
                path: path.clone(),
                dev: copy.id.map_or(entry.dev, |it| it.0),
                ino: copy.id.map_or(entry.ino, |it| it.1),
                fp,
                stream: None,
                input: copy.input,
                phase: copy.phase,
                read_offset: entry.offset,
                line_start: entry.offset,
                partial: Vec::new(),
                committed: entry.offset,
                last_size: 0,
                joiner: None,
                held: None,
                cuts: Vec::new(),
            });
        }
        let Some(mut instance) = found else {
            tracing::warn!(
                path = %path.display(),
                offset = entry.offset,
                "The checkpointed file is gone; lines it held after the checkpoint are lost"
            );
            return;
        };
        instance.fp = if instance.fp.len >= fp.len { instance.fp } else { fp };
        instance.cuts = entry.cuts.iter().copied().filter(|it| *it > entry.offset).collect();
        if let Some(stream) = &entry.stream {
            let stream: Arc<str> = stream.as_str().into();
            self.acks.register(&stream, entry.offset);
            instance.stream = Some(stream);
        }
        self.tel.emit(&TailEvent::FileAdded { path: &path });
        let group = self.groups.entry(path).or_default();
        if instance.phase == Phase::Active {
            group.active = Some(instance);
        } else {
            group.finishing.push_back(instance);
        }
    }

    fn is_tracked(&self, dev: u64, ino: u64) -> bool {
        self.groups.values().flat_map(Group::instances).any(|it| {
            matches!(it.input, Input::Plain(_))
                && it.phase != Phase::Done
                && (it.dev, it.ino) == (dev, ino)
        })
    }

    /// Finds paths matching the globs that are not watched yet.
    fn discover(&mut self) {
        let mut found = Vec::new();
        for pattern in &self.config.paths {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for path in paths.flatten() {
                let skip = path.extension().is_some_and(|it| it == "gz")
                    || !self.is_wanted(&path)
                    || self.groups.get(path.as_path()).is_some_and(|g| g.active.is_some());
                if !skip {
                    found.push(path);
                }
            }
        }
        let at_end = self.fresh && !self.discovered_once && self.config.start_at == StartAt::End;
        for path in found {
            let known = self.groups.contains_key(path.as_path());
            // A path seen before (a rotation successor) is read from its start.
            self.open_active(&path, at_end && !known);
        }
        self.discovered_once = true;
    }

    /// Starts watching the file `path` names now, unless it is watched already.
    fn open_active(&mut self, path: &Path, at_end: bool) {
        let opened = File::open(path).and_then(|file| {
            let meta = file.metadata()?;
            Ok((file, meta))
        });
        let (file, meta) = match opened {
            Ok(it) => it,
            Err(err) if err.kind() == ErrorKind::NotFound => return,
            Err(err) => {
                self.errors.report(&self.tel, &TailError::io(path, err));
                return;
            }
        };
        if !meta.is_file() || self.is_tracked(meta.dev(), meta.ino()) {
            return;
        }
        let offset = if at_end { end_of_last_line(&file, meta.len()) } else { 0 };
        let path: Arc<Path> = path.into();
        match Instance::plain(path.clone(), file, &meta, offset) {
            Ok(instance) => {
                self.tel.emit(&TailEvent::FileAdded { path: &path });
                self.groups.entry(path).or_default().active = Some(instance);
            }
            Err(err) => self.errors.report(&self.tel, &TailError::io(&*path, err)),
        }
    }

    /// Checks every active file for rotation, reads new lines into `out` (at most about
    /// `budget`), and, when `discover` is set, looks for new matching files first.
    pub(crate) fn poll(&mut self, out: &mut Vec<Line>, budget: usize, discover: bool) {
        self.errors.next_poll();
        if discover {
            self.discover();
        }
        let paths: Vec<Arc<Path>> = self.groups.keys().cloned().collect();
        let limit = out.len() + budget;
        let mut cut = false;
        for path in paths {
            self.check_rotation(&path);
            if out.len() < limit {
                self.read_group(&path, out, limit);
            }
            cut |= self.flush_stale(&path, out);
        }
        if cut {
            // A cut by the timeout is durable before the record it ends is sent.
            self.save();
        }
        self.groups.retain(|path, group| group.instances().next().is_some() || path.exists());
        let watched = self.groups.values().map(|it| it.instances().count() as u64).sum();
        self.tel.counters.files_watched.store(watched, Ordering::Relaxed);
    }

    fn check_rotation(&mut self, path: &Arc<Path>) {
        let read_rotated = self.config.read_rotated;
        let Some(group) = self.groups.get_mut(path) else { return };
        let Some(active) = &mut group.active else {
            // The path was removed; a file created there since is its successor.
            if path.exists() {
                self.open_active(path, false);
            }
            return;
        };
        let meta = match fs::metadata(path) {
            Ok(it) => it,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let mut old = group.active.take().expect("checked above");
                old.phase = Phase::Draining { polled_since: false };
                group.finishing.push_back(old);
                self.tel.emit(&TailEvent::Rotated { path, kind: RotationKind::Removed });
                return;
            }
            Err(err) => {
                self.errors.report(&self.tel, &TailError::io(&**path, err));
                return;
            }
        };
        if (meta.dev(), meta.ino()) != (active.dev, active.ino) {
            let mut old = group.active.take().expect("checked above");
            old.phase = Phase::Draining { polled_since: false };
            group.finishing.push_back(old);
            self.tel.emit(&TailEvent::Rotated { path, kind: RotationKind::Replaced });
            self.open_active(path, false);
            return;
        }
        let Input::Plain(file) = &active.input else { return };
        let same_start = active.fp.matches(file);
        let truncated = meta.len() < active.read_offset || matches!(same_start, Ok(false));
        if !truncated {
            if active.fp.len < FINGERPRINT_MAX as u32
                && meta.len() > u64::from(active.fp.len)
                && let Ok(fp) = Fingerprint::read_at(file, meta.len())
            {
                active.fp = fp;
            }
            active.last_size = meta.len();
            return;
        }
        // Copy-and-truncate or inode reuse: finish the old content from its copy, if any.
        let mut old = group.active.take().expect("checked above");
        if old.stream.is_none() && old.read_offset > old.committed {
            // Name the stream after the content it was read from, not the new content.
            let stream: Arc<str> = stream_name(old.dev, old.ino, &old.fp).into();
            self.acks.register(&stream, old.committed);
            old.stream = Some(stream);
        }
        let copy = if read_rotated { find_rotated(path, old.fp, old.read_offset) } else { None };
        match copy {
            // `find_rotated` positioned the copy where reading stopped; the pending line goes on.
            Some(copy) => {
                old.input = copy.input;
                if let Some((dev, ino)) = copy.id {
                    (old.dev, old.ino) = (dev, ino);
                }
            }
            None => {
                let lost = old.last_size.saturating_sub(old.read_offset);
                if lost > 0 {
                    self.tel.emit(&TailEvent::BytesLost { path, bytes: lost });
                }
                old.input = Input::Gone;
            }
        }
        old.phase = Phase::Final;
        group.finishing.push_back(old);
        self.tel.emit(&TailEvent::Rotated { path, kind: RotationKind::Truncated });
        self.open_active(path, false);
    }

    /// Sends the records of `path`'s files that waited for a next line for too long, in file
    /// order; returns whether any was sent.
    fn flush_stale(&mut self, path: &Arc<Path>, out: &mut Vec<Line>) -> bool {
        let Some(group) = self.groups.get_mut(path) else { return false };
        let ctx = ReadCtx {
            max_line: self.config.max_line_bytes,
            multiline: self.multiline.as_ref(),
            acks: &self.acks,
            tel: &self.tel,
        };
        let mut cut = false;
        for it in group.finishing.iter_mut().chain(group.active.as_mut()) {
            cut |= it.flush_stale(&ctx, out);
        }
        cut
    }

    fn read_group(&mut self, path: &Arc<Path>, out: &mut Vec<Line>, limit: usize) {
        let Some(group) = self.groups.get_mut(path) else { return };
        let buf = &mut self.buf;
        let ctx = ReadCtx {
            max_line: self.config.max_line_bytes,
            multiline: self.multiline.as_ref(),
            acks: &self.acks,
            tel: &self.tel,
        };
        for it in group.finishing.iter_mut() {
            if it.phase == Phase::Done {
                continue;
            }
            let read = it.read(buf, &ctx, out, limit);
            if out.len() >= limit {
                return;
            }
            match (read, it.phase) {
                (Err(err), _) => {
                    ctx.tel.emit(&TailEvent::Error { error: &TailError::io(&*it.path, err) });
                    it.finish(&ctx, out);
                }
                (Ok(_), Phase::Final) => it.finish(&ctx, out),
                (Ok(0), Phase::Draining { polled_since: true }) => it.finish(&ctx, out),
                (Ok(_), Phase::Draining { .. }) => {
                    it.phase = Phase::Draining { polled_since: true };
                    // Lines of the next file wait until this one is finished.
                    return;
                }
                _ => {}
            }
        }
        if let Some(active) = &mut group.active
            && let Err(err) = active.read(buf, &ctx, out, limit)
        {
            ctx.tel.emit(&TailEvent::Error { error: &TailError::io(&**path, err) });
        }
    }

    /// Takes in what was acknowledged, forgets finished files, and saves the checkpoint when
    /// it changed.
    pub(crate) fn commit(&mut self) {
        for group in self.groups.values_mut() {
            for it in group.finishing.iter_mut().chain(group.active.as_mut()) {
                if let Some(stream) = &it.stream
                    && let Some((committed, _)) = self.acks.committed(stream)
                {
                    it.committed = committed;
                    it.cuts.retain(|cut| *cut > committed);
                }
            }
            let acks = &self.acks;
            let tel = &self.tel;
            group.finishing.retain(|it| {
                let gone = it.phase == Phase::Done && it.settled(acks);
                if gone {
                    if let Some(stream) = &it.stream {
                        acks.unregister(stream);
                    }
                    tel.emit(&TailEvent::FileFinished { path: &it.path });
                }
                !gone
            });
        }
        self.save();
    }

    /// Saves the checkpoint when it changed.
    fn save(&mut self) {
        let entries: Vec<FileCheckpoint> = self
            .groups
            .values()
            .flat_map(|it| it.finishing.iter().chain(it.active.as_ref()))
            .map(Instance::checkpoint)
            .collect();
        if self.saved.as_ref() == Some(&entries) {
            return;
        }
        match self.store.save(&entries) {
            Ok(()) => self.saved = Some(entries),
            Err(error) => self.errors.report(&self.tel, &error),
        }
    }
}

/// A rotated copy found for a file, positioned where reading resumes.
struct RotatedCopy {
    input: Input,
    phase: Phase,
    /// Device and inode of a plain copy.
    id: Option<(u64, u64)>,
}

/// The rotated copy of a file whose first bytes hash to `fp` and that holds at least `offset`
/// bytes: `<path>.1` (still possibly written: drained) or `<path>.1.gz` (final), positioned at
/// `offset`.
fn find_rotated(path: &Path, fp: Fingerprint, offset: u64) -> Option<RotatedCopy> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let plain = path.with_file_name(format!("{name}.1"));
    if let Ok(mut file) = File::open(&plain)
        && let Ok(meta) = file.metadata()
        && meta.len() >= offset
        && fp.matches(&file).unwrap_or(false)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        return Some(RotatedCopy {
            input: Input::Plain(file),
            phase: Phase::Draining { polled_since: false },
            id: Some((meta.dev(), meta.ino())),
        });
    }
    let gz_path = path.with_file_name(format!("{name}.1.gz"));
    let check = File::open(&gz_path).ok()?;
    let head = Fingerprint::read_stream(&mut GzDecoder::new(check), u64::from(fp.len)).ok()?;
    if head != fp {
        return None;
    }
    let mut gz = GzDecoder::new(File::open(&gz_path).ok()?);
    let skipped = io::copy(&mut (&mut gz).take(offset), &mut io::sink()).ok()?;
    (skipped == offset).then(|| RotatedCopy {
        input: Input::Gz(Box::new(gz)),
        phase: Phase::Final,
        id: None,
    })
}

/// The offset just after the last newline in a file's last 64 KiB (its size when there is
/// none there, 0 when the whole file is one unterminated line).
fn end_of_last_line(file: &File, size: u64) -> u64 {
    let start = size.saturating_sub(READ_BUFFER as u64);
    let mut buf = vec![0; (size - start) as usize];
    if file.read_exact_at(&mut buf, start).is_err() {
        return size;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(idx) => start + idx as u64 + 1,
        None if start == 0 => 0,
        None => size,
    }
}
