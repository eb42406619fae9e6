//! How a product's rows are handed to the team: guided self-scheduling. Each thread claims
//! row ranges from a shared cursor, each a share of the rows left, so the first claims are
//! large and the last ones small, and the threads finish together. With equal tasks, a
//! product waited on average for half of one, and a 7B token spent 6% of its time on that
//! wait. Long first claims also keep each thread streaming long runs of rows, which the
//! prefetchers like.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows of a claim are a multiple of this (a repacked group), but at a matrix's end.
pub const UNIT: usize = 16;

/// Each claim takes 1 / (`SHARE` · threads) of the rows left.
const SHARE: usize = 2;

/// Matrices one cursor walks through, one after the other.
pub const MAX_MATRICES: usize = 4;

/// Rows `r0..r0 + rows` of matrix `matrix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTask {
    pub matrix: usize,
    pub r0: usize,
    pub rows: usize,
}

/// A cursor over the rows of up to [`MAX_MATRICES`] matrices, in units of [`UNIT`] rows.
pub struct Guided {
    rows: [usize; MAX_MATRICES],
    /// Where each matrix's units end, counted over all of them.
    ends: [usize; MAX_MATRICES],
    n: usize,
    share: usize,
    cursor: AtomicUsize,
}

impl Guided {
    /// A cursor over matrices of `rows[i]` rows, claimed by `threads` threads.
    pub fn new(rows: &[usize], threads: usize) -> Guided {
        assert!(
            rows.len() <= MAX_MATRICES,
            "at most {MAX_MATRICES} matrices"
        );
        let mut g = Guided {
            rows: [0; MAX_MATRICES],
            ends: [0; MAX_MATRICES],
            n: rows.len(),
            share: SHARE * threads.max(1),
            cursor: AtomicUsize::new(0),
        };
        let mut end = 0;
        for (i, &r) in rows.iter().enumerate() {
            end += r.div_ceil(UNIT);
            g.rows[i] = r;
            g.ends[i] = end;
        }
        g
    }

    fn total(&self) -> usize {
        self.ends[..self.n].last().copied().unwrap_or(0)
    }

    /// The next rows to multiply, or `None` once every row is claimed. Claims never cross
    /// from one matrix into the next.
    pub fn next(&self) -> Option<RowTask> {
        let total = self.total();
        let mut at = self.cursor.load(Ordering::Relaxed);
        loop {
            if at >= total {
                return None;
            }
            let matrix = self.ends[..self.n].iter().position(|&e| at < e)?;
            let start = if matrix == 0 {
                0
            } else {
                self.ends[matrix - 1]
            };
            let units = (total - at)
                .div_ceil(self.share)
                .min(self.ends[matrix] - at);
            match self.cursor.compare_exchange_weak(
                at,
                at + units,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let r0 = (at - start) * UNIT;
                    let rows = (units * UNIT).min(self.rows[matrix] - r0);
                    return Some(RowTask { matrix, r0, rows });
                }
                Err(now) => at = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(rows: &[usize], threads: usize) -> Vec<RowTask> {
        let g = Guided::new(rows, threads);
        std::iter::from_fn(|| g.next()).collect()
    }

    #[test]
    fn claims_cover_every_row_once_in_order_and_shrink() {
        for rows in [
            vec![16],
            vec![4096],
            vec![4100],
            vec![11008, 11008],
            vec![4096, 1024, 1024],
            vec![576, 0, 192, 192],
            vec![49152],
            vec![1, 3],
            vec![150_000; 4],
        ] {
            for threads in [1, 2, 3, 16, 64, 128] {
                let tasks = claims(&rows, threads);
                let mut next = 0;
                for m in (0..rows.len()).filter(|&m| rows[m] > 0) {
                    let mine: Vec<&RowTask> = tasks.iter().filter(|t| t.matrix == m).collect();
                    for t in &mine {
                        assert_eq!(t.r0, next, "{rows:?} x {threads}");
                        assert!(t.rows > 0 && t.r0 % UNIT == 0);
                        assert!(t.r0 + t.rows == rows[m] || t.rows.is_multiple_of(UNIT));
                        next += t.rows;
                    }
                    assert_eq!(next, rows[m], "{rows:?} x {threads}: matrix {m}");
                    next = 0;
                }
                // Claims come in order, and none is larger than the first or than a
                // thread's fair share of the whole.
                let order: Vec<(usize, usize)> = tasks.iter().map(|t| (t.matrix, t.r0)).collect();
                assert!(order.windows(2).all(|w| w[0] < w[1]));
                let units: usize = rows.iter().map(|r| r.div_ceil(UNIT)).sum();
                let fair = units.div_ceil(threads) * UNIT;
                assert!(tasks
                    .iter()
                    .all(|t| t.rows <= tasks[0].rows.max(UNIT) && t.rows <= fair));
            }
        }
    }

    #[test]
    fn the_last_claims_are_small() {
        let tasks = claims(&[11008], 2);
        assert!(tasks[0].rows >= 11008 / 4 - UNIT);
        assert_eq!(tasks.last().unwrap().rows, UNIT);
        assert!(tasks.len() < 40, "{}", tasks.len());
    }

    #[test]
    fn threads_claiming_at_once_share_the_rows_exactly() {
        let rows = [11008, 11008, 4096];
        let g = Guided::new(&rows, 4);
        let got = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    while let Some(t) = g.next() {
                        got.lock().unwrap().push(t);
                    }
                });
            }
        });
        let mut got = got.into_inner().unwrap();
        got.sort_by_key(|t| (t.matrix, t.r0));
        for (m, &n) in rows.iter().enumerate() {
            let sum: usize = got.iter().filter(|t| t.matrix == m).map(|t| t.rows).sum();
            assert_eq!(sum, n);
        }
    }
}
