//! Values quoted in messages, cut short: a value can be of any length, a message should not.

/// At most `max` characters of `s`, cut on a character boundary.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
