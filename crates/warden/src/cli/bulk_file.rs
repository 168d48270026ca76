//! The files `--from FILE` takes for adding many things at once (`device add`,
//! `tenant add`): JSON arrays or CSV with a key column, read the same way for each, with
//! every problem a usage error naming the file and the line.

use std::path::Path;

use crate::cli::UsageError;

fn usage(msg: String) -> anyhow::Error {
    UsageError(msg).into()
}

/// A bulk file's text and whether it is JSON (a `.json` name, or text starting with `[`).
pub(crate) fn read(path: &Path) -> anyhow::Result<(String, bool)> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => usage(format!("{}: no such file", path.display())),
        _ => usage(format!("cannot read {}: {e}", path.display())),
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    Ok((text, is_json))
}

/// A JSON array of `T`, or a usage error saying what the file should hold (`shape`).
pub(crate) fn json_list<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    shape: &str,
) -> anyhow::Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| {
        usage(format!(
            "{}: not a JSON array of {shape}: {e}",
            path.display()
        ))
    })
}

/// A CSV bulk file: its header, the index of its `key` column, and its records with
/// their line numbers (the header is line 1). Cells are trimmed.
pub(crate) struct Csv {
    pub headers: csv::StringRecord,
    pub key: usize,
    pub records: Vec<(usize, csv::StringRecord)>,
}

/// Reads `text` as a CSV that must have a `key` column.
pub(crate) fn csv(path: &Path, text: &str, key: &str) -> anyhow::Result<Csv> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| usage(format!("{}: bad CSV header: {e}", path.display())))?
        .clone();
    let key_col = headers.iter().position(|h| h == key).ok_or_else(|| {
        usage(format!(
            "{}: the CSV has no `{key}` column (header: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        ))
    })?;
    let mut records = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| usage(format!("{}: line {line}: {e}", path.display())))?;
        records.push((line, rec));
    }
    Ok(Csv {
        headers,
        key: key_col,
        records,
    })
}
