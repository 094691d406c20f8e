//! Reading the file into the schema so that every structural problem is
//! reported, not only the first one serde meets: an unknown key (with the
//! key that was probably meant), a value of the wrong type, a missing
//! field. Each problem is recorded, the entry that caused it is taken out
//! of the document, and the rest is read again; what remains goes on to
//! [`super::validate`], so a duplicate peer name is reported beside a typo.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};

use super::schema::RawConfig;

/// A problem and where it is (a byte range of the file).
pub(super) type Problem = (Option<Range<usize>>, String);

/// Keys the schema reads only to refuse them with a better reason than
/// "unknown key" (an inline MD5 password): never offered as a suggestion.
const REFUSED_KEYS: &[&str] = &["md5-password"];

/// More problems than this and the file is not worth reading further.
const MAX_PROBLEMS: usize = 100;

/// The schema read from `text`, with the structural problems found; None
/// when nothing could be read (a syntax error, or the top level itself
/// lacks a required key).
pub(super) fn read(text: &str) -> (Option<RawConfig>, Vec<Problem>) {
    let (mut doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let problems = syntax
            .iter()
            .map(|e| (e.span(), e.message().trim().to_owned()))
            .collect();
        return (None, problems);
    }
    let mut problems: Vec<Problem> = Vec::new();
    // (table span, key) of entries taken out for a wrong value: their
    // table's "missing field" is not a second problem.
    let mut taken: Vec<(Range<usize>, String)> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let e = match RawConfig::deserialize(Deserializer::from(doc.clone())) {
            Ok(raw) => return (Some(raw), problems),
            Err(e) => e,
        };
        let message = e.message().trim().to_owned();
        let Some(span) = e.span() else {
            problems.push((None, message));
            return (None, problems);
        };
        if let Some(field) = missing_field(&message) {
            if !taken.iter().any(|(t, k)| *t == span && k == field) {
                problems.push((Some(span.clone()), message));
            }
            // Without its required field the table cannot be read: take it
            // out (the top level cannot be).
            if !remove_table(&mut doc, &span) {
                return (None, problems);
            }
            continue;
        }
        let (text, meant) = suggest(&message);
        problems.push((Some(span.clone()), text));
        // A near miss is read as the key it was meant to be, so the rest
        // of its table is checked as if it were spelt right; anything else
        // is taken out.
        match fix_entry(&mut doc, &span, meant.as_deref()) {
            Some(removed) => taken.push(removed),
            None => return (None, problems),
        }
    }
    (None, problems)
}

/// The field a "missing field `x`" error names.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// An unknown key's message with the valid keys as serde lists them,
/// turned into "unknown key `x`; did you mean `y`?" for a near miss (and
/// `y`), or the list of valid keys (without those only read to be
/// refused). Other messages stay as they are.
fn suggest(message: &str) -> (String, Option<String>) {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return (message.to_owned(), None);
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return (message.to_owned(), None);
    };
    let valid: Vec<&str> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| !REFUSED_KEYS.contains(k))
        .collect();
    let near = valid
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1) || k.starts_with(key) || key.starts_with(*k))
        .min_by_key(|(d, _)| *d);
    match near {
        Some((_, k)) => (
            format!("unknown key `{key}`; did you mean `{k}`?"),
            Some(k.to_owned()),
        ),
        None if valid.is_empty() => (format!("unknown key `{key}`"), None),
        None => (
            format!("unknown key `{key}`; valid keys here: {}", valid.join(", ")),
            None,
        ),
    }
}

/// Takes out the entry whose key or value is at `span`, or renames its
/// key to `meant` when its table lacks that key; returns its table's span
/// and the key it had.
fn fix_entry(
    doc: &mut Spanned<DeTable<'_>>,
    span: &Range<usize>,
    meant: Option<&str>,
) -> Option<(Range<usize>, String)> {
    let table_span = doc.span();
    fix_in_table(doc.get_mut(), table_span, span, meant)
}

fn fix_in_table(
    table: &mut DeTable<'_>,
    table_span: Range<usize>,
    span: &Range<usize>,
    meant: Option<&str>,
) -> Option<(Range<usize>, String)> {
    let hit = table
        .iter()
        .find(|(k, v)| k.span() == *span || v.span() == *span)
        .map(|(k, _)| (k.get_ref().to_string(), k.span()));
    if let Some((key, key_span)) = hit {
        let value = table.remove(key.as_str())?;
        if let Some(m) = meant.filter(|m| !table.contains_key(*m)) {
            table.insert(Spanned::new(key_span, m.to_owned().into()), value);
        }
        return Some((table_span, key));
    }
    // Arrays of tables do not always span their elements: search all.
    table.iter_mut().find_map(|(_, v)| fix_in_value(v, span, meant))
}

fn fix_in_value(
    value: &mut Spanned<DeValue<'_>>,
    span: &Range<usize>,
    meant: Option<&str>,
) -> Option<(Range<usize>, String)> {
    let value_span = value.span();
    match value.get_mut() {
        DeValue::Table(t) => fix_in_table(t, value_span, span, meant),
        DeValue::Array(items) => items.iter_mut().find_map(|v| fix_in_value(v, span, meant)),
        _ => None,
    }
}

/// Takes out the table at `span` (an element of an array of tables, or a
/// table under a key); false if it is the document itself or not found.
fn remove_table(doc: &mut Spanned<DeTable<'_>>, span: &Range<usize>) -> bool {
    if doc.span() == *span {
        return false;
    }
    remove_table_in(doc.get_mut(), span)
}

fn remove_from_array(items: &mut toml::de::DeArray<'_>, span: &Range<usize>) -> bool {
    items.iter_mut().any(|i| match i.get_mut() {
        DeValue::Table(t) => remove_table_in(t, span),
        _ => false,
    })
}

fn remove_table_in(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    // An array of tables spans its first element's header: look for the
    // element before taking the whole array for it.
    for (_, v) in table.iter_mut() {
        if let DeValue::Array(items) = v.get_mut()
            && items.iter().any(|i| i.span() == *span)
        {
            let kept = items.iter().filter(|i| i.span() != *span).cloned().collect();
            *items = kept;
            return true;
        }
    }
    let hit = table
        .iter()
        .find(|(_, v)| v.span() == *span && v.get_ref().is_table())
        .map(|(k, _)| k.get_ref().to_string());
    if let Some(key) = hit {
        table.remove(key.as_str());
        return true;
    }
    for (_, v) in table.iter_mut() {
        let found = match v.get_mut() {
            DeValue::Table(t) => remove_table_in(t, span),
            DeValue::Array(items) => remove_from_array(items, span),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        let m = "unknown field `remote-as`, expected one of `name`, `address`, `remote-asn`, `md5-password`";
        assert_eq!(
            suggest(m),
            (
                "unknown key `remote-as`; did you mean `remote-asn`?".to_owned(),
                Some("remote-asn".to_owned())
            )
        );
        let m = "unknown field `actoin`, expected one of `name`, `action`, `match`";
        assert_eq!(suggest(m).0, "unknown key `actoin`; did you mean `action`?");
        // A key read only to be refused is never offered.
        let m = "unknown field `colour`, expected one of `name`, `md5-password`, `address`";
        assert_eq!(
            suggest(m),
            (
                "unknown key `colour`; valid keys here: name, address".to_owned(),
                None
            )
        );
        let m = "unknown field `md5-pasword`, expected one of `md5-password`, `md5-password-env`";
        assert_ne!(suggest(m).1.as_deref(), Some("md5-password"));
        let other = "invalid type: string \"x\", expected u16";
        assert_eq!(suggest(other), (other.to_owned(), None));
    }
}
