//! A lossless file tailer: follows log files through every kind of rotation and sends each line
//! as a log event, advancing its checkpoints only once the downstream has the lines.
//!
//! # Model
//!
//! A [`TailSource`] watches the files its globs match (new matches are picked up while it
//! runs). Every poll interval it checks each file for rotation and reads what was appended,
//! splitting on newlines; a partial last line waits for its newline. Where inotify is available,
//! a change in a watched directory wakes the source before its next poll. Each line becomes an event
//! through a [`Decoder`] (by default a generic `LogEvent` with the line as message and raw text;
//! the CLI can plug a parser in) and carries its [`LineOrigin`](vigil_event::LineOrigin): the
//! file instance (`stream`) and the line's byte range. Lines go out in order per file, in
//! batches.
//!
//! A file instance is device + inode + a fingerprint of its first bytes, so rotation by
//! rename, copy-and-truncate, delete-and-recreate and inode reuse are all told apart. A file
//! rotated away is read to its end before its successor; after a restart, the lines that
//! reached a rotated file (`<path>.1`, or `<path>.1.gz`) while the agent was down are read
//! first.
//!
//! Each file's checkpoint (see `checkpoint.rs` for the on-disk format) records how far the
//! downstream has *acknowledged* it, and is written atomically. With [`AckMode::OnPublish`] a
//! line counts as acknowledged once the bus accepted it; with [`AckMode::External`] a durable
//! component (a store) acknowledges through an [`AckHandle`]. After a crash, lines after the
//! checkpoint are read again with the same origin, so a store that deduplicates by
//! `stream` + `offset` sees every line exactly once. Lines sent but not acknowledged are capped
//! (`max_in_flight_lines`): reading pauses beyond it, so memory stays bounded.
//!
//! With a [`LineJoiner`] plugged in (`multiline`), consecutive lines that belong together (a
//! Python traceback) become one record and one event whose origin covers all of them; a record
//! still being joined is never acknowledged, so the checkpoint never passes it.
//!
//! Lines longer than `max_line_bytes` are cut and counted; invalid UTF-8 is kept lossily and
//! counted. [`TailStats`] and the [`TailTelemetry`] sink report what the tailer did.
//!
//! ```no_run
//! use std::path::Path;
//! use vigil_tail::{AckMode, TailConfig};
//!
//! let config = TailConfig { paths: vec!["/var/log/auth.log".into()], ..TailConfig::default() };
//! let source = config.build("files.auth", Path::new("/var/lib/vigil"), AckMode::OnPublish)?;
//! # Ok::<(), vigil_tail::TailError>(())
//! ```

#![deny(missing_docs)]

mod ack;
mod checkpoint;
mod config;
mod error;
mod events;
mod fingerprint;
mod multiline;
mod source;
mod tailer;
mod watch;

pub use ack::{AckHandle, AckMode};
pub use config::{StartAt, TailConfig};
pub use error::TailError;
pub use events::{RotationKind, TailEvent, TailStats, TailTelemetry};
pub use multiline::{JoinerFactory, LineJoiner};
pub use source::{Decoder, LineContext, TailSource, TailStatsHandle, generic_decoder};
