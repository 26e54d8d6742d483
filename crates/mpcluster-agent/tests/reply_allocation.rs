//! Proves the client never allocates what a peer merely announces: neither an over-limit
//! length (64 MiB, refused; 9 MiB, above what the agent accepts, refused) nor an in-limit one
//! (7 MiB) that the peer never sends.
//!
//! A counting global allocator records the largest single allocation; this file holds a
//! single test so that no other test's allocations interfere.
#![allow(clippy::unwrap_used)]
// A `GlobalAlloc` impl is unsafe by definition; this test-only wrapper only forwards to
// `System` and records sizes, and it is the only way to observe allocations.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mpcluster_agent::client::FramePart;
use mpcluster_agent::protocol::{self, FrameError, HEADER_LEN};
use mpcluster_agent::{
    ClientError, FakeMultipathd, Misbehaviour, MultipathdClient, SocketAddrSpec,
};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards unchanged to `System`; the bookkeeping is a relaxed atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ONE_MIB: usize = 1024 * 1024;

#[test]
fn announced_lengths_are_never_allocated_up_front() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 1. 64 MiB announced: refused before reading, nothing allocated for it.
    runtime.block_on(async {
        let fake = FakeMultipathd::start(dir.path().join("oversized.sock")).unwrap();
        fake.set_misbehaviour(Some(Misbehaviour::OversizedLength));
        let client = MultipathdClient::new(fake.socket_spec(), Duration::from_secs(5));
        LARGEST.store(0, Ordering::SeqCst);
        let err = client.show_maps_json().await.unwrap_err();
        let largest = LARGEST.load(Ordering::SeqCst);
        assert!(
            matches!(
                err,
                ClientError::InvalidLength {
                    source: FrameError::TooLong { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(largest < ONE_MIB, "largest allocation {largest} bytes");
    });

    // 2. 7 MiB announced (within the limit), 10 bytes sent, then EOF: truncated, and the
    //    buffer grew only with what arrived.
    let path = dir.path().join("liar.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let announced = 7 * ONE_MIB;
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut header = [0u8; HEADER_LEN];
        stream.read_exact(&mut header).unwrap();
        let len = protocol::decode_len_below(header, protocol::MAX_CMD_LEN + 1).unwrap();
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        stream.write_all(&announced.to_ne_bytes()).unwrap();
        stream.write_all(b"{\"maps\": [").unwrap();
    });
    runtime.block_on(async {
        let client = MultipathdClient::new(SocketAddrSpec::Path(path), Duration::from_secs(5));
        LARGEST.store(0, Ordering::SeqCst);
        let err = client.show_maps_json().await.unwrap_err();
        let largest = LARGEST.load(Ordering::SeqCst);
        match err {
            ClientError::Truncated {
                part: FramePart::Body,
                expected,
                received,
                ..
            } => {
                assert_eq!(expected, announced);
                assert_eq!(received, 10);
            }
            other => panic!("{other:?}"),
        }
        assert!(largest < ONE_MIB, "largest allocation {largest} bytes");
    });
    server.join().unwrap();

    // 3. 9 MiB announced: valid for multipathd (below 32 MiB) but more than the agent reads
    //    (issue 16): refused before reading, with an error that says so.
    let path = dir.path().join("big.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut header = [0u8; HEADER_LEN];
        stream.read_exact(&mut header).unwrap();
        let len = protocol::decode_len_below(header, protocol::MAX_CMD_LEN + 1).unwrap();
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        stream.write_all(&(9 * ONE_MIB).to_ne_bytes()).unwrap();
        let _ = stream.write_all(b"{\"maps\": [");
    });
    runtime.block_on(async {
        let client = MultipathdClient::new(SocketAddrSpec::Path(path), Duration::from_secs(5));
        LARGEST.store(0, Ordering::SeqCst);
        let err = client.show_maps_json().await.unwrap_err();
        let largest = LARGEST.load(Ordering::SeqCst);
        match &err {
            ClientError::ReplyTooLarge { len, limit, .. } => {
                assert_eq!(*len, 9 * ONE_MIB);
                assert_eq!(*limit, protocol::MAX_ACCEPTED_REPLY_LEN);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string().contains("mpcluster reads replies below"),
            "{err}"
        );
        assert!(err.hint().is_some());
        assert!(largest < ONE_MIB, "largest allocation {largest} bytes");
    });
    server.join().unwrap();
}
