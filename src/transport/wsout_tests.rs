//! Tests of the shard writer's rounds over real sockets, with and without batched sends: every
//! link's frames arrive whole and in order, a socket that takes nothing leaves the whole write
//! to its task, a closed peer fails its link, a detached link is never written, and a full
//! outbox is written out before it overflows.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::shard::{Outbox, PushHook};
use crate::transport::ws::{set_send_buffer, Scratch};

/// Sockets a round writes: past `BATCH_FROM`, so a batching writer batches them.
const LINKS: usize = 12;

struct Peer {
    near: UnixStream,
    far: UnixStream,
    outbox: Rc<Outbox>,
    link: Rc<Link>,
}

/// `LINKS` socket pairs with a link on the near end of each; every other link's socket is
/// registered with the writer's ring (if it has one), the rest are sent to by descriptor.
fn peers(scratch: &Scratch) -> Vec<Peer> {
    (0..LINKS)
        .map(|i| {
            let (near, far) = UnixStream::pair().unwrap();
            near.set_nonblocking(true).unwrap();
            far.set_nonblocking(true).unwrap();
            // A small send buffer: a big frame is taken in part, and the rest left to `tx`.
            set_send_buffer(near.as_raw_fd(), 8192).unwrap();
            let outbox = Rc::new(Outbox::new(1 << 16, 1 << 26));
            let link = Link::new(near.as_raw_fd(), &outbox, &scratch.writer, false);
            if i % 2 == 0 {
                link.register();
            }
            Peer {
                near,
                far,
                outbox,
                link,
            }
        })
        .collect()
}

/// What the far end of a socket has received so far.
fn received(far: &mut UnixStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match far.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The frames peer `i` is sent in each round: a few small ones, and a big one now and then.
fn frames(i: usize, round: usize) -> Vec<Bytes> {
    let mut f: Vec<Bytes> = (0..=i % 3)
        .map(|k| {
            Bytes::from(format!(
                "{{\"data\":{{\"seq\":{round},\"to\":{i},\"k\":{k}}}}}"
            ))
        })
        .collect();
    if (i + round).is_multiple_of(5) {
        f.push(Bytes::from("x".repeat(70_000)));
    }
    f
}

fn encoded(frames: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        wsframe::encode(&mut out, OP_TEXT, f);
    }
    out
}

/// Three rounds to every peer through a writer batching `send_batch` sends: each peer gets
/// exactly its frames, in order.
fn rounds_arrive_whole(send_batch: usize) {
    let scratch = Scratch::new(4096, send_batch, Duration::from_secs(1), Duration::ZERO);
    let mut peers = peers(&scratch);
    let mut want = vec![Vec::new(); LINKS];
    for round in 0..3 {
        for (i, p) in peers.iter().enumerate() {
            for f in frames(i, round) {
                p.outbox.push(f.clone()).unwrap();
            }
            want[i].extend(encoded(&frames(i, round)));
        }
        let links: Vec<_> = peers.iter().map(|p| p.link.clone()).collect();
        scratch.writer.write_links(&links, &scratch);
        let mut parted = 0;
        for (i, p) in peers.iter_mut().enumerate() {
            // A big frame does not fit the socket at once: its rest waits in `tx` for the task.
            let mut got = received(&mut p.far);
            parted += usize::from(!p.link.tx.is_empty());
            while !p.link.tx.is_empty() {
                let rest = p.link.tx.take();
                let n = send_all(p.near.as_raw_fd(), &rest).unwrap();
                p.link.tx.push(&rest[n..]);
                got.extend(received(&mut p.far));
            }
            assert_eq!(
                got.len(),
                want[i].len(),
                "peer {i} round {round}, batch {send_batch}"
            );
            assert!(
                got == want[i],
                "peer {i} round {round}: bytes differ (batch {send_batch})"
            );
            assert!(!p.link.failed());
            want[i].clear();
        }
        assert!(parted > 0, "round {round}: some big frame was sent in part");
    }
    if send_batch > 0 {
        let batch = scratch.writer.batch.borrow();
        let batch = batch.as_ref().expect("a batch");
        assert!(!batch.given_up(), "the ring was kept");
        assert_eq!(
            batch.answered(),
            3 * LINKS as u64,
            "every send went through the ring"
        );
        assert!(peers[0].link.slot().is_some(), "sockets are registered");
        assert!(peers[1].link.slot().is_none());
    }
}

