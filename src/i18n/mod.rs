//! The app's text in English and in Chinese: one catalogue per language, keyed by the same
//! identifiers, and the language the UI thread speaks.
//!
//! The catalogues are plain text beside this module, one file per area and language
//! (`en/ui.txt`, `zh/ui.txt`, …), so a translator edits two files side by side:
//!
//! ```text
//! # a comment
//! controls.play = Play
//! note.planar.body = f(z) = z + û·tanh(wᵀz + b) bends the plane …
//!     a continuation line (indented) is joined to the line above
//! status.step = Step {step}
//! ```
//!
//! A continuation is joined with one space, or with none where either side is a CJK character
//! (Chinese sets no spaces between words). `\n` in a value is a line break; a value in double
//! quotes keeps the spaces at its ends. `{name}` is filled
//! by [`tr!`]'s named arguments. Text is looked up in the current language, then in English;
//! tests/app/i18n.rs checks that every key exists in both, with the same placeholders, and that
//! no user-facing literal in the app's panels escapes the catalogue.
//!
//! Names of the registries' entries (flow families, targets, objectives, views…) are keyed by
//! the entry's stable name (`family.realnvp`); the registries list the entries, the catalogues
//! say them. The command line stays in English: its thread never changes language.
//!
//! Why not Fluent or rust-i18n: both check keys only at run time as well, and Fluent's parser,
//! plural rules and locale negotiation would cost tens of KB of a web app with ~55 KB of
//! headroom; the app needs lookups and named substitutions, no plurals (Chinese has none, and
//! the English text is written around counts).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A language the app speaks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese (中文).
    Zh,
}

impl Lang {
    /// Every language, in the order of the switch.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The code in URLs and the test hook (`en`, `zh`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The language's name in itself, for the switch.
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "中文",
        }
    }

    /// Reads a code (`en`, `zh`, any case).
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|lang| lang.code().eq_ignore_ascii_case(code.trim()))
    }

    /// The language for a BCP 47 tag or POSIX locale (`zh-CN`, `zh_TW.UTF-8`, `en-US`):
    /// Chinese for any `zh`, English otherwise.
    pub fn from_locale(tag: &str) -> Lang {
        let primary = tag
            .split(['-', '_', '.'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if primary == "zh" { Lang::Zh } else { Lang::En }
    }

    fn index(self) -> usize {
        self as usize
    }
}

thread_local! {
    // Why per thread: the UI runs on one thread, and each test's harness may speak its own
    // language without racing the others; the CLI and the trainers never change it.
    static CURRENT: Cell<Lang> = const { Cell::new(Lang::En) };
}

/// The language this thread speaks.
pub fn current() -> Lang {
    CURRENT.with(Cell::get)
}

/// Makes this thread speak `lang`.
pub fn set(lang: Lang) {
    CURRENT.with(|current| current.set(lang));
}

/// The area files of each language, in one list so both languages read the same areas.
macro_rules! areas {
    ($($area:literal),* $(,)?) => {
        /// The area files' names.
        pub const AREAS: &[&str] = &[$($area),*];
        const FILES: [&[&str]; 2] = [
            &[$(include_str!(concat!("en/", $area, ".txt"))),*],
            &[$(include_str!(concat!("zh/", $area, ".txt"))),*],
        ];
    };
}
areas!("ui", "views", "notes", "lab", "targets", "names");

/// One language's text by key.
pub type Catalogue = HashMap<&'static str, String>;

/// The catalogue of `lang`, parsed once.
pub fn catalogue(lang: Lang) -> &'static Catalogue {
    static PARSED: OnceLock<[Catalogue; 2]> = OnceLock::new();
    &PARSED.get_or_init(|| FILES.map(|files| files.iter().flat_map(|f| parse(f)).collect()))
        [lang.index()]
}

/// Parses one catalogue file into (key, text) pairs; a malformed line is skipped (the tests
/// read the files strictly with [`check_file`]).
pub fn parse(file: &'static str) -> Vec<(&'static str, String)> {
    let mut entries: Vec<(&'static str, String)> = Vec::new();
    for line in file.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, text)) = entries.last_mut() {
                join_continuation(text, line.trim());
            }
            continue;
        }
        if let Some((key, text)) = line.split_once(" = ") {
            entries.push((key.trim(), unescape(unquote(text.trim()))));
        }
    }
    entries
}

