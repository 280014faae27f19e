//! Metrics from files: the long CSV `tenant,cluster,node,metric,timestamp,value`, JSON lines of
//! the same fields, NAB's `timestamp,value` (identifiers given as options), and a wide CSV
//! `timestamp,m1,m2,...` (one node, a column per metric, identifiers given as options).
//!
//! Files are read as they stream in, never whole: only the rows the query selects are kept, so
//! memory follows the selection, not the file; [`FileSource::read_in_batches`] goes further and hands
//! out batches of whole nodes as it reads (rows grouped by node), so memory holds one batch
//! whatever the file's size. CSV files are read 64 KiB at a time, checked as UTF-8 once per
//! block, and split at commas and line ends found eight bytes at a time; fields are byte
//! ranges; a row's series is found by its identifiers' text (validated once per series); the
//! common timestamp layouts are read digit by digit. [`FileSource::read`] reads a long CSV of
//! 16 MiB or more with one thread per core (or [`FileOptions::threads`]), each over a byte range
//! of the file split at a line end; the series, the repair report and every message are the
//! sequential reader's.
//!
//! **Strict** mode (the default) stops at the first problem with the file, line and field.
//! **Lenient** mode repairs what can be repaired and counts every change per series: rows out
//! of order are sorted, repeated timestamps keep the last row, rows with a non-finite,
//! non-numeric or unreadable value or timestamp are dropped, a ragged row is dropped, and a
//! timestamp written in a different format than the file's first is accepted.
//! Nothing is dropped without being counted. Structural problems (no header, a missing or
//! unknown column, no data rows) are errors in both modes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use analytics_types::{ClusterId, MetricName, MetricSeries, NodeId, SeriesKey, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::timestamp::{parse_timestamp, TimestampFormat, TimestampParser};
use crate::{IoError, Selector, TimeRange};

/// The layout of a metrics file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// `tenant,cluster,node,metric,timestamp,value`, any column order.
    Long,
    /// One JSON object per line with the long CSV's fields.
    Jsonl,
    /// NAB's `timestamp,value`; tenant, cluster, node and metric come from the options.
    Nab,
    /// `timestamp,m1,m2,...`: one node, a column per metric; tenant, cluster, node from options.
    Wide,
}

/// How to read a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOptions {
    /// The layout; None: guessed from the extension (`.jsonl`, `.ndjson`) or the header.
    pub format: Option<FileFormat>,
    /// Tenant for NAB and wide files.
    pub tenant: Option<String>,
    /// Cluster for NAB and wide files.
    pub cluster: Option<String>,
    /// Node for NAB and wide files (default: the file's name without extension).
    pub node: Option<String>,
    /// Metric for NAB files (default: `value`).
    pub metric: Option<String>,
    /// Repair what can be repaired instead of stopping.
    pub lenient: bool,
    /// Threads reading a long CSV of 16 MiB or more (None: one per core; 1: one thread).
    pub threads: Option<usize>,
}

/// What lenient mode changed in one series.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Repairs {
    /// Rows kept.
    pub rows_kept: usize,
    /// Rows that arrived before an earlier row's timestamp (the series was sorted).
    pub out_of_order: usize,
    /// Rows dropped because a later row had the same timestamp.
    pub duplicates_dropped: usize,
    /// Rows dropped for a NaN or infinite value.
    pub non_finite_dropped: usize,
    /// Rows dropped for a value that is not a number.
    pub non_numeric_dropped: usize,
    /// Rows dropped for an unreadable timestamp.
    pub bad_timestamp_dropped: usize,
    /// Rows whose timestamp was written in another format than the file's first (kept).
    pub mixed_timestamp_formats: usize,
}

impl Repairs {
    /// Adds the counts of `other` (the same series read in another part of the file). Every
    /// field is named, so a new count cannot be forgotten here.
    fn add(&mut self, other: Repairs) {
        let Repairs {
            rows_kept,
            out_of_order,
            duplicates_dropped,
            non_finite_dropped,
            non_numeric_dropped,
            bad_timestamp_dropped,
            mixed_timestamp_formats,
        } = other;
        self.rows_kept += rows_kept;
        self.out_of_order += out_of_order;
        self.duplicates_dropped += duplicates_dropped;
        self.non_finite_dropped += non_finite_dropped;
        self.non_numeric_dropped += non_numeric_dropped;
        self.bad_timestamp_dropped += bad_timestamp_dropped;
        self.mixed_timestamp_formats += mixed_timestamp_formats;
    }

    /// Whether anything was changed.
    pub fn is_clean(&self) -> bool {
        Repairs { rows_kept: self.rows_kept, ..Default::default() } == *self
    }
}

/// What lenient mode changed, per series and for the file as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RepairReport {
    /// The file.
    pub path: PathBuf,
    /// Changes per series (every series read appears, changed or not).
    pub series: BTreeMap<String, Repairs>,
    /// Rows dropped before they could be attributed to a series (ragged rows, bad identifiers).
    pub unattributed_dropped: usize,
    /// Rows not selected by the query (not errors; reported for completeness).
    pub not_selected: usize,
}

impl RepairReport {
    /// Whether lenient mode changed anything.
    pub fn is_clean(&self) -> bool {
        self.unattributed_dropped == 0 && self.series.values().all(Repairs::is_clean)
    }

    /// One line per changed series, for people.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, r) in self.series.iter().filter(|(_, r)| !r.is_clean()) {
            let mut parts = Vec::new();
            for (n, what) in [
                (r.out_of_order, "rows out of order (sorted)"),
                (r.duplicates_dropped, "duplicate timestamps dropped (kept the last)"),
                (r.non_finite_dropped, "non-finite values dropped"),
                (r.non_numeric_dropped, "non-numeric values dropped"),
                (r.bad_timestamp_dropped, "unreadable timestamps dropped"),
                (r.mixed_timestamp_formats, "timestamps in another format (kept)"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            out.push(format!("{k}: {} rows kept; {}", r.rows_kept, parts.join(", ")));
        }
        if self.unattributed_dropped > 0 {
            out.push(format!(
                "{}: {} rows dropped before a series could be read from them",
                self.path.display(),
                self.unattributed_dropped
            ));
        }
        out
    }
}

/// A file of metrics, read on demand.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    options: FileOptions,
}

/// A series' rows as read: timestamps and values in the layout of [`MetricSeries`], so building
/// the series moves them instead of copying, and the line of the last row (for messages).
#[derive(Default)]
struct Rows {
    ts: Vec<DateTime<Utc>>,
    vs: Vec<f64>,
    first_line: usize,
    last_line: usize,
}

/// One series being read: its key, whether the query selects it (tenant and selector; the time
/// range is checked per row), its rows and what lenient mode changed. `touched` marks a slot
/// that holds a row or a counted problem: only those are built and reported, as before slots
/// existed.
struct Slot {
    key: SeriesKey,
    selected: bool,
    touched: bool,
    /// Taken out in a streaming batch.
    done: bool,
    rows: Rows,
    repairs: Repairs,
}

