//! Reaction summaries: one entry per emoji, in the order each emoji was first used, with who reacted.
//! Linear in the number of reactions (one map lookup per row), however many people react.

use crate::model::ReactionSummary;
use std::collections::{HashMap, HashSet};

/// `rows` are `(emoji, member_id)` in the order the reactions were made.
pub fn summarize<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<ReactionSummary> {
    let mut out: Vec<ReactionSummary> = Vec::new();
    let mut index: HashMap<&'a str, usize> = HashMap::new();
    let mut seen: HashSet<(&'a str, &'a str)> = HashSet::new();
    for (emoji, member) in rows {
        if !seen.insert((emoji, member)) {
            continue;
        }
        match index.get(emoji) {
            Some(&i) => {
                out[i].member_ids.push(member.to_string());
                out[i].count += 1;
            }
            None => {
                index.insert(emoji, out.len());
                out.push(ReactionSummary { emoji: emoji.to_string(), count: 1, member_ids: vec![member.to_string()] })
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_emoji_in_first_use_order() {
        let s = summarize([("👍", "a"), ("🎉", "b"), ("👍", "b"), ("👍", "a")]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].emoji, "👍");
        assert_eq!(s[0].count, 2);
        assert_eq!(s[0].member_ids, vec!["a", "b"]);
        assert_eq!(s[1].emoji, "🎉");
        assert!(summarize([]).is_empty());
    }

    #[test]
    fn many_people_on_one_emoji_stay_linear_and_exact() {
        let members: Vec<String> = (0..20_000).map(|i| format!("m{i}")).collect();
        let rows: Vec<(&str, &str)> =
            members.iter().map(|m| ("👍", m.as_str())).chain(members.iter().map(|m| ("👍", m.as_str()))).collect();
        let s = summarize(rows);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, members.len());
        assert_eq!(s[0].member_ids, members);
    }
}