/// Problems of one catalogue file: lines that are neither comments, entries nor
/// continuations, and keys given twice.
pub fn check_file(file: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (number, line) in file.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with([' ', '\t']) {
            continue;
        }
        match line.split_once(" = ") {
            Some((key, _)) if is_key(key) => {
                if !seen.insert(key) {
                    problems.push(format!("line {}: `{key}` given twice", number + 1));
                }
            }
            _ => problems.push(format!("line {}: not `key = text`", number + 1)),
        }
    }
    problems
}

/// Whether `text` is a catalogue key: dot-separated lowercase identifiers.
pub fn is_key(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

fn join_continuation(text: &mut String, more: &str) {
    let more = unescape(more);
    let wide = |c: Option<char>| c.is_some_and(is_wide);
    if !(wide(text.chars().last()) || wide(more.chars().next()) || text.ends_with('\n')) {
        text.push(' ');
    }
    text.push_str(&more);
}

/// CJK ideographs and full-width punctuation: no space is set beside them.
pub fn is_wide(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF00}'..='\u{FFEF}')
}

/// A value in double quotes keeps its spaces at either end (`list.separator = "; "`).
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn unescape(text: &str) -> String {
    text.replace("\\n", "\n")
}

/// The text of `key` in the current language (English where that language lacks it, the
/// key itself where both do: the tests make sure neither happens).
pub fn text(key: &str) -> &'static str {
    text_in(current(), key)
}

/// The text of `key` in `lang`.
pub fn text_in(lang: Lang, key: &str) -> &'static str {
    catalogue(lang)
        .get(key)
        .or_else(|| catalogue(Lang::En).get(key))
        .map_or_else(|| leak_key(key), String::as_str)
}

/// A missing key, shown as itself (owned once, so lookups stay `&'static`).
fn leak_key(key: &str) -> &'static str {
    static MISSING: OnceLock<std::sync::Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let mut missing = MISSING
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    missing
        .entry(key.to_owned())
        .or_insert_with(|| Box::leak(key.to_owned().into_boxed_str()))
}

/// Fills `{name}` in `template` with each argument's text.
pub fn fill(template: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in args {
        let placeholder = format!("{{{name}}}");
        if out.contains(&placeholder) {
            out = out.replace(&placeholder, &value.to_string());
        }
    }
    out
}

/// The `{name}` placeholders of a catalogue text, sorted.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = text
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| is_key(name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The text of a key in the current language: `tr!("controls.play")` is a `&'static str`;
/// `tr!("status.step", step = n)` fills `{step}` and is a `String`.
#[macro_export]
macro_rules! tr {
    ($key:literal) => {
        $crate::i18n::text($key)
    };
    ($key:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::fill(
            $crate::i18n::text($key),
            &[$((stringify!($name), &$value as &dyn ::std::fmt::Display)),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_join_with_a_space_except_beside_chinese() {
        let parsed =
            parse("a = one\n  two\nb = 归一化\n  流。\n  Then x\n# c = no\nc = x\\ny\nd = \"; \"");
        assert_eq!(parsed[0], ("a", "one two".to_owned()));
        assert_eq!(parsed[1], ("b", "归一化流。Then x".to_owned()));
        assert_eq!(parsed[2], ("c", "x\ny".to_owned()));
        assert_eq!(parsed[3], ("d", "; ".to_owned()));
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn fill_and_placeholders() {
        assert_eq!(
            fill("Step {step} of {n}", &[("step", &3), ("n", &"9")]),
            "Step 3 of 9"
        );
        assert_eq!(placeholders("{b} x {a} {b} {:.2}"), vec!["a", "b"]);
    }

    #[test]
    fn locales() {
        assert_eq!(Lang::from_locale("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_locale("zh_TW.UTF-8"), Lang::Zh);
        assert_eq!(Lang::from_locale("en-US"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
        assert_eq!(Lang::from_code(" ZH "), Some(Lang::Zh));
        assert_eq!(Lang::from_code("fr"), None);
    }

    #[test]
    fn the_language_is_per_thread() {
        set(Lang::Zh);
        assert_eq!(std::thread::spawn(current).join().ok(), Some(Lang::En));
        assert_eq!(current(), Lang::Zh);
        set(Lang::En);
    }
}
