//! Rejects most rules without evaluating them: every literal a match must
//! contain goes into one Aho–Corasick automaton, each exec's field values
//! are scanned once, and a rule is evaluated only when one literal of its
//! required set occurred somewhere in the exec.
//!
//! A rule's required set is a disjunction of literals derived from its
//! condition: a search needs any of its values' literals, `and` needs what
//! any one operand needs, `or` what every operand needs. Anything that
//! gives no literal (`not`, `re`, `null`, `exists`, numbers, `fieldref`,
//! values that are only wildcards) makes the rule always evaluated. Values
//! are lower-cased, so the scan over lower-cased text finds every literal a
//! case-sensitive or case-insensitive match contains.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;

use super::condition::Cond;
use super::modifiers::{Op, Pattern};
use super::rule::{Item, Search};

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

    /// The literals one of which every match of `cond` contains; `None`
    /// when there is no such set.
    pub fn required(&mut self, cond: &Cond, searches: &[Search]) -> Option<Vec<u32>> {
        match cond {
            Cond::Search(i) => self.search(&searches[*i]),
            Cond::Not(_) => None,
            Cond::And(v) => {
                let sets: Vec<_> = v.iter().map(|c| self.required(c, searches)).collect();
                smallest(sets)
            }
            Cond::Or(v) => {
                let sets: Vec<_> = v.iter().map(|c| self.required(c, searches)).collect();
                union(sets)
            }
        }
    }

    fn search(&mut self, s: &Search) -> Option<Vec<u32>> {
        match s {
            Search::Keywords(pats) => self.patterns(pats, false),
            Search::Maps(maps) => {
                let sets: Vec<_> = maps.iter().map(|m| self.map(m)).collect();
                union(sets)
            }
        }
    }

    fn map(&mut self, items: &[Item]) -> Option<Vec<u32>> {
        let sets: Vec<_> = items.iter().map(|i| self.item(i)).collect();
        smallest(sets)
    }

    fn item(&mut self, item: &Item) -> Option<Vec<u32>> {
        match &item.op {
            Op::Match { pats, all } => self.patterns(pats, *all),
            _ => None,
        }
    }

    fn patterns(&mut self, pats: &[Pattern], all: bool) -> Option<Vec<u32>> {
        let sets: Vec<_> = pats
            .iter()
            .map(|p| p.needle.as_deref().map(|n| vec![self.id(n)]))
            .collect();
        if all { smallest(sets) } else { union(sets) }
    }

    /// The automaton over every literal; `None` when there are none.
    pub fn build(&self) -> Option<AhoCorasick> {
        if self.list.is_empty() {
            return None;
        }
        Some(AhoCorasick::new(&self.list).expect("literals of bounded size"))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }
}

/// For an `and`: the smallest of the operands' sets.
fn smallest(sets: Vec<Option<Vec<u32>>>) -> Option<Vec<u32>> {
    sets.into_iter().flatten().min_by_key(Vec::len)
}

/// For an `or`: every operand's literals; `None` if one has none.
fn union(sets: Vec<Option<Vec<u32>>>) -> Option<Vec<u32>> {
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

/// Which literals occurred in one exec: a bit per literal, cleared and
/// refilled per exec without allocating.
#[derive(Debug, Default)]
pub struct Hits {
    bits: Vec<u64>,
}

impl Hits {
    pub fn reset(&mut self, needles: usize) {
        let words = needles.div_ceil(64);
        self.bits.clear();
        self.bits.resize(words, 0);
    }

    /// Records every literal that occurs in `text`.
    pub fn scan(&mut self, ac: &AhoCorasick, text: &str) {
        for m in ac.find_overlapping_iter(text) {
            let i = m.pattern().as_usize();
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }

    pub fn any(&self, ids: &[u32]) -> bool {
        ids.iter()
            .any(|&i| self.bits[i as usize / 64] & (1 << (i % 64)) != 0)
    }
}
