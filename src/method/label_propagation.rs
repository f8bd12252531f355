//! Label propagation across domains (Zhou et al., 2004, "Learning with Local and Global
//! Consistency"; on deep features as in Iscen et al., 2019): relation-based transfer. The
//! labelled images and the unlabeled target become the nodes of one k-nearest-neighbour
//! graph over the network's features; the labels then spread along the edges from the
//! labelled nodes to the target, so a target image takes the label of the region of the
//! graph it sits in rather than the classifier's verdict on it alone.
//!
//! At the start of each epoch the whole unlabeled target and (up to [`MAX_LABELLED`] of)
//! the labelled images go through the network once. Edges join each node to its
//! [`NEIGHBOURS`] most similar nodes (cosine similarity of the features, raised to the
//! power 3 and clipped at 0, made symmetric); with S the degree-normalised adjacency
//! D^(−½) W D^(−½) and Y the one-hot labels of the labelled nodes (each class scaled by
//! 1/its count, so a large class does not flood the graph), F ← α S F + (1 − α) Y is
//! iterated [`ITERATIONS`] times (the closed form is (1 − α)(I − αS)⁻¹ Y). Each target node
//! the labels reach gets the class with the most mass, weighted by its certainty
//! 1 − H(F̂)/ln C; the epoch trains on those labels with a weighted cross-entropy.
//!
//! Loss: cross-entropy(labelled) + ramp(p) · λ · weighted cross-entropy(target, propagated).
//! Figures: the share of target nodes the labels reached, and how often the propagated
//! label agrees with the classifier (the runner adds the propagated labels' accuracy when
//! the target has labels; the method never sees them).

use super::{Method, MethodSettings, TargetPass, TrainBatch, joint_forward, ramp, top_class};
use crate::model::Network;
use candle_core::{D, Device, Result, Tensor};
use rayon::prelude::*;

/// Default weight of the cross-entropy on the propagated labels.
pub const DEFAULT_LAMBDA: f64 = 1.0;
/// Default spreading factor α: how far labels travel (near 1: far, near 0: hardly).
pub const DEFAULT_ALPHA: f64 = 0.99;
/// Edges per node of the graph.
pub const NEIGHBOURS: usize = 10;
/// Propagation steps per epoch (labels travel one edge per step).
pub const ITERATIONS: usize = 20;
/// Most labelled nodes in the graph (evenly spaced over the labelled pool beyond that).
pub const MAX_LABELLED: usize = 2000;
/// Key of the share of target nodes the labels reached.
pub const REACHED: &str = "reached";
/// Key of the share of propagated labels that agree with the classifier.
pub const AGREEMENT: &str = "agreement";

/// Label propagation's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "label-propagation",
    family: super::Family::Relation,
    summary: "Label propagation: a nearest-neighbour graph over source and target features spreads the source labels to the target each epoch; the network trains on the labels that arrive.",
    hyperparameters: &[
        super::Hyperparameter::lambda(DEFAULT_LAMBDA).labelled(
            "λ (propagated labels)",
            "Weight of the cross-entropy on the labels propagated to the target.",
        ),
        super::Hyperparameter::new(
            "alpha",
            "α (spreading)",
            "How far labels travel along the graph: near 1 far, near 0 hardly beyond the labelled nodes.",
            DEFAULT_ALPHA,
            (0.01, 0.999),
        ),
    ],
    metrics: &[
        super::Metric::accuracy(super::PSEUDO_ACCURACY, "propagated-label accuracy"),
        super::Metric::new(REACHED, "target nodes reached", super::Unit::Fraction),
        super::Metric::new(
            AGREEMENT,
            "agreement with the classifier",
            super::Unit::Fraction,
        ),
    ],
    build: Some(|settings, _net| Ok(Box::new(LabelPropagation::new(settings)))),
    ..super::ADAPTATION_BASE
};

/// The result of one propagation over the target nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Propagated {
    /// Per target node: its class and certainty weight (0..1), or None when no label
    /// reached it.
    pub labels: Vec<Option<(u32, f32)>>,
}

