//! Issue 16, part 5, at the heap level (what this crate's code allocates, independent of the
//! allocator's own slack; `crates/mpcluster/tests/serve_memory.rs` checks the resident size of
//! the real `serve` process): the agent loop collecting a `show maps json` reply of the
//! largest size it accepts, changing and unchanged, over a few ticks.
//!
//! A counting global allocator tracks the live heap bytes of every thread except the fake
//! multipathd's (which holds and copies the replies it sends), so this file holds this one
//! test only.
#![allow(clippy::unwrap_used)]
// A `GlobalAlloc` impl is unsafe by definition; this test-only wrapper only forwards to
// `System` and counts sizes, and it is the only way to observe allocations.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use mpcluster_agent::protocol::MAX_ACCEPTED_REPLY_LEN;
use mpcluster_agent::run::AgentConfig;
use mpcluster_agent::sim::{SimMap, SimState};
use mpcluster_agent::{FakeMultipathd, MultipathdClient};
use mpcluster_core::multipathd::{SHOW_MAPS_JSON, SHOW_PATHS_RAW};

/// The bounds asserted, as multiples of the reply size: the peak while collecting, and what
/// stays between collections.
const MAX_PEAK: f64 = 3.0;
const MAX_RETAINED: f64 = 1.25;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local!(static NOT_COUNTED: Cell<bool> = const { Cell::new(false) });

fn count(delta: isize) {
    if !NOT_COUNTED.with(Cell::get) {
        let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards unchanged to `System`; the bookkeeping is relaxed atomics and
// a thread-local flag.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(bytes: f64) -> f64 {
    bytes / 1048576.0
}

/// The largest `show maps json` reply the agent accepts (4-path maps) and its raw paths reply.
fn max_replies() -> (String, String) {
    let map = |i: usize| {
        SimMap::new(
            &format!("3600a09803830305345300000{i:08}"),
            i as u32,
            1 << 30,
            4,
            "scsi:iscsi",
            (i * 4) as u32,
        )
    };
    let sample = SimState {
        maps: (0..100).map(map).collect(),
        ..SimState::default()
    };
    let mut n = (MAX_ACCEPTED_REPLY_LEN - 1) / (sample.maps_json().len() / 100);
    loop {
        let state = SimState {
            maps: (0..n).map(map).collect(),
            ..SimState::default()
        };
        let json = state.maps_json();
        if json.len() < MAX_ACCEPTED_REPLY_LEN - 1 {
            return (json, state.paths_raw());
        }
        n -= n / 100 + 1;
    }
}

#[test]
fn collecting_a_maximum_size_reply_keeps_the_heap_within_a_small_multiple_of_it() {
    NOT_COUNTED.with(|c| c.set(true));
    let (json, paths) = max_replies();
    let reply = json.len() as f64;
    let dir = tempfile::tempdir().unwrap();
    let fake_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| NOT_COUNTED.with(|c| c.set(true)))
        .enable_all()
        .build()
        .unwrap();
    let fake =
        fake_rt.block_on(async { FakeMultipathd::start(dir.path().join("mp.sock")).unwrap() });
    fake.set_reply(SHOW_MAPS_JSON, json.clone());
    fake.set_reply(SHOW_PATHS_RAW, paths);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn mpcluster_store::ClusterStore> = rt.block_on(async {
        Arc::new(
            mpcluster_store::embedded::EmbeddedStore::open(
                &dir.path().join("store"),
                Default::default(),
            )
            .await
            .unwrap(),
        )
    });
    let mut config = AgentConfig::new(mpcluster_core::NodeName::new("n1").unwrap());
    config.interval = Duration::from_millis(300);
    config.sysfs_root = dir.path().join("sys");
    let client = MultipathdClient::new(fake.socket_spec(), Duration::from_secs(30));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    NOT_COUNTED.with(|c| c.set(false));
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let agent = rt.spawn(mpcluster_agent::run::run(store, client, config, async {
        let _ = stopped.await;
    }));
    let mut retained = Vec::new();
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(1500));
        retained.push(LIVE.load(Ordering::SeqCst) - base);
        if round == 1 {
            // A changed reply: parsed and summarized again.
            fake.set_reply(SHOW_MAPS_JSON, json.replacen("\"active\"", "\"failed\"", 1));
        }
    }
    let peak = (PEAK.load(Ordering::SeqCst) - base) as f64;
    let _ = stop.send(());
    rt.block_on(agent).unwrap();
    // Between collections the live heap is the report (a reply being read adds up to one more
    // reply): take the smallest sample.
    let kept = *retained.iter().min().unwrap() as f64;
    eprintln!(
        "reply {:.1} MiB: heap peak {:.1} MiB over the start ({:.2} x), kept between collections {:.1} MiB ({:.2} x)",
        mib(reply),
        mib(peak),
        peak / reply,
        mib(kept),
        kept / reply
    );
    assert!(
        peak < MAX_PEAK * reply,
        "peak {:.2} x the reply",
        peak / reply
    );
    assert!(
        kept < MAX_RETAINED * reply,
        "kept {:.2} x the reply",
        kept / reply
    );
}
