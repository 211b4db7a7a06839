//! A small deterministic generator (splitmix64): the same seed makes the same queries.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `most` distinct items (at least one), in the order given.
    pub fn some_of<T: Clone>(&mut self, items: &[T], most: usize) -> Vec<T> {
        let want = 1 + self.below(most.min(items.len()));
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < want {
            let i = self.below(items.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort();
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }
}

/// The seed of this run, the same for every configuration: `DATABRICKS_FDW_ORACLE_SEED` (a
/// number, or `random`: then printed once), else a fixed one.
pub fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("DATABRICKS_FDW_ORACLE_SEED").ok().as_deref() {
        None | Some("") => 20_261_202,
        Some("random") => {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
            eprintln!("oracle: DATABRICKS_FDW_ORACLE_SEED={nanos}");
            nanos
        }
        Some(n) => n.parse().unwrap_or_else(|_| panic!("DATABRICKS_FDW_ORACLE_SEED must be a number or `random`, not {n}")),
    })
}

/// Queries per configuration: `DATABRICKS_FDW_ORACLE_QUERIES`, else `default`.
pub fn queries(default: usize) -> usize {
    std::env::var("DATABRICKS_FDW_ORACLE_QUERIES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}