#[test]
fn batched_rounds_deliver_every_frame_in_order() {
    rounds_arrive_whole(64);
}

#[test]
fn small_batches_flush_as_they_fill() {
    // Smaller than a round: the round is submitted in three parts.
    rounds_arrive_whole(5);
}

#[test]
fn unbatched_rounds_deliver_every_frame_in_order() {
    rounds_arrive_whole(0);
}

/// A full socket and a detached link in one batched round.
#[test]
fn batched_round_leaves_full_and_detached_links_to_their_tasks() {
    let scratch = Scratch::new(4096, 64, Duration::from_secs(1), Duration::ZERO);
    let mut peers = peers(&scratch);
    // Peer 0's socket takes nothing more.
    let filler = vec![0u8; 65536];
    while send_all(peers[0].near.as_raw_fd(), &filler).unwrap() == filler.len() {}
    // Peer 2's task let go of its socket.
    peers[2].link.detach();
    let frame = Bytes::from_static(b"{\"data\":{\"seq\":1}}");
    for p in &peers {
        p.outbox.push(frame.clone()).unwrap();
    }
    let links: Vec<_> = peers.iter().map(|p| p.link.clone()).collect();
    scratch.writer.write_links(&links, &scratch);

    let whole = encoded(std::slice::from_ref(&frame));
    assert_eq!(
        peers[0].link.tx.take(),
        whole,
        "a full socket's write waits for its task"
    );
    assert!(!peers[0].link.failed());
    assert!(peers[2].link.tx.is_empty());
    assert_eq!(
        peers[2].outbox.len(),
        1,
        "a detached link's frames stay queued"
    );
    for (i, p) in peers.iter_mut().enumerate() {
        if i != 0 && i != 2 {
            assert_eq!(received(&mut p.far), whole, "peer {i}");
        }
    }
}

/// A send to a socket whose peer closed fails the link, batched as direct.
#[test]
fn batched_send_to_a_closed_peer_fails_the_link() {
    let scratch = Scratch::new(4096, 64, Duration::from_secs(1), Duration::ZERO);
    let peers = peers(&scratch);
    let mut kept = Vec::new();
    for (i, p) in peers.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(p.far);
            kept.push((p.near, None, p.outbox, p.link));
        } else {
            kept.push((p.near, Some(p.far), p.outbox, p.link));
        }
    }
    for (_, _, outbox, _) in &kept {
        outbox.push(Bytes::from_static(b"{}")).unwrap();
    }
    let links: Vec<_> = kept.iter().map(|k| k.3.clone()).collect();
    scratch.writer.write_links(&links, &scratch);
    for (i, (_, far, _, link)) in kept.iter_mut().enumerate() {
        match far {
            None => assert!(link.failed(), "link {i}: its peer closed"),
            Some(far) => {
                assert!(!link.failed(), "link {i}");
                assert_eq!(received(far), encoded(&[Bytes::from_static(b"{}")]));
            }
        }
    }
}

/// Whether the far end of a socket has seen it closed.
fn closed(far: &mut UnixStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(far.read(&mut buf), Ok(0))
}

