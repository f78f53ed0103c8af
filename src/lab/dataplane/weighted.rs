//! Traefik's weighted round robin, as the lab's ingress routes a
//! `TraefikService`'s `weighted` services: earliest deadline first, each
//! service's next deadline `1/weight` after its last pick (Traefik's
//! `wrr.Balancer`). Picks interleave smoothly (weights 1:9 send every
//! tenth request to the first, not ten in a row), so a split is exact over
//! any window of `sum(weights)` requests, as on real Traefik.

/// One `TraefikService`'s balancer.
#[derive(Debug, Clone)]
pub struct Wrr {
    /// Per service: its weight (0: left out, as Traefik skips it) and next deadline.
    entries: Vec<(u64, f64)>,
}

impl Wrr {
    /// A balancer over services of `weights`, in order.
    pub fn new(weights: &[u64]) -> Wrr {
        Wrr {
            entries: weights
                .iter()
                .map(|&w| {
                    (
                        w,
                        if w == 0 {
                            f64::INFINITY
                        } else {
                            1.0 / w as f64
                        },
                    )
                })
                .collect(),
        }
    }

    /// The index of the next service; `None` when every weight is 0
    /// (Traefik answers "no available server").
    pub fn pick(&mut self) -> Option<usize> {
        let (index, _) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (w, _))| *w > 0)
            // The earliest deadline; the first service on a tie.
            .min_by(|(_, (_, a)), (_, (_, b))| a.total_cmp(b))?;
        let (weight, deadline) = &mut self.entries[index];
        *deadline += 1.0 / *weight as f64;
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::Wrr;

    fn counts(weights: &[u64], picks: usize) -> Vec<usize> {
        let mut wrr = Wrr::new(weights);
        let mut counts = vec![0; weights.len()];
        for _ in 0..picks {
            counts[wrr.pick().unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn picks_follow_the_weights_over_every_round() {
        assert_eq!(counts(&[90, 10], 100), [90, 10]);
        assert_eq!(counts(&[50, 50], 1000), [500, 500]);
        assert_eq!(counts(&[1, 2, 7], 10), [1, 2, 7]);
    }

    #[test]
    fn a_small_weight_is_spread_out_not_bunched() {
        let mut wrr = Wrr::new(&[9, 1]);
        let picks: Vec<usize> = (0..20).map(|_| wrr.pick().unwrap()).collect();
        let second: Vec<usize> = picks
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == 1)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(second.len(), 2, "{picks:?}");
        assert!(second[1] - second[0] >= 9, "{picks:?}");
    }

    #[test]
    fn zero_weights_are_left_out() {
        assert_eq!(counts(&[0, 3], 9), [0, 9]);
        assert_eq!(Wrr::new(&[0, 0]).pick(), None);
        assert_eq!(Wrr::new(&[]).pick(), None);
    }
}
