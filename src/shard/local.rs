//! The one thread-local of the crate: the current executor's [`ShardCtx`], installed once at
//! the executor's entry point and reached through [`with`].
//!
//! Borrows never cross an `.await`: every access is a synchronous closure.

use std::cell::RefCell;

use crate::shard::ShardCtx;

thread_local! {
    static CTX: RefCell<Option<ShardCtx>> = const { RefCell::new(None) };
}

/// Installs the shard context of this executor thread.
pub fn install(ctx: ShardCtx) {
    CTX.with(|c| *c.borrow_mut() = Some(ctx));
}

/// Removes and returns the context (at shutdown).
pub fn uninstall() -> Option<ShardCtx> {
    CTX.with(|c| c.borrow_mut().take())
}

/// Runs `f` with the shard context if this thread has one installed and nobody holds it:
/// `None` otherwise. For code that may run during teardown (a connection dropped with its
/// executor after the context was uninstalled).
pub fn try_with<R>(f: impl FnOnce(&mut ShardCtx) -> R) -> Option<R> {
    CTX.try_with(|c| {
        let mut guard = c.try_borrow_mut().ok()?;
        guard.as_mut().map(f)
    })
    .ok()
    .flatten()
}

/// Runs `f` with the shard context. Panics if called off a shard thread or re-entrantly,
/// both programming errors.
pub fn with<R>(f: impl FnOnce(&mut ShardCtx) -> R) -> R {
    CTX.with(|c| {
        let mut guard = c.borrow_mut();
        let ctx = guard
            .as_mut()
            .expect("shard context is installed on every executor thread");
        f(ctx)
    })
}
