//! What the crash tests check of the sink: that every message arrived, and
//! that each went out under one idempotency key, counting the redelivered.

use nudge_testkit::{HttpSink, ReceivedRequest};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The (contact, note) pairs of both messages of the crash projects'
/// flows (`first`, then `second` after a wait) for `contacts`.
pub fn both_messages<'a>(
    contacts: impl IntoIterator<Item = &'a String>,
) -> HashSet<(String, String)> {
    contacts
        .into_iter()
        .flat_map(|c| [(c.clone(), "first".into()), (c.clone(), "second".into())])
        .collect()
}

/// Waits until the sink holds every message of `want` (its JSON body's
/// `contact` and `note`) or `timeout` passed: what it received, and how
/// many of `want` are missing.
pub fn wait_for_messages(
    sink: &HttpSink,
    want: &HashSet<(String, String)>,
    timeout: Duration,
) -> (Vec<ReceivedRequest>, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let requests = sink.requests();
        let got: HashSet<(String, String)> = requests
            .iter()
            .filter_map(|r| {
                let v = r.json()?;
                Some((v["contact"].as_str()?.into(), v["note"].as_str()?.into()))
            })
            .collect();
        let missing = want.difference(&got).count();
        if missing == 0 || Instant::now() > deadline {
            return (requests, missing);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many messages went out more than once; panics on a delivery
/// without an `Idempotency-Key`, or a message sent under two keys.
pub fn redelivered(requests: &[ReceivedRequest]) -> usize {
    let mut per_key: HashMap<String, usize> = HashMap::new();
    let mut key_of: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for r in requests {
        let key = r
            .header("idempotency-key")
            .unwrap_or_else(|| panic!("a delivery without an Idempotency-Key: {r:?}"))
            .to_string();
        *per_key.entry(key.clone()).or_default() += 1;
        let v = r.json().unwrap();
        let what = (
            v["contact"].as_str().unwrap().to_string(),
            v["note"].as_str().unwrap().to_string(),
        );
        key_of.entry(what).or_default().insert(key);
    }
    for (what, keys) in &key_of {
        assert_eq!(
            keys.len(),
            1,
            "{what:?} went out under several keys: {keys:?}"
        );
    }
    per_key.values().filter(|&&n| n > 1).count()
}
