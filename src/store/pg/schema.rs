//! The schema of [`PgStore`](super::PgStore): its versioned migrations and
//! [`migrate_conn`], which applies the pending ones in one transaction holding an advisory
//! lock, so that servers starting together against one database serialize and the schema is
//! made once.
//!
//! It owns the tables, their indexes and the `COMMENT`s that tell an operator how to read
//! them; `rows.rs` owns how a record maps onto their columns. A migration, once released, is
//! never edited: a change is a new entry at the end of [`MIGRATIONS`].

use super::pool::Conn;
use crate::store::StoreError;

/// The key of the advisory lock held while migrating ("coretalk" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_7265_7461_6c6b;

/// The schema version this binary writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// One schema step: version `i + 1` is `MIGRATIONS[i]`.
struct Migration {
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        description:
            "users, logins, topics, subscriptions, messages, delete log, tags, credential claims",
        sql: V1,
    },
    Migration {
        description: "cluster membership: node rows with leases and epochs, membership version",
        sql: V2,
    },
    Migration {
        description: "shared secrets: the token key every server on the database signs with",
        sql: V3,
    },
];

/// Secrets every server sharing the database must agree on (`PgStore::shared_secret`): the
/// token key, so that a token issued by one cluster node logs in on any other.
const V3: &str = r#"
CREATE TABLE shared_secret (
    name    text COLLATE "C" PRIMARY KEY,
    value   bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE shared_secret IS 'Secrets shared by every coretalk server on this database, written once by the first server (insert if absent) and never replaced: token_key signs login tokens (auth.token_key in the configuration overrides it). Guard this table like the password hashes.';
"#;

/// Cluster membership (`crate::cluster::membership`): one row per node that ever joined, and
/// the membership version every change bumps. A standalone server never writes them.
const V2: &str = r#"
CREATE TABLE cluster_node (
    name        text COLLATE "C" PRIMARY KEY,
    addr        text NOT NULL,
    epoch       bigint NOT NULL,
    state       text NOT NULL CHECK (state IN ('up', 'down', 'left')),
    lease_until timestamptz NOT NULL,
    changed     timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE cluster_node IS 'Cluster members. epoch rises each time the node (re)joins; a node masters topics only while its row is up with its own epoch, and its writes check that row (fencing). A peer whose lease_until passed is set down by one conditional UPDATE; a clean leave sets left.';
CREATE TABLE cluster_meta (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
COMMENT ON TABLE cluster_meta IS 'The membership version: bumped in the same transaction as every join, leave and declared death, so nodes that read the same version place topics alike.';
INSERT INTO cluster_meta (id, version) VALUES (1, 0);
"#;

const V1: &str = r#"
CREATE FUNCTION coretalk_u64_max(a bigint, b bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN (a < 0, a) >= (b < 0, b) THEN a ELSE b END $$;
COMMENT ON FUNCTION coretalk_u64_max(bigint, bigint) IS
    'The larger of two u64 values stored bit-cast in bigint columns.';

CREATE TABLE users (
    id           bigint PRIMARY KEY,
    created      bigint NOT NULL,
    updated      bigint NOT NULL,
    state        text NOT NULL CHECK (state IN ('ok', 'suspended', 'deleted')),
    access_auth  smallint NOT NULL,
    access_anon  smallint NOT NULL,
    public       text,
    trusted      text,
    tags         text[] NOT NULL,
    last_seen    bigint,
    last_seen_ua text,
    cred_methods text[] NOT NULL,
    cred_values  text[] NOT NULL,
    cred_done    boolean[] NOT NULL
);
COMMENT ON TABLE users IS 'Accounts. Ids and times are u64 stored bit-cast (values >= 2^63 read as negative); times are unix milliseconds; access_* are access-mode bit sets; public/trusted are client JSON kept verbatim; creds are three parallel arrays (method, value, confirmed).';

CREATE TABLE auth (
    login   text COLLATE "C" PRIMARY KEY,
    user_id bigint NOT NULL,
    scheme  text NOT NULL,
    level   text NOT NULL CHECK (level IN ('none', 'anon', 'auth', 'root')),
    secret  bytea NOT NULL,
    expires bigint
);
CREATE INDEX auth_by_user ON auth (user_id, login);
COMMENT ON TABLE auth IS 'Logins: one per unique key (scheme:login), e.g. basic:alice. user_id is a u64 bit-cast; expires is unix milliseconds.';

CREATE TABLE topics (
    name        text COLLATE "C" PRIMARY KEY,
    created     bigint NOT NULL,
    updated     bigint NOT NULL,
    owner       bigint,
    access_auth smallint NOT NULL,
    access_anon smallint NOT NULL,
    public      text,
    trusted     text,
    tags        text[] NOT NULL,
    is_chan     boolean NOT NULL,
    del_id      bigint NOT NULL,
    aux         text
);
COMMENT ON TABLE topics IS 'Stored topics (grp, p2p, sys). public/trusted/aux are client JSON kept verbatim; u64 values bit-cast.';

CREATE TABLE subs (
    topic    text COLLATE "C" NOT NULL,
    user_id  bigint NOT NULL,
    created  bigint NOT NULL,
    updated  bigint NOT NULL,
    deleted  bigint,
    want     smallint NOT NULL,
    given    smallint NOT NULL,
    read_seq bigint NOT NULL,
    recv_seq bigint NOT NULL,
    del_id   bigint NOT NULL,
    private  text,
    PRIMARY KEY (topic, user_id)
);
CREATE INDEX subs_by_user ON subs (user_id, topic);
COMMENT ON TABLE subs IS 'Subscriptions, deleted ones included (deleted = when). private is client JSON kept verbatim; u64 values bit-cast.';

CREATE TABLE messages (
    topic     text COLLATE "C" NOT NULL,
    seq       bigint NOT NULL,
    ts        bigint NOT NULL,
    from_user bigint NOT NULL,
    head      text,
    content   text NOT NULL,
    deleted   boolean NOT NULL,
    PRIMARY KEY (topic, seq)
);
COMMENT ON TABLE messages IS 'Messages; deleted rows are tombstones (empty content, no head) that keep their seq taken. head/content are client JSON kept verbatim; seq, ts and from_user are u64 bit-cast.';

CREATE TABLE dellog (
    topic    text COLLATE "C" NOT NULL,
    del_id   bigint NOT NULL,
    user_id  bigint,
    ts       bigint NOT NULL,
    range_lo bigint[] NOT NULL,
    range_hi bigint[] NOT NULL,
    PRIMARY KEY (topic, del_id)
);
COMMENT ON TABLE dellog IS 'Delete transactions of a topic: user_id NULL = hard delete for everyone, else that user''s soft delete; ranges are [range_lo[i], range_hi[i]) of u64 seqs bit-cast.';

CREATE TABLE tags (
    tag   text COLLATE "C" NOT NULL,
    owner text COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, owner)
);
CREATE INDEX tags_by_owner ON tags (owner);
COMMENT ON TABLE tags IS 'Tag index kept from users.tags and topics.tags; owner is usr... for a user, the topic name for a topic.';

CREATE TABLE cred_claims (
    cred    text COLLATE "C" PRIMARY KEY,
    user_id bigint NOT NULL
);
CREATE INDEX cred_claims_by_user ON cred_claims (user_id);
COMMENT ON TABLE cred_claims IS 'Confirmed credentials (method:value) and the user (u64 bit-cast) holding each.';
"#;

/// Applies the pending migrations on `conn` in one transaction under the migration lock and
/// returns the schema version before and after. A database at a version newer than
/// [`SCHEMA_VERSION`] is refused, untouched.
pub(super) fn migrate_conn(conn: &mut Conn) -> Result<(u32, u32), StoreError> {
    conn.begin()?;
    conn.query("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let row = conn.query_opt(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        &[],
    )?;
    let before: i32 = match row {
        Some(row) => row
            .try_get(0)
            .map_err(|e| StoreError::Backend(format!("reading the schema version: {e}")))?,
        None => 0,
    };
    let before = u32::try_from(before)
        .map_err(|_| StoreError::Backend(format!("invalid schema version {before}")))?;
    if before > SCHEMA_VERSION {
        conn.rollback()?;
        return Err(StoreError::Backend(format!(
            "the database schema is at version {before}, newer than this coretalk knows \
             ({SCHEMA_VERSION}): run a newer coretalk, or restore an older database"
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(before as usize) {
        let version = i as i32 + 1;
        conn.batch(m.sql)
            .map_err(|e| StoreError::Backend(format!("schema migration {version} failed: {e}")))?;
        conn.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, &m.description],
        )?;
        log::info!(
            "PostgreSQL schema migrated to version {version}: {}",
            m.description
        );
    }
    conn.commit()?;
    Ok((before, SCHEMA_VERSION))
}
