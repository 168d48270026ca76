//! LDIF (RFC 2849): reading content and change records (continuation lines,
//! base64 `::` values, comments, `changetype: add|delete|modify|modrdn`), and
//! writing values back safely (base64 where the RFC requires it, lines folded
//! at 76 columns).
//!
//! No Rust LDIF crate is both maintained and complete for change records, so
//! this is our own; it is small and covered by a round-trip property test.

use data_encoding::BASE64;

/// One attribute value: the bytes as read (base64 values decoded).
pub type Value = Vec<u8>;

/// One LDIF record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LdifRecord {
    /// A content record, or `changetype: add`: the entry's attributes in order.
    Entry {
        /// The entry's DN.
        dn: String,
        /// (attribute name as written, without options; value) pairs.
        attrs: Vec<(String, Value)>,
        /// True when the record said `changetype: add`.
        add: bool,
    },
    /// `changetype: delete`.
    Delete {
        /// The deleted entry's DN.
        dn: String,
    },
    /// `changetype: modify`.
    Modify {
        /// The modified entry's DN.
        dn: String,
        /// The modifications, in order.
        mods: Vec<Modification>,
    },
    /// `changetype: modrdn` / `moddn`.
    ModRdn {
        /// The renamed entry's DN.
        dn: String,
        /// Its new RDN.
        new_rdn: String,
        /// Its new parent, when moved.
        new_superior: Option<String>,
        /// Whether the old RDN value leaves the entry's attributes (`deleteoldrdn: 1`).
        delete_old_rdn: bool,
    },
}

impl LdifRecord {
    /// The record's DN.
    pub fn dn(&self) -> &str {
        match self {
            LdifRecord::Entry { dn, .. }
            | LdifRecord::Delete { dn }
            | LdifRecord::Modify { dn, .. }
            | LdifRecord::ModRdn { dn, .. } => dn,
        }
    }
}

/// The operation of one modification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModOp {
    /// `add:` values.
    Add,
    /// `delete:` these values, or all when none are given.
    Delete,
    /// `replace:` all values with these (none: remove the attribute).
    Replace,
}

/// One `add:` / `delete:` / `replace:` block of a modify record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modification {
    /// What to do.
    pub op: ModOp,
    /// The attribute.
    pub attr: String,
    /// The values.
    pub values: Vec<Value>,
}

/// Why an LDIF text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LDIF line {line}: {message}")]
pub struct LdifError {
    /// The (1-based) line where the problem starts.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> LdifError {
    LdifError {
        line,
        message: message.into(),
    }
}

/// Unfolds continuation lines and drops comments: (first line number, logical line),
/// with `None` marking a record separator (blank line).
fn logical_lines(text: &str) -> Vec<(usize, Option<String>)> {
    let mut out: Vec<(usize, Option<String>)> = Vec::new();
    let mut in_comment = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = line.strip_prefix(' ') {
            if in_comment {
                continue;
            }
            if let Some((_, Some(prev))) = out.last_mut() {
                prev.push_str(cont);
                continue;
            }
            // A continuation with nothing before it: keep it as its own line so the
            // parser reports it.
            out.push((i + 1, Some(line.to_string())));
            continue;
        }
        in_comment = false;
        if line.is_empty() {
            if !matches!(out.last(), Some((_, None)) | None) {
                out.push((i + 1, None));
            }
        } else if line.starts_with('#') {
            in_comment = true;
        } else {
            out.push((i + 1, Some(line.to_string())));
        }
    }
    out
}

/// Splits `attr: value` / `attr:: base64` / `attr:< url` into (attribute without
/// options, value bytes).
fn attr_value(line_no: usize, line: &str) -> Result<(String, Value), LdifError> {
    let colon = line.find(':').ok_or_else(|| {
        err(
            line_no,
            format!("expected \"attribute: value\", got {line:?}"),
        )
    })?;
    let name = &line[..colon];
    let base = name.split(';').next().unwrap_or(name).trim();
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(err(line_no, format!("{name:?} is not an attribute name")));
    }
    let rest = &line[colon + 1..];
    let value = if let Some(b64) = rest.strip_prefix(':') {
        let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        BASE64
            .decode(b64.as_bytes())
            .map_err(|e| err(line_no, format!("{base}: invalid base64 value: {e}")))?
    } else if rest.starts_with('<') {
        return Err(err(
            line_no,
            format!("{base}: values read from URLs (\":<\") are not supported"),
        ));
    } else {
        rest.trim_start_matches(' ').as_bytes().to_vec()
    };
    Ok((base.to_string(), value))
}

