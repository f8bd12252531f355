//! Loading real folders: formats, sizes, colour, bad files and bad layouts.

mod common;

use common::write_digit_folder;
use std::io::Write;
use std::path::Path;
use transferlab::data::demo::Style;
use transferlab::data::folder::{LoadOptions, load_domain_folder};
use transferlab::data::{DataError, SampleShape, align_pair};
use transferlab::train::{DataSource, ShapeHint, load_pair};

fn gray28() -> SampleShape {
    SampleShape::Image {
        channels: 1,
        height: 28,
        width: 28,
    }
}

fn load(path: &Path, role: &str, allow_flat: bool) -> Result<transferlab::data::Domain, DataError> {
    load_domain_folder(
        path,
        &LoadOptions {
            role: role.into(),
            shape: gray28(),
            allow_flat,
        },
        &mut |_| {},
    )
}

/// A PNG header that claims a 100000×100000 image, with no data after it.
fn huge_png_header() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A tiny (bogus) data chunk, so a reader gets past the header.
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01".to_vec();
    out.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(&idat);
    out.extend_from_slice(&crc32(&idat).to_be_bytes());
    out
}

#[test]
fn every_format_and_size_loads_at_the_model_shape() {
    let dir = tempfile::tempdir().unwrap();
    for (i, ext) in ["png", "jpg", "bmp", "gif", "webp"].iter().enumerate() {
        write_digit_folder(dir.path(), &[i], 3, Style::Clean, 20 + 9 * i as u32, ext, 1);
    }
    // A colour image of another size in class 0.
    let rgb = image::RgbImage::from_fn(57, 31, |x, y| image::Rgb([x as u8 * 4, y as u8 * 8, 200]));
    rgb.save(dir.path().join("0").join("colour.png")).unwrap();
    let d = load(dir.path(), "source", false).unwrap();
    assert_eq!(d.len(), 16, "skipped: {:?}", d.skipped);
    assert!(d.skipped.is_empty());
    assert_eq!(d.class_names, vec!["0", "1", "2", "3", "4"]);
    assert_eq!(d.x.len(), 16 * 28 * 28);
    assert!(d.x.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(d.class_counts(), vec![4, 3, 3, 3, 3]);
}

#[test]
fn bad_files_are_skipped_with_reasons_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    write_digit_folder(dir.path(), &[0, 1], 4, Style::Clean, 28, "png", 2);
    let c0 = dir.path().join("0");
    std::fs::write(c0.join("empty.png"), b"").unwrap();
    std::fs::write(c0.join("notes.txt"), b"hello").unwrap();
    std::fs::write(c0.join("fake.jpg"), b"this is not a jpeg at all").unwrap();
    let good = std::fs::read(c0.join("0_000.png")).unwrap();
    std::fs::write(c0.join("truncated.png"), &good[..good.len() / 2]).unwrap();
    std::fs::File::create(c0.join("huge.png"))
        .unwrap()
        .write_all(&huge_png_header())
        .unwrap();
    let d = load(dir.path(), "source", false).unwrap();
    assert_eq!(d.len(), 8, "all good images load");
    let reason = |name: &str| {
        d.skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {:?}", d.skipped))
            .reason
            .clone()
    };
    assert!(reason("empty.png").contains("empty"));
    assert!(reason("notes.txt").contains("not an image"));
    assert!(reason("fake.jpg").contains("not an image") || reason("fake.jpg").contains("corrupt"));
    assert!(reason("truncated.png").contains("corrupt or truncated"));
    assert!(reason("huge.png").contains("too large"));
    assert_eq!(d.skipped.len(), 5);
}

