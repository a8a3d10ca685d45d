//! `{set}`/`{del}` by access mode, as a table of (operation, mode, expected code), and the
//! reference code and text of error paths, as a second table.

use serde_json::{json, Value};

use super::sim::*;
use crate::proto::client::SeqRange;
use crate::routing::DelWhat;
use crate::topic::*;

/// A user a row names: one of the fixture's three, or one with no stored record.
#[derive(Clone, Copy, Debug)]
enum User {
    Alice,
    Bob,
    Carol,
    /// `sid_user(n)`: nobody the store knows.
    Unknown(u64),
}

impl User {
    fn id(self) -> UserId {
        match self {
            User::Alice => ALICE,
            User::Bob => BOB,
            User::Carol => CAROL,
            User::Unknown(n) => sid_user(n),
        }
    }
}

/// The request a row sends (always with id "1").
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `{set}` on the group with this query (JSON).
    Set(&'static str),
    /// `{set sub}` on the group giving `User` this mode.
    SetSub(User, &'static str),
    /// `{set}` on the sender's own `me` with this query (JSON).
    SetMe(&'static str),
    /// `{del sub}` of `User` on the group.
    DelSub(User),
    /// `{del msg}` on the group of one range (low, hi), hard or soft.
    DelMsg(i64, i64, bool),
    /// `{leave unsub}` of the group.
    Unsub,
    /// `{sub}` to the group under its channel name.
    JoinChn,
}

impl Op {
    /// The routing name the request goes to, and the request, sent from `sid` as `uid`.
    fn request(self, sid: SessionId, uid: UserId) -> (String, TopicRequest) {
        let id = "1";
        let req = match self {
            Op::Set(q) => set_req(sid, uid, id, query(q)),
            Op::SetSub(user, mode) => set_req(
                sid,
                uid,
                id,
                json!({"sub": {"user": user.id().usr(), "mode": mode}}),
            ),
            Op::SetMe(q) => {
                let req = TopicRequest::Set {
                    hdr: ReqHead {
                        req: rq(sid, uid),
                        id: Some(id.into()),
                        as_seen: "me".into(),
                    },
                    query: set_query(query(q)),
                };
                return (uid.usr(), req);
            }
            Op::DelSub(user) => del_req(
                sid,
                uid,
                id,
                DelWhat::Sub {
                    user: user.id().usr(),
                },
            ),
            Op::DelMsg(low, hi, hard) => del_req(
                sid,
                uid,
                id,
                DelWhat::Msg {
                    ranges: vec![SeqRange { low, hi }],
                    hard,
                },
            ),
            Op::Unsub => leave(sid, uid, id, true),
            Op::JoinChn => join_as(sid, uid, &format!("chn{}", &GROUP[3..]), Some(id)),
        };
        (GROUP.to_owned(), req)
    }
}

fn query(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON query")
}

/// Who acts in a mode-matrix row, named by the mode their subscription grants.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Alice, the owner: JRWPASDO.
    Owner,
    /// Carol, an admin: JRWPAS.
    Admin,
    /// Bob, a plain member: JRWPS.
    Member,
}

/// One row of the mode matrix: `mode` sends `op` and is answered `expect`.
struct ModeRow {
    name: &'static str,
    mode: Mode,
    op: Op,
    expect: u64,
}

const fn row(name: &'static str, mode: Mode, op: Op, expect: u64) -> ModeRow {
    ModeRow {
        name,
        mode,
        op,
        expect,
    }
}

/// The rows run in order against one group: later rows see what earlier ones changed.
const MODE_MATRIX: &[ModeRow] = {
    use Mode::*;
    use Op::*;
    const PUBLIC: &str = r#"{"desc": {"public": {"fn": "x"}}}"#;
    &[
        row(
            "set desc public: member, not owner",
            Member,
            Set(PUBLIC),
            403,
        ),
        row("set desc public: admin, not owner", Admin, Set(PUBLIC), 403),
        row("set desc public: owner", Owner, Set(PUBLIC), 200),
        row(
            "set desc public again: nothing changes",
            Owner,
            Set(PUBLIC),
            304,
        ),
        row(
            "set own private: anyone subscribed",
            Member,
            Set(r#"{"desc": {"private": "mine"}}"#),
            200,
        ),
        row(
            "set defacs with O: malformed",
            Owner,
            Set(r#"{"desc": {"defacs": {"auth": "JRWPO"}}}"#),
            400,
        ),
        row(
            "set another member's mode: member, neither A nor O",
            Member,
            SetSub(User::Carol, "JR"),
            403,
        ),
        row(
            "set another member's mode: admin",
            Admin,
            SetSub(User::Bob, "JRWP"),
            200,
        ),
        row(
            "grant O: admin, not owner",
            Admin,
            SetSub(User::Bob, "JRWPASDO"),
            403,
        ),
        row(
            "drop own O: owner",
            Owner,
            Set(r#"{"sub": {"mode": "JRWPASD"}}"#),
            403,
        ),
        row(
            "want O: member",
            Member,
            Set(r#"{"sub": {"mode": "JRWPO"}}"#),
            403,
        ),
        row(
            "set group tags: member, not owner",
            Member,
            Set(r#"{"tags": ["chess"]}"#),
            403,
        ),
        row(
            "set group tags: owner",
            Owner,
            Set(r#"{"tags": ["chess"]}"#),
            200,
        ),
        row(
            "set a restricted tag: owner",
            Owner,
            Set(r#"{"tags": ["email:x@y.z"]}"#),
            403,
        ),
        row(
            "set aux: member, neither A nor O",
            Member,
            Set(r#"{"aux": {"pin": 1}}"#),
            403,
        ),
        row("set aux: admin", Admin, Set(r#"{"aux": {"pin": 1}}"#), 200),
        row(
            "del sub: member, neither A nor O",
            Member,
            DelSub(User::Carol),
            403,
        ),
        row(
            "del sub of the owner: admin",
            Admin,
            DelSub(User::Alice),
            403,
        ),
        row("del own sub: admin", Admin, DelSub(User::Carol), 403),
        row(
            "hard del msg without D: a soft delete",
            Member,
            DelMsg(1, 0, true),
            200,
        ),
        row(
            "del msg of a bad range: low past the end",
            Owner,
            DelMsg(5, 0, true),
            400,
        ),
        row(
            "del msg of a bad range: low zero",
            Owner,
            DelMsg(0, 0, false),
            400,
        ),
        row(
            "del sub of an unknown member: nothing to delete",
            Admin,
            DelSub(User::Unknown(77)),
            304,
        ),
        row("del sub of a member: admin", Admin, DelSub(User::Bob), 200),
    ]
};

#[test]
fn set_and_del_check_the_mode_they_need() {
    // Alice owns the group, Bob is a plain member (JRWPS), Carol an admin (JRWPAS).
    let (a1, b1, c1) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.attach(c1, CAROL);
    sim.run(
        GROUP,
        set_req(
            a1,
            ALICE,
            "g",
            json!({"sub": {"user": CAROL.usr(), "mode": "JRWPAS"}}),
        ),
    );
    assert_eq!(first_ctrl(&mut sim, a1), (200, "ok".into()));
    // Given A is not enough: Carol must also want it (mode = want & given).
    sim.run(
        GROUP,
        set_req(c1, CAROL, "w", json!({"sub": {"mode": "JRWPAS"}})),
    );
    assert_eq!(first_ctrl(&mut sim, c1), (200, "ok".into()));
    sim.publish(a1, ALICE, Some("p"), r#""one""#);
    sim.clear();

    let mut failed = Vec::new();
    for (i, r) in MODE_MATRIX.iter().enumerate() {
        let (s, u) = match r.mode {
            Mode::Owner => (a1, ALICE),
            Mode::Admin => (c1, CAROL),
            Mode::Member => (b1, BOB),
        };
        let (topic, req) = r.op.request(s, u);
        sim.run(&topic, req);
        let (got, text) = first_ctrl(&mut sim, s);
        if got != r.expect {
            failed.push(format!(
                "row {i} \"{}\" ({:?}, {:?}): expected {}, got {got} {text:?}",
                r.name, r.mode, r.op, r.expect
            ));
        }
        sim.clear();
    }
    assert!(
        failed.is_empty(),
        "{} of {} rows failed:\n{}",
        failed.len(),
        MODE_MATRIX.len(),
        failed.join("\n")
    );
    // Bob was evicted by the last row: 205 with unsub, and his subscription is deleted.
    assert!(!sim.topic(GROUP).attached.contains_key(&b1));
    assert!(sim.stored_sub(BOB).deleted.is_some());
    // Soft delete hid seq 1 for Bob only, hard delete needs D: the owner deletes for all.
    sim.run(
        GROUP,
        del_req(
            a1,
            ALICE,
            "h",
            DelWhat::Msg {
                ranges: vec![SeqRange { low: 1, hi: 2 }],
                hard: true,
            },
        ),
    );
    let c = ctrl(&sim.frames(a1)[0], 200, "ok");
    assert_eq!(
        c["params"]["del"], 2,
        "every {{del msg}} takes the next delete id"
    );
}

/// One error path: `user` on session `sid(session.0, session.1)` sends `op` and is answered
/// `code` and `text`.
struct ErrorRow {
    name: &'static str,
    user: User,
    session: (u16, u64),
    op: Op,
    code: u64,
    text: &'static str,
}

/// In the fixture Alice owns the group (on `sid(0, 1)`), Bob is a member (on `sid(1, 1)`),
/// and Carol is attached only to her `me` (on `sid(0, 2)`).
const ERROR_PATHS: &[ErrorRow] = &[
    ErrorRow {
        name: "a group that is not a channel has no `chn…` name",
        user: User::Carol,
        session: (1, 9),
        op: Op::JoinChn,
        code: 404,
        text: "not found",
    },
    ErrorRow {
        name: "nobody sets anything on a topic they are not in",
        user: User::Carol,
        session: (1, 8),
        op: Op::Set(r#"{"desc": {"private": "x"}}"#),
        code: 409,
        text: "must attach first",
    },
    ErrorRow {
        name: "already the value: not modified",
        user: User::Bob,
        session: (1, 1),
        op: Op::Set(r#"{"sub": {"mode": "JRWPS"}}"#),
        code: 304,
        text: "not modified",
    },
    ErrorRow {
        name: "nobody to delete",
        user: User::Alice,
        session: (0, 1),
        op: Op::DelSub(User::Carol),
        code: 304,
        text: "no action",
    },
    ErrorRow {
        name: "aux is for groups and P2P only, not `me`",
        user: User::Carol,
        session: (0, 2),
        op: Op::SetMe(r#"{"aux": {"k": 1}}"#),
        code: 405,
        text: "operation or method not allowed",
    },
    ErrorRow {
        name: "credentials are a `me` matter",
        user: User::Alice,
        session: (0, 1),
        op: Op::Set(r#"{"cred": {"meth": "email", "val": "a@b.c"}}"#),
        code: 405,
        text: "operation or method not allowed",
    },
    ErrorRow {
        name: "unknown users cannot be invited",
        user: User::Alice,
        session: (0, 1),
        op: Op::SetSub(User::Unknown(5), "JRWP"),
        code: 404,
        text: "user not found",
    },
    ErrorRow {
        name: "the owner cannot leave its own group for good",
        user: User::Alice,
        session: (0, 1),
        op: Op::Unsub,
        code: 403,
        text: "permission denied",
    },
    ErrorRow {
        name: "deleting messages outside the topic's range is malformed",
        user: User::Alice,
        session: (0, 1),
        op: Op::DelMsg(1, 0, true),
        code: 400,
        text: "malformed",
    },
];

#[test]
fn error_paths_answer_the_reference_code_and_text() {
    let (a1, b1, c1) = (sid(0, 1), sid(1, 1), sid(0, 2));
    let mut sim = group_with_alice_and_bob(2, a1, b1);
    for u in [ALICE, BOB, CAROL] {
        sim.add_user(u);
    }
    sim.attach_me(c1, CAROL);
    sim.clear();

    let mut failed = Vec::new();
    for (i, r) in ERROR_PATHS.iter().enumerate() {
        let s = sid(r.session.0, r.session.1);
        let (topic, req) = r.op.request(s, r.user.id());
        sim.run(&topic, req);
        let (got, got_text) = first_ctrl(&mut sim, s);
        if (got, got_text.as_str()) != (r.code, r.text) {
            failed.push(format!(
                "row {i} \"{}\" ({:?} on {:?}, {:?}): expected {} {:?}, got {got} {got_text:?}",
                r.name, r.user, r.session, r.op, r.code, r.text
            ));
        }
        sim.clear();
    }
    assert!(
        failed.is_empty(),
        "{} of {} rows failed:\n{}",
        failed.len(),
        ERROR_PATHS.len(),
        failed.join("\n")
    );
    // A member addressing a channel by its reader name is told to use the group's name.
    let mut chan = Sim::new(2);
    chan.topics
        .insert(GROUP.to_owned(), Topic::new_group(GROUP, 2));
    chan.run(GROUP, creation(a1, ALICE, "nchX", true));
    chan.clear();
    let chn_name = format!("chn{}", &GROUP[3..]);
    chan.run(GROUP, join_as(sid(0, 5), ALICE, &chn_name, Some("u")));
    let f = chan.frames(sid(0, 5));
    let c = ctrl(&f[0], 303, "use other");
    assert_eq!(c["params"]["topic"], GROUP);
}
