//! Names inside a bundle: source and category keys, attachment file names, links and HTML text.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::ExportError;

/// The longest attachment name kept, in bytes (the extension is kept when shortening).
const MAX_FILE_NAME_BYTES: usize = 120;

/// Checks a source name or category key: 1–64 ASCII letters, digits, `_` or `-`, starting with a
/// letter or digit. Such a key is a safe path segment on every file system.
pub(crate) fn check_key(what: &'static str, key: &str) -> Result<(), ExportError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && key.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ExportError::InvalidKey {
            what,
            key: key.to_owned(),
        })
    }
}

/// Turns an attachment's name as given into a safe single path segment:
/// - only the part after the last `/` or `\` is kept (no directories, no absolute paths, no
///   drive letters);
/// - control characters (C0, DEL, C1, and the Unicode bidirectional overrides) are dropped;
/// - the characters Windows forbids in names (`<>:"|?*`) become `_`;
/// - leading dots and spaces, and trailing dots and spaces, are trimmed (no hidden files, no `.`
///   or `..`, nothing Windows would silently rename);
/// - Windows device names (`CON`, `NUL`, `COM1`, …) get a `_` in front;
/// - it is cut to 120 bytes, keeping the extension;
/// - what is left empty becomes `file`.
pub(crate) fn sanitize_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    name = name
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' '])
        .to_owned();
    if name.is_empty() {
        name = "file".to_owned();
    }
    let stem_upper = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(stem_upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem_upper.starts_with("COM") || stem_upper.starts_with("LPT"))
            && stem_upper.len() == 4
            && stem_upper.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    shorten(&name, MAX_FILE_NAME_BYTES)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Splits `name` into stem and extension (`"a.tar.gz"` → `("a.tar", ".gz")`); a name whose only
/// dot is its first character has no extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => name.split_at(i),
        _ => (name, ""),
    }
}

fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let mut cut = max.saturating_sub(ext.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", stem[..cut].trim_end_matches(['.', ' ']), ext)
}

/// Makes `name` unique among `taken` (compared case-insensitively, as on Windows and macOS) by
/// adding ` (2)`, ` (3)`, … before the extension, and records it as taken.
pub(crate) fn unique_name(name: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.to_lowercase()) {
        return name;
    }
    let (stem, ext) = split_extension(&name);
    let mut n = 2u32;
    loop {
        let candidate = format!("{stem} ({n}){ext}");
        if taken.insert(candidate.to_lowercase()) {
            return candidate;
        }
        n += 1;
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a relative path for an `href`: every byte but the unreserved ASCII characters
/// and `/` (e.g. `files/crm/合同 #1.pdf` → `files/crm/%E5%90%88%E5%90%8C%20%231.pdf`).
pub(crate) fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_path_segments() {
        for good in ["crm", "partner_portal", "call-recordings", "A1"] {
            check_key("source name", good).unwrap();
        }
        for bad in [
            "",
            "..",
            ".hidden",
            "_x",
            "a/b",
            "a\\b",
            "a b",
            "数据",
            &"x".repeat(65),
        ] {
            assert!(check_key("category key", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attachment_names_lose_paths_control_characters_and_reserved_names() {
        let cases = [
            ("../../etc/passwd", "passwd"),
            ("/etc/shadow", "shadow"),
            ("C:\\Windows\\system32\\cmd.exe", "cmd.exe"),
            ("..\\..\\boot.ini", "boot.ini"),
            ("..", "file"),
            (".", "file"),
            ("", "file"),
            ("dir/", "file"),
            (".bashrc", "bashrc"),
            ("bad\u{0}name\r\n.pdf", "badname.pdf"),
            ("evil\u{202E}fdp.exe", "evilfdp.exe"),
            ("a<b>c:d\"e|f?g*.txt", "a_b_c_d_e_f_g_.txt"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("com1.log", "_com1.log"),
            ("console.txt", "console.txt"),
            ("trailing. . ", "trailing"),
            ("通话录音 2026-03-01.mp3", "通话录音 2026-03-01.mp3"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_file_name(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.pdf", "证".repeat(100));
        let short = sanitize_file_name(&long);
        assert!(short.len() <= MAX_FILE_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with(".pdf"));
        assert!(short.starts_with('证'));
    }

    #[test]
    fn collisions_get_a_number_case_insensitively() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("a.pdf".into(), &mut taken), "a.pdf");
        assert_eq!(unique_name("a.pdf".into(), &mut taken), "a (2).pdf");
        assert_eq!(unique_name("A.PDF".into(), &mut taken), "A (3).PDF");
        assert_eq!(unique_name("a (2).pdf".into(), &mut taken), "a (2) (2).pdf");
        assert_eq!(unique_name("file".into(), &mut taken), "file");
        assert_eq!(unique_name("file".into(), &mut taken), "file (2)");
    }

    #[test]
    fn html_and_links_are_escaped() {
        assert_eq!(
            html_escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(
            href("files/crm/合同 #1.pdf"),
            "files/crm/%E5%90%88%E5%90%8C%20%231.pdf"
        );
        assert_eq!(href("a\"b<c>?&"), "a%22b%3Cc%3E%3F%26");
    }
}