/// Parsing state shared by all formats.
struct Reader<'a> {
    path: &'a Path,
    lenient: bool,
    first_format: Option<(TimestampFormat, usize)>,
    /// Every series seen, in order of first appearance, and each key's slot.
    slots: Vec<Slot>,
    index: HashMap<SeriesKey, usize>,
    /// The slot of each identifier text seen: the four fields joined by a unit separator, or as
    /// the long CSV wrote them where they are neighbouring columns.
    interned: HashMap<String, usize>,
    /// The identifier text of the last row and its slot: a fleet file repeats it on every row of
    /// a series, so most rows resolve with one comparison.
    last_text: String,
    last_slot: Option<usize>,
    scratch: String,
    timestamps: TimestampParser,
    /// Rows kept so far, over all series.
    rows_total: usize,
    report: RepairReport,
    tenant: Option<&'a TenantId>,
    selector: &'a Selector,
    range: &'a TimeRange,
    /// Streaming: emit a batch after this many completed nodes (None: read everything).
    batch_nodes: Option<usize>,
    /// The node rows are arriving for, the nodes already completed, and those not yet emitted.
    current: Option<(TenantId, ClusterId, NodeId)>,
    completed: std::collections::BTreeSet<(TenantId, ClusterId, NodeId)>,
    pending: Vec<(TenantId, ClusterId, NodeId)>,
    ready: Vec<Vec<MetricSeries>>,
}

impl<'a> Reader<'a> {
    fn new(
        path: &'a Path,
        lenient: bool,
        tenant: Option<&'a TenantId>,
        selector: &'a Selector,
        range: &'a TimeRange,
        batch_nodes: Option<usize>,
    ) -> Self {
        Reader {
            path,
            lenient,
            first_format: None,
            slots: Vec::new(),
            index: HashMap::new(),
            interned: HashMap::new(),
            last_text: String::new(),
            last_slot: None,
            scratch: String::new(),
            timestamps: TimestampParser::default(),
            rows_total: 0,
            report: RepairReport { path: path.to_path_buf(), ..Default::default() },
            tenant,
            selector,
            range,
            batch_nodes,
            current: None,
            completed: Default::default(),
            pending: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// The data rows of a long CSV after its header, to the end of `reader`, whose first line is
    /// line `before + 1`: the number of data rows read (blank lines are not rows). Batches made
    /// ready by streaming go to `sink`.
    fn long_rows<R: Read, E: From<IoError>>(
        &mut self,
        reader: &mut R,
        before: usize,
        columns: usize,
        at: [usize; 6],
        sink: &mut dyn FnMut(Vec<MetricSeries>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut data_rows = 0;
        let path = self.path;
        // Where the four identifiers are neighbouring columns (as `analytics simulate` and most
        // exports write them), their text as written identifies the series.
        let neighbours = at[1] == at[0] + 1 && at[2] == at[0] + 2 && at[3] == at[0] + 3;
        scan_lines(reader, before, path, &mut |i, l, f| {
            if blank(l) {
                return Ok(());
            }
            data_rows += 1;
            if f.len() != columns {
                let message = format!("{} fields where the header has {columns}", f.len());
                return self.problem(None, i, "row", message, |x| &mut x.rows_kept).map_err(E::from);
            }
            let field = |k: usize| &l[f[at[k]].0..f[at[k]].1];
            let written = neighbours.then(|| &l[f[at[0]].0..f[at[3]].1]);
            let Some(slot) = self.slot(i, [field(0), field(1), field(2), field(3)], written)? else { return Ok(()) };
            self.track(slot, i)?;
            self.row(slot, i, field(4), field(5))?;
            for b in self.ready.drain(..) {
                sink(b)?;
            }
            Ok(())
        })?;
        Ok(data_rows)
    }

    /// One line of JSON lines (not blank).
    fn json_line(&mut self, i: usize, l: &str) -> Result<(), IoError> {
        let row: JsonRow = match serde_json::from_str(l) {
            Ok(row) => row,
            Err(e) => return self.problem(None, i, "json", e.to_string(), |x| &mut x.rows_kept),
        };
        let Some(slot) = self.slot(i, [&row.tenant, &row.cluster, &row.node, &row.metric], None)? else {
            return Ok(());
        };
        self.track(slot, i)?;
        self.row(slot, i, &json_text(row.timestamp), &json_text(row.value))
    }

    /// Streaming: notes which node a row belongs to; when enough nodes have completed, moves
    /// their series into a ready batch. Rows must be grouped by node.
    fn track(&mut self, slot: usize, line: usize) -> Result<(), IoError> {
        let Some(limit) = self.batch_nodes else { return Ok(()) };
        let key = &self.slots[slot].key;
        if self
            .current
            .as_ref()
            .is_some_and(|(t, c, n)| t == &key.tenant_id && c == &key.cluster_id && n == &key.node_id)
        {
            return Ok(());
        }
        let node = (key.tenant_id.clone(), key.cluster_id.clone(), key.node_id.clone());
        if self.completed.contains(&node) {
            return Err(self.err(
                line,
                "node",
                format!(
                    "node {}/{}/{} appears again after other nodes; streaming needs the rows of each node together (sort the file by node, or read it without --streaming)",
                    node.0, node.1, node.2
                ),
            ));
        }
        if let Some(done) = self.current.replace(node) {
            self.completed.insert(done.clone());
            self.pending.push(done);
        }
        if self.pending.len() >= limit {
            let nodes = std::mem::take(&mut self.pending);
            self.emit(&nodes)?;
        }
        Ok(())
    }

    /// Moves the series of `nodes` out of the reader into a ready batch.
    fn emit(&mut self, nodes: &[(TenantId, ClusterId, NodeId)]) -> Result<(), IoError> {
        let mut taken = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| !s.done) {
            let k = &slot.key;
            if nodes.iter().any(|(t, c, n)| &k.tenant_id == t && &k.cluster_id == c && &k.node_id == n) {
                slot.done = true;
                taken.push((
                    k.clone(),
                    std::mem::take(&mut slot.rows),
                    std::mem::take(&mut slot.repairs),
                    slot.touched,
                ));
            }
        }
        let batch = self.build(taken)?;
        if !batch.is_empty() {
            self.ready.push(batch);
        }
        Ok(())
    }

    fn err(&self, line: usize, field: &str, message: impl Into<String>) -> IoError {
        IoError::input(self.path, line, field, message)
    }

    /// A problem that lenient mode counts against a series (or the file) and strict mode reports.
    fn problem(
        &mut self,
        slot: Option<usize>,
        line: usize,
        field: &str,
        message: String,
        count: fn(&mut Repairs) -> &mut usize,
    ) -> Result<(), IoError> {
        if !self.lenient {
            return Err(self.err(line, field, message));
        }
        match slot {
            Some(k) => {
                let s = &mut self.slots[k];
                s.touched = true;
                *count(&mut s.repairs) += 1;
            }
            None => self.report.unattributed_dropped += 1,
        }
        Ok(())
    }

    /// The slot of the series named by `parts` (tenant, cluster, node, metric as written), or
    /// `None` when lenient mode drops the row for a bad identifier. `written` is the text of the
    /// four fields together where the file has them side by side (the long CSV's usual layout);
    /// otherwise they are joined here.
    fn slot(&mut self, line: usize, parts: [&str; 4], written: Option<&str>) -> Result<Option<usize>, IoError> {
        let mut joined = std::mem::take(&mut self.scratch);
        let text = match written {
            Some(t) => t,
            None => {
                joined.clear();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        joined.push('\u{1f}');
                    }
                    joined.push_str(p);
                }
                joined.as_str()
            }
        };
        let found = self.slot_of_text(line, parts, text);
        self.scratch = joined;
        found
    }

