//! The matcher: fail2ban's `Filter.processLine` / `findFailure` for one filter.
//!
//! Per line: find and cut out the timestamp, append the line to the `maxlines` buffer, run
//! `prefregex` (whose `<F-CONTENT>` becomes the text the failregexes see), try every failregex
//! (fail2ban's test mode `checkAllRegex`), check `ignoreregex`, merge multi-line state by
//! `<F-MLFID>` (`<F-NOFAIL>`, `<F-MLFFORGET>`, `<F-MLFGAINED>`), and report the failure ID.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use crate::{
    Value,
    date::{Clock, DateDetector},
    dns::{Resolver, UseDns},
    failregex::{F2bRegex, Found, GroupName, TupleLine, tuple_buf},
    pyre::Rx,
    reader::FilterDefinition,
};

/// A problem found while building a filter; the filter is usable without the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which option (`failregex`, `ignoreregex`, `prefregex`, `datepattern`).
    pub option: &'static str,
    /// 1-based index of the regex within the option (0 for single-valued options).
    pub index: usize,
    /// What went wrong.
    pub message: String,
}

/// A regex that needs the backtracking engine, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FancyUse {
    /// Which option.
    pub option: &'static str,
    /// 1-based index within the option (0 for single-valued options).
    pub index: usize,
    /// The features that need backtracking (look-ahead, conditional, …).
    pub features: Vec<&'static str>,
}

/// What one line produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineResult {
    /// A failure was reported (pending and `nofail` results do not count).
    pub matched: bool,
    /// An ignoreregex matched.
    pub ignored: bool,
    /// The failure ID (raw `<HOST>`/`<ADDR>`/`<F-ID>` value).
    pub host: Option<String>,
    /// The failure's time (seconds since the epoch), if the line had one.
    pub time: Option<f64>,
    /// The index (0-based) of the failregex that reported the failure.
    pub regex: Option<usize>,
    /// With `usedns = yes|warn`, the host name a failure ID was resolved from; `host` is then
    /// its first address and `hosts` all of them (fail2ban reports one failure per address).
    pub resolved_from: Option<String>,
    /// Every address `resolved_from` resolved to (empty when no name was resolved).
    pub hosts: Vec<String>,
}

/// A failure's groups (`fail` in fail2ban).
#[derive(Debug, Clone, Default)]
struct Fail {
    groups: Vec<(Arc<str>, Option<Value>)>,
    users: Option<BTreeSet<String>>,
    pending: bool,
}

impl Fail {
    fn get(&self, k: &str) -> Option<&str> {
        self.groups.iter().find(|(n, _)| &**n == k).and_then(|(_, v)| v.as_deref())
    }
    fn truthy(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| !v.is_empty())
    }
    fn set(&mut self, k: &str, v: Option<Value>) {
        match self.groups.iter_mut().find(|(n, _)| &**n == k) {
            Some(slot) => slot.1 = v,
            None => self.groups.push((Arc::from(k), v)),
        }
    }
    fn set_name(&mut self, k: &Arc<str>, v: Option<Value>) {
        match self.groups.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => self.groups.push((Arc::clone(k), v)),
        }
    }
    /// `pop`: removes and returns whether the value was truthy.
    fn pop_truthy(&mut self, k: &str) -> bool {
        let t = self.truthy(k);
        self.groups.retain(|(n, _)| &**n != k);
        t
    }
    fn update_non_none(&mut self, other: &Fail) {
        for (k, v) in &other.groups {
            if v.is_some() {
                self.set_name(k, v.clone());
            }
        }
        if other.pending {
            self.pending = true;
        }
    }
    /// `_updateUsers`.
    /// Returns the number of users seen (`None`: none yet).
    fn update_users(&mut self, user: Option<&str>) -> Option<usize> {
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            let users = self.users.get_or_insert_with(BTreeSet::new);
            if !users.contains(u) {
                users.insert(u.to_owned());
            }
        }
        self.users.as_ref().map(BTreeSet::len)
    }
}

type Shared = Arc<Mutex<Fail>>;

fn lock(s: &Shared) -> MutexGuard<'_, Fail> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failure owned by one line, or shared with the multi-line cache.
enum Holder {
    Own(Box<Fail>),
    Shared(Shared),
}

impl Holder {
    fn with<T>(&self, f: impl FnOnce(&Fail) -> T) -> T {
        match self {
            Holder::Own(fail) => f(fail),
            Holder::Shared(s) => f(&lock(s)),
        }
    }
    fn with_mut(&self, f: impl FnOnce(&mut Fail)) {
        if let Holder::Shared(s) = self {
            f(&mut lock(s));
        }
    }
}

/// A bounded map for multi-line failure IDs (fail2ban keeps 100; the oldest entry goes first).
#[derive(Debug, Default)]
struct MlfidCache {
    entries: HashMap<Arc<str>, (u64, Shared)>,
    /// Keys in the order they were set, with the sequence number they were set with; a pair
    /// whose number is no longer the entry's is stale (the key was set again or removed).
    order: std::collections::VecDeque<(u64, Arc<str>)>,
    next: u64,
}

