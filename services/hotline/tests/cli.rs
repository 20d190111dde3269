//! The `hotline` binary as a user runs it.

use std::process::{Command, Output};

fn hotline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .output()
        .expect("the hotline binary runs")
}

fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn sim_prints_the_figures_as_json_on_its_last_line_and_repeats_for_a_seed() {
    let args = [
        "sim",
        "--agents",
        "20",
        "--arrivals-per-hour",
        "360",
        "--aht-secs",
        "180",
        "--patience-secs",
        "120",
        "--hours",
        "40",
        "--sl-secs",
        "20",
        "--seed",
        "3",
        "--json",
    ];
    let a = hotline(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let j = last_json(&a);
    for key in [
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "asa_secs",
        "abandon_rate",
        "occupancy",
        "aht_secs",
    ] {
        assert!(
            j.get(key).is_some_and(|v| v.is_number()),
            "missing {key}: {j}"
        );
    }
    let offered = j["offered"].as_u64().unwrap();
    // 360 an hour for 40 hours: Poisson, so within a few standard deviations of 14,400.
    assert!((13_900..14_900).contains(&offered), "offered {offered}");
    let answered = j["answered"].as_u64().unwrap();
    let abandoned = j["abandoned"].as_u64().unwrap();
    assert_eq!(
        answered + abandoned,
        offered,
        "every contact ends answered or abandoned"
    );
    // Offered load 18 Erlangs on 20 agents: occupancy a little under 0.9.
    let occ = j["occupancy"].as_f64().unwrap();
    assert!((0.8..0.92).contains(&occ), "occupancy {occ}");
    let b = hotline(&args);
    assert_eq!(j["service_level"], last_json(&b)["service_level"]);
}

#[test]
fn sim_without_json_prints_a_readable_summary() {
    let out = hotline(&[
        "sim",
        "--agents",
        "5",
        "--arrivals-per-hour",
        "60",
        "--hours",
        "10",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "offered",
        "answered",
        "service level",
        "ASA",
        "occupancy",
        "contacts per minute",
    ] {
        assert!(text.contains(word), "summary lacks {word}: {text}");
    }
}

#[test]
fn sim_runs_a_multi_queue_scenario_file() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/scenario.toml");
    let out = hotline(&[
        "sim",
        "--scenario",
        scenario,
        "--hours",
        "24",
        "--patience-secs",
        "180",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    assert!(j["offered"].as_u64().unwrap() > 2_500);
    assert_eq!(j["agents"], 8);
    let queues = j["queues"].as_array().expect("per-queue figures");
    assert_eq!(queues.len(), 3);
    let sum: u64 = queues.iter().map(|q| q["offered"].as_u64().unwrap()).sum();
    assert_eq!(sum, j["offered"].as_u64().unwrap());
    let text = hotline(&["sim", "--scenario", scenario, "--hours", "4"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("acme/billing-es"));
}

#[test]
fn bad_arguments_exit_64_and_say_what_to_fix() {
    let out = hotline(&["sim", "--agents", "0"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--agents must be at least 1"));
    let out = hotline(&["sim", "--hours", "soon"]);
    assert_eq!(out.status.code(), Some(64));
    let out = hotline(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn a_bad_configuration_file_exits_64_naming_the_problem() {
    let dir = std::env::temp_dir().join(format!("hotline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("site.toml");
    std::fs::write(
        &bad,
        "site = \"s\"\n[[tenant]]\nid = \"t\"\nskills = [\"a\"]\n[[queue]]\ntenant = \"t\"\nid = \"q\"\nskills = [{ skill = \"b\" }]\n",
    )
    .unwrap();
    for args in [
        vec!["config", "check", bad.to_str().unwrap()],
        vec![
            "up",
            "--config",
            bad.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let out = hotline(&args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("queue t/q names unknown skill \"b\""), "{err}");
    }
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/site.toml");
    let ok = hotline(&["config", "check", demo]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok — site demo-1"));
}

#[test]
fn up_on_a_port_in_use_exits_64_and_suggests_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = hotline(&["up", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pick another address with --listen"));
}

#[test]
fn staffing_finds_the_fewest_agents_that_meet_the_target() {
    // 100 contacts in 30 min at 180 s: 10 Erlangs. 13 agents give 79.6% in 20 s,
    // 14 give 88.8% (checked against the direct Erlang C formula in hotline-kpi).
    let out = hotline(&[
        "kpi",
        "staffing",
        "--contacts",
        "100",
        "--interval-mins",
        "30",
        "--aht-secs",
        "180",
        "--sl",
        "0.8",
        "--sl-secs",
        "20",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    assert_eq!(j["agents"], 14);
    let sl = j["service_level"].as_f64().unwrap();
    assert!((sl - 0.888).abs() < 0.002, "service level {sl}");
    let occ = j["occupancy"].as_f64().unwrap();
    assert!((occ - 10.0 / 14.0).abs() < 1e-9, "occupancy {occ}");
    assert!(j["asa_secs"].as_f64().unwrap() > 0.0);
    let bad = hotline(&["kpi", "staffing", "--contacts", "100", "--aht-secs", "0"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--aht-secs"));
}

#[test]
fn a_bad_kpi_configuration_exits_64_naming_the_field_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kpi.toml");
    std::fs::write(&file, "flush_interval_ms = 5000\n").unwrap();
    let out = hotline(&["kpi", "serve", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flush_interval_ms") && stderr.contains("5000"),
        "{stderr}"
    );

    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    let out = hotline(&["kpi", "serve", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_setting"), "{stderr}");
}

#[test]
fn ivr_check_passes_the_demo_flow_with_a_summary() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/flows/acme-main.yaml");
    let out = hotline(&["ivr", "check", demo]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("ok — flow main of tenant acme")
            && stdout.contains("queues claims, sales, webchat"),
        "{stdout}"
    );
}

#[test]
fn ivr_check_prints_every_error_with_file_line_and_column_and_exits_1() {
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flows/broken.yaml");
    let out = hotline(&["ivr", "check", bad]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let expect = [
        format!(
            "{bad}:10:27: node \"greeting\": `goto` goes to \"sale\", which is not a node of this flow"
        ),
        format!(
            "{bad}:12:3: nodes \"again\" → \"reset\" → \"again\" loop without waiting for input"
        ),
        format!(
            "{bad}:22:12: node \"claims_queue\": queue \"claim\" is not a queue of tenant acme"
        ),
        format!(
            "{bad}:23:23: node \"claims_queue\": skill \"klingon\" is not a skill of tenant acme"
        ),
        format!("{bad}:24:3: node \"forgotten\" is never reached"),
    ];
    assert_eq!(lines.len(), expect.len(), "{stdout}");
    for (line, want) in lines.iter().zip(&expect) {
        assert!(
            line.starts_with(want.as_str()),
            "{line}\n  should start with\n{want}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 errors in"), "{stderr}");
}

#[test]
fn ivr_check_against_another_site_config_and_unreadable_inputs() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/flows/acme-main.yaml");
    let dir = tempfile::tempdir().unwrap();
    // A site where acme has no webchat queue: the flow's chat route names a queue
    // that does not exist there.
    let site = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/site.toml"))
        .unwrap()
        .replace("id = \"webchat\"", "id = \"chat\"");
    let config = dir.path().join("site.toml");
    std::fs::write(&config, site).unwrap();
    let out = hotline(&["ivr", "check", demo, "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("queue \"webchat\" is not a queue of tenant acme"),
        "{stdout}"
    );

    let missing = dir.path().join("nope.yaml");
    let out = hotline(&["ivr", "check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the flow file"));

    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, "site = \n").unwrap();
    let out = hotline(&[
        "ivr",
        "check",
        demo,
        "--config",
        bad_config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(64));
}
