//! Parser and validator: one test per class of error, each asserting the line and
//! column the error is reported at, and that the demo flow passes.

use hotline_core::channel::Channel;

use crate::catalog::{Catalog, TenantCatalog};
use crate::check::load;
use crate::flow::{Condition, NodeKind};

pub(crate) fn catalog() -> Catalog {
    let acme = TenantCatalog::default()
        .with_queue("claims".parse().unwrap(), Channel::Voice)
        .with_queue("sales".parse().unwrap(), Channel::Voice)
        .with_queue("webchat".parse().unwrap(), Channel::Chat)
        .with_skill("claims".parse().unwrap())
        .with_skill("english".parse().unwrap())
        .with_skill("mandarin".parse().unwrap());
    Catalog::default().with_tenant("acme".parse().unwrap(), acme)
}

/// (line, column, message) of every error in `text`; panics if it is clean.
fn errors(text: &str) -> Vec<(u32, u32, String)> {
    let e = load(text, "t.yaml", &catalog()).expect_err("the flow should be refused");
    e.diagnostics
        .into_iter()
        .map(|d| (d.pos.line, d.pos.col, d.message))
        .collect()
}

/// The one error in `text`.
fn one_error(text: &str) -> (u32, u32, String) {
    let mut e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.remove(0)
}

const HEAD: &str = "flow: main\ntenant: acme\nnodes:\n";

#[test]
fn the_demo_flow_is_clean_against_the_demo_site() {
    let site = hotline_acd::config::SiteConfig::from_toml(
        include_str!("../../hotline/demo/site.toml"),
        "site.toml",
    )
    .unwrap();
    let text = include_str!("../../hotline/demo/flows/acme-main.yaml");
    let flow =
        load(text, "acme-main.yaml", &Catalog::from_site(&site)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flow.name, "main");
    assert_eq!(flow.start.node, "greeting");
    assert!(flow.calendars["office"].holidays.len() >= 2);
    let menu = flow.node("main_menu").unwrap();
    let NodeKind::Menu(m) = &menu.kind else {
        panic!("main_menu is a menu")
    };
    assert_eq!(m.choices[0].digit, Some('1'));
    assert!(m.choices[2].keywords.contains(&"中文".to_owned()));
    assert_eq!(m.invalid.as_ref().unwrap().id, "sorry", "defaults apply");
}

#[test]
fn a_dangling_target_is_reported_where_it_is_written_with_a_suggestion() {
    let text = format!(
        "{HEAD}  hello:\n    type: menu\n    prompt: Hi\n    choices: [{{ digit: 1, goto: sale }}]\n    on_failure: sales\n  sales:\n    type: end\n"
    );
    let (line, col, msg) = one_error(&text);
    assert_eq!((line, col), (7, 33));
    assert!(msg.starts_with("node \"hello\": `goto` goes to"), "{msg}");
    assert!(msg.contains("\"sale\", which is not a node"), "{msg}");
    assert!(msg.contains("did you mean \"sales\"?"), "{msg}");
}

#[test]
fn a_node_nothing_leads_to_is_unreachable_at_its_own_line() {
    let text =
        format!("{HEAD}  hello:\n    type: end\n  orphan:\n    type: end\n    reason: never\n");
    let (line, col, msg) = one_error(&text);
    assert_eq!((line, col), (6, 3));
    assert!(msg.contains("node \"orphan\" is never reached"), "{msg}");
    assert!(msg.contains("start node \"hello\""), "{msg}");
}

#[test]
fn a_loop_through_nodes_that_wait_for_nothing_is_refused() {
    let text = format!(
        "{HEAD}  a:\n    type: say\n    prompt: one\n    next: b\n  b:\n    type: set\n    attributes: {{ x: y }}\n    next: a\n"
    );
    let (line, col, msg) = one_error(&text);
    assert_eq!((line, col), (4, 3), "reported at the loop's first node");
    assert!(msg.contains("\"a\" → \"b\" → \"a\""), "{msg}");
    assert!(msg.contains("put a menu or collect in the loop"), "{msg}");
}

