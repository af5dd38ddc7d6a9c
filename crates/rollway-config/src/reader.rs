//! A small reader over the spanned TOML document: typed getters that record a
//! diagnostic (at the value for a wrong type, at the key for an unknown key)
//! and carry on, so one pass finds every problem.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use rollway_model::status::UnknownVariant;
use rollway_model::time::{format_duration, parse_duration};
use toml_edit::{Item, TableLike, Value};

/// A problem found, at a byte offset of the source.
#[derive(Debug)]
pub(crate) struct Found {
    pub at: usize,
    pub message: String,
    pub hint: String,
}

/// The source and the problems found so far.
pub(crate) struct Ctx<'a> {
    pub src: &'a str,
    found: RefCell<Vec<Found>>,
}

impl<'a> Ctx<'a> {
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            found: RefCell::new(Vec::new()),
        }
    }

    pub fn report(&self, at: usize, message: impl Into<String>, hint: impl Into<String>) {
        self.found.borrow_mut().push(Found {
            at,
            message: message.into(),
            hint: hint.into(),
        });
    }

    pub fn into_found(self) -> Vec<Found> {
        self.found.into_inner()
    }
}

/// A value with the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub v: T,
    pub at: usize,
}

/// How a TOML item is named in "must be X, not Y".
pub(crate) fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => describe_value(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
    }
}

pub(crate) fn describe_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "an inline table",
    }
}

/// Where a value starts, else `fallback`.
pub(crate) fn value_at(v: &Value, fallback: usize) -> usize {
    v.span().map_or(fallback, |r| r.start)
}

/// The closest candidate to `word`, when it is close enough to be a likely typo.
pub(crate) fn closest<'k>(word: &str, candidates: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let w = word.to_ascii_lowercase();
    let len = w.chars().count();
    // Generous enough for "retry" → "retries", strict enough that unrelated
    // short words get the list of keys instead.
    let limit = (len * 2 / 5 + 1).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit && *d < len)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance where swapping two neighbouring letters counts as one edit
/// (optimal string alignment), so "prot" is one edit from "port".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// "did you mean 'x'?" or the list of choices.
pub(crate) fn choice_hint(word: &str, choices: &[&str]) -> String {
    match closest(word, choices.iter().copied()) {
        Some(c) => format!("did you mean '{c}'?"),
        None => format!("use one of: {}", choices.join(", ")),
    }
}

/// A table (a `[section]`, a dotted table or an inline table) being read.
pub(crate) struct Table<'a> {
    cx: &'a Ctx<'a>,
    table: &'a dyn TableLike,
    path: String,
    /// How unknown keys name the table, e.g. "in [health]".
    label: String,
    /// Where problems of the table as a whole are reported (its header).
    pub at: usize,
    asked: Vec<&'static str>,
}

impl<'a> Table<'a> {
    pub fn root(cx: &'a Ctx<'a>, table: &'a dyn TableLike) -> Self {
        Self {
            cx,
            table,
            path: String::new(),
            label: "at the top level".into(),
            at: 0,
            asked: Vec::new(),
        }
    }

    /// A table nested in another, named `path` in messages.
    pub fn nested(cx: &'a Ctx<'a>, table: &'a dyn TableLike, path: String, at: usize, inline: bool) -> Self {
        let label = if inline {
            format!("in {path}")
        } else {
            format!("in [{path}]")
        };
        Self {
            cx,
            table,
            path,
            label,
            at,
            asked: Vec::new(),
        }
    }

    pub fn cx(&self) -> &'a Ctx<'a> {
        self.cx
    }

    /// The dotted name of this table, e.g. `environments.production`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The dotted name of `key` in this table, e.g. `health.retries`.
    pub fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Whether `key` is present, whatever its type.
    pub fn has(&self, key: &str) -> bool {
        self.table.get(key).is_some_and(|i| !i.is_none())
    }

