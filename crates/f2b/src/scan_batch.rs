//! The scans of a run of lines kept in one flat buffer, to hand them from a scanning thread to
//! the thread that applies them.
//!
//! A [`Scan`] owns its group values: one heap string per group, and a reference-counted group
//! name shared by every thread that runs the same regexes. Handed to another thread, each of
//! those is freed there: allocator locks and reference counts then bounce between cores, and two
//! scanning threads ran hardly faster than one (`vigil filter-test`, 2 cores). A [`ScanBatch`]
//! copies each scan into a few flat vectors on the scanning thread (which frees the scan
//! itself), so a batch crosses threads as a handful of buffers reused run after run, and the
//! applying thread rebuilds the groups it needs with its own allocations
//! ([`Filter::apply_batched`](crate::Filter::apply_batched)).

use std::ops::Range;

use crate::filter::Scan;

/// The scans of many lines, in order (see the module documentation).
#[derive(Debug, Default)]
pub struct ScanBatch {
    /// Tells this batch's contents from any other's (see [`ScanBatch::epoch`]); 0 while empty.
    epoch: u64,
    /// Group names (each once) and values, one after another.
    text: String,
    /// The group names met, each once, by their range in `text` (a filter has few).
    names: Vec<Range<usize>>,
    /// Per name in `names`: the address of the text it was last met with. A scanning thread
    /// passes the same shared names line after line, so comparing addresses first finds them
    /// without comparing text against every name.
    seen_at: Vec<usize>,
    /// Per group: its name (index in `names`), and its value's range in `text`, if any.
    groups: Vec<(usize, Option<Range<usize>>)>,
    /// Per failregex that matched: its index and its range in `groups`.
    hits: Vec<(usize, Range<usize>)>,
    /// Per line: `ignored_first`, `ignored`, and its range in `hits`.
    lines: Vec<(bool, bool, Range<usize>)>,
}

/// One group of a [`BatchedScan`] hit: its name (an index of [`ScanBatch::names`]) and value.
pub(crate) type BatchedGroup<'a> = (usize, Option<&'a str>);

/// One line's scan read back from a [`ScanBatch`].
pub(crate) struct BatchedScan<'a> {
    pub(crate) ignored_first: bool,
    pub(crate) ignored: bool,
    batch: &'a ScanBatch,
    hits: Range<usize>,
}

impl ScanBatch {
    /// Appends the scan of the next line; `scan` is freed here.
    pub fn push<N: std::ops::Deref<Target = str>>(&mut self, scan: Scan<N>) {
        if self.epoch == 0 {
            static EPOCHS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            self.epoch = EPOCHS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let hits_start = self.hits.len();
        for (index, groups) in scan.hits {
            let groups_start = self.groups.len();
            for (name, value) in groups {
                let name = self.name(&name);
                let value = value.map(|v| self.put(&v));
                self.groups.push((name, value));
            }
            self.hits.push((index, groups_start..self.groups.len()));
        }
        self.lines.push((scan.ignored_first, scan.ignored, hits_start..self.hits.len()));
    }

    /// Appends a line that was not scanned: it matched nothing.
    pub fn push_unscanned(&mut self) {
        self.push(Scan::<&str>::default());
    }

    /// The index of `name` in `names` (compared by text: a name made for one match, an `alt_`
    /// or `tuple_` target, is freed with its scan, so its address may come back as another's).
    fn name(&mut self, name: &str) -> usize {
        let text = &self.text;
        let address = name.as_ptr() as usize;
        // The address alone is not proof: a freed name's may come back as another's.
        if let Some(at) = self.seen_at.iter().position(|&seen| seen == address)
            && text[self.names[at].clone()] == *name
        {
            return at;
        }
        if let Some(at) = self.names.iter().position(|range| text[range.clone()] == *name) {
            self.seen_at[at] = address;
            return at;
        }
        let range = self.put(name);
        self.names.push(range);
        self.seen_at.push(address);
        self.names.len() - 1
    }

    fn put(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    /// Lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Forgets every line, keeping the buffers for the next run.
    pub fn clear(&mut self) {
        self.epoch = 0;
        self.text.clear();
        self.names.clear();
        self.seen_at.clear();
        self.groups.clear();
        self.hits.clear();
        self.lines.clear();
    }

    /// A number no other batch's contents had since the process started (0 while empty): a
    /// reader may keep what it derived from the names for as long as it reads the same epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The group names held, by index.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|range| &self.text[range.clone()])
    }

    /// The scan of line `line` (0-based), if held.
    pub(crate) fn get(&self, line: usize) -> Option<BatchedScan<'_>> {
        let (ignored_first, ignored, hits) = self.lines.get(line)?.clone();
        Some(BatchedScan { ignored_first, ignored, batch: self, hits })
    }
}

