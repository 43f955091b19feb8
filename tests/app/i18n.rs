//! The app in both languages: the catalogues agree key for key, every key the code asks for
//! exists, no user-facing literal escapes the catalogue, every character has a glyph, and each
//! panel renders in Chinese.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use flowlab::i18n::{self, Lang};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn area_file(lang: Lang, area: &str) -> String {
    let path = root().join(format!("src/i18n/{}/{area}.txt", lang.code()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One language's entries, area by area, with the file they came from.
fn entries(lang: Lang) -> BTreeMap<String, (String, &'static str)> {
    let mut all = BTreeMap::new();
    for &area in i18n::AREAS {
        let file: &'static str = Box::leak(area_file(lang, area).into_boxed_str());
        for (key, text) in i18n::parse(file) {
            all.insert(key.to_owned(), (text, area));
        }
    }
    all
}

/// Every `.rs` file under `dir`, with its path.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push((path, text));
        }
    }
    out
}

#[test]
fn catalogue_files_are_well_formed() {
    let mut problems = Vec::new();
    for lang in Lang::ALL {
        for &area in i18n::AREAS {
            for problem in i18n::check_file(&area_file(lang, area)) {
                problems.push(format!("{}/{area}.txt {problem}", lang.code()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The same keys in both languages, in the same area, with the same `{placeholders}`; the
/// registries' names (English in the registries) all have their Chinese.
#[test]
fn both_languages_have_every_key_with_the_same_placeholders() {
    let english = entries(Lang::En);
    let chinese = entries(Lang::Zh);
    let mut problems = Vec::new();
    for (key, (text, area)) in &english {
        match chinese.get(key) {
            None => problems.push(format!("zh/{area}.txt lacks `{key}`")),
            Some((zh, zh_area)) => {
                if zh_area != area {
                    problems.push(format!("`{key}` is in en/{area}.txt but zh/{zh_area}.txt"));
                }
                if i18n::placeholders(text) != i18n::placeholders(zh) {
                    problems.push(format!(
                        "`{key}`: placeholders {:?} in English, {:?} in Chinese",
                        i18n::placeholders(text),
                        i18n::placeholders(zh)
                    ));
                }
                if zh.trim().is_empty() {
                    problems.push(format!("`{key}` is empty in Chinese"));
                }
            }
        }
    }
    let names: BTreeMap<String, &str> = flowlab::lab::names::all_keys().into_iter().collect();
    for (key, (_, area)) in &chinese {
        if !english.contains_key(key) && !names.contains_key(key) {
            problems.push(format!("zh/{area}.txt has `{key}`, which English lacks"));
        }
    }
    for (key, english_text) in &names {
        match chinese.get(key) {
            None => problems.push(format!("zh/names.txt lacks `{key}` ({english_text})")),
            Some((zh, area)) => {
                if *area != "names" {
                    problems.push(format!("`{key}` belongs in zh/names.txt, not {area}.txt"));
                }
                if i18n::placeholders(english_text) != i18n::placeholders(zh) {
                    problems.push(format!("`{key}`: placeholders differ"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );
}

/// Every `tr!("key")` in the source names an English entry (a typo would show the key).
#[test]
fn every_key_the_code_asks_for_exists() {
    let english = entries(Lang::En);
    let mut asked = 0;
    let mut missing = Vec::new();
    for (path, text) in sources(&root().join("src")) {
        let pieces: Vec<&str> = text.split("tr!(\"").collect();
        for (before, piece) in pieces.iter().zip(&pieces[1..]) {
            // Why: `include_str!("…")` also ends in `tr!("`.
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let Some((key, _)) = piece.split_once('"') else {
                continue;
            };
            asked += 1;
            if !english.contains_key(key) {
                missing.push(format!("{}: `{key}`", path.display()));
            }
        }
    }
    assert!(asked > 150, "only {asked} tr! calls found");
    assert!(missing.is_empty(), "keys without text: {missing:#?}");
}

/// A string literal that reads as prose: two words, or a capitalised word, outside the
/// catalogue. Identifiers (ids, salts, keys, codes) are snake_case, kebab-case or dotted.
fn reads_as_prose(literal: &str) -> bool {
    let words: Vec<&str> = literal
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 2)
        .collect();
    let capitalised = words.first().is_some_and(|w| {
        w.starts_with(char::is_uppercase) && w.chars().skip(1).all(char::is_lowercase)
    });
    let spaced = literal.contains(' ') && words.len() >= 2;
    let cjk = literal.chars().any(i18n::is_wide);
    spaced || capitalised || cjk
}

/// The string literals of one line of Rust (no raw strings in the panels).
fn literals(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    out
}

/// No user-facing text in the panels (src/ui/) but through the catalogue. A literal that is
/// not shown, or not translated on purpose (an egui id, a log line), says why with
/// `// i18n: <why>` on its line, or sits in a `#[cfg(test)]` module.
#[test]
fn no_user_facing_literal_escapes_the_catalogue() {
    // Why allowed: widget ids and plot names are identifiers egui hashes, never drawn.
    const ID_CALLS: [&str; 7] = [
        "Id::new(",
        "id_salt(",
        "Grid::new(",
        "Plot::new(",
        ".get(ui.ctx(), \"",
        "SidePanel::",
        "TopBottomPanel::",
    ];
    let mut escaped = Vec::new();
    for (path, text) in sources(&root().join("src/ui")) {
        let mut in_tests = false;
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                in_tests = true;
            }
            if in_tests
                || code.starts_with("//")
                || code.starts_with("#[")
                || line.contains("// i18n:")
                || ID_CALLS.iter().any(|call| line.contains(call))
            {
                continue;
            }
            for literal in literals(line) {
                if reads_as_prose(literal) {
                    escaped.push(format!(
                        "{}:{}: \"{literal}\"",
                        path.strip_prefix(root()).unwrap_or(&path).display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        escaped.is_empty(),
        "{} literals outside the catalogue: {escaped:#?}",
        escaped.len()
    );
}

/// Every character of both catalogues (and of the source) has a glyph once the Chinese
/// subset is installed: no missing-glyph boxes on screen, in either language.
#[test]
fn every_character_of_both_catalogues_has_a_glyph() {
    let mut text = String::new();
    for lang in Lang::ALL {
        for &area in i18n::AREAS {
            text.push_str(&area_file(lang, area));
        }
    }
    for (_, source) in sources(&root().join("src")) {
        text.push_str(&source);
    }
    let wanted: BTreeSet<char> = text
        .chars()
        .filter(|c| !c.is_ascii() && !c.is_whitespace())
        .collect();
    assert!(
        wanted.iter().filter(|&&c| i18n::is_wide(c)).count() > 300,
        "the Chinese catalogue looks empty"
    );
    let missing = missing_glyphs(&wanted, |ctx| {
        flowlab::ui::fonts::install_cjk(ctx, cjk_font());
    });
    assert!(
        missing.is_empty(),
        "no glyph for: {missing} (run scripts/font-subset)"
    );
}

/// The characters of `wanted` that the app's fonts (installed, then `setup`) cannot draw.
pub fn missing_glyphs(wanted: &BTreeSet<char>, setup: impl FnOnce(&egui::Context)) -> String {
    let ctx = egui::Context::default();
    flowlab::ui::fonts::install(&ctx);
    setup(&ctx);
    let _ = ctx.run_ui(egui::RawInput::default(), |_| {});
    let font = egui::FontId::proportional(14.0);
    ctx.fonts_mut(|fonts| {
        wanted
            .iter()
            .filter(|&&c| !fonts.has_glyph(&font, c))
            .collect()
    })
}

/// The Chinese glyphs the app loads.
pub fn cjk_font() -> &'static [u8] {
    let bytes = std::fs::read(root().join("assets/fonts/cjk.ttf"))
        .unwrap_or_else(|e| panic!("assets/fonts/cjk.ttf: {e}"));
    Box::leak(bytes.into_boxed_slice())
}

/// For translators: every registry name with its English, as `key = text` lines
/// (`cargo test --test app dump_names -- --ignored --nocapture`).
#[test]
#[ignore]
fn dump_names() {
    for (key, english) in flowlab::lab::names::all_keys() {
        println!("{key} = {english}");
    }
}
