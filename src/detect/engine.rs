//! The compiled rule set and its evaluation on each exec.

use std::sync::Arc;

use super::condition::Cond;
use super::fields::{self, Field, FieldSet, Platform, Record};
use super::modifiers::{Cmp, Mode, Op};
use super::prefilter::{self, Needles, Prefilter};
use super::rule::{Item, RuleDoc, Search};
use crate::event::{Detection, ExecEvent};

/// One rule, ready to evaluate.
#[derive(Debug)]
struct Compiled {
    info: Arc<Detection>,
    searches: Vec<Search>,
    cond: Cond,
    /// Whether the prefilter can skip it (else it is always evaluated).
    prefiltered: bool,
    /// The fields it reads, lower-cased before it is evaluated.
    fields: FieldSet,
}

/// Rules compiled for one platform; shared, read-only.
#[derive(Debug, Default)]
pub struct Engine {
    rules: Vec<Compiled>,
    prefilter: Prefilter,
    platform: Option<Platform>,
    /// The fields some rule reads (keywords read them all): only these
    /// are filled per exec.
    used: FieldSet,
}

impl Engine {
    /// Compiles `docs` for `p`. A rule naming a field `p` does not fill is
    /// returned in the second list with the reason.
    pub fn compile(docs: Vec<(String, RuleDoc)>, p: Platform) -> (Engine, Vec<(String, String)>) {
        let mut rules = Vec::new();
        let mut skipped = Vec::new();
        let mut needles = Needles::default();
        let mut used: FieldSet = 0;
        let mut required = Vec::new();
        for (file, doc) in docs {
            if let Some(why) = unavailable_field(&doc, p) {
                skipped.push((file, why));
                continue;
            }
            let reads = fields_read(&doc);
            used |= reads;
            let req = needles.required(&doc.cond, &doc.searches);
            rules.push(Compiled {
                info: Arc::new(doc.info),
                searches: doc.searches,
                cond: doc.cond,
                prefiltered: req.is_some(),
                fields: reads,
            });
            required.push(req);
        }
        let engine = Engine {
            rules,
            prefilter: Prefilter::new(&needles, &required),
            platform: Some(p),
            used,
        };
        (engine, skipped)
    }

    /// Rules loaded.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules the prefilter can reject (the rest are evaluated on every
    /// exec).
    pub fn prefiltered(&self) -> usize {
        self.rules.iter().filter(|r| r.prefiltered).count()
    }
}

/// The fields `doc` reads (keywords: all of them).
fn fields_read(doc: &RuleDoc) -> FieldSet {
    let mut set: FieldSet = 0;
    for s in &doc.searches {
        match s {
            Search::Keywords(_) => return FieldSet::MAX,
            Search::Maps(maps) => {
                for item in maps.iter().flatten() {
                    if let Some(f) = item.field {
                        set |= f.bit();
                    }
                    if let Op::FieldRef { others, .. } = &item.op {
                        for f in others.iter().filter_map(|o| Field::by_name(o)) {
                            set |= f.bit();
                        }
                    }
                }
            }
        }
    }
    set
}

/// The first field of `doc` (searched or referred to) that `p` does not
/// fill, as a reason.
fn unavailable_field(doc: &RuleDoc, p: Platform) -> Option<String> {
    for s in &doc.searches {
        let Search::Maps(maps) = s else { continue };
        for item in maps.iter().flatten() {
            if let Some(why) = fields::unavailable(&item.name, p) {
                return Some(why);
            }
            if let Op::Placeholder(v) = &item.op {
                return Some(format!("expand: no value for the placeholder in {v:?}"));
            }
            if let Op::FieldRef { others, .. } = &item.op {
                for o in others {
                    if let Some(why) = fields::unavailable(o, p) {
                        return Some(why);
                    }
                }
            }
        }
    }
    None
}

/// Evaluates an [`Engine`] on execs, with buffers kept from one exec to
/// the next.
#[derive(Debug)]
pub struct Detector {
    engine: Arc<Engine>,
    record: Record,
    /// The rules to evaluate for the current exec, a bit each.
    candidates: Vec<u64>,
    /// Rules evaluated so far (those the prefilter let through), to show
    /// how much it saves.
    pub evaluated: u64,
}

