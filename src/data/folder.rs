//! Reading an image folder into a [`Domain`]: ImageFolder layout (one subfolder per class)
//! or a flat folder (unlabeled), decoded in parallel, converted to the model's channels and
//! size. Bad files are skipped with a reason; a decoder panic is caught and becomes a
//! skipped file; huge images are refused before they are decoded.

use super::{DataError, Domain, SampleShape, SkippedFile};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File extensions treated as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// Largest width or height accepted before decoding (larger files are skipped).
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Most memory one image may take while it is decoded (the image crate's default).
pub const DECODE_MEMORY_LIMIT: u64 = 512 << 20;

/// Progress of a folder load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadProgress {
    pub done: usize,
    pub total: usize,
}

/// How to read a folder.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// "source" or "target": used in messages.
    pub role: String,
    /// Output channels (1 = gray, 3 = RGB) and size.
    pub shape: SampleShape,
    /// When false, class subfolders are required (a source domain).
    pub allow_flat: bool,
}

/// The files found in a folder, before decoding.
#[derive(Clone, Debug, Default)]
pub struct FolderScan {
    /// Class name and its image files, sorted by class name then path.
    pub classes: Vec<(String, Vec<PathBuf>)>,
    /// Images directly in the folder (a flat, unlabeled folder).
    pub flat: Vec<PathBuf>,
    /// Files that are not images by their extension.
    pub skipped: Vec<SkippedFile>,
    /// Class subfolders that could not be listed (permissions): not classes at all.
    pub unlisted: Vec<UnlistedClass>,
    pub warnings: Vec<String>,
}

/// A class subfolder that could not be listed.
#[derive(Clone, Debug)]
pub struct UnlistedClass {
    pub class: String,
    /// Why, in a few words ("permission denied").
    pub reason: String,
    pub path: PathBuf,
}