impl Propagated {
    /// The share of target nodes that got a label.
    pub fn reached(&self) -> f64 {
        let n = self.labels.iter().filter(|l| l.is_some()).count();
        n as f64 / self.labels.len().max(1) as f64
    }
}

/// The k-nearest-neighbour graph over labelled and target nodes (labelled first), made
/// symmetric, with each node's degree.
pub struct Graph {
    /// Number of labelled nodes (the first ones).
    pub labelled: usize,
    /// Each node's edges (other node, weight), both directions.
    edges: Vec<Vec<(usize, f32)>>,
    degree: Vec<f32>,
}

impl Graph {
    /// The graph of the `labelled` and `target` feature rows (any length-d vectors; each
    /// domain is centred on its own mean and the rows L2-normalised here); None when
    /// either side is empty.
    pub fn build(
        labelled: &[Vec<f32>],
        target: &[Vec<f32>],
        device: &Device,
    ) -> Result<Option<Self>> {
        let n = labelled.len() + target.len();
        let d = labelled.iter().chain(target).next().map_or(0, Vec::len);
        if target.is_empty() || labelled.is_empty() || d == 0 {
            return Ok(None);
        }
        // Each domain centred on its own mean before the cosine: the shift between the
        // domains' means would otherwise keep target nodes among themselves, with few edges
        // for the labels to cross by.
        let mean = |rows: &[Vec<f32>]| -> Vec<f32> {
            let mut m = vec![0f32; d];
            rows.iter()
                .for_each(|r| m.iter_mut().zip(r).for_each(|(a, x)| *a += x));
            m.iter_mut().for_each(|a| *a /= rows.len() as f32);
            m
        };
        let (ml, mt) = (mean(labelled), mean(target));
        let mut rows = Vec::with_capacity(n * d);
        for (f, m) in labelled
            .iter()
            .map(|f| (f, &ml))
            .chain(target.iter().map(|f| (f, &mt)))
        {
            let c: Vec<f32> = f.iter().zip(m).map(|(x, m)| x - m).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            rows.extend(c.iter().map(|x| x / norm));
        }
        let all = Tensor::from_vec(rows, (n, d), device)?;
        let k = NEIGHBOURS.min(n - 1);
        // Each node's k most similar other nodes, from the similarity matrix a block of rows
        // at a time (the whole matrix of a large folder would not fit).
        let mut edges: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
        let mut start = 0;
        while start < n {
            let len = 512.min(n - start);
            let sim = all
                .narrow(0, start, len)?
                .matmul(&all.t()?)?
                .to_vec2::<f32>()?;
            let block: Vec<Vec<(usize, f32)>> = sim
                .par_iter()
                .enumerate()
                .map(|(r, row)| {
                    let i = start + r;
                    let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
                    if k > 0 && k < order.len() {
                        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
                        order.truncate(k);
                    }
                    order
                        .into_iter()
                        .map(|j| (j, row[j].max(0.0).powi(3)))
                        .filter(|&(_, w)| w > 0.0)
                        .collect()
                })
                .collect();
            for (r, e) in block.into_iter().enumerate() {
                edges[start + r] = e;
            }
            start += len;
        }
        // W + Wᵀ: each edge in both directions (weights add where both chose each other).
        let mut sym: Vec<Vec<(usize, f32)>> = edges.clone();
        for (i, out) in edges.iter().enumerate() {
            for &(j, w) in out {
                sym[j].push((i, w));
            }
        }
        let degree: Vec<f32> = sym
            .iter()
            .map(|e| e.iter().map(|&(_, w)| w).sum::<f32>())
            .collect();
        Ok(Some(Self {
            labelled: labelled.len(),
            edges: sym,
            degree,
        }))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// True for a graph without nodes (never built: [`Graph::build`] returns None).
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Each node's strongest edge to another node, as (node, other), for drawing.
    pub fn strongest_edges(&self) -> Vec<(usize, usize)> {
        self.edges
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.iter()
                    .filter(|(j, _)| *j != i)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|&(j, _)| (i, j))
            })
            .collect()
    }

    /// Y: one-hot rows of the labelled nodes, each class scaled by 1 / its count.
    fn seeds(&self, labels: &[u32], classes: usize) -> Vec<f32> {
        let mut count = vec![0usize; classes];
        labels.iter().for_each(|&l| count[l as usize] += 1);
        let mut y = vec![0f32; self.len() * classes];
        for (i, &l) in labels.iter().enumerate() {
            y[i * classes + l as usize] = 1.0 / count[l as usize] as f32;
        }
        y
    }

    /// One step F ← α S F + (1 − α) Y.
    fn step(&self, f: &[f32], y: &[f32], classes: usize, alpha: f32) -> Vec<f32> {
        let mut next: Vec<f32> = y.iter().map(|v| (1.0 - alpha) * v).collect();
        for (i, e) in self.edges.iter().enumerate() {
            if self.degree[i] <= 0.0 {
                continue;
            }
            let row = &mut next[i * classes..(i + 1) * classes];
            for &(j, w) in e {
                if self.degree[j] <= 0.0 {
                    continue;
                }
                let s = alpha * w / (self.degree[i] * self.degree[j]).sqrt();
                let from = &f[j * classes..(j + 1) * classes];
                row.iter_mut().zip(from).for_each(|(a, b)| *a += s * b);
            }
        }
        next
    }

    /// Each target node's class and certainty from the label mass `f`, after class balance
    /// (Iscen et al.): each class's mass over the target divided out, so a class that floods
    /// the graph does not take every node.
    fn target_labels(&self, f: &[f32], classes: usize) -> Vec<Option<(u32, f32)>> {
        let n = self.len();
        let mut mass = vec![0f32; classes];
        for i in self.labelled..n {
            mass.iter_mut()
                .zip(&f[i * classes..(i + 1) * classes])
                .for_each(|(m, v)| *m += v);
        }
        let max_entropy = (classes as f32).ln().max(1e-12);
        (self.labelled..n)
            .map(|i| {
                let row: Vec<f32> = f[i * classes..(i + 1) * classes]
                    .iter()
                    .zip(&mass)
                    .map(|(v, m)| if *m > 0.0 { v / m } else { 0.0 })
                    .collect();
                let total: f32 = row.iter().sum();
                (total > 1e-20).then(|| {
                    let p: Vec<f32> = row.iter().map(|v| v / total).collect();
                    let entropy: f32 = p.iter().filter(|&&v| v > 0.0).map(|v| -v * v.ln()).sum();
                    (
                        top_class(&p).0,
                        (1.0 - entropy / max_entropy).clamp(0.0, 1.0),
                    )
                })
            })
            .collect()
    }

    /// Spread `labels` (one per labelled node, below `classes`) for `steps` steps; `each`
    /// sees the target's labels after every step (step 1 first).
    pub fn spread(
        &self,
        labels: &[u32],
        classes: usize,
        alpha: f64,
        steps: usize,
        mut each: impl FnMut(usize, Vec<Option<(u32, f32)>>),
    ) -> Propagated {
        let y = self.seeds(labels, classes);
        let mut f = y.clone();
        for s in 1..=steps {
            f = self.step(&f, &y, classes, alpha as f32);
            if s < steps {
                each(s, self.target_labels(&f, classes));
            }
        }
        let labels = self.target_labels(&f, classes);
        each(steps, labels.clone());
        Propagated { labels }
    }
}