    fn slot_of_text(&mut self, line: usize, parts: [&str; 4], text: &str) -> Result<Option<usize>, IoError> {
        if let Some(slot) = self.last_slot {
            if self.last_text == text {
                return Ok(Some(slot));
            }
        }
        let slot = match self.interned.get(text) {
            Some(&slot) => slot,
            None => {
                let Some(key) = self.key(line, parts)? else { return Ok(None) };
                let slot = self.slot_of(key);
                self.interned.insert(text.to_owned(), slot);
                slot
            }
        };
        self.last_text.clear();
        self.last_text.push_str(text);
        self.last_slot = Some(slot);
        Ok(Some(slot))
    }

    /// The slot of a validated key, made on first sight.
    fn slot_of(&mut self, key: SeriesKey) -> usize {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        let selected = self.tenant.is_none_or(|tn| tn == &key.tenant_id) && self.selector.matches(&key);
        let slot = self.slots.len();
        self.index.insert(key.clone(), slot);
        // Series of a fleet file are mostly of one length: room for the mean length so far, or
        // the length of the series before this one if larger (in a file sorted by series it is
        // complete), saves the growth's copies and its unused capacity. A long first series
        // among many short ones reserves little: the mean falls as they come, and the last
        // series is short. A range of a file read in parallel that starts within a series still
        // reserves exactly from its second series on.
        let mean = self.rows_total.checked_div(self.slots.len()).unwrap_or(0);
        let room = mean.max(self.slots.last().map_or(0, |s| s.rows.ts.len()));
        let rows = Rows { ts: Vec::with_capacity(room), vs: Vec::with_capacity(room), first_line: 0, last_line: 0 };
        self.slots.push(Slot { key, selected, touched: false, done: false, rows, repairs: Repairs::default() });
        slot
    }

    fn key(&mut self, line: usize, parts: [&str; 4]) -> Result<Option<SeriesKey>, IoError> {
        let built = (|| {
            Ok::<_, analytics_types::ContractError>(SeriesKey {
                tenant_id: TenantId::new(parts[0])?,
                cluster_id: ClusterId::new(parts[1])?,
                node_id: NodeId::new(parts[2])?,
                metric_name: MetricName::new(parts[3])?,
            })
        })();
        match built {
            Ok(k) => Ok(Some(k)),
            Err(e) => {
                let field = e.to_string().split_whitespace().next().unwrap_or("id").to_owned();
                self.problem(None, line, &field, e.to_string(), |r| &mut r.rows_kept)?;
                Ok(None)
            }
        }
    }

    /// Takes one row: timestamp and value as text, for a series.
    fn row(&mut self, slot: usize, line: usize, ts: &str, value: &str) -> Result<(), IoError> {
        let t = match self.timestamps.parse(ts) {
            Ok((t, format)) => {
                match self.first_format {
                    None => self.first_format = Some((format, line)),
                    Some((first, first_line)) if first != format => {
                        let msg = format!(
                            "{ts:?} is written as {}, but line {first_line} used {}; mixed timestamp formats",
                            format.name(),
                            first.name()
                        );
                        self.problem(Some(slot), line, "timestamp", msg, |r| &mut r.mixed_timestamp_formats)?;
                    }
                    Some(_) => {}
                }
                t
            }
            Err(msg) => return self.problem(Some(slot), line, "timestamp", msg, |r| &mut r.bad_timestamp_dropped),
        };
        if !(self.slots[slot].selected && self.range.contains(t)) {
            self.report.not_selected += 1;
            return Ok(());
        }
        let v: f64 = match value.trim().parse() {
            Ok(v) => v,
            Err(_) => {
                return self.problem(Some(slot), line, "value", format!("{value:?} is not a number"), |r| {
                    &mut r.non_numeric_dropped
                });
            }
        };
        if !v.is_finite() {
            return self
                .problem(Some(slot), line, "value", format!("{value} is not finite"), |r| &mut r.non_finite_dropped);
        }
        let s = &mut self.slots[slot];
        s.touched = true;
        if let Some(&last) = s.rows.ts.last() {
            if t <= last && !self.lenient {
                return Err(not_ascending(self.path, line, t, last, s.rows.last_line, &s.key));
            }
        }
        if s.rows.ts.is_empty() {
            s.rows.first_line = line;
        }
        s.rows.ts.push(t);
        s.rows.vs.push(v);
        s.rows.last_line = line;
        self.rows_total += 1;
        Ok(())
    }

    /// Builds series from their rows, in key order: sorts and de-duplicates in lenient mode
    /// (counting), validates. Slots never touched (every row outside the query) are left out.
    fn build(&mut self, mut series: Vec<(SeriesKey, Rows, Repairs, bool)>) -> Result<Vec<MetricSeries>, IoError> {
        series.retain(|s| s.3);
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::with_capacity(series.len());
        for (key, Rows { mut ts, mut vs, .. }, mut repairs, _) in series {
            if self.lenient {
                repairs.out_of_order = ts.windows(2).filter(|w| w[1] < w[0]).count();
                if repairs.out_of_order > 0 || ts.windows(2).any(|w| w[1] == w[0]) {
                    let mut rows: Vec<(DateTime<Utc>, f64)> = ts.into_iter().zip(vs).collect();
                    rows.sort_by_key(|r| r.0); // stable: equal timestamps keep file order
                    let before = rows.len();
                    let mut kept: Vec<(DateTime<Utc>, f64)> = Vec::with_capacity(rows.len());
                    for r in rows {
                        match kept.last_mut() {
                            Some(last) if last.0 == r.0 => *last = r, // the later row wins
                            _ => kept.push(r),
                        }
                    }
                    repairs.duplicates_dropped = before - kept.len();
                    (ts, vs) = kept.into_iter().unzip();
                }
            }
            repairs.rows_kept = ts.len();
            self.report.series.insert(key.to_string(), repairs);
            if ts.is_empty() {
                continue;
            }
            ts.shrink_to_fit();
            vs.shrink_to_fit();
            let s = MetricSeries::from_key(key, ts, vs)
                .map_err(|e| IoError::input(self.path, 0, "series", e.to_string()))?;
            out.push(s);
        }
        Ok(out)
    }