fn text(line_no: usize, attr: &str, v: Value) -> Result<String, LdifError> {
    String::from_utf8(v).map_err(|_| err(line_no, format!("{attr}: value is not UTF-8")))
}

/// Parses an LDIF document into records.
pub fn parse(input: &str) -> Result<Vec<LdifRecord>, LdifError> {
    let lines = logical_lines(input.strip_prefix('\u{feff}').unwrap_or(input));
    let mut records = Vec::new();
    let mut block: Vec<(usize, String)> = Vec::new();
    let mut first = true;
    for (no, line) in lines.into_iter().chain(std::iter::once((0, None))) {
        match line {
            Some(l) => block.push((no, l)),
            None => {
                if block.is_empty() {
                    continue;
                }
                let b = std::mem::take(&mut block);
                if first && b.len() == 1 && b[0].1.to_ascii_lowercase().starts_with("version:") {
                    first = false;
                    continue;
                }
                let mut b = b;
                if first && b[0].1.to_ascii_lowercase().starts_with("version:") {
                    let (no, l) = b.remove(0);
                    if l.split(':').nth(1).map(str::trim) != Some("1") {
                        return Err(err(no, format!("unsupported LDIF {l:?}")));
                    }
                }
                first = false;
                records.push(parse_record(b)?);
            }
        }
    }
    Ok(records)
}

fn parse_record(block: Vec<(usize, String)>) -> Result<LdifRecord, LdifError> {
    let mut it = block.into_iter().peekable();
    let Some((no, first)) = it.next() else {
        return Err(err(0, "empty record"));
    };
    let (name, v) = attr_value(no, &first)?;
    if !name.eq_ignore_ascii_case("dn") {
        return Err(err(
            no,
            format!("a record must start with \"dn:\", got {first:?}"),
        ));
    }
    let dn = text(no, "dn", v)?;
    // Controls may follow the DN; Warden has no use for them.
    while let Some((_, l)) = it.peek() {
        if l.to_ascii_lowercase().starts_with("control:") {
            it.next();
        } else {
            break;
        }
    }
    let mut changetype = None;
    if let Some((no, l)) = it.peek()
        && l.to_ascii_lowercase().starts_with("changetype:")
    {
        let (_, v) = attr_value(*no, l)?;
        changetype = Some((*no, text(*no, "changetype", v)?.trim().to_ascii_lowercase()));
        it.next();
    }
    match changetype {
        None => {
            let attrs = it
                .map(|(no, l)| attr_value(no, &l))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LdifRecord::Entry {
                dn,
                attrs,
                add: false,
            })
        }
        Some((_, ct)) if ct == "add" => {
            let attrs = it
                .map(|(no, l)| attr_value(no, &l))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(LdifRecord::Entry {
                dn,
                attrs,
                add: true,
            })
        }
        Some((no, ct)) if ct == "delete" => match it.next() {
            None => Ok(LdifRecord::Delete { dn }),
            Some((no2, l)) => Err(err(
                no2,
                format!("a delete record (line {no}) takes no attributes, got {l:?}"),
            )),
        },
        Some((_, ct)) if ct == "modify" => {
            let mut mods = Vec::new();
            while let Some((no, l)) = it.next() {
                let (op_name, attr) = attr_value(no, &l)?;
                let op = match op_name.to_ascii_lowercase().as_str() {
                    "add" => ModOp::Add,
                    "delete" => ModOp::Delete,
                    "replace" => ModOp::Replace,
                    _ => {
                        return Err(err(
                            no,
                            format!("expected add:, delete: or replace:, got {l:?}"),
                        ));
                    }
                };
                let attr = text(no, &op_name, attr)?.trim().to_string();
                let mut values = Vec::new();
                loop {
                    match it.next() {
                        Some((_, l)) if l.trim() == "-" => break,
                        Some((no, l)) => {
                            let (a, v) = attr_value(no, &l)?;
                            if !a.eq_ignore_ascii_case(&attr) {
                                return Err(err(
                                    no,
                                    format!("value for {a} inside the {op_name}: {attr} block"),
                                ));
                            }
                            values.push(v);
                        }
                        // The last "-" may be missing at the end of the record.
                        None => break,
                    }
                }
                mods.push(Modification { op, attr, values });
            }
            Ok(LdifRecord::Modify { dn, mods })
        }
        Some((_, ct)) if ct == "modrdn" || ct == "moddn" => {
            let mut new_rdn = None;
            let mut new_superior = None;
            let mut delete_old_rdn = true;
            for (no, l) in it {
                let (a, v) = attr_value(no, &l)?;
                match a.to_ascii_lowercase().as_str() {
                    "newrdn" => new_rdn = Some(text(no, &a, v)?),
                    "newsuperior" => new_superior = Some(text(no, &a, v)?),
                    "deleteoldrdn" => {
                        delete_old_rdn = match text(no, &a, v)?.trim() {
                            "0" => false,
                            "1" => true,
                            other => {
                                return Err(err(
                                    no,
                                    format!("deleteoldrdn must be 0 or 1, not {other:?}"),
                                ));
                            }
                        }
                    }
                    _ => return Err(err(no, format!("unexpected {a} in a modrdn record"))),
                }
            }
            let new_rdn =
                new_rdn.ok_or_else(|| err(0, format!("modrdn of {dn} without newrdn")))?;
            Ok(LdifRecord::ModRdn {
                dn,
                new_rdn,
                new_superior,
                delete_old_rdn,
            })
        }
        Some((no, ct)) => Err(err(no, format!("unknown changetype {ct:?}"))),
    }
}

