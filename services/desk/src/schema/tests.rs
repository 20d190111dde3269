use super::*;

fn staff(text: &str) -> Result<(Ref, StaffRequest), Rejected> {
    parse::<StaffRequest>(text)
}

#[test]
fn a_well_formed_frame_parses_with_its_id() {
    let contact = ContactId::random();
    let (r, req) = staff(&format!(
        r#"{{"v":1,"id":7,"type":"transfer","contact":"{contact}","queue":"sales"}}"#
    ))
    .unwrap();
    assert_eq!(r, Some(Value::from(7)));
    assert_eq!(
        req,
        StaffRequest::Transfer {
            contact,
            queue: QueueId::new("sales").unwrap()
        }
    );
    let (_, req) = staff(r#"{"v":1,"type":"ready"}"#).unwrap();
    assert_eq!(req, StaffRequest::Ready {});
}

#[test]
fn frames_that_do_not_match_the_schema_are_refused_saying_why() {
    let cases: &[(&str, ErrorCode, &str)] = &[
        ("not json", ErrorCode::BadMessage, "not JSON"),
        ("[1,2]", ErrorCode::BadMessage, "JSON object"),
        (
            r#"{"type":"ready"}"#,
            ErrorCode::UnsupportedVersion,
            "\"v\" is missing",
        ),
        (
            r#"{"v":2,"type":"ready"}"#,
            ErrorCode::UnsupportedVersion,
            "version 2",
        ),
        (
            r#"{"v":1,"type":"dance"}"#,
            ErrorCode::BadMessage,
            "unknown variant `dance`",
        ),
        (r#"{"v":1}"#, ErrorCode::BadMessage, "missing field `type`"),
        (
            r#"{"v":1,"type":"accept"}"#,
            ErrorCode::BadMessage,
            "missing field `contact`",
        ),
        (
            r#"{"v":1,"type":"accept","contact":"nope"}"#,
            ErrorCode::BadMessage,
            "UUID",
        ),
        (
            r#"{"v":1,"type":"ready","extra":1}"#,
            ErrorCode::BadMessage,
            "unknown field `extra`",
        ),
        (
            r#"{"v":1,"type":"transfer","contact":"00000000-0000-0000-0000-000000000001","queue":"bad queue"}"#,
            ErrorCode::BadMessage,
            "bad queue",
        ),
        (
            r#"{"v":1,"id":{"a":1},"type":"ready"}"#,
            ErrorCode::BadMessage,
            "\"id\" must be",
        ),
    ];
    for (text, code, says) in cases {
        let r = staff(text).unwrap_err();
        assert_eq!(r.code, *code, "{text}: {}", r.message);
        assert!(
            r.message.contains(says),
            "{text}: {:?} does not say {says:?}",
            r.message
        );
    }
}

#[test]
fn an_error_frame_names_the_request_it_answers() {
    let r = staff(r#"{"v":3,"id":"a1","type":"ready"}"#).unwrap_err();
    let text = ServerFrame::from(r).to_text();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["ref"], "a1");
    assert_eq!(v["code"], "unsupported_version");
    assert_eq!(v["v"], 1);
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_parsed() {
    let big = format!(
        r#"{{"v":1,"type":"message","text":"{}"}}"#,
        "x".repeat(MAX_FRAME_BYTES)
    );
    let r = parse::<ChatRequest>(&big).unwrap_err();
    assert!(r.message.contains("limit"), "{}", r.message);
}

#[test]
fn texts_over_the_limit_or_blank_are_refused() {
    assert!(check_text("text", "hi", 10, false).is_ok());
    assert!(
        check_text("text", "  ", 10, false)
            .unwrap_err()
            .contains("empty")
    );
    assert!(check_text("notes", "", 10, true).is_ok());
    let long = "好".repeat(11);
    assert!(
        check_text("text", &long, 10, false)
            .unwrap_err()
            .contains("11 characters")
    );
}

#[test]
fn server_frames_carry_the_version_and_their_type() {
    let v: Value = serde_json::from_str(&ServerFrame::Pong { reference: None }.to_text()).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["v"].as_u64()),
        (Some("pong"), Some(1))
    );
    let m = ServerFrame::Message {
        contact: ContactId::from_u128(1),
        line: ChatLine {
            from: Author::Customer,
            name: None,
            text: "你好".into(),
            at_ms: 5,
        },
    };
    let v: Value = serde_json::from_str(&m.to_text()).unwrap();
    assert_eq!(v["from"], "customer");
    assert_eq!(v["text"], "你好");
    assert!(v.get("name").is_none());
}
