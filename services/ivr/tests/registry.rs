//! The flow registry: a bad publish never replaces a working flow.

use hotline_acd::config::SiteConfig;
use hotline_ivr::{Catalog, FlowRegistry, RegistryError};

const SITE: &str = include_str!("../../hotline/demo/site.toml");
const DEMO: &str = include_str!("../../hotline/demo/flows/acme-main.yaml");

fn registry() -> FlowRegistry {
    let site = SiteConfig::from_toml(SITE, "site.toml").unwrap();
    FlowRegistry::new("acme".parse().unwrap(), Catalog::from_site(&site))
}

const V2: &str = "flow: main\ntenant: acme\nnodes:\n  q:\n    type: queue\n    queue: sales\n";

#[test]
fn a_bad_publish_keeps_the_current_version_and_says_what_is_wrong() {
    let mut reg = registry();
    assert_eq!(reg.publish(DEMO, "main.yaml").unwrap().version(), 1);
    let broken = V2.replace("queue: sales", "queue: salse");
    let err = reg.publish(&broken, "main.yaml").unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    assert_eq!(err.diagnostics[0].pos.line, 6);
    assert!(
        err.to_string()
            .starts_with("main.yaml:6:12: node \"q\": queue \"salse\""),
        "{err}"
    );
    let current = reg.current("main").unwrap();
    assert_eq!(current.version(), 1, "the working version stays current");
    assert_eq!(current.text(), DEMO);
    assert_eq!(reg.latest("main"), Some(1), "no version number was used up");
    // Not YAML at all: refused the same way.
    assert!(reg.publish("nodes: [", "main.yaml").is_err());
    assert_eq!(reg.current("main").unwrap().version(), 1);
}

#[test]
fn versions_increase_and_older_ones_stay_readable_for_rollback() {
    let mut reg = registry();
    reg.publish(DEMO, "main.yaml").unwrap();
    let v2 = reg.publish(V2, "main.yaml").unwrap();
    assert_eq!(v2.version(), 2);
    assert_eq!(reg.current("main").unwrap().version(), 2);
    assert_eq!(reg.version("main", 1).unwrap().text(), DEMO);
    reg.set_current("main", 1).unwrap();
    assert_eq!(reg.current("main").unwrap().version(), 1);
    assert_eq!(
        reg.publish(V2, "main.yaml").unwrap().version(),
        3,
        "after a rollback, still counting up"
    );
    assert_eq!(
        reg.set_current("main", 9),
        Err(RegistryError::UnknownVersion {
            name: "main".into(),
            version: 9,
            latest: 3
        })
    );
    assert!(matches!(
        reg.set_current("other", 1),
        Err(RegistryError::UnknownFlow { .. })
    ));
    assert_eq!(reg.names().collect::<Vec<_>>(), vec!["main"]);
}

#[test]
fn a_flow_for_another_tenant_is_not_published_here() {
    let mut reg = registry();
    let globex = "flow: main\ntenant: globex\nnodes:\n  q:\n    type: queue\n    queue: billing\n";
    let err = reg.publish(globex, "main.yaml").unwrap_err();
    assert_eq!(err.diagnostics[0].pos.line, 2);
    assert!(
        err.to_string().contains("published for tenant acme"),
        "{err}"
    );
    assert!(reg.current("main").is_none());
}