    /// Reports a missing required key at the table's header.
    pub fn require(&self, key: &str, hint: impl Into<String>) {
        if !self.has(key) {
            let message = if self.path.is_empty() {
                format!("missing key '{key}' at the top level")
            } else {
                format!("missing key '{key}' in [{}]", self.path)
            };
            self.cx.report(self.at, message, hint);
        }
    }

    /// The item under `key` and where its value starts; marks the key as known.
    pub fn entry(&mut self, key: &'static str) -> Option<(&'a Item, usize)> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        let table: &'a dyn TableLike = self.table;
        let (k, item) = table.get_key_value(key)?;
        if item.is_none() {
            return None;
        }
        let at = item.span().or_else(|| k.span()).map_or(self.at, |r| r.start);
        Some((item, at))
    }

    pub fn wrong(&self, key: &str, at: usize, found: &str, expected: &str, hint: &str) {
        self.cx
            .report(at, format!("{} must be {expected}, not {found}", self.name(key)), hint);
    }

    pub fn str_at(&mut self, key: &'static str) -> Option<At<String>> {
        let (item, at) = self.entry(key)?;
        match item.as_str() {
            Some(s) => Some(At { v: s.to_owned(), at }),
            None => {
                let hint = format!("put the value in double quotes: {key} = \"…\"");
                self.wrong(key, at, describe(item), "a string", &hint);
                None
            }
        }
    }

    /// A string that, when present, must not be empty.
    pub fn nonempty_str(&mut self, key: &'static str) -> Option<String> {
        let s = self.str_at(key)?;
        if s.v.trim().is_empty() {
            self.cx.report(
                s.at,
                format!("{} is empty", self.name(key)),
                format!("give {key} a value or remove the key"),
            );
        }
        Some(s.v)
    }

    pub fn bool_at(&mut self, key: &'static str) -> Option<At<bool>> {
        let (item, at) = self.entry(key)?;
        match item.as_bool() {
            Some(b) => Some(At { v: b, at }),
            None => {
                let hint = format!("write true or false without quotes: {key} = true");
                self.wrong(key, at, describe(item), "a boolean", &hint);
                None
            }
        }
    }

    pub fn bool_or(&mut self, key: &'static str, default: bool) -> bool {
        self.bool_at(key).map_or(default, |a| a.v)
    }

    /// An integer within `range`; `hint` says what to do when it is outside.
    pub fn int_at(&mut self, key: &'static str, range: RangeInclusive<i64>, hint: &str) -> Option<At<i64>> {
        let (item, at) = self.entry(key)?;
        let Some(n) = item.as_integer() else {
            let example = format!(
                "write a whole number without quotes, e.g. {key} = {}",
                (*range.start()).max(1)
            );
            self.wrong(key, at, describe(item), "an integer", &example);
            return None;
        };
        if !range.contains(&n) {
            let bounds = if *range.end() == i64::from(u32::MAX) {
                format!("at least {}", range.start())
            } else {
                format!("from {} to {}", range.start(), range.end())
            };
            self.cx
                .report(at, format!("{} is {n}, but it must be {bounds}", self.name(key)), hint);
            return None;
        }
        Some(At { v: n, at })
    }

    /// A number (an integer or a float) strictly above `above` and at most
    /// `at_most`; `hint` says what to do when it is outside.
    pub fn number_at(&mut self, key: &'static str, above: f64, at_most: f64, hint: &str) -> Option<At<f64>> {
        let (item, at) = self.entry(key)?;
        let n = match (item.as_float(), item.as_integer()) {
            (Some(f), _) => f,
            (None, Some(i)) => i as f64,
            (None, None) => {
                let example = format!("write a number without quotes, e.g. {key} = {at_most}");
                self.wrong(key, at, describe(item), "a number", &example);
                return None;
            }
        };
        if !(n > above && n <= at_most) {
            self.cx.report(
                at,
                format!(
                    "{} is {n}, but it must be above {above} and at most {at_most}",
                    self.name(key)
                ),
                hint,
            );
            return None;
        }
        Some(At { v: n, at })
    }

    pub fn u32_at(&mut self, key: &'static str, min: u32, hint: &str) -> Option<At<u32>> {
        let a = self.int_at(key, i64::from(min)..=i64::from(u32::MAX), hint)?;
        u32::try_from(a.v).ok().map(|v| At { v, at: a.at })
    }

    pub fn u32_or(&mut self, key: &'static str, min: u32, default: u32, hint: &str) -> u32 {
        self.u32_at(key, min, hint).map_or(default, |a| a.v)
    }

    pub fn port(&mut self, key: &'static str) -> Option<u16> {
        let a = self.int_at(key, 1..=65535, "use a port from 1 to 65535")?;
        u16::try_from(a.v).ok()
    }

    pub fn duration_at(&mut self, key: &'static str) -> Option<At<Duration>> {
        let (item, at) = self.entry(key)?;
        let hint = "write a number and a unit in quotes, e.g. \"500ms\", \"5s\", \"30m\", \"1h30m\" or \"90d\"";
        let Some(s) = item.as_str() else {
            self.wrong(key, at, describe(item), "a duration string", hint);
            return None;
        };
        match parse_duration(s) {
            Ok(d) => Some(At { v: d, at }),
            Err(e) => {
                self.cx
                    .report(at, format!("invalid duration for {}: {e}", self.name(key)), hint);
                None
            }
        }
    }

    /// A duration longer than zero and at most `max` (named in the error).
    pub fn bounded_duration(&mut self, key: &'static str, max: Duration) -> Option<Duration> {
        let d = self.duration_at(key)?;
        if d.v.is_zero() {
            self.cx.report(
                d.at,
                format!("{} is zero", self.name(key)),
                "give it a length greater than zero, e.g. \"5s\"",
            );
            return None;
        }
        self.at_most(key, d, max)
    }

    /// `d` when it is at most `max`; otherwise a diagnostic stating the maximum.
    pub fn at_most(&mut self, key: &'static str, d: At<Duration>, max: Duration) -> Option<Duration> {
        if d.v > max {
            self.cx.report(
                d.at,
                format!(
                    "{} is longer than the maximum of {}",
                    self.name(key),
                    format_duration(max)
                ),
                format!("use at most \"{}\"", format_duration(max)),
            );
            return None;
        }
        Some(d.v)
    }

    /// One of a model enum's spellings.
    pub fn choice_at<T: FromStr<Err = UnknownVariant>>(&mut self, key: &'static str) -> Option<At<T>> {
        let (item, at) = self.entry(key)?;
        let Some(s) = item.as_str() else {
            let hint = format!("put the value in double quotes: {key} = \"…\"");
            self.wrong(key, at, describe(item), "a string", &hint);
            return None;
        };
        match s.parse::<T>() {
            Ok(v) => Some(At { v, at }),
            Err(e) => {
                self.cx.report(
                    at,
                    format!("unknown {} '{s}' for {}", e.what, self.name(key)),
                    choice_hint(s, e.expected),
                );
                None
            }
        }
    }

    pub fn choice_or<T: FromStr<Err = UnknownVariant>>(&mut self, key: &'static str, default: T) -> T {
        self.choice_at(key).map_or(default, |a| a.v)
    }

    /// The elements of an array value, each reported and skipped when it is not a string.
    pub fn str_list(&mut self, key: &'static str) -> Option<Vec<At<String>>> {
        let (item, at) = self.entry(key)?;
        let hint = format!("write a list of strings: {key} = [\"…\", \"…\"]");
        let Some(array) = item.as_array() else {
            self.wrong(key, at, describe(item), "an array of strings", &hint);
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            let vat = value_at(v, at);
            match v.as_str() {
                Some(s) => out.push(At {
                    v: s.to_owned(),
                    at: vat,
                }),
                None => self.cx.report(
                    vat,
                    format!("{}[{i}] must be a string, not {}", self.name(key), describe_value(v)),
                    hint.clone(),
                ),
            }
        }
        Some(out)
    }

    /// A list of strings where a repeated entry is reported at its second occurrence.
    pub fn unique_list(&mut self, key: &'static str) -> Option<Vec<At<String>>> {
        let list = self.str_list(key)?;
        let mut seen: Vec<&str> = Vec::new();
        for a in &list {
            if seen.contains(&a.v.as_str()) {
                self.cx.report(
                    a.at,
                    format!("'{}' is listed twice in {}", a.v, self.name(key)),
                    "remove the repeated entry",
                );
            } else {
                seen.push(&a.v);
            }
        }
        Some(list)
    }

    pub fn plain_list(&mut self, key: &'static str) -> Vec<String> {
        self.unique_list(key)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.v)
            .collect()
    }

    /// A table of scalar values kept as strings (numbers and booleans are
    /// written out), with where each key and value is.
    pub fn scalar_map(&mut self, key: &'static str) -> Vec<(At<String>, At<String>)> {
        let mut out = Vec::new();
        let Some((item, at)) = self.entry(key) else {
            return out;
        };
        let Some(table) = item.as_table_like() else {
            let hint = format!("write a table: {key} = {{ NAME = \"value\" }}");
            self.wrong(key, at, describe(item), "a table", &hint);
            return out;
        };
        for (k, v) in table.iter() {
            let kat = table.key(k).and_then(|k| k.span()).map_or(at, |r| r.start);
            let vat = v.span().map_or(kat, |r| r.start);
            let text = match v.as_value() {
                Some(Value::String(s)) => Some(s.value().clone()),
                Some(Value::Integer(n)) => Some(n.value().to_string()),
                Some(Value::Float(f)) => Some(f.value().to_string()),
                Some(Value::Boolean(b)) => Some(b.value().to_string()),
                _ => None,
            };
            match text {
                Some(t) => out.push((
                    At {
                        v: k.to_owned(),
                        at: kat,
                    },
                    At { v: t, at: vat },
                )),
                None => self.cx.report(
                    vat,
                    format!(
                        "{}.{k} must be a string, number or boolean, not {}",
                        self.name(key),
                        describe(v)
                    ),
                    format!("write {k} = \"value\""),
                ),
            }
        }
        out
    }

    /// A free-form table converted to JSON.
    pub fn json(&mut self, key: &'static str) -> Option<serde_json::Value> {
        let (item, at) = self.entry(key)?;
        if !item.is_table_like() {
            let hint = format!("write a table: {key} = {{ region = \"eu-north\" }}");
            self.wrong(key, at, describe(item), "a table", &hint);
            return None;
        }
        item_to_json(self.cx, &self.name(key), item, at)
    }

    /// A sub-table read by `f`; its unknown keys are reported afterwards.
    pub fn section<R>(&mut self, key: &'static str, f: impl FnOnce(&mut Table<'a>) -> R) -> Option<R> {
        let (item, at) = self.entry(key)?;
        let Some(table) = item.as_table_like() else {
            let hint = format!("write it as a [{}] section", self.name(key));
            self.wrong(key, at, describe(item), "a table", &hint);
            return None;
        };
        let mut child = Table::nested(self.cx, table, self.name(key), at, item.is_inline_table());
        let r = f(&mut child);
        child.finish();
        Some(r)
    }

    /// A table of named sub-tables (`[environments.NAME]`), each read by `f`.
    pub fn entries<R>(
        &mut self,
        key: &'static str,
        mut f: impl FnMut(At<&'a str>, &mut Table<'a>) -> R,
    ) -> BTreeMap<String, R> {
        let mut out = BTreeMap::new();
        let Some((item, at)) = self.entry(key) else {
            return out;
        };
        let Some(table) = item.as_table_like() else {
            let hint = format!("write one [{}.NAME] section per entry", self.name(key));
            self.wrong(key, at, describe(item), "a table", &hint);
            return out;
        };
        let path = self.name(key);
        for (name, entry) in table.iter() {
            let kat = table.key(name).and_then(|k| k.span()).map_or(at, |r| r.start);
            let eat = entry.span().map_or(kat, |r| r.start);
            let Some(inner) = entry.as_table_like() else {
                self.cx.report(
                    eat,
                    format!("{path}.{name} must be a table, not {}", describe(entry)),
                    format!("write it as a [{path}.{name}] section"),
                );
                continue;
            };
            let mut child = Table::nested(self.cx, inner, format!("{path}.{name}"), eat, entry.is_inline_table());
            let r = f(At { v: name, at: kat }, &mut child);
            child.finish();
            out.insert(name.to_owned(), r);
        }
        out
    }

    /// Reports every key nobody asked for.
    pub fn finish(self) {
        for (k, item) in self.table.iter() {
            if item.is_none() || self.asked.contains(&k) {
                continue;
            }
            let at = self
                .table
                .key(k)
                .and_then(|k| k.span())
                .or_else(|| item.span())
                .map_or(self.at, |r| r.start);
            let hint = match closest(k, self.asked.iter().copied()) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("remove it; the keys allowed here are {}", self.asked.join(", ")),
            };
            self.cx.report(at, format!("unknown key '{k}' {}", self.label), hint);
        }
    }
}