    /// Everything not emitted yet, and the report.
    fn finish(mut self) -> Result<(Vec<MetricSeries>, RepairReport), IoError> {
        let rest = std::mem::take(&mut self.slots)
            .into_iter()
            .filter(|s| !s.done)
            .map(|s| (s.key, s.rows, s.repairs, s.touched))
            .collect();
        let out = self.build(rest)?;
        Ok((out, self.report))
    }
}

/// Strict mode's error for a row at `line` whose timestamp `t` is not after `last`, the series'
/// previous row (at `last_line`).
fn not_ascending(
    path: &Path,
    line: usize,
    t: DateTime<Utc>,
    last: DateTime<Utc>,
    last_line: usize,
    key: &SeriesKey,
) -> IoError {
    let what = if t == last { "repeats" } else { "is before" };
    IoError::input(
        path,
        line,
        "timestamp",
        format!(
            "{} {what} line {last_line} of series {key}; timestamps must be strictly ascending per series",
            t.to_rfc3339()
        ),
    )
}

/// Files at least this large are read by several threads when they are long CSVs (16 MiB, about
/// 200,000 rows: below it, starting threads costs more than it saves).
const PARALLEL_BYTES: u64 = 16 << 20;
/// At most this many reading threads.
const MAX_READ_THREADS: usize = 8;

/// Whether a line holds nothing but white space, as `str::trim` sees it. A line starting with a
/// printable ASCII byte (every data line) is answered at its first byte.
fn blank(line: &str) -> bool {
    line.bytes().next().is_none_or(|b| !b.is_ascii_graphic()) && line.trim().is_empty()
}

/// What [`scan_lines`] calls for each line: its number, its text, its fields' byte ranges.
type EachLine<'f, E> = dyn FnMut(usize, &str, &[(usize, usize)]) -> Result<(), E> + 'f;

/// Reads `reader` to its end in blocks of 64 KiB (more for a longer line) and calls `each`
/// with every line's number (the first is `before + 1`), its text without its line end (`\n`, or
/// `\r\n`), and the byte ranges of its comma-separated fields, trimmed as `str::trim` trims. One
/// pass of [`Separators`] over each block finds both commas and line ends; each block is checked
/// as UTF-8 once. The lines are those [`Lines`] gives, and a block that is not UTF-8 fails as
/// `read_line` does, after the lines before the bad one.
fn scan_lines<R: Read, E: From<IoError>>(
    reader: &mut R,
    before: usize,
    path: &Path,
    each: &mut EachLine<'_, E>,
) -> Result<(), E> {
    let read_err = |e: std::io::Error| IoError::Read { path: path.to_path_buf(), source: e };
    let mut buf = vec![0u8; 1 << 16];
    let (mut len, mut number) = (0, before);
    let mut fields: Vec<(usize, usize)> = Vec::with_capacity(16);
    loop {
        if len == buf.len() {
            buf.resize(2 * buf.len(), 0); // a line longer than the block
        }
        let n = loop {
            match reader.read(&mut buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e).into()),
            }
        };
        // What is kept from the last block holds no line end: only the new bytes are searched.
        let fresh = len;
        len += n;
        let eof = n == 0;
        // The complete lines of the block (all of it at the end of the input).
        let complete = if eof {
            len
        } else {
            match memchr::memrchr(b'\n', &buf[fresh..len]) {
                Some(p) => fresh + p + 1,
                None => continue,
            }
        };
        let (text, bad) = match std::str::from_utf8(&buf[..complete]) {
            Ok(t) => (t, false),
            Err(e) => {
                // The lines before the one holding the bad byte, then the error.
                let good = memchr::memrchr(b'\n', &buf[..e.valid_up_to()]).map_or(0, |p| p + 1);
                (std::str::from_utf8(&buf[..good]).unwrap_or_default(), true)
            }
        };
        let bytes = text.as_bytes();
        let (mut line_start, mut field_start) = (0, 0);
        fields.clear();
        let ends = Separators::new(bytes)
            .chain((eof && !bad && !bytes.ends_with(b"\n") && !bytes.is_empty()).then_some(bytes.len()));
        for p in ends {
            if p < bytes.len() && bytes[p] == b',' {
                fields.push(trimmed(text, field_start, p, line_start));
                field_start = p + 1;
                continue;
            }
            let mut end = p;
            if end > line_start && bytes[end - 1] == b'\r' && p < bytes.len() {
                end -= 1;
            }
            fields.push(trimmed(text, field_start, end.max(field_start), line_start));
            number += 1;
            each(number, &text[line_start..end], &fields)?;
            fields.clear();
            line_start = p + 1;
            field_start = p + 1;
        }
        if bad {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8");
            return Err(read_err(e).into());
        }
        if eof {
            return Ok(());
        }
        buf.copy_within(complete..len, 0);
        len -= complete;
    }
}

/// The positions of commas and line ends in a block, eight bytes at a time: each word's
/// separators are found with integer arithmetic (SWAR), then read off bit by bit. Separators lie
/// about ten bytes apart in a metrics file, too close for a SIMD search restarted at each one.
struct Separators<'a> {
    bytes: &'a [u8],
    /// Start of the next word to look at.
    next: usize,
    /// Start of the current word, and its separators not handed out yet (the high bit of each
    /// separator byte).
    word: usize,
    mask: u64,
}

impl<'a> Separators<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, next: 0, word: 0, mask: 0 }
    }
}

/// The high bit of each byte of `v` that is zero, and no other bit (exact: no carry crosses a
/// byte).
fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !((((v & LOW7).wrapping_add(LOW7)) | v) | LOW7)
}

impl Iterator for Separators<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        const COMMAS: u64 = 0x2c2c_2c2c_2c2c_2c2c;
        const NEWLINES: u64 = 0x0a0a_0a0a_0a0a_0a0a;
        while self.mask == 0 {
            let v = match self.bytes.get(self.next..self.next + 8) {
                Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
                None => {
                    let rest = self.bytes.get(self.next..).filter(|r| !r.is_empty())?;
                    let mut word = [0u8; 8]; // zero bytes past the end are not separators
                    word[..rest.len()].copy_from_slice(rest);
                    u64::from_le_bytes(word)
                }
            };
            self.mask = zero_bytes(v ^ COMMAS) | zero_bytes(v ^ NEWLINES);
            self.word = self.next;
            self.next += 8;
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.word + bit / 8)
    }
}

/// The field `text[from..to]` as a range relative to `line_start`, trimmed of white space at
/// either end (looked at only when an end byte is white space or not ASCII).
#[inline]
fn trimmed(text: &str, from: usize, to: usize, line_start: usize) -> (usize, usize) {
    let b = text.as_bytes();
    let (mut a, mut z) = (from, to);
    if a < z && (b[a].is_ascii_whitespace() || b[z - 1].is_ascii_whitespace() || b[a] >= 0x80 || b[z - 1] >= 0x80) {
        let t = text[a..z].trim();
        if t.is_empty() {
            z = a;
        } else {
            a += text[a..z].find(t).unwrap_or(0);
            z = a + t.len();
        }
    }
    (a - line_start, z - line_start)
}