impl MlfidCache {
    const MAX: usize = 100;
    fn get(&self, k: &str) -> Option<Shared> {
        self.entries.get(k).map(|(_, v)| Arc::clone(v))
    }
    fn current(&self, n: u64, k: &str) -> bool {
        self.entries.get(k).is_some_and(|(m, _)| *m == n)
    }
    fn set(&mut self, k: &str, v: Shared) {
        self.entries.remove(k);
        if self.entries.len() >= Self::MAX {
            // The oldest entry: the first pair in `order` that is not stale.
            while let Some((n, oldest)) = self.order.pop_front() {
                if self.current(n, &oldest) {
                    self.entries.remove(&oldest);
                    break;
                }
            }
        }
        self.next += 1;
        let key: Arc<str> = Arc::from(k);
        self.entries.insert(Arc::clone(&key), (self.next, v));
        self.order.push_back((self.next, key));
        if self.order.len() > 4 * Self::MAX {
            let entries = &self.entries;
            self.order.retain(|(n, k)| entries.get(k).is_some_and(|(m, _)| m == n));
        }
    }
    fn unset(&mut self, k: &str) {
        self.entries.remove(k);
    }
}

/// A loaded fail2ban filter with its matching state.
#[derive(Debug)]
pub struct Filter {
    m: Arc<Matcher>,
    maxlines: usize,
    dates: DateDetector,
    buffer: Vec<TupleLine>,
    last_date: Option<f64>,
    last_time_text: String,
    mlfid: MlfidCache,
    problems: Vec<Problem>,
    fancy: Vec<FancyUse>,
    usedns: UseDns,
    resolver: Option<Arc<Resolver>>,
    /// Group names met in [`Filter::apply_batched`], each allocated once on this thread.
    names: Vec<Arc<str>>,
    /// The names of the batch [`Filter::apply_batched`] read last, by its epoch.
    batch_names: (u64, Vec<Arc<str>>),
}

/// A filter's compiled regexes: the part of a single-line filter's work that depends on the
/// line alone. It is immutable, so several threads can [`Matcher::scan`] lines at once while the
/// [`Filter`] applies the results (multi-line failure IDs) in line order. A clone per thread
/// gives each thread its own regex caches.
#[derive(Debug, Clone)]
pub struct Matcher {
    prefregex: Option<F2bRegex>,
    /// `prefregex` in its [`F2bRegex::rest_of_line_form`], for buffers of one line.
    prefregex_line: Option<F2bRegex>,
    failregex: Vec<F2bRegex>,
    ignoreregex: Vec<F2bRegex>,
    /// Single-line filters: which failregexes can match a line, in one linear-time pass.
    candidates: Option<Candidates>,
}

/// A failure's named groups (`None`: the group did not take part in the match), by names of
/// type `N` (see [`GroupName`]).
type Groups<N = Arc<str>> = Vec<(N, Option<Value>)>;

/// What the regexes of a single-line filter found in one line ([`Matcher::scan`]), before the
/// filter's state is applied ([`Filter::apply`]). `N` is how group names are held: shared
/// (`Arc<str>`) in a scan that is kept, borrowed from the [`Matcher`] in one that is copied into
/// a [`crate::ScanBatch`] at once ([`Matcher::scan_into`]).
#[derive(Debug, Clone)]
pub struct Scan<N = Arc<str>> {
    /// An ignoreregex matched before any failregex was tried.
    pub(crate) ignored_first: bool,
    /// An ignoreregex matched after a failregex did.
    pub(crate) ignored: bool,
    /// Every failregex that matched (and was not ignored), in order, with its groups merged
    /// over those of `prefregex`.
    pub(crate) hits: Vec<(usize, Groups<N>)>,
}

impl<N> Default for Scan<N> {
    fn default() -> Self {
        Scan { ignored_first: false, ignored: false, hits: Vec::new() }
    }
}

impl Matcher {
    /// A copy for one scanning thread: its own regex caches (as any clone) and its own group
    /// names, whose reference counts then stay in that thread's cache (a plain clone shares
    /// them, and every group found would bounce their cache line between cores).
    pub fn for_thread(&self) -> Matcher {
        Matcher {
            prefregex: self.prefregex.as_ref().map(F2bRegex::for_thread),
            prefregex_line: self.prefregex_line.as_ref().map(F2bRegex::for_thread),
            failregex: self.failregex.iter().map(F2bRegex::for_thread).collect(),
            ignoreregex: self.ignoreregex.iter().map(F2bRegex::for_thread).collect(),
            candidates: self.candidates.clone(),
        }
    }

    /// Second step of a single-line filter, on any thread: runs `prefregex`, the failregexes
    /// and the ignoreregexes over `buf` (from [`Filter::prepare_line`], ending in `\n`).
    pub fn scan(&self, buf: &str) -> Scan {
        self.scan_as(buf)
    }

