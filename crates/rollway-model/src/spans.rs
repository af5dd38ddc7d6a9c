//! Sets of half-open time spans `[start, end)` in milliseconds: union,
//! difference and intersection, kept sorted and disjoint. The uptime
//! arithmetic (downtime, maintenance, no data) is set algebra over these.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// One half-open span of time, `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Span {
    /// `[start, end)`; empty when `end <= start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    pub fn ms(start: i64, end: i64) -> Self {
        Self::new(Timestamp::from_millis(start), Timestamp::from_millis(end))
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Its length in milliseconds (0 when empty).
    pub fn len_ms(&self) -> i64 {
        (self.end.as_millis() - self.start.as_millis()).max(0)
    }
}

/// A set of instants as sorted, disjoint, non-adjacent, non-empty spans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spans(Vec<Span>);

impl Spans {
    pub fn new() -> Self {
        Self::default()
    }

    /// The union of `spans`, in any order, overlapping or not.
    pub fn from_spans(spans: impl IntoIterator<Item = Span>) -> Self {
        let mut v: Vec<Span> = spans.into_iter().filter(|s| !s.is_empty()).collect();
        v.sort_unstable();
        let mut out: Vec<Span> = Vec::with_capacity(v.len());
        for s in v {
            match out.last_mut() {
                Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
                _ => out.push(s),
            }
        }
        Self(out)
    }

    pub fn spans(&self) -> &[Span] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Total length in milliseconds.
    pub fn total_ms(&self) -> i64 {
        self.0.iter().map(Span::len_ms).sum()
    }

    pub fn union(&self, other: &Spans) -> Spans {
        Spans::from_spans(self.0.iter().chain(other.0.iter()).copied())
    }

    /// What of `self` lies outside `other`.
    pub fn minus(&self, other: &Spans) -> Spans {
        let mut out = Vec::new();
        let mut cut = other.0.iter().peekable();
        for &s in &self.0 {
            let mut start = s.start;
            // Spans of `other` that end before this one starts never matter again.
            while cut.peek().is_some_and(|c| c.end <= start) {
                cut.next();
            }
            let mut rest = cut.clone();
            while let Some(c) = rest.next().filter(|c| c.start < s.end) {
                if c.start > start {
                    out.push(Span::new(start, c.start));
                }
                start = start.max(c.end);
                if start >= s.end {
                    break;
                }
            }
            if start < s.end {
                out.push(Span::new(start, s.end));
            }
        }
        Spans(out)
    }

    /// What of `self` lies inside `other`.
    pub fn intersect(&self, other: &Spans) -> Spans {
        self.minus(&self.minus(other))
    }

    /// `self` cut to `window`.
    pub fn within(&self, window: Span) -> Spans {
        self.intersect(&Spans::from_spans([window]))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spans(v: &[(i64, i64)]) -> Spans {
        Spans::from_spans(v.iter().map(|&(a, b)| Span::ms(a, b)))
    }

    fn pairs(s: &Spans) -> Vec<(i64, i64)> {
        s.spans()
            .iter()
            .map(|x| (x.start.as_millis(), x.end.as_millis()))
            .collect()
    }

    #[test]
    fn union_merges_overlapping_and_adjacent_spans_and_drops_empty_ones() {
        let check = |input: &[(i64, i64)], expected: &[(i64, i64)]| {
            assert_eq!(pairs(&spans(input)), expected, "{input:?}");
        };
        check(&[], &[]);
        check(&[(5, 5), (7, 3)], &[]);
        check(&[(10, 20), (0, 5)], &[(0, 5), (10, 20)]);
        check(&[(0, 10), (10, 20)], &[(0, 20)]);
        check(&[(0, 10), (5, 8), (9, 30), (40, 50)], &[(0, 30), (40, 50)]);
    }

    #[test]
    fn minus_and_intersect() {
        let check = |a: &[(i64, i64)], b: &[(i64, i64)], minus: &[(i64, i64)], inter: &[(i64, i64)]| {
            assert_eq!(pairs(&spans(a).minus(&spans(b))), minus, "{a:?} - {b:?}");
            assert_eq!(pairs(&spans(a).intersect(&spans(b))), inter, "{a:?} & {b:?}");
        };
        check(&[(0, 100)], &[], &[(0, 100)], &[]);
        check(
            &[(0, 100)],
            &[(10, 20), (30, 40)],
            &[(0, 10), (20, 30), (40, 100)],
            &[(10, 20), (30, 40)],
        );
        check(
            &[(0, 10), (20, 30)],
            &[(5, 25)],
            &[(0, 5), (25, 30)],
            &[(5, 10), (20, 25)],
        );
        check(&[(0, 10)], &[(0, 10)], &[], &[(0, 10)]);
        check(&[(0, 10), (20, 30)], &[(-5, 100)], &[], &[(0, 10), (20, 30)]);
        check(
            &[(0, 10), (20, 30), (40, 50)],
            &[(8, 22), (28, 42)],
            &[(0, 8), (22, 28), (42, 50)],
            &[(8, 10), (20, 22), (28, 30), (40, 42)],
        );
    }

    proptest::proptest! {
        /// Union, difference and intersection agree with the same operations
        /// on the sets of integer instants the spans hold.
        #[test]
        fn set_algebra_matches_instants(
            a in proptest::collection::vec((0i64..64, 0i64..16), 0..6),
            b in proptest::collection::vec((0i64..64, 0i64..16), 0..6),
        ) {
            let to_spans = |v: &[(i64, i64)]| Spans::from_spans(v.iter().map(|&(s, l)| Span::ms(s, s + l)));
            let instants = |s: &Spans| -> std::collections::BTreeSet<i64> {
                s.spans().iter().flat_map(|x| x.start.as_millis()..x.end.as_millis()).collect()
            };
            let (sa, sb) = (to_spans(&a), to_spans(&b));
            let (ia, ib) = (instants(&sa), instants(&sb));
            let union = sa.union(&sb);
            proptest::prop_assert_eq!(instants(&union), ia.union(&ib).copied().collect());
            proptest::prop_assert_eq!(instants(&sa.minus(&sb)), ia.difference(&ib).copied().collect());
            proptest::prop_assert_eq!(instants(&sa.intersect(&sb)), ia.intersection(&ib).copied().collect());
            // Normal form: sorted, disjoint, never touching, never empty.
            for w in union.spans().windows(2) {
                proptest::prop_assert!(w[0].end < w[1].start);
            }
            proptest::prop_assert_eq!(union.total_ms(), instants(&union).len() as i64);
        }
    }

    #[test]
    fn totals() {
        assert_eq!(spans(&[(0, 10), (5, 20), (30, 31)]).total_ms(), 21);
        assert_eq!(spans(&[(0, 100)]).within(Span::ms(90, 200)).total_ms(), 10);
    }
}
