//! Printing results: aligned text for people, one JSON document for machines.

use gatehouse_migration::cli::Format;
use serde_json::Value;

/// Prints `json` (with `--format json`) or the `human` text.
pub fn emit(format: Format, json: &Value, human: &str) {
    match format {
        Format::Json => println!("{json:#}"),
        Format::Human => {
            if !human.is_empty() {
                println!("{}", human.trim_end());
            }
        }
    }
}

/// `rows` as columns aligned under `headers`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// `label: value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let text = table(
            &["id", "name"],
            &[
                vec!["1".into(), "ada".into()],
                vec!["22".into(), "b".into()],
            ],
        );
        assert_eq!(text, "id  name\n1   ada\n22  b\n");
    }

    #[test]
    fn fields_align_values() {
        let text = fields(&[("id", "1".into()), ("email", "a@b.c".into())]);
        assert_eq!(text, "id:    1\nemail: a@b.c\n");
    }
}