/// "'b' (permission denied), 'c' (…)", for messages.
pub fn describe_unlisted(unlisted: &[UnlistedClass]) -> String {
    unlisted
        .iter()
        .map(|u| format!("'{}' ({})", u.class, u.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

impl FolderScan {
    /// True when the folder is laid out as class subfolders.
    pub fn is_labelled(&self) -> bool {
        !self.classes.is_empty()
    }

    /// Total number of image files found.
    pub fn image_count(&self) -> usize {
        if self.is_labelled() {
            self.classes.iter().map(|(_, f)| f.len()).sum()
        } else {
            self.flat.len()
        }
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// True for the file names the loaders read as images.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Check that `path` is a readable folder.
pub fn check_folder(role: &str, path: &Path) -> Result<(), DataError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::NotFound {
            role: role.to_string(),
            path: path.to_path_buf(),
        },
        _ => DataError::Unreadable {
            role: role.to_string(),
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_dir() {
        return Err(DataError::NotAFolder {
            role: role.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// How much of a tree a folder scan walks before it stops: a scan of `/` or a home folder
/// answers in seconds instead of walking half a million files.
#[derive(Clone, Copy, Debug)]
pub struct ScanLimits {
    /// Entries (files and folders) looked at.
    pub entries: usize,
    pub time: std::time::Duration,
}

impl Default for ScanLimits {
    fn default() -> Self {
        Self {
            entries: 200_000,
            time: std::time::Duration::from_secs(10),
        }
    }
}

/// List the images of a folder without decoding them.
pub fn scan_folder(role: &str, path: &Path) -> Result<FolderScan, DataError> {
    scan_folder_limited(role, path, ScanLimits::default())
}

/// [`scan_folder`] within `limits`: past them the scan stops with an error saying what
/// it had found.
pub fn scan_folder_limited(
    role: &str,
    path: &Path,
    limits: ScanLimits,
) -> Result<FolderScan, DataError> {
    check_folder(role, path)?;
    let start = std::time::Instant::now();
    let mut entries = 0usize;
    let mut over = |scan: &FolderScan, files: usize| -> Result<(), DataError> {
        entries += 1;
        let out_of_time = entries.is_multiple_of(256) && start.elapsed() > limits.time;
        if entries <= limits.entries && !out_of_time {
            return Ok(());
        }
        Err(DataError::ScanStopped {
            role: role.to_string(),
            path: path.to_path_buf(),
            found: format!(
                "{} entries looked at in {:.1} s, {} image(s) in {} class folder(s) so far",
                entries,
                start.elapsed().as_secs_f64(),
                scan.classes.iter().map(|(_, f)| f.len()).sum::<usize>() + files,
                scan.classes.len()
            ),
            limit: format!(
                "{} entries or {} s",
                limits.entries,
                limits.time.as_secs_f64()
            ),
        })
    };
    let unreadable = |e: std::io::Error| DataError::Unreadable {
        role: role.to_string(),
        path: path.to_path_buf(),
        source: e,
    };
    let mut scan = FolderScan::default();
    let mut subdirs = Vec::new();
    let mut loose = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        over(&scan, 0)?;
        let p = entry.path();
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            subdirs.push(p);
        } else if has_image_extension(&p) {
            loose.push(p);
        } else {
            scan.skipped.push(SkippedFile {
                path: p,
                reason: "not an image (unknown extension)".into(),
            });
        }
    }
    subdirs.sort();
    loose.sort();
    for dir in subdirs {
        let class = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = Vec::new();
        let mut listed = true;
        // Symlinks are followed (to files and folders); walkdir refuses a link back to
        // a folder it is inside, so a loop is one skipped entry, not an endless walk.
        for entry in walkdir::WalkDir::new(&dir)
            .follow_links(true)
            .sort_by_file_name()
        {
            over(&scan, files.len())?;
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.depth() == 0 => {
                    listed = false;
                    scan.unlisted.push(UnlistedClass {
                        class: class.clone(),
                        reason: e
                            .io_error()
                            .map(|io| io.kind().to_string())
                            .unwrap_or_else(|| e.to_string()),
                        path: dir.clone(),
                    });
                    break;
                }
                Err(e) => {
                    let reason = if e.loop_ancestor().is_some() {
                        "a symbolic link back to a folder it is in (a loop): not followed".into()
                    } else {
                        format!("cannot read: {e}")
                    };
                    scan.skipped.push(SkippedFile {
                        path: e.path().map(Path::to_path_buf).unwrap_or(dir.clone()),
                        reason,
                    });
                    continue;
                }
            };
            let p = entry.path();
            if !entry.file_type().is_file() || is_hidden(p) {
                continue;
            }
            if has_image_extension(p) {
                files.push(p.to_path_buf());
            } else {
                scan.skipped.push(SkippedFile {
                    path: p.to_path_buf(),
                    reason: "not an image (unknown extension)".into(),
                });
            }
        }
        if !listed {
            continue;
        }
        if files.is_empty() {
            scan.warnings.push(format!(
                "class '{class}' in the {role} folder has no images and is ignored"
            ));
        } else {
            scan.classes.push((class, files));
        }
    }
    if !scan.unlisted.is_empty() {
        scan.warnings.push(format!(
            "{} class folder(s) in the {role} folder cannot be listed and are ignored ({}): check their permissions",
            scan.unlisted.len(),
            describe_unlisted(&scan.unlisted)
        ));
    }
    if scan.classes.is_empty() {
        if let Some(u) = scan.unlisted.first() {
            return Err(DataError::Invalid(format!(
                "no class folder of the {role} folder can be listed ({}): check their permissions: {}",
                describe_unlisted(&scan.unlisted),
                u.path.display()
            )));
        }
        scan.flat = loose;
    } else if !loose.is_empty() {
        scan.warnings.push(format!(
            "{} image(s) directly in the {role} folder are ignored: images belong in class subfolders",
            loose.len()
        ));
    }
    if scan.image_count() == 0 {
        return Err(DataError::Empty {
            role: role.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(scan)
}

/// Decode one file to `shape` (values in [0, 1]); a reason on failure.
pub fn decode_image(path: &Path, shape: SampleShape) -> Result<Vec<f32>, String> {
    let SampleShape::Image {
        channels,
        height,
        width,
    } = shape
    else {
        return Err("images need an image-shaped model input".into());
    };
    Ok(image_to_values(
        &decode_checked(path)?,
        channels,
        height,
        width,
    ))
}

/// Decode one image file with size limits, a decoder panic turned into an error; a reason
/// on failure.
pub fn decode_checked(path: &Path) -> Result<image::DynamicImage, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() == 0 {
        return Err("empty file (0 bytes)".into());
    }
    let reader = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image (unrecognised content)".into());
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("corrupt or truncated image: {e}"))?;
    if w == 0 || h == 0 {
        return Err("image has zero size".into());
    }
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
        return Err(format!(
            "image too large ({w}×{h}; the limit is {MAX_IMAGE_SIDE} per side)"
        ));
    }
    // Decoders have open panic reports: a panic becomes a skipped file, not a crash.
    let decoded = std::panic::catch_unwind(|| -> Result<image::DynamicImage, String> {
        let mut reader = image::ImageReader::open(path)
            .map_err(|e| format!("cannot open: {e}"))?
            .with_guessed_format()
            .map_err(|e| format!("cannot read: {e}"))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(DECODE_MEMORY_LIMIT);
        reader.limits(limits);
        reader.decode().map_err(|e| match e {
            // A valid image too big to decode within the memory limit is not corrupt.
            image::ImageError::Limits(_) => format!(
                "image too large to decode ({w}×{h} = {:.0} megapixels exceeds the decoder's memory limit of {} MiB)",
                w as f64 * h as f64 / 1e6,
                DECODE_MEMORY_LIMIT >> 20
            ),
            e => format!("corrupt or truncated image: {e}"),
        })
    })
    .map_err(|_| "the image decoder crashed on this file".to_string())??;
    Ok(decoded)
}

/// Convert a decoded image to `channels×height×width` values in [0, 1].
pub fn image_to_values(
    img: &image::DynamicImage,
    channels: usize,
    height: usize,
    width: usize,
) -> Vec<f32> {
    let (w, h) = (width as u32, height as u32);
    let filter = if img.width() > 2 * w || img.height() > 2 * h {
        FilterType::Triangle
    } else {
        FilterType::CatmullRom
    };
    if channels == 1 {
        let g = img.to_luma8();
        let g = if g.dimensions() == (w, h) {
            g
        } else {
            image::imageops::resize(&g, w, h, filter)
        };
        g.as_raw().iter().map(|&v| v as f32 / 255.0).collect()
    } else {
        let rgb = img.to_rgb8();
        let rgb = if rgb.dimensions() == (w, h) {
            rgb
        } else {
            image::imageops::resize(&rgb, w, h, filter)
        };
        let plane = (w * h) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = px.0[c] as f32 / 255.0;
            }
        }
        out
    }
}

/// Guess whether a folder holds colour images by looking at a few files.
pub fn looks_colour(scan: &FolderScan) -> bool {
    let files: Vec<&PathBuf> = if scan.is_labelled() {
        scan.classes
            .iter()
            .flat_map(|(_, f)| f.iter().take(3))
            .collect()
    } else {
        scan.flat.iter().take(20).collect()
    };
    files.into_iter().take(30).any(|p| {
        image::ImageReader::open(p)
            .ok()
            .and_then(|r| r.with_guessed_format().ok())
            .and_then(|r| r.into_decoder().ok())
            .is_some_and(|d| {
                use image::ImageDecoder;
                !matches!(
                    d.color_type(),
                    image::ColorType::L8
                        | image::ColorType::La8
                        | image::ColorType::L16
                        | image::ColorType::La16
                )
            })
    })
}

/// Decode a scanned folder into a domain, in parallel, reporting progress every chunk.
pub fn decode_scan(
    scan: &FolderScan,
    path: &Path,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Domain, DataError> {
    if !scan.is_labelled() && !opts.allow_flat {
        return Err(DataError::NoClasses {
            role: opts.role.clone(),
            path: path.to_path_buf(),
        });
    }
    let class_names: Vec<String> = scan.classes.iter().map(|(c, _)| c.clone()).collect();
    let items: Vec<(Option<u32>, &PathBuf)> = if scan.is_labelled() {
        scan.classes
            .iter()
            .enumerate()
            .flat_map(|(ci, (_, files))| files.iter().map(move |f| (Some(ci as u32), f)))
            .collect()
    } else {
        scan.flat.iter().map(|f| (None, f)).collect()
    };
    let total = items.len();
    let d = opts.shape.len();
    let mut x = Vec::with_capacity(total * d);
    let mut labels = Vec::with_capacity(total);
    let mut files = Vec::with_capacity(total);
    let mut skipped = scan.skipped.clone();
    progress(LoadProgress { done: 0, total });
    let chunk = 512;
    for (ci, part) in items.chunks(chunk).enumerate() {
        let decoded: Vec<Result<Vec<f32>, String>> = part
            .par_iter()
            .map(|(_, p)| decode_image(p, opts.shape))
            .collect();
        for ((label, p), r) in part.iter().zip(decoded) {
            match r {
                Ok(v) => {
                    x.extend_from_slice(&v);
                    if let Some(l) = label {
                        labels.push(*l);
                    }
                    files.push(p.display().to_string());
                }
                Err(reason) => skipped.push(SkippedFile {
                    path: (*p).clone(),
                    reason,
                }),
            }
        }
        progress(LoadProgress {
            done: (ci * chunk + part.len()).min(total),
            total,
        });
    }
    if files.is_empty() {
        return Err(DataError::NothingDecoded {
            role: opts.role.clone(),
            skipped: skipped.len(),
            example: skipped
                .first()
                .map(|s| format!("{}: {}", s.path.display(), s.reason))
                .unwrap_or_default(),
            path: path.to_path_buf(),
        });
    }
    let mut warnings = scan.warnings.clone();
    let labels = if scan.is_labelled() {
        // A class whose every file failed to decode is gone; say so.
        let mut counts = vec![0usize; class_names.len()];
        for &l in &labels {
            counts[l as usize] += 1;
        }
        for (name, _) in class_names.iter().zip(&counts).filter(|(_, c)| **c == 0) {
            warnings.push(format!(
                "class '{name}' in the {} folder has no readable images",
                opts.role
            ));
        }
        Some(labels)
    } else {
        None
    };
    Ok(Domain {
        name: opts.role.clone(),
        shape: opts.shape,
        x,
        labels,
        class_names,
        files,
        skipped,
        warnings,
    })
}

/// Scan and decode a folder.
pub fn load_domain_folder(
    path: &Path,
    opts: &LoadOptions,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Domain, DataError> {
    let scan = scan_folder(&opts.role, path)?;
    decode_scan(&scan, path, opts, progress)
}
