//! Bad input of every kind gives a one-sentence error, never a panic.

use super::*;

#[test]
fn bad_images_are_errors_not_panics() {
    let dark = |_: u32, _: u32| 0u8;
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("empty", vec![], false),
        ("text", b"hello, I am not an image".to_vec(), false),
        ("truncated", png(64, 64, dark)[..60].to_vec(), false),
        ("white", png(64, 64, |_, _| 255), false),
        ("black inverted", png(64, 64, dark), true),
        ("1×N", png(1, 50, dark), false),
        ("N×1", png(50, 1, dark), false),
        ("3×7", png(3, 7, dark), false),
        ("too wide", png(9000, 300, dark), false),
        ("thin", png(4096, 4, dark), false),
        ("huge file", vec![0u8; targets::MAX_FILE_BYTES + 1], false),
        (
            "gif",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            false,
        ),
    ];
    for (what, bytes, invert) in cases {
        let err = targets::from_image_bytes(&bytes, invert).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        println!("{what}: {message}");
        assert!(
            message.ends_with('.') && !message.contains('\n'),
            "{what}: {message:?}"
        );
    }
}

#[test]
fn bad_csvs_are_errors_and_good_ones_load() {
    let big_rows = "0.5,0.5\n".repeat(targets::csv::MAX_CSV_ROWS + 1);
    let huge = format!("x,y\n{}", "1".repeat(targets::MAX_FILE_BYTES));
    let cases = [
        ("empty", ""),
        ("header only", "x,y\n"),
        ("one point", "x,y\n1,2\n"),
        ("three columns", "1,2,3\n4,5,6\n"),
        ("one column", "1\n2\n3\n"),
        ("text", "1,2\nhello,world\n"),
        ("nan", "1,2\nNaN,3\n4,5\n"),
        ("inf", "1,2\n3,inf\n4,5\n"),
        ("ragged", "1,2\n3,4\n5\n"),
        ("too many rows", big_rows.as_str()),
        ("too large", huge.as_str()),
        ("huge value", "1,2\n1e300,3\n"),
        ("damaged first row", "1.5,abc\n1,2\n3,4\n5,6\n"),
    ];
    for (what, text) in cases {
        let err = targets::from_csv_text(text).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        println!("{what}: {message}");
        assert!(
            message.ends_with('.') && !message.contains('\n'),
            "{what}: {message:?}"
        );
    }
    let ok = "# comment\nx;y\n0 0\n1,1\n\n2\t0.5\n-1, 3\n";
    let t = targets::from_csv_text(ok).unwrap();
    assert_eq!(t.name(), "csv");
    // Identical points are a valid (degenerate) data set.
    assert!(targets::from_csv_text("2,2\n2,2\n2,2\n").is_ok());
}

#[test]
fn nothing_painted_and_bad_specs_are_errors() {
    let blank = PaintedGrid::default();
    assert_eq!(
        blank.to_target("p", "d.").err(),
        Some(TargetError::NothingPainted)
    );
    let mut erased = PaintedGrid::default();
    let brush = Brush::default();
    erased.stroke([0.0, 0.0], &brush);
    erased.stroke([f64::NAN, 0.0], &brush);
    assert!(erased.to_target("p", "d.").is_ok());
    erased.stroke(
        [0.0, 0.0],
        &Brush {
            erase: true,
            strength: 1.0,
            radius: 1.0,
            ..brush
        },
    );
    assert_eq!(
        erased.to_target("p", "d.").err(),
        Some(TargetError::NothingPainted)
    );
    erased.stroke([1.0, 1.0], &brush);
    erased.clear();
    assert!(erased.is_empty());

    for spec in [
        "nope",
        "notes.txt",
        "/definitely/missing.png",
        "/definitely/missing.csv",
        "a.csv:invert",
    ] {
        let err = targets::load(spec)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.ends_with('.'), "{spec}: {err:?}");
    }
    assert_eq!(targets::load("moons").unwrap().name(), "moons");
}

#[cfg(unix)]
#[test]
fn an_endless_file_is_refused_after_the_size_limit() {
    // /dev/zero reports size 0 and never ends: the read itself must stop at the limit.
    let err = targets::read_limited("/dev/zero").err();
    assert!(
        matches!(err, Some(targets::TargetError::FileTooLarge { .. })),
        "{err:?}"
    );
}
