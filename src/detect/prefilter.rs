//! Rejects most rules without evaluating them: every literal a match must
//! contain goes into one Aho–Corasick automaton, each exec's field values
//! are scanned once, and a rule is evaluated only when one literal of its
//! required set occurred somewhere in the exec.
//!
//! A rule's required set is a disjunction of literals derived from its
//! condition: a search needs any of its values' literals, `and` needs what
//! any one operand needs, `or` what every operand needs. Anything that
//! gives no literal (`not`, `null`, `exists`, numbers, `fieldref`, values
//! that are only wildcards, a regex with no required literal) makes the
//! rule always evaluated. Literals are lower-cased and the automaton folds
//! ASCII case, so scanning a value as given (or lower-cased, when it is
//! not ASCII) finds every literal a case-sensitive or case-insensitive
//! match contains.

use std::collections::HashMap;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

use super::condition::Cond;
use super::fields::Record;
use super::modifiers::{Op, Pattern};
use super::rule::{Item, Search};

/// A literal (by id) and the fields it must occur in, a bit per field
/// slot: one alternative of a rule's required set.
pub type Need = (u32, u16);

/// Every field: what a keyword may occur in.
const ANY_FIELD: u16 = u16::MAX;

/// Literals collected from the rules, numbered.
#[derive(Debug, Default)]
pub struct Needles {
    ids: HashMap<String, u32>,
    list: Vec<String>,
}

impl Needles {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.ids.insert(s.to_string(), i);
        self.list.push(s.to_string());
        i
    }

    /// The literals, each in its fields, one of which every match of
    /// `cond` contains; `None` when there is no such set.
    pub fn required(&mut self, cond: &Cond, searches: &[Search]) -> Option<Vec<Need>> {
        match cond {
            Cond::Search(i) => self.search(&searches[*i]),
            Cond::Not(_) => None,
            Cond::And(v) => {
                let sets: Vec<_> = v.iter().map(|c| self.required(c, searches)).collect();
                self.best(sets)
            }
            Cond::Or(v) => {
                let sets: Vec<_> = v.iter().map(|c| self.required(c, searches)).collect();
                union(sets)
            }
        }
    }

    fn search(&mut self, s: &Search) -> Option<Vec<Need>> {
        match s {
            Search::Keywords(pats) => self.patterns(pats, false, ANY_FIELD),
            Search::Maps(maps) => {
                let sets: Vec<_> = maps.iter().map(|m| self.map(m)).collect();
                union(sets)
            }
        }
    }

    fn map(&mut self, items: &[Item]) -> Option<Vec<Need>> {
        let sets: Vec<_> = items.iter().map(|i| self.item(i)).collect();
        self.best(sets)
    }

    fn item(&mut self, item: &Item) -> Option<Vec<Need>> {
        let mask = 1u16 << item.field?.slot();
        match &item.op {
            Op::Match { pats, all } => self.patterns(pats, *all, mask),
            _ => None,
        }
    }

    fn patterns(&mut self, pats: &[Pattern], all: bool, mask: u16) -> Option<Vec<Need>> {
        let sets: Vec<_> = pats
            .iter()
            .map(|p| {
                (!p.needles.is_empty())
                    .then(|| p.needles.iter().map(|n| (self.id(n), mask)).collect())
            })
            .collect();
        if all { self.best(sets) } else { union(sets) }
    }

    /// For an `and`: the operand set least likely to occur, judged by its
    /// shortest literal (`/usr/bin/git` is rarer than `-c`), then by size.
    fn best(&self, sets: Vec<Option<Vec<Need>>>) -> Option<Vec<Need>> {
        let shortest = |s: &Vec<Need>| {
            s.iter()
                .map(|&(i, _)| self.list[i as usize].len())
                .min()
                .unwrap_or(0)
        };
        sets.into_iter()
            .flatten()
            .max_by_key(|s| (shortest(s), std::cmp::Reverse(s.len())))
    }

    /// The automaton over every literal; `None` when there are none.
    pub fn build(&self) -> Option<(DFA, StateID)> {
        if self.list.is_empty() {
            return None;
        }
        // A DFA: a few hundred literals make a small one, and it scans each
        // byte in one step. Its own prefilter is off: with literals as short
        // as `-r` or `>` it fires on most positions and only adds work.
        // Standard semantics: each state lists every literal ending there,
        // which an overlapping scan needs.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(&self.list)
            .expect("literals of bounded size");
        let start = dfa
            .start_state(Anchored::No)
            .expect("an unanchored DFA has an unanchored start");
        Some((dfa, start))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }
}

/// For an `or`: every operand's literals; `None` if one has none.
fn union(sets: Vec<Option<Vec<Need>>>) -> Option<Vec<Need>> {
    if sets.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for s in sets {
        out.extend(s?);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The automaton and, for each literal, the rules that need it: a scan
/// marks the rules one of whose literals occurred, plus those always
/// evaluated.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// The automaton and its start state.
    ac: Option<(DFA, StateID)>,
    /// Literal id → rules (indices) whose required set holds it, and in
    /// which fields.
    rules_of: Vec<Vec<(u32, u16)>>,
    /// Rules with no required set, as a bit set.
    always: Vec<u64>,
}

impl Prefilter {
    /// `required[i]` is rule i's set of literals (`None`: always
    /// evaluated).
    pub fn new(needles: &Needles, required: &[Option<Vec<Need>>]) -> Prefilter {
        let mut rules_of = vec![Vec::new(); needles.len()];
        let mut always = vec![0u64; required.len().div_ceil(64)];
        for (r, req) in required.iter().enumerate() {
            match req {
                Some(ids) => {
                    for &(n, mask) in ids {
                        rules_of[n as usize].push((r as u32, mask));
                    }
                }
                None => always[r / 64] |= 1 << (r % 64),
            }
        }
        Prefilter {
            ac: needles.build(),
            rules_of,
            always,
        }
    }

    /// Marks in `cand` the rules to evaluate for the exec whose values are
    /// `rec`.
    pub fn candidates(&self, rec: &Record, cand: &mut Vec<u64>) {
        cand.clear();
        cand.extend_from_slice(&self.always);
        let Some((dfa, start)) = &self.ac else { return };
        // Each value scanned on its own, every occurrence of every literal
        // (overlapping): a hand-written loop over the DFA's transitions,
        // much cheaper than the iterator's per-match bookkeeping.
        for (slot, text) in rec.scan_texts() {
            let bit = 1u16 << slot;
            let mut sid = *start;
            for &b in text {
                sid = dfa.next_state(Anchored::No, sid, b);
                if !dfa.is_match(sid) {
                    continue;
                }
                for k in 0..dfa.match_len(sid) {
                    let lit = dfa.match_pattern(sid, k).as_usize();
                    for &(r, mask) in &self.rules_of[lit] {
                        if mask & bit != 0 {
                            cand[r as usize / 64] |= 1 << (r % 64);
                        }
                    }
                }
            }
        }
    }
}

/// The rule indices set in `bits`, in ascending order.
pub fn each_set(bits: &[u64]) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(w, &word)| {
        let mut word = word;
        std::iter::from_fn(move || {
            if word == 0 {
                return None;
            }
            let b = word.trailing_zeros() as usize;
            word &= word - 1;
            Some(w * 64 + b)
        })
    })
}
