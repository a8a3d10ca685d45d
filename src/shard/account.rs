//! The account machine's runtime adapter: feeds logins, account creations and account changes
//! of this shard's sessions to [`Accounts`] with the clock and fresh entropy, and carries out
//! what it emits — bcrypt jobs on the hash pool, store reads (through the shard's read path),
//! durable writes on the writer, replies to sessions, evictions on every shard, topic requests.
//!
//! The protocol decisions (codes, records, who is evicted) are the machine's, in `account/`;
//! this file only keeps the tickets of outstanding jobs, mapped to the machine's tokens.

use std::collections::VecDeque;

use crate::account::{AccountCx, AccountOut, Accounts, AuthEffect};
use crate::auth::hasher::HashOutcome;
use crate::ids::SessionId;
use crate::routing::{AccountChange, AccountRequest};
use crate::shard::mesh::ReadResult;
use crate::shard::{now, Local, ReadWaiter, ShardCtx, StoreWaiter};
use crate::store::{ReadQuery, StoreError};

/// A hash job of the account machine: its token.
pub(crate) struct HashWaiter(u64);

/// A write of the account machine: its token.
pub(crate) struct AccountWaiter(u64);

impl ShardCtx {
    /// `{login}` with `basic` or `token`.
    pub(crate) fn login(
        &mut self,
        sid: SessionId,
        id: Option<String>,
        scheme: String,
        secret: Vec<u8>,
    ) {
        self.account_step(|acc, cx| acc.login(sid, id, scheme, secret, cx));
    }

    /// `{acc user:"new…"}`.
    pub(crate) fn create_account(&mut self, sid: SessionId, req: AccountRequest) {
        self.account_step(|acc, cx| acc.create(sid, req, cx));
    }

    /// `{acc}` updates and `{del user}`.
    pub(crate) fn account_change(&mut self, sid: SessionId, c: AccountChange) {
        self.account_step(|acc, cx| acc.change(sid, c, cx));
    }

    /// A hash job of the account machine finished.
    pub(crate) fn hashed(&mut self, w: HashWaiter, outcome: HashOutcome) {
        self.account_step(|acc, cx| acc.hashed(w.0, outcome, cx));
    }

    /// A write of the account machine is durable (or failed).
    pub(crate) fn account_stored(&mut self, w: AccountWaiter, res: Result<(), StoreError>) {
        self.account_step(|acc, cx| acc.persisted(w.0, res, cx));
    }

    /// A read of the account machine was answered.
    pub(crate) fn account_read(&mut self, token: u64, mut results: Vec<(ReadQuery, ReadResult)>) {
        let res = match results.pop() {
            Some((_, res)) => res,
            None => Err(StoreError::Backend("empty read answer".into())),
        };
        self.account_step(|acc, cx| acc.read_done(token, res, cx));
    }

    /// Runs one input through the machine and carries out its outputs.
    fn account_step(&mut self, input: impl FnOnce(&mut Accounts, &mut AccountCx<'_>)) {
        let mut out = Vec::new();
        let mut cx = AccountCx {
            now: now(),
            entropy: rand::random(),
            out: &mut out,
        };
        input(&mut self.accounts, &mut cx);
        self.apply_account_out(out);
    }

    /// Carries out the machine's outputs in order. A completion that comes back within the
    /// step (a store read, a refused job) has its outputs carried out before the rest.
    fn apply_account_out(&mut self, out: Vec<AccountOut>) {
        let mut queue = VecDeque::from(out);
        while let Some(o) = queue.pop_front() {
            let mut more = Vec::new();
            match o {
                AccountOut::Reply { sid, frame, effect } => {
                    if let AuthEffect::Authenticated(uid, level) = effect {
                        // Applied once the user's home shard grants a session slot.
                        self.authenticated(sid, uid, level, frame);
                        continue;
                    }
                    if let Some(slot) = self.sessions.get_mut(&sid) {
                        if effect == AuthEffect::Finished {
                            slot.session.auth_finished();
                        }
                    }
                    self.push_frame(sid, frame);
                }
                AccountOut::Hash { token, job } => {
                    let ticket = self.ticket();
                    let service = self.service.clone();
                    let res = self.hasher.submit(
                        job,
                        Box::new(move |outcome| {
                            let _ = service.send(Local::HashDone { ticket, outcome });
                        }),
                    );
                    match res {
                        Ok(()) => {
                            self.hash_waiters.insert(ticket, HashWaiter(token));
                        }
                        Err(_) => self.account_now(&mut more, |acc, cx| acc.refused(token, cx)),
                    }
                }
                AccountOut::Read { token, query } => {
                    // Answered as a completion ([`ShardCtx::account_read`]), within this step
                    // for the embedded store, later for a network one.
                    self.read(ReadWaiter::Account(token), vec![query]);
                }
                AccountOut::Persist { token, batch } => {
                    let ticket = self.ticket();
                    self.store_waiters
                        .insert(ticket, StoreWaiter::Account(AccountWaiter(token)));
                    if let Err(e) = self.submit(ticket, batch) {
                        self.store_waiters.remove(&ticket);
                        log::error!("account write refused by the store: {e}");
                        self.account_now(&mut more, |acc, cx| acc.refused(token, cx));
                    }
                }
                AccountOut::Route { topic, req } => self.route(topic, req),
                AccountOut::UserPres { frame, targets } => self.user_pres(frame, targets),
                AccountOut::Evict { uid, except } => self.evict_everywhere(uid, except),
            }
            for m in more.into_iter().rev() {
                queue.push_front(m);
            }
        }
    }

    /// Feeds a completion that is known within the step; its outputs go to `more`.
    fn account_now(
        &mut self,
        more: &mut Vec<AccountOut>,
        input: impl FnOnce(&mut Accounts, &mut AccountCx<'_>),
    ) {
        let mut cx = AccountCx {
            now: now(),
            entropy: rand::random(),
            out: more,
        };
        input(&mut self.accounts, &mut cx);
    }
}
