//! The app's typeface: Ubuntu Light, and for the symbols it lacks (∇, ‖, subscripts, arrows…)
//! a few dozen glyphs of DejaVu Sans (`assets/fonts/symbols.ttf`, made by
//! `scripts/font-subset` from exactly the characters the source uses).
//!
//! Why not egui's defaults: they embed two fonts, Ubuntu Light and Hack (monospace). Hack
//! costs 150 KB of the gzipped web app and only drew the plot's coordinate read-out, so both
//! text styles use Ubuntu Light.

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

const UBUNTU_LIGHT: &str = "Ubuntu-Light";
const SYMBOLS: &str = "DejaVu-Sans-symbols";

/// The font definitions: Ubuntu Light, then the symbols, for proportional and monospace text.
pub fn definitions() -> FontDefinitions {
    let mut fonts = FontDefinitions::empty();
    fonts.font_data.insert(
        UBUNTU_LIGHT.to_owned(),
        Arc::new(FontData::from_static(epaint_default_fonts::UBUNTU_LIGHT)),
    );
    fonts.font_data.insert(
        SYMBOLS.to_owned(),
        Arc::new(FontData::from_static(include_bytes!(
            "../../assets/fonts/symbols.ttf"
        ))),
    );
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts
            .families
            .insert(family, vec![UBUNTU_LIGHT.to_owned(), SYMBOLS.to_owned()]);
    }
    fonts
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