    /// [`Matcher::scan`] appended to `batch`. The names stay borrowed from this matcher until
    /// the batch copies them: no reference count is touched (one atomic operation per group
    /// and line, twice, was a tenth of a scanning thread's time on sshd.conf).
    pub fn scan_into(&self, buf: &str, batch: &mut crate::ScanBatch) {
        batch.push(self.scan_as::<std::borrow::Cow<'_, str>>(buf));
    }

    /// [`Matcher::scan`] with group names of type `N`.
    fn scan_as<'m, N: GroupName<'m>>(&'m self, buf: &str) -> Scan<N> {
        let mut scan = Scan::default();
        let ignored = |text: &str| self.ignoreregex.iter().any(|ig| ig.search(text, &[]).is_some());
        if !self.ignoreregex.is_empty()
            && self.ignoreregex.len() + 2 < self.failregex.len()
            && ignored(buf)
        {
            scan.ignored_first = true;
            return scan;
        }
        let mut pre_groups: Option<Groups<N>> = None;
        let content_buf: String;
        let mut cur = buf;
        // With the rest-of-line form, where the content starts is known from the match alone;
        // the groups are read only if a failregex can match.
        let mut pending_groups = None;
        let fast = self.prefregex_line.as_ref().filter(|_| {
            self.candidates.is_some() && buf.find('\n').is_some_and(|p| p + 1 == buf.len())
        });
        if let Some(line) = fast
            && let Some(span) = line.rx.find_in(buf, 0, buf.len())
        {
            let Some((start, end)) = span else { return scan };
            let last = buf[..end].chars().next_back().map_or(0, char::len_utf8);
            cur = &buf[end - last..];
            pending_groups = Some((line, (start, end)));
        } else if let Some(pref) = &self.prefregex {
            let Some((found, rest)) = self.search_prefregex::<N>(pref, buf) else { return scan };
            let mut groups = found.groups;
            if let Some(start) = rest {
                // The content runs to the end of the line: the buffer's tail is the text.
                cur = &buf[start..];
            } else if let Some(pos) = groups.iter().position(|(n, _)| &**n == "content") {
                let (_, v) = groups.remove(pos);
                if let Some(repl) = v.filter(|v| !v.is_empty()) {
                    content_buf = format!("{repl}\n");
                    cur = &content_buf;
                }
            }
            groups.retain(|(_, v)| v.is_some());
            pre_groups = Some(groups);
        }
        let n = self.failregex.len();
        let (mut few, mut many);
        let maybe: &mut [bool] = if n <= 64 {
            few = [true; 64];
            &mut few[..n]
        } else {
            many = vec![true; n];
            &mut many
        };
        if let Some(c) = &self.candidates
            && !c.read(cur, maybe)
        {
            return scan;
        }
        let mut cur_ignored: Option<bool> = None;
        let exact = self.candidates.as_ref().is_some_and(|c| c.exact(cur));
        for (index, rx) in self.failregex.iter().enumerate() {
            if !maybe[index] {
                continue;
            }
            // The candidates may flag a failregex that does not match: for a backtracking
            // one, `search` checks its linear-time superset first.
            let found = if exact { rx.search_prechecked(cur) } else { rx.search_as(cur, &[]) };
            let Some(found) = found else { continue };
            if !self.ignoreregex.is_empty() && *cur_ignored.get_or_insert_with(|| ignored(cur)) {
                scan.ignored = true;
                continue;
            }
            // The prefregex's groups are read once a failregex matched: most lines the
            // candidates let through match none.
            if let Some((line, found)) = pending_groups.take() {
                let Some(spans) = line.rx.search_found(buf, 0, buf.len(), found) else {
                    return Scan::default();
                };
                let mut groups = line.found_except(buf, &[], &spans, Some("content")).groups;
                groups.retain(|(_, v)| v.is_some());
                pre_groups = Some(groups);
            }
            // A group that did not take part reads like a missing one everywhere, so only
            // groups with a value are kept (one without still clears the prefregex's value).
            // The last failregex that can match takes the prefregex's groups, the others copy.
            let last = !maybe[index + 1..].contains(&true);
            let pre = if last { pre_groups.take() } else { pre_groups.clone() };
            let mut groups: Groups<N> = found.groups;
            for (k, v) in pre.into_iter().flatten() {
                if !groups.iter().any(|(n, _)| **n == *k) {
                    groups.push((k, v));
                }
            }
            groups.retain(|(_, v)| v.is_some());
            scan.hits.push((index, groups));
        }
        scan
    }
}

impl Matcher {
    /// `prefregex` over `buf`; through its rest-of-line form when `buf` is one line. Then the
    /// `content` group (left out of the groups) starts at the returned offset and runs to the
    /// end of `buf`, final `\n` excluded.
    fn search_prefregex<'m, N: GroupName<'m>>(
        &'m self,
        pref: &'m F2bRegex,
        buf: &str,
    ) -> Option<(Found<N>, Option<usize>)> {
        let one_line = buf.find('\n').is_some_and(|p| p + 1 == buf.len());
        let Some(line) = self.prefregex_line.as_ref().filter(|_| one_line) else {
            return pref.search_as(buf, &[]).map(|f| (f, None));
        };
        let spans = line.rx.search(buf)?;
        let mut found = line.found_except(buf, &[], &spans, Some("content"));
        let start = line.rx.names().iter().find(|(n, _)| &**n == "content");
        let start = start.and_then(|(_, i)| spans.get(*i)).map(|(s, _)| s);
        if start.is_none() {
            // Cannot happen (the group is in every match), but keep fail2ban's reading then.
            found = line.found_except(buf, &[], &spans, None);
        }
        Some((found, start))
    }
}

/// All failregexes as one multi-pattern automaton without capture groups: pattern `i` matches
/// the text `prefregex` cut out exactly when failregex `i` does (a pattern that needs the
/// backtracking engine is replaced by its linear-time superset), so the capture engines run
/// only for the failregexes that match. The patterns are anchored as the failregexes are, so
/// the automaton usually stops after a few bytes.
#[derive(Debug, Clone)]
struct Candidates {
    /// Built on first use when `heads` exist (only lines with non-ASCII text need it); `None`
    /// inside if it does not build (then every failregex is tried).
    set: std::sync::OnceLock<Option<regex::RegexSet>>,
    patterns: Vec<String>,
    /// The same patterns with ASCII classes, for ASCII lines (much smaller automata).
    ascii: Option<regex::bytes::RegexSet>,
    /// For ASCII lines: the patterns' leading parts ([`crate::engine::Heads`]), which flag a
    /// superset of the failregexes that match, after a few bytes.
    heads: Option<crate::engine::Heads>,
}

impl Candidates {
    fn new(failregex: &[F2bRegex]) -> Option<Candidates> {
        let patterns = failregex
            .iter()
            .map(|r| match r.rx.linear_pattern() {
                Some(p) => Ok(p.to_owned()),
                None => crate::pyre::relaxed(&r.expanded(), false),
            })
            .collect::<Result<Vec<String>, String>>()
            .ok()?;
        let heads = crate::engine::Heads::new(&patterns);
        let set = std::sync::OnceLock::new();
        if heads.is_none() {
            let _ = set.set(Some(Self::unicode_set(&patterns)?));
        }
        // The heads replace the exact ASCII set on ASCII lines.
        let ascii = heads.is_none().then(|| {
            regex::bytes::RegexSetBuilder::new(patterns.iter().map(|a| format!("(?-u){a}")))
                .size_limit(64 << 20)
                .build()
                .ok()
        });
        Some(Candidates { set, patterns, ascii: ascii.flatten(), heads })
    }

