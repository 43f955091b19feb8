//! The inputs: for every parser, text and bytes generated from its grammar's pieces, and valid
//! inputs mutated (bytes flipped, inserted, deleted, duplicated, numbers replaced by extreme
//! ones) so that most of them get past the first checks and reach the deep ones.

use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::select;

use flowlab::flows::{Family, FlowConfig, SavedModel, build_flow};
use flowlab::lab::spec::KEYS;
use flowlab::targets::TargetSource;
use flowlab::targets::source::PRESETS;

/// Values that sit on or past the limits of some setting, or are not numbers at all.
const EXTREMES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "63",
    "64",
    "65",
    "1024",
    "1025",
    "4096",
    "65536",
    "65537",
    "1000000",
    "1e6",
    "1e-12",
    "1e-10",
    "0.0",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e39",
    "4294967296",
    "18446744073709551616",
    "max",
    "0.5",
    "0x10",
    "１",
    "%",
    "%zz",
    "%00",
    "%E4%B8%AD",
    "(",
    ")",
    ",",
    "=",
    "&",
    "#",
    "realnvp",
    "cnf",
    "planar",
    "mle",
    "reverse-kl",
    "flow-matching",
    "hutchinson",
    "dopri",
    "diagonal",
    "samples,layers,density,field,loss",
    "samples,bogus",
    "maf(layers=4,width=32)",
    "nsf(layers=0)",
    "cnf(steps=100000,rtol=0)",
    "maf,nsf,iaf,glow,nice,radial",
    "maf(layers=64,width=1024),nsf(layers=64,width=1024)",
    "(((",
    "maf(width=4096",
    "painted:two-blobs",
    "painted:",
    "image:AAAA",
    "mixture:",
    "csv:!!",
];

/// Replaces, deletes, inserts or duplicates bytes of `seed`, or swaps a number for an extreme.
pub fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        any::<prop::sample::Index>(),
        0u8..6,
        any::<u8>(),
        0usize..EXTREMES.len(),
    );
    prop::collection::vec(edit, 0..6).prop_map(move |edits| {
        let mut bytes = seed.clone();
        for (at, kind, byte, extreme) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] ^= byte | 1,
                1 => bytes.insert(i, byte),
                2 => {
                    bytes.remove(i);
                }
                3 => {
                    let end = (i + 1 + byte as usize).min(bytes.len());
                    let chunk = bytes[i..end].to_vec();
                    bytes.splice(i..i, chunk);
                }
                4 => bytes.truncate(i),
                _ => replace_number(&mut bytes, i, EXTREMES[extreme]),
            }
        }
        bytes
    })
}

/// Replaces the run of digits at or after `from` with `with`.
fn replace_number(bytes: &mut Vec<u8>, from: usize, with: &str) {
    let digit = |b: &u8| b.is_ascii_digit();
    let Some(start) = bytes[from..].iter().position(digit).map(|p| p + from) else {
        return;
    };
    let len = bytes[start..].iter().take_while(|b| digit(b)).count();
    bytes.splice(start..start + len, with.bytes());
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// URL fragments: arbitrary text, `key=value` lists from the key table and extreme values,
/// and a rich valid scene mutated.
pub fn fragment() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        select(KEYS.iter().map(|k| k.name).collect::<Vec<_>>()).prop_map(str::to_owned),
        "[a-z]{0,6}",
    ];
    let value = prop_oneof![
        select(EXTREMES).prop_map(str::to_owned),
        "[a-z0-9.(),=%-]{0,12}"
    ];
    let pairs = prop::collection::vec((key, value), 0..8).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    let rich = "#target=painted:two-blobs&flow=nsf&layers=6&width=32&lr=0.003&batch=512\
                &compare=maf(layers=4),cnf(steps=20,trace=hutchinson,probes=2),planar(lr=0.01)\
                &seed=7&views=samples,layers,loss&depth=2.5&speed=200&animate=1&notes=0";
    prop_oneof![
        any::<String>(),
        pairs,
        mutated(rich.as_bytes().to_vec()).prop_map(text),
    ]
}

