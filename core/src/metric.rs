//! Distance metrics and their one convention: smaller is closer.

use core::fmt;
use core::str::FromStr;

/// How two vectors are compared. Every metric returns a value where smaller means closer:
///
/// | metric | returned distance |
/// |---|---|
/// | `L2` | squared Euclidean distance `Σ (a_i - b_i)²` |
/// | `Cosine` | `1 - cos(a, b)`, in `[0, 2]`; vectors are normalised once on insert |
/// | `InnerProduct` | `-(a · b)` (maximum inner product search) |
/// | `L1` | Manhattan distance `Σ |a_i - b_i|` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Metric {
    /// Squared Euclidean distance.
    L2 = 1,
    /// One minus cosine similarity.
    Cosine = 2,
    /// Negated inner product.
    InnerProduct = 3,
    /// Manhattan distance.
    L1 = 4,
}

impl Metric {
    /// All metrics, in code order.
    pub const ALL: [Metric; 4] = [Metric::L2, Metric::Cosine, Metric::InnerProduct, Metric::L1];

    /// The byte stored in index files.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The metric stored as `code` in an index file, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::L2),
            2 => Some(Self::Cosine),
            3 => Some(Self::InnerProduct),
            4 => Some(Self::L1),
            _ => None,
        }
    }

    /// Short lower-case name, as accepted by [`FromStr`].
    pub const fn name(self) -> &'static str {
        match self {
            Self::L2 => "l2",
            Self::Cosine => "cosine",
            Self::InnerProduct => "ip",
            Self::L1 => "l1",
        }
    }

    /// The distance between `a` and `b` under this metric (cosine inputs must be unit vectors,
    /// as every index stores them).
    #[inline(always)]
    pub fn distance(self, kernels: &crate::Kernels, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::L2 => kernels.l2sq(a, b),
            Self::Cosine => 1.0 - kernels.dot(a, b),
            Self::InnerProduct => -kernels.dot(a, b),
            Self::L1 => kernels.l1(a, b),
        }
    }

    /// [`Metric::distance`] from `a` to the rows `ids` of the row-major `rows` (`a.len()`
    /// floats each), into `out` (cleared first): the same values, several rows at a time where
    /// the kernels can ([`crate::Kernels::l2sq_many`]).
    pub fn distance_many(
        self,
        kernels: &crate::Kernels,
        a: &[f32],
        rows: &[f32],
        ids: &[u32],
        out: &mut alloc::vec::Vec<f32>,
    ) {
        match self {
            Self::L2 => kernels.l2sq_many(a, rows, ids, out),
            Self::Cosine => {
                kernels.dot_many(a, rows, ids, out);
                out.iter_mut().for_each(|d| *d = 1.0 - *d);
            }
            Self::InnerProduct => {
                kernels.dot_many(a, rows, ids, out);
                out.iter_mut().for_each(|d| *d = -*d);
            }
            Self::L1 => {
                let dim = a.len();
                out.clear();
                out.extend(
                    ids.iter().map(|&id| kernels.l1(a, &rows[id as usize * dim..(id as usize + 1) * dim])),
                );
            }
        }
    }

    /// Whether vectors are normalised to unit length on insert (and queries before search).
    pub const fn normalizes(self) -> bool {
        matches!(self, Self::Cosine)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metric name that is not one of `l2`, `cosine`/`cos`, `ip`/`dot`, `l1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {0:?}: expected l2, cosine (cos), ip (dot) or l1")]
pub struct UnknownMetric(pub alloc::string::String);

impl FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" | "l2sq" => Ok(Self::L2),
            "cosine" | "cos" => Ok(Self::Cosine),
            "ip" | "dot" | "inner_product" | "innerproduct" => Ok(Self::InnerProduct),
            "l1" | "manhattan" => Ok(Self::L1),
            _ => Err(UnknownMetric(s.into())),
        }
    }
}
