//! MQTT topic filters: which topics a subscription's filter matches (the broker's deliveries,
//! a lesson's witness claims, policy lint's look at subscriptions).

/// Level-by-level match: `+` stands for one level, `#` (last) for the rest, including none.
pub fn levels_match(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether a subscription with `filter` receives `topic`: [`levels_match`], except that a
/// filter whose first level is a wildcard does not match a topic that starts with `$` (MQTT 3.1.1
/// §4.7.2).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    levels_match(filter, topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        assert!(!filter_matches("#", "$aws/things/x"));
        assert!(!filter_matches("+/things/x", "$aws/things/x"));
        assert!(filter_matches("$aws/#", "$aws/things/x"));
        assert!(filter_matches("a/#", "a/b/c") && filter_matches("a/+/c", "a/b/c"));
        assert!(!filter_matches("a/+", "a/b/c"));
    }

    #[test]
    fn levels_match_wildcards_level_by_level() {
        assert!(levels_match("a/#", "a") && levels_match("#", "$aws/x"));
        assert!(levels_match("+/b", "a/b") && !levels_match("+", "a/b"));
        assert!(!levels_match("a/b", "a") && !levels_match("a", "a/b"));
    }
}
