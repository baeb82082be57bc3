//! What a file is, judged from its bytes, and what it may be called.
//!
//! The client's `Content-Type` is never trusted: a PNG header makes an
//! image, valid UTF-8 without control bytes makes text, and anything else
//! is `application/octet-stream` (refused by the default allow-list).

/// How many leading bytes the sniffer looks at.
pub const SNIFF_LEN: usize = 16 * 1024;

/// The longest stored file name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// The content type of a file whose first bytes are `prefix` (`complete`
/// when `prefix` is the whole file).
pub fn content_type(prefix: &[u8], complete: bool) -> String {
    if prefix.is_empty() {
        // A zero-byte file says nothing; empty text is the harmless reading.
        return "text/plain".into();
    }
    if let Some(kind) = infer::get(prefix) {
        return kind.mime_type().to_owned();
    }
    if looks_like_text(prefix, complete) {
        return "text/plain".into();
    }
    "application/octet-stream".into()
}

fn looks_like_text(prefix: &[u8], complete: bool) -> bool {
    let text = match std::str::from_utf8(prefix) {
        Ok(t) => t,
        // A multi-byte character cut by the sniff window is still text.
        Err(e) if !complete && e.error_len().is_none() && prefix.len() - e.valid_up_to() < 4 => {
            match std::str::from_utf8(&prefix[..e.valid_up_to()]) {
                Ok(t) => t,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    !text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// Whether `content_type` matches the allow-list (`*` suffix = prefix match).
pub fn allowed(content_type: &str, list: &[String]) -> bool {
    list.iter().any(|entry| match entry.strip_suffix('*') {
        Some(prefix) => content_type.starts_with(prefix),
        None => content_type == entry,
    })
}

/// Images a browser may show inline without risk (no SVG: it runs script).
pub fn is_safe_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp"
    )
}

/// A display name made safe: the last path component, no control or
/// path characters, at most [`MAX_NAME_BYTES`], never empty or a dot name.
pub fn sanitize_filename(raw: &str) -> String {
    // Browsers on Windows send full paths; keep only what follows the last separator.
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect();
    name = name.trim().trim_start_matches('.').trim().to_owned();
    if name.len() > MAX_NAME_BYTES {
        // Keep the extension, cut the stem on a character boundary.
        let ext = name
            .rfind('.')
            .map(|i| name[i..].to_owned())
            .filter(|e| e.len() <= 16)
            .unwrap_or_default();
        let mut cut = MAX_NAME_BYTES - ext.len();
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}{ext}", &name[..cut]);
    }
    if name.is_empty() { "file".into() } else { name }
}

/// A `Content-Disposition` value: `inline` or `attachment` with an ASCII
/// fallback name and the UTF-8 name (RFC 6266 / RFC 5987).
pub fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_from_bytes() {
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n0000", true), "image/png");
        assert_eq!(content_type(b"%PDF-1.7\n", true), "application/pdf");
        assert_eq!(content_type("héllo\nworld".as_bytes(), true), "text/plain");
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert_eq!(content_type(&elf, true), "application/x-executable");
        assert_eq!(
            content_type(b"\x00\x01\x02\x03", true),
            "application/octet-stream"
        );
        // A character cut at the end of the window is still text.
        assert_eq!(content_type(&"é".as_bytes()[..1], false), "text/plain");
        assert_eq!(
            content_type(&"é".as_bytes()[..1], true),
            "application/octet-stream"
        );
    }

    #[test]
    fn allow_list_prefixes() {
        let list = vec!["image/png".to_owned(), "application/vnd.*".to_owned()];
        assert!(allowed("image/png", &list));
        assert!(allowed("application/vnd.ms-excel", &list));
        assert!(!allowed("image/svg+xml", &list));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\a\\cat.png"), "cat.png");
        assert_eq!(sanitize_filename("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(sanitize_filename(".."), "file");
        assert_eq!(sanitize_filename(".bashrc"), "bashrc");
        assert_eq!(sanitize_filename(""), "file");
        let long = format!("{}.pdf", "é".repeat(300));
        let s = sanitize_filename(&long);
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".pdf"), "{s}");
    }

    #[test]
    fn disposition_escapes() {
        assert_eq!(
            content_disposition("attachment", "a\"b é.txt"),
            "attachment; filename=\"a_b _.txt\"; filename*=UTF-8''a%22b%20%C3%A9.txt"
        );
    }
}
