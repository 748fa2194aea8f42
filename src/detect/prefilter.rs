//! Rejects most rules without evaluating them: each exec's field values
//! are searched for the literals the rules need, and a rule is evaluated
//! only when one literal of its required set occurred where it must.
//!
//! A rule's required set is a disjunction of literals derived from its
//! condition: a search needs any of its values' literals, `and` needs what
//! any one operand needs, `or` what every operand needs. Anything that
//! gives no literal (`not`, `null`, `exists`, numbers, `fieldref`, values
//! that are only wildcards, a regex with no required literal) makes the
//! rule always evaluated.
//!
//! Each literal carries its anchor: one from `endswith` (or a glob's last
//! piece) must end the value, from `startswith` start it, an exact value
//! be it. Those are found by walking a byte trie per field from the
//! value's end or start, a few steps each; only the remaining literals
//! (`contains`, `re`, a glob's middle) take a scan of every byte, with an
//! automaton per field that holds just them. Literals are lower-cased;
//! the tries fold ASCII case and the scanned fields are lower-cased
//! first, so a value that is not ASCII is compared lower-cased, and every
//! literal a case-sensitive or case-insensitive match holds is found.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};

use super::condition::Cond;
use super::fields::{self, FieldSet, Record};
use super::modifiers::{Anchor, Op, Pattern};
use super::rule::{Item, Search};

/// A literal (by id) and the fields it must occur in, a bit per field
/// slot: one alternative of a rule's required set.
pub type Need = (u32, FieldSet);

/// Every field: what a keyword may occur in.
const ANY_FIELD: FieldSet = FieldSet::MAX;

/// Literals collected from the rules, each with where in a value it
/// must occur, numbered.
#[derive(Debug, Default)]
pub struct Needles {
    ids: HashMap<(String, Anchor), u32>,
    list: Vec<(String, Anchor)>,
}

impl Needles {
    fn id(&mut self, s: &str, anchor: Anchor) -> u32 {
        let key = (s.to_string(), anchor);
        if let Some(&i) = self.ids.get(&key) {
            return i;
        }
        let i = self.list.len() as u32;
        self.ids.insert(key.clone(), i);
        self.list.push(key);
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
        let mask = item.field?.bit();
        match &item.op {
            Op::Match { pats, all } => self.patterns(pats, *all, mask),
            _ => None,
        }
    }

    fn patterns(&mut self, pats: &[Pattern], all: bool, mask: FieldSet) -> Option<Vec<Need>> {
        let sets: Vec<_> = pats
            .iter()
            .map(|p| {
                (!p.needles.is_empty()).then(|| {
                    p.needles
                        .iter()
                        .map(|n| (self.id(n, p.anchor), mask))
                        .collect()
                })
            })
            .collect();
        if all { self.best(sets) } else { union(sets) }
    }

