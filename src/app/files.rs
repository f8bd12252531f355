//! Paths typed, chosen or dropped: an editable path field validated as you type (a cheap
//! `metadata` check at once, a folder scan in the background after a pause), and the
//! native folder/file dialogs run off the UI thread. The field always works, even where
//! no dialog can open (no desktop portal: the dialog returns nothing, as if cancelled).

use super::jobs::{Job, block_on, take_finished};
use crate::data::folder::{check_folder, scan_folder};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Pause after the last keystroke before the folder is scanned.
const DEBOUNCE: Duration = Duration::from_millis(350);
/// A dialog that answers faster than this most likely could not open at all.
const INSTANT_ANSWER: Duration = Duration::from_millis(400);

/// What the scan of a folder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderSummary {
    pub images: usize,
    /// Class subfolders (0 = a flat, unlabeled folder).
    pub classes: usize,
    pub skipped: usize,
}

/// The state of a path field's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldStatus {
    Empty,
    /// Waiting for the user to stop typing, or scanning.
    Checking,
    Valid(FolderSummary),
    /// What is wrong and what to do.
    Invalid(String),
}

/// An editable folder path with validation and a "Choose folder…" dialog.
pub struct PathField {
    /// "source" or "target" (used in messages).
    pub role: &'static str,
    /// Flat (unlabeled) folders allowed.
    pub allow_flat: bool,
    pub text: String,
    pub status: FieldStatus,
    edited: Option<Instant>,
    scan: Option<Job<Result<FolderSummary, String>>>,
    scan_text: String,
    dialog: Option<Job<Option<PathBuf>>>,
    /// A note from the last dialog (e.g. "no dialog available").
    pub dialog_note: Option<String>,
}

impl PathField {
    /// An empty field.
    pub fn new(role: &'static str, allow_flat: bool) -> Self {
        Self {
            role,
            allow_flat,
            text: String::new(),
            status: FieldStatus::Empty,
            edited: None,
            scan: None,
            scan_text: String::new(),
            dialog: None,
            dialog_note: None,
        }
    }

    /// Set the path (typed, dropped, chosen or restored) and validate it.
    pub fn set(&mut self, text: String) {
        self.text = text;
        self.on_edit();
        if self.status == FieldStatus::Checking {
            // A path set at once (not typed) is scanned without waiting.
            let now = Instant::now();
            self.edited = Some(now.checked_sub(DEBOUNCE).unwrap_or(now));
        }
    }

    /// True while the folder is being scanned.
    pub fn is_scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// The path, when the field is valid.
    pub fn valid_path(&self) -> Option<PathBuf> {
        matches!(self.status, FieldStatus::Valid(_)).then(|| PathBuf::from(self.text.trim()))
    }

    /// True while a dialog is open for this field.
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    fn on_edit(&mut self) {
        self.scan = None;
        let text = self.text.trim();
        if text.is_empty() {
            self.status = FieldStatus::Empty;
            self.edited = None;
            return;
        }
        // The cheap check runs at once, so a typo shows while typing.
        match check_folder(self.role, &PathBuf::from(text)) {
            Err(e) => {
                let mut message = with_advice(&e.to_string());
                if let Some(hint) = nearest_existing(&PathBuf::from(text)) {
                    message.push(' ');
                    message.push_str(&hint);
                }
                self.status = FieldStatus::Invalid(message);
                self.edited = None;
            }
            Ok(()) => {
                self.status = FieldStatus::Checking;
                self.edited = Some(Instant::now());
            }
        }
    }

    /// Open the folder dialog on a background thread.
    pub fn open_dialog(&mut self, ctx: &egui::Context) {
        if self.dialog.is_some() {
            return;
        }
        let start = PathBuf::from(self.text.trim());
        let title = format!("Choose the {} folder", self.role);
        self.dialog_note = None;
        match Job::spawn("dialog", ctx, move |_| {
            let mut d = rfd::AsyncFileDialog::new().set_title(title);
            if start.is_dir() {
                d = d.set_directory(&start);
            }
            block_on(d.pick_folder()).map(|h| h.path().to_path_buf())
        }) {
            Ok(job) => self.dialog = Some(job),
            Err(e) => self.dialog_note = Some(e),
        }
    }

