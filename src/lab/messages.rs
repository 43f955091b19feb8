//! Every error a user can meet, in the app's language. The errors' `Display` stays English
//! (the command line, logs and tests read it); the app's panels and status line say
//! [`Localized::localized`], from the catalogue (`error.*` keys in `i18n/en/targets.txt` and
//! `i18n/en/lab.txt`).
//!
//! Why here and not beside each error: the layers below `lab` (targets, train) know nothing
//! of languages. Details that come from elsewhere (a decoder's reason, the operating system's,
//! a number parser's) stay as they were given.

use crate::lab::protocol::{RunError, Stage};
use crate::lab::spec::SpecError;
use crate::targets::TargetError;
use crate::tr;
use crate::train::NotApplicable;

/// A user-facing sentence in the current language.
pub trait Localized {
    /// The sentence, in [`crate::i18n::current`]'s language.
    fn localized(&self) -> String;
}

impl Localized for TargetError {
    fn localized(&self) -> String {
        let mb = |bytes: usize| bytes as f64 / 1_048_576.0;
        match self {
            TargetError::UnknownName { name, known } => {
                tr!("error.target.unknown_name", name = name, known = known)
            }
            TargetError::UnsupportedFile { spec } => {
                tr!("error.target.unsupported_file", spec = spec)
            }
            TargetError::Io { path, reason } => {
                tr!("error.target.io", path = path, reason = reason)
            }
            TargetError::FileTooLarge { bytes, limit } => tr!(
                "error.target.file_too_large",
                size = format!("{:.1}", mb(*bytes)),
                limit = format!("{:.0}", mb(*limit))
            ),
            TargetError::ImageDecode { reason } => {
                tr!("error.target.image_decode", reason = reason)
            }
            TargetError::ImageTooLarge {
                width,
                height,
                limit,
            } => tr!(
                "error.target.image_too_large",
                width = width,
                height = height,
                limit = limit
            ),
            TargetError::ImageTooSmall { width, height, min } => tr!(
                "error.target.image_too_small",
                width = width,
                height = height,
                min = min
            ),
            TargetError::ImageBlank { ink } => match *ink {
                "light" => tr!("error.target.image_blank.light"),
                _ => tr!("error.target.image_blank.dark"),
            }
            .to_owned(),
            TargetError::NothingPainted => tr!("error.target.nothing_painted").to_owned(),
            TargetError::CsvLine { line, reason } => {
                tr!("error.target.csv_line", line = line, reason = reason)
            }
            TargetError::CsvTooManyRows { limit } => {
                tr!("error.target.csv_too_many_rows", limit = limit)
            }
            TargetError::CsvTooFewPoints { found, min } => {
                tr!("error.target.csv_too_few_points", found = found, min = min)
            }
            TargetError::InvalidParameter { what, reason } => {
                tr!(
                    "error.target.invalid_parameter",
                    what = what,
                    reason = reason
                )
            }
        }
    }
}

impl Localized for SpecError {
    fn localized(&self) -> String {
        match self {
            SpecError::NotKeyValue { part } => tr!("error.spec.not_key_value", part = part),
            SpecError::UnknownKey { key } => tr!(
                "error.spec.unknown_key",
                key = key,
                known = crate::lab::spec::key_names()
            ),
            SpecError::BadValue {
                key,
                value,
                expected,
            } => tr!(
                "error.spec.bad_value",
                key = key,
                value = value,
                expected = expected
            ),
            SpecError::BadEncoding { text } => tr!("error.spec.bad_encoding", text = text),
        }
    }
}

impl Localized for NotApplicable {
    fn localized(&self) -> String {
        match self {
            NotApplicable::NoSmoothLogDensity { target } => {
                tr!("error.objective.no_smooth_log_density", target = target)
            }
            NotApplicable::NotContinuous { family } => {
                tr!("error.objective.not_continuous", family = family)
            }
        }
    }
}

impl Localized for RunError {
    fn localized(&self) -> String {
        let stage = match self.stage {
            Stage::Target => tr!("error.stage.target"),
            Stage::Model => tr!("error.stage.model"),
            Stage::Evaluation => tr!("error.stage.evaluation"),
            Stage::Trainer => tr!("error.stage.trainer"),
        };
        tr!("error.run", stage = stage, message = self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The English catalogue says what `Display` says, so the command line and the app agree.
    #[test]
    fn english_matches_display() {
        let target_errors = [
            TargetError::UnknownName {
                name: "moons2".into(),
                known: "moons, rings".into(),
            },
            TargetError::UnsupportedFile {
                spec: "a.gif".into(),
            },
            TargetError::Io {
                path: "a.png".into(),
                reason: "denied".into(),
            },
            TargetError::FileTooLarge {
                bytes: 30 << 20,
                limit: 20 << 20,
            },
            TargetError::ImageDecode {
                reason: "bad header".into(),
            },
            TargetError::ImageTooLarge {
                width: 9000,
                height: 10,
                limit: 4096,
            },
            TargetError::ImageTooSmall {
                width: 2,
                height: 10,
                min: 4,
            },
            TargetError::ImageBlank { ink: "light" },
            TargetError::ImageBlank { ink: "dark" },
            TargetError::NothingPainted,
            TargetError::CsvLine {
                line: 3,
                reason: "not a number".into(),
            },
            TargetError::CsvTooManyRows { limit: 10 },
            TargetError::CsvTooFewPoints { found: 1, min: 2 },
            TargetError::InvalidParameter {
                what: "width",
                reason: "negative".into(),
            },
        ];
        let spec_errors = [
            SpecError::NotKeyValue { part: "x".into() },
            SpecError::UnknownKey {
                key: "colour".into(),
            },
            SpecError::BadValue {
                key: "depth",
                value: "-1".into(),
                expected: "a whole number".into(),
            },
            SpecError::BadEncoding { text: "%zz".into() },
        ];
        let objective_errors = [
            NotApplicable::NoSmoothLogDensity {
                target: "painted".into(),
            },
            NotApplicable::NotContinuous { family: "maf" },
        ];
        let mut pairs: Vec<(String, String)> = Vec::new();
        pairs.extend(target_errors.iter().map(|e| (e.to_string(), e.localized())));
        pairs.extend(spec_errors.iter().map(|e| (e.to_string(), e.localized())));
        pairs.extend(
            objective_errors
                .iter()
                .map(|e| (e.to_string(), e.localized())),
        );
        for stage in [
            Stage::Target,
            Stage::Model,
            Stage::Evaluation,
            Stage::Trainer,
        ] {
            let e = RunError::new(stage, "no layers");
            pairs.push((e.to_string(), e.localized()));
        }
        for (display, localized) in pairs {
            assert_eq!(display, localized);
        }
    }
}
