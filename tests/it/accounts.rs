//! Accounts over real sockets and the real store: a credential belongs to one account from the
//! sign-up write until that account is deleted, a taken login is refused by the write, and
//! deleting an account ends its sessions (the asking one too) after the `{ctrl 200}`.

use serde_json::{json, Value};

use crate::support::{b64, code, unique_login, Client, Server};

/// Sends `{acc user:"new"}` for `login` with an email credential; returns the reply's ctrl.
async fn sign_up_with_email(c: &mut Client, login: &str, email: &str) -> Value {
    let id = c.id();
    let secret = b64(&format!("{login}:{login}-pw"));
    c.send(
        json!({"acc": {"id": id, "user": "new", "scheme": "basic", "secret": secret,
        "login": true, "cred": [{"meth": "email", "val": email}]}}),
    )
    .await;
    c.ctrl_for(&id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_logins_belong_to_one_account_until_it_is_deleted() {
    let server = Server::start(2, "");
    let email = format!("{}@example.com", unique_login("mail"));
    let login_a = unique_login("alice");

    let mut a = Client::connect(&server, "a").await;
    a.hi().await;
    let c = sign_up_with_email(&mut a, &login_a, &email).await;
    assert_eq!(c["code"], 200, "sign-up with an email: {c}");
    let token = c["params"]["token"].as_str().expect("token").to_owned();
    // A second session of the same user, on whichever shard the kernel picks.
    let mut a2 = Client::login(&server, "a2", &token).await;

    // The email (in any case) and the login are taken: the creation write refuses them.
    let mut b = Client::connect(&server, "b").await;
    b.hi().await;
    let login_b = unique_login("bob");
    let c = sign_up_with_email(&mut b, &login_b, &email.to_uppercase()).await;
    assert_eq!(
        (c["code"].clone(), c["params"]["what"].clone()),
        (json!(409), json!("email")),
        "{c}"
    );
    let c = sign_up_with_email(&mut b, &login_a, "other@example.com").await;
    assert_eq!(
        (c["code"].clone(), c["params"]["what"].clone()),
        (json!(409), json!("auth")),
        "{c}"
    );

    // A deletes its own account: 200, then every session of A is evicted and closed.
    let id = a.id();
    a.send(json!({"del": {"id": id, "what": "user"}})).await;
    let c = a.ctrl_for(&id).await;
    assert_eq!(c["code"], 200, "own deletion: {c}");
    for s in [&mut a, &mut a2] {
        let evicted = s.recv_until("205 evicted", |v| code(v) == Some(205)).await;
        assert_eq!(evicted["ctrl"]["text"], "evicted");
        s.expect_closed().await;
    }

    // The email was released with the account; the login too.
    let c = sign_up_with_email(&mut b, &login_b, &email).await;
    assert_eq!(c["code"], 200, "the released email on another account: {c}");
    let mut d = Client::connect(&server, "d").await;
    d.hi().await;
    let c = sign_up_with_email(&mut d, &login_a, "d@example.com").await;
    assert_eq!(c["code"], 200, "the released login on another account: {c}");
}
