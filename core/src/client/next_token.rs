//! The next page's token found before a page is decoded, so that its request can leave first.

/// The top-level `next_page_token` of a body, found by a quick scan that does not validate the
/// rest of the JSON, so the next request can leave before this page is decoded. `None` when
/// there is none, or when the scan is not sure (a key or token with escapes, odd structure):
/// the full decode decides then, and it always checks this answer (a wrong guess costs one
/// wasted request, never a wrong row).
pub fn quick_next_token(body: &[u8]) -> Option<String> {
    last_member_token(body).or_else(|| scanned_token(body))
}

/// The token when it is the object's last member, as the service writes it after the items:
/// read backwards from the closing brace, so a page's items are never scanned.
fn last_member_token(body: &[u8]) -> Option<String> {
    let trimmed = |b: &[u8]| -> usize { b.len() - b.iter().rev().take_while(|c| c.is_ascii_whitespace()).count() };
    let end = trimmed(body);
    if end == 0 || body[end - 1] != b'}' {
        return None;
    }
    let value = &body[..trimmed(&body[..end - 1])];
    let value = value.strip_suffix(b"\"")?;
    let start = value.iter().rposition(|c| *c == b'"')?;
    let token = &value[start + 1..];
    if token.contains(&b'\\') || token.is_empty() {
        return None;
    }
    let before = &value[..trimmed(&value[..start])];
    let before = before.strip_suffix(b":")?;
    let before = &before[..trimmed(before)];
    let before = before.strip_suffix(b"\"next_page_token\"")?;
    match before[..trimmed(before)].last() {
        Some(b',' | b'{') => std::str::from_utf8(token).ok().map(str::to_string),
        _ => None,
    }
}

/// The token wherever it stands among the top-level members, by skipping the others.
fn scanned_token(body: &[u8]) -> Option<String> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let (key_end, escaped) = string_end(body, i)?;
        let key = &body[i + 1..key_end - 1];
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(body, i + 1);
        if key == b"next_page_token" && !escaped {
            return match body.get(i)? {
                b'"' => {
                    let (end, escaped) = string_end(body, i)?;
                    if escaped {
                        return None;
                    }
                    std::str::from_utf8(&body[i + 1..end - 1]).ok().filter(|t| !t.is_empty()).map(str::to_string)
                }
                _ => None,
            };
        }
        i = value_end(body, i)?;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (a quote), and whether it has escapes.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// The index just past the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i).map(|(e, _)| e),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while !matches!(b.get(j), None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')) {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::pages::Page;

    #[test]
    fn the_quick_scan_finds_the_top_level_token_or_defers() {
        let q = |b: &str| quick_next_token(b.as_bytes());
        assert_eq!(q(r#"{"runs":[{"next_page_token":"inner","x":"}]\"{"}],"next_page_token":"pt9"}"#).as_deref(), Some("pt9"));
        assert_eq!(q(r#"{ "next_page_token" : "a" , "runs" : [] }"#).as_deref(), Some("a"));
        assert_eq!(q(r#"{"runs":[],"next_page_token":""}"#), None);
        assert_eq!(q(r#"{"runs":[1,2,{"a":[true,null]}]}"#), None);
        assert_eq!(q(r#"{"next_page_token":"a\"b"}"#), None, "escapes: the full decode decides");
        assert_eq!(q(r#"{"runs":[{"a":1}"#), None);
        assert_eq!(q("<html>"), None);
        // The last member is read backwards; anything unsure goes to the forward scan.
        assert_eq!(q("{\"runs\":[{\"a\":\"}\"}],\n \"next_page_token\" : \"pt2\" }\n").as_deref(), Some("pt2"));
        assert_eq!(q(r#"{"runs":[{"next_page_token":"inner"}]}"#), None, "an item's own field is not the page's");
        assert_eq!(q(r#"{"runs":[],"x":"\"next_page_token\":\"no\""}"#), None);
        // It agrees with the full decode on the fixture's pages.
        for body in [r#"{"runs":[{"a":"x"}],"next_page_token":"pt1"}"#, "{}"] {
            assert_eq!(q(body), Page::decode(body.as_bytes().to_vec(), Some("runs"), &[]).unwrap().next_page_token);
        }
    }
}
