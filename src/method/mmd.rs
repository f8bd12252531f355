//! Maximum mean discrepancy between two sets of feature vectors with Gaussian kernels, as
//! pure tensor operations (no transfer to the host): the loss of DDC (one kernel) and DAN
//! (a family of kernels). The bandwidth follows the median heuristic, computed on the
//! device and detached so it is a fixed scale, not something the features can game.

use super::JointForward;
use candle_core::{Result, Tensor};

/// Squared Euclidean distances between all rows of `z` (N×d): an N×N matrix.
pub fn pairwise_sq_dists(z: &Tensor) -> Result<Tensor> {
    let sq = z.sqr()?.sum_keepdim(1)?;
    let gram = z.matmul(&z.t()?)?;
    // Rounding can make the diagonal slightly negative.
    sq.broadcast_add(&sq.t()?)?.sub(&(gram * 2.0)?)?.relu()
}

/// The median heuristic's scale: the median of the per-row medians of the pairwise squared
/// distances `d2` (N×N), detached, as a 1×1 tensor (never below a tiny floor). Sorting rows
/// of N values keeps it on the device on every backend.
pub fn median_sq_dist(d2: &Tensor) -> Result<Tensor> {
    let n = d2.dim(0)?;
    let (rows, _) = d2.detach().contiguous()?.sort_last_dim(true)?;
    let row_medians = rows.narrow(1, n / 2, 1)?.t()?.contiguous()?;
    let (sorted, _) = row_medians.sort_last_dim(true)?;
    sorted.narrow(1, n / 2, 1)?.clamp(1e-6f32, f32::MAX)
}

/// Biased (V-statistic) MMD² between the rows of `source` (n×d) and `target` (m×d) under
/// the mean of Gaussian kernels exp(−‖a−b‖² / (s·σ²)) for s in `scales`, where σ² is the
/// median squared distance over both sets:
/// mean K(s,s') + mean K(t,t') − 2 mean K(s,t). A scalar tensor.
pub fn mmd2(source: &Tensor, target: &Tensor, scales: &[f64]) -> Result<Tensor> {
    let n = source.dim(0)?;
    let m = target.dim(0)?;
    let z = Tensor::cat(&[source, target], 0)?;
    let d2 = pairwise_sq_dists(&z)?;
    let sigma2 = median_sq_dist(&d2)?;
    let mut kernel: Option<Tensor> = None;
    for &s in scales {
        let k = d2.broadcast_div(&(&sigma2 * s)?)?.neg()?.exp()?;
        kernel = Some(match kernel {
            Some(acc) => (acc + k)?,
            None => k,
        });
    }
    let Some(kernel) = kernel else {
        candle_core::bail!("MMD needs at least one kernel");
    };
    let kernel = (kernel / scales.len() as f64)?;
    let block_mean = |r: usize, rn: usize, c: usize, cn: usize| -> Result<Tensor> {
        kernel.narrow(0, r, rn)?.narrow(1, c, cn)?.mean_all()
    };
    let kss = block_mean(0, n, 0, n)?;
    let ktt = block_mean(n, m, n, m)?;
    let kst = block_mean(0, n, n, m)?;
    (kss + ktt)?.sub(&(kst * 2.0)?)
}

/// [`mmd2`] between the labelled source rows and the unlabeled target batch of a joint
/// pass, on the adaptation layer's features (none when the batch has no source row): the
/// distance of DDC and DAN.
pub fn joint_mmd2(out: &JointForward, scales: &[f64]) -> Result<Option<Tensor>> {
    let Some(fs) = out.source.as_ref().map(|s| &s.features) else {
        return Ok(None);
    };
    mmd2(fs, &out.target.features, scales).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], rows: usize) -> Tensor {
        Tensor::from_slice(v, (rows, v.len() / rows), &Device::Cpu).unwrap()
    }

    #[test]
    fn identical_sets_have_zero_mmd_and_shifted_sets_do_not() {
        let a = t(&[0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 4);
        let same = mmd2(&a, &a, &[1.0]).unwrap().to_scalar::<f32>().unwrap();
        assert!(same.abs() < 1e-6, "{same}");
        let b = (&a + 3.0).unwrap();
        let far = mmd2(&a, &b, &[0.5, 1.0, 2.0])
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(far > 0.5, "{far}");
    }

    #[test]
    fn median_heuristic_picks_the_middle_distance() {
        // Points on a line at 0, 1, 3: squared distances 0,1,9 / 1,0,4 / 9,4,0.
        let z = t(&[0.0, 1.0, 3.0], 3);
        let d2 = pairwise_sq_dists(&z).unwrap();
        let m = median_sq_dist(&d2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Row medians 1, 1, 4 → median 1.
        assert_eq!(m, vec![1.0]);
    }
}
