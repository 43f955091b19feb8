//! The app's typeface: Ubuntu Light (`assets/fonts/ui.ttf`: egui's font cut to Latin and the
//! characters the source and catalogues use, by `scripts/font-subset`; the whole font was
//! 170 KB of the gzipped web app, the cut is 68 KB), and for the symbols it lacks (∇, ‖, subscripts, arrows…)
//! a few dozen glyphs of DejaVu Sans (`assets/fonts/symbols.ttf`, made by
//! `scripts/font-subset` from exactly the characters the source uses).
//!
//! Chinese text draws with a subset of Noto Sans CJK SC, added when Chinese is first spoken
//! ([`install_cjk`]; the web app fetches it then, see `web::platform::cjk_font`).
//!
//! Why not egui's defaults: they embed two fonts, Ubuntu Light and Hack (monospace). Hack
//! costs 150 KB of the gzipped web app and only drew the plot's coordinate read-out, so both
//! text styles use Ubuntu Light.

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

const UBUNTU_LIGHT: &str = "Ubuntu-Light"; // i18n: a font name
const SYMBOLS: &str = "DejaVu-Sans-symbols";
const ENDONYMS: &str = "Noto-Sans-CJK-SC-endonyms"; // i18n: a font name
const CJK: &str = "Noto-Sans-CJK-SC-subset"; // i18n: a font name

/// The font definitions: Ubuntu Light, then the symbols, for proportional and monospace text.
pub fn definitions() -> FontDefinitions {
    let mut fonts = FontDefinitions::empty();
    fonts.font_data.insert(
        UBUNTU_LIGHT.to_owned(),
        Arc::new(FontData::from_static(include_bytes!(
            "../../assets/fonts/ui.ttf"
        ))),
    );
    fonts.font_data.insert(
        SYMBOLS.to_owned(),
        Arc::new(FontData::from_static(include_bytes!(
            "../../assets/fonts/symbols.ttf"
        ))),
    );
    // Why: the language switch says "中文" in every language (a few KB; the rest of Chinese
    // comes with `definitions_with_cjk`).
    fonts.font_data.insert(
        ENDONYMS.to_owned(),
        Arc::new(FontData::from_static(include_bytes!(
            "../../assets/fonts/endonyms.ttf"
        ))),
    );
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts.families.insert(
            family,
            vec![
                UBUNTU_LIGHT.to_owned(),
                SYMBOLS.to_owned(),
                ENDONYMS.to_owned(),
            ],
        );
    }
    fonts
}

/// [`definitions`] with the Chinese glyphs (`assets/fonts/cjk.ttf`: exactly the characters
/// of the Chinese catalogue, cut from Noto Sans CJK SC by `scripts/font-subset`) after the
/// others, so Latin text keeps Ubuntu Light.
pub fn definitions_with_cjk(cjk: &'static [u8]) -> FontDefinitions {
    let mut fonts = definitions();
    fonts
        .font_data
        .insert(CJK.to_owned(), Arc::new(FontData::from_static(cjk)));
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        if let Some(list) = fonts.families.get_mut(&family) {
            list.push(CJK.to_owned());
        }
    }
    fonts
}

/// Adds the Chinese glyphs to `ctx`'s fonts (from the next frame on).
pub fn install_cjk(ctx: &egui::Context, cjk: &'static [u8]) {
    ctx.set_fonts(definitions_with_cjk(cjk));
}

/// Installs [`definitions`] in `ctx` (before the first frame lays out text), at sizes that
/// read on a projector: egui's defaults (12.5 points) are meant for a laptop at arm's length.
pub fn install(ctx: &egui::Context) {
    use egui::{FontFamily, FontId, TextStyle};
    ctx.set_fonts(definitions());
    ctx.all_styles_mut(|style| {
        for (text_style, size, family) in [
            (TextStyle::Small, 11.5, FontFamily::Proportional),
            (TextStyle::Body, 14.0, FontFamily::Proportional),
            (TextStyle::Button, 14.0, FontFamily::Proportional),
            (TextStyle::Monospace, 13.5, FontFamily::Monospace),
            (TextStyle::Heading, 20.0, FontFamily::Proportional),
        ] {
            style
                .text_styles
                .insert(text_style, FontId::new(size, family));
        }
    });
}
