//! Unit tests of the service's pure parts: configuration checks, key scopes and the
//! parsing of interval queries.

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

use super::auth::{Keys, Scope};
use super::config::{ApiKeyConfig, KpiConfig, Role};
use super::http::{ApiError, IntervalParams, interval_query};
use crate::engine::DimensionFilter;
use crate::model::{Dimension, DimensionKind, IntervalLength};

fn key(key: &str, tenant: Option<&str>, provider: bool, role: Role) -> ApiKeyConfig {
    ApiKeyConfig {
        key: key.to_owned(),
        tenant: tenant.map(str::to_owned),
        provider,
        role,
    }
}

fn config_with(keys: Vec<ApiKeyConfig>) -> KpiConfig {
    KpiConfig {
        api_keys: keys,
        ..KpiConfig::default()
    }
}

#[test]
fn the_default_config_is_valid() {
    KpiConfig::default()
        .validate()
        .expect("the default validates");
}

#[test]
fn a_flush_interval_over_a_second_is_refused_naming_the_field_and_value() {
    let config = KpiConfig {
        flush_interval_ms: 5000,
        ..KpiConfig::default()
    };
    let err = config.validate().expect_err("5 s is too long");
    assert_eq!(err.field, "flush_interval_ms");
    assert_eq!(err.value, "5000");
    assert!(
        err.to_string().contains("flush_interval_ms = 5000"),
        "{err}"
    );
}

