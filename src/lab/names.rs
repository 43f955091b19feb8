//! What the app calls the registries' entries, in the current language: flow families,
//! targets and presets, objectives, views, and exports.
//!
//! The registries list the entries and hold their English text (the CLI, the exported PyTorch
//! file and the README print it); the Chinese catalogue (`src/i18n/zh/names.txt`) says each
//! under the entry's stable name: `family.realnvp`, `family.realnvp.description`,
//! `target.moons`, `preset.ring`, `objective.mle`, `view.samples`, `export.pytorch`.
//! tests/app/i18n.rs checks that every entry has its Chinese text.

use std::borrow::Cow;

use crate::flows::Family;
use crate::i18n::{self, Lang};
use crate::targets::Target;
use crate::targets::source::{PRESETS, Preset};
use crate::train::ObjectiveKind;

use super::export::Export;
use super::views::ViewKind;

/// `english` in English; in another language its catalogue's `key` (English where it lacks it).
pub fn say(key: &str, english: &'static str) -> &'static str {
    match i18n::current() {
        Lang::En => english,
        lang => i18n::catalogue(lang)
            .get(key)
            .map_or(english, String::as_str),
    }
}

/// Every key this module looks up, with its English text (for the catalogue's tests).
pub fn all_keys() -> Vec<(String, &'static str)> {
    let mut keys = Vec::new();
    for family in Family::ALL {
        let info = family.info();
        keys.push((format!("family.{}", info.name), info.title));
        keys.push((
            format!("family.{}.description", info.name),
            info.description,
        ));
    }
    for name in crate::targets::names() {
        let info = crate::targets::info(name).map_or("", |i| i.description);
        keys.push((format!("target.{name}"), info));
    }
    for preset in PRESETS {
        keys.push((format!("preset.{}", preset.name), preset.label));
        keys.push((format!("preset.{}.lesson", preset.name), preset.lesson));
    }
    for objective in ObjectiveKind::ALL {
        keys.push((format!("objective.{}", objective.name()), objective.title()));
    }
    for view in ViewKind::ALL {
        let info = view.info();
        keys.push((format!("view.{}", info.name), info.title));
        keys.push((format!("view.{}.description", info.name), info.description));
    }
    for export in Export::ALL {
        keys.push((format!("export.{}", export.id()), export.title()));
        keys.push((
            format!("export.{}.description", export.id()),
            export.description(),
        ));
    }
    keys
}

/// A flow family's name in menus and labels.
pub fn family(family: Family) -> &'static str {
    say(&format!("family.{}", family.name()), family.info().title)
}

/// A flow family's one-line description.
pub fn family_description(family: Family) -> &'static str {
    let info = family.info();
    say(
        &format!("family.{}.description", info.name),
        info.description,
    )
}

/// An objective's name.
pub fn objective(objective: ObjectiveKind) -> &'static str {
    say(
        &format!("objective.{}", objective.name()),
        objective.title(),
    )
}

/// A view's title.
pub fn view(view: ViewKind) -> &'static str {
    let info = view.info();
    say(&format!("view.{}", info.name), info.title)
}

/// What a view shows (its toggle's tooltip).
pub fn view_description(view: ViewKind) -> &'static str {
    let info = view.info();
    say(&format!("view.{}.description", info.name), info.description)
}

/// An export's button text.
pub fn export(export: Export) -> &'static str {
    say(&format!("export.{}", export.id()), export.title())
}

/// An export's tooltip.
pub fn export_description(export: Export) -> &'static str {
    say(
        &format!("export.{}.description", export.id()),
        export.description(),
    )
}

/// A preset's label in the target menu.
pub fn preset(preset: &Preset) -> &'static str {
    say(&format!("preset.{}", preset.name), preset.label)
}

/// What a preset shows.
pub fn preset_lesson(preset: &Preset) -> &'static str {
    say(&format!("preset.{}.lesson", preset.name), preset.lesson)
}

/// A target's one-sentence description: a built-in's from the catalogue, an edited target's
/// as it was built (in the language of that moment).
pub fn target_description(target: &dyn Target) -> Cow<'_, str> {
    match crate::targets::info(target.name()) {
        Some(info) => Cow::Borrowed(say(&format!("target.{}", info.name), info.description)),
        None => Cow::Borrowed(target.description()),
    }
}