/// Spread `labels` (one per labelled node, below `classes`) from the `labelled` feature
/// rows to the `target` rows over a k-nearest-neighbour graph of all of them (see the
/// module's notes). Rows are any length-d vectors; they are L2-normalised here.
pub fn propagate(
    labelled: &[Vec<f32>],
    labels: &[u32],
    target: &[Vec<f32>],
    classes: usize,
    alpha: f64,
    device: &Device,
) -> Result<Propagated> {
    match Graph::build(labelled, target, device)? {
        Some(g) if classes > 0 => Ok(g.spread(labels, classes, alpha, ITERATIONS, |_, _| {})),
        _ => Ok(Propagated {
            labels: vec![None; target.len()],
        }),
    }
}

/// The labels spreading step by step, for a class to watch on the map.
#[derive(Clone, Debug, PartialEq)]
pub struct Spreading {
    /// Per step (0: before the first, then after each of [`ITERATIONS`]): each target
    /// row's class, or None where no label has arrived yet.
    pub steps: Vec<Vec<Option<u32>>>,
    /// Each node's strongest edge (labelled rows first, then target rows).
    pub edges: Vec<(usize, usize)>,
    /// Number of labelled rows.
    pub labelled: usize,
}

/// [`propagate`]'s spreading with every step kept.
pub fn spread_steps(
    labelled: &[Vec<f32>],
    labels: &[u32],
    target: &[Vec<f32>],
    classes: usize,
    alpha: f64,
    device: &Device,
) -> Result<Option<Spreading>> {
    let Some(graph) = Graph::build(labelled, target, device)? else {
        return Ok(None);
    };
    if classes == 0 {
        return Ok(None);
    }
    let mut steps = vec![vec![None; target.len()]];
    graph.spread(labels, classes, alpha, ITERATIONS, |_, l| {
        steps.push(l.into_iter().map(|x| x.map(|(c, _)| c)).collect())
    });
    Ok(Some(Spreading {
        steps,
        edges: graph.strongest_edges(),
        labelled: graph.labelled,
    }))
}