#[test]
fn bad_layouts_give_specific_errors() {
    let missing = Path::new("/definitely/not/here");
    assert!(matches!(
        load(missing, "source", false),
        Err(DataError::NotFound { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.png");
    std::fs::write(&file, b"x").unwrap();
    let err = load(&file, "source", false).unwrap_err();
    assert!(matches!(err, DataError::NotAFolder { .. }), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = load(empty.path(), "target", true).unwrap_err();
    assert!(err.to_string().contains("holds no images"), "{err}");

    let flat = tempfile::tempdir().unwrap();
    write_digit_folder(flat.path(), &[3], 2, Style::Clean, 28, "png", 3);
    for e in std::fs::read_dir(flat.path().join("3")).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, flat.path().join(p.file_name().unwrap())).unwrap();
    }
    std::fs::remove_dir(flat.path().join("3")).unwrap();
    let err = load(flat.path(), "source", false).unwrap_err();
    assert!(err.to_string().contains("no class subfolders"), "{err}");
    // The same flat folder is a fine unlabeled target.
    let t = load(flat.path(), "target", true).unwrap();
    assert!(t.labels.is_none());
    assert_eq!(t.len(), 2);
}

#[test]
fn empty_class_folders_warn_and_one_class_sources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_digit_folder(dir.path(), &[0], 3, Style::Clean, 28, "png", 4);
    std::fs::create_dir_all(dir.path().join("9")).unwrap();
    let s = load(dir.path(), "source", false).unwrap();
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("'9'") && w.contains("no images")),
        "{:?}",
        s.warnings
    );
    let t = s.clone();
    let err = align_pair(s, t, "src").unwrap_err();
    assert!(matches!(err, DataError::OneClass { .. }), "{err}");
    assert!(err.to_string().contains("only one class"));
}

#[test]
fn differing_class_sets_are_named_and_evaluation_uses_shared_classes() {
    let src = tempfile::tempdir().unwrap();
    let tgt = tempfile::tempdir().unwrap();
    write_digit_folder(src.path(), &[0, 1, 2], 3, Style::Clean, 28, "png", 5);
    write_digit_folder(tgt.path(), &[1, 2, 7], 2, Style::Inverted, 28, "png", 6);
    let pair = load_pair(
        &DataSource::Folders {
            source: src.path().into(),
            target: tgt.path().into(),
        },
        ShapeHint::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(pair.classes, vec!["0", "1", "2"]);
    assert_eq!(pair.target.len(), 4, "the two '7' images are left out");
    assert!(
        pair.warnings
            .iter()
            .any(|w| w.contains("'7'") && w.contains("not in the source"))
    );
    assert!(
        pair.warnings
            .iter()
            .any(|w| w.contains("'0'") && w.contains("not in the target"))
    );
    let labels = pair.target.labels.as_ref().unwrap();
    assert!(
        labels.iter().all(|&l| l == 1 || l == 2),
        "target labels on the source's index"
    );

    let other = tempfile::tempdir().unwrap();
    write_digit_folder(other.path(), &[8, 9], 2, Style::Clean, 28, "png", 7);
    let err = load_pair(
        &DataSource::Folders {
            source: src.path().into(),
            target: other.path().into(),
        },
        ShapeHint::default(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(matches!(err, DataError::NoSharedClasses { .. }), "{err}");
}

#[test]
fn colour_folders_load_with_three_channels() {
    let src = tempfile::tempdir().unwrap();
    for c in 0..2u8 {
        let sub = src.path().join(c.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..3u8 {
            let img =
                image::RgbImage::from_fn(30, 30, |x, _| image::Rgb([c * 200, x as u8 * 8, i * 50]));
            img.save(sub.join(format!("{i}.png"))).unwrap();
        }
    }
    let pair = load_pair(
        &DataSource::Folders {
            source: src.path().into(),
            target: src.path().into(),
        },
        ShapeHint::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        pair.source.shape,
        SampleShape::Image {
            channels: 3,
            height: 28,
            width: 28
        }
    );
}

#[test]
fn loading_reports_progress_to_the_total() {
    let dir = tempfile::tempdir().unwrap();
    write_digit_folder(dir.path(), &[0, 1], 5, Style::Clean, 28, "png", 8);
    let mut seen = Vec::new();
    load_domain_folder(
        dir.path(),
        &LoadOptions {
            role: "source".into(),
            shape: gray28(),
            allow_flat: false,
        },
        &mut |p| seen.push((p.done, p.total)),
    )
    .unwrap();
    assert_eq!(seen.first(), Some(&(0, 10)));
    assert_eq!(seen.last(), Some(&(10, 10)));
}