pub(crate) fn item_to_json(cx: &Ctx<'_>, path: &str, item: &Item, at: usize) -> Option<serde_json::Value> {
    match item {
        Item::None => None,
        Item::Value(v) => value_to_json(cx, path, v, at),
        Item::Table(t) => Some(table_to_json(cx, path, t, at)),
        Item::ArrayOfTables(a) => Some(serde_json::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, t)| table_to_json(cx, &format!("{path}[{i}]"), t, at))
                .collect(),
        )),
    }
}

fn table_to_json(cx: &Ctx<'_>, path: &str, t: &dyn TableLike, at: usize) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, item) in t.iter() {
        let iat = item.span().map_or(at, |r| r.start);
        if let Some(v) = item_to_json(cx, &format!("{path}.{k}"), item, iat) {
            map.insert(k.to_owned(), v);
        }
    }
    serde_json::Value::Object(map)
}

fn value_to_json(cx: &Ctx<'_>, path: &str, v: &Value, at: usize) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    let at = value_at(v, at);
    Some(match v {
        Value::String(s) => J::String(s.value().clone()),
        Value::Integer(n) => J::from(*n.value()),
        Value::Float(f) => match serde_json::Number::from_f64(*f.value()) {
            Some(n) => J::Number(n),
            None => {
                cx.report(
                    at,
                    format!("{path} is {}, which JSON cannot hold", f.value()),
                    "use a finite number, or a string",
                );
                return None;
            }
        },
        Value::Boolean(b) => J::Bool(*b.value()),
        Value::Datetime(d) => J::String(d.value().to_string()),
        Value::Array(a) => J::Array(
            a.iter()
                .enumerate()
                .filter_map(|(i, v)| value_to_json(cx, &format!("{path}[{i}]"), v, at))
                .collect(),
        ),
        Value::InlineTable(t) => table_to_json(cx, path, t, at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_suggests_only_near_misses() {
        let keys = ["retries", "interval", "timeout", "path", "root", "port"];
        let check = |w: &str, expected: Option<&str>| assert_eq!(closest(w, keys), expected, "{w}");
        check("retry", Some("retries"));
        check("intervall", Some("interval"));
        check("Timeout", Some("timeout"));
        check("colour", None);
        check("prot", Some("port"));
        check("x", None);
    }
}
