//! The two tables that describe images beyond one class folder: a labels CSV (one row per
//! file, one column per task: multitask learning) and an attribute CSV (one row per
//! class, one column per attribute: zero-shot learning). Every error names the file, the
//! line and, where it helps, the column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A table that cannot be used, with the line (1-based, the header is line 1) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}, line {line}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Table { path: PathBuf, message: String },
}

/// One task of a labels table: its name (the column header) and its classes (the values
/// seen in its column, sorted).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub classes: Vec<String>,
}

/// A parsed labels CSV: `file,task1,task2,…`; an empty cell means "no label for this task".
#[derive(Clone, Debug, PartialEq)]
pub struct LabelTable {
    pub tasks: Vec<TaskInfo>,
    /// Per row: the file as written, its line, and per task the class index (None: empty).
    pub rows: Vec<LabelRow>,
}

/// One row of a labels table.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelRow {
    pub file: String,
    pub line: usize,
    pub labels: Vec<Option<u32>>,
}

/// A table's header and its records, each with its 1-based line number.
type Records = (Vec<String>, Vec<(usize, Vec<String>)>);

fn read_records(path: &Path) -> Result<Records, TableError> {
    let read = |message: String| TableError::Read {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| TableError::Row {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let cells: Vec<String> = rec.iter().map(str::to_string).collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        records.push((rec.position().map_or(i + 1, |p| p.line() as usize), cells));
    }
    if records.is_empty() {
        return Err(read("the file is empty".into()));
    }
    let (_, header) = records.remove(0);
    Ok((header, records))
}

/// A problem with the table as a whole.
fn table_error(path: &Path, message: String) -> TableError {
    TableError::Table {
        path: path.to_path_buf(),
        message,
    }
}

/// Read a table whose header must hold `columns` (a key column and at least one more).
fn read_table(path: &Path, columns: &str) -> Result<Records, TableError> {
    let (header, records) = read_records(path)?;
    if header.len() < 2 {
        return Err(table_error(
            path,
            format!("the header needs {columns}, got '{}'", header.join(",")),
        ));
    }
    Ok((header, records))
}

/// Check a data row has as many cells as the header.
fn check_width(
    path: &Path,
    line: usize,
    cells: &[String],
    header: &[String],
) -> Result<(), TableError> {
    if cells.len() != header.len() {
        return Err(TableError::Row {
            path: path.to_path_buf(),
            line,
            message: format!(
                "{} column(s), but the header has {} ({})",
                cells.len(),
                header.len(),
                header.join(", ")
            ),
        });
    }
    Ok(())
}

/// Read a labels CSV. The first column holds the file (relative to the image folder, or
/// absolute); every other column is a task.
pub fn read_label_table(path: &Path) -> Result<LabelTable, TableError> {
    let (header, records) = read_table(path, "a file column and at least one task column")?;
    let table_err = |message: String| table_error(path, message);
    if let Some(empty) = header.iter().position(String::is_empty) {
        return Err(table_err(format!(
            "column {} of the header has no name",
            empty + 1
        )));
    }
    let mut seen_names = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        if let Some(j) = seen_names.insert(h.as_str(), i) {
            return Err(table_err(format!(
                "columns {} and {} are both named '{h}'",
                j + 1,
                i + 1
            )));
        }
    }
    let n_tasks = header.len() - 1;
    let mut values: Vec<Vec<String>> = vec![Vec::new(); n_tasks];
    let mut seen_files: HashMap<String, usize> = HashMap::new();
    for (line, cells) in &records {
        check_width(path, *line, cells, &header)?;
        if cells[0].is_empty() {
            return Err(TableError::Row {
                path: path.to_path_buf(),
                line: *line,
                message: "the file column is empty".into(),
            });
        }
        if let Some(first) = seen_files.insert(normalise_file(&cells[0]), *line) {
            return Err(TableError::Row {
                path: path.to_path_buf(),
                line: *line,
                message: format!("'{}' is listed twice (first on line {first})", cells[0]),
            });
        }
        for (t, v) in cells[1..].iter().enumerate() {
            if !v.is_empty() {
                values[t].push(v.clone());
            }
        }
    }
    if records.is_empty() {
        return Err(table_err("the table has a header but no rows".into()));
    }
    let tasks: Vec<TaskInfo> = header[1..]
        .iter()
        .zip(values)
        .map(|(name, mut v)| {
            v.sort();
            v.dedup();
            TaskInfo {
                name: name.clone(),
                classes: v,
            }
        })
        .collect();
    let rows = records
        .into_iter()
        .map(|(line, cells)| LabelRow {
            file: cells[0].clone(),
            line,
            labels: cells[1..]
                .iter()
                .zip(&tasks)
                .map(|(v, t)| {
                    (!v.is_empty()).then(|| t.classes.binary_search(v).expect("collected") as u32)
                })
                .collect(),
        })
        .collect();
    Ok(LabelTable { tasks, rows })
}

