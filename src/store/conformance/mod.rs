//! The store conformance suite: what every [`Store`](crate::store::Store) implementation must
//! do, written once against `&dyn Store` so that each backend runs the same cases unchanged.
//!
//! Each case is a `pub(crate) fn(&dyn Store)` given a fresh, empty store; [`store_conformance!`]
//! turns every case into a `#[test]` for one backend's constructor. It owns the observable
//! contract of the `Store` trait (reads, `apply`'s batches and preconditions, indexes kept by
//! the store, composite reads). It does not know any backend: what only one backend can show
//! (its files, its raw rows, corrupt data, migrations) stays in that backend's own tests, which
//! may run a case here first and then look underneath.
//!
//! Adding a case: write the function in the module of its concern and list it in
//! [`store_conformance!`]; a case left out of the list is dead code, which the lints refuse.

pub(crate) mod fixtures;

pub(crate) mod batches;
pub(crate) mod creds;
pub(crate) mod del_log;
pub(crate) mod history;
pub(crate) mod indexes;
pub(crate) mod reads;
pub(crate) mod records;
pub(crate) mod removals;
pub(crate) mod tags;

/// Instantiates the whole conformance suite, one `#[test]` per case, in the module where it is
/// invoked. `$fresh` is a `fn() -> Box<dyn Store>` that returns a new, empty store each call.
///
/// ```ignore
/// fn fresh() -> Box<dyn Store> {
///     Box::new(RedbStore::in_memory())
/// }
/// crate::store::conformance::store_conformance!(fresh);
/// ```
macro_rules! store_conformance {
    ($fresh:expr) => {
        $crate::store::conformance::store_conformance!(@cases $fresh;
            records::every_record_type_round_trips,
            records::markers_only_rise_and_recv_stays_at_least_read,
            batches::a_conflicting_batch_is_skipped_and_the_others_apply,
            history::message_ranges_are_newest_first_and_bounded,
            history::excluded_ranges_are_skipped_and_do_not_count_toward_the_limit,
            history::hard_deletes_leave_tombstones_that_queries_skip_but_last_message_sees,
            del_log::del_log_is_an_ascending_bounded_range_of_one_topic,
            removals::delete_auth_removes_the_record_and_its_index_entry,
            removals::delete_topic_removes_every_row_of_the_topic_and_nothing_else,
            tags::the_tag_index_follows_tag_changes_of_users_and_topics,
            tags::find_tags_matches_several_tags_most_matches_first_within_a_limit,
            indexes::by_user_indexes_follow_puts_and_deletes,
            creds::a_claim_is_held_until_its_holder_releases_it,
            creds::claims_conflict_across_batches_of_one_apply,
            creds::a_user_may_claim_its_own_credential_again,
            creds::claims_and_releases_act_in_op_order,
            creds::claims_are_kept_only_by_claim_and_release,
            reads::history_keeps_the_asked_ranges_and_drops_the_readers_soft_deletions,
            reads::users_leaves_out_missing_ids,
            reads::contacts_count_active_members_and_leave_out_topics_without_a_record,
            reads::single_reads_answer_as_their_primitive,
        );
    };
    (@cases $fresh:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let fresh: fn() -> Box<dyn $crate::store::Store> = $fresh;
                let store = fresh();
                $crate::store::conformance::$module::$case(&*store);
            }
        )*
    };
}

pub(crate) use store_conformance;
