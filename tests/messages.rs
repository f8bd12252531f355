//! Bad inputs get a message that says what is wrong: numeric flags out of range (negative
//! numbers included), symlinked images and loops, class folders that cannot be listed,
//! corrupt images in multitask folders, images too large to decode, a loss that explodes.

mod common;

use common::{run_cli, write_digit_folder};
use std::path::Path;
use transferlab::data::demo::Style;
use transferlab::data::folder::{decode_checked, load_domain_folder, scan_folder};
use transferlab::train::load::ShapeHint;

/// `run` with `args` fails as a usage error whose message contains `expected`.
fn refused(args: &[&str], expected: &str) {
    let out = std::process::Command::new(common::bin())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

#[test]
fn negative_and_out_of_range_numbers_say_what_the_value_must_be() {
    let run = ["run", "--demo", "moons"];
    for (flag, value, expected) in [
        ("--lr", "-0.1", "must be a positive number, got -0.1"),
        ("--lr", "0", "must be a positive number, got 0"),
        (
            "--epochs",
            "-3",
            "must be a whole number, 1 or more, got -3",
        ),
        (
            "--batch-size",
            "0",
            "must be a whole number, 1 or more, got 0",
        ),
        (
            "--freeze",
            "-1",
            "must be a whole number, 0 or more, got -1",
        ),
        (
            "--val-fraction",
            "-0.5",
            "must be at least 0 and below 0.95",
        ),
        (
            "--task-weights",
            "-1",
            "must be a number, 0 or more, got -1",
        ),
        ("--lambda", "NaN", "must be a number, got NaN"),
        ("--channels", "2", "must be 1 (gray) or 3 (colour), got 2"),
        ("--seed", "-7", "must be a whole number, 0 or more, got -7"),
    ] {
        let mut args = run.to_vec();
        args.extend([flag, value]);
        refused(&args, expected);
    }
    refused(
        &["similarity", "--demo", "moons", "--seed", "-2"],
        "must be a whole number, 0 or more, got -2",
    );
    refused(
        &["bench", "--steps", "-1"],
        "must be a whole number, 0 or more, got -1",
    );
    refused(
        &["bench-pretrained", "--lr-scratch", "-1e-3"],
        "must be a positive number, got -1e-3",
    );
}

#[test]
fn with_rust_backtrace_set_a_cli_error_prints_its_chain_only() {
    let out = std::process::Command::new(common::bin())
        .args([
            "run",
            "--source",
            "/no/such/folder",
            "--target",
            "/no/such/t",
        ])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(stderr.lines().count() <= 2, "{stderr}");
}

#[test]
fn an_exploding_loss_stops_the_run_like_nan_does() {
    let (ok, _, stderr) = run_cli(&[
        "run", "--demo", "moons", "--lr", "1e6", "--epochs", "3", "--quiet", "--device", "cpu",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("diverged in epoch") && stderr.contains("the loss grew to"),
        "{stderr}"
    );
    assert!(
        stderr.contains("source-only adds no term of its own"),
        "{stderr}"
    );
    // With an adaptation method the message names the method's largest term.
    let (ok, _, stderr) = run_cli(&[
        "run", "--demo", "moons", "--method", "coral", "--lr", "1e6", "--lambda", "1e4",
        "--epochs", "3", "--quiet", "--device", "cpu",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("diverged in epoch") && stderr.contains("of coral's own terms the"),
        "{stderr}"
    );
}

fn two_classes(dir: &Path) {
    write_digit_folder(dir, &[0, 1], 3, Style::Clean, 28, "png", 1);
}

#[test]
fn symlinked_images_are_loaded_and_a_symlink_loop_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    two_classes(&store);
    let source = tmp.path().join("source");
    for class in ["0", "1"] {
        std::fs::create_dir_all(source.join(class)).unwrap();
        for entry in std::fs::read_dir(store.join(class)).unwrap() {
            let p = entry.unwrap().path();
            std::os::unix::fs::symlink(&p, source.join(class).join(p.file_name().unwrap()))
                .unwrap();
        }
    }
    // A link back to a folder it is in.
    std::os::unix::fs::symlink(&source, source.join("1").join("loop")).unwrap();
    let scan = scan_folder("source", &source).unwrap();
    assert_eq!(scan.image_count(), 6, "every symlinked image is found");
    assert!(
        scan.skipped
            .iter()
            .any(|s| s.path.ends_with("1/loop") && s.reason.contains("loop")),
        "{:?}",
        scan.skipped
    );
}

#[test]
fn a_class_folder_that_cannot_be_listed_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    write_digit_folder(&source, &[0, 1], 3, Style::Clean, 28, "png", 1);
    let locked = source.join("1");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_ok() {
        // Root lists any folder: nothing to reproduce here.
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: this user can list a folder with mode 000");
        return;
    }
    let scan = scan_folder("source", &source);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let scan = scan.unwrap();
    assert_eq!(scan.unlisted.len(), 1);
    assert!(
        scan.warnings
            .iter()
            .any(|w| w.contains("cannot be listed") && w.contains("'1'")),
        "{:?}",
        scan.warnings
    );
}

/// A valid PNG header of `side`×`side` RGBA pixels with no pixel data.
fn huge_png(path: &Path, side: u32) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]); // 8 bits, RGBA
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

#[test]
fn a_valid_but_huge_png_exceeds_the_memory_limit_and_is_not_called_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.png");
    huge_png(&path, 14_000);
    let err = decode_checked(&path).unwrap_err();
    assert!(
        err.contains("too large to decode")
            && err.contains("14000×14000")
            && !err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn corrupt_images_in_a_multitask_folder_are_counted_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("images");
    two_classes(&folder);
    std::fs::write(
        folder.join("0").join("broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let mut csv = String::from("file,digit\n");
    for class in ["0", "1"] {
        for entry in std::fs::read_dir(folder.join(class)).unwrap() {
            let p = entry.unwrap().path();
            csv += &format!(
                "{class}/{},{class}\n",
                p.file_name().unwrap().to_string_lossy()
            );
        }
    }
    let csv_path = tmp.path().join("labels.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let data = transferlab::tasks::multitask::load_multitask_folder(
        &folder,
        &csv_path,
        ShapeHint::default(),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        data.warnings
            .iter()
            .any(|w| w.starts_with("1 file(s) skipped") && w.contains("broken.png")),
        "{:?}",
        data.warnings
    );
    // The class folders of a labelled domain behave the same.
    let opts = transferlab::data::folder::LoadOptions {
        role: "source".into(),
        shape: transferlab::data::SampleShape::Image {
            channels: 1,
            height: 28,
            width: 28,
        },
        allow_flat: false,
    };
    let domain = load_domain_folder(&folder, &opts, &mut |_| {}).unwrap();
    assert!(domain.skipped_warning().unwrap().contains("broken.png"));
}

#[test]
fn a_scan_of_a_huge_tree_stops_at_its_cap_and_says_what_it_found() {
    use transferlab::data::folder::{ScanLimits, scan_folder_limited};
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("big");
    write_digit_folder(&folder, &[0, 1, 2], 10, Style::Clean, 8, "png", 1);
    let limits = ScanLimits {
        entries: 15,
        time: std::time::Duration::from_secs(10),
    };
    let err = scan_folder_limited("source", &folder, limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stopped scanning the source folder")
            && err.contains("15 entries or 10 s")
            && err.contains("16 entries looked at")
            && err.contains("image(s) in 1 class folder(s) so far"),
        "{err}"
    );
    // Under the cap the same folder scans whole.
    let scan = scan_folder("source", &folder).unwrap();
    assert_eq!(scan.image_count(), 30);
}
