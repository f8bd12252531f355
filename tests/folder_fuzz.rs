//! Property-style fuzz of folder loading: seeded random trees of valid, truncated, random,
//! empty and oddly named files, nested folders and symlinks (to files, to folders, loops,
//! dangling). Loading never panics and always answers a clear Ok (images, each skipped
//! file with a reason) or Err (a message naming the folder). Small: a few seconds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use transferlab::data::SampleShape;
use transferlab::data::folder::{LoadOptions, load_domain_folder};

/// A small valid PNG of random pixels.
fn png_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (w, h) = (rng.random_range(1..12u32), rng.random_range(1..12u32));
    let img = image::RgbImage::from_fn(w, h, |_, _| image::Rgb(rng.random()));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

const NAMES: &[&str] = &[
    "a.png",
    "B.PNG",
    "with space.jpg",
    "-dash.png",
    "ünïcødé.png",
    "x.webp",
    "x.gif",
    "x.bmp",
    "noext",
    ".hidden.png",
    "notes.txt",
    "a.png.tmp",
    "long_________________________________________________________________.png",
];

fn random_file(rng: &mut ChaCha8Rng, dir: &Path, i: usize) {
    let name = format!("{i}{}", NAMES[rng.random_range(0..NAMES.len())]);
    let path = dir.join(name);
    let bytes = match rng.random_range(0..6) {
        0 | 1 => png_bytes(rng),
        2 => {
            let full = png_bytes(rng);
            let cut = rng.random_range(0..full.len());
            full[..cut].to_vec()
        }
        3 => Vec::new(),
        4 => (0..rng.random_range(1..400))
            .map(|_| rng.random())
            .collect(),
        _ => {
            // A PNG signature followed by garbage.
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            b.extend((0..rng.random_range(0..64)).map(|_| rng.random::<u8>()));
            b
        }
    };
    std::fs::write(path, bytes).unwrap();
}

/// A random tree under `root`; the folders made, `root` first.
fn random_tree(rng: &mut ChaCha8Rng, root: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(root).unwrap();
    let mut dirs = vec![root.to_path_buf()];
    for d in 0..rng.random_range(0..5) {
        let parent = dirs[rng.random_range(0..dirs.len())].clone();
        let dir = parent.join(format!("class {d}"));
        std::fs::create_dir_all(&dir).unwrap();
        dirs.push(dir);
    }
    let mut made = 0;
    for dir in dirs.clone() {
        for _ in 0..rng.random_range(0..6) {
            random_file(rng, &dir, made);
            made += 1;
        }
    }
    for l in 0..rng.random_range(0..3) {
        let dir = &dirs[rng.random_range(0..dirs.len())];
        let link = dir.join(format!("link{l}.png"));
        let to = match rng.random_range(0..3) {
            0 => root.to_path_buf(),    // a loop
            1 => root.join("gone.png"), // dangling
            _ => dirs[rng.random_range(0..dirs.len())].clone(),
        };
        std::os::unix::fs::symlink(to, link).unwrap();
    }
    dirs
}

#[test]
fn random_folders_load_or_fail_clearly_and_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (mut loaded, mut refused) = (0, 0);
    for case in 0..40 {
        let root = tmp.path().join(format!("case{case}"));
        random_tree(&mut rng, &root);
        let opts = LoadOptions {
            role: "source".into(),
            shape: SampleShape::Image {
                channels: if rng.random() { 1 } else { 3 },
                height: 8,
                width: 8,
            },
            allow_flat: rng.random(),
        };
        let result = std::panic::catch_unwind(|| load_domain_folder(&root, &opts, &mut |_| {}));
        match result.unwrap_or_else(|_| panic!("loading case {case} panicked: {}", root.display()))
        {
            Ok(domain) => {
                loaded += 1;
                assert!(!domain.is_empty(), "case {case}: Ok with no images");
                assert_eq!(domain.x.len(), domain.len() * opts.shape.len());
                for s in &domain.skipped {
                    assert!(
                        !s.reason.is_empty(),
                        "case {case}: {} skipped without a reason",
                        s.path.display()
                    );
                }
            }
            Err(e) => {
                refused += 1;
                let message = e.to_string();
                assert!(
                    message.contains("source") && message.len() < 2000,
                    "case {case}: unclear error: {message}"
                );
            }
        }
    }
    // The seed gives both kinds of answer.
    assert!(
        loaded > 0 && refused > 0,
        "{loaded} loaded, {refused} refused"
    );
}