/// Renders an AD `objectGUID` (16 bytes, the first three groups little-endian)
/// as the canonical lowercase GUID string `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn guid_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

/// The inverse of [`guid_string`]: the 16 bytes AD stores for a GUID string.
pub fn guid_bytes(guid: &str) -> Option<[u8; 16]> {
    let hex: String = guid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || guid.len() != 36 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, out) in raw.iter_mut().enumerate() {
        *out = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let mut b = [0u8; 16];
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    for (i, src) in order.iter().enumerate() {
        b[*src] = raw[i];
    }
    Some(b)
}

/// True when RFC 2849 lets `v` be written as-is (SAFE-STRING with a SAFE-INIT-CHAR
/// and no trailing space).
fn is_safe(v: &[u8]) -> bool {
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            v.iter()
                .all(|b| *b != 0 && *b != b'\n' && *b != b'\r' && *b < 0x80)
                && v.last() != Some(&b' ')
        }
    }
}

/// One `attr: value` line (or `attr:: base64`), folded at 76 columns.
pub fn line(attr: &str, value: &[u8]) -> String {
    let raw = if is_safe(value) {
        // is_safe implies ASCII.
        format!("{attr}: {}", String::from_utf8_lossy(value))
    } else {
        format!("{attr}:: {}", BASE64.encode(value))
    };
    fold(&raw)
}