    fn unicode_set(patterns: &[String]) -> Option<regex::RegexSet> {
        regex::RegexSetBuilder::new(patterns).size_limit(64 << 20).build().ok()
    }

    /// Whether [`Candidates::read`] flags exactly the failregexes that match `buf`.
    fn exact(&self, buf: &str) -> bool {
        self.heads.is_none() || !buf.is_ascii() && self.set().is_some()
    }

    fn set(&self) -> Option<&regex::RegexSet> {
        self.set.get_or_init(|| Self::unicode_set(&self.patterns)).as_ref()
    }

    /// Sets `maybe[i]` for every failregex that can match `buf` (some flagged ones may not);
    /// whether any can.
    fn read(&self, buf: &str, maybe: &mut [bool]) -> bool {
        if let Some(heads) = &self.heads
            && buf.is_ascii()
        {
            return heads.read(buf.as_bytes(), maybe);
        }
        maybe.fill(false);
        match (&self.ascii, self.set()) {
            (Some(a), _) if buf.is_ascii() => a.matches_read_at(maybe, buf.as_bytes(), 0),
            (_, Some(set)) => set.matches_read_at(maybe, buf, 0),
            (_, None) => {
                maybe.fill(true);
                true
            }
        }
    }
}

impl Filter {
    /// Builds a filter from a definition. Regexes that do not compile (or have no failure-ID
    /// group) are left out and listed in [`Filter::problems`]; a bad `datepattern` falls back to
    /// the default detection and is listed too.
    pub fn new(def: &FilterDefinition, real_year: i32) -> Filter {
        let mut problems = Vec::new();
        let mut fancy = Vec::new();
        let multiline = def.maxlines > 1;
        let usedns = match def.usedns.as_deref().map(|v| (v, UseDns::parse(v))) {
            None => UseDns::Raw,
            Some((_, Some(mode))) => mode,
            Some((v, None)) => {
                // fail2ban logs an error and falls back to the safe `no`.
                problems.push(Problem {
                    option: "usedns",
                    index: 0,
                    message: format!("incorrect value {v:?} (expected yes, warn, no or raw)"),
                });
                UseDns::No
            }
        };
        let host_dns = usedns != UseDns::No;
        let compile = |src: &str, multiline| F2bRegex::with_dns(src, multiline, host_dns);
        let mut note_fancy = |option, index, rx: &Rx| {
            if !rx.fancy_features().is_empty() {
                fancy.push(FancyUse { option, index, features: rx.fancy_features().to_vec() });
            }
        };
        let prefregex = def.prefregex.as_deref().and_then(|p| match compile(p, false) {
            Ok(r) => {
                note_fancy("prefregex", 0, &r.rx);
                Some(r)
            }
            Err(message) => {
                problems.push(Problem { option: "prefregex", index: 0, message });
                None
            }
        });
        const ID_GROUPS: [&str; 5] = ["fid", "ip4", "ip6", "dns", "mlfid"];
        let pref_has_id =
            prefregex.as_ref().is_some_and(|p| ID_GROUPS.iter().any(|g| p.rx.has_group(g)));
        let mut failregex = Vec::new();
        for (i, src) in def.failregex.iter().enumerate() {
            match compile(src, multiline) {
                Ok(r) if pref_has_id || ID_GROUPS.iter().any(|g| r.rx.has_group(g)) => {
                    note_fancy("failregex", i + 1, &r.rx);
                    failregex.push(r);
                }
                Ok(_) => problems.push(Problem {
                    option: "failregex",
                    index: i + 1,
                    message: format!("no failure-id group in {src:?}"),
                }),
                Err(message) => {
                    problems.push(Problem { option: "failregex", index: i + 1, message });
                }
            }
        }
        let mut ignoreregex = Vec::new();
        for (i, src) in def.ignoreregex.iter().enumerate() {
            match compile(src, multiline) {
                Ok(r) => {
                    note_fancy("ignoreregex", i + 1, &r.rx);
                    ignoreregex.push(r);
                }
                Err(message) => {
                    problems.push(Problem { option: "ignoreregex", index: i + 1, message });
                }
            }
        }
        let dates = match DateDetector::new(def.datepattern.as_deref(), real_year) {
            Ok(d) => d,
            Err(message) => {
                problems.push(Problem { option: "datepattern", index: 0, message });
                DateDetector::new(None, real_year).unwrap_or_else(|_| {
                    DateDetector::new(Some("{NONE}"), real_year).expect("the empty template builds")
                })
            }
        };
        let candidates = if def.maxlines <= 1 && !failregex.is_empty() {
            Candidates::new(&failregex)
        } else {
            None
        };
        Filter {
            m: Arc::new(Matcher {
                prefregex_line: prefregex.as_ref().and_then(F2bRegex::rest_of_line_form),
                prefregex,
                failregex,
                ignoreregex,
                candidates,
            }),
            maxlines: def.maxlines.max(1),
            dates,
            buffer: Vec::new(),
            last_date: None,
            last_time_text: String::new(),
            mlfid: MlfidCache::default(),
            problems,
            fancy,
            usedns,
            resolver: usedns.resolves().then(|| Arc::new(Resolver::system(Resolver::TIMEOUT))),
            names: Vec::new(),
            batch_names: (0, Vec::new()),
        }
    }