impl<'a> BatchedScan<'a> {
    /// Each failregex that matched, in order: its index and its groups.
    pub(crate) fn hits(
        self,
    ) -> impl Iterator<Item = (usize, impl Iterator<Item = BatchedGroup<'a>>)> {
        let batch = self.batch;
        batch.hits[self.hits].iter().map(move |(index, groups)| {
            let groups = batch.groups[groups.clone()]
                .iter()
                .map(move |(name, value)| (*name, value.clone().map(|v| &batch.text[v])));
            (*index, groups)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Clock, Filter, FilterDefinition, ScanBatch};

    /// A filter with the features whose groups a batch must carry: `prefregex` groups merged
    /// into each hit, several failregexes matching one line, failure IDs shared across lines
    /// (`mlfid`), `nofail`, and an ignoreregex.
    fn filter() -> Filter {
        let def = FilterDefinition {
            prefregex: Some(
                r"^\s*<F-MLFID>\S+ sshd\[\d+\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$".into(),
            ),
            failregex: vec![
                r"^Failed \S+ for (?:invalid user )?<F-USER>\S+</F-USER> from <HOST>".into(),
                r"^Failed (?P<nofail>\S+) for".into(),
                r"^Connection from <HOST>".into(),
                r"^Accepted \S+ for <F-USER>\S+</F-USER> from <HOST>".into(),
            ],
            ignoreregex: vec![r"from 192\.0\.2\.99".into()],
            maxlines: 1,
            ..FilterDefinition::default()
        };
        Filter::new(&def, 2026)
    }

    #[test]
    fn names_made_for_one_scan_are_not_confused_with_later_ones() {
        // `alt_NAME` groups whose target is not a group of the pattern may get a name made for
        // the match, freed with its scan; whatever the addresses, every line's groups must keep
        // their names.
        let def = FilterDefinition {
            failregex: vec![r"^\s*a (?P<alt_user>\S+) (?P<alt_fid>\S+) <HOST>".into()],
            maxlines: 1,
            ..FilterDefinition::default()
        };
        let clock = Clock { now: 1_790_000_000.0, zone: chrono_tz::UTC, real_year: 2026 };
        let (mut one, mut other) = (Filter::new(&def, 2026), Filter::new(&def, 2026));
        let matcher = other.matcher().for_thread();
        let mut batch = ScanBatch::default();
        let mut expected = Vec::new();
        let mut dates = Vec::new();
        for i in 0..50 {
            let line = format!("Nov 23 10:00:{:02} a u{i} id{i} 192.0.2.{i}", i % 60);
            let mut buf = String::new();
            let date = one.prepare_line(&line, &clock, &mut buf);
            // Both ways in: shared names (a kept scan) and borrowed ones.
            if i % 2 == 0 {
                batch.push(matcher.scan(&buf));
            } else {
                matcher.scan_into(&buf, &mut batch);
            }
            expected.push(one.apply(one.matcher().scan(&buf), date));
            let mut buf = String::new();
            dates.push(other.prepare_line(&line, &clock, &mut buf));
        }
        for (i, (want, date)) in expected.iter().zip(dates).enumerate() {
            assert_eq!(&other.apply_batched(&batch, i, date), want, "line {i}");
        }
        // The failure ID names the failure (not the address, not the user).
        for (i, r) in expected.iter().enumerate() {
            assert_eq!(r.host.as_deref(), Some(format!("id{i}").as_str()), "{r:?}");
        }
    }

    #[test]
    fn a_batched_scan_applies_exactly_like_the_scan_it_holds() {
        let clock = Clock { now: 1_790_000_000.0, zone: chrono_tz::UTC, real_year: 2026 };
        let lines = [
            "Nov 23 10:00:00 host sshd[1]: Connection from 192.0.2.7 port 22",
            "Nov 23 10:00:01 host sshd[1]: Failed password for root from 192.0.2.7 port 22",
            "Nov 23 10:00:02 host sshd[2]: Failed password for invalid user a b from 2001:db8::1",
            "Nov 23 10:00:03 host sshd[3]: Failed password for x from 192.0.2.99 port 1",
            "Nov 23 10:00:04 host sshd[1]: Accepted password for root from 192.0.2.7 port 22",
            "Nov 23 10:00:05 host cron[4]: nothing to see",
            "no date at all",
            "",
        ];
        let (mut one, mut other) = (filter(), filter());
        let matcher = other.matcher().for_thread();
        let mut batch = ScanBatch::default();
        // The same batch refilled, lines in the other order: its names come in another order
        // too, and what the applying filter derived from the first filling must not be reused.
        let backwards: Vec<&str> = lines.iter().rev().copied().collect();
        for order in [lines.to_vec(), backwards] {
            batch.clear();
            assert!(batch.is_empty());
            let mut expected = Vec::new();
            let mut dates = Vec::new();
            for line in &order {
                let mut buf = String::new();
                let date = one.prepare_line(line, &clock, &mut buf);
                let scan = one.matcher().scan(&buf);
                if date.is_some() {
                    matcher.scan_into(&buf, &mut batch);
                } else {
                    // As `vigil filter-test` does: a line without a date is not scanned.
                    batch.push_unscanned();
                }
                expected.push(one.apply(scan, date));
                let mut buf = String::new();
                dates.push(other.prepare_line(line, &clock, &mut buf));
            }
            assert_eq!(batch.len(), order.len());
            let got: Vec<_> =
                dates.iter().enumerate().map(|(i, d)| other.apply_batched(&batch, i, *d)).collect();
            assert_eq!(got, expected);
            assert!(got.iter().filter(|r| r.matched).count() >= 3, "{got:?}");
            assert!(got.iter().any(|r| r.ignored), "{got:?}");
        }
        // A line the batch does not hold matches nothing.
        assert_eq!(other.apply_batched(&batch, lines.len(), None), Default::default());
        batch.clear();
        assert!(batch.is_empty());
    }
}
