//! Wildcard patterns: `*` (any run of characters, `/` included) and `?` (one character).
//!
//! A pattern is a list of tokens so that characters that came from a policy variable — or from the
//! escapes `${*}`, `${?}`, `${$}` — stay literal even when they are `*` or `?`.

/// One element of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    Star,
    Qm,
}

/// A pattern ready to match.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Pattern(pub Vec<Tok>);

impl Pattern {
    /// A pattern from policy text with no variables: `*` and `?` are wildcards.
    pub fn from_policy_text(s: &str) -> Pattern {
        let mut p = Pattern::default();
        p.push_policy_text(s);
        p
    }

    pub fn push_policy_text(&mut self, s: &str) {
        for c in s.chars() {
            self.0.push(match c {
                '*' => Tok::Star,
                '?' => Tok::Qm,
                c => Tok::Lit(c),
            });
        }
    }

    pub fn push_literal(&mut self, s: &str) {
        self.0.extend(s.chars().map(Tok::Lit));
    }

    /// Human form: wildcards as `*`/`?`, literal `*`, `?`, `$` written as `${*}`, `${?}`, `${$}`
    /// only where they would otherwise be read as wildcards.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for t in &self.0 {
            match t {
                Tok::Star => s.push('*'),
                Tok::Qm => s.push('?'),
                Tok::Lit('*') => s.push_str("${*}"),
                Tok::Lit('?') => s.push_str("${?}"),
                Tok::Lit(c) => s.push(*c),
            }
        }
        s
    }

    /// Whole-string wildcard match.
    pub fn matches(&self, text: &str, ignore_case: bool) -> bool {
        let t: Vec<char> = text.chars().collect();
        glob(&self.0, &t, ignore_case)
    }

    /// IAM ARN matching: the first five `:`-separated parts (`arn`, partition, service, region,
    /// account) are matched one by one — a wildcard never spans a `:` there — and the rest (the
    /// resource, which may itself contain `:`) as one piece. A pattern that is not shaped like an
    /// ARN (e.g. `*`) is matched against the whole string.
    pub fn matches_arn(&self, arn: &str) -> bool {
        let pat_parts = split_tokens(&self.0, 6);
        if pat_parts.len() < 6 {
            // `*` or another non-ARN pattern: whole string. A truncated ARN matches nothing.
            let starts_arn = self.0.len() >= 4
                && self.0[..4] == "arn:".chars().map(Tok::Lit).collect::<Vec<_>>()[..];
            return !starts_arn && self.matches(arn, false);
        }
        let arn_parts: Vec<&str> = arn.splitn(6, ':').collect();
        if arn_parts.len() < 6 {
            return false;
        }
        pat_parts.iter().zip(arn_parts.iter()).all(|(p, a)| {
            let t: Vec<char> = a.chars().collect();
            glob(p, &t, false)
        })
    }
}

/// Splits tokens on literal `:` into at most `n` parts (the last takes the rest).
fn split_tokens(toks: &[Tok], n: usize) -> Vec<Vec<Tok>> {
    let mut parts = vec![Vec::new()];
    for t in toks {
        if *t == Tok::Lit(':') && parts.len() < n {
            parts.push(Vec::new());
        } else {
            parts.last_mut().expect("non-empty").push(t.clone());
        }
    }
    parts
}

fn glob(p: &[Tok], t: &[char], ic: bool) -> bool {
    // Iterative matcher with single-star backtracking (linear in practice).
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: char, b: char| {
        if ic {
            a.to_lowercase().eq(b.to_lowercase())
        } else {
            a == b
        }
    };
    while ti < t.len() {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Tok::Qm) => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Lit(c)) if eq(*c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_slash_and_question_is_one_char() {
        let p = Pattern::from_policy_text("some/*/topic");
        assert!(p.matches("some/a/b/topic", false));
        assert!(!p.matches("some/topic", false));
        let q = Pattern::from_policy_text("some/?????/topic");
        assert!(q.matches("some/abcde/topic", false));
        assert!(!q.matches("some/abcd/topic", false));
    }

    #[test]
    fn mqtt_wildcards_are_literal() {
        let p = Pattern::from_policy_text("some/+/topic");
        assert!(p.matches("some/+/topic", false));
        assert!(!p.matches("some/x/topic", false));
    }

    #[test]
    fn literal_star_is_not_a_wildcard() {
        let mut p = Pattern::from_policy_text("a/");
        p.push_literal("*");
        assert!(p.matches("a/*", false));
        assert!(!p.matches("a/b", false));
        assert_eq!(p.display(), "a/${*}");
    }

    #[test]
    fn arn_wildcards_do_not_span_colons_in_the_prefix() {
        let p = Pattern::from_policy_text("arn:aws:iot:*:123456789012:topic/a");
        assert!(p.matches_arn("arn:aws:iot:eu-west-1:123456789012:topic/a"));
        let q = Pattern::from_policy_text("arn:aws:iot:us-east-1*:topic/a");
        assert!(!q.matches_arn("arn:aws:iot:us-east-1:123456789012:topic/a"));
        assert!(Pattern::from_policy_text("*").matches_arn("arn:aws:iot:r:1:client/x"));
    }
}