    /// The filter's `usedns` mode.
    pub fn usedns(&self) -> UseDns {
        self.usedns
    }

    /// Resolves host names with `resolver` (for `usedns = yes|warn`; the default is the system
    /// resolver with [`Resolver::TIMEOUT`]). Never used with `usedns = no|raw`.
    pub fn set_resolver(&mut self, resolver: Arc<Resolver>) {
        if self.usedns.resolves() {
            self.resolver = Some(resolver);
        }
    }

    /// fail2ban's `logtimezone` (`Filter.setLogTimeZone`): timestamps without a zone of their
    /// own are read at this fixed offset (`UTC`, `UTC+0200`, `-04:00`, `CET`, …) instead of the
    /// clock's zone.
    pub fn set_log_timezone(&mut self, tz: &str) -> Result<(), String> {
        let minutes = crate::date::parse_log_timezone(tz)?;
        self.dates.set_default_offset(Some(minutes));
        Ok(())
    }

    /// Items that could not be built.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Regexes that run on the backtracking engine.
    pub fn fancy(&self) -> &[FancyUse] {
        &self.fancy
    }

    /// Number of usable failregexes.
    pub fn failregex_count(&self) -> usize {
        self.m.failregex.len()
    }

    /// The failregexes as written in the filter.
    pub fn failregex_sources(&self) -> impl Iterator<Item = &str> {
        self.m.failregex.iter().map(|r| r.source.as_str())
    }

    /// Processes one log line (`processLine` without a given date).
    pub fn process_line(&mut self, line: &str, clock: &Clock) -> LineResult {
        if self.single_line() {
            let mut buf = String::with_capacity(line.len() + 1);
            let date = self.prepare_line(line, clock, &mut buf);
            let scan = self.m.scan(&buf);
            return self.apply(scan, date);
        }
        let (tuple, date) = self.cut_date(line, clock);
        self.find_failure(tuple, date)
    }

    /// Processes a journal message whose time is known (fail2ban's systemd backend).
    pub fn process_journal_line(&mut self, line: &str, time: f64) -> LineResult {
        if self.single_line() {
            let mut buf = String::with_capacity(line.len() + 1);
            let date = self.prepare_journal_line(line, time, &mut buf);
            let scan = self.m.scan(&buf);
            return self.apply(scan, date);
        }
        self.last_date = Some(time);
        self.find_failure((String::new(), String::new(), line.to_owned()), Some(time))
    }

