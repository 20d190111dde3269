use super::*;

const OK: &str = r#"
site = "s1"
[[provider]]
id = "callpro"
[[tenant]]
id = "acme"
provider = "callpro"
skills = ["billing", "general"]
[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing", min = 2 }]
[[queue]]
tenant = "acme"
id = "general"
[[agent]]
id = "ann"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
"#;

fn with(extra: &str) -> Result<SiteConfig, ConfigError> {
    SiteConfig::from_toml(&format!("{OK}\n{extra}"), "site.toml")
}

fn err(extra: &str) -> String {
    with(extra).unwrap_err().to_string()
}

#[test]
fn a_valid_configuration_loads_with_its_defaults() {
    let c = with("").unwrap();
    assert_eq!(c.queues[0].strategy, Strategy::LongestIdle);
    assert_eq!(c.queues[0].sl_secs, 20);
    assert_eq!(c.queues[0].when_no_agents, QueueAction::Stay);
    assert_eq!(c.defaults.no_answer_secs, 15);
}

#[test]
fn the_bundled_demo_site_is_valid() {
    let text = include_str!("../../../hotline/demo/site.toml");
    let c = SiteConfig::from_toml(text, "demo/site.toml").unwrap();
    assert!(
        c.agents.iter().any(|a| a.serves.len() > 1),
        "the demo shows a shared agent"
    );
}

#[test]
fn malformed_toml_names_the_file_line_and_column() {
    let e = SiteConfig::from_toml("site = \"s1\"\n[[queue]\n", "bad.toml").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("bad.toml:"), "{msg}");
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn an_unknown_field_is_refused_rather_than_ignored() {
    let msg = err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nstrategyy = \"round_robin\"\n");
    assert!(msg.contains("strategyy"), "{msg}");
}

#[test]
fn a_queue_naming_an_unknown_skill_is_refused_with_the_skill() {
    assert_eq!(
        err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nskills = [{ skill = \"billng\" }]\n"),
        "queue acme/x names unknown skill \"billng\""
    );
}

#[test]
fn a_queue_of_an_unknown_tenant_is_refused() {
    assert_eq!(
        err("[[queue]]\ntenant = \"nobody\"\nid = \"x\"\n"),
        "queue nobody/x names unknown tenant \"nobody\""
    );
}

#[test]
fn overflow_to_a_missing_queue_or_to_itself_is_refused() {
    assert_eq!(
        err(
            "[[queue]]\ntenant = \"acme\"\nid = \"x\"\nmax_size = 3\nwhen_full = { action = \"overflow\", queue = \"nowhere\" }\n"
        ),
        "queue acme/x names unknown queue \"nowhere\""
    );
    assert!(err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nmax_wait_secs = 3\non_max_wait = { action = \"overflow\", queue = \"x\" }\n")
        .contains("cannot overflow or widen to itself"));
}

#[test]
fn overflow_across_channels_is_refused() {
    let msg = err(
        "[[queue]]\ntenant = \"acme\"\nid = \"chat\"\nchannel = \"chat\"\nmax_size = 2\nwhen_full = { action = \"overflow\", queue = \"general\" }\n",
    );
    assert_eq!(
        msg,
        "queue acme/chat: queue general takes voice but this queue takes chat"
    );
}

#[test]
fn expansion_steps_must_grow_in_time_and_say_something() {
    let msg = err(
        "[[queue]]\ntenant = \"acme\"\nid = \"x\"\nskills = [{ skill = \"billing\" }]\n[[queue.expand]]\nafter_secs = 30\ndrop = \"billing\"\n[[queue.expand]]\nafter_secs = 20\nwiden_to = \"general\"\n",
    );
    assert_eq!(
        msg,
        "queue acme/x expand step 2: after_secs 20 must be greater than the previous step's 30"
    );
    let msg = err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\n[[queue.expand]]\nafter_secs = 30\n");
    assert!(msg.contains("says nothing"), "{msg}");
    let msg = err(
        "[[queue]]\ntenant = \"acme\"\nid = \"x\"\nskills = [{ skill = \"billing\" }]\n[[queue.expand]]\nafter_secs = 30\ndrop = \"general\"\n",
    );
    assert!(msg.contains("not one of the queue's skills"), "{msg}");
}

#[test]
fn impossible_queue_actions_are_refused() {
    assert!(err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nmax_size = 1\nwhen_full = { action = \"callback\" }\n").contains("when_full"));
    assert!(
        err(
            "[[queue]]\ntenant = \"acme\"\nid = \"x\"\nwhen_no_agents = { action = \"callback\" }\n"
        )
        .contains("when_no_agents")
    );
    assert!(err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nmax_size = 0\n").contains("max_size 0"));
    assert!(
        err("[[queue]]\ntenant = \"acme\"\nid = \"x\"\nsl_target = 80\n").contains("sl_target 80")
    );
}

#[test]
fn proficiency_outside_one_to_five_is_refused_while_parsing() {
    let msg = err(
        "[[agent]]\nid = \"bob\"\nserves = [{ tenant = \"acme\", skills = [{ skill = \"billing\", level = 9 }] }]\n",
    );
    assert!(msg.contains("proficiency 9 is out of range"), "{msg}");
}

#[test]
fn agents_must_serve_known_tenants_with_known_skills_and_some_capacity() {
    assert_eq!(
        err(
            "[[agent]]\nid = \"bob\"\nserves = [{ tenant = \"acme\", skills = [{ skill = \"french\", level = 2 }] }]\n"
        ),
        "agent bob (tenant acme) names unknown skill \"french\""
    );
    assert_eq!(
        err("[[agent]]\nid = \"bob\"\nserves = [{ tenant = \"initech\" }]\n"),
        "agent bob names unknown tenant \"initech\""
    );
    assert!(err("[[agent]]\nid = \"bob\"\nserves = []\n").contains("serves no tenant"));
    assert!(err("[[agent]]\nid = \"bob\"\ncapacity = { voice = 0, chat = 0, callback = 0 }\nserves = [{ tenant = \"acme\" }]\n").contains("no capacity"));
    assert_eq!(
        err("[[agent]]\nid = \"ann\"\nserves = [{ tenant = \"acme\" }]\n"),
        "agent \"ann\" is defined twice"
    );
}

#[test]
fn bad_ids_are_refused_with_the_offending_text() {
    let msg = err("[[queue]]\ntenant = \"acme\"\nid = \"sales team\"\n");
    assert!(msg.contains("invalid queue id \"sales team\""), "{msg}");
}

#[test]
fn a_missing_file_says_which_file() {
    let e = SiteConfig::from_file("/nonexistent/site.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read /nonexistent/site.toml:"),
        "{e}"
    );
}