/// A registered socket closes only once its slot lets go of it: detaching does, and so does
/// dropping a link that was never detached.
#[test]
fn registered_sockets_close_once_their_links_let_go() {
    let scratch = Scratch::new(4096, 64, Duration::from_secs(1), Duration::ZERO);
    let mut peers = peers(&scratch);
    assert!(
        peers[0].link.slot().is_some() && peers[2].link.slot().is_some(),
        "{:?} {:?}",
        peers[0].link.slot(),
        peers[2].link.slot()
    );
    let mut second = peers.remove(2);
    let mut first = peers.remove(0);

    // Closing the descriptor while the ring holds the file leaves the connection open.
    drop(first.near);
    assert!(!closed(&mut first.far), "the ring still holds the socket");
    first.link.detach();
    assert!(closed(&mut first.far), "detached: the socket closed");

    // A link dropped without being detached lets go of its socket too.
    drop(second.near);
    drop(second.outbox);
    drop(second.link);
    assert!(closed(&mut second.far), "dropped: the socket closed");

    // The slots are reused.
    let (near, _far) = UnixStream::pair().unwrap();
    let outbox = Rc::new(Outbox::new(16, 1 << 20));
    let link = Link::new(near.as_raw_fd(), &outbox, &scratch.writer, false);
    link.register();
    assert!(
        matches!(link.slot(), Some(0 | 1)),
        "a freed slot: {:?}",
        link.slot()
    );
}

/// A full outbox is written to its socket before a push overflows: a peer that reads gets every
/// frame, however many are pushed between two rounds of the writer; once the socket takes no
/// more and a remainder waits in `tx`, the next full queue overflows.
#[test]
fn a_full_outbox_is_written_before_it_overflows() {
    let scratch = Scratch::new(4096, 64, Duration::from_secs(1), Duration::ZERO);
    let (near, mut far) = UnixStream::pair().unwrap();
    near.set_nonblocking(true).unwrap();
    far.set_nonblocking(true).unwrap();
    let outbox = Rc::new(Outbox::new(4, 1 << 20));
    let link = Link::new(near.as_raw_fd(), &outbox, &scratch.writer, false);
    let hook: Rc<dyn PushHook> = link.clone();
    outbox.set_hook(Rc::downgrade(&hook));

    // Ten queues' worth with no round of the writer between them, then the round.
    let sent: Vec<Bytes> = (0..40)
        .map(|n| Bytes::from(format!("{{\"n\":{n}}}")))
        .collect();
    for f in &sent {
        outbox
            .push(f.clone())
            .expect("room made by writing the queue");
    }
    assert!(outbox.len() <= 4);
    scratch
        .writer
        .write_links(std::slice::from_ref(&link), &scratch);
    assert_eq!(received(&mut far), encoded(&sent), "all of them, in order");

    // The peer stops reading: pushes go on until the socket is full and a remainder waits.
    let big = Bytes::from("y".repeat(1000));
    let mut pushed = 0;
    while outbox.push(big.clone()).is_ok() {
        pushed += 1;
        assert!(pushed < 100_000, "no overflow while the peer reads nothing");
    }
    assert!(!link.tx.is_empty(), "a remainder waits for the task");
    assert_eq!(outbox.len(), 4, "the queue itself stays bounded");
    // Everything pushed is accounted for: read by the peer, held in `tx` or queued.
    let mut got = received(&mut far);
    got.extend_from_slice(&link.tx.take());
    for _ in 0..outbox.len() {
        got.extend(encoded(&[outbox.try_pop().unwrap()]));
    }
    assert_eq!(got, encoded(&vec![big; pushed]));
}

#[test]
fn unsent_bytes_are_boxed_only_while_some_wait() {
    let u = super::Unsent::default();
    assert!(u.is_empty());
    u.push(b"abc");
    u.push(b"de");
    assert!(!u.is_empty());
    // A partial write leaves the rest; a whole one leaves nothing (and no box).
    assert_eq!(u.with(|v| v.drain(..2).count()), 2);
    assert_eq!(u.with(|v| v.clone()), b"cde");
    u.with(Vec::clear);
    assert!(u.is_empty());
    u.push(b"x");
    assert_eq!(u.take(), b"x");
    assert!(u.is_empty());
    // Every session's writer link is one `Rc<Link>` (W1): 40 bytes, 56 with the `Rc`.
    let size = std::mem::size_of::<super::Link>();
    assert!(size <= 40, "Link is {size} bytes");
}