fn fold(line: &str) -> String {
    const WIDTH: usize = 76;
    if line.len() <= WIDTH {
        return format!("{line}\n");
    }
    let mut out = String::new();
    let mut chunk = String::new();
    let mut limit = WIDTH;
    for c in line.chars() {
        if chunk.len() + c.len_utf8() > limit {
            out.push_str(&chunk);
            out.push_str("\n ");
            chunk.clear();
            limit = WIDTH - 1;
        }
        chunk.push(c);
    }
    out.push_str(&chunk);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_records_with_folding_base64_and_comments() {
        let text = "version: 1\r\n\
            # an export\r\n\
            #  with a folded\r\n  comment\r\n\
            dn: CN=Jane Doe,OU=Staff,\r\n DC=corp,DC=example\r\n\
            objectClass: user\r\n\
            objectGUID:: 7KPS8lXP0UKY3ZwMMmZ2DA==\r\n\
            description:: w6lsw6h2ZQ==\r\n\
            cn;lang-en: Jane Doe\r\n\
            \r\n\
            \r\n\
            dn: CN=Ops,DC=corp,DC=example\r\n\
            member: CN=Jane Doe,OU=Staff,DC=corp,DC=example\r\n";
        let recs = parse(text).unwrap();
        assert_eq!(recs.len(), 2);
        let LdifRecord::Entry { dn, attrs, add } = &recs[0] else {
            panic!("{recs:?}")
        };
        assert!(!add);
        assert_eq!(dn, "CN=Jane Doe,OU=Staff,DC=corp,DC=example");
        assert_eq!(attrs[1].0, "objectGUID");
        assert_eq!(
            guid_string(&attrs[1].1).unwrap(),
            "f2d2a3ec-cf55-42d1-98dd-9c0c3266760c"
        );
        assert_eq!(attrs[2].1, "élève".as_bytes());
        assert_eq!(attrs[3], ("cn".to_string(), b"Jane Doe".to_vec()));
        assert_eq!(recs[1].dn(), "CN=Ops,DC=corp,DC=example");
    }

    #[test]
    fn change_records() {
        let text = "dn: cn=a,dc=x\nchangetype: modify\nreplace: title\ntitle: Lead\n-\nadd: member\nmember: cn=b,dc=x\nmember: cn=c,dc=x\n-\ndelete: mobile\n\n\
                    dn: cn=d,dc=x\nchangetype: delete\n\n\
                    dn: cn=e,dc=x\nchangetype: add\ncn: e\n\n\
                    dn: cn=f,dc=x\nchangetype: modrdn\nnewrdn: cn=g\ndeleteoldrdn: 1\n";
        let recs = parse(text).unwrap();
        assert_eq!(recs.len(), 4);
        let LdifRecord::Modify { mods, .. } = &recs[0] else {
            panic!()
        };
        assert_eq!(mods.len(), 3);
        assert_eq!(mods[0].op, ModOp::Replace);
        assert_eq!(mods[1].values.len(), 2);
        assert_eq!(mods[2].op, ModOp::Delete);
        assert!(mods[2].values.is_empty());
        assert_eq!(
            recs[1],
            LdifRecord::Delete {
                dn: "cn=d,dc=x".into()
            }
        );
        assert!(matches!(&recs[2], LdifRecord::Entry { add: true, .. }));
        assert!(
            matches!(&recs[3], LdifRecord::ModRdn { new_rdn, delete_old_rdn: true, .. } if new_rdn == "cn=g")
        );
        let keep = parse("dn: cn=f,dc=x\nchangetype: modrdn\nnewrdn: cn=g\ndeleteoldrdn: 0\nnewsuperior: ou=y,dc=x\n").unwrap();
        assert!(matches!(
            &keep[0],
            LdifRecord::ModRdn { delete_old_rdn: false, new_superior: Some(p), .. } if p == "ou=y,dc=x"
        ));
        let bad = parse("dn: cn=f,dc=x\nchangetype: modrdn\nnewrdn: cn=g\ndeleteoldrdn: yes\n");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("deleteoldrdn must be 0 or 1")
        );
    }

    #[test]
    fn malformed_ldif_names_the_line() {
        let e = parse("dn: cn=a\nobjectGUID:: !!!\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("invalid base64"), "{e}");
        let e = parse("cn: a\n").unwrap_err();
        assert!(e.message.contains("must start with \"dn:\""), "{e}");
        let e = parse("dn: cn=a\nchangetype: frobnicate\n").unwrap_err();
        assert!(e.message.contains("unknown changetype"), "{e}");
        let e = parse("dn: cn=a\nno colon here\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("dn: cn=a\njpegPhoto:< file:///etc/passwd\n").unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
    }

    #[test]
    fn guid_round_trip() {
        let g = "f2d2a3ec-cf55-42d1-98dd-9c0c3266760c";
        assert_eq!(guid_string(&guid_bytes(g).unwrap()).unwrap(), g);
        assert!(guid_bytes("not-a-guid").is_none());
        assert!(guid_string(&[1, 2, 3]).is_none());
    }

    proptest! {
        #[test]
        fn written_values_read_back(value in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = format!("dn: cn=x\n{}", line("description", &value));
            let recs = parse(&text).unwrap();
            let LdifRecord::Entry { attrs, .. } = &recs[0] else { panic!() };
            prop_assert_eq!(&attrs[0].1, &value);
            prop_assert!(text.lines().all(|l| l.len() <= 76));
        }
    }
}
