//! How a product's rows are cut into tasks for the team: guided self-scheduling. Tasks are
//! taken in order, the first large and each a share of what is left, so that the last ones
//! are small and the threads finish together. With equal tasks, a product waited on
//! average for half of one, and a 7B token spent 6% of its time on that wait. A few long
//! tasks also keep each thread streaming long runs of rows, which the prefetchers like.

/// Rows of a task are a multiple of this (a repacked group), but at a matrix's end.
pub const UNIT: usize = 16;

/// Each task takes 1 / (`SHARE` · threads) of the rows left.
const SHARE: usize = 2;

/// At most this many tasks: near it, each matrix's rest goes in one.
const MAX_TASKS: usize = 256;

/// Rows `r0..r0 + rows` of matrix `matrix`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowTask {
    pub matrix: usize,
    pub r0: usize,
    pub rows: usize,
}

/// The tasks of one product (or several of one input, one after the other), on the stack.
pub struct Split {
    tasks: [RowTask; MAX_TASKS],
    len: usize,
}

impl Split {
    /// Tasks over matrices of `rows[i]` rows for `threads` threads: no task crosses from one
    /// matrix into the next.
    pub fn guided(rows: &[usize], threads: usize) -> Split {
        let mut split = Split {
            tasks: [RowTask::default(); MAX_TASKS],
            len: 0,
        };
        let mut left: usize = rows.iter().map(|r| r.div_ceil(UNIT)).sum();
        let share = SHARE * threads.max(1);
        for (matrix, &n) in rows.iter().enumerate() {
            let mut r0 = 0;
            while r0 < n {
                // Room for one task per matrix still to come, this one included: past
                // that, a matrix's rest goes in one task.
                let full = split.len + (rows.len() - matrix) >= MAX_TASKS;
                let units = left.div_ceil(share).max(1);
                let take = if full {
                    n - r0
                } else {
                    (units * UNIT).min(n - r0)
                };
                split.tasks[split.len] = RowTask {
                    matrix,
                    r0,
                    rows: take,
                };
                split.len += 1;
                left -= take.div_ceil(UNIT);
                r0 += take;
            }
        }
        split
    }

    pub fn tasks(&self) -> &[RowTask] {
        &self.tasks[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_cover_every_row_once_in_order_and_shrink() {
        for rows in [
            vec![16],
            vec![4096],
            vec![4100],
            vec![11008, 11008],
            vec![4096, 1024, 1024],
            vec![576, 192, 192],
            vec![49152],
            vec![1, 3],
        ] {
            for threads in [1, 2, 3, 16, 64] {
                let split = Split::guided(&rows, threads);
                let tasks = split.tasks();
                assert!(!tasks.is_empty() && tasks.len() <= MAX_TASKS);
                let mut next = (0, 0);
                for t in tasks {
                    if t.r0 == 0 && t.matrix != next.0 {
                        assert_eq!(
                            next.1, rows[next.0],
                            "{rows:?}: matrix {} unfinished",
                            next.0
                        );
                        next = (t.matrix, 0);
                    }
                    assert_eq!((t.matrix, t.r0), next, "{rows:?} x {threads}");
                    assert!(t.rows > 0);
                    assert!(t.r0 + t.rows == rows[t.matrix] || t.rows.is_multiple_of(UNIT));
                    next.1 += t.rows;
                }
                assert_eq!(next, (rows.len() - 1, *rows.last().unwrap()));
                // No task is larger than the first (short of the cap on their number,
                // which 64 threads reach).
                if threads <= 16 {
                    let first = tasks[0].rows.div_ceil(UNIT);
                    assert!(
                        tasks.iter().all(|t| t.rows.div_ceil(UNIT) <= first),
                        "{rows:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_last_tasks_are_small() {
        let split = Split::guided(&[11008], 2);
        let tasks = split.tasks();
        assert!(tasks[0].rows >= 11008 / 4 - UNIT);
        assert_eq!(tasks.last().unwrap().rows, UNIT);
        assert!(tasks.len() < 40, "{}", tasks.len());
    }
}