    /// For an `and`: the operand set least likely to occur, judged by its
    /// shortest literal (`/usr/bin/git` is rarer than `-c`), then by size.
    fn best(&self, sets: Vec<Option<Vec<Need>>>) -> Option<Vec<Need>> {
        let shortest = |s: &Vec<Need>| {
            s.iter()
                .map(|&(i, _)| self.list[i as usize].0.len())
                .min()
                .unwrap_or(0)
        };
        sets.into_iter()
            .flatten()
            .max_by_key(|s| (shortest(s), std::cmp::Reverse(s.len())))
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

/// Per field, where to look for the literals its rules need; and for
/// each literal, the rules that need it: a search marks the rules one of
/// whose literals occurred where it must, plus those always evaluated.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// By field slot.
    fields: Vec<FieldSearch>,
    /// Literal id → rules (indices) whose required set holds it, and in
    /// which fields.
    rules_of: Vec<Vec<(u32, FieldSet)>>,
    /// Rules with no required set, as a bit set.
    always: Vec<u64>,
    /// The fields with literals that may occur anywhere: lower-cased
    /// before the search.
    lowered: FieldSet,
}

/// The literals some rule needs in one field.
#[derive(Debug, Default)]
struct FieldSearch {
    /// Literals that may occur anywhere.
    anywhere: Option<Scan>,
    /// Literals a value must start with.
    starts: Trie,
    /// Literals a value must end with (or be), reversed.
    ends: Trie,
}

impl Prefilter {
    /// `required[i]` is rule i's set of literals (`None`: always
    /// evaluated).
    pub fn new(needles: &Needles, required: &[Option<Vec<Need>>]) -> Prefilter {
        let mut rules_of = vec![Vec::new(); needles.len()];
        let mut always = vec![0u64; required.len().div_ceil(64)];
        // Literal id → the fields it is looked for in.
        let mut fields_of: Vec<FieldSet> = vec![0; needles.len()];
        for (r, req) in required.iter().enumerate() {
            match req {
                Some(ids) => {
                    for &(n, mask) in ids {
                        rules_of[n as usize].push((r as u32, mask));
                        fields_of[n as usize] |= mask;
                    }
                }
                None => always[r / 64] |= 1 << (r % 64),
            }
        }
        let mut lowered: FieldSet = 0;
        let fields: Vec<FieldSearch> = (0..fields::ALL.len())
            .map(|slot| {
                let mut anywhere = Vec::new();
                let mut starts = TrieBuilder::default();
                let mut ends = TrieBuilder::default();
                for (id, (lit, anchor)) in needles.list.iter().enumerate() {
                    if fields_of[id] & (1 << slot) == 0 {
                        continue;
                    }
                    let id = id as u32;
                    let b = lit.as_bytes();
                    match anchor {
                        Anchor::Anywhere => anywhere.push(id),
                        Anchor::Start => starts.insert(b.iter().copied(), id, false),
                        Anchor::End => ends.insert(b.iter().rev().copied(), id, false),
                        Anchor::Whole => ends.insert(b.iter().rev().copied(), id, true),
                    }
                }
                FieldSearch {
                    anywhere: Scan::new(needles, anywhere),
                    starts: starts.build(),
                    ends: ends.build(),
                }
            })
            .collect();
        for (slot, f) in fields.iter().enumerate() {
            if f.anywhere.is_some() {
                lowered |= 1 << slot;
            }
        }
        Prefilter {
            fields,
            rules_of,
            always,
            lowered,
        }
    }

    /// Marks in `cand` the rules to evaluate for the exec whose values are
    /// `rec`.
    pub fn candidates(&self, rec: &Record, cand: &mut Vec<u64>) {
        cand.clear();
        cand.extend_from_slice(&self.always);
        for (slot, text) in rec.scan_texts() {
            let Some(search) = self.fields.get(slot) else {
                continue;
            };
            let bit: FieldSet = 1 << slot;
            let mut mark = |lit: u32| {
                for &(r, mask) in &self.rules_of[lit as usize] {
                    if mask & bit != 0 {
                        cand[r as usize / 64] |= 1 << (r % 64);
                    }
                }
            };
            search.ends.walk(text.iter().rev(), text.len(), &mut mark);
            search.starts.walk(text.iter(), text.len(), &mut mark);
            if let Some(scan) = &search.anywhere {
                scan.run(text, &mut mark);
            }
        }
    }

    /// The fields [`Prefilter::candidates`] needs lower-cased.
    pub fn lowered(&self) -> FieldSet {
        self.lowered
    }
}

/// Literals looked for anywhere in a lower-cased value, by an automaton
/// over them.
#[derive(Debug)]
struct Scan {
    nfa: NFA,
    start: StateID,
    /// Automaton pattern id → literal id.
    ids: Vec<u32>,
}

impl Scan {
    fn new(needles: &Needles, ids: Vec<u32>) -> Option<Scan> {
        if ids.is_empty() {
            return None;
        }
        // A contiguous NFA rather than a DFA: with the command line's
        // hundred-odd literals the DFA's transition table is hundreds of
        // KiB, and each byte's dependent load misses the cache; the NFA's
        // few KiB stay cached, which outweighs its failure transitions
        // (about a quarter less per exec, measured with the Linux rules).
        // Its own prefilter is off: with literals as short as `-r` or `>`
        // it fires on most positions and only adds work. Standard
        // semantics: each state lists every literal ending there, which an
        // overlapping scan needs. Case-sensitive: the value is lower-cased,
        // and the alphabet stays smaller.
        let nfa = NFA::builder()
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(ids.iter().map(|&id| &needles.list[id as usize].0))
            .expect("literals of bounded size");
        let start = nfa
            .start_state(Anchored::No)
            .expect("an unanchored automaton has an unanchored start");
        Some(Scan { nfa, start, ids })
    }