#[test]
fn bad_store_urls_refresh_rates_and_targets_are_refused_with_their_field() {
    let cases = [
        (
            KpiConfig {
                store_url: "mysql://x".into(),
                ..KpiConfig::default()
            },
            "store_url",
        ),
        (
            KpiConfig {
                wallboard: super::WallboardConfig {
                    refresh_ms: 2000,
                    ..Default::default()
                },
                ..KpiConfig::default()
            },
            "wallboard.refresh_ms",
        ),
        (
            KpiConfig {
                wallboard: super::WallboardConfig {
                    sl_target: 80.0,
                    ..Default::default()
                },
                ..KpiConfig::default()
            },
            "wallboard.sl_target",
        ),
        (
            KpiConfig {
                consumer_group: " ".into(),
                ..KpiConfig::default()
            },
            "consumer_group",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().expect_err(field);
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn api_keys_must_be_long_unique_and_scoped_and_their_secret_is_never_echoed() {
    let long = "k".repeat(20);
    let cases = [
        (
            vec![key("short", Some("acme"), false, Role::Supervisor)],
            "api_key[0].key",
        ),
        (
            vec![
                key(&long, Some("acme"), false, Role::Supervisor),
                key(&long, Some("globex"), false, Role::Supervisor),
            ],
            "api_key[1].key",
        ),
        (
            vec![key(&long, None, false, Role::Supervisor)],
            "api_key[0].tenant",
        ),
        (
            vec![key(&long, Some("acme"), true, Role::Sre)],
            "api_key[0].tenant",
        ),
        (
            vec![key(&long, Some("bad name"), false, Role::Agent)],
            "api_key[0].tenant",
        ),
        (vec![key(&long, None, true, Role::Agent)], "api_key[0].role"),
        (
            vec![key(&long, Some("acme"), false, Role::ProviderAdmin)],
            "api_key[0].role",
        ),
    ];
    for (keys, field) in cases {
        let err = config_with(keys).validate().expect_err(field);
        assert_eq!(err.field, field, "{err}");
        assert!(!err.to_string().contains(&long), "the secret leaks: {err}");
    }
    let printed = format!("{:?}", key(&long, Some("acme"), false, Role::Agent));
    assert!(
        !printed.contains(&long),
        "Debug prints the secret: {printed}"
    );
}

#[test]
fn a_config_reads_from_json_with_api_key_entries() {
    let config: KpiConfig = serde_json::from_value(serde_json::json!({
        "flush_interval_ms": 250,
        "api_key": [
            { "key": "acme-0123456789abcdef", "tenant": "acme", "role": "supervisor" },
            { "key": "prov-0123456789abcdef", "provider": true, "role": "sre" },
        ],
        "engine": { "service_level_secs": 30 },
    }))
    .expect("the config parses");
    config.validate().expect("and validates");
    assert_eq!(config.api_keys.len(), 2);
    assert_eq!(config.engine.service_level_secs, 30);
    let unknown = serde_json::from_value::<KpiConfig>(serde_json::json!({ "flush_ms": 1 }));
    assert!(unknown.is_err(), "unknown fields are refused");
}

fn bearer(k: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {k}")).expect("a header value"),
    );
    h
}

#[test]
fn a_tenant_key_reads_its_own_tenant_and_gets_404_for_any_other() {
    let keys = Keys::new(&[
        key(
            "acme-0123456789abcdef",
            Some("acme"),
            false,
            Role::Supervisor,
        ),
        key("prov-0123456789abcdef", None, true, Role::Sre),
    ]);
    let acme = keys
        .caller(&bearer("acme-0123456789abcdef"), None)
        .expect("a known key");
    assert_eq!(acme.tenant(None).expect("its own").as_str(), "acme");
    assert_eq!(acme.tenant(Some("acme")).expect("its own").as_str(), "acme");
    assert!(matches!(
        acme.tenant(Some("globex")),
        Err(ApiError::NotFound(_))
    ));
    assert!(matches!(
        acme.tenant(Some("bad name")),
        Err(ApiError::BadRequest(_))
    ));

    let provider = keys
        .caller(&HeaderMap::new(), Some("prov-0123456789abcdef"))
        .expect("a known key from the query");
    assert_eq!(provider.scope, Scope::Provider);
    assert_eq!(
        provider.tenant(Some("globex")).expect("any").as_str(),
        "globex"
    );
    assert!(matches!(
        provider.tenant(None),
        Err(ApiError::BadRequest(_))
    ));

    assert!(matches!(
        keys.caller(&HeaderMap::new(), None),
        Err(ApiError::Unauthorized(_))
    ));
    assert!(matches!(
        keys.caller(&bearer("nope"), None),
        Err(ApiError::Unauthorized(_))
    ));
}

fn params(pairs: &[(&str, &str)]) -> IntervalParams {
    let mut p = IntervalParams::default();
    for (k, v) in pairs {
        let v = Some((*v).to_owned());
        match *k {
            "length" => p.length = v,
            "from" => p.from = v,
            "to" => p.to = v,
            "dimension" => p.dimension = v,
            "id" => p.id = v,
            other => panic!("no parameter {other}"),
        }
    }
    p
}

#[test]
fn an_interval_query_defaults_to_todays_quarters_of_every_dimension() {
    let day = IntervalLength::Day.millis();
    let now = 20_000 * day + 12_345;
    let q = interval_query("acme", &params(&[]), now).expect("valid");
    assert_eq!(q.length, IntervalLength::Min15);
    assert_eq!(q.from_ms, 20_000 * day);
    assert!(q.to_ms > now);
    assert_eq!(q.dimension, None);
}

#[test]
fn a_dimension_without_an_id_selects_every_row_of_that_kind() {
    let q = interval_query("acme", &params(&[("dimension", "agent")]), 1).expect("valid");
    assert_eq!(
        q.dimension,
        Some(DimensionFilter::Kind(DimensionKind::Agent))
    );
    let q = interval_query(
        "acme",
        &params(&[("dimension", "queue"), ("id", "sales")]),
        1,
    )
    .expect("valid");
    assert_eq!(
        q.dimension,
        Some(DimensionFilter::Is(Dimension::Queue("sales".into())))
    );
    let q = interval_query("acme", &params(&[("dimension", "tenant")]), 1).expect("valid");
    assert_eq!(q.dimension, Some(DimensionFilter::Is(Dimension::Tenant)));
}

#[test]
fn bad_interval_parameters_are_refused_naming_the_parameter_and_value() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("length", "1w")], "length=\"1w\""),
        (&[("from", "-5")], "from=\"-5\""),
        (&[("from", "10"), ("to", "10")], "to=\"10\""),
        (&[("dimension", "city")], "dimension=\"city\""),
        (&[("dimension", "tenant"), ("id", "x")], "id=\"x\""),
        (
            &[("length", "15m"), ("from", "0"), ("to", "100000000000")],
            "to=\"100000000000\"",
        ),
    ];
    for (pairs, named) in cases {
        let err = interval_query("acme", &params(pairs), 1).expect_err(named);
        assert!(matches!(err, ApiError::BadRequest(_)), "{err}");
        assert!(err.to_string().contains(named), "{pairs:?}: {err}");
    }
}

#[test]
fn every_engine_definition_is_listed_with_a_description() {
    let listed = super::definitions();
    for (id, version) in crate::engine::DEFINITIONS {
        let d = listed
            .iter()
            .find(|d| d.id == *id)
            .unwrap_or_else(|| panic!("{id} is not listed"));
        assert_eq!(d.version, *version);
        assert!(
            !d.description.starts_with("see "),
            "{id} has no one-line description yet"
        );
    }
}