/// Edited targets as a link holds them: every kind, valid records mutated before and after
/// their deflate-and-base64 encoding, and arbitrary payloads.
pub fn target_text() -> impl Strategy<Value = String> {
    let mut valid: Vec<String> = PRESETS.iter().map(|p| p.link()).collect();
    valid.extend(
        PRESETS
            .iter()
            .map(|p| (p.make)().to_text())
            .chain(TargetSource::csv_from_text("x,y\n0,0\n1,2\n-3,0.5\n").map(|s| s.to_text()))
            .chain(image_source().map(|s| s.to_text())),
    );
    let encoded = valid
        .iter()
        .filter(|t| t.len() > 20)
        .cloned()
        .collect::<Vec<_>>();
    prop_oneof![
        "(painted|image|mixture|csv|moons|u1|8gaussians):[A-Za-z0-9_-]{0,40}",
        select(valid).prop_flat_map(|t| mutated(t.into_bytes()).prop_map(text)),
        select(encoded).prop_flat_map(|t| {
            let (kind, payload) = t
                .split_once(':')
                .map(|(k, p)| (k.to_owned(), p.to_owned()))
                .unwrap_or_default();
            let record = decode_record(&payload);
            mutated(record).prop_map(move |r| format!("{kind}:{}", encode_record(&r)))
        }),
    ]
}

fn image_source() -> Result<TargetSource, flowlab::targets::TargetError> {
    let (w, h) = (24u32, 16u32);
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|k| {
            let v = if (k % w) < w / 2 { 30 } else { 220 };
            [v, v, v, 255]
        })
        .collect();
    TargetSource::image_from_rgba(w, h, &rgba, false, 0.1)
}

fn decode_record(payload: &str) -> Vec<u8> {
    let deflated = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    miniz_oxide::inflate::decompress_to_vec(&deflated).unwrap_or_default()
}

fn encode_record(record: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(miniz_oxide::deflate::compress_to_vec(record, 6))
}

/// `model.json` files: one small model of every family (and a learnable base), mutated.
pub fn model_json() -> impl Strategy<Value = Vec<u8>> {
    let valid: Vec<Vec<u8>> = Family::ALL
        .iter()
        .enumerate()
        .map(|(k, &family)| {
            let mut config = FlowConfig::new(family);
            config.layers = 2;
            config.hidden = 4;
            config.learnable_base = k % 2 == 0;
            let flow = build_flow(&config, 2, k as u64).expect("a small flow builds");
            serde_json::to_vec(&SavedModel::of(&flow)).expect("a model serialises")
        })
        .collect();
    prop_oneof![
        4 => select(valid).prop_flat_map(mutated),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// CSV text: rows of numbers in every notation, separators and headers, and mutations of a
/// valid file.
pub fn csv_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        any::<f32>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        select(EXTREMES).prop_map(str::to_owned),
        "[-+]?[0-9]{0,3}[.]?[0-9]{0,3}([eE][-+]?[0-9]{1,3})?",
    ];
    let row = (
        number.clone(),
        select(&[",", ";", "\t", " ", ", "][..]),
        number,
    )
        .prop_map(|(x, sep, y)| format!("{x}{sep}{y}"));
    let rows = (
        select(&["", "x,y\n", "# points\n", "a,b,c\n", "\u{feff}x,y\r\n"][..]),
        prop::collection::vec(row, 0..60),
        select(&["\n", "\r\n"][..]),
    )
        .prop_map(|(header, rows, newline)| format!("{header}{}", rows.join(newline)));
    let valid = "x,y\n0.5,1\n-1,2.25\n3e-1,-4\n0,0\n1.5,1.5\n"
        .as_bytes()
        .to_vec();
    prop_oneof![
        rows,
        "[0-9., \n+eE#xy-]{0,200}",
        mutated(valid).prop_map(text),
    ]
}

