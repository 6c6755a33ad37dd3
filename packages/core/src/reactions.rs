//! Reaction summaries: one entry per emoji, in the order each emoji was first used, with who reacted.

use crate::model::ReactionSummary;

/// `rows` are `(emoji, member_id)` in the order the reactions were made.
pub fn summarize<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<ReactionSummary> {
    let mut out: Vec<ReactionSummary> = Vec::new();
    for (emoji, member) in rows {
        match out.iter_mut().find(|s| s.emoji == emoji) {
            Some(s) => {
                if !s.member_ids.iter().any(|m| m == member) {
                    s.member_ids.push(member.to_string());
                    s.count += 1;
                }
            }
            None => {
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
}
