//! The app as its users meet it: the `flowlab` binary (`cli`) and the egui app (`ui`), in one
//! test binary.

mod cli;
mod i18n;
mod ui;