/// A file name as a lookup key: forward slashes, no leading `./`.
pub fn normalise_file(file: &str) -> String {
    let f = file.replace('\\', "/");
    f.trim_start_matches("./").to_string()
}

/// A parsed attribute CSV: `class,attr1,attr2,…`, one row per class.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttributeTable {
    pub attributes: Vec<String>,
    pub classes: Vec<String>,
    /// Per class, its signature with every attribute scaled to [0, 1] (0/1 attributes are
    /// kept as they are; a real-valued column is min-max scaled over the classes).
    pub signatures: Vec<Vec<f32>>,
    /// The line of each class's row.
    #[serde(skip)]
    pub lines: Vec<usize>,
}

impl AttributeTable {
    /// The row index of a class.
    pub fn find(&self, class: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == class)
    }

    /// True when every value of attribute `a` is 0 or 1.
    pub fn is_binary(&self, a: usize) -> bool {
        self.signatures.iter().all(|s| s[a] == 0.0 || s[a] == 1.0)
    }
}

/// Read an attribute CSV.
pub fn read_attribute_table(path: &Path) -> Result<AttributeTable, TableError> {
    let (header, records) = read_table(path, "a class column and at least one attribute column")?;
    let table_err = |message: String| table_error(path, message);
    if records.is_empty() {
        return Err(table_err("the table has a header but no rows".into()));
    }
    let mut classes = Vec::new();
    let mut lines = Vec::new();
    let mut raw: Vec<Vec<f32>> = Vec::new();
    for (line, cells) in &records {
        check_width(path, *line, cells, &header)?;
        let row_err = |message: String| TableError::Row {
            path: path.to_path_buf(),
            line: *line,
            message,
        };
        if cells[0].is_empty() {
            return Err(row_err("the class column is empty".into()));
        }
        if let Some(i) = classes.iter().position(|c| c == &cells[0]) {
            return Err(row_err(format!(
                "class '{}' is listed twice (first on line {})",
                cells[0], lines[i]
            )));
        }
        let values = cells[1..]
            .iter()
            .zip(&header[1..])
            .map(|(v, name)| match v.parse::<f32>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(row_err(format!(
                    "attribute '{name}' of class '{}' is '{v}', not a number",
                    cells[0]
                ))),
            })
            .collect::<Result<Vec<f32>, _>>()?;
        classes.push(cells[0].clone());
        lines.push(*line);
        raw.push(values);
    }
    let n_attr = header.len() - 1;
    for a in 0..n_attr {
        let column: Vec<f32> = raw.iter().map(|r| r[a]).collect();
        if column.iter().all(|&v| v == 0.0 || v == 1.0) {
            continue;
        }
        let (lo, hi) = column
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        for r in raw.iter_mut() {
            r[a] = if hi > lo {
                (r[a] - lo) / (hi - lo)
            } else {
                0.5
            };
        }
    }
    Ok(AttributeTable {
        attributes: header[1..].to_vec(),
        classes,
        signatures: raw,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn labels_parse_with_empty_cells_and_bad_rows_name_their_line() {
        let (_d, p) =
            write("file,shape,colour\na.png,circle,red\n./b.png,square,\nc.png,circle,blue\n");
        let t = read_label_table(&p).unwrap();
        assert_eq!(t.tasks[0].classes, ["circle", "square"]);
        assert_eq!(t.tasks[1].classes, ["blue", "red"]);
        assert_eq!(t.rows[1].labels, [Some(1), None]);
        assert_eq!(t.rows[2].line, 4);
        let (_d, p) = write("file,shape,colour\na.png,circle,red\nb.png,square\n");
        let e = read_label_table(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("2 column(s)"), "{e}");
        let (_d, p) = write("file,shape\na.png,circle\na.png,square\n");
        let e = read_label_table(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("twice"), "{e}");
        let (_d, p) = write("file\na.png\n");
        assert!(
            read_label_table(&p)
                .unwrap_err()
                .to_string()
                .contains("task column")
        );
    }

    #[test]
    fn attributes_scale_real_columns_and_reject_text() {
        let (_d, p) = write("class,striped,size\nzebra,1,300\ncat,0,4\nmouse,0,0.02\n");
        let t = read_attribute_table(&p).unwrap();
        assert!(t.is_binary(0) && !t.is_binary(1));
        assert_eq!(t.signatures[0], [1.0, 1.0]);
        assert_eq!(t.signatures[2], [0.0, 0.0]);
        assert_eq!(t.lines, [2, 3, 4]);
        let (_d, p) = write("class,striped\nzebra,yes\n");
        let e = read_attribute_table(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("'yes'"), "{e}");
    }
}
