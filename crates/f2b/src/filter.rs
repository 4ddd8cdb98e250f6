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
    date::{Clock, DateDetector},
    failregex::{F2bRegex, Found, TupleLine, tuple_buf},
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
}

/// A failure's groups (`fail` in fail2ban).
#[derive(Debug, Clone, Default)]
struct Fail {
    groups: Vec<(Arc<str>, Option<String>)>,
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
    fn set(&mut self, k: &str, v: Option<String>) {
        match self.groups.iter_mut().find(|(n, _)| &**n == k) {
            Some(slot) => slot.1 = v,
            None => self.groups.push((Arc::from(k), v)),
        }
    }
    fn set_name(&mut self, k: &Arc<str>, v: Option<String>) {
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
    fn update_users(&mut self, user: Option<&str>) -> Option<BTreeSet<String>> {
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            self.users.get_or_insert_with(BTreeSet::new).insert(u.to_owned());
        }
        self.users.clone()
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
    entries: HashMap<String, (u64, Shared)>,
    next: u64,
}

impl MlfidCache {
    const MAX: usize = 100;
    fn get(&self, k: &str) -> Option<Shared> {
        self.entries.get(k).map(|(_, v)| Arc::clone(v))
    }
    fn set(&mut self, k: &str, v: Shared) {
        self.entries.remove(k);
        if self.entries.len() >= Self::MAX
            && let Some(oldest) =
                self.entries.iter().min_by_key(|(_, (n, _))| *n).map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.next += 1;
        self.entries.insert(k.to_owned(), (self.next, v));
    }
    fn unset(&mut self, k: &str) {
        self.entries.remove(k);
    }
}

/// A loaded fail2ban filter with its matching state.
#[derive(Debug)]
pub struct Filter {
    prefregex: Option<F2bRegex>,
    failregex: Vec<F2bRegex>,
    ignoreregex: Vec<F2bRegex>,
    maxlines: usize,
    dates: DateDetector,
    buffer: Vec<TupleLine>,
    last_date: Option<f64>,
    last_time_text: String,
    mlfid: MlfidCache,
    problems: Vec<Problem>,
    fancy: Vec<FancyUse>,
    /// Single-line filters: one linear-time regex a line must match for any failregex to match.
    line_prefilter: Option<(regex::Regex, Option<regex::bytes::Regex>)>,
}

impl Filter {
    /// Builds a filter from a definition. Regexes that do not compile (or have no failure-ID
    /// group) are left out and listed in [`Filter::problems`]; a bad `datepattern` falls back to
    /// the default detection and is listed too.
    pub fn new(def: &FilterDefinition, real_year: i32) -> Filter {
        let mut problems = Vec::new();
        let mut fancy = Vec::new();
        let multiline = def.maxlines > 1;
        let mut note_fancy = |option, index, rx: &Rx| {
            if !rx.fancy_features().is_empty() {
                fancy.push(FancyUse { option, index, features: rx.fancy_features().to_vec() });
            }
        };
        let prefregex = def.prefregex.as_deref().and_then(|p| match F2bRegex::new(p, false) {
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
            match F2bRegex::new(src, multiline) {
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
            match F2bRegex::new(src, multiline) {
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
        let line_prefilter = if def.maxlines <= 1 && !failregex.is_empty() {
            failregex
                .iter()
                .map(|r| crate::pyre::free(&crate::failregex::resolve_tags(&r.source)))
                .collect::<Result<Vec<String>, String>>()
                .ok()
                .and_then(|alts| {
                    let joined =
                        alts.iter().map(|a| format!("(?:{a})")).collect::<Vec<_>>().join("|");
                    let re = regex::RegexBuilder::new(&joined).size_limit(64 << 20).build().ok()?;
                    Some((re, crate::pyre::ascii_variant(&joined)))
                })
        } else {
            None
        };
        Filter {
            line_prefilter,
            prefregex,
            failregex,
            ignoreregex,
            maxlines: def.maxlines.max(1),
            dates,
            buffer: Vec::new(),
            last_date: None,
            last_time_text: String::new(),
            mlfid: MlfidCache::default(),
            problems,
            fancy,
        }
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
        self.failregex.len()
    }

    /// The failregexes as written in the filter.
    pub fn failregex_sources(&self) -> impl Iterator<Item = &str> {
        self.failregex.iter().map(|r| r.source.as_str())
    }

    /// Processes one log line (`processLine` without a given date).
    pub fn process_line(&mut self, line: &str, clock: &Clock) -> LineResult {
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
        self.find_failure(tuple, date)
    }

    /// Processes a journal message whose time is known (fail2ban's systemd backend).
    pub fn process_journal_line(&mut self, line: &str, time: f64) -> LineResult {
        self.last_date = Some(time);
        self.find_failure((String::new(), String::new(), line.to_owned()), Some(time))
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
        for ig in &self.ignoreregex {
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

        if !self.ignoreregex.is_empty()
            && self.ignoreregex.len() + 2 < self.failregex.len()
            && self.ignore_line(buf.as_deref().unwrap_or(""), &org, None)
        {
            result.ignored = true;
            return result;
        }

        if let Some((pre, ascii)) = &self.line_prefilter {
            let b = buf.as_deref().unwrap_or("");
            let hit = match ascii {
                Some(a) if b.is_ascii() => a.is_match(b.as_bytes()),
                _ => pre.is_match(b),
            };
            if !hit {
                return result;
            }
        }

        let mut pre_groups: Option<Vec<(Arc<str>, Option<String>)>> = None;
        if let Some(pref) = &self.prefregex {
            let Some(found) = pref.search(buf.as_deref().unwrap_or(""), &org) else {
                return result;
            };
            let mut groups = found.groups;
            let content = groups.iter().position(|(n, _)| &**n == "content");
            if let Some(pos) = content {
                let (_, v) = groups.remove(pos);
                if let Some(repl) = v.filter(|v| !v.is_empty()) {
                    self.buffer = vec![(String::new(), String::new(), repl)];
                    buf = None;
                }
            }
            pre_groups = Some(groups);
        }

        let mut cur = buf.take().unwrap_or_else(|| tuple_buf(&self.buffer));
        let mut dirty = false;
        for index in 0..self.failregex.len() {
            if dirty {
                cur = tuple_buf(&self.buffer);
                dirty = false;
            }
            let Some(found) = self.failregex[index].search(&cur, &org) else { continue };
            if !self.ignoreregex.is_empty() && self.ignore_line(&cur, &org, Some(&found)) {
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
            let mlfid = fail.get("mlfid").map(str::to_owned);
            let holder = match &mlfid {
                Some(id) => Holder::Shared(self.merge_failure(id, fail)),
                None => Holder::Own(Box::new(fail)),
            };
            let (fid, ip) = holder.with(|f| {
                let fid = f.get("fid").map(str::to_owned);
                let ip = f
                    .get("ip4")
                    .or_else(|| f.get("ip6"))
                    .or_else(|| f.get("dns"))
                    .map(str::to_owned);
                (fid, ip)
            });
            let ip = match ip {
                Some(ip) => Some(ip),
                // No failure ID at all: fail2ban logs an error and skips this regex.
                None if fid.is_none() && mlfid.is_none() => continue,
                None => fid.clone(),
            };
            let host = match ip {
                None => {
                    holder.with_mut(|f| f.pending = true);
                    None
                }
                Some(ip) => Some(match fid {
                    Some(fid) if fid != ip => fid,
                    _ => ip,
                }),
            };
            if result.matched {
                continue;
            }
            let (host, nofail) =
                holder.with(|f| (f.get("host").map(str::to_owned).or(host), f.truthy("nofail")));
            if host.is_some() && !nofail {
                result.matched = true;
                result.host = host;
                result.time = date;
                result.regex = Some(index);
            }
        }
        result
    }

    /// `_mergeFailure`: returns the (possibly cached, shared) failure for `mlfid`.
    fn merge_failure(&mut self, mlfid: &str, mut fail: Fail) -> Shared {
        let mut nfflgs = 0u8;
        if fail.truthy("mlfgained") {
            nfflgs |= 8 | 1;
            if !fail.truthy("nofail") {
                let g = fail.get("mlfgained").map(str::to_owned);
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
            if pending || users.is_some_and(|u| u.len() > 1) {
                g.pop_truthy("nofail");
                g.pop_truthy("mlfgained");
            }
        }
        shared
    }
}