    /// Whether each line is matched on its own (`maxlines` 1): then the work splits into
    /// [`Filter::prepare_line`] (in line order), [`Matcher::scan`] (on any thread) and
    /// [`Filter::apply`] (in line order), which together do what [`Filter::process_line`] does.
    pub fn single_line(&self) -> bool {
        self.maxlines <= 1
    }

    /// The compiled regexes, to scan lines on other threads.
    pub fn matcher(&self) -> Arc<Matcher> {
        Arc::clone(&self.m)
    }

    /// First step of a single-line filter: finds and cuts out the timestamp (this updates the
    /// date detector, so lines must come in order). Appends the text the regexes search, with
    /// its final `\n`, to `buf`; returns the line's time.
    pub fn prepare_line(&mut self, line: &str, clock: &Clock, buf: &mut String) -> Option<f64> {
        let now = clock.now;
        let recent = |ld: Option<f64>| ld.filter(|ld| *ld > now - 60.0);
        let mut date: Option<f64> = None;
        // The timestamp's span, cut out of the line (`None`: the whole line is searched).
        let mut cut: Option<(usize, usize)> = None;
        if let Some(m) = self.dates.find(line, clock) {
            let (s, e) = m.span;
            if s < e {
                cut = Some((s, e));
                if let Some(d) = m.time {
                    date = Some(d);
                    self.last_time_text.clear();
                    self.last_time_text.push_str(&line[s..e]);
                    self.last_date = Some(d);
                }
            } else if let Some(ld) = recent(self.last_date) {
                date = Some(ld);
            } else {
                cut = Some((s, e));
                date = Some(now);
            }
        }
        if date.is_none()
            && let Some(ld) = recent(self.last_date)
        {
            cut = None;
            date = Some(ld);
        }
        match cut {
            Some((s, e)) => {
                buf.push_str(&line[..s]);
                buf.push_str(&line[e..]);
            }
            None => buf.push_str(line),
        }
        buf.push('\n');
        date
    }

    /// [`Filter::prepare_line`] for a journal message whose time is known.
    pub fn prepare_journal_line(&mut self, line: &str, time: f64, buf: &mut String) -> Option<f64> {
        self.last_date = Some(time);
        buf.push_str(line);
        buf.push('\n');
        Some(time)
    }

    /// Last step of a single-line filter: applies a line's [`Scan`] to the multi-line failure
    /// state, in line order.
    pub fn apply(&mut self, scan: Scan, date: Option<f64>) -> LineResult {
        let mut result = LineResult { ignored: scan.ignored_first, ..LineResult::default() };
        if scan.ignored_first {
            return result;
        }
        result.ignored = scan.ignored;
        for (index, groups) in scan.hits {
            self.report(index, Fail { groups, ..Fail::default() }, date, &mut result);
        }
        result
    }

    /// [`Filter::apply`] for the scan of line `line` of `batch` (0-based; a line the batch does
    /// not hold matches nothing). The groups are copied, so `batch` can go back to the thread
    /// that filled it.
    pub fn apply_batched(
        &mut self,
        batch: &crate::ScanBatch,
        line: usize,
        date: Option<f64>,
    ) -> LineResult {
        let Some(scan) = batch.get(line) else { return LineResult::default() };
        let mut result = LineResult { ignored: scan.ignored_first, ..LineResult::default() };
        if scan.ignored_first {
            return result;
        }
        result.ignored = scan.ignored;
        if self.batch_names.0 != batch.epoch() {
            let names: Vec<&str> = batch.names().collect();
            let names = names.into_iter().map(|it| self.name(it)).collect();
            self.batch_names = (batch.epoch(), names);
        }
        for (index, groups) in scan.hits() {
            let groups = groups.map(|(name, value)| {
                let name = self.batch_names.1.get(name).cloned().unwrap_or_else(|| Arc::from(""));
                (name, value.map(Value::from))
            });
            let fail = Fail { groups: groups.collect(), ..Fail::default() };
            self.report(index, fail, date, &mut result);
        }
        result
    }

