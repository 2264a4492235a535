//! The writes of a large fan-out, on two threads.

use crate::server::outlet::Outlet;
use axum::body::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Fan-outs to at least this many subscribers are written by two threads.
pub(super) const SPLIT_WRITES_AT: usize = 256;
/// Writes handed over at a time.
pub(super) const WRITE_CHUNK: usize = 64;

/// The writes of a large fan-out, done by two threads: the dispatcher's and a
/// helper from the blocking pool. Each write is a system call that also runs
/// the loopback or network path of the packet (about 10 µs), against about
/// 1 µs to work out what a subscriber gets. So the helper starts writing the
/// first chunk while the dispatcher is still working out the rest, and once
/// that is done the dispatcher writes too; each thread takes the next chunk
/// when done with one, so a thread that gets less CPU does fewer writes. A
/// fan-out has at most one frame per subscriber and the next one starts after
/// this one has finished, so events keep their order on every stream.
pub(super) struct Pipeline {
    pub(super) shared: Arc<Writes>,
    /// Taken by [`Pipeline::finish`].
    pub(super) helper: Option<tokio::task::JoinHandle<()>>,
    /// The writes added so far.
    pub(super) added: usize,
}

pub(super) struct Writes {
    pub(super) queue: Mutex<WriteQueue>,
    pub(super) more: Condvar,
    /// Per write, in the order added: whether the outlet took it.
    pub(super) delivered: Vec<AtomicBool>,
}

/// Frames to write, each to its outlet. A fan-out has one frame per
/// (version, lane), so a chunk holds each of its frames once: handing a
/// frame to every write would move its shared reference count back and
/// forth between the two threads' CPUs, once per subscriber.
#[derive(Default)]
pub(super) struct WriteChunk {
    pub(super) frames: Vec<Bytes>,
    pub(super) writes: Vec<Write>,
}

/// One write of a chunk: an outlet and the index of its frame in the chunk.
pub(super) struct Write {
    pub(super) outlet: Arc<Outlet>,
    pub(super) frame: usize,
}

impl WriteChunk {
    pub(super) fn push(&mut self, outlet: Arc<Outlet>, frame: &Bytes) {
        let same = |f: &Bytes| f.as_ptr() == frame.as_ptr() && f.len() == frame.len();
        let i = match self.frames.iter().rposition(same) {
            Some(i) => i,
            None => {
                self.frames.push(frame.clone());
                self.frames.len() - 1
            }
        };
        self.writes.push(Write { outlet, frame: i });
    }

    pub(super) fn len(&self) -> usize {
        self.writes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Offers each frame to its outlet, in order: whether each took it.
    pub(super) fn offer_all(&self) -> impl Iterator<Item = bool> + '_ {
        self.writes
            .iter()
            .map(|write| write.outlet.offer(&self.frames[write.frame]))
    }
}

#[derive(Default)]
pub(super) struct WriteQueue {
    /// Chunks not taken yet, each with the index of its first write.
    pub(super) chunks: VecDeque<(usize, WriteChunk)>,
    /// No more chunks will come.
    pub(super) done: bool,
}

impl Writes {
    pub(super) fn queue(&self) -> std::sync::MutexGuard<'_, WriteQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes chunks and writes them until none is left and none will come.
    pub(super) fn work(&self) {
        loop {
            let next = {
                let mut queue = self.queue();
                loop {
                    if let Some(chunk) = queue.chunks.pop_front() {
                        break Some(chunk);
                    }
                    if queue.done {
                        break None;
                    }
                    queue = self.more.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some((first, chunk)) = next else {
                return;
            };
            for (i, delivered) in chunk.offer_all().enumerate() {
                self.delivered[first + i].store(delivered, Ordering::Relaxed);
            }
        }
    }
}

impl Pipeline {
    /// For a fan-out of at most `capacity` writes.
    pub(super) fn start(capacity: usize) -> Self {
        let shared = Arc::new(Writes {
            queue: Mutex::default(),
            more: Condvar::new(),
            delivered: (0..capacity).map(|_| AtomicBool::new(false)).collect(),
        });
        let helper = {
            let shared = shared.clone();
            Some(tokio::task::spawn_blocking(move || shared.work()))
        };
        Self {
            shared,
            helper,
            added: 0,
        }
    }

    /// Hands a chunk of writes to whichever thread is free.
    pub(super) fn add(&mut self, chunk: WriteChunk) {
        if chunk.is_empty() {
            return;
        }
        let first = self.added;
        self.added += chunk.len();
        self.shared.queue().chunks.push_back((first, chunk));
        self.shared.more.notify_one();
    }

    /// Writes what is left along with the helper; per write added, whether
    /// it was taken (`false`: the subscriber must be dropped).
    pub(super) async fn finish(mut self) -> Vec<bool> {
        self.close();
        self.shared.work();
        // Only a panic fails here: the writes the helper left undone stay
        // `false`, and those subscribers are dropped and reconnect.
        if let Some(helper) = self.helper.take() {
            let _ = helper.await;
        }
        self.shared.delivered[..self.added]
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect()
    }
}

impl Pipeline {
    /// No more chunks will come: the helper returns once the queue is empty.
    pub(super) fn close(&self) {
        self.shared.queue().done = true;
        self.shared.more.notify_all();
    }
}

impl Drop for Pipeline {
    /// A pipeline left unfinished (the dispatcher panicked while adding to
    /// it) must not keep its helper waiting, and the outlets open, forever.
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_fan_out_reaches_every_outlet_in_order() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let n = SPLIT_WRITES_AT + 44;
        let mut outlets = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..n {
            let (client, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            outlets.push(Arc::new(Outlet::new(accepted.unwrap().0, false)));
            clients.push(client.unwrap());
        }
        // Not live yet: every frame lands in the backlog, in order, on both
        // threads; chunks of every size, a partial one last.
        for round in [b"a", b"b"] {
            let mut pipeline = Pipeline::start(n);
            let mut chunk = WriteChunk::default();
            let frame = Bytes::from_static(round);
            for (i, outlet) in outlets.iter().enumerate() {
                chunk.push(outlet.clone(), &frame);
                if chunk.len() == 1 + i % WRITE_CHUNK {
                    assert_eq!(chunk.frames.len(), 1, "a chunk holds its frame once");
                    pipeline.add(std::mem::take(&mut chunk));
                }
            }
            pipeline.add(chunk);
            assert_eq!(pipeline.finish().await, vec![true; n]);
        }
        // A pipeline dropped unfinished lets its helper write what it was
        // given and return: no outlet stays held.
        let mut pipeline = Pipeline::start(1);
        let mut chunk = WriteChunk::default();
        chunk.push(outlets[0].clone(), &Bytes::from_static(b"c"));
        pipeline.add(chunk);
        let helper = pipeline.helper.take().unwrap();
        drop(pipeline);
        tokio::time::timeout(Duration::from_secs(10), helper)
            .await
            .expect("the helper returns")
            .unwrap();
        let (_closing_tx, closing) = tokio::sync::watch::channel(false);
        for (i, (outlet, client)) in outlets.iter().zip(&mut clients).enumerate() {
            let live = crate::server::outlet::Live {
                initial: vec![],
                heartbeat: crate::server::clock::Clock::system()
                    .ticker(Duration::from_secs(3600), Duration::from_secs(3600)),
                on_ping: Box::new(|| {}),
            };
            tokio::spawn(crate::server::outlet::run(
                outlet.clone(),
                live,
                closing.clone(),
            ));
            let want: &[u8] = if i == 0 { b"abc" } else { b"ab" };
            let mut got = vec![0u8; want.len()];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, want);
        }
    }
}