    /// Advance background work; returns true when the field changed.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let mut changed = false;
        let dialog_started = self.dialog.as_ref().map(|j| j.started);
        if let Some(result) = take_finished(&mut self.dialog) {
            match result {
                Ok(Some(path)) => {
                    self.set(path.display().to_string());
                    changed = true;
                }
                Ok(None) => {
                    if dialog_started.is_some_and(|s| s.elapsed() < INSTANT_ANSWER) {
                        self.dialog_note = Some(
                            "No folder dialog could open here: type or paste the path, or drop the folder on the window."
                                .into(),
                        );
                    }
                }
                Err(e) => self.dialog_note = Some(e),
            }
        }
        if let Some(edited) = self.edited {
            let wait = DEBOUNCE.saturating_sub(edited.elapsed());
            if wait.is_zero() {
                self.edited = None;
                let text = self.text.trim().to_string();
                let (role, allow_flat) = (self.role, self.allow_flat);
                let path = PathBuf::from(&text);
                match Job::spawn("scan", ctx, move |_| scan(role, allow_flat, path)) {
                    Ok(job) => {
                        self.scan = Some(job);
                        self.scan_text = text;
                    }
                    Err(e) => self.status = FieldStatus::Invalid(e),
                }
            } else {
                ctx.request_repaint_after(wait);
            }
        }
        let scanned = self.scan_text.clone();
        if let Some(result) = take_finished(&mut self.scan)
            && scanned == self.text.trim()
        {
            self.status = match result {
                Ok(Ok(s)) => FieldStatus::Valid(s),
                Ok(Err(e)) | Err(e) => FieldStatus::Invalid(e),
            };
            changed = true;
        }
        changed
    }
}

fn scan(role: &str, allow_flat: bool, path: PathBuf) -> Result<FolderSummary, String> {
    let s = scan_folder(role, &path).map_err(|e| with_advice(&e.to_string()))?;
    if !allow_flat && !s.is_labelled() {
        return Err(format!(
            "the {role} folder has no class subfolders: put each class's images in its own subfolder (e.g. {}/cat/1.png)",
            path.display()
        ));
    }
    Ok(FolderSummary {
        images: s.image_count(),
        classes: s.classes.len(),
        skipped: s.skipped.len(),
    })
}

/// For a path that does not exist: the deepest folder above it that does, and a few of
/// its subfolders (a typo is usually in the last part). Reads at most 256 entries.
fn nearest_existing(path: &std::path::Path) -> Option<String> {
    let parent = path.ancestors().skip(1).find(|p| p.is_dir())?;
    if parent.as_os_str().is_empty() {
        return None;
    }
    let mut names: Vec<String> = std::fs::read_dir(parent)
        .ok()?
        .take(256)
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let shown = names.len().min(8);
    let more = if names.len() > shown { ", …" } else { "" };
    Some(if names.is_empty() {
        format!("({} exists but has no subfolders.)", parent.display())
    } else {
        format!(
            "({} holds: {}{more})",
            parent.display(),
            names[..shown].join(", ")
        )
    })
}

/// Add what to do to a data error message.
pub fn with_advice(message: &str) -> String {
    let message = &super::theme::plain(message);
    let advice = if message.contains("does not exist") {
        "Check the spelling, or use Choose folder… / drop the folder on the window."
    } else if message.contains("not a folder") {
        "Give the folder that holds the images (or the class subfolders), not a file."
    } else if message.contains("holds no images") {
        "Image files must end in .png, .jpg, .jpeg, .bmp, .gif or .webp."
    } else if message.contains("only one class") {
        "Add a second class subfolder: a classifier needs at least two classes."
    } else if message.contains("share no class") {
        "Name the class subfolders the same way in both folders."
    } else if message.contains("cannot read") {
        "Check the folder's permissions."
    } else {
        return message.to_string();
    };
    format!("{message} — {advice}")
}

/// Draw a path field: label, editable path, "Choose folder…", and its status below.
/// Returns true when the text was edited.
pub fn path_field_ui(
    ui: &mut egui::Ui,
    field: &mut PathField,
    label: &str,
    look: super::theme::Look,
) -> bool {
    let mut edited = false;
    ui.horizontal(|ui| {
        let l = ui.label(label);
        let button_w = 130.0;
        let w = (ui.available_width() - button_w).max(120.0);
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut field.text)
                    .desired_width(w)
                    .hint_text("/path/to/folder"),
            )
            .labelled_by(l.id);
        if r.changed() {
            field.on_edit();
            edited = true;
        }
        let open = field.dialog_open();
        let b = ui
            .add_enabled(!open, egui::Button::new("Choose folder…"))
            .on_disabled_hover_text("the folder dialog is open");
        if b.clicked() {
            field.open_dialog(ui.ctx());
        }
    });
    match &field.status {
        FieldStatus::Empty => {
            ui.weak("Type or paste a path, choose a folder, or drop one on the window.");
        }
        FieldStatus::Checking => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("checking…");
            });
        }
        FieldStatus::Valid(s) => {
            let kind = match (s.classes, field.role) {
                (0, "source") => {
                    "no class subfolders: unlabeled (only rotation-pretrain learns from such a source)".into()
                }
                (0, _) => "no class subfolders: unlabeled".into(),
                (k, _) => format!("{k} classes"),
            };
            let skipped = if s.skipped > 0 {
                let files = if s.skipped == 1 { "file" } else { "files" };
                format!(", {} {files} skipped (not images)", s.skipped)
            } else {
                String::new()
            };
            ui.colored_label(
                look.good(),
                format!("OK: {} images, {kind}{skipped}", s.images),
            );
        }
        FieldStatus::Invalid(e) => {
            ui.colored_label(look.error(), e.as_str());
        }
    }
    if let Some(note) = &field.dialog_note {
        ui.colored_label(look.warn(), note);
    }
    edited
}