    /// Calls `hit` with each literal that occurs in `text`. Kept out of
    /// line, with the rare hit behind a pointer, so the loop's few values
    /// stay in registers: its cost is the chain of transition loads.
    #[inline(never)]
    fn run(&self, text: &[u8], hit: &mut dyn FnMut(u32)) {
        // Every occurrence of every literal (overlapping): a hand-written
        // loop over the automaton's transitions, much cheaper than the
        // iterator's per-match bookkeeping.
        let mut sid = self.start;
        for &b in text {
            sid = self.nfa.next_state(Anchored::No, sid, b);
            if !self.nfa.is_match(sid) {
                continue;
            }
            for k in 0..self.nfa.match_len(sid) {
                hit(self.ids[self.nfa.match_pattern(sid, k).as_usize()]);
            }
        }
    }
}

/// Literals looked for at one end of a value: a byte trie walked from
/// that end, ASCII case folded (the literals are lower-cased), stopping at
/// the first byte no literal continues with, so a value costs a few steps.
#[derive(Debug, Default)]
struct Trie {
    /// The root's children by byte: node index + 1, 0 for none; empty
    /// when there is no literal.
    root: Vec<u32>,
    /// Every node but the root: its edges and its literals, as ranges.
    nodes: Vec<Node>,
    /// (byte, child node), sorted by byte within each node's range.
    edges: Vec<(u8, u32)>,
    /// Literal ids, and whether the literal must be the whole value.
    lits: Vec<(u32, bool)>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    edges: (u32, u32),
    lits: (u32, u32),
}

impl Trie {
    /// Calls `hit` with each literal `bytes` (a value of `len` bytes, from
    /// the trie's end) begins with.
    fn walk<'a>(&self, bytes: impl Iterator<Item = &'a u8>, len: usize, hit: &mut impl FnMut(u32)) {
        if self.root.is_empty() {
            return;
        }
        let mut node = None::<&Node>;
        for (depth, &b) in bytes.enumerate() {
            let b = b.to_ascii_lowercase();
            let next = match node {
                None => self.root[b as usize].checked_sub(1),
                Some(n) => self.edges[n.edges.0 as usize..n.edges.1 as usize]
                    .iter()
                    .find(|&&(e, _)| e == b)
                    .map(|&(_, c)| c),
            };
            let Some(next) = next else { return };
            let n = &self.nodes[next as usize];
            for &(lit, whole) in &self.lits[n.lits.0 as usize..n.lits.1 as usize] {
                if !whole || depth + 1 == len {
                    hit(lit);
                }
            }
            node = Some(n);
        }
    }
}

/// A [`Trie`] being built: children by byte, per node (0 is the root).
#[derive(Debug)]
struct TrieBuilder {
    children: Vec<BTreeMap<u8, usize>>,
    lits: Vec<Vec<(u32, bool)>>,
}

impl Default for TrieBuilder {
    fn default() -> Self {
        TrieBuilder {
            children: vec![BTreeMap::new()],
            lits: vec![Vec::new()],
        }
    }
}

impl TrieBuilder {
    fn insert(&mut self, bytes: impl Iterator<Item = u8>, lit: u32, whole: bool) {
        let mut at = 0;
        for b in bytes {
            let fresh = self.children.len();
            at = *self.children[at].entry(b).or_insert(fresh);
            if at == fresh {
                self.children.push(BTreeMap::new());
                self.lits.push(Vec::new());
            }
        }
        self.lits[at].push((lit, whole));
    }

    /// Nodes renumbered without the root (node i becomes i - 1).
    fn build(self) -> Trie {
        if self.children.len() == 1 {
            return Trie::default();
        }
        let mut root = vec![0u32; 256];
        for (&b, &c) in &self.children[0] {
            root[b as usize] = c as u32;
        }
        let mut t = Trie {
            root,
            ..Trie::default()
        };
        for (kids, lits) in self.children.iter().zip(&self.lits).skip(1) {
            let e0 = t.edges.len() as u32;
            t.edges
                .extend(kids.iter().map(|(&b, &c)| (b, c as u32 - 1)));
            let l0 = t.lits.len() as u32;
            t.lits.extend_from_slice(lits);
            t.nodes.push(Node {
                edges: (e0, t.edges.len() as u32),
                lits: (l0, t.lits.len() as u32),
            });
        }
        t
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
