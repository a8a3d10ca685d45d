//! u64 values in `bigint` columns: the bit-cast both ways, and u64 ranges turned into the
//! inclusive bigint spans that select them.
//!
//! Every u64 of a record is stored as `v as i64`, so values up to 2^63 - 1 read as themselves
//! and larger ones as negative numbers. Ordered as u64, the bigint line is two pieces: 0 up to
//! i64::MAX, then i64::MIN up to -1. A u64 range is therefore at most two bigint spans, and
//! queries that must follow u64 order (history pages, the delete log) ask for spans in u64
//! order. This module does no I/O.

/// A u64 as stored.
pub(super) fn to_db(v: u64) -> i64 {
    v as i64
}

/// A stored bigint as the u64 it holds.
pub(super) fn from_db(v: i64) -> u64 {
    v as u64
}

/// One past the largest u64: the end of a range that runs to the top.
pub(super) const END: u128 = 1 << 64;

/// The inclusive bigint spans selecting the u64 values in `[lo, hi)`, ascending in u64 order
/// (at most two). `hi` is a u128 so that [`END`] can include u64::MAX.
pub(super) fn spans(lo: u64, hi: u128) -> Vec<(i64, i64)> {
    let hi = hi.min(END);
    if u128::from(lo) >= hi {
        return Vec::new();
    }
    // `hi - 1` fits a u64: hi is at most 2^64 and greater than lo.
    let last = (hi - 1) as u64;
    let top = i64::MAX as u64;
    if lo <= top && last > top {
        vec![(to_db(lo), i64::MAX), (i64::MIN, to_db(last))]
    } else {
        vec![(to_db(lo), to_db(last))]
    }
}

/// The `[low, hi)` ranges with empty and reversed ones dropped, sorted and merged (touching
/// ranges join).
pub(super) fn merged(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(u64, u64)> = ranges.iter().copied().filter(|&(l, h)| l < h).collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (low, hi) in sorted {
        match out.last_mut() {
            Some(last) if low <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((low, hi)),
        }
    }
    out
}

/// The parts of the window `[since, before)` outside every range of `exclude`, ascending.
pub(super) fn window_without(since: u64, before: u128, exclude: &[(u64, u64)]) -> Vec<(u64, u128)> {
    let mut out = Vec::new();
    let mut next = u128::from(since);
    for (low, hi) in merged(exclude) {
        let (low, hi) = (u128::from(low), u128::from(hi));
        if low >= before {
            break;
        }
        if hi <= next {
            continue;
        }
        if low > next {
            out.push((next, low));
        }
        next = next.max(hi);
    }
    if next < before {
        out.push((next, before));
    }
    // Every start is `since` or the end of an exclusion, both u64.
    out.into_iter().map(|(l, h)| (l as u64, h)).collect()
}

/// The spans of several ascending u64 ranges, newest (highest) first, as the two arrays
/// (`lo`, `hi`, inclusive) a statement unnests.
pub(super) fn spans_desc(ranges: &[(u64, u128)]) -> (Vec<i64>, Vec<i64>) {
    let mut all: Vec<(i64, i64)> = ranges.iter().flat_map(|&(l, h)| spans(l, h)).collect();
    all.reverse();
    all.into_iter().unzip()
}

/// The spans of several ascending u64 ranges, in u64 order, as two arrays.
pub(super) fn spans_asc(ranges: &[(u64, u128)]) -> (Vec<i64>, Vec<i64>) {
    ranges.iter().flat_map(|&(l, h)| spans(l, h)).unzip()
}

/// A row count or limit as the bigint a statement takes.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_split_where_u64_order_crosses_the_sign_bit() {
        assert_eq!(spans(5, 5), vec![]);
        assert_eq!(spans(5, 3), vec![]);
        assert_eq!(spans(1, 10), vec![(1, 9)]);
        assert_eq!(spans(0, END), vec![(0, i64::MAX), (i64::MIN, -1)]);
        assert_eq!(spans(u64::MAX, END), vec![(-1, -1)]);
        let top = 1u64 << 63;
        assert_eq!(
            spans(top, u128::from(top) + 2),
            vec![(i64::MIN, i64::MIN + 1)]
        );
        assert_eq!(
            spans(top - 1, u128::from(top) + 1),
            vec![(i64::MAX, i64::MAX), (i64::MIN, i64::MIN)]
        );
        assert_eq!(from_db(to_db(u64::MAX)), u64::MAX);
    }

    #[test]
    fn windows_lose_their_exclusions() {
        assert_eq!(window_without(0, 10, &[]), vec![(0, 10)]);
        assert_eq!(
            window_without(0, 10, &[(3, 5), (4, 6), (12, 20)]),
            vec![(0, 3), (6, 10)]
        );
        assert_eq!(window_without(5, END, &[(0, 29)]), vec![(29, END)]);
        assert_eq!(
            window_without(0, END, &[(0, u64::MAX)]),
            vec![(u64::MAX, END)]
        );
        assert_eq!(
            window_without(0, 12, &[(1, 5), (5, 10), (8, 2)]),
            vec![(0, 1), (10, 12)]
        );
        assert!(window_without(3, 3, &[]).is_empty());
        assert_eq!(
            merged(&[(12, 10), (16, 20), (15, 18), (5, 5)]),
            vec![(15, 20)]
        );
    }
}