/// The lines of a reader, one at a time into one reused buffer (no allocation per line), numbered
/// from 1. A line ends at `\n`, and a `\r` before it is dropped, as [`BufRead::lines`] does.
struct Lines<R> {
    reader: R,
    buf: String,
    number: usize,
    /// Bytes read so far.
    offset: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Self { reader, buf: String::with_capacity(256), number: 0, offset: 0 }
    }

    /// Reads the next line; its number, or `None` at the end.
    fn next_line(&mut self) -> std::io::Result<Option<usize>> {
        self.buf.clear();
        let n = self.reader.read_line(&mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.offset += n as u64;
        if self.buf.ends_with('\n') {
            self.buf.pop();
            if self.buf.ends_with('\r') {
                self.buf.pop();
            }
        }
        self.number += 1;
        Ok(Some(self.number))
    }

    /// The line last read, without its line ending.
    fn text(&self) -> &str {
        &self.buf
    }

    /// Reads up to the first line that is not [`blank`] (a file's header): its number, its text
    /// then in [`Lines::text`]; None at the end of the input.
    fn first_nonblank(&mut self) -> std::io::Result<Option<usize>> {
        while let Some(i) = self.next_line()? {
            if !blank(self.text()) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

fn split(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// The long CSV's header: its number of columns and where each of tenant, cluster, node,
/// metric, timestamp and value is.
fn long_header(path: &Path, line: usize, header: &str) -> Result<(usize, [usize; 6]), IoError> {
    let cols = split(header);
    let mut at = [usize::MAX; 6];
    for (i, c) in cols.iter().enumerate() {
        match long_column(c) {
            Some(k) => at[k] = i,
            None => {
                return Err(IoError::input(
                    path,
                    line,
                    "header",
                    format!("unknown column {c:?}; expected tenant,cluster,node,metric,timestamp,value"),
                ));
            }
        }
    }
    if let Some(k) = at.iter().position(|&a| a == usize::MAX) {
        let name = ["tenant", "cluster", "node", "metric", "timestamp", "value"][k];
        return Err(IoError::input(path, line, "header", format!("missing column {name:?}; the header is {header:?}")));
    }
    Ok((cols.len(), at))
}

/// Canonical name of a long-CSV column (accepts the contract's `_id` / `_name` spellings).
fn long_column(name: &str) -> Option<usize> {
    match name {
        "tenant" | "tenant_id" => Some(0),
        "cluster" | "cluster_id" => Some(1),
        "node" | "node_id" => Some(2),
        "metric" | "metric_name" => Some(3),
        "timestamp" => Some(4),
        "value" => Some(5),
        _ => None,
    }
}

/// One JSON line, borrowing from the line where it can: identifiers without escapes, and the
/// timestamp and value as their raw JSON text (no JSON tree per line).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow<'a> {
    #[serde(alias = "tenant_id", borrow)]
    tenant: Cow<'a, str>,
    #[serde(alias = "cluster_id", borrow)]
    cluster: Cow<'a, str>,
    #[serde(alias = "node_id", borrow)]
    node: Cow<'a, str>,
    #[serde(alias = "metric_name", borrow)]
    metric: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// A JSON scalar as the text the row parser reads: a string's contents, anything else as written
/// (a number's digits, `null`, `true`).
fn json_text(v: &RawValue) -> Cow<'_, str> {
    let raw = v.get();
    if raw.starts_with('"') {
        if !raw.contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        if let Ok(s) = serde_json::from_str::<String>(raw) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(raw)
}

impl FileSource {
    /// A source reading `path` with `options`.
    pub fn new(path: impl Into<PathBuf>, options: FileOptions) -> Self {
        Self { path: path.into(), options }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format the file is read as: the one given in the options, or else the one its
    /// header (first non-blank line) and name say, as [`FileSource::read`] decides it. Reads the
    /// header only.
    pub fn format(&self) -> Result<FileFormat, IoError> {
        if let Some(format) = self.options.format {
            return Ok(format);
        }
        let read_err = |e| IoError::Read { path: self.path.clone(), source: e };
        let mut lines = Lines::new(BufReader::new(File::open(&self.path).map_err(read_err)?));
        match lines.first_nonblank().map_err(read_err)? {
            Some(_) => Ok(self.guess_format(lines.text())),
            None => Err(IoError::input(&self.path, 0, "header", "the file is empty")),
        }
    }

    fn guess_format(&self, header: &str) -> FileFormat {
        let ext = self.path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "jsonl" | "ndjson") || header.trim_start().starts_with('{') {
            return FileFormat::Jsonl;
        }
        let cols = split(header);
        if cols.iter().any(|c| matches!(*c, "tenant" | "tenant_id")) {
            FileFormat::Long
        } else if cols == ["timestamp", "value"] {
            FileFormat::Nab
        } else {
            FileFormat::Wide
        }
    }

    /// Reads every selected series (blocking). Strict mode fails at the first problem.
    pub fn read(
        &self,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<(Vec<MetricSeries>, RepairReport), IoError> {
        let f = File::open(&self.path).map_err(|e| IoError::Read { path: self.path.clone(), source: e })?;
        let size = f.metadata().map_or(0, |m| m.len());
        let threads = self
            .options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
            .min(MAX_READ_THREADS);
        if threads > 1 && size >= PARALLEL_BYTES {
            if let Some(read) = self.read_parallel(size, threads, tenant, selector, range)? {
                return Ok(read);
            }
        }
        self.read_from(BufReader::new(f), tenant, selector, range)
    }

    /// A long CSV of at least [`PARALLEL_BYTES`], read by `threads` threads, each over a byte
    /// range of the file split at line ends; the series of the ranges are then joined in file
    /// order. The result, the report and every message are the sequential reader's: lines keep
    /// their numbers, the first timestamp format is the file's, a series' rows are checked across
    /// range ends, and the error reported is the first in the file. `None` when the file is not
    /// a long CSV with a readable first row (the sequential reader then reads it, and says what
    /// is wrong).
    fn read_parallel(
        &self,
        size: u64,
        threads: usize,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<Option<(Vec<MetricSeries>, RepairReport)>, IoError> {
        let read_err = |e: std::io::Error| IoError::Read { path: self.path.clone(), source: e };
        let open = || File::open(&self.path).map_err(read_err);
        // The header, where the data starts, and the first data row's timestamp format.
        let mut lines = Lines::new(BufReader::new(open()?));
        let Some(header_line) = lines.first_nonblank().map_err(read_err)? else { return Ok(None) };
        let (header, data_start) = (lines.text().to_owned(), lines.offset);
        if self.options.format.unwrap_or_else(|| self.guess_format(&header)) != FileFormat::Long {
            return Ok(None);
        }
        let (columns, at) = long_header(&self.path, header_line, &header)?;
        let first_format = loop {
            let Some(i) = lines.next_line().map_err(read_err)? else { return Ok(None) };
            let l = lines.text();
            if blank(l) {
                continue;
            }
            let f: Vec<&str> = split(l);
            match (f.len() == columns).then(|| parse_timestamp(f[at[4]])) {
                Some(Ok((_, format))) => break (format, i),
                _ => return Ok(None),
            }
        };
        // Range ends: the first line end at or after each even share of the data.
        let mut ends = vec![data_start];
        for k in 1..threads {
            let at_least = data_start + (size - data_start) * k as u64 / threads as u64;
            let mut f = BufReader::new(open()?);
            f.seek(SeekFrom::Start(at_least)).map_err(read_err)?;
            let mut skipped = Vec::new();
            let end = at_least + f.read_until(b'\n', &mut skipped).map_err(read_err)? as u64;
            if end > *ends.last().unwrap_or(&0) && end < size {
                ends.push(end);
            }
        }
        ends.push(size);
        let spans: Vec<(u64, u64)> = ends.windows(2).map(|w| (w[0], w[1])).collect();
        // Line numbers: each range's lines counted first, so messages name the file's lines.
        let bytes_of = |(from, to): (u64, u64)| -> Result<std::io::Take<File>, IoError> {
            let mut f = open()?;
            f.seek(SeekFrom::Start(from)).map_err(read_err)?;
            Ok(f.take(to - from))
        };
        let counts: Vec<Result<usize, IoError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = spans
                .iter()
                .map(|&span| {
                    scope.spawn(move || {
                        let mut r = BufReader::with_capacity(1 << 18, bytes_of(span)?);
                        let mut n = 0;
                        loop {
                            let buf = r.fill_buf().map_err(read_err)?;
                            if buf.is_empty() {
                                break Ok(n);
                            }
                            n += memchr::memchr_iter(b'\n', buf).count();
                            let used = buf.len();
                            r.consume(used);
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a line-counting thread panicked")).collect()
        });
        let mut before = Vec::with_capacity(spans.len());
        let mut line = header_line;
        for c in counts {
            before.push(line);
            line += c?;
        }
        // Each range read by its own reader, seeded with the file's first timestamp format.
        let lenient = self.options.lenient;
        let parts: Vec<(Reader<'_>, usize, Option<IoError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = spans
                .iter()
                .zip(&before)
                .map(|(&span, &before)| {
                    scope.spawn(move || {
                        let mut r = Reader::new(&self.path, lenient, tenant, selector, range, None);
                        r.first_format = Some(first_format);
                        let read = bytes_of(span).and_then(|bytes| {
                            r.long_rows(&mut BufReader::with_capacity(1 << 18, bytes), before, columns, at, &mut |_| {
                                Ok(())
                            })
                        });
                        match read {
                            Ok(n) => (r, n, None),
                            Err(e) => (r, 0, Some(e)),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a reading thread panicked")).collect()
        });
        // Joined in file order; in strict mode, the first error in the file wins.
        let mut joined = Reader::new(&self.path, lenient, tenant, selector, range, None);
        let mut data_rows = 0;
        for (part, rows, error) in parts {
            let mut across: Option<IoError> = None;
            let mut across_line = usize::MAX;
            for slot in part.slots {
                let Some(&k) = joined.index.get(&slot.key) else {
                    let k = joined.slots.len();
                    joined.index.insert(slot.key.clone(), k);
                    joined.slots.push(slot);
                    continue;
                };
                let into = &mut joined.slots[k];
                if let (Some(&last), Some(&first)) = (into.rows.ts.last(), slot.rows.ts.first()) {
                    if !lenient && first <= last && slot.rows.first_line < across_line {
                        across_line = slot.rows.first_line;
                        across =
                            Some(not_ascending(&self.path, across_line, first, last, into.rows.last_line, &slot.key));
                    }
                }
                if !slot.rows.ts.is_empty() {
                    if into.rows.ts.is_empty() {
                        into.rows.first_line = slot.rows.first_line;
                    }
                    into.rows.last_line = slot.rows.last_line;
                }
                into.rows.ts.reserve_exact(slot.rows.ts.len());
                into.rows.vs.reserve_exact(slot.rows.vs.len());
                into.rows.ts.extend(slot.rows.ts);
                into.rows.vs.extend(slot.rows.vs);
                into.touched |= slot.touched;
                into.repairs.add(slot.repairs);
            }
            let error_line = match &error {
                Some(IoError::Input { line, .. }) => *line,
                Some(_) => 0,
                None => usize::MAX,
            };
            match (across, error) {
                (Some(a), _) if across_line < error_line => return Err(a),
                (_, Some(e)) => return Err(e),
                _ => {}
            }
            joined.report.unattributed_dropped += part.report.unattributed_dropped;
            joined.report.not_selected += part.report.not_selected;
            data_rows += rows;
        }
        if data_rows == 0 {
            return Err(IoError::input(&self.path, header_line, "header", "the file has a header but no data rows"));
        }
        joined.finish().map(Some)
    }

    /// Reads from any buffered reader, as if it were this source's file (messages name the
    /// source's path). Used by `read`, and by the fuzz targets.
    pub fn read_from<R: BufRead>(
        &self,
        reader: R,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<(Vec<MetricSeries>, RepairReport), IoError> {
        self.read_lines(reader, tenant, selector, range, None, &mut |_| Ok::<(), IoError>(()))
    }

    /// Streams the file in batches of `batch_nodes` whole nodes to `sink`, so memory holds one
    /// batch, not the file. The rows of each node must be together (as `analytics simulate`
    /// writes them, and as exports sorted by node are); a node that appears again after other
    /// nodes is an error naming the line. NAB and wide files hold one node: one batch.
    pub fn read_in_batches<E: From<IoError>>(
        &self,
        batch_nodes: usize,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
        sink: &mut dyn FnMut(Vec<MetricSeries>) -> Result<(), E>,
    ) -> Result<RepairReport, E> {
        let f = File::open(&self.path).map_err(|e| IoError::Read { path: self.path.clone(), source: e })?;
        let (rest, report) =
            self.read_lines(BufReader::new(f), tenant, selector, range, Some(batch_nodes.max(1)), sink)?;
        if !rest.is_empty() {
            sink(rest)?;
        }
        Ok(report)
    }

    fn read_lines<R: BufRead, E: From<IoError>>(
        &self,
        reader: R,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
        batch_nodes: Option<usize>,
        sink: &mut dyn FnMut(Vec<MetricSeries>) -> Result<(), E>,
    ) -> Result<(Vec<MetricSeries>, RepairReport), E> {
        let mut lines = Lines::new(reader);
        let read_err = |e: std::io::Error| IoError::Read { path: self.path.clone(), source: e };
        let Some(header_line) = lines.first_nonblank().map_err(read_err)? else {
            return Err(IoError::input(&self.path, 0, "header", "the file is empty").into());
        };
        let header = lines.text().to_owned();
        let format = self.options.format.unwrap_or_else(|| self.guess_format(&header));
        let mut r = Reader::new(&self.path, self.options.lenient, tenant, selector, range, batch_nodes);
        let default_node =
            self.path.file_stem().map_or_else(|| "node".to_owned(), |s| s.to_string_lossy().into_owned());
        let opt = |name: &str, v: &Option<String>, default: Option<&str>| -> Result<String, IoError> {
            v.clone().or_else(|| default.map(str::to_owned)).ok_or_else(|| {
                IoError::Config(format!(
                    "{}: a {format:?} file names no {name}; give it as an option (--{name})",
                    self.path.display()
                ))
            })
        };
        let mut data_rows = 0usize;
        match format {
            FileFormat::Jsonl => {
                // The first line is data too.
                data_rows += 1;
                r.json_line(header_line, &header)?;
                for b in r.ready.drain(..) {
                    sink(b)?;
                }
                while let Some(i) = lines.next_line().map_err(read_err)? {
                    let l = lines.text();
                    if blank(l) {
                        continue;
                    }
                    data_rows += 1;
                    r.json_line(i, l)?;
                    for b in r.ready.drain(..) {
                        sink(b)?;
                    }
                }
            }
            FileFormat::Long => {
                let (columns, at) = long_header(&self.path, header_line, &header)?;
                data_rows += r.long_rows(&mut lines.reader, lines.number, columns, at, sink)?;
            }
            FileFormat::Nab | FileFormat::Wide => {
                let cols = split(&header);
                if cols.first() != Some(&"timestamp") {
                    return Err(E::from(r.err(
                        header_line,
                        "header",
                        format!("the first column must be \"timestamp\"; the header is {header:?}"),
                    )));
                }
                if cols.len() < 2 {
                    return Err(r.err(header_line, "header", "no metric column after \"timestamp\"").into());
                }
                if let Some(c) = cols.iter().skip(1).find(|c| c.is_empty() || **c == "timestamp") {
                    return Err(r.err(header_line, "header", format!("bad metric column {c:?}")).into());
                }
                let tenant = opt("tenant", &self.options.tenant, None)?;
                let cluster = opt("cluster", &self.options.cluster, None)?;
                let node = opt("node", &self.options.node, Some(&default_node))?;
                let metrics: Vec<String> = if format == FileFormat::Nab {
                    vec![opt("metric", &self.options.metric, Some("value"))?]
                } else {
                    cols[1..].iter().map(|c| (*c).to_owned()).collect()
                };
                let mut slots = Vec::new();
                for m in &metrics {
                    match r.key(header_line, [&tenant, &cluster, &node, m])? {
                        Some(k) => slots.push(r.slot_of(k)),
                        None => {
                            return Err(r
                                .err(header_line, "header", format!("{m:?} is not a usable metric name"))
                                .into())
                        }
                    }
                }
                let columns = cols.len();
                scan_lines(&mut lines.reader, lines.number, &self.path, &mut |i, l, f| {
                    if blank(l) {
                        return Ok(());
                    }
                    data_rows += 1;
                    if f.len() != columns {
                        let message = format!("{} fields where the header has {columns}", f.len());
                        return r.problem(None, i, "row", message, |x| &mut x.rows_kept);
                    }
                    let field = |k: usize| &l[f[k].0..f[k].1];
                    for (k, &slot) in slots.iter().enumerate() {
                        r.row(slot, i, field(0), field(k + 1))?;
                    }
                    Ok::<(), IoError>(())
                })?;
            }
        }
        if data_rows == 0 {
            return Err(
                IoError::input(&self.path, header_line, "header", "the file has a header but no data rows").into()
            );
        }
        if r.batch_nodes.is_some() {
            let mut last = std::mem::take(&mut r.pending);
            last.extend(r.current.take());
            r.emit(&last)?;
            for b in r.ready.drain(..) {
                sink(b)?;
            }
        }
        Ok(r.finish()?)
    }
}

#[async_trait::async_trait]
impl crate::MetricSource for FileSource {
    async fn get_metric_series(
        &self,
        tenant: Option<&TenantId>,
        selector: &Selector,
        range: &TimeRange,
    ) -> Result<Vec<MetricSeries>, IoError> {
        let (this, tenant, selector, range) = (self.clone(), tenant.cloned(), selector.clone(), *range);
        tokio::task::spawn_blocking(move || this.read(tenant.as_ref(), &selector, &range).map(|(s, _)| s))
            .await
            .map_err(|e| IoError::Config(format!("the file reader stopped: {e}")))?
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series interleaved row by row, CRLF line ends and blank lines read as when grouped.
    #[test]
    fn interleaved_series_and_crlf_read_alike() {
        let mut grouped = String::from("tenant,cluster,node,metric,timestamp,value\n");
        let mut mixed = String::from("tenant,cluster,node,metric,timestamp,value\r\n");
        for node in ["a", "b"] {
            for i in 0..5 {
                grouped += &format!("t,c,{node},m,2024-03-04T00:0{i}:00Z,{i}\n");
            }
        }
        for i in 0..5 {
            for node in ["a", "b"] {
                mixed += &format!("t,c,{node},m,2024-03-04T00:0{i}:00Z,{i}\r\n\r\n");
            }
        }
        let read = |text: &str| {
            FileSource::new("t.csv", FileOptions::default())
                .read_from(text.as_bytes(), None, &Selector::all(), &TimeRange::all())
                .unwrap()
                .0
        };
        let (a, b) = (read(&grouped), read(&mixed));
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].values(), &[0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    /// A long CSV: `series` series of `rows` rows each, grouped by series, one row per minute.
    fn fleet_csv(series: usize, rows: usize) -> Vec<String> {
        let mut lines = vec!["tenant,cluster,node,metric,timestamp,value".to_owned()];
        for s in 0..series {
            for i in 0..rows {
                let t = chrono::DateTime::from_timestamp(1_709_510_400 + 60 * i as i64, 0).unwrap_or_default();
                lines.push(format!(
                    "acme,prod,node-{:02},m{},{},{}",
                    s / 3,
                    s % 3,
                    t.format("%Y-%m-%dT%H:%M:%SZ"),
                    i % 13
                ));
            }
        }
        lines
    }

    /// Sequential and parallel reads of `lines` as a file, in strict and lenient mode, with 2
    /// to 4 threads: the same series, report and message.
    fn same_both_ways(name: &str, lines: &[String]) {
        let path = std::env::temp_dir().join(format!("analytics-io-par-{}-{name}.csv", std::process::id()));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        for lenient in [false, true] {
            let source = FileSource::new(&path, FileOptions { lenient, ..Default::default() });
            let (selector, range) = (Selector::all(), TimeRange::all());
            let file = File::open(&path).unwrap();
            let one = source.read_from(BufReader::new(file), None, &selector, &range);
            let one = one.map_err(|e| e.to_string());
            for threads in 2..=4 {
                let many = source.read_parallel(size, threads, None, &selector, &range).map_err(|e| e.to_string());
                let many = many.map(|r| r.expect("a long CSV is read in parallel"));
                assert_eq!(one, many, "{name}, lenient {lenient}, {threads} threads");
            }
        }
        std::fs::remove_file(&path).ok();
    }

    /// Reading by byte ranges changes nothing a user sees: clean files, and a fault placed at
    /// every line (so at and around every range end for 2, 3 and 4 threads): a repeated row, a
    /// row out of order, a bad value, a ragged row.
    #[test]
    fn a_parallel_read_is_the_sequential_read() {
        same_both_ways("clean", &fleet_csv(12, 120));
        let clean = fleet_csv(6, 40);
        let n = clean.len();
        for at in 2..n {
            let mut repeated = clean.clone();
            repeated.insert(at, clean[at - 1].clone());
            same_both_ways(&format!("repeat{at}"), &repeated);
            let mut swapped = clean.clone();
            swapped.swap(at - 1, at);
            same_both_ways(&format!("swap{at}"), &swapped);
            let mut bad = clean.clone();
            bad[at] = bad[at].rsplit_once(',').map(|(a, _)| format!("{a},x")).unwrap_or_default();
            same_both_ways(&format!("value{at}"), &bad);
            let mut ragged = clean.clone();
            ragged[at].push_str(",extra");
            same_both_ways(&format!("ragged{at}"), &ragged);
        }
    }

    /// JSON lines: identifiers and timestamps with escapes, numbers and numeric strings read as
    /// the same series as plain ones.
    #[test]
    fn json_lines_with_escapes_and_numbers() {
        let text = concat!(
            r#"{"tenant":"acme","cluster":"prod","node":"n\u002d1","metric":"cpu","timestamp":"2024-03-04T00:00:00\u005a","value":"1.5"}"#,
            "\n",
            r#"{"tenant":"acme","cluster":"prod","node":"n-1","metric":"cpu","timestamp":"2024-03-04T00:01:00Z","value":2}"#,
            "\n"
        );
        let (series, _) = FileSource::new("t.jsonl", FileOptions::default())
            .read_from(text.as_bytes(), None, &Selector::all(), &TimeRange::all())
            .unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].node_id().as_str(), "n-1");
        assert_eq!(series[0].values(), &[1.5, 2.0]);
        assert_eq!(series[0].timestamps()[1].timestamp(), 1_709_510_460);
    }

    /// A reader that hands out at most `step` bytes a call.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// The block scanner gives the lines and fields `Lines` and `split` give: line ends with and
    /// without `\r`, no line end at the end, blank lines, white space, multi-byte text, a line
    /// longer than a block, reads of any size; and bad UTF-8 fails after the lines before it.
    #[test]
    fn scanning_blocks_gives_the_lines_and_fields_of_reading_lines() {
        let long = "x".repeat(3 << 20);
        let inputs = [
            "a,b\nc,d".to_owned(),
            "a,b\r\n\r\nc , d \r\n".to_owned(),
            "a,b\r".to_owned(),
            "\n\n,\n".to_owned(),
            "é,ü\u{a0},\u{a0}ß\n".to_owned(),
            " a , b\t,c \n,,\n \n".to_owned(),
            "é, ü ,\u{a0}x\u{a0},ß\nacme,prod,node-001,cpu,2024-03-04T00:00:00Z,1.5".to_owned(),
            format!("h\n{long},1\nlast,2\n"),
            String::new(),
        ];
        for text in &inputs {
            let mut want = Vec::new();
            let mut lines = Lines::new(text.as_bytes());
            while let Some(i) = lines.next_line().unwrap() {
                want.push((
                    i + 7,
                    lines.text().to_owned(),
                    split(lines.text()).iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                ));
            }
            let steps: &[usize] = if text.len() > 1000 { &[4096, usize::MAX] } else { &[1, 3, 64, usize::MAX] };
            for &step in steps {
                let mut got = Vec::new();
                let mut reader = Trickle { data: text.as_bytes(), step };
                scan_lines(&mut reader, 7, Path::new("t.csv"), &mut |i, l, f| {
                    got.push((i, l.to_owned(), f.iter().map(|&(a, z)| l[a..z].to_owned()).collect::<Vec<_>>()));
                    Ok::<(), IoError>(())
                })
                .unwrap();
                assert_eq!(got, want, "{:?} in reads of {step}", &text[..text.len().min(20)]);
            }
        }
        let mut bad = b"a,1\nb,2\n".to_vec();
        bad.extend([0xff, b'\n']);
        let mut seen = Vec::new();
        let err = scan_lines(&mut bad.as_slice(), 0, Path::new("t.csv"), &mut |i, _, _| {
            seen.push(i);
            Ok::<(), IoError>(())
        })
        .unwrap_err();
        assert_eq!(seen, [1, 2]);
        assert!(err.to_string().contains("did not contain valid UTF-8"), "{err}");
    }

    /// `format` reads the header (the first line that is not blank) as `read` does, and the
    /// format given in the options wins without reading the file.
    #[test]
    fn the_format_is_read_from_the_header_as_read_decides_it() {
        let dir = std::env::temp_dir().join(format!("analytics-io-format-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("long.csv", "tenant,cluster,node,metric,timestamp,value\n", Some(FileFormat::Long)),
            ("ids.csv", "\n  \ntenant_id,cluster_id,node_id,metric_name,timestamp,value\n", Some(FileFormat::Long)),
            ("nab.csv", "timestamp,value\n", Some(FileFormat::Nab)),
            ("wide.csv", "timestamp,cpu,mem\n", Some(FileFormat::Wide)),
            ("rows.txt", "{\"tenant_id\": \"a\"}\n", Some(FileFormat::Jsonl)),
            ("rows.jsonl", "\n", None),
            ("empty.csv", "", None),
        ];
        for (name, text, expected) in cases {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let got = FileSource::new(&path, FileOptions::default()).format();
            match expected {
                Some(f) => assert_eq!(got.unwrap(), f, "{name}"),
                None => assert!(got.unwrap_err().to_string().contains("the file is empty"), "{name}"),
            }
        }
        // The format given wins, and is not read from the file.
        let given = FileOptions { format: Some(FileFormat::Nab), ..FileOptions::default() };
        assert_eq!(FileSource::new(dir.join("missing.csv"), given).format().unwrap(), FileFormat::Nab);
        let missing = FileSource::new(dir.join("missing.csv"), FileOptions::default()).format().unwrap_err();
        assert!(missing.to_string().contains("missing.csv"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A blank line is one `str::trim` empties, non-ASCII white space included; any printable
    /// first byte makes a line not blank.
    #[test]
    fn blank_lines_are_what_trim_empties() {
        for line in ["", " ", "\t \r", "\u{a0}", " \u{2003} "] {
            assert!(blank(line), "{line:?}");
        }
        for line in ["a", " a", "\u{a0}x", ",", "é"] {
            assert!(!blank(line), "{line:?}");
        }
    }
}