    /// The group name `name`, shared with earlier uses on this thread.
    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.iter().find(|it| ***it == *name) {
            return Arc::clone(known);
        }
        let fresh: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&fresh));
        fresh
    }

    /// Finds and cuts out the timestamp (the multi-line path keeps the line's three parts).
    fn cut_date(&mut self, line: &str, clock: &Clock) -> (TupleLine, Option<f64>) {
        let now = clock.now;
        let mut date: Option<f64> = None;
        let tuple: TupleLine;
        match self.dates.find(line, clock) {
            Some(m) => {
                let (s, e) = m.span;
                let text = &line[s..e];
                let mut t = (line[..s].to_owned(), text.to_owned(), line[e..].to_owned());
                if !text.is_empty() {
                    if let Some(d) = m.time {
                        date = Some(d);
                        self.last_time_text = text.to_owned();
                        self.last_date = Some(d);
                    }
                } else if let Some(ld) = self.last_date.filter(|ld| *ld > now - 60.0) {
                    t = (String::new(), self.last_time_text.clone(), line.to_owned());
                    date = Some(ld);
                } else {
                    date = Some(now);
                }
                tuple = t;
            }
            None => tuple = (String::new(), String::new(), line.to_owned()),
        }
        let mut tuple = tuple;
        if date.is_none()
            && let Some(ld) = self.last_date.filter(|ld| *ld > now - 60.0)
        {
            tuple = (String::new(), self.last_time_text.clone(), line.to_owned());
            date = Some(ld);
        }
        (tuple, date)
    }

    fn ignore_line(&mut self, buf: &str, org: &[TupleLine], fail_found: Option<&Found>) -> bool {
        let multi = self.maxlines > 1;
        let (buf_owned, org_owned);
        let (buf, org) = match fail_found {
            Some(f) if multi => {
                // Only the lines the failregex used.
                let matched: Vec<TupleLine> =
                    org.iter().filter(|l| !f.unmatched.contains(l)).cloned().collect();
                buf_owned = tuple_buf(&matched);
                org_owned = matched;
                (buf_owned.as_str(), org_owned.as_slice())
            }
            _ => (buf, org),
        };
        for ig in &self.m.ignoreregex {
            if ig.search(buf, org).is_some() {
                if multi && let Some(f) = fail_found {
                    self.buffer = f.unmatched.clone();
                }
                return true;
            }
        }
        false
    }

    fn find_failure(&mut self, tuple: TupleLine, date: Option<f64>) -> LineResult {
        let mut result = LineResult::default();
        let org: Vec<TupleLine> = if self.maxlines > 1 {
            self.buffer.push(tuple);
            let start = self.buffer.len().saturating_sub(self.maxlines);
            self.buffer.drain(..start);
            self.buffer.clone()
        } else {
            // A single line: the regexes need no line bookkeeping, so no copy of the buffer.
            self.buffer = vec![tuple];
            Vec::new()
        };
        let mut buf: Option<String> =
            Some(tuple_buf(if org.is_empty() { &self.buffer } else { &org }));

        let m = Arc::clone(&self.m);
        if !m.ignoreregex.is_empty()
            && m.ignoreregex.len() + 2 < m.failregex.len()
            && self.ignore_line(buf.as_deref().unwrap_or(""), &org, None)
        {
            result.ignored = true;
            return result;
        }

        let mut pre_groups: Option<Vec<(Arc<str>, Option<Value>)>> = None;
        if let Some(pref) = &m.prefregex {
            let Some(found) = pref.search(buf.as_deref().unwrap_or(""), &org) else {
                return result;
            };
            let mut groups = found.groups;
            let content = groups.iter().position(|(n, _)| &**n == "content");
            if let Some(pos) = content {
                let (_, v) = groups.remove(pos);
                if let Some(repl) = v.filter(|v| !v.is_empty()) {
                    self.buffer = vec![(String::new(), String::new(), repl.into())];
                    buf = None;
                }
            }
            pre_groups = Some(groups);
        }

        let mut cur = buf.take().unwrap_or_else(|| tuple_buf(&self.buffer));
        let mut dirty = false;
        for index in 0..m.failregex.len() {
            if dirty {
                cur = tuple_buf(&self.buffer);
                dirty = false;
            }
            let Some(found) = m.failregex[index].search(&cur, &org) else { continue };
            if !m.ignoreregex.is_empty() && self.ignore_line(&cur, &org, Some(&found)) {
                result.ignored = true;
                dirty = true;
                continue;
            }
            let Found { groups, unmatched } = found;
            if self.maxlines > 1 {
                self.buffer = unmatched;
                dirty = true;
            }
            let fail = match &pre_groups {
                Some(pre) if !pre.is_empty() => {
                    let mut merged = Fail { groups: pre.clone(), ..Fail::default() };
                    for (k, v) in groups {
                        merged.set_name(&k, v);
                    }
                    merged
                }
                _ => Fail { groups, ..Fail::default() },
            };
            self.report(index, fail, date, &mut result);
        }
        result
    }

    /// The end of `findFailure` for one failregex match: merges multi-line state and decides
    /// whether the line reports a failure.
    fn report(&mut self, index: usize, fail: Fail, date: Option<f64>, result: &mut LineResult) {
        // Inline values: a pid-and-host prefix or an address needs no allocation.
        let mlfid = fail.get("mlfid").map(Value::from);
        let holder = match &mlfid {
            Some(id) => Holder::Shared(self.merge_failure(id, fail)),
            None => Holder::Own(Box::new(fail)),
        };
        let (fid, ip, from_dns, addr_id) = holder.with(|f| {
            let fid = f.get("fid").map(Value::from);
            let addr = f.get("ip4").or_else(|| f.get("ip6"));
            let ip = addr.or_else(|| f.get("dns")).map(Value::from);
            // An address is the ID in fail2ban's normal form (`IPAddr(ip, cidr)`).
            let addr_id = match (f.get("ip4"), f.get("ip6")) {
                (Some(v4), _) => Some(crate::dns::addr_id(v4, f.get("cidr"), false)),
                (None, Some(v6)) => Some(crate::dns::addr_id(v6, f.get("cidr"), true)),
                _ => None,
            };
            (fid, ip, addr.is_none() && f.get("dns").is_some(), addr_id)
        });
        // A host name is reported as it is with `usedns = raw`, otherwise as the addresses it
        // stands for (none with `usedns = no`: then there is no failure).
        let resolved = match &ip {
            Some(name) if from_dns && self.usedns != UseDns::Raw => {
                let ips = crate::dns::text_to_ips(name, self.usedns, self.resolver.as_deref());
                if ips.is_empty() {
                    return;
                }
                Some((name.to_string(), ips.iter().map(ToString::to_string).collect::<Vec<_>>()))
            }
            _ => None,
        };
        let ip = match ip {
            Some(ip) => Some(ip),
            // No failure ID at all: fail2ban logs an error and skips this regex.
            None if fid.is_none() && mlfid.is_none() => return,
            None => fid.clone(),
        };
        let host = match ip {
            None => {
                holder.with_mut(|f| f.pending = true);
                None
            }
            Some(ip) => Some(match fid {
                Some(fid) if fid != ip => fid.into(),
                _ => addr_id.unwrap_or_else(|| ip.into()),
            }),
        };
        if result.matched {
            return;
        }
        let (host, nofail) =
            holder.with(|f| (f.get("host").map(str::to_owned).or(host), f.truthy("nofail")));
        if host.is_some() && !nofail {
            result.matched = true;
            result.host = host;
            result.time = date;
            result.regex = Some(index);
            if let Some((name, ips)) = resolved {
                result.host = ips.first().cloned();
                result.resolved_from = Some(name);
                result.hosts = ips;
            }
        }
    }

    /// `_mergeFailure`: returns the (possibly cached, shared) failure for `mlfid`.
    fn merge_failure(&mut self, mlfid: &str, mut fail: Fail) -> Shared {
        let mut nfflgs = 0u8;
        if fail.truthy("mlfgained") {
            nfflgs |= 8 | 1;
            if !fail.truthy("nofail") {
                let g = fail.get("mlfgained").map(Value::from);
                fail.set("nofail", g);
            }
        } else if fail.truthy("nofail") {
            nfflgs |= 1;
        }
        if fail.pop_truthy("mlfforget") {
            nfflgs |= 2;
        }
        let users;
        let shared: Shared;
        if let Some(cached) = self.mlfid.get(mlfid) {
            {
                let mut g = lock(&cached);
                users = g.update_users(fail.get("user"));
                if g.pop_truthy("nofail") {
                    nfflgs |= 4;
                }
                if g.pop_truthy("mlfgained") {
                    nfflgs |= 4;
                }
                if nfflgs & 8 != 0 {
                    g.pending = false;
                }
                g.update_non_none(&fail);
            }
            shared = cached;
            if nfflgs & 2 != 0 {
                self.mlfid.unset(mlfid);
            }
        } else {
            users = if nfflgs & 2 == 0 {
                fail.update_users(fail.get("user").map(str::to_owned).as_deref())
            } else {
                None
            };
            shared = Arc::new(Mutex::new(fail));
            if nfflgs & 2 == 0 {
                self.mlfid.set(mlfid, Arc::clone(&shared));
            }
        }
        {
            let mut g = lock(&shared);
            let pending = std::mem::take(&mut g.pending);
            if pending || users.is_some_and(|n| n > 1) {
                g.pop_truthy("nofail");
                g.pop_truthy("mlfgained");
            }
        }
        shared
    }
}

impl Filter {
    /// A copy of the date detector in its current state, for a scanning thread to date lines
    /// speculatively ([`crate::Speculator::prepare_line`]).
    pub fn speculator(&self) -> crate::Speculator {
        crate::Speculator { dates: self.dates.clone() }
    }

    /// First step of a single-line filter from a scanning thread's [`crate::Guess`], in line
    /// order: when the real date detector is in the state the guess was made from, makes the
    /// change [`Filter::prepare_line`] would make and returns the line's time (`Some`); the
    /// text the guess cut out is then what `prepare_line` would cut. `None`: the guess does not
    /// hold, process the line with [`Filter::process_line`].
    pub fn accept(&mut self, guess: &crate::Guess) -> Option<Option<f64>> {
        match &guess.0 {
            crate::speculate::GuessKind::Date(step) => {
                let time = step.time?;
                if !self.dates.replay(step) {
                    return None;
                }
                // `last_time_text` is read only by the multi-line path.
                self.last_date = Some(time);
                Some(Some(time))
            }
            crate::speculate::GuessKind::Journal(time) => {
                self.last_date = Some(*time);
                Some(Some(*time))
            }
        }
    }
}