/// Image files: small PNGs and JPEGs of random pixels, mutated (their headers too: a mutated
/// IHDR claims any size), and arbitrary bytes behind a PNG signature.
pub fn image_bytes() -> impl Strategy<Value = (Vec<u8>, bool, f32)> {
    let picture =
        (1u32..48, 1u32..48, any::<u64>(), any::<bool>()).prop_map(|(w, h, seed, jpeg)| {
            let mut state = seed | 1;
            let pixels: Vec<u8> = (0..w * h * 3)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 56) as u8
                })
                .collect();
            let image = image::RgbImage::from_raw(w, h, pixels).expect("pixels fill the image");
            let format = if jpeg {
                image::ImageFormat::Jpeg
            } else {
                image::ImageFormat::Png
            };
            let mut bytes = std::io::Cursor::new(Vec::new());
            image
                .write_to(&mut bytes, format)
                .expect("an image encodes");
            bytes.into_inner()
        });
    let file = prop_oneof![
        4 => picture.prop_flat_map(mutated),
        1 => prop::collection::vec(any::<u8>(), 0..128).prop_map(|tail| {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.extend(tail);
            bytes
        }),
    ];
    (file, any::<bool>(), threshold())
}

fn threshold() -> impl Strategy<Value = f32> {
    prop_oneof![0.0f32..1.0, any::<f32>()]
}

/// Pixels as a browser hands them over: any size (huge and zero ones too), a buffer that may
/// not fill it.
pub fn rgba() -> impl Strategy<Value = (u32, u32, Vec<u8>, bool, f32)> {
    let side = prop_oneof![
        1u32..64,
        select(&[0u32, 1, 4096, 4097, 1 << 20, u32::MAX][..])
    ];
    (side.clone(), side, any::<bool>(), any::<u8>()).prop_flat_map(|(w, h, fill, shade)| {
        let full = (w as usize)
            .saturating_mul(h as usize)
            .saturating_mul(4)
            .min(64 * 64 * 4);
        let len = if fill {
            Just(full).boxed()
        } else {
            (0..=full + 8).boxed()
        };
        (
            Just(w),
            Just(h),
            len,
            Just(shade),
            any::<bool>(),
            threshold(),
        )
            .prop_map(|(w, h, len, shade, invert, threshold)| {
                let rgba = (0..len)
                    .map(|k| {
                        if k % 4 == 3 {
                            255
                        } else {
                            shade.wrapping_add(k as u8)
                        }
                    })
                    .collect();
                (w, h, rgba, invert, threshold)
            })
    })
}

/// CLI command lines: subcommands, flags and values, in any order.
pub fn cli_args() -> impl Strategy<Value = Vec<String>> {
    const WORDS: &[&str] = &[
        "train",
        "bench",
        "render",
        "export",
        "eval",
        "--flow",
        "--layers",
        "--hidden",
        "--steps",
        "--batch",
        "--lr",
        "--seed",
        "--objective",
        "--learnable-base",
        "--cnf-steps",
        "--trace",
        "--probe",
        "--probes",
        "--kinetic",
        "--jacobian",
        "--augment",
        "--solver",
        "--rtol",
        "--atol",
        "--size",
        "--samples",
        "--scene",
        "--json",
        "--profile",
        "--target",
        "--test",
        "--help",
        "--version",
        "-h",
    ];
    let word = prop_oneof![
        select(WORDS).prop_map(str::to_owned),
        select(EXTREMES).prop_map(str::to_owned),
        "--[a-z-]{0,10}",
    ];
    (
        select(&["train", "bench", "render", ""][..]),
        prop::collection::vec(word, 0..10),
    )
        .prop_map(|(command, rest)| {
            let mut args: Vec<String> = Vec::new();
            if !command.is_empty() {
                args.push(command.to_owned());
            }
            args.extend(rest);
            args
        })
}
