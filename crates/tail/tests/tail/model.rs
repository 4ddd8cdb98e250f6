//! Model-based test: random sequences of appends (partial lines, long lines, invalid UTF-8),
//! rotations of every kind and restarts, run on real files; every line written is delivered
//! exactly once (after removing re-reads of one origin, which a store deduplicates), in order
//! per file.
//!
//! The model keeps what each file should have delivered. Rotations happen while the source runs
//! or while it is down (at most one per file while down, and never a delete: a file deleted while
//! nobody holds it open is gone for any tailer). After each rotation or start the test writes a
//! line to the new file and waits until everything is delivered, so the tailer always holds the
//! file it must finish.

use proptest::prelude::*;

use super::*;

/// Longest line kept in the model.
const MAX_LINE: usize = 64;

#[derive(Debug, Clone)]
enum Piece {
    Short(Vec<u8>),
    Long(usize),
    InvalidUtf8,
}

#[derive(Debug, Clone, Copy)]
enum Rotation {
    Rename,
    CopyTruncate,
    Recreate,
}

#[derive(Debug, Clone)]
enum Op {
    Write { file: usize, piece: Piece, newline: bool },
    Rotate { file: usize, how: Rotation },
    Stop,
    Start,
}

fn op() -> impl Strategy<Value = Op> {
    let piece = prop_oneof![
        4 => proptest::collection::vec(b'a'..=b'z', 0..12).prop_map(Piece::Short),
        1 => (MAX_LINE..3 * MAX_LINE).prop_map(Piece::Long),
        1 => Just(Piece::InvalidUtf8),
    ];
    let how =
        prop_oneof![Just(Rotation::Rename), Just(Rotation::CopyTruncate), Just(Rotation::Recreate)];
    prop_oneof![
        8 => (0..2usize, piece, proptest::bool::weighted(0.7))
            .prop_map(|(file, piece, newline)| Op::Write { file, piece, newline }),
        2 => (0..2usize, how).prop_map(|(file, how)| Op::Rotate { file, how }),
        1 => Just(Op::Stop),
        1 => Just(Op::Start),
    ]
}

struct FileModel {
    path: PathBuf,
    /// The line being written, tag included.
    pending: Vec<u8>,
    /// Lines written so far, as they must be delivered.
    expected: Vec<String>,
    lines_started: usize,
    rotated_while_down: bool,
}

impl FileModel {
    fn write(&mut self, idx: usize, piece: &Piece, newline: bool) {
        let mut bytes = Vec::new();
        if self.pending.is_empty() {
            bytes.extend(format!("f{idx}-{:04} ", self.lines_started).into_bytes());
            self.lines_started += 1;
        }
        match piece {
            Piece::Short(it) => bytes.extend(it),
            Piece::Long(n) => bytes.extend(std::iter::repeat_n(b'x', *n)),
            Piece::InvalidUtf8 => bytes.extend(b"ok\xff\xfebad"),
        }
        self.pending.extend(&bytes);
        if newline {
            bytes.push(b'\n');
            self.finish_line();
        }
        append(&self.path, &bytes);
    }

    /// The pending line as the tailer delivers it: cut to the maximum, decoded lossily.
    fn finish_line(&mut self) {
        if !self.pending.is_empty() {
            let kept = &self.pending[..self.pending.len().min(MAX_LINE)];
            self.expected.push(String::from_utf8_lossy(kept).into_owned());
            self.pending.clear();
        }
    }

    fn rotate(&mut self, how: Rotation) {
        // The writer moves to the new file: the old one's unterminated line stays as it is.
        self.finish_line();
        let path = &self.path;
        match how {
            Rotation::Rename => {
                fs::rename(path, rotated(path, ".1")).unwrap();
                fs::File::create(path).unwrap();
            }
            Rotation::CopyTruncate => copy_truncate(path),
            Rotation::Recreate => {
                fs::remove_file(path).unwrap();
                fs::File::create(path).unwrap();
            }
        }
    }
}

struct Model {
    dir: tempfile::TempDir,
    files: Vec<FileModel>,
    delivered: Delivered,
    running: Option<Running>,
}

impl Model {
    fn config(&self) -> TailConfig {
        // Polling alone: it must be enough.
        TailConfig {
            inotify: false,
            max_line_bytes: MAX_LINE,
            ..config(self.dir.path(), &["*.log"])
        }
    }

    /// Writes a line to every file (or one) and waits until everything written is delivered.
    async fn mark_and_sync(&mut self, only: Option<usize>) {
        for (idx, file) in self.files.iter_mut().enumerate() {
            if only.is_none_or(|it| it == idx) {
                file.write(idx, &Piece::Short(b"mark".to_vec()), true);
            }
        }
        self.sync().await;
    }

    async fn sync(&self) {
        let total: usize = self.files.iter().map(|it| it.expected.len()).sum();
        wait_until(&format!("{total} lines"), || self.delivered.unique().len() >= total).await;
        let unique = self.delivered.unique();
        for (idx, file) in self.files.iter().enumerate() {
            let tag = format!("f{idx}-");
            let got: Vec<&str> = unique
                .iter()
                .filter(|it| it.text.starts_with(&tag))
                .map(|it| it.text.as_str())
                .collect();
            assert_eq!(got, file.expected, "file {idx}");
        }
        assert_eq!(unique.len(), total, "nothing but the written lines");
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { file, ref piece, newline } => self.files[file].write(file, piece, newline),
            Op::Rotate { file, how } => {
                if self.running.is_some() {
                    self.files[file].rotate(how);
                    self.mark_and_sync(Some(file)).await;
                } else if !self.files[file].rotated_while_down && !matches!(how, Rotation::Recreate)
                {
                    self.files[file].rotated_while_down = true;
                    self.files[file].rotate(how);
                }
            }
            Op::Stop => {
                if let Some(running) = self.running.take() {
                    running.stop().await;
                }
            }
            Op::Start => {
                if self.running.is_none() {
                    self.running = Some(start(&self.config(), &self.delivered).await);
                    for it in &mut self.files {
                        it.rotated_while_down = false;
                    }
                    self.mark_and_sync(None).await;
                }
            }
        }
    }
}

async fn run_model(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let files = (0..2)
        .map(|idx| FileModel {
            path: dir.path().join(format!("{idx}.log")),
            pending: Vec::new(),
            expected: Vec::new(),
            lines_started: 0,
            rotated_while_down: false,
        })
        .collect();
    let mut model = Model { dir, files, delivered: Delivered::default(), running: None };
    for it in &mut model.files {
        fs::File::create(&it.path).unwrap();
    }
    model.apply(&Op::Start).await;
    for op in &ops {
        model.apply(op).await;
    }
    model.apply(&Op::Start).await;
    model.sync().await;
    if let Some(running) = model.running.take() {
        running.stop().await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_line_is_delivered_exactly_once_in_order(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_model(ops));
    }
}