impl Detector {
    pub fn new(engine: Arc<Engine>) -> Detector {
        Detector {
            engine,
            record: Record::default(),
            candidates: Vec::new(),
            evaluated: 0,
        }
    }

    /// The rule set in use.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Replaces the rule set (SIGHUP).
    pub fn replace(&mut self, engine: Arc<Engine>) {
        self.engine = engine;
    }

    /// Sets `ev.detections` to the rules `ev` matches, in rule order.
    pub fn detect(&mut self, ev: &mut ExecEvent) {
        ev.detections.clear();
        let e = &*self.engine;
        let Some(platform) = e.platform else { return };
        if e.rules.is_empty() {
            return;
        }
        self.record.fill(ev, platform, e.used);
        self.record.lower(e.prefilter.lowered());
        e.prefilter.candidates(&self.record, &mut self.candidates);
        let mut reads: FieldSet = 0;
        for i in prefilter::each_set(&self.candidates) {
            reads |= e.rules[i].fields;
        }
        self.record.lower(reads);
        for i in prefilter::each_set(&self.candidates) {
            let r = &e.rules[i];
            self.evaluated += 1;
            if eval(&r.cond, &r.searches, &self.record) {
                ev.detections.push(Arc::clone(&r.info));
            }
        }
    }
}

fn eval(c: &Cond, searches: &[Search], rec: &Record) -> bool {
    match c {
        Cond::Search(i) => search(&searches[*i], rec),
        Cond::Not(c) => !eval(c, searches, rec),
        Cond::And(v) => v.iter().all(|c| eval(c, searches, rec)),
        Cond::Or(v) => v.iter().any(|c| eval(c, searches, rec)),
    }
}

fn search(s: &Search, rec: &Record) -> bool {
    match s {
        Search::Maps(maps) => maps
            .iter()
            .any(|items| items.iter().all(|item| matches_item(item, rec))),
        Search::Keywords(pats) => pats
            .iter()
            .any(|p| rec.present().any(|(orig, low)| p.matches(orig, low))),
    }
}

fn matches_item(item: &Item, rec: &Record) -> bool {
    let Some(field) = item.field else {
        return false;
    };
    let value = rec.orig(field).zip(rec.low(field));
    match &item.op {
        Op::Null => value.is_none(),
        Op::Placeholder(_) => false,
        Op::Exists(want) => value.is_some() == *want,
        Op::Match { pats, all } => {
            let Some((orig, low)) = value else {
                return false;
            };
            if *all {
                pats.iter().all(|p| p.matches(orig, low))
            } else {
                pats.iter().any(|p| p.matches(orig, low))
            }
        }
        Op::Num { cmps, all } => {
            let Some(n) = value.and_then(|(orig, _)| orig.trim().parse::<f64>().ok()) else {
                return false;
            };
            let test = |&(cmp, v): &(Cmp, f64)| match cmp {
                Cmp::Gt => n > v,
                Cmp::Gte => n >= v,
                Cmp::Lt => n < v,
                Cmp::Lte => n <= v,
            };
            if *all {
                cmps.iter().all(test)
            } else {
                cmps.iter().any(test)
            }
        }
        Op::FieldRef {
            others,
            mode,
            cased,
            all,
        } => {
            let Some((orig, low)) = value else {
                return false;
            };
            let test = |name: &String| {
                let Some(other) = Field::by_name(name) else {
                    return false;
                };
                let (text, want) = if *cased {
                    (orig, rec.orig(other))
                } else {
                    (low, rec.low(other))
                };
                want.is_some_and(|w| match mode {
                    Mode::Eq => text == w,
                    Mode::Contains => text.contains(w),
                    Mode::Starts => text.starts_with(w),
                    Mode::Ends => text.ends_with(w),
                })
            };
            if *all {
                others.iter().all(test)
            } else {
                others.iter().any(test)
            }
        }
    }
}
