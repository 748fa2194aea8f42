//! The `condition` of a rule: `and`, `or`, `not`, parentheses, `1 of x*`,
//! `all of x*`, `1 of them`, `all of them`, over the rule's search
//! identifiers. Aggregations (`| count()`, `near`) are not supported.

/// A parsed condition; `Search(i)` is the rule's i-th search identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Search(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !word.is_empty() {
                out.push(Tok::Word(std::mem::take(&mut word)));
            }
            match c {
                '(' => out.push(Tok::Open),
                ')' => out.push(Tok::Close),
                _ => {}
            }
        } else if c == '|' {
            return Err("aggregation (|) in the condition is not supported".into());
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(Tok::Word(word));
    }
    Ok(out)
}

/// Parses `s` against the search identifiers `names`.
pub fn parse(s: &str, names: &[String]) -> Result<Cond, String> {
    let toks = tokenize(s)?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        names,
    };
    let c = p.or()?;
    match p.toks.get(p.pos) {
        None => Ok(c),
        Some(t) => Err(format!("condition {s:?}: unexpected {t:?}")),
    }
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    names: &'a [String],
}

impl Parser<'_> {
    fn word(&self, at: usize) -> Option<&str> {
        match self.toks.get(at) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let hit = self
            .word(self.pos)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.and()?];
        while self.keyword("or") {
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            Cond::Or(v)
        })
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut v = vec![self.not()?];
        while self.keyword("and") {
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            Cond::And(v)
        })
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.keyword("not") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Open) => {
                self.pos += 1;
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return Err("condition: missing )".into());
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                if self.keyword("of") {
                    let all = match w.to_ascii_lowercase().as_str() {
                        "1" | "any" => false,
                        "all" => true,
                        q => return Err(format!("condition: '{q} of' is not supported")),
                    };
                    let target = self
                        .word(self.pos)
                        .ok_or("condition: 'of' without a target")?
                        .to_string();
                    self.pos += 1;
                    return self.of(all, &target);
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Cond::Search(i)),
                    None => Err(format!("condition names an undefined search {w:?}")),
                }
            }
            Some(Tok::Close) => Err("condition: unexpected )".into()),
            None => Err("condition: ends too early".into()),
        }
    }

    /// `1 of x*` / `all of x*` / `... of them` (`them`: every identifier
    /// not starting with `_`).
    fn of(&self, all: bool, target: &str) -> Result<Cond, String> {
        let picked: Vec<Cond> = self
            .names
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                if target == "them" {
                    !n.starts_with('_')
                } else {
                    glob_match(target, n)
                }
            })
            .map(|(i, _)| Cond::Search(i))
            .collect();
        if picked.is_empty() {
            return Err(format!("condition: no search matches {target:?}"));
        }
        Ok(if all {
            Cond::And(picked)
        } else {
            Cond::Or(picked)
        })
    }
}

/// A search-identifier pattern: `*` any run of characters, the rest
/// literal.
fn glob_match(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            if !tail.contains('*') {
                return rest.len() >= tail.len() && rest.ends_with(tail);
            }
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}
