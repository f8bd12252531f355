//! The settings of a run as people name them: each has its command-line flag and its label
//! in the app. Problems with settings ([`Invalid`]) are text with the settings' names left
//! as [`Setting`]s, so each front end words them its own way (`--epochs` on the command
//! line, "Epochs" in the app) and no message is rewritten after the fact.

use std::fmt;

/// A setting of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    Demo,
    Source,
    Target,
    Method,
    Backbone,
    InputSize,
    Channels,
    Freeze,
    Epochs,
    BatchSize,
    LearningRate,
    TargetLabels,
    Lambda,
    Bottleneck,
    ValFraction,
    Init,
    Teacher,
    SelectBy,
    Labels,
    TaskWeights,
    Attributes,
    Unseen,
    Via,
    SteppingStones,
    Layer,
    /// A method's hyperparameter other than λ (`--param KEY=VALUE`).
    Param,
}

impl Setting {
    /// The command-line flag.
    pub fn flag(self) -> &'static str {
        self.names().0
    }

    /// The name in the app (lower case where it stands inside a sentence).
    pub fn label(self) -> &'static str {
        self.names().1
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Setting::Demo => ("--demo", "the demo"),
            Setting::Source => ("--source", "the source folder"),
            Setting::Target => ("--target", "the target folder"),
            Setting::Method => ("--method", "Method"),
            Setting::Backbone => ("--backbone", "Backbone"),
            Setting::InputSize => ("--input-size", "Image size"),
            Setting::Channels => ("--channels", "Channels"),
            Setting::Freeze => ("--freeze", "Frozen stages"),
            Setting::Epochs => ("--epochs", "Epochs"),
            Setting::BatchSize => ("--batch-size", "Batch size"),
            Setting::LearningRate => ("--lr", "Learning rate"),
            Setting::TargetLabels => ("--target-labels", "\"Labelled target images per class\""),
            Setting::Lambda => ("--lambda", "λ"),
            Setting::Bottleneck => ("--bottleneck", "Adaptation layer width"),
            Setting::ValFraction => ("--val-fraction", "Held-out source"),
            Setting::Init => ("--init", "the starting model"),
            Setting::Teacher => ("--teacher", "Teacher"),
            Setting::SelectBy => ("--select-by", "\"Keep the epoch\""),
            Setting::Labels => ("--labels", "a labels CSV"),
            Setting::TaskWeights => ("--task-weights", "the task weights"),
            Setting::Attributes => ("--attributes", "an attributes CSV"),
            Setting::Unseen => ("--unseen", "the unseen classes"),
            Setting::Via => ("--via", "an intermediate folder"),
            Setting::SteppingStones => ("--stepping-stones", "Stepping stones"),
            Setting::Layer => ("--layer", "Layer"),
            Setting::Param => ("--param", "Setting"),
        }
    }
}

/// Who reads a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The command line: settings by their flags.
    Cli,
    /// The app: settings by their labels.
    App,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Name(Setting),
}

/// A problem with a run's settings: text and setting names, worded by each front end.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    parts: Vec<Part>,
}

impl Invalid {
    /// A message that starts with `setting`'s name, followed by `rest`.
    pub fn setting(setting: Setting, rest: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Name(setting), Part::Text(rest.into())],
        }
    }

    /// A message that starts with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Text(text.into())],
        }
    }

    /// Append a setting's name.
    pub fn name(mut self, setting: Setting) -> Self {
        self.parts.push(Part::Name(setting));
        self
    }

    /// Append text.
    pub fn then(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// The settings the message names, in order.
    pub fn settings(&self) -> Vec<Setting> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Name(s) => Some(*s),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The message in `audience`'s words (a sentence: the app's starts with a capital).
    pub fn words(&self, audience: Audience) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match (p, audience) {
                (Part::Text(t), _) => out.push_str(t),
                (Part::Name(s), Audience::Cli) => out.push_str(s.flag()),
                (Part::Name(s), Audience::App) => out.push_str(s.label()),
            }
        }
        if audience == Audience::App {
            let mut chars = out.chars();
            if let Some(first) = chars.next() {
                return first.to_uppercase().chain(chars).collect();
            }
        }
        out
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words(Audience::Cli))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_front_end_names_the_setting_its_own_way() {
        let m = Invalid::text("target-only trains on labelled target images: set ")
            .name(Setting::TargetLabels)
            .then(" to 1 or more");
        assert_eq!(
            m.words(Audience::Cli),
            "target-only trains on labelled target images: set --target-labels to 1 or more"
        );
        let app = m.words(Audience::App);
        assert!(app.starts_with("Target-only"), "{app}");
        assert!(app.contains("Labelled target images per class"), "{app}");
        assert!(!app.contains("--"), "{app}");
        assert_eq!(m.settings(), vec![Setting::TargetLabels]);
    }
}
