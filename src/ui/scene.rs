//! The scene: what the app shows and trains, as it is written in the URL fragment.
//!
//! `#target=moons&flow=realnvp&autoplay=1&seed=3` ⇄ [`Scene`]. Parsing is pure (no web APIs),
//! so it is unit-tested natively and shared by the web app, the native `--scene` option and the
//! tests. A bad fragment never panics: [`Scene::from_fragment_lenient`] keeps the defaults for
//! whatever it cannot read and returns one clear [`SceneError`] per problem for the UI to show.

use crate::{flows::Family, targets as catalog};

/// Everything that defines a scene. Later issues add keys (layers, objective, …).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scene {
    /// Target name, one of [`catalog::NAMES`].
    pub target: String,
    /// Flow family, one of [`Family::NAMES`].
    pub flow: String,
    /// Start training as soon as the scene is loaded.
    pub autoplay: bool,
    /// Seed of every random stream of the scene (data, initialisation, sampling).
    pub seed: u64,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            target: catalog::DEFAULT_TARGET.to_owned(),
            flow: Family::DEFAULT.name().to_owned(),
            autoplay: true,
            seed: 0,
        }
    }
}

/// The keys a fragment may contain.
pub const SCENE_KEYS: &[&str] = &["target", "flow", "autoplay", "seed"];

/// One problem found in a URL fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SceneError {
    /// A `&`-separated part without `=`.
    #[error("URL fragment: '{part}' is not of the form key=value")]
    NotKeyValue {
        /// The offending part, decoded.
        part: String,
    },
    /// A key that is not in [`SCENE_KEYS`].
    #[error("URL fragment: unknown key '{key}' (known keys: {})", SCENE_KEYS.join(", "))]
    UnknownKey {
        /// The key, decoded.
        key: String,
    },
    /// A value that does not parse or is not one of the allowed names.
    #[error("URL fragment: bad value '{value}' for '{key}': expected {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value, decoded.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("URL fragment: bad percent-encoding in '{text}'")]
    BadEncoding {
        /// The raw text.
        text: String,
    },
}

/// A scene read leniently: what could be read, and what could not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LenientScene {
    /// The scene: defaults, overridden by every key that parsed.
    pub scene: Scene,
    /// One entry per problem, in fragment order.
    pub errors: Vec<SceneError>,
}

impl Scene {
    /// Parses a fragment strictly: the first problem is an error. A leading `#` is optional;
    /// an empty fragment gives the default scene; a repeated key keeps its last value.
    pub fn from_fragment(fragment: &str) -> Result<Self, SceneError> {
        let LenientScene { scene, errors } = Self::from_fragment_lenient(fragment);
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(scene),
        }
    }

    /// Parses a fragment, keeping the default for every key that is missing or bad.
    pub fn from_fragment_lenient(fragment: &str) -> LenientScene {
        let mut scene = Self::default();
        let mut errors = Vec::new();
        let body = fragment.strip_prefix('#').unwrap_or(fragment);
        for part in body.split('&').filter(|part| !part.is_empty()) {
            if let Err(error) = scene.apply_part(part) {
                errors.push(error);
            }
        }
        LenientScene { scene, errors }
    }

    /// The fragment (without `#`) that [`Scene::from_fragment`] reads back as `self`.
    pub fn to_fragment(&self) -> String {
        format!(
            "target={}&flow={}&autoplay={}&seed={}",
            percent_encode(&self.target),
            percent_encode(&self.flow),
            u8::from(self.autoplay),
            self.seed
        )
    }

    fn apply_part(&mut self, part: &str) -> Result<(), SceneError> {
        let Some((raw_key, raw_value)) = part.split_once('=') else {
            return Err(SceneError::NotKeyValue {
                part: percent_decode(part)?,
            });
        };
        let key = percent_decode(raw_key)?;
        let value = percent_decode(raw_value)?;
        match key.as_str() {
            "target" => {
                let name = value.to_ascii_lowercase();
                if catalog::info(&name).is_none() {
                    return Err(bad_value("target", value, catalog::NAMES.join(", ")));
                }
                self.target = name;
            }
            "flow" => {
                let name = value.to_ascii_lowercase();
                if Family::from_name(&name).is_err() {
                    return Err(bad_value("flow", value, Family::NAMES.join(", ")));
                }
                self.flow = name;
            }
            "autoplay" => {
                self.autoplay = match value.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => return Err(bad_value("autoplay", value, "0 or 1".to_owned())),
                };
            }
            "seed" => {
                self.seed = value.parse().map_err(|_| {
                    bad_value("seed", value.clone(), "an integer in 0..=2^64-1".to_owned())
                })?;
            }
            _ => return Err(SceneError::UnknownKey { key }),
        }
        Ok(())
    }
}

fn bad_value(key: &'static str, value: String, expected: String) -> SceneError {
    SceneError::BadValue {
        key,
        value,
        expected,
    }
}