/// Label propagation with the labelled source (and labelled target) as the graph's
/// labelled nodes.
pub struct LabelPropagation {
    lambda: f64,
    alpha: f64,
    /// Propagated label and weight of each target sample by its index in the domain.
    pseudo: Vec<Option<(u32, f32)>>,
    /// This epoch's propagated labels, as (target index, class).
    labelled: Vec<(usize, u32)>,
    /// Reach and agreement of this epoch's propagation.
    figures: Vec<(String, f64)>,
}

impl LabelPropagation {
    pub fn new(settings: &MethodSettings) -> Self {
        Self {
            lambda: settings.lambda,
            alpha: settings.param("alpha").unwrap_or(DEFAULT_ALPHA),
            pseudo: Vec::new(),
            labelled: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// Labels and weights of the rows of a target batch that got a propagated label.
    fn batch_labels(&self, batch: &TrainBatch) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        let mut weights = Vec::new();
        for (r, &i) in batch.target_ids.iter().enumerate() {
            if let Some(Some((l, w))) = self.pseudo.get(i) {
                rows.push(r as u32);
                labels.push(*l);
                weights.push(*w);
            }
        }
        (rows, labels, weights)
    }
}

impl Method for LabelPropagation {
    fn labels_target(&self) -> bool {
        true
    }

    fn needs_labelled_pass(&self) -> bool {
        true
    }

    fn begin_epoch(&mut self, pass: &TargetPass) -> Result<()> {
        let Some(source) = &pass.labelled else {
            candle_core::bail!("label propagation needs the labelled images' features");
        };
        if pass.ids.is_empty() {
            return Ok(());
        }
        let classes = pass.out.logits.dim(1)?;
        let labelled = source.out.features.to_vec2::<f32>()?;
        let target = pass.out.features.to_vec2::<f32>()?;
        let device = pass.out.features.device();
        let result = propagate(
            &labelled,
            &source.labels,
            &target,
            classes,
            self.alpha,
            device,
        )?;
        let predicted: Vec<u32> = pass.out.logits.argmax(D::Minus1)?.to_vec1()?;
        let reached: Vec<(u32, u32)> = result
            .labels
            .iter()
            .zip(&predicted)
            .filter_map(|(l, &p)| l.map(|(l, _)| (l, p)))
            .collect();
        let agree = reached.iter().filter(|(l, p)| l == p).count();
        self.figures = vec![(REACHED.to_string(), result.reached())];
        if !reached.is_empty() {
            self.figures
                .push((AGREEMENT.to_string(), agree as f64 / reached.len() as f64));
        }
        let len = pass.ids.iter().max().map_or(0, |m| m + 1);
        self.pseudo = vec![None; len];
        self.labelled.clear();
        for (&i, l) in pass.ids.iter().zip(&result.labels) {
            self.pseudo[i] = *l;
            if let Some((class, _)) = l {
                self.labelled.push((i, *class));
            }
        }
        Ok(())
    }