#[test]
fn a_loop_through_a_menu_waits_for_the_customer_and_is_fine() {
    let text = format!(
        "{HEAD}  ask:\n    type: menu\n    prompt: Again?\n    choices: [{{ digit: 1, goto: say }}]\n    on_failure: bye\n  say:\n    type: say\n    prompt: ok\n    next: ask\n  bye:\n    type: end\n"
    );
    load(&text, "t.yaml", &catalog()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn failure_paths_that_lead_back_are_refused_because_silence_would_loop_forever() {
    let text = format!(
        "{HEAD}  ask:\n    type: menu\n    prompt: Pick\n    choices: [{{ digit: 1, goto: done }}]\n    on_failure: sorry\n  sorry:\n    type: say\n    prompt: Let us try again\n    next: number\n  number:\n    type: collect\n    prompt: Number?\n    attribute: n\n    next: done\n    on_failure: ask\n  done:\n    type: end\n"
    );
    let (line, col, msg) = one_error(&text);
    assert_eq!(
        (line, col),
        (4, 3),
        "reported at the loop's first menu or collect"
    );
    assert!(
        msg.contains("\"ask\" → \"sorry\" → \"number\" → \"ask\""),
        "{msg}"
    );
    assert!(msg.contains("a customer who never answers"), "{msg}");
    let fixed = text.replace("    on_failure: ask\n", "    on_failure: done\n");
    load(&fixed, "t.yaml", &catalog()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_self_loop_is_a_loop() {
    let text = format!("{HEAD}  a:\n    type: say\n    prompt: x\n    next: a\n");
    let (line, _, msg) = one_error(&text);
    assert_eq!(line, 4);
    assert!(msg.contains("\"a\" → \"a\""), "{msg}");
}

#[test]
fn unknown_queues_and_skills_name_the_tenant_and_what_exists() {
    let text =
        format!("{HEAD}  q:\n    type: queue\n    queue: claim\n    skills: [english, klingon]\n");
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!((e[0].0, e[0].1), (6, 12));
    assert!(
        e[0].2
            .contains("queue \"claim\" is not a queue of tenant acme"),
        "{}",
        e[0].2
    );
    assert!(e[0].2.contains("claims, sales, webchat"), "{}", e[0].2);
    assert!(e[0].2.contains("did you mean \"claims\"?"), "{}", e[0].2);
    assert_eq!((e[1].0, e[1].1), (7, 23));
    assert!(
        e[1].2
            .contains("skill \"klingon\" is not a skill of tenant acme"),
        "{}",
        e[1].2
    );
}

#[test]
fn an_unknown_tenant_is_reported_at_its_line() {
    let (line, col, msg) = one_error("flow: main\ntenant: acne\nnodes:\n  a:\n    type: end\n");
    assert_eq!((line, col), (2, 9));
    assert!(
        msg.contains("tenant \"acne\" is not in the site configuration"),
        "{msg}"
    );
    assert!(msg.contains("did you mean \"acme\"?"), "{msg}");
}

#[test]
fn an_unknown_calendar_and_a_bad_time_zone_are_reported() {
    let text = "flow: main\ntenant: acme\ncalendars:\n  office:\n    timezone: Europe/Londn\n    open: [{ days: mon-fri, from: \"09:00\", to: \"17:00\" }]\nnodes:\n  h:\n    type: hours\n    calendar: ofice\n    open: e\n    closed: e\n  e:\n    type: end\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "shape errors come first: {e:#?}");
    assert_eq!((e[0].0, e[0].1), (5, 15));
    assert!(
        e[0].2.contains("unknown time zone \"Europe/Londn\""),
        "{}",
        e[0].2
    );
    let fixed = text.replace("Europe/Londn", "Europe/London");
    let (line, col, msg) = one_error(&fixed);
    assert_eq!((line, col), (10, 15));
    assert!(msg.contains("calendar \"ofice\" is not defined"), "{msg}");
    assert!(msg.contains("did you mean \"office\"?"), "{msg}");
}

#[test]
fn unknown_fields_and_types_get_suggestions() {
    let text = format!(
        "{HEAD}  a:\n    type: sya\n    prompt: x\n  b:\n    type: say\n    promt: x\n    next: a\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!((e[0].0, e[0].1), (5, 11));
    assert!(
        e[0].2
            .contains("unknown type \"sya\"; did you mean \"say\"?"),
        "{}",
        e[0].2
    );
    assert_eq!(e[1].0, 7, "missing prompt reported at the node");
    assert!(e[1].2.contains("`prompt` is missing"), "{}", e[1].2);
    assert_eq!((e[2].0, e[2].1), (9, 5));
    assert!(
        e[2].2
            .contains("no field `promt`; did you mean \"prompt\"?"),
        "{}",
        e[2].2
    );
}

#[test]
fn yaml_syntax_errors_carry_the_parser_position() {
    let (line, _, msg) = one_error("flow: main\ntenant: acme\nnodes:\n  a: [1,\n  b: 2\n");
    assert_eq!(line, 5);
    assert!(msg.starts_with("not valid YAML"), "{msg}");
    let (line, _, msg) = one_error("flow: main\nflow: other\n");
    assert_eq!(line, 2);
    assert!(msg.contains("duplicated key"), "{msg}");
}

#[test]
fn menus_refuse_shared_digits_and_keywords_and_unpickable_choices() {
    let text = format!(
        "{HEAD}  m:\n    type: menu\n    prompt: Pick\n    choices:\n      - {{ digit: 1, keywords: [sales], goto: e }}\n      - {{ digit: 1, goto: e }}\n      - {{ keywords: [Sales], goto: e }}\n      - {{ goto: e }}\n      - {{ digit: 12, goto: e }}\n    on_failure: e\n  e:\n    type: end\n"
    );
    let e = errors(&text);
    let lines: Vec<u32> = e.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![9, 10, 11, 12], "{e:#?}");
    assert!(e[0].2.contains("digit 1 is already taken"), "{}", e[0].2);
    assert!(
        e[1].2
            .contains("keyword \"sales\" already picks another choice"),
        "{}",
        e[1].2
    );
    assert!(
        e[2].2.contains("neither `digit` nor `keywords`"),
        "{}",
        e[2].2
    );
    assert!(e[3].2.contains("use one keypad key"), "{}", e[3].2);
}

#[test]
fn collect_checks_lengths_terminator_and_pattern() {
    let text = format!(
        "{HEAD}  c:\n    type: collect\n    prompt: Number?\n    attribute: channel\n    input: text\n    min_length: 9\n    max_length: 4\n    terminator: \"#\"\n    pattern: \"[0-9\"\n    next: e\n    on_failure: e\n  e:\n    type: end\n"
    );
    let e = errors(&text);
    let at: Vec<(u32, u32)> = e.iter().map(|x| (x.0, x.1)).collect();
    assert_eq!(at, vec![(7, 5), (9, 5), (11, 17), (12, 14)], "{e:#?}");
    assert!(
        e[0].2.contains("\"channel\" is set by Hotline"),
        "{}",
        e[0].2
    );
    assert!(
        e[1].2
            .contains("`min_length` 9 is more than `max_length` 4"),
        "{}",
        e[1].2
    );
    assert!(
        e[2].2.contains("`terminator` applies to digits only"),
        "{}",
        e[2].2
    );
    assert!(e[3].2.contains("is not a regular expression"), "{}", e[3].2);
}

#[test]
fn calendars_refuse_bad_days_times_and_dates() {
    let text = "flow: main\ntenant: acme\ncalendars:\n  office:\n    timezone: UTC\n    open:\n      - { days: [mon-fry], from: \"09:00\", to: \"17:00\" }\n      - { days: sat, from: \"13:00\", to: \"09:00\" }\n      - { days: sun, from: \"9am\", to: \"24:00\" }\n    holidays: [2026-12-25, 2026-13-01, 2026-12-25]\nnodes:\n  e:\n    type: end\n";
    let e = errors(text);
    let lines: Vec<u32> = e.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![7, 8, 9, 10, 10], "{e:#?}");
    assert!(e[0].2.contains("\"mon-fry\" is not a day"), "{}", e[0].2);
    assert!(
        e[1].2.contains("`to` must be later than `from`"),
        "{}",
        e[1].2
    );
    assert!(e[2].2.contains("`from` is \"9am\""), "{}", e[2].2);
    assert!(
        e[3].2.contains("\"2026-13-01\" is not a date"),
        "{}",
        e[3].2
    );
    assert!(e[4].2.contains("listed twice"), "{}", e[4].2);
}

#[test]
fn a_flow_without_its_header_says_what_to_add() {
    let e = errors("nodes:\n  e:\n    type: end\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].2.contains("`flow` is missing; add e.g. `flow: main`"),
        "{}",
        e[0].2
    );
    assert!(e[1].2.contains("`tenant` is missing"), "{}", e[1].2);
    let (line, _, msg) = one_error("");
    assert_eq!(line, 1);
    assert!(msg.contains("the file is empty"), "{msg}");
}

#[test]
fn booleans_where_text_belongs_are_explained() {
    let text = format!(
        "{HEAD}  s:\n    type: set\n    attributes: {{ vip: yes, tier: gold }}\n    next: e\n  e:\n    type: end\n"
    );
    // YAML 1.2 reads `yes` as text; `true` is the boolean.
    load(&text, "t.yaml", &catalog()).unwrap_or_else(|e| panic!("{e}"));
    let (line, _, msg) = one_error(&text.replace("yes", "true"));
    assert_eq!(line, 6);
    assert!(msg.contains("put the text in quotes"), "{msg}");
}

#[test]
fn branch_cases_need_exactly_one_condition() {
    let text = format!(
        "{HEAD}  b:\n    type: branch\n    attribute: tier\n    cases:\n      - {{ equals: gold, one_of: [a], goto: e }}\n      - {{ present: true, goto: e }}\n    default: e\n  e:\n    type: end\n"
    );
    let (line, _, msg) = one_error(&text);
    assert_eq!(line, 8);
    assert!(msg.contains("exactly one condition"), "{msg}");
    let fixed = text.replace("equals: gold, one_of: [a]", "one_of: [gold, platinum]");
    let flow = load(&fixed, "t.yaml", &catalog()).unwrap();
    let NodeKind::Branch { cases, .. } = &flow.node("b").unwrap().kind else {
        panic!()
    };
    assert_eq!(
        cases[0].condition,
        Condition::OneOf(vec!["gold".into(), "platinum".into()])
    );
    assert!(cases[1].condition.holds(Some("x")));
    assert!(!cases[1].condition.holds(Some("")));
}

#[test]
fn several_classes_of_error_are_all_reported_in_line_order() {
    let text = format!(
        "{HEAD}  a:\n    type: say\n    prompt: hi\n    next: nowhere\n  b:\n    type: queue\n    queue: nope\n"
    );
    let e = errors(&text);
    let lines: Vec<u32> = e.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![7, 8, 10], "{e:#?}");
}