/// Decodes `%XX` escapes and `+` (as a space, like form encoding).
fn percent_decode(text: &str) -> Result<String, SceneError> {
    let bad = || SceneError::BadEncoding {
        text: text.to_owned(),
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'%' => {
                let [high, low, ..] = tail else {
                    return Err(bad());
                };
                let hex = |digit: u8| (digit as char).to_digit(16);
                let (Some(high), Some(low)) = (hex(*high), hex(*low)) else {
                    return Err(bad());
                };
                bytes.push((high * 16 + low) as u8);
                rest = &tail[2..];
            }
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Escapes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fragment_is_the_default_scene() {
        for fragment in ["", "#", "#&&", "&"] {
            assert_eq!(
                Scene::from_fragment(fragment),
                Ok(Scene::default()),
                "{fragment:?}"
            );
        }
    }

    #[test]
    fn reads_every_key() {
        let scene = Scene::from_fragment("#target=moons&flow=maf&autoplay=0&seed=3").unwrap();
        assert_eq!(
            scene,
            Scene {
                target: "moons".into(),
                flow: "maf".into(),
                autoplay: false,
                seed: 3
            }
        );
    }

    #[test]
    fn leading_hash_is_optional_and_names_are_case_insensitive() {
        let with_hash = Scene::from_fragment("#flow=NSF&autoplay=true").unwrap();
        let without = Scene::from_fragment("flow=nsf&autoplay=1").unwrap();
        assert_eq!(with_hash, without);
        assert_eq!(without.flow, "nsf");
    }

    #[test]
    fn round_trips_through_to_fragment() {
        let scene = Scene {
            target: "moons".into(),
            flow: "cnf".into(),
            autoplay: false,
            seed: u64::MAX,
        };
        assert_eq!(Scene::from_fragment(&scene.to_fragment()), Ok(scene));
    }

    #[test]
    fn last_repeated_key_wins() {
        let scene = Scene::from_fragment("seed=1&seed=2").unwrap();
        assert_eq!(scene.seed, 2);
    }

    #[test]
    fn percent_escapes_are_decoded() {
        let scene = Scene::from_fragment("%66low=%6Eice&seed=%34%32").unwrap();
        assert_eq!((scene.flow.as_str(), scene.seed), ("nice", 42));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Scene::from_fragment("#bogus=1").unwrap_err();
        assert_eq!(
            err,
            SceneError::UnknownKey {
                key: "bogus".into()
            }
        );
        assert!(err.to_string().contains("unknown key 'bogus'"));
        assert!(err.to_string().contains("target, flow, autoplay, seed"));
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let cases = [
            ("flow=glowy", "flow", "realnvp"),
            ("target=mooons", "target", "moons"),
            ("autoplay=maybe", "autoplay", "0 or 1"),
            ("seed=-1", "seed", "integer"),
            ("seed=1e3", "seed", "integer"),
            ("seed=99999999999999999999999", "seed", "integer"),
        ];
        for (fragment, key, hint) in cases {
            let err = Scene::from_fragment(fragment).unwrap_err();
            let SceneError::BadValue {
                key: got_key,
                expected,
                ..
            } = &err
            else {
                panic!("{fragment}: {err:?}");
            };
            assert_eq!(*got_key, key, "{fragment}");
            assert!(expected.contains(hint), "{fragment}: {expected}");
        }
    }

    #[test]
    fn part_without_equals_is_rejected() {
        let err = Scene::from_fragment("#autoplay").unwrap_err();
        assert_eq!(
            err,
            SceneError::NotKeyValue {
                part: "autoplay".into()
            }
        );
    }

    #[test]
    fn broken_percent_encoding_is_rejected_not_panicking() {
        for fragment in [
            "flow=%",
            "flow=%4",
            "flow=%zz",
            "flow=%ff%fe",
            "%=1",
            "seed=%C3",
        ] {
            let err = Scene::from_fragment(fragment).unwrap_err();
            assert!(
                matches!(err, SceneError::BadEncoding { .. }),
                "{fragment}: {err:?}"
            );
        }
    }

    #[test]
    fn lenient_parse_keeps_good_keys_and_defaults_for_bad_ones() {
        let parsed = Scene::from_fragment_lenient("#target=moons&flow=nope&seed=5&x=1&autoplay=0");
        assert_eq!(
            parsed.scene,
            Scene {
                seed: 5,
                autoplay: false,
                ..Scene::default()
            }
        );
        assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
        assert!(matches!(
            parsed.errors[0],
            SceneError::BadValue { key: "flow", .. }
        ));
        assert!(matches!(parsed.errors[1], SceneError::UnknownKey { .. }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every short string over an alphabet of the interesting characters.
        let alphabet = ['#', '&', '=', '%', '+', 'a', '1', 'f', 'é', '\u{0}'];
        let mut stack = vec![String::new()];
        while let Some(text) = stack.pop() {
            let _ = Scene::from_fragment_lenient(&text);
            if text.chars().count() < 4 {
                for c in alphabet {
                    stack.push(format!("{text}{c}"));
                }
            }
        }
    }
}
