//! A set of strings for `str`, `beg` and `end` matches. A few values are
//! compared one by one (the seed's `path_beg` and `path_end` lines: no
//! allocation, no hashing). Past [`INDEX_FROM`] values, they are indexed by
//! a hash of their (case-folded) bytes, and a sample is looked up once per
//! distinct value length, so a line with thousands of values costs a few
//! lookups rather than thousands of comparisons.

use std::collections::HashMap;

/// Values from which a set is indexed.
const INDEX_FROM: usize = 8;

#[derive(Debug)]
pub(super) struct Strings {
    /// The values, ASCII-lowercased for `-i`.
    pats: Vec<Box<[u8]>>,
    icase: bool,
    index: Option<Index>,
}

#[derive(Debug)]
struct Index {
    /// Hash of a value → positions in `pats`.
    by_hash: HashMap<u64, Vec<u32>>,
    /// The distinct value lengths, shortest first.
    lens: Vec<usize>,
}

impl Strings {
    pub(super) fn new(values: impl Iterator<Item = Box<[u8]>>, icase: bool) -> Strings {
        let pats: Vec<Box<[u8]>> = values
            .map(|mut v| {
                if icase {
                    v.make_ascii_lowercase();
                }
                v
            })
            .collect();
        let index = (pats.len() >= INDEX_FROM).then(|| Index::new(&pats, icase));
        Strings { pats, icase, index }
    }

    /// A value equals `s`.
    pub(super) fn contains(&self, s: &[u8]) -> bool {
        match &self.index {
            Some(ix) => self.lookup(ix, s),
            None => self.pats.iter().any(|p| self.eq(p, s)),
        }
    }

    /// A value is a prefix of `s`.
    pub(super) fn prefix_of(&self, s: &[u8]) -> bool {
        match &self.index {
            Some(ix) => ix.fitting(s.len()).any(|l| self.lookup(ix, &s[..l])),
            None => self
                .pats
                .iter()
                .any(|p| p.len() <= s.len() && self.eq(p, &s[..p.len()])),
        }
    }

    /// A value is a suffix of `s`.
    pub(super) fn suffix_of(&self, s: &[u8]) -> bool {
        let tail = |l: usize| &s[s.len() - l..];
        match &self.index {
            Some(ix) => ix.fitting(s.len()).any(|l| self.lookup(ix, tail(l))),
            None => self
                .pats
                .iter()
                .any(|p| p.len() <= s.len() && self.eq(p, tail(p.len()))),
        }
    }

    fn lookup(&self, ix: &Index, s: &[u8]) -> bool {
        ix.by_hash
            .get(&fold_hash(s, self.icase))
            .is_some_and(|c| c.iter().any(|&i| self.eq(&self.pats[i as usize], s)))
    }

    fn eq(&self, pat: &[u8], s: &[u8]) -> bool {
        if self.icase {
            pat.eq_ignore_ascii_case(s)
        } else {
            *pat == *s
        }
    }
}

impl Index {
    fn new(pats: &[Box<[u8]>], icase: bool) -> Index {
        let mut by_hash: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, p) in pats.iter().enumerate() {
            by_hash
                .entry(fold_hash(p, icase))
                .or_default()
                .push(i as u32);
        }
        let mut lens: Vec<usize> = pats.iter().map(|p| p.len()).collect();
        lens.sort_unstable();
        lens.dedup();
        Index { by_hash, lens }
    }

    /// The value lengths that fit in a sample of `len` bytes.
    fn fitting(&self, len: usize) -> impl Iterator<Item = usize> + '_ {
        self.lens.iter().copied().take_while(move |l| *l <= len)
    }
}

/// FNV-1a of the bytes, lowercased first for `-i`. The table holds only
/// configured values, so a client choosing colliding samples gains
/// nothing but a few extra comparisons.
fn fold_hash(s: &[u8], icase: bool) -> u64 {
    s.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        let c = if icase { c.to_ascii_lowercase() } else { c };
        (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
