//! "What am I looking at": a short explanation for each view, in the project's own words
//! (the concepts of DESIGN.md), shown above the view when help is on.

use super::commands::View;
use egui::RichText;

/// The help text of a view: a title and a few short paragraphs.
pub fn help_text(view: View) -> (&'static str, &'static [&'static str]) {
    match view {
        View::Data => (
            "Two domains",
            &[
                "A domain is a set of images and the way they look. The source domain has plenty of labels; the target domain is the one we care about, with few or no labels.",
                "The difference in how they look is the domain shift: here you see a sample of each class from both domains, how many images each class has, and files that could not be used.",
                "The feature map on the right puts every image at a point: images that look alike land close together. When source (blue) and target (orange) sit apart, a model trained on the source will struggle on the target.",
            ],
        ),
        View::Similarity => (
            "Similarity is the core; measure it",
            &[
                "Transfer works when the domains are similar enough. These numbers measure how far apart they are: MMD² compares the two feature distributions (with a p-value: how likely such a difference is by chance), the proxy A-distance asks how well a simple classifier can tell source from target (0 = not at all, 2 = perfectly), and the CORAL distance compares how the features vary together.",
                "Colour the map by target clusters to see whether the target's images group on their own: k-means on the same features, one cluster per source class, no label used; with class folders the adjusted Rand index says how closely the clusters match them (1 = exactly, 0 = chance).",
                "Colour it by labels spreading to watch relation-based transfer: every image is joined to its nearest neighbours in both domains, and press Play to see the source's labels travel along those edges into the target, one step at a time (label propagation, the idea behind the label-propagation method).",
                "Measured on raw pixels the domains may look far apart; measured on a network's stages they may look closer or farther: early layers are general, late layers are specific.",
                "The advisor combines similarity with how many labelled target images you have into one of four cases: (a) small + similar: frozen features and a linear classifier; (b) large + similar: fine-tune everything; (c) small + different: early-layer features only, or adapt without labels; (d) large + different: fine-tune everything or retrain.",
            ],
        ),
        View::Setup => (
            "What and how to transfer",
            &[
                "The network is a row of stages. Freezing the first k stages keeps their weights: their features are reused as they are (parameter-based transfer), and only the rest trains. Freeze all stages and you have a frozen feature extractor with a new classifier.",
                "Methods are grouped by the kind of transfer: baselines (no transfer, to compare against), parameter-based (reuse weights and fine-tune), feature-based (DDC/DAN add an MMD loss on an adaptation layer, Deep CORAL aligns covariances), adversarial (DANN: the features learn to fool a domain classifier through a gradient reversal layer, the GAN idea), instance-based (source images re-weighted by how target-like they are), self-training (SHOT and MCC learn from the network's own confident target predictions), relation-based (label propagation: a nearest-neighbour graph over both domains spreads the source labels to the target; relation distillation: a teacher, e.g. the ImageNet network, hands the student which images look alike, shown as heatmaps in Compare) and unsupervised (rotation pretraining learns features from images with no label at all; start a later run from its model).",
                "Target-only trains on the few labelled target images alone: if a transfer method does worse than it, that is negative transfer.",
                "Across tasks: multitask learning trains one shared trunk with a head per task (the shape, colour and fill of the same image) and compares it with each task trained alone; zero-shot learning describes classes by attributes, learns the attributes from the seen classes and names a class never seen by its attribute signature. Both bring their own data: the built-in shapes demo, or a folder with a CSV.",
                "Stepping stones: when source and target are far apart, transfer through intermediate domains, one hop at a time; the model labels each domain it reaches before going on. The run is compared with direct transfer on the same number of epochs.",
            ],
        ),
        View::Training => (
            "Watching a model transfer",
            &[
                "The loss should fall; source accuracy shows how well the model learned the labelled domain; target accuracy shows how well that knowledge transferred.",
                "Adaptation methods add their own curves: MMD² falling means the feature distributions are being pulled together; a domain classifier's accuracy falling toward 50% means it can no longer tell the domains apart.",
                "The feature map is recomputed after every epoch from the model being trained: with a good adaptation method the blue and orange clouds move together, class by class.",
                "Multitask: one colour per task, solid when trained together, dashed when alone. Zero-shot: accuracy on the seen classes and on the unseen ones (never in training), against the grey chance line. Stepping stones: a dotted line where each hop begins; after the last hop, direct transfer on the same budget draws a curve of its own.",
            ],
        ),
        View::Compare => (
            "Did the transfer help?",
            &[
                "Every run is listed with its settings and its target accuracy. Δ compares it with the source-only run on the same data: positive means the transfer method helped.",
                "Negative transfer — transfer doing worse than not transferring (training on the target alone, or the plain source model) — is flagged in yellow.",
                "The confusion matrix shows which classes are mistaken for which, and the gallery shows the target images the model got wrong.",
                "Multitask runs show each task trained together and alone, and the difference; zero-shot runs the attribute table with the unseen classes marked, how often each attribute was right, each unseen class's accuracy, and for an image you pick its predicted attributes and the class they point to; stepping-stone runs each hop (with the pseudo-labels it handed on) and stepping against direct transfer.",
            ],
        ),
        View::Predict => (
            "What does a model see in an image?",
            &[
                "EfficientNet-Lite0 was trained by others on ImageNet's 1.28 million photos of 1000 classes; it ships with the app. Give it a photo and it names the classes it finds most likely, with their probabilities.",
                "A run's model answers with your classes instead. The image is resized to the model's input the way training loaded it (ImageNet's model: short side to 256, centre 224×224 crop).",
            ],
        ),
    }
}

/// Draw the help box of a view.
pub fn help_ui(ui: &mut egui::Ui, view: View, open: &mut bool) {
    let (title, paragraphs) = help_text(view);
    egui::Frame::group(ui.style())
        .fill(ui.visuals().faint_bg_color)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("What am I looking at? — {title}")).strong());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.small_button("Close").clicked() {
                        *open = false;
                    }
                });
            });
            for p in paragraphs {
                ui.label(*p);
            }
        });
}
