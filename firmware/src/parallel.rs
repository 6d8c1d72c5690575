//! Opening one batch's records on several cores: the Pi Zero 2 W has four, the Pi Zero one.
//!
//! What must stay single stays with the caller (`Dongle::unseal`): one borrowed key set (no
//! copy of a key is made for a thread), one rate-limit charge, one audit line, one answer.
//! This module only splits the items into contiguous chunks, runs each chunk on a scoped
//! thread and concatenates the results, so the answer keeps the request's order. Threads live
//! for one batch: nothing keeps running, and nothing outlives the borrow of the keys.

use std::num::NonZeroUsize;
use std::thread;

use vbzkey_protocol::KeyId;
use vbzkey_protocol::record::Record;
use vbzkey_protocol::wire::{ItemError, SealedItem};
use zeroize::Zeroizing;

use crate::keystore::Keys;

/// Most threads a batch uses: the Pi Zero 2 W's core count.
pub const MAX_THREADS: usize = 4;
/// Fewest items worth a thread of their own: below this, starting a thread costs more than
/// it saves.
const MIN_ITEMS_PER_THREAD: usize = 4;
/// Stack of a worker: an open needs a few KiB; the default 2 MiB would only cost address space.
const WORKER_STACK: usize = 256 * 1024;

/// The cores this process may use (1 on a Pi Zero), at most [`MAX_THREADS`].
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, NonZeroUsize::get).clamp(1, MAX_THREADS)
}

/// Open one item with whichever of `keys` its key id names.
pub fn open_one(keys: &Keys, item: &SealedItem) -> Result<(KeyId, Zeroizing<Vec<u8>>), ItemError> {
    let rec = Record::parse(&item.record).map_err(|e| ItemError::Record((&e).into()))?;
    let key = keys.by_id(rec.key_id()).ok_or(ItemError::NoSuchKey)?;
    let pt = rec.open(key, &item.context).map_err(|e| ItemError::Record((&e).into()))?;
    Ok((rec.key_id(), pt))
}

/// `items.iter().map(f).collect()`, computed on up to `threads` threads (the calling one
/// included), in the items' order. A thread the OS refuses to start is not an error: its
/// chunk is done on the calling thread.
pub fn map_ordered<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, MAX_THREADS).min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|scope| {
        let mut chunks = items.chunks(chunk);
        // The calling thread takes the first chunk itself, after starting the others.
        let first = chunks.next().unwrap_or_default();
        let workers: Vec<_> = chunks
            .map(|c| {
                let worker = thread::Builder::new()
                    .name("vbzkey-open".into())
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || c.iter().map(f).collect::<Vec<R>>());
                worker.map_err(|_| c)
            })
            .collect();
        let mut out: Vec<R> = first.iter().map(f).collect();
        out.reserve(items.len() - out.len());
        for w in workers {
            match w {
                Ok(handle) => match handle.join() {
                    Ok(part) => out.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(c) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn results_keep_the_request_order_for_every_size_and_thread_count() {
        for n in [0usize, 1, 3, 4, 7, 8, 9, 31, 100, 256] {
            let items: Vec<usize> = (0..n).collect();
            for threads in 0..=6 {
                let out = map_ordered(&items, threads, |i| i * 3 + 1);
                assert_eq!(
                    out,
                    items.iter().map(|i| i * 3 + 1).collect::<Vec<_>>(),
                    "{n}/{threads}"
                );
            }
        }
    }

    #[test]
    fn a_large_batch_really_runs_on_several_threads() {
        let seen = Mutex::new(HashSet::new());
        let items: Vec<u32> = (0..64).collect();
        // The second chunk runs on a thread of its own (unless the OS refused to start one).
        map_ordered(&items, 2, |_| {
            seen.lock().unwrap().insert(thread::current().id());
        });
        assert_eq!(seen.into_inner().unwrap().len(), 2);
    }

    #[test]
    fn small_batches_stay_on_the_calling_thread() {
        let me = thread::current().id();
        let items = [1u8; MIN_ITEMS_PER_THREAD * 2 - 1];
        assert!(map_ordered(&items, 4, |_| thread::current().id() == me).into_iter().all(|x| x));
    }

    #[test]
    fn default_threads_is_between_one_and_the_cap() {
        assert!((1..=MAX_THREADS).contains(&default_threads()));
    }
}
