//! Cheap checks on a JSON text before it is parsed: how many entries a
//! batch has, found by one pass over the bytes that allocates nothing.
//!
//! A batch over the limit is refused on this count alone, so a 1 MiB array
//! of a million tiny entries costs one scan, not a million `Value`s. The
//! scan trusts nothing: on malformed text it still ends, in one pass, and
//! its answer matters only when the text would also parse (the parse then
//! reports any syntax error a refused text would have had).

/// The number of top-level entries of `text` if it is a JSON array
/// (whitespace around it allowed); `None` if it does not start with `[`.
///
/// Counts the commas outside strings at nesting depth 1, plus one for a
/// non-empty array. Stops counting at `stop` (returns `stop + 1` then), so
/// the caller's limit also bounds the scan of a huge text.
pub fn batch_len(text: &[u8], stop: usize) -> Option<usize> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = text.get(start..)?;
    if body.first() != Some(&b'[') {
        return None;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut entries = 0usize;
    let mut seen_value = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                seen_value |= depth == 1;
            }
            b'[' | b'{' => {
                seen_value |= depth == 1;
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => {
                entries += 1;
                if entries > stop {
                    return Some(stop + 1);
                }
            }
            b if depth == 1 && !b.is_ascii_whitespace() => seen_value = true,
            _ => {}
        }
    }
    Some(if seen_value { entries + 1 } else { entries }.min(stop + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_top_level_entries_only() {
        assert_eq!(batch_len(b" [ ] ", 10), Some(0));
        assert_eq!(batch_len(b"[1]", 10), Some(1));
        assert_eq!(batch_len(b"[1, [2, 3], {\"a\": [4, 5]}]", 10), Some(3));
        assert_eq!(batch_len(br#"["a,b", "c\",d", {"e,": ","}]"#, 10), Some(3));
        assert_eq!(batch_len(b"\n[{}, {}]", 10), Some(2));
    }

    #[test]
    fn not_an_array_is_none() {
        assert_eq!(batch_len(b"{\"a\": [1, 2]}", 10), None);
        assert_eq!(batch_len(b"   ", 10), None);
        assert_eq!(batch_len(b"", 10), None);
    }

    #[test]
    fn stops_past_the_limit() {
        let big = format!("[{}1]", "1,".repeat(100_000));
        assert_eq!(batch_len(big.as_bytes(), 1024), Some(1025));
        assert_eq!(batch_len(big.as_bytes(), 200_000), Some(100_001));
    }

    #[test]
    fn malformed_text_still_ends() {
        for t in [&b"[[[[["[..], b"[\"abc", b"[,,,", b"]]]", b"[\\\"", b"[}"] {
            let _ = batch_len(t, 10);
        }
    }
}
