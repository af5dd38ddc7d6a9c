//! Waves: which hosts take a release together. The canary wave (the first
//! `canary` hosts) goes alone; the rest go in batches of `parallel`.

/// Splits `hosts` (in config order) into waves of host indexes.
pub fn waves(hosts: usize, canary: usize, parallel: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let canary = canary.min(hosts);
    if canary > 0 {
        out.push((0..canary).collect());
    }
    let batch = if parallel == 0 { hosts.max(1) } else { parallel };
    let mut i = canary;
    while i < hosts {
        let end = (i + batch).min(hosts);
        out.push((i..end).collect());
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::waves;

    #[test]
    fn waves_follow_canary_then_parallel() {
        let check = |hosts, canary, parallel, expected: &[&[usize]]| {
            let got = waves(hosts, canary, parallel);
            let want: Vec<Vec<usize>> = expected.iter().map(|w| w.to_vec()).collect();
            assert_eq!(got, want, "hosts={hosts} canary={canary} parallel={parallel}");
        };
        check(1, 0, 0, &[&[0]]);
        check(3, 0, 0, &[&[0, 1, 2]]);
        check(2, 1, 0, &[&[0], &[1]]);
        check(5, 1, 2, &[&[0], &[1, 2], &[3, 4]]);
        check(4, 0, 3, &[&[0, 1, 2], &[3]]);
        check(2, 5, 1, &[&[0, 1]]);
        check(0, 1, 1, &[]);
    }
}