    fn pseudo_labels(&self) -> Option<&[(usize, u32)]> {
        (!self.labelled.is_empty()).then_some(&self.labelled[..])
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let (rows, labels, weights) = self.batch_labels(batch);
        if rows.is_empty() || self.lambda == 0.0 {
            return Ok(ce);
        }
        let device = out.target.logits.device();
        let n = rows.len();
        let logits = out
            .target
            .logits
            .index_select(&Tensor::from_vec(rows, n, device)?, 0)?;
        let per = super::cross_entropy_per_sample(&logits, &Tensor::from_vec(labels, n, device)?)?;
        let weights = Tensor::from_vec(weights, n, device)?;
        // Mean over the whole target batch, so a batch the labels hardly reached weighs
        // little.
        let propagated = ((per * weights)?.sum_all()? / batch.target_ids.len().max(1) as f64)?;
        ce + (propagated * (self.lambda * ramp(progress)))?
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.figures.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_spread_along_a_chain_to_the_far_end() {
        // Two chains of points leaving from one labelled node each; the far ends are closer
        // (in a straight line) to nothing labelled, but the chain carries the label there.
        let point = |a: f32| vec![a.cos(), a.sin()];
        let labelled = vec![point(0.0), point(3.0)];
        let target: Vec<Vec<f32>> = (1..8)
            .map(|i| point(i as f32 * 0.1))
            .chain((1..8).map(|i| point(3.0 + i as f32 * 0.1)))
            .collect();
        let got = propagate(&labelled, &[0, 1], &target, 2, 0.99, &Device::Cpu).unwrap();
        let classes: Vec<u32> = got.labels.iter().map(|l| l.unwrap().0).collect();
        assert_eq!(classes, [vec![0; 7], vec![1; 7]].concat());
        assert_eq!(got.reached(), 1.0);
    }

    #[test]
    fn a_node_with_no_positive_similarity_is_not_reached() {
        // After each domain is centred on its mean, the last target point is orthogonal
        // to both labelled points and points away from the other target points: it has
        // no edge and gets no label.
        let labelled = vec![vec![1.0, 0.0, 0.0], vec![-1.0, 0.0, 0.0]];
        let target = vec![
            vec![1.0, 0.0, 0.0],
            vec![-1.0, 0.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let got = propagate(&labelled, &[0, 1], &target, 2, 0.9, &Device::Cpu).unwrap();
        assert_eq!(got.labels[0].map(|l| l.0), Some(0));
        assert_eq!(got.labels[1].map(|l| l.0), Some(1));
        assert_eq!(got.labels[2], None);
        assert!((got.reached() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn step_by_step_the_labels_reach_one_more_link_of_the_chain_each_step() {
        let point = |a: f32| vec![a.cos(), a.sin()];
        let labelled = vec![point(0.0), point(3.0)];
        // Chains longer than a node's neighbourhood: a label needs several steps to cross.
        let target: Vec<Vec<f32>> = (1..26)
            .map(|i| point(i as f32 * 0.04))
            .chain((1..26).map(|i| point(3.0 + i as f32 * 0.04)))
            .collect();
        let s = spread_steps(&labelled, &[0, 1], &target, 2, 0.99, &Device::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(s.steps.len(), ITERATIONS + 1);
        let reached = |step: &Vec<Option<u32>>| step.iter().filter(|l| l.is_some()).count();
        assert_eq!(reached(&s.steps[0]), 0);
        let counts: Vec<usize> = s.steps.iter().map(reached).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(
            counts[1] < target.len(),
            "one step reaches only the near links: {counts:?}"
        );
        assert_eq!(*counts.last().unwrap(), target.len());
        // The last step is propagate's answer.
        let last = propagate(&labelled, &[0, 1], &target, 2, 0.99, &Device::Cpu).unwrap();
        let want: Vec<Option<u32>> = last.labels.iter().map(|l| l.map(|x| x.0)).collect();
        assert_eq!(s.steps.last().unwrap(), &want);
        assert_eq!(s.edges.len(), labelled.len() + target.len());
    }
}
