//! Every file the program writes goes through here. Output paths are checked before any
//! work starts (a run's results are never thrown away because its report cannot be
//! written), an output is never one of the run's inputs, and each file is written to a
//! temporary file in the same folder, flushed to disk and renamed over the old one, so a
//! crash or a full disk leaves either the old file or the new one, never a partial one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an output cannot be written. The path comes last, as in the other errors.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {what} ({source}): {path}")]
    Io {
        what: String,
        source: std::io::Error,
        path: PathBuf,
    },
    #[error("{what} would replace something that is not a regular file: {path}")]
    NotAFile { what: String, path: PathBuf },
    #[error("{what} would overwrite {input}, one of the run's inputs: {path}")]
    IsInput {
        what: String,
        input: String,
        path: PathBuf,
    },
    #[error("{first} and {second} would be written to the same file: {path}")]
    Clash {
        first: String,
        second: String,
        path: PathBuf,
    },
}

/// A file the run reads (`what` names it for messages: "the --init model").
#[derive(Clone, Debug)]
pub struct Input {
    pub what: String,
    pub path: PathBuf,
}

/// A file the run writes.
#[derive(Clone, Debug)]
pub struct Output {
    pub what: String,
    pub path: PathBuf,
}

impl Input {
    pub fn new(what: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            what: what.into(),
            path: path.into(),
        }
    }
}

impl Output {
    pub fn new(what: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            what: what.into(),
            path: path.into(),
        }
    }
}

/// The absolute, symlink-free form of `path`, also for a file that does not exist yet
/// (its folder is resolved and the name appended).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => canonical(dir).join(name),
        _ => absolute,
    }
}

/// Refuse any output that is one of the inputs (the same file, or for an input folder an
/// existing file or an image name inside it), the running program, or another output.
pub fn check_overlap(inputs: &[Input], outputs: &[Output]) -> Result<(), OutputError> {
    let mut inputs: Vec<(String, PathBuf)> = inputs
        .iter()
        .map(|i| (i.what.clone(), canonical(&i.path)))
        .collect();
    if let Ok(exe) = std::env::current_exe() {
        inputs.push(("the transferlab program".into(), canonical(&exe)));
    }
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    for out in outputs {
        let path = canonical(&out.path);
        for (what, input) in &inputs {
            let inside = input.is_dir()
                && path.starts_with(input)
                && (path.exists() || crate::data::folder::has_image_extension(&path));
            if path == *input || inside {
                return Err(OutputError::IsInput {
                    what: out.what.clone(),
                    input: format!("{what} ({})", input.display()),
                    path: out.path.clone(),
                });
            }
        }
        if let Some((first, _)) = seen.iter().find(|(_, p)| *p == path) {
            return Err(OutputError::Clash {
                first: (*first).to_string(),
                second: out.what.clone(),
                path: out.path.clone(),
            });
        }
        seen.push((&out.what, path));
    }
    Ok(())
}

/// Check, before any work, that `out` can be written: its folder exists or is created
/// (as saving does), it is not a folder or a device, and the folder takes a new file.
pub fn check_writable(out: &Output) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        what: out.what.clone(),
        source,
        path: out.path.clone(),
    };
    refuse_special(out)?;
    let dir = parent(&out.path);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let probe = temp_path(&out.path);
    std::fs::File::create(&probe).map_err(io)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Check every output: no overlap with the inputs or each other, each writable.
pub fn check_all(inputs: &[Input], outputs: &[Output]) -> Result<(), OutputError> {
    check_overlap(inputs, outputs)?;
    outputs.iter().try_for_each(check_writable)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn refuse_special(out: &Output) -> Result<(), OutputError> {
    match std::fs::metadata(&out.path) {
        Ok(m) if !m.is_file() => Err(OutputError::NotAFile {
            what: out.what.clone(),
            path: out.path.clone(),
        }),
        _ => Ok(()),
    }
}

/// A temporary name beside `path`, unique within this process and across processes.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Write `bytes` to `path` through a temporary file in the same folder (flushed to disk,
/// then renamed). The folder is created; a folder or device at `path` is refused.
pub fn write_atomic(what: &str, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let out = Output::new(what, path);
    refuse_special(&out)?;
    let io = |source| OutputError::Io {
        what: what.to_string(),
        source,
        path: path.to_path_buf(),
    };
    let dir = parent(path);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    // The rename itself reaches the disk with the folder's entry; best effort.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Write `value` as pretty JSON (with a final newline) through [`write_atomic`].
pub fn write_json<T: serde::Serialize>(
    what: &str,
    path: &Path,
    value: &T,
) -> Result<(), OutputError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| OutputError::Io {
        what: what.to_string(),
        source: std::io::Error::other(e),
        path: path.to_path_buf(),
    })? + "\n";
    write_atomic(what, path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_onto_an_input_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels.csv");
        std::fs::write(&labels, "file,a\n").unwrap();
        let err = check_overlap(
            &[Input::new("the --labels CSV", &labels)],
            &[Output::new(
                "the --json report",
                dir.path().join("./labels.csv"),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--json report") && err.contains("--labels CSV"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&labels).unwrap(), "file,a\n");
    }

    #[test]
    fn an_image_inside_an_input_folder_is_refused_a_new_report_beside_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("target");
        std::fs::create_dir_all(folder.join("a")).unwrap();
        std::fs::write(folder.join("a/x.png"), b"png").unwrap();
        let inputs = [Input::new("the --target folder", &folder)];
        assert!(check_overlap(&inputs, &[Output::new("p", folder.join("a/x.png"))]).is_err());
        assert!(check_overlap(&inputs, &[Output::new("p", folder.join("new.png"))]).is_err());
        assert!(check_overlap(&inputs, &[Output::new("p", dir.path().join("r.json"))]).is_ok());
    }

    #[test]
    fn two_outputs_on_one_file_clash() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_overlap(
            &[],
            &[
                Output::new("the model's sidecar", dir.path().join("m.json")),
                Output::new("the --json report", dir.path().join("m.json")),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sidecar") && err.contains("--json"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_whole_files_creates_folders_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/report.json");
        write_atomic("the report", &path, b"old").unwrap();
        write_atomic("the report", &path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }

    #[test]
    fn a_folder_or_device_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic("the report", dir.path(), b"x").unwrap_err();
        assert!(matches!(err, OutputError::NotAFile { .. }), "{err}");
        assert!(dir.path().is_dir());
        #[cfg(unix)]
        {
            let err = check_writable(&Output::new("--save", "/dev/null")).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_folder_is_found_before_the_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permissions; the check is only meaningful for other users.
        let root = std::fs::File::create(ro.join("probe")).is_ok();
        let r = check_writable(&Output::new("the --json report", ro.join("r.json")));
        assert_eq!(r.is_ok(), root, "{r:?}");
        let _ = std::fs::remove_file(ro.join("probe"));
    }
}
