use super::*;

fn hash() -> String {
    crate::auth::hash_password("pw").unwrap()
}

fn config(users: &str) -> String {
    format!(
        r#"
[[tenant]]
id = "acme"
dispositions = ["resolved", "escalated"]
[[tenant.chat]]
entry = "web"
queue = "webchat"
questions = [{{ key = "name", prompt = "Name?" }}]
{users}"#
    )
}

#[test]
fn a_good_file_parses_with_defaults() {
    let text = config(&format!(
        "[[user]]\ntenant = \"acme\"\nid = \"ann\"\nrole = \"agent\"\npassword_hash = \"{}\"\n",
        hash()
    ));
    let c = DeskConfig::from_toml(&text, "desk.toml").unwrap();
    assert_eq!(c.session_ttl_secs, 12 * 3600);
    assert_eq!(c.users[0].display_name(), "ann");
    assert_eq!(c.tenants[0].not_ready_reasons[0], "break");
    assert_eq!(c.tenants[0].chat[0].queue.as_str(), "webchat");
}

#[test]
fn bad_files_are_refused_naming_the_file_the_item_and_the_field() {
    let h = hash();
    let cases = [
        (
            "[[user]]\ntenant = \"acme\"\nid = \"ann\"\nrole = \"agent\"\npassword_hash = \"hunter2\"\n".to_owned(),
            "user[0] (acme/ann): password_hash is not an argon2 PHC string",
        ),
        (
            format!("[[user]]\ntenant = \"globex\"\nid = \"ann\"\nrole = \"agent\"\npassword_hash = \"{h}\"\n"),
            "user[0] (globex/ann): tenant globex has no [[tenant]] section",
        ),
        (
            format!("[[user]]\ntenant = \"acme\"\nid = \"ann\"\nrole = \"boss\"\npassword_hash = \"{h}\"\n"),
            "unknown variant `boss`",
        ),
        (
            format!("[[user]]\ntenant = \"acme\"\nid = \"ann\"\nrole = \"agent\"\npasword_hash = \"{h}\"\n"),
            "unknown field `pasword_hash`",
        ),
        ("history_limit = 0\n".to_owned(), "history_limit = 0 must be between"),
    ];
    for (extra, says) in cases {
        // Top-level keys must come before the tables.
        let text = if extra.starts_with("history") {
            format!("{extra}{}", config(""))
        } else {
            config(&extra)
        };
        let err = DeskConfig::from_toml(&text, "desk.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("desk.toml: "), "{msg}");
        assert!(msg.contains(says), "{msg:?} does not say {says:?}");
    }
    let dup = "[[tenant]]\nid = \"acme\"\ndispositions = [\"ok\", \"ok\"]\n";
    let msg = DeskConfig::from_toml(dup, "d.toml")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("tenant[0] (acme): dispositions[1] = \"ok\" appears twice"),
        "{msg}"
    );
    let empty = "[[tenant]]\nid = \"acme\"\ndispositions = []\n";
    let msg = DeskConfig::from_toml(empty, "d.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("dispositions is empty"), "{msg}");
}

#[test]
fn the_demo_desk_configuration_is_valid_and_its_passwords_are_demo() {
    let c = DeskConfig::from_toml(include_str!("../../demo/desk.toml"), "demo/desk.toml").unwrap();
    assert!(
        c.users
            .iter()
            .all(|u| crate::auth::verify_password("demo", &u.password_hash))
    );
    assert_eq!(
        c.tenant(&TenantId::new("acme").unwrap()).unwrap().chat[0]
            .queue
            .as_str(),
        "webchat"
    );
}
