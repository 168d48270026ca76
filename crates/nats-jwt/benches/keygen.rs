//! Key pair generation against its floor, in one run: `KeyPair::generate` (one Ed25519
//! key derivation, the strings encoded here) beside the way it was made before (`nkeys`
//! generating the pair, then the seed read back: three derivations) and beside one bare
//! `ed25519_dalek::SigningKey::from_bytes` (the derivation alone). Rounds alternate so the
//! machine's load weighs on all three alike; the best round of each is reported.
//!
//! Run: `cargo bench -p nats-jwt --bench keygen` (add `-- 50000` for another count).

use std::hint::black_box;
use std::time::{Duration, Instant};

use nats_jwt::{KeyKind, KeyPair};

const ROUNDS: usize = 5;

fn timed(n: usize, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut best = [Duration::MAX; 3];
    for _ in 0..ROUNDS {
        let now = [
            timed(n, || {
                black_box(KeyPair::generate(KeyKind::User));
            }),
            timed(n, || {
                let kp = nkeys::KeyPair::new(nkeys::KeyPairType::User);
                let seed = kp.seed().expect("a new pair has a seed");
                black_box(KeyPair::from_seed(&seed).expect("nkeys' own seed"));
            }),
            timed(n, || {
                let raw = rand::random::<[u8; 32]>();
                black_box(ed25519_dalek::SigningKey::from_bytes(&raw).verifying_key());
            }),
        ];
        for (b, t) in best.iter_mut().zip(now) {
            *b = (*b).min(t);
        }
    }
    let per_s = |d: Duration| n as f64 / d.as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{n} user key pairs, best of {ROUNDS} rounds (load {}):\n\
         KeyPair::generate           {:>9.0}/s\n\
         nkeys new + seed read back  {:>9.0}/s  (generate is {:.2}× this)\n\
         bare Ed25519 derivation     {:>9.0}/s  (generate is {:.2}× this)",
        load.split_whitespace().next().unwrap_or("?"),
        per_s(best[0]),
        per_s(best[1]),
        best[1].as_secs_f64() / best[0].as_secs_f64(),
        per_s(best[2]),
        best[2].as_secs_f64() / best[0].as_secs_f64(),
    );
}
